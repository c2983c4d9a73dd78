"""Remake the pictures in docs/: a dive report, the session index, training curves and evaluation plots.

    python docs/pictures.py --runs RUN [RUN ...] --eval-json eval.json --eval-rows rows.csv [--out docs]

The report and the index come from the bundled demo weights on examples/ (the 107C page is scored with
--height 1m, the rules' DD × execution); the curves from the given run folders (`aqa train`), the eval
plots from `aqa eval -f json` and its `--predictions` CSV. Pages are screenshot with headless chromium,
at a desktop and a phone width. Screenshots are reduced to 64-colour palettes (with Pillow, which
matplotlib brings) so the folder stays a few hundred KB; what aqa itself writes is never reduced.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def screenshot(page: Path, png: Path, width: int, height: int) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
                        page.as_uri()], check=True, capture_output=True, timeout=120)


def shrink(png: Path, colours: int = 64) -> None:
    """Rewrite a PNG with a palette of `colours`: flat pages and charts lose nothing visible."""
    from PIL import Image

    with Image.open(png) as image:
        image.convert("RGB").quantize(colours, dither=Image.Dither.NONE).save(png, optimize=True)


def reports(out: Path, work: Path) -> None:
    from aqa_cli import load_model, report
    from aqa_cli.scoring import SYNTHETIC_NOTE
    from aqa_cli.video import probe, read_even

    scorer = load_model(device="cpu")
    options = dict(scorer_name=scorer.name, synthetic_note=SYNTHETIC_NOTE if scorer.synthetic else None,
                   model_card=report.model_card(scorer.data, scorer.metrics))

    def strip(video: Path):
        info = probe(video)
        return read_even(video, n=report.STRIP_FRAMES, size=report.strip_size(info.width, info.height)), info

    video = ROOT / "examples" / "syndive_107C_1m.mp4"
    frames, info = strip(video)
    page = report.write_dive_report(scorer.score(video, height="1m"), frames, work / "report.html", height="1m",
                                    duration=info.duration, **options)
    screenshot(page, out / "report.png", 900, 1650)
    screenshot(page, out / "report-phone.png", 390, 1400)
    with report.ReportFolder(work / "session", scorer.settings(), **options) as folder:
        for video in sorted((ROOT / "examples").glob("*.mp4")):
            frames, info = strip(video)
            folder.add(scorer.score(video), frames, duration=info.duration)
    screenshot(folder.index_path, out / "index.png", 900, 760)


def figures(out: Path, runs: list[Path], eval_json: Path, eval_rows: Path) -> None:
    from aqa_cli import plots

    plots.plot_curves(runs, out / "curves.png")
    with eval_rows.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for png in plots.plot_eval(json.loads(eval_json.read_text()), rows, out):
        png.rename(out / f"eval-{png.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="aqa train run folders")
    parser.add_argument("--eval-json", type=Path, required=True, help="aqa eval -f json output")
    parser.add_argument("--eval-rows", type=Path, required=True, help="aqa eval --predictions CSV")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        reports(args.out, Path(work))
    figures(args.out, args.runs, args.eval_json, args.eval_rows)
    for png in sorted(args.out.glob("*.png")):
        shrink(png, 256 if png.name.startswith("report") else 64)  # the frames need more colours
        print(f"{png.name}: {png.stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    main()
