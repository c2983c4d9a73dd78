"""Rhythmic Gymnastics: the release's score files (the real ones when ../shared has them) and the root
`prepare` writes from them and a folder of stand-in videos."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.datasets.rg import APPARATUS, prepare, read_annotations, read_release, read_routines
from aqa_cli.errors import DataError, UsageError

SHARED_RG = Path(__file__).resolve().parents[2] / "shared" / "data" / "rg"
HEADER = "Video_Name\tDifficulty_Score    Execution_Score Total_Score\tPenalty\tVideo_length\n"


def real_release() -> Path:
    if not (SHARED_RG / "train.txt").is_file():
        pytest.skip(f"the RG release's score files are not at {SHARED_RG}")
    return SHARED_RG


def write_release(folder: Path, train: list[str], test: list[str]) -> Path:
    """A small release folder in the real files' format (tabs, the header's odd spacing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        (folder / f"{name}.txt").write_text(HEADER + "".join(r + "\n" for r in rows))
    return folder


def test_the_real_release_has_1000_routines_whose_total_adds_up_and_no_ball_134():
    splits = read_annotations(real_release())
    routines = splits["train"] + splits["test"]
    assert len(routines) == 1000 and len({r.id for r in routines}) == 1000
    for name, per_apparatus in (("train", 200), ("test", 50)):
        assert Counter(r.apparatus for r in splits[name]) == {a: per_apparatus for a in APPARATUS}
    ids = {r.id for r in routines}
    assert "Ball_134" not in ids and "Ball_251" in ids and "Ribbon_250" in ids
    assert all(abs(r.difficulty + r.execution - r.penalty - r.total) <= 0.011 for r in routines)
    assert sum(abs(r.difficulty + r.execution - r.penalty - r.total) > 0.001 for r in routines) == 17  # a cent off
    assert min(r.length_s for r in routines) == 87 and max(r.length_s for r in routines) == 99
    first = splits["train"][0]
    assert (first.id, first.difficulty, first.execution, first.total, first.penalty) == ("Ball_001", 10.5, 8.3, 18.8, 0.0)


def test_prepare_writes_the_root_per_apparatus_and_lists_the_missing_videos(tmp_path):
    from media import make_video

    videos = tmp_path / "videos"
    (videos / "hoop").mkdir(parents=True)
    make_video(videos / "Ball_001.mp4", 4)
    make_video(videos / "hoop" / "Hoop_250.mp4", 4)
    (videos / "Ball_134.mp4").write_bytes(b"")  # not a routine of the release: ignored
    summary = prepare(tmp_path / "rg", real_release(), videos)
    assert summary.counts == {"train": 800, "test": 200} and summary.linked == 2 and len(summary.missing) == 998
    root = DatasetRoot(tmp_path / "rg")
    assert root.info.name == "rg" and len(root.samples) == 1000 and root.split("val") == []
    assert len(root.split("train")) == 800 and [len(root.split(f"Ribbon/{s}")) for s in ("train", "test")] == [200, 50]
    assert {s.id.split("_")[0] for s in root.split("Clubs/test")} == {"Clubs"}
    assert root.samples["Ball_001"].final_score == 18.8 and root.samples["Ball_001"].video == "Ball_001.mp4"
    assert (root.root / "videos" / "Hoop_250.mp4").resolve() == (videos / "hoop" / "Hoop_250.mp4").resolve()
    assert root.samples["Ball_002"].video == "" and "Ball_002" in (root.root / "missing.txt").read_text().split()
    assert read_routines(root.root)["Ball_002"].penalty == 0.6
    again = prepare(tmp_path / "rg", real_release())  # no --from: the links made before are kept
    assert again.linked == 2 and DatasetRoot(tmp_path / "rg").samples["Hoop_250"].video == "Hoop_250.mp4"


def test_prepare_refuses_another_dataset_root(tmp_path):
    from trainroot import make_root

    make_root(tmp_path / "dives", n=4, splits=(2, 1, 1))
    with pytest.raises(UsageError, match="trainroot"):
        prepare(tmp_path / "dives", real_release())


@pytest.mark.parametrize("row, message", [
    ("Ball_001\t10.50\t8.30\t18.90\t0.00\t92", "not Difficulty"),
    ("Ball_001\t10.50\t8.30\t18.80\t0.00", "expected 6 fields"),
    ("Rope_001\t10.50\t8.30\t18.80\t0.00\t92", "unknown apparatus"),
    ("Ball_001\t10.50\tabc\t18.80\t0.00\t92", "expected numbers"),
])
def test_a_wrong_row_is_refused_with_its_line(tmp_path, row, message):
    folder = write_release(tmp_path / "release", ["Ball_002\t7.20\t4.20\t10.80\t0.60\t93", row], [])
    with pytest.raises(DataError, match=f"train.txt:3: .*{message}"):
        read_release(folder / "train.txt")


def test_a_wrong_header_or_a_routine_in_both_files_is_refused(tmp_path):
    row = "Ball_002\t7.20\t4.20\t10.80\t0.60\t93"
    folder = write_release(tmp_path / "release", [row], [row])
    with pytest.raises(DataError, match="both train.txt and test.txt"):
        read_annotations(folder)
    (folder / "test.txt").write_text("name d e t p l\n")
    with pytest.raises(DataError, match="test.txt:1: expected the header"):
        read_annotations(folder)
