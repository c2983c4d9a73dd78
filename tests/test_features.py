"""Segment features: the sampling convention, the folder's index and arrays, resume, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from trainroot import make_root

from aqa_cli.datasets.features import FeatureFolder, FeatureIndex, segment_starts
from aqa_cli.errors import DataError, UsageError
from aqa_cli.features import extract
from aqa_cli.transforms import i3d_input


class MeanBackbone(torch.nn.Module):
    """A stand-in backbone: each clip's mean colour per frame, flattened (B, 3 * clip_len); counts calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def features(self, x):
        self.calls += x.shape[0]
        return x.mean(dim=(3, 4)).flatten(1)


def test_segment_starts_follow_core_on_the_dive_window_and_stride_covers_a_routine():
    assert segment_starts(103, 16, segments=10) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 87]
    assert segment_starts(96, 32, stride=32) == [0, 32, 64]
    assert segment_starts(100, 32, stride=32) == [0, 32, 64]  # the 4 frames after the last clip are left out
    assert segment_starts(16, 16, segments=4) == [0, 0, 0, 0]
    with pytest.raises(ValueError):
        segment_starts(10, 16, segments=10)


def test_backbone_input_resizes_the_short_side_crops_the_centre_and_scales_to_plus_minus_one():
    frames = np.zeros((4, 64, 128, 3), np.uint8)
    frames[:, :, 60:68] = 255  # a white bar at the centre column
    x = i3d_input(frames, size=56)
    assert x.shape == (3, 4, 56, 56)
    assert float(x.min()) == -1.0 and float(x.max()) == pytest.approx(1.0, abs=1e-6)
    # short side 64 → 64 (56·256/224), width 128 → 128; the centre 56 columns hold the bar at 24..32
    assert float(x[0, 0, 28, 28]) == pytest.approx(1.0, abs=1e-3) and float(x[0, 0, 28, 5]) == -1.0


def test_extract_writes_one_float16_array_per_sample_and_an_index(tmp_path):
    root = make_root(tmp_path / "root", n=6, splits=(4, 1, 1))
    index = FeatureIndex(backbone="mean", weights_sha256="0" * 64, clip_len=16, segments=10, size=16, dim=48)
    model = MeanBackbone()
    summary = extract(root, tmp_path / "feats", model, index, device="cpu", batch=4)
    assert (summary.written, summary.skipped) == (6, 0)
    arrays = sorted(p.name for p in (tmp_path / "feats").glob("*.npy"))
    assert arrays == [f"d{i}.npy" for i in range(6)]
    a = np.load(tmp_path / "feats" / "d5.npy")
    assert a.dtype == np.float16 and a.shape == (10, 48)
    saved = json.loads((tmp_path / "feats" / "index.json").read_text())
    assert saved["backbone"] == "mean" and saved["segments"] == 10 and saved["data"]["name"] == "trainroot"
    # the brighter (better) dive has the larger mean colour: features follow the frames
    assert a.mean() > np.load(tmp_path / "feats" / "d0.npy").mean()
    folder = FeatureFolder(tmp_path / "feats")
    assert folder.load("d5").dtype == np.float32
    with pytest.raises(DataError):
        folder.load("nope")


def test_extract_resumes_and_refuses_other_settings(tmp_path):
    root = make_root(tmp_path / "root", n=6, splits=(4, 1, 1))
    index = FeatureIndex(backbone="mean", weights_sha256="0" * 64, clip_len=16, segments=10, size=16, dim=48)
    extract(root, tmp_path / "feats", MeanBackbone(), index, device="cpu")
    (tmp_path / "feats" / "d2.npy").unlink()  # as if interrupted before this sample
    model = MeanBackbone()
    summary = extract(root, tmp_path / "feats", model, index, device="cpu")
    assert (summary.written, summary.skipped) == (1, 5) and model.calls == 10
    other = FeatureIndex(backbone="mean", weights_sha256="1" * 64, clip_len=16, segments=10, size=16, dim=48)
    with pytest.raises(UsageError, match="weights_sha256"):
        extract(root, tmp_path / "feats", MeanBackbone(), other, device="cpu")
    stride = FeatureIndex(backbone="mean", weights_sha256="0" * 64, clip_len=16, stride=16, size=16, dim=48)
    summary = extract(root, tmp_path / "routine", MeanBackbone(), stride, device="cpu")
    assert np.load(tmp_path / "routine" / "d0.npy").shape == (6, 48)  # 107 frames (103 + 2 pads) → 6 clips
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="no index.json"):
        extract(root, tmp_path / "junk", MeanBackbone(), index, device="cpu")


def test_extract_under_torchrun_with_two_cpu_processes_equals_one_process(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = make_root(tmp_path / "root", n=7, splits=(5, 1, 1))
    index = FeatureIndex(backbone="mean", weights_sha256="0" * 64, clip_len=16, segments=10, size=16, dim=48)
    extract(root, tmp_path / "single", MeanBackbone(), index, device="cpu", batch=4)
    extract(root, tmp_path / "two", MeanBackbone(), index, device="cpu", batch=4)
    (tmp_path / "two" / "d3.npy").unlink()  # an earlier run stopped: only what is missing is extracted
    (tmp_path / "two" / "d6.npy").unlink()
    script = tmp_path / "run.py"
    script.write_text(f"""import os
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_features import MeanBackbone
from aqa_cli.datasets.features import FeatureIndex
from aqa_cli.features import extract
index = FeatureIndex(backbone="mean", weights_sha256="0" * 64, clip_len=16, segments=10, size=16, dim=48)
model = MeanBackbone()
s = extract({str(root)!r}, {str(tmp_path / "two")!r}, model, index, device="cpu", batch=4)
rank = os.environ["RANK"]  # a file each: the two processes' stdout lines may interleave
open({str(tmp_path)!r} + f"/summary-{{rank}}.txt", "w").write(f"{{s.written}} {{s.skipped}} {{model.calls // 10}}")
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AQA_RANK_TIMEOUT": "60"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(script)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    # every rank knows the job (2 written, 5 found done); each extracted one of the two missing samples
    assert [(tmp_path / f"summary-{r}.txt").read_text() for r in (0, 1)] == ["2 5 1", "2 5 1"], run.stderr
    single, two = sorted((tmp_path / "single").iterdir()), sorted((tmp_path / "two").iterdir())
    assert [p.name for p in two] == [p.name for p in single]  # no status files left behind
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(single, two))
