"""The coach's HTML report (aqa_cli/report.py): pages and index checked in a real headless browser where
one is installed (Debian's `chromium`, which .ci/run installs), plus the parts a browser is not needed for:
frame choice and encoding, escaping, size, sorting and resuming a folder."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import av
import numpy as np
import pytest

from aqa_cli import report
from aqa_cli.report import session
from aqa_cli.errors import UsageError
from aqa_cli.scoring import ScoreResult
from aqa_cli.video import read_even
from media import frame_index, make_video, pattern

NOTE = "demo weights trained on SynDive synthetic renderings: not calibrated for real footage"


def dive_result(video: str = "meet/dive_07.mp4", score: float = 74.69, **extra) -> ScoreResult:
    values = dict(video=video, final_score=score, execution=25.39, difficulty=2.94, dive_number="107C",
                  description="Forward 3½ Somersaults Tuck", position="tuck", armstand=False,
                  rotation_type="forward", ss_no=7, tw_no=0,
                  commentary="A forward three and a half somersaults in the tuck position.",
                  weights="syndive-tiny-mtl", dd_from="expected",
                  probabilities={"position": 0.998, "armstand": 0.9997, "rotation_type": 0.99995, "ss_no": 0.879,
                                 "tw_no": 1.0})
    values.update(extra)
    return ScoreResult(**values)


def indexed_frames(count: int = 96, width: int = 320, height: int = 240) -> np.ndarray:
    """uint8 (count, height, width, 3): frame k shows the pattern of index k (media.frame_index reads it)."""
    return np.stack([pattern(k, width, height) for k in range(count)])


def strip_images(page: str) -> list[np.ndarray]:
    """The page's data: URI images, decoded with PyAV: uint8 (H, W, 3) each."""
    images = []
    for payload in re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page):
        with av.open(io.BytesIO(base64.b64decode(payload))) as container:
            images.append(next(container.decode(video=0)).to_ndarray(format="rgb24"))
    return images


# ---------------------------------------------------------------------------------------------
# Without a browser


def test_pick_strip_spans_the_clip_in_order():
    picked = report.pick_strip(96)
    assert picked.tolist() == sorted(set(picked.tolist())) and len(picked) == 8
    assert picked[0] == 0 and picked[-1] == 95
    assert report.pick_strip(np.zeros((5, 4, 4, 3), np.uint8)).tolist() == [0, 1, 2, 3, 4]
    assert report.pick_strip(1).tolist() == [0]
    with pytest.raises(ValueError):
        report.pick_strip(0)


def test_page_shows_the_strip_frames_it_picked():
    frames = indexed_frames()
    page = report.render_dive(dive_result(), frames, scorer_name="syndive-tiny-mtl")
    images = strip_images(page)
    assert [frame_index(img) for img in images] == report.pick_strip(frames).tolist()
    assert images[0].shape == (240, 320, 3)  # within FRAME_BOX: kept at its size, never enlarged


def test_encode_jpeg_fits_the_box_and_keeps_the_picture():
    frame = pattern(1234, 1280, 720)
    with av.open(io.BytesIO(report.encode_jpeg(frame))) as container:
        back = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert back.shape == (288, 512, 3)  # 16:9 shrunk into 512 x 384
    assert frame_index(back) == 1234


@pytest.mark.parametrize("width, height", [(1280, 720), (720, 1280), (172, 128)])
def test_strip_size_decodes_straight_to_the_encoded_size(tmp_path, width, height):
    frames = read_even(make_video(tmp_path / "v.mp4", 4, (width, height)), n=2,
                       size=report.strip_size(width, height), clip_len=1)
    with av.open(io.BytesIO(report.encode_jpeg(frames[0]))) as container:
        assert next(container.decode(video=0)).height == frames.shape[1]  # nothing left to resize
    assert (frames.shape[2] > frames.shape[1]) == (width > height)  # portrait stays portrait
    assert frames.shape[1] <= report.FRAME_BOX[1] and frames.shape[2] <= report.FRAME_BOX[0]


