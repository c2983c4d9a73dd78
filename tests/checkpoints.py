"""Tiny random-init aqa checkpoints for scoring tests (built on the fly, never shipped).

`make_checkpoint(path)` builds a small C3D multitask model (widths ÷8, 32×32 crops, 2 clips of 16
frames) and saves it as a `Checkpoint` with every field filled in (see aqa_cli/checkpoint.py).
Its predictions are meaningless: tests check plumbing and formats, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import torch

from aqa_cli.checkpoint import Checkpoint, Preprocess
from aqa_cli.config import ModelConfig
from aqa_cli.models import build_model
from aqa_cli.rules import LABEL_NAMES
from aqa_cli.text import Vocabulary

VOCAB = Vocabulary.build(["a forward two and a half somersaults in the pike position",
                          "good entry with little splash"])


def make_checkpoint(path: str | Path, *, synthetic: bool = True, seed: int = 0, **data) -> Path:
    """Save a tiny random-init MTL checkpoint at `path` and return the path."""
    torch.manual_seed(seed)
    cfg = ModelConfig(backbone="c3d", task="mtl", width_divisor=8, feature_dim=32, crop_size=32, dropout=0.0,
                      caption_hidden=16, caption_embed=16, caption_layers=1, caption_max_len=8,
                      vocab_size=len(VOCAB))
    Checkpoint(
        model=build_model(cfg).state_dict(), model_config=cfg,
        preprocess=Preprocess(frames=32, clips=2, clip_len=16, resize=(48, 36), crop=32,
                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
        vocab=VOCAB.words, label_maps=LABEL_NAMES, metrics={"test": {"spearman": 0.5}},
        data={"name": "SynDive v1 (test)" if synthetic else "real", "synthetic": synthetic, **data},
    ).save(path)
    return Path(path)
