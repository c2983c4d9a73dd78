"""SynDive fault sizes for the research scripts (removed from the product with the fault heads;
as aqa_cli/datasets/frames.py had them at b9486e7)."""

from __future__ import annotations

import math

import numpy as np

from aqa_cli import rules
from aqa_cli.datasets.layout import Sample

# The way an over-rotation tilts the body on screen, by rotation_type: SynDive films every dive from
# the board's left, where a somersault turns the body by -facing x sense times its angle
# (datasets/motion.py, world_pitch): a back or forward dive's one way, an inward or reverse one's the
# other. The tilt's sign is facing x sense (+1 back and forward dives), kept as the measured runs had it.
_TILT = {r: float(f * s) for r in rules.ROTATION_TO_DIGIT for f, s in [rules.facing_and_sense(r)]}


def fault_sizes(sample: Sample, names: list[str]) -> np.ndarray:
    """(F,) float32: the size |value| of each named fault of a sample (signed faults such as an over- or
    under-rotation cost the same either way), NaN where the sample does not annotate it.

    One signed name is derived: `entry_tilt_deg`, the over- (+) or under-rotation at the entry as the
    body leans on screen, which only the diver's angle shows (the splash grows with its size, not its
    sign)."""
    faults = sample.faults or {}

    def size(name: str) -> float:
        if name == "entry_tilt_deg" and "rotation_error_deg" in faults and sample.rotation_type in _TILT:
            return float(faults["rotation_error_deg"]) * _TILT[sample.rotation_type]
        return abs(float(faults[name])) if name in faults else math.nan

    return np.array([size(n) for n in names], dtype=np.float32)


