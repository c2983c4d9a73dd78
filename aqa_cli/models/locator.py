"""The dive locator's network: a small per-frame CNN and a dilated temporal conv net over its features.

Input: a low-rate, low-resolution stream of frames (the locator reads recordings at 10 fps, 64x48),
uint8 (B, T, H, W, 3). Each frame and its difference to the frame before (the motion: a diver in
flight, the camera panning with them, the spray) go through a 4-stage strided 2D CNN whose last map is
flattened (where in the picture things happen matters: spray sits low, a diver on the board high)
into a `hidden`-wide feature per frame. A stack of non-causal dilated 1D convolutions with residuals
then sees about 6 s around each frame at 10 fps (kernel 5, dilations 1, 2, 4, 8, 1) and gives one logit
per frame: "this frame is inside a dive (take-off to spray gone)".

Frames are encoded independently, so a long recording is encoded chunk by chunk (`encode` with the
previous chunk's last frame) and only the features, `hidden` floats a frame, are kept for `temporal`.
"""

from __future__ import annotations

import torch
from torch import nn


class Locator(nn.Module):
    """Per-frame "in a dive" logits from a frame stream (see the module docstring)."""

    def __init__(self, size: tuple[int, int] = (64, 48), width: int = 16, hidden: int = 64,
                 dilations: tuple[int, ...] = (1, 2, 4, 8, 1), kernel: int = 5, dropout: float = 0.1):
        super().__init__()
        w, h = size
        chans = [6, width, 2 * width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        self.frames = nn.Sequential(*layers)
        for _ in range(4):  # each stride-2 conv (padding 1, kernel 3) rounds the size up
            w, h = (w + 1) // 2, (h + 1) // 2
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * w * h, hidden), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(hidden, hidden, kernel, padding=d * (kernel // 2), dilation=d),
                          nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
            for d in dilations)
        self.out = nn.Conv1d(hidden, 1, 1)

    def encode(self, frames: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) → features (B, T, hidden). `previous` uint8 (B, H, W, 3) is the
        frame before the first (the last of the previous chunk); without it the first difference is 0."""
        b, t = frames.shape[:2]
        x = frames.permute(0, 1, 4, 2, 3).float() / 255.0  # (B, T, 3, H, W) in [0, 1]
        before = x[:, :1] if previous is None else previous.permute(0, 3, 1, 2).float()[:, None] / 255.0
        diff = x - torch.cat([before, x[:, :-1]], dim=1)
        # Differences are small (a few grey levels for most pixels): x4 brings them near the frames' scale.
        z = torch.cat([x - 0.5, 4.0 * diff], dim=2).flatten(0, 1)  # (B*T, 6, H, W)
        return self.project(self.frames(z)).view(b, t, -1)

    def temporal(self, features: torch.Tensor) -> torch.Tensor:
        """Features (B, T, hidden) → logits (B, T)."""
        x = features.transpose(1, 2)
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)[:, 0]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) → logits (B, T)."""
        return self.temporal(self.encode(frames))
