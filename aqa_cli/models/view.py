"""The view network: which side of the picture the board is on, and how high the dive starts.

It reads the clips the Scorer already prepared for the AQA model (any clip count, length and crop),
resamples them to a small fixed grid and runs three strided 3D convolutions; two linear heads share
one feature:

    clips float (B, N, 3, T, H, W)   N consecutive clips of one video, normalised as the AQA model's
      --clips joined in time, adaptive average pool--> (B, 3, frames, size, size)    (24 x 32 x 32)
      --conv3d 3→16 (stride 1,2,2), 16→32 (2), 32→64 (2); BatchNorm, ReLU--> (B, 64, 6, 4, 4)
      --pool time to 2 steps, flatten--> (B, 2048) --fc, ReLU, dropout--> (B, hidden)
      --side head--> (B, 2)   0 board on the left, 1 on the right
      --height head--> (B, K) one of K heights (SynDive: 1m, 3m, 10m)

Why this shape: the side and the height are in *where* things are on screen (the board's end, the
water line, which way the diver travels and turns) and *when* (a 10 m dive reaches the water later in
the window), so the spatial grid and two time steps are kept to the end instead of averaged away.
About 0.2 M parameters (< 1 MB); one video's forward pass is 48 MFLOP (torch's FLOP counter, tiny-mtl's
clips), 4 % of the bundled tiny-mtl's 1123 MFLOP (its `predict`, captioner included).

Its size is described by the checkpoint's ModelConfig (backbone "view"): `clip_len` is the number of
frames the clips are resampled to, `crop_size` the side of the resampled square, `feature_dim` the
width of the shared feature, `dropout` after it, `classes` {"side": 2, "height": K}.
"""

from __future__ import annotations

import torch
from torch import nn

from aqa_cli.config import ModelConfig
from aqa_cli.errors import ConfigError

BACKBONE = "view"
WIDTHS = (16, 32, 64)  # channels of the three convolutions
TIME_STEPS = 2  # time steps kept before the fc (early and late in the window)
GRID = 4  # spatial cells per side kept before the fc


def view_config(frames: int = 24, size: int = 32, hidden: int = 64, dropout: float = 0.2,
                heights: int = 3) -> ModelConfig:
    """The ModelConfig of a view network (see the module docstring for what each number means)."""
    return ModelConfig(backbone=BACKBONE, task=BACKBONE, clip_len=frames, crop_size=size, feature_dim=hidden,
                       dropout=dropout, classes={"side": 2, "height": heights}, execution=False, caption=False)


def _block(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True))


class ViewNet(nn.Module):
    """Board side and height from a video's clips (see the module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.backbone != BACKBONE or set(cfg.classes) != {"side", "height"} or cfg.classes["side"] != 2:
            raise ConfigError(f"not a view network config (backbone {cfg.backbone!r}, classes {cfg.classes})")
        if cfg.crop_size < 16 or cfg.clip_len < 8:  # the three strides leave at least 2 x 2 x 2 to pool
            raise ConfigError(f"view network grid too small: {cfg.clip_len} frames of {cfg.crop_size} px")
        self.frames, self.size = cfg.clip_len, cfg.crop_size
        w1, w2, w3 = WIDTHS
        self.features = nn.Sequential(_block(3, w1, (1, 2, 2)), _block(w1, w2, (2, 2, 2)), _block(w2, w3, (2, 2, 2)))
        self.pool = nn.AdaptiveAvgPool3d((TIME_STEPS, GRID, GRID))
        self.fc = nn.Sequential(nn.Linear(w3 * TIME_STEPS * GRID * GRID, cfg.feature_dim), nn.ReLU(inplace=True),
                                nn.Dropout(cfg.dropout))
        self.side = nn.Linear(cfg.feature_dim, 2)
        self.height = nn.Linear(cfg.feature_dim, cfg.classes["height"])

    def forward(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """clips float (B, N, 3, T, H, W) → {"side": (B, 2), "height": (B, K)} logits."""
        if clips.dim() != 6 or clips.shape[2] != 3:
            raise ValueError(f"expected clips (B, N, 3, T, H, W), got {tuple(clips.shape)}")
        b, n, c, t, h, w = clips.shape
        x = clips.permute(0, 2, 1, 3, 4, 5).reshape(b, c, n * t, h, w)  # the clips are consecutive: one sequence
        x = nn.functional.adaptive_avg_pool3d(x, (self.frames, self.size, self.size))
        x = self.pool(self.features(x)).flatten(1)
        x = self.fc(x)
        return {"side": self.side(x), "height": self.height(x)}
