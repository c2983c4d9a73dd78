"""MTL-AQA adapter: the release as shipped → the common dataset root; xlsx reading; the val carve;
preprocessing synthetic broadcast videos into frame-exact windows."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from media import frame_index, make_video

from aqa_cli.datasets import layout
from aqa_cli.datasets.mtl_aqa import adapter as mtl_aqa
from aqa_cli.datasets.mtl_aqa import cut
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.datasets.summary import summarize
from aqa_cli.datasets.mtl_aqa.xlsx import column_index, read_xlsx
from aqa_cli.errors import DataError, UsageError

SHARED_MTL_AQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtl-aqa"


@pytest.fixture(scope="module")
def release():
    if not SHARED_MTL_AQA.is_dir():
        pytest.skip(f"shared MTL-AQA release not found at {SHARED_MTL_AQA}")
    return mtl_aqa.load_release(SHARED_MTL_AQA)


def test_release_as_shipped(release):
    assert len(release.annotations) == 1412
    assert (len(release.train), len(release.test)) == (1059, 353)
    assert not set(release.train) & set(release.test)
    assert release.derived == "derived/final_annotations_dict_with_dive_number.pkl"
    assert sorted(release.videos) == [1, 2, 3, 4, 5, 6, 7, 9, 10, 13, 14, 17, 18, 22, 26]
    assert release.videos[1] == "https://www.youtube.com/watch?v=cYkUl8MrXgA"
    assert release.vocab_size == 5781
    assert release.notes == ["4 captions have no annotated dive (ignored)"]


def test_samples_use_0_based_frames_and_keep_every_label(release):
    samples = {s.id: s for s in mtl_aqa.to_samples(release)}
    first = samples["01_001"]  # release: start 7377, end 7462 (1-based JPEG numbers)
    assert (first.video, first.start_frame, first.end_frame) == ("01.mp4", 7376, 7461)
    assert (first.dive_number, first.difficulty, first.final_score) == ("407C", 3.2, 88.0)
    assert first.judge_scores == [9.5, 9.0, 9.5, 9.0, 8.5, 9.5, 8.5]
    assert (first.position, first.armstand, first.rotation_type, first.ss_no, first.tw_no) == (2, 0, 2, 7, 0)
    assert first.commentary.startswith("and a half somersault over the three point two")
    assert "<sos>" not in first.commentary and "<eos>" not in first.commentary
    assert all(len(s.judge_scores) == 7 for s in samples.values())
    assert {s.height for s in samples.values()} == {"3m", "10m"}
    assert samples["01_001"].height == "10m" and samples["17_001"].height == "3m"


def test_official_dict_alone_still_works(tmp_path, release):
    """Without derived/, the dive number comes from the labels and there are no judges' marks."""
    for name in (mtl_aqa.ANNOTATIONS, mtl_aqa.TRAIN_SPLIT, mtl_aqa.TEST_SPLIT):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((SHARED_MTL_AQA / name).read_bytes())
    plain = mtl_aqa.load_release(tmp_path)
    assert plain.derived == "" and plain.captions == {} and plain.videos == {}
    samples = {s.id: s for s in mtl_aqa.to_samples(plain)}
    assert samples["01_001"].dive_number == "407C" and samples["01_001"].judge_scores == []


def test_write_annotations_then_carve_val(tmp_path, release):
    mtl_aqa.write_annotations(tmp_path, release)
    root = DatasetRoot(tmp_path)
    assert root.info.counts == {"train": 1059, "val": 0, "test": 353, "total": 1412}
    assert (root.info.frames, root.info.pad) == (103, 3)
    mtl_aqa.write_annotations(tmp_path, release, val_fraction=0.1)
    root = DatasetRoot(tmp_path)
    assert root.info.counts == {"train": 953, "val": 106, "test": 353, "total": 1412}
    official_test = [mtl_aqa.sample_id(k) for k in release.test]
    assert [s.id for s in root.split("test")] == official_test
    train, val = {s.id for s in root.split("train")}, {s.id for s in root.split("val")}
    assert train | val == {mtl_aqa.sample_id(k) for k in release.train} and not train & val
    assert mtl_aqa.carve_val(sorted(train | val)) == mtl_aqa.carve_val(sorted(train | val))  # fixed seed


