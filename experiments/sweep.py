"""Train several variants of one config side by side on one machine and print one table of their results
(not a test: its numbers depend on the machine and on time).

Each variant is `NAME:KEY=VALUE,KEY=VALUE` (config overrides, as `aqa train --set` takes them) and runs
`aqa_cli.train.train` in its own process with `--threads` torch threads; all share `--device`.
`--deadline` (minutes from the start) sets every run's train.max_minutes so that all end by then.
For each run the table gives: epochs trained, the best epoch by validation Spearman, wall minutes,
and on the test split (evaluated once, with that epoch's weights) score Spearman, execution Spearman
and the accuracies of position, rotation type, half somersaults, half twists and the dive number;
`learned` is the first epoch at which validation position and rotation-type accuracy both reached 0.8.

    python experiments/sweep.py --root data/syndive3-1000 --out runs/sweep --device cuda \\
        base:train.epochs=32 long:train.epochs=64 lr1e-3:train.epochs=32,train.lr=1e-3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

from aqa_cli.config import load_config
from aqa_cli.errors import ConfigError


def learned_at(epochs: list[dict], bar: float = 0.8) -> int | None:
    """First epoch whose validation position and rotation-type accuracies are both ≥ bar."""
    for e in epochs:
        acc = e.get("val", {}).get("accuracy", {})
        if acc.get("position", 0) >= bar and acc.get("rotation_type", 0) >= bar:
            return e["epoch"]
    return None


def row(name: str, run: Path, minutes: float) -> str:
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    epochs = [json.loads(line) for line in lines]
    report = json.loads((run / "report.json").read_text()) if (run / "report.json").exists() else {}
    test = report.get("test", {})
    acc = test.get("accuracy", {})

    def f(x):
        return "-" if x is None else f"{x:.3f}"
    cells = [name, str(len(epochs)), str(report.get("best_epoch", "-")), f"{minutes:.1f}",
             f(test.get("score", {}).get("spearman")), f(test.get("execution", {}).get("spearman")),
             *(f(acc.get(k)) for k in ("position", "rotation_type", "ss_no", "tw_no", "dive_number")),
             str(learned_at(epochs))]
    return " | ".join(cells)


def _train_one(config: str, overrides: list[str], run: Path, device: str, threads: int) -> None:
    """One variant, in a child process whose output goes to RUN/log.txt."""
    import torch

    from aqa_cli.train import train

    torch.set_num_threads(threads)
    with open(run / "log.txt", "w") as log:
        sys.stdout = sys.stderr = log
        train(load_config(config, overrides), run, device=device, quiet=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", metavar="NAME:KEY=VALUE,...")
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True, help="one run directory per variant is made under it")
    ap.add_argument("--config", default="tiny-mtl")
    ap.add_argument("--task", default="mtl")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--deadline", type=float, default=0.0, help="minutes from now by which all runs end")
    args = ap.parse_args()

    start = time.monotonic()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read by the spawned children at start
    spawn = multiprocessing.get_context("spawn")
    procs = {}
    for spec in args.variants:
        name, _, sets = spec.partition(":")
        run = Path(args.out) / name
        run.mkdir(parents=True, exist_ok=True)
        overrides = [f"data.root={args.root}", f"model.task={args.task}", *(s for s in sets.split(",") if s)]
        if args.deadline > 0:  # leave ~1.5 min for the last epoch, validation and the test split
            overrides.append(f"train.max_minutes={max(args.deadline - 1.5, 0.5):.2f}")
        try:
            load_config(args.config, overrides)  # a bad key stops the sweep here, not in a child's log
        except ConfigError as exc:
            sys.exit(f"error: {name}: {exc}")
        proc = spawn.Process(target=_train_one, args=(args.config, overrides, run, args.device, args.threads))
        proc.start()
        procs[name] = (proc, run)
        print(f"started {name}: {' '.join(overrides[2:])}", file=sys.stderr)
    minutes = {}
    while len(minutes) < len(procs):
        for name, (proc, _) in procs.items():
            if name not in minutes and not proc.is_alive():
                minutes[name] = (time.monotonic() - start) / 60
                print(f"{name} ended (exit {proc.exitcode}) after {minutes[name]:.1f} min", file=sys.stderr)
        time.sleep(2)
    print("run | epochs | best | min | test Spearman | exec Sp | position | rotation | ss | tw | dive no. "
          "| learned")
    for name, (_, run) in procs.items():
        print(row(name, run, minutes[name]))


if __name__ == "__main__":
    main()
