"""A dataset root that trains on more dives and is judged on the same ones (the data-size experiment).

Writes OUT: ROOT_A's train split plus every dive of each further ROOT as the train split, ROOT_A's
val and test splits unchanged, so a run on OUT compares with runs on ROOT_A dive for dive. Frames are
symlinks, not copies; the further roots' ids get the prefixes "b", "c", ... in order. All roots must
store frames of the same size. SynDive sets made with different seeds have different judging panels
(synth.panel_bias), a little label noise the merged train split carries.

Run (seconds):
    python experiments/extend_train.py data/syndive3-1000 data/syndive3-b1000 data/syndive3-ab
Used in session 7: syndive3-1000 (seed 1) + syndive3-b1000 (`aqa data synth ... --count 1000 --seed 11`)
= 1700 train / 100 val / 200 test dives; see experiments/RESULTS.md, "More dives help". Session 15
added c1000, d1000 and e1000 (`--seed 12`, 13, 14): `extend_train.py data/syndive3-1000
data/syndive3-b1000 data/syndive3-c1000 data/syndive3-abc` gives 2700 train dives (RESULTS.md,
"Session 15").
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from aqa_cli.datasets.layout import DatasetRoot, write_root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root_a", help="root whose val and test splits are kept")
    ap.add_argument("more", nargs="+", help="roots whose every dive is added to the train split")
    ap.add_argument("out", type=Path, help="new root (must not exist)")
    args = ap.parse_args()
    a, more = DatasetRoot(args.root_a), [DatasetRoot(r) for r in args.more]
    if any((a.info.width, a.info.height, a.info.pad) != (b.info.width, b.info.height, b.info.pad) for b in more):
        raise SystemExit("the roots store frames of different sizes")
    if args.out.exists():
        raise SystemExit(f"{args.out} exists")
    (args.out / "frames").mkdir(parents=True)
    samples, added = [], []
    for root, prefix in [(a, "")] + [(b, chr(ord("b") + i)) for i, b in enumerate(more)]:
        for s in root.samples.values():
            (args.out / "frames" / f"{prefix}{s.id}.npy").symlink_to(root.root.resolve() / "frames" / f"{s.id}.npy")
            samples.append(dataclasses.replace(s, id=prefix + s.id, video=""))
            if prefix:
                added.append(prefix + s.id)
    info = dataclasses.replace(a.info, name="+".join([a.info.name] + [b.root.name for b in more]),
                               extra={**a.info.extra, "train_extended_with": [str(b.root) for b in more]})
    splits = {"train": [s.id for s in a.split("train")] + added,
              "val": [s.id for s in a.split("val")], "test": [s.id for s in a.split("test")]}
    write_root(args.out, info, samples, splits)
    print(f"{args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))


if __name__ == "__main__":
    main()
