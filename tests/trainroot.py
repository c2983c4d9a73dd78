"""A tiny dataset root for training and evaluation tests (written on the fly, never shipped).

`make_root(path)` writes `n` samples of random uint8 frames (16×20 pixels, the 103-frame window plus
`pad` frames each side) whose brightness grows with the final score, so a model can learn something in
a few steps, and so do its two hidden faults (SynDive's `knee_bend_deg`, `distance_m`); labels cycle
through three real dives so classification and dive-number accuracy have something to measure.
Synthetic, and flagged so in its dataset.yaml.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aqa_cli.datasets.layout import DatasetInfo, Sample, save_frames, write_root

# (dive number, position, armstand, rotation_type, ss_no, tw_no, commentary)
DIVES = [
    ("107B", 1, 0, 1, 7, 0, "forward three and a half somersaults pike"),
    ("205C", 2, 0, 0, 5, 0, "back two and a half somersaults tuck"),
    ("405C", 2, 0, 2, 5, 0, "inward two and a half somersaults tuck"),
]
SMALL = ["model.crop_size=16", "data.resize=[20, 16]"]  # config overrides that fit these frames


def make_root(path: str | Path, n: int = 12, pad: int = 2, splits: tuple[int, int, int] = (8, 2, 2)) -> Path:
    """Write the root at `path` and return it. Split sizes (train, val, test) must add up to `n`."""
    path = Path(path)
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        quality = i / (n - 1)
        frames = rng.integers(0, 40, (103 + 2 * pad, 16, 20, 3)) + int(quality * 200)
        save_frames(path / "frames" / f"d{i}.npy", frames.astype(np.uint8))
        number, pos, arm, rot, ss, tw, text = DIVES[i % 3]
        marks = [5.0 + 4.0 * quality] * 7
        samples.append(Sample(id=f"d{i}", final_score=round(3.0 * sum(marks[2:5]), 2), difficulty=3.0,
                              judge_scores=marks, dive_number=number, position=pos, armstand=arm,
                              rotation_type=rot, ss_no=ss, tw_no=tw, commentary=text, height="3m",
                              expected_score=3.0 * 3 * (5.0 + 4.0 * quality),
                              faults={"knee_bend_deg": 20.0 * (1 - quality), "distance_m": (-1) ** i * (1 - quality)}))
    ids = [s.id for s in samples]
    a, b, _ = splits
    write_root(path, DatasetInfo(name="trainroot", source="tests (synthetic)", synthetic=True, width=20,
                                 height=16, pad=pad), samples,
               {"train": ids[:a], "val": ids[a:a + b], "test": ids[a + b:]})
    return path
