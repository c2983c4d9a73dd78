"""SynDive learnability: does the small backbone learn dive labels and scores from synthetic dives in
a few minutes of CPU training? (issue 3's learnability bar; not a test, its numbers depend on time).

Takes a dataset root (or generates one with `aqa data synth` first), trains a config (default
tiny-mtl) with aqa_cli.train for `--minutes` (train.max_minutes: the epoch in progress finishes, the
validation split picks the checkpoint, the test split is evaluated once), then prints, all measured in
this run on the test split:

    position and rotation-type accuracy   next to chance (the majority-class rate of the test split)
    score Spearman                        next to the oracle ceiling (expected vs final score)

Run (about --minutes plus a minute on 2 cores; generating 300 dives adds ~2 min):
    python experiments/bench_learnability.py --root data/syndive3-1000 --minutes 8
    python experiments/bench_learnability.py --count 300 --seed 2 --minutes 4
    python experiments/bench_learnability.py --root ROOT --minutes 4 --set train.lr=2e-3
--epochs sets train.epochs, the length of the learning-rate schedule; by default the config's own
(tiny-mtl: 48), so the run is the first --minutes of a standard training run, at a rate still near
its peak.
Measured on SynDive 3 (data/syndive3-1000, 2 idle cores, tiny-mtl at lr 1e-3 with sessions 3-5's clips
of 16 frames taken one in two, before the time stem): --minutes 8 trained 483 s
(10 epochs) and gave test position 0.840 (chance 0.375), rotation type 0.860 (chance 0.265), Spearman
0.725 (ceiling 0.993); --minutes 5 (304 s) 0.610 / 0.635 / 0.696. --count 300 --seed 2 --minutes 4 (210
training dives, 241 s) was not enough: 0.467 / 0.267 / 0.447 (chance 0.400 / 0.283). At lr 2e-3 (the
previous tiny-mtl) an 11-minute run with a 12-epoch schedule reached position 0.605, rotation type 0.255
and Spearman 0.149. With tiny-mtl's data.scale 0.15 and train.ema 0.995 (the average lags the trained
weights by ~2 epochs), --minutes 5 (304 s, 6 epochs) gave 0.635 / 0.490 / 0.596.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from aqa_cli.config import load_config
from aqa_cli.datasets.syndive import synth
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.metrics import spearman
from aqa_cli.train import train


def chance(labels: list[int]) -> float:
    """Accuracy of always answering the most common label."""
    return Counter(labels).most_common(1)[0][1] / len(labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", help="an existing dataset root (default: generate one)")
    ap.add_argument("--count", type=int, default=300, help="dives to generate when no --root")
    ap.add_argument("--seed", type=int, default=2, help="SynDive seed when generating")
    ap.add_argument("--workers", type=int, default=2, help="SynDive workers when generating")
    ap.add_argument("--minutes", type=float, default=4.0, help="training time (train.max_minutes)")
    ap.add_argument("--epochs", type=int, help="train.epochs, the learning-rate schedule's length "
                    "(default: the config's)")
    ap.add_argument("--config", default="tiny-mtl")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", help="run directory (default: a temporary one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="aqa-learn-") as tmp:
        root_path = Path(args.root) if args.root else Path(tmp) / "syndive"
        if not args.root:
            t0 = time.monotonic()
            synth.synthesize(root_path, args.count, seed=args.seed, workers=args.workers)
            print(f"generated {args.count} SynDive dives (seed {args.seed}) in {time.monotonic() - t0:.0f} s")
        root = DatasetRoot(root_path)
        epochs = [f"train.epochs={args.epochs}"] if args.epochs else []
        cfg = load_config(args.config, [f"data.root={root_path}", f"train.max_minutes={args.minutes}",
                                        *epochs, *args.set])
        run_dir = Path(args.out) if args.out else Path(tmp) / "run"
        t0 = time.monotonic()
        report = train(cfg, run_dir, device="cpu", quiet=True)
        seconds = time.monotonic() - t0

        test = root.split("test")
        acc = report["test"].get("accuracy", {})
        rho = report["test"]["score"]["spearman"]
        oracle = spearman([s.expected_score for s in test], [s.final_score for s in test])
        counts = {name: len(root.split(name)) for name in ("train", "val", "test")}
        print(f"data: {root_path} ({root.info.extra.get('generator', root.info.source)}; "
              f"train/val/test {counts['train']}/{counts['val']}/{counts['test']})")
        print(f"config: {args.config} {' '.join(args.set)}; trained {report['train_seconds']:.0f} s "
              f"(best epoch {report['best_epoch']}, {seconds:.0f} s with test), {args.threads} threads")
        print(f"{'test metric':24} {'model':>8} {'reference':>10}")
        for head in ("position", "rotation_type"):
            ref = chance([getattr(s, head) for s in test])
            model = acc.get(head, float("nan"))
            print(f"{head + ' accuracy':24} {model:8.3f} {ref:10.3f}  (chance: majority class)")
        print(f"{'score spearman':24} {rho:8.3f} {oracle:10.3f}  (oracle ceiling)")
        print(json.dumps({"test": {"position": acc.get("position"), "rotation_type": acc.get("rotation_type"),
                                   "spearman": rho},
                          "chance": {h: chance([getattr(s, h) for s in test]) for h in ("position", "rotation_type")},
                          "oracle_spearman": oracle, "train_seconds": report["train_seconds"]}))


if __name__ == "__main__":
    main()
