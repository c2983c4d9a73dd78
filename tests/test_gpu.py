"""CUDA paths (bf16 autocast in training and scoring). Marked `gpu`; skipped on machines without CUDA,
which includes CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aqa_cli.checkpoint import Checkpoint
from aqa_cli.config import load_config
from aqa_cli.scoring import load_model
from aqa_cli.train import train
from trainroot import SMALL, make_root

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "syndive_107C_1m.mp4"


def test_training_on_cuda_lowers_the_loss_and_its_checkpoint_runs_on_cpu(tmp_path):
    root = make_root(tmp_path / "root")
    cfg = load_config("smoke", [f"data.root={root}", *SMALL, "train.limit_batches=0", "train.epochs=4"])
    report = train(cfg, tmp_path / "run", device="cuda", quiet=True)
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert report["test"]["score"]["n"] == 2
    model = Checkpoint.load(tmp_path / "run" / "best.pt").build_model()
    assert next(model.parameters()).device.type == "cpu"
    crop = cfg.model.crop_size
    with torch.no_grad():
        out = model.predict(torch.zeros(1, cfg.data.clips, 3, cfg.model.clip_len, crop, crop))
    assert torch.isfinite(out["score"]).all()


def test_scoring_on_cuda_agrees_with_cpu():
    cpu = load_model(device="cpu").score(EXAMPLE)
    gpu = load_model(device="cuda").score(EXAMPLE)
    assert cpu.error is None and gpu.error is None
    # bf16 autocast on CUDA, fp32 on CPU: the same dive, scores within a point.
    assert gpu.dive_number == cpu.dive_number and gpu.position == cpu.position
    assert abs(gpu.final_score - cpu.final_score) < 1.0