def test_page_says_how_the_score_was_reached_and_warns_about_synthetic_weights():
    page = report.render_dive(dive_result(), indexed_frames(8), scorer_name="syndive-tiny-mtl",
                              synthetic_note=NOTE, height="1m", model_card={"trained on": "SynDive 3"})
    text = re.sub(r"<[^>]+>", " ", page)
    assert "74.69" in text and "DD 2.94 &times; execution 25.4" in " ".join(text.split())
    assert "expected World Aquatics DD at 1 m springboard" in text
    assert text.count("Demo weights trained on SynDive") + text.count("demo weights trained on SynDive") >= 2
    assert 'class="warn"' in page.split("<h1>")[0]  # the caveat comes before anything else
    assert "88%" in text and "3½" in text and "SynDive 3" in text
    head_only = report.render_dive(dive_result(dd_from="table", difficulty=2.8), None, scorer_name="w")
    assert "model&rsquo;s own score estimate" in head_only or "model's own score estimate" in head_only
    assert "give the height" in head_only and "table DD of 2.8" in head_only


def test_page_escapes_every_string_from_the_result():
    evil = "<script>alert(1)</script>"
    result = dive_result(video=f"x/{evil}.mp4", commentary=evil, description=evil, dive_number=evil)
    result.kinetics_top = [(evil, 0.5)]
    page = report.render_dive(result, indexed_frames(4), scorer_name=evil, model_card={evil: evil},
                              synthetic_note=evil)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 6


def test_a_doubtful_result_says_so_on_its_page_and_in_the_index():
    result = dive_result()
    result.warning = "does not look like a dive to Kinetics I3D"  # set as the Kinetics check sets it
    assert "Check this video:</b> does not look like a dive" in report.render_dive(result, None, scorer_name="w")
    entry = report.IndexEntry.from_result(result, "p.html")
    assert "check: does not look like a dive" in report.render_index([entry])


def test_error_result_gives_a_page_with_the_error():
    page = report.render_dive(ScoreResult(video="bad.mp4", error="bad.mp4: truncated"), None, scorer_name="w")
    assert "Could not score this video" in page and "bad.mp4: truncated" in page


def test_kinetics_reading_shown_only_when_present():
    result = dive_result()
    assert "Kinetics" not in report.render_dive(result, None, scorer_name="w")
    result.looks_like_dive, result.kinetics_top = 0.91, [("springboard diving", 0.91), ("swimming", 0.04)]
    page = report.render_dive(result, None, scorer_name="w")
    assert "Kinetics-400" in page and "springboard diving" in page and "91%" in page


def test_a_96_frame_report_stays_small_even_for_noise(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (96, 720, 1280, 3), dtype=np.uint8)  # the worst case for JPEG
    path = report.write_dive_report(dive_result(), noise, tmp_path / "noise.html", scorer_name="w")
    assert path.stat().st_size < 450_000  # 8 frames × FRAME_BUDGET × 4/3 (base64) + the page
    smooth = report.write_dive_report(dive_result(), indexed_frames(96, 1280, 720), tmp_path / "smooth.html",
                                      scorer_name="w")
    assert smooth.stat().st_size < 200_000


def test_index_sorts_by_score_or_by_order():
    entries = [report.IndexEntry("a.mp4", "a.html", 50.0, "101B", "Forward Dive Pike"),
               report.IndexEntry("b.mp4", "", error="b.mp4: no video stream"),
               report.IndexEntry("c.mp4", "c.html", 80.5, "205C", "Back 2½ Somersaults Tuck"),
               {"video": "d.mp4", "page": "d.html", "final_score": 61.0, "dive_number": "305C"}]
    rows = [re.findall(r"<tr.*?</tr>", report.render_index(
        [e if isinstance(e, report.IndexEntry) else session._entry_from(e) for e in entries], sort=s))
        for s in ("score", "order")]
    by_score, by_order = ([re.search(r"(\w)\.mp4", r).group(1) for r in rs[1:]] for rs in rows)
    assert by_score == ["c", "d", "a", "b"] and by_order == ["a", "b", "c", "d"]
    assert "b.mp4: no video stream" in rows[0][-1]
    with pytest.raises(UsageError):
        report.write_index(entries, "unused.html", sort="name")


