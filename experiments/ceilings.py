"""How well could a model that saw only some of SynDive's faults rank the scores? (no model involved)

The oracle ceiling (`aqa eval` prints it) assumes a model that sees every hidden fault exactly. This
asks what seeing only some of them exactly would be worth: for each set of faults below, a least-squares
fit on the train split predicts the noise-free execution mark from those faults' sizes (and squares,
and the tolerance hinges the judging applies to distance and splash; the faults share the diver's
form on the day, so one fault tells about the others), and the test split's predicted execution times
the dive's own DD (as `aqa score --dd` does) is ranked against the judged final scores. A model whose
score lands below the row of the faults it does see is losing on perception of those, not on the
faults it cannot see.

Run (a second):
    python experiments/ceilings.py data/syndive3-1000
Measured in session 8 on SynDive 3 seed 1 (700 train / 200 test dives): oracle 0.9925; all eight
faults 0.9925; without knees, legs, height and distance 0.9696; splash, rotation and loose 0.9521;
splash and rotation 0.9424; splash alone 0.9407; nothing (the DD alone) 0.6502.
"""

from __future__ import annotations

import argparse

import numpy as np

from faults import fault_sizes
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.metrics import spearman

BODY = ["knee_bend_deg", "legs_apart_deg", "height_loss", "distance_m"]
ENTRY = ["splash_m", "rotation_error_deg", "twist_error_deg", "loose"]
SETS = {
    "all eight faults": ENTRY + BODY,
    "without knees, legs, height, distance": ENTRY,
    "splash, rotation, loose": ["splash_m", "rotation_error_deg", "loose"],
    "splash, rotation": ["splash_m", "rotation_error_deg"],
    "splash": ["splash_m"],
    "nothing (the DD alone)": [],
}
# The judging forgives small errors of these two (synth.draw_faults): the deduction is a hinge.
HINGES = {"distance_m": 0.15, "splash_m": 0.12}


def design(samples: list, names: list[str]) -> np.ndarray:
    """(S, 1 + 3F): a constant, each fault's size, its square and its hinge (0 for faults without one)."""
    sizes = np.zeros((len(samples), 0))
    if names:
        sizes = np.stack([fault_sizes(s, names) for s in samples]).astype(np.float64)
    hinge = np.maximum(sizes - np.array([HINGES.get(n, 0.0) for n in names]), 0.0)
    return np.concatenate([np.ones((len(samples), 1)), sizes, sizes ** 2, hinge], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="a SynDive root (its train and test splits)")
    args = ap.parse_args()
    root = DatasetRoot(args.root)
    train, test = root.split("train"), root.split("test")
    execution = np.array([s.faults["execution"] for s in train])
    judged = np.array([s.final_score for s in test])
    dd = np.array([s.difficulty for s in test])
    print(f"{'oracle (noise-free score)':40s} {spearman([s.expected_score for s in test], judged):.4f}")
    for label, names in SETS.items():
        w = np.linalg.lstsq(design(train, names), execution, rcond=None)[0]
        print(f"{label:40s} {spearman(design(test, names) @ w * dd, judged):.4f}")


if __name__ == "__main__":
    main()
