"""Models: C3D-AVG and MSCADC backbones, task heads, the S2VT captioner, assembled from a ModelConfig.

    from aqa_cli.models import build_model
    model = build_model(ModelConfig(backbone="c3d", task="mtl", vocab_size=500))
    out = model(clips)            # clips float (B, N, 3, T, H, W) → {"score": (B,), ...}
"""

from __future__ import annotations

from aqa_cli.models.aqa import AQAModel, build_model
from aqa_cli.models.c3d import load_backbone_weights, save_backbone_weights

__all__ = ["AQAModel", "build_model", "load_backbone_weights", "save_backbone_weights"]