def test_histogram_is_an_svg_of_counts():
    svg = report.histogram_svg([61.2, 63.0, 64.9, 90.1])  # 2-point bins would be 15: 5-point bins
    assert svg.startswith("<svg") and svg.count("<rect") == 2  # 60-65 (3 dives), 90-95 (1)
    assert ">3</text>" in svg and ">1</text>" in svg
    assert "No dive" in report.histogram_svg([])


def videos(tmp_path: Path, count: int) -> list[Path]:
    """Stand-in video files: the folder only stats them."""
    out = []
    for k in range(count):
        path = tmp_path / "meet" / f"dive {k}.mp4"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * (k + 1))
        out.append(path)
    return out


def test_report_folder_resumes_like_the_csv(tmp_path):
    a, b = videos(tmp_path, 2)
    out = tmp_path / "report"
    settings = {"weights_sha256": "ab", "height": None, "dd": None, "clips": None}
    folder = report.ReportFolder(out, settings, scorer_name="w", synthetic_note=NOTE)
    folder.add(dive_result(str(a)), indexed_frames(8))
    folder.add(ScoreResult(video=str(b), error="broken"))
    assert folder.close() == out / "index.html"
    assert folder.is_done(a) and not folder.is_done(b)  # a failed video is tried again

    again = report.ReportFolder(out, settings, scorer_name="w")
    assert again.is_done(a) and not again.is_done(b)
    assert [e.video for e in again.entries()] == [str(a), str(b)]
    assert not report.ReportFolder(out, {**settings, "height": "3m"}, scorer_name="w").is_done(a)

    os.utime(a, ns=(0, 0))  # the video changed
    assert not report.ReportFolder(out, settings, scorer_name="w").is_done(a)
    page = again.page_for(a)
    again.add(ScoreResult(video=str(a), error="now unreadable"))
    assert not page.exists()  # no stale verdict left behind a failed rescoring
    assert "now unreadable" in (out / "index.html").read_text()


def test_page_names_are_safe_and_distinct(tmp_path):
    folder = report.ReportFolder(tmp_path, scorer_name="w")
    one, two = folder.page_for("x/dive #1?.mp4"), folder.page_for("y/dive #1?.mp4")
    assert one != two and re.fullmatch(r"dive_1-[0-9a-f]{8}\.html", one.name)


def test_report_folder_refuses_a_file(tmp_path):
    (tmp_path / "r.html").write_text("")
    with pytest.raises(UsageError):
        report.ReportFolder(tmp_path / "r.html", scorer_name="w")


# ---------------------------------------------------------------------------------------------
# In a headless browser


def find_browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


BROWSER = find_browser()
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: install Debian's chromium (apt-get install chromium; .ci/run does)")


def browse(url: str, profile: Path, *flags: str, timeout: float = 60) -> str:
    """Run headless Chromium on `url` with every network request refused; returns its stdout."""
    command = [BROWSER, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}",
               # no network: hosts resolve nowhere and any request would go to a dead proxy
               "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", *flags, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def loaded_dom(page: Path, profile: Path) -> str:
    """The DOM of `page` after it loaded, with `data-decoded` = "images decoded/images" on the body.

    A harness page beside it loads the page unchanged in an iframe and counts the images the browser
    decoded (complete with a natural width); file:// frames may be read with --allow-file-access-from-files.
    """
    harness = page.with_name(f"harness-{page.name}")
    harness.write_text(
        '<!DOCTYPE html><html><body><iframe id="f" style="width:1000px;height:3000px"></iframe><script>'
        'const f = document.getElementById("f");'
        'f.onload = () => { const d = f.contentDocument, imgs = [...d.images];'
        ' const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;'
        ' document.body.dataset.decoded = ok + "/" + imgs.length;'
        ' document.body.dataset.sizes = imgs.map(i => i.naturalWidth + "x" + i.naturalHeight).join(" ");'
        ' document.body.appendChild(document.createElement("pre")).textContent = d.documentElement.outerHTML; };'
        f'f.src = {page.name!r};</script></body></html>')
    return browse(harness.as_uri(), profile, "--allow-file-access-from-files", "--dump-dom")


