"""`aqa data`: get, make and inspect dataset roots (download, preprocess, synth, info)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from aqa_cli.cli import views
from aqa_cli.cli.common import err, frame_size, one_line_warnings

app = typer.Typer(help="Get, make and inspect datasets (download, preprocess, synth, info).", no_args_is_help=True)


class DatasetName(str, Enum):
    mtl_aqa = "mtl-aqa"


@app.command()
def download(
    dataset: Annotated[DatasetName, typer.Argument(help="Dataset to get: mtl-aqa.")],
    root: Annotated[Path, typer.Option("--root", help="Dataset root to fill (created if needed).",
                                       show_default=False)],
    from_dir: Annotated[Optional[Path], typer.Option(
        "--from", help="Copy the release (and videos/NN.mp4) from this local folder instead of downloading.",
        show_default=False)] = None,
    videos: Annotated[bool, typer.Option("--videos/--no-videos",
                                         help="Also get the 15 source videos (yt-dlp, optional).")] = True,
    link: Annotated[bool, typer.Option("--link", help="Hard-link --from files instead of copying.")] = False,
    base_url: Annotated[Optional[str], typer.Option(
        "--base-url", help="A mirror holding the release layout, instead of the official repositories.",
        show_default=False)] = None,
) -> None:
    """Download a dataset's annotations (and videos) into a root.

    The MTL-AQA release (annotations, splits, captions, video list, and the judges' marks and dive
    numbers added by CoRe) goes to ROOT/release with sha256 checks recorded in ROOT/SHA256SUMS;
    ROOT/dataset.yaml, annotations.jsonl and splits/ are written from it; the source videos go to
    ROOT/videos/NN.mp4 through yt-dlp when it is installed. Interrupted downloads resume.

    Examples:

      aqa data download mtl-aqa --root data/mtl-aqa

      aqa data download mtl-aqa --root data/mtl-aqa --from ~/MTL-AQA/MTL-AQA_dataset_release --no-videos

      aqa data info data/mtl-aqa
    """
    from aqa_cli.datasets.mtl_aqa import adapter as mtl_aqa

    result = mtl_aqa.download(root, from_dir=from_dir, videos=videos, base_url=base_url, link=link,
                              console=err)
    err.print(f"{dataset.value}: {result.samples} dives annotated in {root} "
              f"({len(result.files)} release files); {len(result.videos)} of "
              f"{len(result.videos) + len(result.missing_videos)} source videos present", markup=False, highlight=False)
    for problem in result.problems:
        err.print("[yellow]warning:[/yellow] ", end="")
        err.print(problem, markup=False, highlight=False, soft_wrap=True)
    if result.missing_videos and videos:
        err.print(f"[red]missing source videos[/red] (save each as {escape(str(root))}/videos/NN.mp4, NN = the number "
                  "below, then run `aqa data preprocess mtl-aqa`):")
        for video, url in sorted(result.missing_videos.items()):
            err.print(f"  {video:02d}  {url}", markup=False, highlight=False)
        err.print("or fetch annotations only with --no-videos")
        raise typer.Exit(1)


@app.command()
def preprocess(
    dataset: Annotated[DatasetName, typer.Argument(help="Dataset to preprocess: mtl-aqa.")],
    root: Annotated[Path, typer.Option("--root", help="Dataset root filled by `aqa data download`.",
                                       show_default=False)],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Videos decoded in parallel.")] = 1,
    size: Annotated[str, typer.Option("--size", help="Stored frame size WIDTHxHEIGHT (32-1920 x 32-1080).")] = "171x128",
    val_fraction: Annotated[float, typer.Option(
        "--val-fraction", min=0.0, max=0.5, help="Share of the official training split carved out as val; 0 "
        "keeps the official 1059 train / 353 test (the papers' protocol, S4AQA's labelled fractions).")] = 0.1,
) -> None:
    """Cut dives from source videos into frame arrays of the common dataset root.

    Each dive becomes ROOT/frames/<id>.npy: the 103 frames ending at its end frame plus 3 on each
    side, resized while decoding, written atomically; dives already done are skipped, so rerunning
    after an interruption finishes the job. Writes the splits (val carved from train with a fixed
    seed, the official test split untouched). Missing videos are listed; the rest goes on.

    Examples:

      aqa data preprocess mtl-aqa --root data/mtl-aqa

      aqa data preprocess mtl-aqa --root data/mtl-aqa --workers 4 --size 171x128

      aqa data preprocess mtl-aqa --root data/mtl-aqa --val-fraction 0
    """
    from aqa_cli.datasets.mtl_aqa import cut

    width, height = frame_size(size)  # the library checks its bounds
    report = cut.preprocess(root, workers=workers, size=(width, height), val_fraction=val_fraction, console=err)
    for warning in report.warnings:
        err.print("[yellow]warning:[/yellow] ", end="")
        err.print(warning, markup=False, highlight=False, soft_wrap=True)
    for sample, reason in sorted(report.failed.items()):
        err.print(f"[red]failed[/red] {escape(str(sample))}: ", end="")
        err.print(reason, markup=False, highlight=False, soft_wrap=True)
    if report.missing_videos:
        listed = ", ".join(f"{v:02d} ({n} dives)" for v, n in sorted(report.missing_videos.items()))
        err.print(f"[yellow]missing source videos[/yellow] in {escape(f'{root}/videos: {listed}')}", highlight=False)
    err.print(f"{dataset.value}: {len(report.written)} dives cut, {len(report.skipped)} already done, "
              f"{len(report.failed)} failed, {sum(report.missing_videos.values())} without a video",
              highlight=False)
    if report.failed or report.missing_videos:
        raise typer.Exit(1)


@app.command()
def synth(
    root: Annotated[Path, typer.Argument(help="Dataset root to create (missing or empty folder).",
                                         show_default=False)],
    count: Annotated[int, typer.Option("--count", "-n", help="Number of dives.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same set.")] = 0,
    size: Annotated[str, typer.Option("--size", help="Stored frame size WIDTHxHEIGHT (32-1920 x 32-1080).")] = "171x128",
    frames: Annotated[int, typer.Option("--frames", help="Frames per dive (the sample window; 8-1000).")] = 103,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the clips (1-240).")] = 25.0,
    heights: Annotated[str, typer.Option("--heights", help="Comma-separated heights to draw dives from "
                                         "(1m, 3m, 5m, 7.5m, 10m).")] = "1m,3m,10m",
    workers: Annotated[int, typer.Option("--workers", "-j", help="Worker processes (at most one per CPU).")] = 1,
    preview: Annotated[Optional[Path], typer.Option(
        "--preview", help="Also write a contact sheet PNG (frames of several dives).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing SynDive root.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Render SynDive, a synthetic diving dataset with known ground truth.

    Dives are drawn from the World Aquatics DD table, given hidden execution faults, rendered (an
    articulated diver, a board or platform, pool and hall), encoded to ROOT/videos/*.mp4 (H.264),
    decoded back into ROOT/frames/*.npy, and judged by 7 judges (drop 2 high and 2 low, times DD).
    ROOT/annotations.jsonl also holds the noise-free `expected_score` and the hidden `faults`.
    Prints a JSON summary (score spread, histograms, oracle Spearman on test) on stdout.

    Examples:

      aqa data synth data/syndive --count 1000 --seed 0 --workers 2

      aqa data synth /tmp/syn-small --count 20 --size 112x112 --frames 48 --preview sheet.png

      aqa data info data/syndive
    """
    import json

    from aqa_cli.datasets.syndive import synth as syndive

    one_line_warnings()
    width, height = frame_size(size)
    height_list = tuple(h.strip() for h in heights.split(",") if h.strip())
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=err, transient=True, disable=quiet)
    with bar:
        task = bar.add_task("rendering", total=count)
        samples = syndive.synthesize(root, count, seed=seed, size=(width, height), frames=frames, fps=fps,
                                     heights=height_list, workers=workers, overwrite=overwrite, preview=preview,
                                     progress=lambda done, total: bar.update(task, completed=done))
    stats = syndive.summary(samples, root)
    if preview is not None:
        err.print(f"contact sheet: {preview}", markup=False)
    typer.echo(json.dumps(stats, indent=2))
    err.print(f"SynDive (synthetic): {count} dives in {root}", markup=False)


