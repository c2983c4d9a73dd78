"""Checkpoints: one self-describing dict, saved atomically, loaded safely.

A checkpoint is a plain dict written with `torch.save` and read with `torch.load(weights_only=True)`:

    format_version  int (CHECKPOINT_FORMAT)
    model           state dict
    model_config    dict of ModelConfig (the model is rebuilt from it alone)
    preprocess      {"frames", "clips", "clip_len", "resize": [w, h], "crop", "mean", "std"}
    vocab           list of words (text.Vocabulary.words); [] for models without a captioner
    label_maps      {"position": ["free", "pike", "tuck"], ...} class names per head
    train_config    dict of RunConfig (how it was trained)
    metrics         {"val": {...}, "test": {...}} as measured at save time
    data            {"name", "source", "synthetic": bool, ...}: what it was trained on
    source_revision git commit of aqa that trained it ("" when unknown)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from aqa_cli.datasets.layout import atomic_write_bytes
from aqa_cli.errors import WeightsError

CHECKPOINT_FORMAT = 1
REQUIRED_KEYS = ("format_version", "model", "model_config", "preprocess")


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Write `checkpoint` to `path` atomically (temporary file in the same folder, then rename)."""
    import torch

    checkpoint = {"format_version": CHECKPOINT_FORMAT, **checkpoint}
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (no arbitrary code), checking that it is an aqa checkpoint."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable aqa checkpoint ({first[:200]})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise WeightsError(f"{path}: not an aqa checkpoint (missing {', '.join(REQUIRED_KEYS)})")
    if ckpt["format_version"] > CHECKPOINT_FORMAT:
        raise WeightsError(f"{path}: checkpoint format {ckpt['format_version']} is newer than this aqa "
                           f"understands ({CHECKPOINT_FORMAT})", hint="upgrade aqa")
    return ckpt


def model_from_checkpoint(checkpoint: dict[str, Any]):
    """Rebuild the model from `checkpoint["model_config"]` and load its weights (eval mode, CPU)."""
    from aqa_cli.config import ModelConfig, from_dict
    from aqa_cli.models import build_model

    cfg = from_dict(ModelConfig, checkpoint["model_config"], where="checkpoint model_config")
    model = build_model(cfg)
    missing, unexpected = model.load_state_dict(checkpoint["model"], strict=False)
    if missing or unexpected:
        raise WeightsError(f"checkpoint does not fit its own model config: missing {list(missing)[:5]}, "
                           f"unexpected {list(unexpected)[:5]}")
    return model.eval()