def screenshot(page: Path, profile: Path, size: tuple[int, int] = (1000, 1600)) -> np.ndarray:
    """Chromium's screenshot of `page`: uint8 (H, W, 3)."""
    png = page.with_suffix(".png")
    browse(page.as_uri(), profile, f"--screenshot={png}", f"--window-size={size[0]},{size[1]}")
    with av.open(str(png)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


class Links(html.parser.HTMLParser):
    """Every src and href of a page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]


def external_urls(page: str) -> list[str]:
    parser = Links()
    parser.feed(page)
    return [u for u in parser.urls if not u.startswith("data:") and (":" in u.split("/")[0] or u.startswith("//"))]


@needs_browser
def test_report_in_a_browser(tmp_path):
    frames = indexed_frames(96, 640, 360)
    page = report.write_dive_report(dive_result(), frames, tmp_path / "dive.html", scorer_name="syndive-tiny-mtl",
                                    synthetic_note=NOTE, height="1m", duration=4.12)
    assert external_urls(page.read_text()) == []  # nothing to fetch: it opens from a USB stick
    dom = loaded_dom(page, tmp_path / "profile")
    decoded = re.search(r'data-decoded="(\d+)/(\d+)"', dom)
    assert decoded and decoded.group(1) == decoded.group(2) == "8", dom[:500]
    assert re.search(r'data-sizes="(512x288 ?){8}"', dom)
    text = html.unescape(dom)
    assert re.search(r'id="final-score">\s*74\.69\s*<', text) and re.search(r'id="dive-number">\s*107C\s*<', text)

    shot = screenshot(page, tmp_path / "profile")
    assert shot.shape == (1600, 1000, 3)
    assert shot.std() > 20  # text, bars and frames: a blank or failed page is one flat colour
    assert (shot.reshape(-1, 3) == [46, 133, 64]).all(axis=1).sum() > 1000  # the green probability bars drawn


@needs_browser
def test_browser_check_fails_on_a_broken_image(tmp_path):
    """The decoding check can fail: an image whose data is not a JPEG is not counted."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><img src="data:image/jpeg;base64,AAAAAAAA"><img src="data:image/jpeg;base64,'
                    + base64.b64encode(report.encode_jpeg(pattern(3, 64, 48))).decode() + '">')
    assert 'data-decoded="1/2"' in loaded_dom(page, tmp_path / "profile")


@needs_browser
def test_index_links_to_each_dive_page(tmp_path):
    out = tmp_path / "session"
    a, b, c = videos(tmp_path, 3)
    with report.ReportFolder(out, {"weights_sha256": "ab"}, scorer_name="w", synthetic_note=NOTE) as folder:
        folder.add(dive_result(str(a), 61.5, dive_number="205C", description="Back 2½ Somersaults Tuck"),
                   indexed_frames(16))
        folder.add(ScoreResult(video=str(b), error=f"{b}: not a media file FFmpeg can read"))
        folder.add(dive_result(str(c), 77.8), indexed_frames(16))
    dom = browse((out / "index.html").as_uri(), tmp_path / "profile", "--dump-dom")
    assert "not a media file" in dom and "2 dives scored, 1 video failed" in dom
    hrefs = re.findall(r'<a href="([^"]+)">', dom)
    assert len(hrefs) == 2  # the failed video has no page
    first = (out / unquote(hrefs[0])).resolve()
    assert first == folder.page_for(c)  # highest score first
    page_dom = browse(first.as_uri(), tmp_path / "profile", "--dump-dom")
    assert re.search(r'id="final-score">\s*77\.80\s*<', page_dom)
    assert 'href="index.html"' in page_dom  # and back
