"""Batch-score the example dives (examples/*.mp4) into a CSV through the Python API.

    python examples/score_examples.py                 # writes examples/scores.csv
    python examples/score_examples.py --weights runs/tiny/best.pt --out my.csv

The same as `aqa score examples/ --csv examples/scores.csv`, written as a script: load the weights
once, stream results (decoding overlaps the model), write each row as soon as it is ready. Rerunning
skips the dives already in the CSV.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aqa_cli import load_model, score_videos
from aqa_cli.errors import AqaError
from aqa_cli.writers import ResumableCsv

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="weights name or checkpoint file (default: the bundled demo weights)")
    parser.add_argument("--out", type=Path, default=HERE / "scores.csv", help="CSV to write (resumable)")
    args = parser.parse_args()

    videos = sorted(HERE.glob("*.mp4"))
    if not videos:
        raise SystemExit(f"no .mp4 files in {HERE}")
    try:
        scorer = load_model(args.weights)
        table = ResumableCsv(args.out, scorer.settings())  # rows scored with other weights are redone
    except AqaError as exc:  # weights missing or corrupt, a CSV that is not aqa's
        raise SystemExit(f"error: {exc}") from None
    if scorer.synthetic:
        print(f"note: {scorer.name} are demo weights trained on synthetic renderings")
    try:
        todo = [v for v in videos if table.done(v) is None]
        for result in score_videos(todo, scorer):
            table.write(result)
            shown = result.error or f"{result.final_score:6.2f}  {result.dive_number}  {result.description}"
            print(f"{Path(result.video).name:24s} {shown}")
    finally:
        table.close()
    print(f"{len(videos) - len(todo)} already scored, {len(todo)} scored now -> {args.out}")


if __name__ == "__main__":
    main()
