"""Linear task heads that read the shared video feature of C3D-AVG (fc6 output, `feature_dim` wide).

- `RegressionHead`: one number per video — the final score, or the execution (sum of the counted
  judges' marks) — as a single linear layer, as in the MTL-AQA release's score regressor.
- `DistributionHead`: the same number read as the expectation of a distribution over evenly spaced
  values (Tang et al., CVPR 2020, USDL: trained against a Gaussian around the judged value).
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


EXECUTION_RANGE = (0.0, 30.0)  # execution: the sum of the three counted judges' marks, each 0-10


class DistributionHead(nn.Module):
    """features (B, F) → (values (B,), logits (B, K)): softmax(logits) over K values evenly spaced on
    [lo, hi] (`self.values`), and its expectation. A value outside [lo, hi] cannot be predicted."""

    def __init__(self, in_features: int, bins: int, lo: float, hi: float):
        super().__init__()
        self.fc = nn.Linear(in_features, bins)
        self.register_buffer("values", torch.linspace(lo, hi, bins), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.fc(x)
        return logits.float().softmax(1) @ self.values, logits

    def init_around(self, mean: float, sd: float) -> None:
        """Start at a Gaussian around the train mean (as RegressionHead starts at the mean)."""
        with torch.no_grad():
            self.fc.bias.copy_(-0.5 * ((self.values - mean) / max(sd, 1e-6)) ** 2)


class ClassHeads(nn.Module):
    """features (B, F) → {name: logits (B, K_name)} for every label group in `classes`."""

    def __init__(self, in_features: int, classes: dict[str, int]):
        super().__init__()
        self.fcs = nn.ModuleDict({name: nn.Linear(in_features, k) for name, k in classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: fc(x) for name, fc in self.fcs.items()}
