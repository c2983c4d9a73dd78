"""The dataset root: write, read back, and clear errors for broken roots."""

import os
import stat

import numpy as np
import pytest

from aqa_cli.datasets.layout import DatasetInfo, DatasetRoot, Sample, save_frames, write_root
from aqa_cli.storage import atomic_write_bytes
from aqa_cli.errors import DataError


def _root(tmp_path):
    samples = [Sample(id=f"d{i}", final_score=50.0 + i, dive_number="107B", position=1, armstand=0,
                      rotation_type=1, ss_no=7, tw_no=0, judge_scores=[7.0] * 7, difficulty=3.0,
                      expected_score=50.5 + i, faults={"entry_angle": 3.0})
               for i in range(3)]
    write_root(tmp_path, DatasetInfo(name="t", source="test (synthetic)", synthetic=True, pad=1), samples,
               {"train": ["d0", "d1"], "test": ["d2"]})
    return samples


def test_round_trip(tmp_path):
    samples = _root(tmp_path)
    root = DatasetRoot(tmp_path)
    assert root.info.counts == {"train": 2, "val": 0, "test": 1, "total": 3}
    assert root.split("train") == samples[:2]
    assert root.split("val") == []
    assert root.split("all") == samples  # train (d0, d1), val (none), test (d2), in that order
    assert root.samples["d2"].faults == {"entry_angle": 3.0}


def test_frames_are_saved_atomically_and_memory_mapped(tmp_path):
    _root(tmp_path)
    frames = np.arange(5 * 4 * 6 * 3, dtype=np.uint8).reshape(5, 4, 6, 3)
    save_frames(tmp_path / "frames" / "d0.npy", frames)
    loaded = DatasetRoot(tmp_path).load_frames("d0")
    assert isinstance(loaded, np.memmap)
    assert np.array_equal(loaded, frames)
    assert not list((tmp_path / "frames").glob("*.tmp"))
    with pytest.raises(ValueError):
        save_frames(tmp_path / "frames" / "bad.npy", frames.astype(np.float32))


def test_broken_roots_give_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        DatasetRoot(tmp_path / "nope")
    with pytest.raises(DataError, match="no dataset.yaml"):
        DatasetRoot(tmp_path)
    _root(tmp_path)
    with pytest.raises(DataError, match="missing frames for d1"):
        DatasetRoot(tmp_path).load_frames("d1")
    (tmp_path / "splits" / "val.txt").write_text("ghost\n")
    with pytest.raises(DataError, match="not in annotations"):
        DatasetRoot(tmp_path).split("val")
    (tmp_path / "annotations.jsonl").write_text('{"id": "a"}\n{"id": "a"}\n')
    with pytest.raises(DataError, match="duplicate id"):
        DatasetRoot(tmp_path)
    (tmp_path / "annotations.jsonl").write_text('{"id": "a", "colour": 3}\n')
    with pytest.raises(DataError, match=r"annotations.jsonl:1: .*unknown fields \['colour'\]"):
        DatasetRoot(tmp_path)


@pytest.mark.parametrize("umask,mode", [(0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    """Like open(): 0666 less the umask (mkstemp alone makes every file private, 0600)."""
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == mode
