"""Which dives does a model misread, and what do the misreadings cost the score? (from `aqa eval` rows)

Reads the per-dive CSV that `aqa eval --predictions` writes and prints, for each file: the half-twist
confusion (true count × predicted count), how many twisting dives get their count and their parity
(whether the diver ends facing the other way) right, the twist errors by how far off they are, which
heads are wrong in the misread dives, and the rules score's Spearman (expected DD × predicted
execution) when the dives misread only in the listed heads take their own DD instead: what reading
those heads perfectly would be worth, with the model's execution unchanged.

Run (a second, after an eval of a few minutes):
    aqa eval --weights runs/X/best.pt --data data/syndive3-dev400 --split all --predictions rows.csv
    python experiments/dive_errors.py rows.csv
Measured in session 9 on the 400 dives of syndive3-dev400 (124 twisting): see experiments/RESULTS.md,
"Reading the twists".
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter

from aqa_cli.rules import HEADS
from aqa_cli.metrics import spearman


def _wrong_heads(row: dict) -> tuple[str, ...]:
    return tuple(h for h in HEADS if row[h] != row[f"{h}_pred"])


def _score_with_own_dd(rows: list[dict], heads: set[str]) -> float:
    """Spearman of the rules score against the final score, with own DD × execution for every dive whose
    wrong heads are all in `heads`."""
    scores = []
    for r in rows:
        wrong = set(_wrong_heads(r))
        fixed = wrong and wrong <= heads and r["difficulty"]
        scores.append(float(r["difficulty"]) * float(r["execution"]) if fixed else float(r["rules_score"]))
    return spearman(scores, [float(r["final_score"]) for r in rows])


def report(path: str) -> None:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("tw_no", "") != "" and r.get("rules_score", "") != ""]
    if not rows:
        raise SystemExit(f"{path}: no rows with dive labels and a rules score (an MTL model's eval rows?)")
    pairs = Counter((int(r["tw_no"]), int(r["tw_no_pred"])) for r in rows)
    counts = sorted({t for t, _ in pairs} | {p for _, p in pairs})
    print(f"{path}: {len(rows)} dives")
    print("half twists, true (rows) x predicted (columns):")
    print("      " + "".join(f"{c:>5}" for c in counts))
    for t in counts:
        print(f"{t:>5} " + "".join(f"{pairs.get((t, p), 0):>5}" for p in counts))
    twisting = [r for r in rows if int(r["tw_no"]) > 0]
    right = sum(r["tw_no"] == r["tw_no_pred"] for r in twisting)
    parity = sum(int(r["tw_no"]) % 2 == int(r["tw_no_pred"]) % 2 for r in twisting)
    off = Counter(abs(t - p) for (t, p), n in pairs.items() for _ in range(n) if t != p)
    print(f"twisting dives: {len(twisting)}, count right {right}, parity right {parity}; "
          f"errors by how many half twists off: {dict(sorted(off.items()))}")
    misread = Counter(_wrong_heads(r) for r in rows if r["dive_number"] != r["dive_number_pred"])
    print(f"misread dives: {sum(misread.values())}; wrong heads: "
          + ", ".join(f"{'+'.join(k) or 'none (not in the table)'} {n}" for k, n in misread.most_common()))
    rules = spearman([float(r["rules_score"]) for r in rows], [float(r["final_score"]) for r in rows])
    print(f"rules score {rules:.3f}; "
          f"own DD where only the twists are misread {_score_with_own_dd(rows, {'tw_no'}):.3f}, "
          f"twists or somersaults {_score_with_own_dd(rows, {'tw_no', 'ss_no'}):.3f}, "
          f"any head {_score_with_own_dd(rows, set(HEADS)):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="CSV files written by `aqa eval --predictions`")
    for path in parser.parse_args().rows:
        report(path)


if __name__ == "__main__":
    main()
