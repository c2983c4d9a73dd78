"""The `aqa` command line: thin Typer commands, each one library call, plus an error-mapping `main()`.

stdout carries data only; messages and progress go to stderr (`err`). Heavy imports (torch, av) happen
inside commands so `aqa --help` and `aqa --version` stay fast.
"""

from __future__ import annotations

import inspect
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from aqa_cli import __version__
from aqa_cli.errors import AqaError

err = Console(stderr=True, emoji=False)  # ":train:" in a message is text, not an emoji

app = typer.Typer(
    name="aqa",
    help="Action Quality Assessment of sports video: score dives, train and evaluate models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Get, make and inspect datasets (download, preprocess, synth, info).",
                       no_args_is_help=True)
weights_app = typer.Typer(help="List, verify and import model weights.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(weights_app, name="weights")


def _version_text() -> str:
    import platform

    import av
    import torch

    cuda = torch.cuda.is_available()
    gpu = f"yes ({torch.cuda.get_device_name(0)})" if cuda else "no"
    return (f"aqa {__version__}\ntorch {torch.__version__}\nPyAV {av.__version__}\n"
            f"Python {platform.python_version()}\nCUDA available: {gpu}")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(_version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version_callback, is_eager=True,
        help="Print aqa, torch, PyAV and Python versions and whether CUDA is available.")] = None,
) -> None:
    """Action Quality Assessment of sports video (diving first).

    Examples:

      aqa score dive.mp4

      aqa score meet/ --csv meet.csv

      aqa train --task mtl --config tiny-mtl --data syndive --out runs/tiny
    """


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class Height(str, Enum):
    h1 = "1m"
    h3 = "3m"
    h5 = "5m"
    h7_5 = "7.5m"
    h10 = "10m"


