"""Linear task heads that read the shared video feature of C3D-AVG (fc6 output, `feature_dim` wide).

- `RegressionHead`: one number per video — the final score, or the execution (sum of the counted
  judges' marks) — as a single linear layer, as in the MTL-AQA release's score regressor.
- `ClassHeads`: one linear classifier per label group of the dive, sized from `ModelConfig.classes`
  (position 3, armstand 2, rotation_type 4, ss_no 10, tw_no 8 for MTL-AQA); raw logits out.

MSCADC's heads are convolutional context heads and live in `mscadc.py`; the captioner in
`captioner.py`.
"""

from __future__ import annotations

import torch
from torch import nn


class RegressionHead(nn.Module):
    """features (B, F) → values (B,)."""

    def __init__(self, in_features: int):
        super().__init__()
        self.fc = nn.Linear(in_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).squeeze(1)


class ClassHeads(nn.Module):
    """features (B, F) → {name: logits (B, K_name)} for every label group in `classes`."""

    def __init__(self, in_features: int, classes: dict[str, int]):
        super().__init__()
        self.fcs = nn.ModuleDict({name: nn.Linear(in_features, k) for name, k in classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: fc(x) for name, fc in self.fcs.items()}