def test_not_a_release(tmp_path):
    with pytest.raises(DataError, match="not an MTL-AQA release"):
        mtl_aqa.load_release(tmp_path)


def _xlsx(path: Path, sheet_xml: str, strings: list[str]) -> Path:
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", f'<workbook {ns} {rel_ns}><sheets><sheet name="Dives" sheetId="1" r:id="rId7"/>'
                                      "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId7" Target="worksheets/data.xml" Type="worksheet"/></Relationships>')
        z.writestr("xl/sharedStrings.xml", f"<sst {ns}>" + "".join(f"<si><t>{s}</t></si>" for s in strings)
                   + "<si><r><t>rich </t></r><r><t>text</t></r></si></sst>")
        z.writestr("xl/worksheets/data.xml", f"<worksheet {ns}><sheetData>{sheet_xml}</sheetData></worksheet>")
    return path


def test_xlsx_cells(tmp_path):
    sheet = ('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>2</v></c></row>'
             '<row r="3"><c r="B3"><v>7.5</v></c><c r="AA3" t="inlineStr"><is><t>inline</t></is></c>'
             '<c r="D3" t="b"><v>1</v></c></row>')
    rows = read_xlsx(_xlsx(tmp_path / "t.xlsx", sheet, ["head", "unused"]), sheet="Dives")
    assert rows[0] == ["head", None, "rich text"]
    assert rows[1] == []
    assert rows[2][1] == 7.5 and rows[2][3] is True and rows[2][26] == "inline"
    assert column_index("A") == 0 and column_index("AA") == 26


