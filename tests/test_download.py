"""Downloads against a local HTTP server on 127.0.0.1: resume, server errors, checksums, hostile names."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from aqa_cli.datasets.mtl_aqa import download as dl
from aqa_cli.datasets.mtl_aqa import adapter as mtl_aqa
from aqa_cli.errors import DataError, UsageError

SHARED_MTL_AQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtl-aqa"
PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """/file (Range-aware), /norange (ignores Range), /cut (sends half, then hangs up), /error (500),
    /release/<path> (files of the shared MTL-AQA release). Records the Range header of each request."""

    ranges: list[str | None] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        type(self).ranges.append(self.headers.get("Range"))
        if self.path == "/error":
            self.send_error(500, "Internal Server Error")
            return
        if self.path.startswith("/release/"):
            path = SHARED_MTL_AQA / self.path.removeprefix("/release/")
            if not path.is_file():
                self.send_error(404)
                return
            self._send(path.read_bytes(), ranged=True)
            return
        if self.path == "/cut":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(PAYLOAD, ranged=self.path == "/file")

    def _send(self, body: bytes, ranged: bool):
        start = 0
        header = self.headers.get("Range")
        if ranged and header and header.startswith("bytes="):
            start = int(header[6:].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _clear_ranges():
    _Handler.ranges.clear()


def test_plain_download_records_checksum(tmp_path, server):
    report = dl.fetch_all(tmp_path, [dl.RemoteFile("data/file.bin", f"{server}/file", SHA)])
    assert report.fetched == ["data/file.bin"]
    assert (tmp_path / "data" / "file.bin").read_bytes() == PAYLOAD
    assert dl.read_sums(tmp_path) == {"data/file.bin": SHA}
    assert not list(tmp_path.rglob("*.part"))
    again = dl.fetch_all(tmp_path, [dl.RemoteFile("data/file.bin", f"{server}/file", SHA)])
    assert again.kept == ["data/file.bin"] and _Handler.ranges == [None]  # no second request


def test_resumes_a_partial_file_with_range(tmp_path, server):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:30000])
    assert dl.fetch(f"{server}/file", tmp_path, "file.bin", SHA) == SHA
    assert _Handler.ranges == ["bytes=30000-"]
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_cleanly(tmp_path, server):
    (tmp_path / "file.bin.part").write_bytes(b"stale bytes that must not stay at the front")
    dl.fetch(f"{server}/norange", tmp_path, "file.bin", SHA)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_complete_part_answered_416_is_finished(tmp_path, server):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD)
    dl.fetch(f"{server}/file", tmp_path, "file.bin", SHA)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_interrupted_download_keeps_part_and_resumes(tmp_path, server):
    with pytest.raises(DataError, match="rerun the same command|got 51200 of 102400|interrupted") as info:
        dl.fetch(f"{server}/cut", tmp_path, "file.bin", SHA)
    assert "/cut" in str(info.value)
    assert not (tmp_path / "file.bin").exists()
    assert (tmp_path / "file.bin.part").stat().st_size == len(PAYLOAD) // 2
    dl.fetch(f"{server}/file", tmp_path, "file.bin", SHA)  # the same file from a server that resumes
    assert _Handler.ranges[-1] == f"bytes={len(PAYLOAD) // 2}-"
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_server_error_is_one_clear_line(tmp_path, server):
    with pytest.raises(DataError, match=r"download http://127\.0\.0\.1:\d+/error: HTTP 500"):
        dl.fetch(f"{server}/error", tmp_path, "x.bin")
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_deletes_the_download(tmp_path, server):
    with pytest.raises(DataError, match="checksum mismatch"):
        dl.fetch(f"{server}/file", tmp_path, "file.bin", "0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_optional_file_failure_is_reported_not_raised(tmp_path, server):
    report = dl.fetch_all(tmp_path, [dl.RemoteFile("ok.bin", f"{server}/file", SHA),
                                     dl.RemoteFile("extra.bin", f"{server}/error", optional=True)])
    assert report.fetched == ["ok.bin"] and "HTTP 500" in report.failed["extra.bin"]


@pytest.mark.parametrize("name", ["../evil.bin", "a/../../evil.bin", "/etc/evil.bin", "C:evil.bin",
                                  "a\\..\\evil.bin", "evil\x00.bin", "", ".", "./"])
def test_hostile_names_never_write_outside_root(tmp_path, server, name):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DataError, match="refusing to write"):
        dl.fetch_all(root, [dl.RemoteFile(name, f"{server}/file")])
    assert [p.name for p in tmp_path.rglob("*")] == ["root"]


def test_symlink_escape_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "videos").symlink_to(tmp_path)
    with pytest.raises(DataError, match="outside"):
        dl.safe_path(root, "videos/x.mp4")


def test_only_https_or_loopback(tmp_path):
    # The caller asked for that URL: a usage error (exit 2), not a failed download.
    with pytest.raises(UsageError, match="only https"):
        dl.fetch("http://example.org/file", tmp_path, "f")
    with pytest.raises(UsageError, match="only https"):
        dl.fetch("file:///etc/passwd", tmp_path, "f")


def test_missing_file_hints_at_the_url_not_at_retrying(tmp_path, server):
    with pytest.raises(DataError, match="HTTP 404") as info:
        dl.fetch(f"{server}/release/no/such.pkl", tmp_path, "x.bin")
    assert "check the URL" in info.value.hint and "retry" not in info.value.hint
    with pytest.raises(DataError) as info:
        dl.fetch(f"{server}/error", tmp_path, "x.bin")
    assert "retry later" in info.value.hint  # a server error may pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("how", ["url", "file-url", "refused", "from"])
def test_failed_download_leaves_no_new_root(tmp_path, how):
    root = tmp_path / "new" / "root"
    kwargs = {"url": {"base_url": "abc"}, "file-url": {"base_url": "file:///etc"},
              "refused": {"base_url": f"http://127.0.0.1:{_free_port()}"},
              "from": {"from_dir": tmp_path / "nowhere"}}[how]
    error = UsageError if how in ("url", "file-url") else DataError
    with pytest.raises(error):
        mtl_aqa.download(root, videos=False, **kwargs)
    assert not root.exists()


def test_root_that_cannot_be_a_folder_is_a_usage_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        mtl_aqa.download(tmp_path / "afile", from_dir=tmp_path, videos=False)
    with pytest.raises(UsageError, match="cannot create the folder"):
        mtl_aqa.download(tmp_path / "afile" / "root", from_dir=tmp_path, videos=False)
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_root_of_another_dataset_is_refused(tmp_path):
    (tmp_path / "dataset.yaml").write_text("name: syndive\nsource: SynDive (synthetic)\n")
    (tmp_path / "annotations.jsonl").write_text('{"id": "000001"}\n')
    with pytest.raises(UsageError, match="holds the 'syndive' dataset, not mtl-aqa"):
        mtl_aqa.download(tmp_path, from_dir=tmp_path, videos=False)
    assert (tmp_path / "annotations.jsonl").read_text() == '{"id": "000001"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.jsonl", "dataset.yaml"]


def test_mtl_aqa_release_from_a_mirror(tmp_path, server):
    if not SHARED_MTL_AQA.is_dir():
        pytest.skip(f"shared MTL-AQA release not found at {SHARED_MTL_AQA}")
    result = mtl_aqa.download(tmp_path, base_url=f"{server}/release", videos=False)
    assert result.samples == 1412 and result.problems == []
    sums = dl.read_sums(tmp_path)
    assert len(sums) == 7 and all(k.startswith("release/") for k in sums)
    assert sums["release/" + mtl_aqa.ANNOTATIONS] == dict(
        (p, s) for p, s, _ in mtl_aqa.RELEASE_FILES)[mtl_aqa.ANNOTATIONS]
    assert (tmp_path / "dataset.yaml").is_file() and len(result.missing_videos) == 15
