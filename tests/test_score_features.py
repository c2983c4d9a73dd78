"""`aqa score` with a model on segment features (`aqa train --task regress|s4aqa`): the video's clips go
through the backbone its features came from (checked by sha256), and the result holds a score only."""

from __future__ import annotations

import math

import pytest
import torch
from media import make_video
from test_features import MeanBackbone
from test_s4aqa import tiny_config
from test_score import score
from trainroot import make_root

from aqa_cli import weights
from aqa_cli.datasets.features import FeatureIndex
from aqa_cli.errors import WeightsError
from aqa_cli.features import extract
from aqa_cli.scoring import load_model
from aqa_cli.semi import train_semi


def train_on_stand_in_features(tmp_path, monkeypatch, task: str = "regress", **semi):
    """A `task` model trained on MeanBackbone features of a tiny root, the backbone standing in for the
    imported I3D (a file whose sha256 the features' index names, returned by `weights.load_i3d` from now
    on): (checkpoint, backbone file, training report)."""
    torch.manual_seed(0)
    backbone_file = tmp_path / "i3d-stand-in.pt"
    backbone_file.write_bytes(b"a stand-in for the imported I3D")
    root = make_root(tmp_path / "root", n=20, splits=(12, 4, 4))
    index = FeatureIndex(backbone="i3d", weights_sha256=weights.file_sha256(backbone_file), clip_len=16,
                         segments=10, size=16, dim=48)
    extract(root, tmp_path / "feats", MeanBackbone(), index, device="cpu", batch=4)
    report = train_semi(tiny_config(root, str(tmp_path / "feats"), **semi), tmp_path / "run", task)
    monkeypatch.setattr(weights, "load_i3d", lambda path=None: (MeanBackbone(), backbone_file))
    return tmp_path / "run" / "best.pt", backbone_file, report


@pytest.fixture
def features_run(tmp_path, monkeypatch):
    return train_on_stand_in_features(tmp_path, monkeypatch)


def test_a_features_model_scores_a_video_through_its_backbone(tmp_path, features_run):
    ckpt, _, _ = features_run
    clip = make_video(tmp_path / "dive.mp4", 40)
    scorer = load_model(ckpt, device="cpu", dive_check=False, locate=False)
    first, again = scorer.score(clip), scorer.score(clip)
    assert math.isfinite(first.final_score) and first.final_score == again.final_score
    assert (first.execution, first.dive_number, first.commentary, first.score_source) == (None, None, None, "score head")
    # what the model reads: 10 segments of the 48-wide stand-in features, one batch per 8 clips
    batches = scorer.features.prepare(clip)
    assert [tuple(b.shape) for b in batches] == [(8, 3, 16, 16, 16), (2, 3, 16, 16, 16)]
    x, lengths = scorer.features(batches)
    assert tuple(x.shape) == (1, 10, 48) and lengths.tolist() == [10]
    code, out, err, _ = score(str(clip), "--no-locate", "--no-dive-check", "-f", "csv", ckpt=str(ckpt))
    assert code == 0, err
    assert out.splitlines()[1].split(",")[1] == f"{first.final_score:.2f}"
    assert scorer.framer is None and first.zoom is None  # whole frames go to the I3D: nothing is cropped
    with pytest.raises(WeightsError, match="framer crops only"):
        load_model(ckpt, device="cpu", dive_check=False, locate=False, reframe=True)


def test_a_features_model_refuses_another_backbone_in_one_line(tmp_path, features_run, monkeypatch):
    ckpt, _, _ = features_run
    other = tmp_path / "other.pt"
    other.write_bytes(b"other weights")
    monkeypatch.setattr(weights, "load_i3d", lambda path=None: (MeanBackbone(), other))
    with pytest.raises(WeightsError, match="reads features of the I3D weights with sha256") as info:
        load_model(ckpt, device="cpu", dive_check=False, locate=False)
    assert "\n" not in str(info.value)