def test_xlsx_errors(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a zip")
    with pytest.raises(DataError, match=r"bad\.xlsx: not a readable \.xlsx"):
        read_xlsx(bad)
    with pytest.raises(DataError, match="not found"):
        read_xlsx(tmp_path / "missing.xlsx")
    with pytest.raises(DataError, match="no sheet named"):
        read_xlsx(_xlsx(tmp_path / "t.xlsx", "", []), sheet="Other")


def test_raw_annotation_sheet_has_the_judges_marks():
    sheet = SHARED_MTL_AQA / "Raw_Annotations" / "01.xlsx"
    if not sheet.is_file():
        pytest.skip(f"shared MTL-AQA release not found at {SHARED_MTL_AQA}")
    rows = read_xlsx(sheet)
    assert rows[0][:4] == ["sr. no", "view", "start frame", "end frame"]
    # Dive 1 of video 1: the same frames and marks as the annotation dict (1-based frame numbers).
    assert rows[1][:4] == [1.0, "s", 7377.0, 7462.0]
    assert rows[1][11:] == [88.0, 9.5, 9.0, 9.5, 9.0, 8.5, 9.5, 8.5]


# ---------------------------------------------------------------------------------------------
# Preprocessing on synthetic "broadcast" videos whose every frame shows its own index (media.py).

SIZE = (32, 32)  # stored frame size: the smallest allowed, still large enough for frame_index
# (video, dive) → 1-based end frame, as the release writes them. Video 1 has 400 frames, video 3 has
# 200, video 2 is missing. (1, 4) ends too late for its window's padding, (3, 2) too early.
DIVES = {(1, 1): 120, (1, 2): 250, (1, 3): 380, (1, 4): 399, (2, 1): 150, (3, 1): 160, (3, 2): 60}
TRAIN, TEST = [(1, 1), (1, 3), (2, 1), (3, 1)], [(1, 2), (1, 4), (3, 2)]


def _broadcast_root(root: Path) -> Path:
    """A dataset root holding a synthetic release in the MTL-AQA schema and two source videos."""
    rel = root / mtl_aqa.RELEASE_DIR
    (rel / mtl_aqa.SPLIT_DIR).mkdir(parents=True)
    annotations = {key: {"primary_view": 0, "start_frame": end - 60, "end_frame": end, "position": 1,
                         "difficulty": 3.0, "armstand": 0, "rotation_type": 1, "ss_no": 7, "tw_no": 0,
                         "final_score": 60.0, "judge_scores": np.array([7.0, 6.5, 7.0, 6.0, 7.0, 7.5, 6.5])}
                   for key, end in DIVES.items()}
    captions = {(np.int64(k[0]), k[1]): ["<sos>", "synthetic", "dive", "<eos>"] for k in DIVES}
    for name, obj in ((mtl_aqa.ANNOTATIONS, annotations), (mtl_aqa.CAPTIONS, captions),
                      (mtl_aqa.TRAIN_SPLIT, TRAIN), (mtl_aqa.TEST_SPLIT, TEST)):
        (rel / name).write_bytes(pickle.dumps(obj, protocol=3))
    (root / "videos").mkdir()
    make_video(root / "videos" / "01.mp4", 400, size=(64, 48))
    make_video(root / "videos" / "03.mkv", 200, size=(64, 48))
    return root


@pytest.fixture
def broadcast(tmp_path):
    return _broadcast_root(tmp_path / "root")


def _check_frames(root: Path, sample: str, end_1based: int) -> None:
    frames = np.load(root / "frames" / f"{sample}.npy", mmap_mode="r")
    assert frames.shape == (mtl_aqa.WINDOW + 2 * mtl_aqa.PAD, SIZE[1], SIZE[0], 3)
    first = end_1based - 1 - (mtl_aqa.WINDOW - 1) - mtl_aqa.PAD  # 0-based
    assert [frame_index(f) for f in frames] == list(range(first, first + len(frames)))
    # The unpadded window is the release's: JPEGs end-102 .. end (1-based) = decoded end-103 .. end-1.
    window = frames[mtl_aqa.PAD: mtl_aqa.PAD + mtl_aqa.WINDOW]
    assert frame_index(window[0]) == end_1based - 103 and frame_index(window[-1]) == end_1based - 1


def test_preprocess_cuts_frame_exact_windows(broadcast):
    report = cut.preprocess(broadcast, size=SIZE, val_fraction=0.5)
    assert sorted(report.written) == ["01_001", "01_002", "01_003", "03_001"]
    assert sorted(report.failed) == ["01_004", "03_002"]
    assert "before the video" in report.failed["03_002"]
    assert report.missing_videos == {2: 1}
    assert report.fps == {1: pytest.approx(25.0), 3: pytest.approx(25.0)}
    for key in [(1, 1), (1, 2), (1, 3), (3, 1)]:
        _check_frames(broadcast, mtl_aqa.sample_id(key), DIVES[key])
    root = layout.DatasetRoot(broadcast)
    assert root.info.counts == {"train": 2, "val": 2, "test": 3, "total": 7}
    assert [s.id for s in root.split("test")] == ["01_002", "01_004", "03_002"]
    assert (root.info.pad, root.info.width, root.info.height, root.info.fps) == (3, *SIZE, 25.0)
    assert root.samples["03_001"].video == "03.mkv"
    again = cut.preprocess(broadcast, size=SIZE, val_fraction=0.5)
    assert again.written == [] and sorted(again.skipped) == sorted(report.written)


def test_interrupted_preprocess_rerun_leaves_no_corrupt_file(broadcast, monkeypatch):
    real_save = layout.save_frames
    calls = []

    def save_then_die(path, frames):
        calls.append(path)
        if len(calls) == 2:  # the second dive: killed mid-write, leaving the temporary file behind
            (Path(path).parent / f".{Path(path).name}.abc123.tmp").write_bytes(b"half a file")
            raise KeyboardInterrupt
        real_save(path, frames)

    monkeypatch.setattr(layout, "save_frames", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        cut.preprocess(broadcast, size=SIZE)
    assert not (broadcast / "dataset.yaml").exists()  # written only by a run that tried every video
    monkeypatch.setattr(layout, "save_frames", real_save)
    # A frames file truncated by something else (a copy cut short) must be redone, not trusted.
    good = np.load(broadcast / "frames" / "01_001.npy")
    (broadcast / "frames" / "01_003.npy").write_bytes((broadcast / "frames" / "01_001.npy").read_bytes()[:5000])
    report = cut.preprocess(broadcast, size=SIZE)
    assert report.skipped == ["01_001"] and sorted(report.written) == ["01_002", "01_003", "03_001"]
    assert not list((broadcast / "frames").glob(".*"))
    np.testing.assert_array_equal(np.load(broadcast / "frames" / "01_001.npy"), good)
    frames = summarize(broadcast)["frames"]
    assert (frames["present"], frames["corrupt"], frames["missing"]) == (4, 0, 3)


def test_preprocess_cli_with_workers_reports_missing_video(broadcast):
    out = subprocess.run([sys.executable, "-m", "aqa_cli", "data", "preprocess", "mtl-aqa", "--root", str(broadcast),
                          "--workers", "2", "--size", "32x32"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 1  # a video is missing and two dives cannot be cut: not a silent success
    assert "missing source videos" in out.stderr and "02 (1 dives)" in out.stderr
    assert "4 dives cut, 0 already done, 2 failed, 1 without a video" in out.stderr
    assert out.stdout == ""
    _check_frames(broadcast, "03_001", DIVES[(3, 1)])
    bad = subprocess.run([sys.executable, "-m", "aqa_cli", "data", "preprocess", "mtl-aqa", "--root", str(broadcast),
                          "--size", "big"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "WIDTHxHEIGHT" in bad.stderr


def test_unreadable_video_fails_its_dives_and_the_rest_goes_on(broadcast):
    (broadcast / "videos" / "02.mp4").write_bytes(os.urandom(4096))  # a download that is not a video
    report = cut.preprocess(broadcast, size=SIZE)
    assert "02.mp4" in report.failed["02_001"] and "\n" not in report.failed["02_001"]
    assert sorted(report.written) == ["01_001", "01_002", "01_003", "03_001"]
    assert report.missing_videos == {} and 2 not in report.fps
    assert layout.DatasetRoot(broadcast).info.fps == 25.0


def test_frame_size_is_bounded_before_anything_is_written(broadcast):
    cut.preprocess(broadcast, size=SIZE)
    before = (broadcast / "dataset.yaml").read_bytes()
    for size in [(20000, 20000), (31, 32), (1921, 1080), (1920, 1081)]:
        with pytest.raises(UsageError, match="width 32-1920 and height 32-1080"):
            cut.preprocess(broadcast, size=size)
    assert (broadcast / "dataset.yaml").read_bytes() == before
    assert summarize(broadcast)["frames"]["corrupt"] == 0


def test_a_new_size_is_announced_before_the_recut(broadcast):
    from rich.console import Console

    def run(size):
        out = io.StringIO()
        cut.preprocess(broadcast, size=size, console=Console(file=out, width=300))
        return out.getvalue()

    assert "every dive again" not in run(SIZE)
    assert "every dive again" not in run(SIZE)
    said = run((48, 32))
    assert "are 32x32: cutting every dive again at 48x32" in said and said.count("every dive again") == 1
    assert layout.DatasetRoot(broadcast).info.width == 48


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_moves_per_dive(broadcast, monkeypatch, workers):
    steps = []

    class Recorder:
        def __init__(self, console, total):
            steps.append(("total", total))

        def __enter__(self):
            return steps.append

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(cut, "_dive_progress", Recorder)
    report = cut.preprocess(broadcast, size=SIZE, workers=workers)
    assert steps[0] == ("total", 6)
    moves = [n for n in steps[1:] if n]
    assert sum(moves) == 6 and len(report.written) == 4
    if workers == 1:  # in this process every written dive moves the bar on its own
        assert moves.count(1) >= 4