class InfoFormat(str, Enum):
    table = "table"
    json = "json"


@app.command()
def info(
    root: Annotated[Path, typer.Argument(help="Dataset root (any source: MTL-AQA, SynDive, ...).",
                                         show_default=False)],
    fmt: Annotated[InfoFormat, typer.Option("--format", "-f", help="table or json.")] = InfoFormat.table,
) -> None:
    """Summarise a dataset root: counts, label histograms, score ranges.

    Also DD range, heights, judges per dive, caption vocabulary, missing or corrupt frame files, and
    for synthetic roots the oracle ceiling (Spearman of the noise-free score with the final score on
    test). The JSON keys are documented in aqa_cli/datasets/summary.py.

    Examples:

      aqa data info data/mtl-aqa

      aqa data info syndive -f json > syndive.json
    """
    import json

    from aqa_cli.datasets.summary import summarize

    summary = summarize(root)
    for warning in summary.get("warnings", []):
        err.print("[yellow]warning:[/yellow] ", end="")
        err.print(warning, markup=False, highlight=False, soft_wrap=True)
    if fmt == InfoFormat.json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    views.print_dataset_summary(summary)


class PrepareName(str, Enum):
    rg = "rg"


@app.command(name="prepare")
def prepare(
    dataset: Annotated[PrepareName, typer.Argument(help="Dataset to prepare: rg (Rhythmic Gymnastics).")],
    root: Annotated[Path, typer.Option("--root", help="Dataset root to write.", show_default=False)],
    annotations: Annotated[Path, typer.Option(
        "--annotations", help="Folder of the release's train.txt and test.txt (Zeng et al., ACM MM 2020).",
        show_default=False)],
    videos: Annotated[Optional[Path], typer.Option(
        "--from", help="Your folder of the routines' videos (Ball_1.mp4, ...).", show_default=False)] = None,
) -> None:
    """Write a Rhythmic Gymnastics root: 1000 routines, apparatus as the split group, missing videos listed.

    Routines are 87-99 s: the root links the videos instead of storing frames; extract features from
    them in stride mode.

    Examples:

      aqa data prepare rg --root data/rg --annotations ~/RG --from ~/RG/videos
    """
    from aqa_cli.datasets import rg

    summary = rg.prepare(root, annotations, videos)
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    err.print(f"Rhythmic Gymnastics: {counts}; {summary.linked} videos linked, {len(summary.missing)} missing"
              + (f" (listed in {summary.root / 'missing.txt'})" if summary.missing else ""),
              markup=False, highlight=False, soft_wrap=True)