@app.command()
def score(
    paths: Annotated[list[str], typer.Argument(
        help="Video files, folders (their videos, sorted) or quoted glob patterns.", show_default=False)],
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="Weights NAME (see `aqa weights list`) or checkpoint FILE; default: $AQA_WEIGHTS, "
        "then the bundled demo weights, then ~/.cache/aqa.", show_default=False)] = None,
    device: Annotated[str, typer.Option("--device", envvar="AQA_DEVICE",
                                        help="auto, cpu, cuda or cuda:N.")] = "auto",
    fmt: Annotated[Optional[OutputFormat], typer.Option(
        "--format", "-f", help="Output format; default table, or from the -o suffix (.csv, .json).",
        show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write the output here instead of stdout; a CSV is resumable.",
        show_default=False)] = None,
    csv_file: Annotated[Optional[Path], typer.Option(
        "--csv", help="Also write a resumable CSV here: rerun to skip videos already in it (same file, size, "
        "mtime, weights and options, kept in FILE.aqa-resume.jsonl); a video scored again replaces its row.",
        show_default=False)] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Search folders' subfolders too.")] = False,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first video that fails.")] = False,
    height: Annotated[Optional[Height], typer.Option(
        "--height", help="The dive's height: final = the expected DD of the predicted dive there × "
        "execution. Without it: the score head, and the DD shown is the table's at the height the weights "
        "were trained on (most often), else 3m.",
        show_default=False)] = None,
    dd: Annotated[Optional[float], typer.Option(
        "--dd", help="The dive's DD from the scoresheet (0.1-5.0): final = DD × execution.",
        show_default=False)] = None,
    clips: Annotated[Optional[int], typer.Option(
        "--clips", min=1, max=64, help="Clips per video (each as many frames as the weights' clips: 32 for "
        "the bundled ones); default: the weights' setting.",
        show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only data and errors: no panel, "
                                        "progress or summary.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Per-video timings on stderr.")] = False,
) -> None:
    """Score dive videos: final score, execution, DD, dive number, classes and commentary.

    The final score is DD × execution when the DD is known: --dd, or the expected DD of the predicted
    dive at --height (or at the one height the weights were trained on); else the model's score head.

    stdout carries only data (table, JSON list or CSV); progress and messages go to stderr.

    One video: a panel with each class's probability goes to stderr (`> out.txt` keeps the table).

    On a terminal, for one video, the panel replaces the table.

    Exit codes: 0 all scored, 1 some video failed, 2 usage error, 3 weights missing or corrupt.

    Examples:

      aqa score dive.mp4

      aqa score meet/ --recursive --csv meet.csv

      aqa score "clips/*.mp4" --height 10m -f json -o scores.json
    """
    from aqa_cli.scoring import SYNTHETIC_NOTE, check_options
    from aqa_cli.batch import ScoreJob

    _one_line_warnings()
    check_options(height.value if height else None, dd, clips)  # before the weights load
    job = ScoreJob(paths, weights=weights, device=device, recursive=recursive, fmt=fmt.value if fmt else None,
                   output=output, csv_file=csv_file)
    scorer = job.scorer
    if verbose:
        err.print(f"weights: {scorer.path} on {scorer.device}", markup=False, highlight=False)
    if scorer.synthetic and not quiet:
        err.print(f"[yellow]note:[/yellow] {escape(scorer.name)}: {SYNTHETIC_NOTE}", highlight=False, soft_wrap=True)
    single = len(job.inputs) == 1
    panel_only = single and not quiet and job.fmt == "table" and output is None and sys.stdout.isatty()
    height_name = height.value if height else None

    bar = _progress(len(job.inputs), enabled=not quiet and not single and err.is_terminal)

    def show(result, resumed: bool) -> None:
        if result.error:
            err.print(f"[red]failed:[/red] {escape(f'{result.video}: {result.error}')}", highlight=False,
                      soft_wrap=True)
        if verbose and result.timings:
            err.print(f"{result.video}: decode {result.timings['decode']:.2f} s, "
                      f"model {result.timings['model']:.2f} s", markup=False, highlight=False)
        if single and not quiet and not result.error:
            _print_panel(result, scorer, height_name or scorer.default_height)
        bar.advance()

    summary = job.run(None if panel_only else sys.stdout, height=height_name, dd=dd, clips=clips,
                      fail_fast=fail_fast, on_result=show, display=bar)
    if not quiet:
        _print_summary(summary)
    if summary.failed:
        raise typer.Exit(1)


def _one_line_warnings() -> None:
    """Decoder warnings (a short video, a damaged tail) as one yellow line each on stderr."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        err.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True)

    warnings.showwarning = show


class _progress:
    """A transient Rich progress bar on stderr while in its context; `advance()` moves it by one video."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar, self.task = total, enabled, None, None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=err, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("scoring", total=self.total)
        return self

    def advance(self) -> None:
        if self.bar:
            self.bar.advance(self.task)

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()
        return False


def _print_panel(result, scorer, height: str) -> None:
    """The one-video view on stderr: scores, dive, each class with its probability, commentary."""
    from rich.panel import Panel
    from rich.table import Table

    from aqa_cli.rules import listed_heights
    from aqa_cli.scoring import SYNTHETIC_NOTE

    def num(value, places=2):
        return "-" if value is None else f"{value:.{places}f}"

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Final score", f"[bold green]{num(result.final_score)}[/bold green]")
    grid.add_row("Execution", num(result.execution))
    dd_from = {"given": "given", "table": f"table, {height}",
               "expected": f"expected: the {height} table's DDs weighted by the dive's class probabilities"}
    missing = f"not in the {height} table"
    if result.dd_from not in dd_from and (elsewhere := listed_heights(result.dive_number)):
        missing += f"; listed at {', '.join(elsewhere)}: give --height"
    grid.add_row("Difficulty", f"{num(result.difficulty, 2 if result.dd_from == 'expected' else 1)} "
                               f"({dd_from.get(result.dd_from, missing)})")
    grid.add_row("Dive", f"{result.dive_number or '-'}  {result.description or ''}")
    for head in ("position", "armstand", "rotation_type", "ss_no", "tw_no"):
        value = getattr(result, head)
        if value is None:
            continue
        shown = ("yes" if value else "no") if head == "armstand" else value
        if head in ("ss_no", "tw_no"):
            shown = f"{value} half {'somersaults' if head == 'ss_no' else 'twists'}"
        p = result.probabilities.get(head)  # None for a row resumed from a CSV written before aqa kept them
        grid.add_row(head.replace("_", " "), f"{shown}" + (f"  [dim]p={p:.2f}[/dim]" if p is not None else ""))
    if result.commentary:
        grid.add_row("Commentary", f"[italic]{result.commentary}[/italic]")
    grid.add_row("Weights", scorer.name + (f"\n[yellow]{SYNTHETIC_NOTE}[/yellow]" if scorer.synthetic else ""))
    err.print(Panel(grid, title=escape(result.video), expand=False), highlight=False)


