"""Fetch dataset files into a root: resumable HTTPS downloads, local copies, and yt-dlp for videos.

Every file lands at a path inside ROOT that aqa chose (`safe_path` refuses anything that would
leave ROOT: absolute paths, '..', drive letters, NUL bytes), never a name a server sends. A download
streams into `<name>.part` next to its target, resumes with an HTTP Range request when the part is
already there, checks the sha256 when one is known, and only then renames the part over the target,
so a target file is always complete. The sha256 of every file fetched is recorded in
`ROOT/SHA256SUMS` (the `sha256sum` format). Progress goes to a Rich console on stderr.
`writing_into(root)` makes the root for a download and takes it away again when the download fails
before anything landed in it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from aqa_cli.storage import atomic_write_text
from aqa_cli.errors import DataError, UsageError

CHUNK = 1 << 16  # bytes per read (64 KiB)
TIMEOUT_S = 30  # per socket operation, not per file
SUMS = "SHA256SUMS"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
YT_DLP_INSTALL = "pip install 'aqa[videos]'   # or: pip install yt-dlp"


@dataclass(frozen=True)
class RemoteFile:
    """A file of a dataset: where it goes under ROOT, where it comes from, what it must hash to."""

    path: str  # relative to ROOT, '/'-separated
    url: str
    sha256: str | None = None
    optional: bool = False  # a failure is reported, not raised


@dataclass
class FetchReport:
    """What a download or copy did, per file path (relative to ROOT)."""

    fetched: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already present with the right checksum
    failed: dict[str, str] = field(default_factory=dict)  # optional files that could not be had


def safe_path(root: Path, relative: str) -> Path:
    """ROOT/relative, refusing any name that could point outside ROOT."""
    bad = (not relative or "\x00" in relative or "\\" in relative or relative.startswith("/")
           or (len(relative) > 1 and relative[1] == ":"))
    parts = PurePosixPath(relative).parts
    if bad or not parts or ".." in parts:
        raise DataError(f"refusing to write {relative!r}: not a plain path inside the dataset root")
    target = (root / Path(*parts)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise DataError(f"refusing to write {relative!r}: it resolves outside {root}")
    return target


@contextmanager
def writing_into(root: Path) -> Iterator[None]:
    """Make the folder ROOT for the body to write into; remove it again if the body fails and ROOT
    was made here and holds no file (a refused URL or a dead server leaves nothing behind).

    A ROOT that is a file, or that cannot be made (no such parent, read-only), is a UsageError.
    """
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: is a file, not a folder", hint="choose a folder for the dataset root")
    made = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{root}: cannot create the folder ({exc.strerror or exc})") from None
    try:
        yield
    except BaseException:
        if made:
            _remove_empty_tree(root)
        raise


def _remove_empty_tree(root: Path) -> None:
    """Remove ROOT and the folders under it, deepest first, as long as they hold no file."""
    for folder, _, _ in os.walk(root, topdown=False):
        try:
            os.rmdir(folder)
        except OSError:  # not empty: a file (a .part to resume, say) is kept
            pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_sums(root: Path) -> dict[str, str]:
    """ROOT/SHA256SUMS → {relative path: sha256}."""
    path = root / SUMS
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name:
            sums[name] = digest
    return sums


def record_sums(root: Path, new: dict[str, str]) -> None:
    sums = read_sums(root) | new
    atomic_write_text(root / SUMS, "".join(f"{sums[k]}  {k}\n" for k in sorted(sums)))


@contextmanager
def _progress(console) -> Iterator:
    """A transient Rich progress bar on `console` (stderr), or None without a console."""
    if console is None:
        yield None
        return
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as progress:
        yield progress


def fetch(url: str, root: Path, relative: str, sha256: str | None = None, progress=None) -> str:
    """Download `url` to ROOT/relative (resuming a `.part`), verify, rename; return the sha256.

    Only https URLs are fetched, and http from this machine (127.0.0.1, localhost) for mirrors and
    tests; any other URL is a UsageError (the caller asked for it). Raises DataError naming the URL for
    HTTP and network errors (the part is kept for the next try) and for a checksum mismatch (the part
    is deleted: resuming it cannot help). Folders are made only once the server answers.
    """
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise UsageError(f"refusing to download {url}: only https URLs are fetched",
                         hint="give an https URL (http only from 127.0.0.1 or localhost)")
    target = safe_path(root, relative)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "aqa", **({"Range": f"bytes={have}-"} if have else {})})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part already holds the whole file
            response = None
        else:
            hint = ("check the URL; a mirror must hold the files at the release's paths"
                    if exc.code in (404, 410)  # the file is not there: retrying cannot help
                    else "retry later; a partial download resumes where it stopped")
            raise DataError(f"download {url}: HTTP {exc.code} {exc.reason}", hint=hint) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"download {url}: {reason}", hint="check the network and retry") from None
    if response is not None:
        with response:
            resumed = response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
            if not resumed:
                have = 0  # the server sent the whole file: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            part.parent.mkdir(parents=True, exist_ok=True)
            task = progress.add_task(relative, total=total, completed=have) if progress else None
            try:
                with part.open("ab" if resumed else "wb") as f:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        f.write(block)
                        if progress:
                            progress.advance(task, len(block))
            except (OSError, urllib.error.URLError) as exc:
                raise DataError(f"download {url}: interrupted ({exc})",
                                hint="rerun the same command: it resumes the partial file") from None
            finally:
                if progress:
                    progress.remove_task(task)
            if total is not None and part.stat().st_size != total:
                raise DataError(f"download {url}: got {part.stat().st_size} of {total} bytes",
                                hint="rerun the same command: it resumes the partial file")
    digest = sha256_file(part)
    if sha256 and digest != sha256:
        part.unlink()
        raise DataError(f"download {url}: checksum mismatch (sha256 {digest[:12]}…, expected {sha256[:12]}…)",
                        hint="the server sent a different file; check the URL or mirror")
    os.replace(part, target)
    return digest


def fetch_all(root: Path, files: list[RemoteFile], console=None) -> FetchReport:
    """Download every file not already in ROOT with its recorded (or expected) checksum."""
    report = FetchReport()
    sums = read_sums(root)
    with _progress(console) as progress:
        for f in files:
            target = safe_path(root, f.path)
            if target.is_file() and sums.get(f.path) == sha256_file(target) and f.sha256 in (None, sums[f.path]):
                report.kept.append(f.path)
                continue
            try:
                digest = fetch(f.url, root, f.path, f.sha256, progress)
            except DataError as exc:
                if not f.optional:
                    raise
                report.failed[f.path] = str(exc)
                continue
            record_sums(root, {f.path: digest})
            report.fetched.append(f.path)
    return report


def copy_all(root: Path, source: Path, files: list[RemoteFile], link: bool = False,
             strip: str = "") -> FetchReport:
    """Copy (or hard-link) the files from a local folder instead of downloading them.

    A file's source is `source / path` with the prefix `strip` removed from `path`. Known checksums
    are verified before anything is written, and recorded in ROOT/SHA256SUMS.
    """
    report = FetchReport()
    new_sums = {}
    for f in files:
        name = f.path.removeprefix(strip)
        src = safe_path(source, name)  # the same containment rule on the source side
        if not src.is_file():
            if not f.optional:
                raise DataError(f"{source}: missing {name}", hint="point --from at a copy of the release")
            report.failed[f.path] = f"not in {source}"
            continue
        digest = sha256_file(src)
        if f.sha256 and digest != f.sha256:
            raise DataError(f"{src}: checksum mismatch (sha256 {digest[:12]}…, expected {f.sha256[:12]}…)",
                            hint="this is not the file of the official release")
        copy_file(src, safe_path(root, f.path), link)
        new_sums[f.path] = digest
        report.fetched.append(f.path)
    record_sums(root, new_sums)
    return report


def copy_file(src: Path, target: Path, link: bool = False) -> None:
    """Copy or hard-link `src` to `target` through a temporary name, so `target` is never partial."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    if link:
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or links not allowed: copy instead
            shutil.copyfile(src, tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, target)


def yt_dlp_command() -> list[str] | None:
    """How to run yt-dlp here (the module in this Python, else a yt-dlp on PATH), or None."""
    if importlib.util.find_spec("yt_dlp") is not None:
        return [sys.executable, "-m", "yt_dlp"]
    exe = shutil.which("yt-dlp")
    return [exe] if exe else None


def fetch_video(url: str, root: Path, relative_stem: str, command: list[str]) -> Path:
    """Download one video with yt-dlp to ROOT/<relative_stem>.<ext>; return its path.

    The format is video-only MP4 up to 720p, which needs no ffmpeg to merge streams; yt-dlp resumes
    its own `.part` files. Raises DataError with yt-dlp's last error line when it fails.
    """
    stem = safe_path(root, relative_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [*command, "--no-playlist", "--no-progress", "-f", "bv*[ext=mp4][height<=720]/b[ext=mp4]/b",
         "-o", f"{stem}.%(ext)s", url],
        capture_output=True, text=True)
    made = [p for p in stem.parent.glob(stem.name + ".*")
            if not p.name.endswith((".part", ".ytdl")) and p.resolve().is_relative_to(root.resolve())]
    if result.returncode != 0 or not made:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"yt-dlp could not fetch {url}: {last}")
    return made[0]
