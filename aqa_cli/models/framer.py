"""The framer network: where a replay camera would point in one frame, and how tight.

The AQA models learned one framing of the diver (SynDive's replay camera follows the body and zooms so
a straight diver fills about 70 % of the picture height). Filmed wider (a fixed camera at the side of
the pool, a phone at the back of the stands) the diver is small and the models read another dive. This
network reads a single frame and regresses the box that camera would have shown: its centre and its
height as fractions of the frame, the box having the frame's aspect ratio.

    frame float (B, 3, 72, 96)   RGB /255 - 0.5, the whole picture resized (aspect not kept)
      --conv 3→16→32→64→64 (3x3, stride 2; BatchNorm, ReLU)--> (B, 64, 5, 6)
      --flatten--> (B, 1920) --fc, ReLU--> (B, hidden) --fc--> (B, 3)
      (cx, cy, log s): box centre (x / width, y / height) and log of its height / frame height

Why per frame and spatial to the end: the box is *where* the diver is, which global pooling would
throw away; and a fixed wide camera has the diver travel across the picture, so each frame has its own
box (the caller smooths them in time). About 0.26 M parameters, 8 MFLOP a frame.

ModelConfig (backbone "framer"): `crop_size` is the input height (the width is 4/3 of it),
`feature_dim` the hidden width.
"""

from __future__ import annotations

import torch
from torch import nn

from aqa_cli.config import ModelConfig
from aqa_cli.errors import ConfigError

BACKBONE = "framer"
WIDTHS = (16, 32, 64, 64)


def framer_config(height: int = 72, hidden: int = 128) -> ModelConfig:
    """The ModelConfig of a framer network (input `height` px, 4/3 as wide; `hidden` fc width)."""
    return ModelConfig(backbone=BACKBONE, task=BACKBONE, clip_len=1, crop_size=height, feature_dim=hidden,
                       dropout=0.0, classes={}, execution=False, caption=False)


def input_size(cfg: ModelConfig) -> tuple[int, int]:
    """(width, height) of the frames the network reads."""
    return cfg.crop_size * 4 // 3, cfg.crop_size


class FramerNet(nn.Module):
    """One frame → the replay camera's box (see the module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.backbone != BACKBONE:
            raise ConfigError(f"not a framer network config (backbone {cfg.backbone!r})")
        if cfg.crop_size < 32:
            raise ConfigError(f"framer input too small: {cfg.crop_size} px high (at least 32)")
        layers, cin = [], 3
        for cout in WIDTHS:
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        w, h = input_size(cfg)
        for _ in WIDTHS:  # each stride-2 conv with padding 1: n → ceil(n / 2)
            w, h = (w + 1) // 2, (h + 1) // 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * w * h, cfg.feature_dim), nn.ReLU(inplace=True),
                                  nn.Linear(cfg.feature_dim, 3))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames float (B, 3, H, W) at the configured size → (B, 3): cx, cy, log s."""
        if frames.dim() != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames (B, 3, H, W), got {tuple(frames.shape)}")
        return self.head(self.features(frames))