def _print_summary(summary) -> None:
    """One line on stderr: how many inputs were scored, resumed and failed (writers.BatchSummary)."""
    line = f"Scored {summary.scored}/{summary.total}"
    if summary.resumed:
        line += f" ({summary.resumed} already in {summary.resume_path})"
    failed = summary.failed
    if failed:
        names = ", ".join(f"{r.video} ({r.error})" for r in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        line += f"; {len(failed)} failed: {names}{more}"
        if summary.not_tried:
            line += f"; stopped there (--fail-fast), {summary.not_tried} not tried"
    err.print(line, markup=False, highlight=False, soft_wrap=True)


class Task(str, Enum):
    stl = "stl"
    mtl = "mtl"


@app.command()
def train(
    data: Annotated[Optional[str], typer.Option("--data", help="Dataset root (see `aqa data synth`); "
                                                "default: data.root of the config.", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Run directory: last.pt, best.pt, metrics.jsonl, "
                                      "report.json.")] = Path("runs/aqa"),
    task: Annotated[Optional[Task], typer.Option("--task", help="stl: score only; mtl: score, dive "
                                                 "classes and commentary. Default: the config's.",
                                                 show_default=False)] = None,
    config: Annotated[Optional[str], typer.Option(
        "--config", "-c", help="Shipped config NAME (c3d-avg-mtl, tiny-mtl, smoke, ...) or a YAML FILE; "
        "default c3d-avg-TASK.", show_default=False)] = None,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config key, e.g. --set train.lr=3e-4 (repeatable).", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from last.pt.")] = False,
    device: Annotated[str, typer.Option("--device", envvar="AQA_DEVICE", help="auto, cpu, cuda or cuda:N.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Train a single-task or multitask model on a dataset root.

    The validation split picks best.pt; the test split is evaluated once, at the end. Run the same
    command under torchrun for DistributedDataParallel. --set train.max_minutes=N is a time budget:
    when the epochs left would not fit, the run trains those that do, the learning rate decaying
    over them.

    Examples:

      aqa train --task mtl --config tiny-mtl --data syndive --out runs/tiny

      aqa train --config smoke --data syndive --out runs/smoke --set train.epochs=1

      torchrun --nproc-per-node 2 -m aqa_cli train --config c3d-avg-mtl --data mtl-aqa --out runs/paper
    """
    from aqa_cli.config import load_config
    from aqa_cli.train import train as run_training

    cfg = load_config(config or f"c3d-avg-{(task or Task.mtl).value}", overrides or [])
    if task is not None:
        cfg.model.task = task.value
    if data is not None:
        cfg.data.root = data
    try:
        report = run_training(cfg, out, resume=resume, device=device, quiet=quiet, console=err)
    except KeyboardInterrupt:
        if (out / "last.pt").is_file():
            err.print(f"The run can go on: add --resume to the same command (last epoch saved in {out / 'last.pt'}).",
                      markup=False, highlight=False, soft_wrap=True)
        raise
    if report and not quiet:
        err.print(f"report: {out / 'report.json'}", markup=False, highlight=False)


class EvalFormat(str, Enum):
    table = "table"
    json = "json"


@app.command(name="eval")
def eval_(
    weights: Annotated[str, typer.Option("--weights", help="Checkpoint FILE (e.g. runs/tiny/best.pt) or weights "
                                         "NAME (see `aqa weights list`).", show_default=False)],
    data: Annotated[str, typer.Option("--data", help="Dataset root to evaluate on.", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="train, val, test, or all (every split: for a root "
                                       "the weights never trained on).")] = "test",
    fmt: Annotated[EvalFormat, typer.Option("--format", "-f", help="table or json.")] = EvalFormat.table,
    device: Annotated[str, typer.Option("--device", envvar="AQA_DEVICE", help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Samples per batch.")] = 4,
    predictions: Annotated[Optional[str], typer.Option(
        "--predictions", help="Also write one CSV row per sample (truth beside each prediction) to FILE.",
        show_default=False)] = None,
) -> None:
    """Evaluate a checkpoint on a dataset split with honest metrics.

    Spearman's ρ, R-ℓ2, accuracy per head and of the whole dive number, DD × predicted execution,
    BLEU-4 / CIDEr-D of the commentary, and on synthetic data the oracle ceiling.

    Examples:

      aqa eval --weights runs/tiny/best.pt --data syndive

      aqa eval --weights runs/tiny/best.pt --data syndive --split val -f json > val.json

      aqa eval --weights runs/tiny/best.pt --data syndive-dev --split all

      aqa eval --weights runs/tiny/best.pt --data syndive --predictions test.csv
    """
    import json
    import math

    from aqa_cli.evaluate import evaluate_checkpoint

    report = evaluate_checkpoint(weights, data, split=split, device=device, batch_size=batch_size,
                                 predictions=predictions)
    if predictions is not None:
        err.print(f"wrote {report['samples']} rows to {predictions}", markup=False, highlight=False, soft_wrap=True)
    if fmt == EvalFormat.json:
        clean = json.loads(json.dumps(report), parse_constant=lambda c: None)  # NaN → null: strict JSON
        typer.echo(json.dumps(clean, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    def num(x) -> str:
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    title = f"{report['weights']} on {report['data']['name']} / {split} ({report['samples']} samples)"
    table = Table(title=escape(title))
    table.add_column("metric")
    table.add_column("value", justify="right")

    def rows(name: str, value) -> None:  # nested groups (faults: per fault n and spearman) flattened
        if isinstance(value, dict):
            for key, inner in value.items():
                rows(f"{name}.{key}", inner)
        else:
            table.add_row(name, str(value) if isinstance(value, int) else num(value))

    for group, values in report.items():
        if isinstance(values, dict) and group != "data":
            rows(group, values)
    Console(emoji=False).print(table)
    if report["data"].get("synthetic"):
        err.print("[yellow]synthetic data:[/yellow] numbers measure the synthetic task, not real diving")


class DatasetName(str, Enum):
    mtl_aqa = "mtl-aqa"


@data_app.command()
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


def _frame_size(size: str) -> tuple[int, int]:
    """--size WIDTHxHEIGHT → (width, height)."""
    from aqa_cli.errors import UsageError

    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 171x128") from None
    return width, height


@data_app.command()
def preprocess(
    dataset: Annotated[DatasetName, typer.Argument(help="Dataset to preprocess: mtl-aqa.")],
    root: Annotated[Path, typer.Option("--root", help="Dataset root filled by `aqa data download`.",
                                       show_default=False)],
    workers: Annotated[int, typer.Option("--workers", min=1, help="Videos decoded in parallel.")] = 1,
    size: Annotated[str, typer.Option("--size", help="Stored frame size WIDTHxHEIGHT (32-1920 x 32-1080).")] = "171x128",
) -> None:
    """Cut dives from source videos into frame arrays of the common dataset root.

    Each dive becomes ROOT/frames/<id>.npy: the 103 frames ending at its end frame plus 3 on each
    side, resized while decoding, written atomically; dives already done are skipped, so rerunning
    after an interruption finishes the job. Writes the splits (val carved from train with a fixed
    seed, the official test split untouched). Missing videos are listed; the rest goes on.

    Examples:

      aqa data preprocess mtl-aqa --root data/mtl-aqa

      aqa data preprocess mtl-aqa --root data/mtl-aqa --workers 4 --size 171x128
    """
    from aqa_cli.datasets.mtl_aqa import adapter as mtl_aqa

    width, height = _frame_size(size)  # the library checks its bounds
    report = mtl_aqa.preprocess(root, workers=workers, size=(width, height), console=err)
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


@data_app.command()
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

    _one_line_warnings()
    width, height = _frame_size(size)
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


@data_app.command()
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
    _print_summary_tables(summary)


def _print_summary_tables(summary: dict) -> None:
    from rich.table import Table

    out = Console(emoji=False)
    kind = " [yellow](synthetic)[/yellow]" if summary["synthetic"] and "synthetic" not in summary["source"] else ""
    facts = Table(title=escape(f"{summary['name']}: {summary['source']}") + kind, show_header=False)
    facts.add_column("fact")
    facts.add_column("value")
    counts = summary["counts"]
    facts.add_row("samples", f"{counts['total']} (train {counts['train']}, val {counts['val']}, test {counts['test']})")
    fs, dd = summary["final_score"], summary["difficulty"]
    if fs:
        facts.add_row("final score", f"{fs['min']:g} to {fs['max']:g} (mean {fs['mean']:g}, sd {fs['std']:g})")
    if dd:
        facts.add_row("difficulty", f"{dd['min']:g} to {dd['max']:g} ({dd['distinct']} values)")
    facts.add_row("heights", ", ".join(f"{h} {n}" for h, n in summary["heights"].items()))
    facts.add_row("judges per dive", ", ".join(f"{k}: {n}" for k, n in summary["judges"].items()))
    facts.add_row("dive numbers", str(summary["dive_numbers"]))
    vocab = summary["vocabulary"]
    facts.add_row("caption vocabulary", f"{vocab['train']} words (train), {vocab['all']} (all); "
                                        f"{vocab['captioned']} captioned")
    frames = summary["frames"]
    facts.add_row("frames", f"{frames['present']} present, {frames['missing']} missing, {frames['corrupt']} corrupt "
                            f"(shape {tuple(frames['expected_shape'])})")
    if summary["oracle_spearman"] is not None:
        facts.add_row("oracle Spearman (test)", f"{summary['oracle_spearman']:.4f}")
    out.print(facts)
    labels = Table(title="labels")
    labels.add_column("head")
    labels.add_column("classes (count)")
    for head, hist in summary["labels"].items():
        labels.add_row(head, "  ".join(f"{name}: {n}" for name, n in hist.items()))
    out.print(labels)


@weights_app.command(name="import-c3d")
def weights_import_c3d(
    pickle_path: Annotated[Path, typer.Argument(help="The Sports-1M C3D weights (c3d.pickle).",
                                                show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="aqa backbone file to write.")] = Path("c3d-sports1m.pt"),
) -> None:
    """Convert the Sports-1M C3D weights into an aqa backbone file (convolutions only).

    The pickle is read without running code (tensors and numpy arrays only).

    Examples:

      aqa weights import-c3d c3d.pickle --out c3d-sports1m.pt

      aqa train --config c3d-avg-mtl --data mtl-aqa --set model.pretrained=c3d-sports1m.pt
    """
    from aqa_cli.weights import import_c3d

    info = import_c3d(pickle_path, out)
    err.print(f"wrote {info['out']}: {info['tensors']} tensors, {info['parameters']:,} parameters "
              f"(dropped {', '.join(info['dropped']) or 'nothing'})", markup=False, highlight=False)


@weights_app.command(name="list")
def weights_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """Show the bundled and cached weights with their training data and test metrics.

    Examples:

      aqa weights list

      aqa weights list --json
    """
    import json

    from aqa_cli.weights import bundled_dir, cache_dir, list_weights

    rows = list_weights()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        err.print(f"no weights in {bundled_dir()} or {cache_dir()}", markup=False, highlight=False)
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "where", "size", "data", "test metrics"):
        table.add_column(column, overflow="fold")
    for row in rows:
        data = row["data"] or {}
        kind = "synthetic" if data.get("synthetic") else "real"
        metrics = (row["metrics"] or {}).get("test") or {}
        shown = _metrics_line(metrics)
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, row["where"], f"{row['size'] / 1e6:.1f} MB",
                      row["error"] or f"{data.get('name', '?')} ({kind})", shown or "-")
    Console(highlight=False, emoji=False).print(table)


def _metrics_line(metrics: dict) -> str:
    """A checkpoint's test metrics in one line: each Spearman as ρ, each head's accuracy, plain numbers."""
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key} {value:.3f}")
        elif key == "accuracy" and isinstance(value, dict):
            parts += [f"{head} {acc:.3f}" for head, acc in value.items()]
        elif isinstance(value, dict) and isinstance(value.get("spearman"), float):
            parts.append(f"{key} ρ {value['spearman']:.3f}")
    return ", ".join(parts)


@weights_app.command(name="verify")
def weights_verify(
    files: Annotated[Optional[list[Path]], typer.Argument(
        help="Checkpoints to check; default: every bundled and cached one.", show_default=False)] = None,
    update: Annotated[bool, typer.Option(
        "--update", help="Rewrite the bundled folder's manifest.yaml from the files there (after adding new "
        "demo weights); a listed file whose hash changed is refused, not accepted.")] = False,
) -> None:
    """Re-hash weights against their folder's manifest.yaml (sha256 and size). Exit 3 if any is corrupt.

    Examples:

      aqa weights verify

      aqa weights verify --update
    """
    from aqa_cli.errors import UsageError
    from aqa_cli.weights import bundled_dir, verify_weights, write_manifest

    if update and files:
        raise UsageError("--update rewrites the bundled folder's manifest: give no files with it")
    if update:
        err.print(f"wrote {write_manifest(bundled_dir())}", markup=False, highlight=False)
    results = verify_weights(list(files) if files else None)
    if not results:
        err.print("no weights to verify", highlight=False)
    for path, status in results:
        typer.echo(f"{status if status in ('ok', 'unlisted') else 'FAILED'}\t{path}")
        if status not in ("ok", "unlisted"):
            err.print(f"[red]error:[/red] {escape(str(status))}", highlight=False, soft_wrap=True)
    if any(status not in ("ok", "unlisted") for _, status in results):
        raise typer.Exit(3)


def _reflow(doc: str) -> str:
    """A docstring with the lines of each prose paragraph joined; indented paragraphs (examples) kept.

    Rich help keeps a docstring's line breaks, so on an 80-column terminal every source line longer than
    the panel left a short ragged line after it; joined, Rich wraps each paragraph to the terminal."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if p.startswith(" ") else " ".join(p.split("\n")) for p in paragraphs)


for _group in (app, data_app, weights_app):
    for _command in _group.registered_commands:
        _command.help = _command.help or _reflow(_command.callback.__doc__ or "")


def main() -> None:
    """Entry point: run the app, turning known errors into one red line (and the fix) on stderr.

    Click handles usage errors itself (exit 2); AqaError subclasses carry their own exit code.
    """
    try:
        app()
    except AqaError as exc:
        _report(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]Interrupted.[/red]")
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130:  # Typer turns Ctrl-C inside a command into a silent exit 130
            err.print("[red]Interrupted.[/red]")
        raise
    except Exception as exc:
        if os.environ.get("AQA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(f'{type(exc).__name__}: {exc}')}", highlight=False)
        err.print("This is a bug in aqa; rerun with AQA_DEBUG=1 for the traceback and report it.")
        sys.exit(1)


def _report(exc: AqaError) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"  fix: {exc.hint}", markup=False, highlight=False, soft_wrap=True)
    if os.environ.get("AQA_DEBUG"):
        err.print_exception()
