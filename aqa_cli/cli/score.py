"""`aqa score`: videos → scores (stdout), a panel, progress and a summary (stderr)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from aqa_cli.cli import views
from aqa_cli.cli.common import DataFormat, err, one_line_warnings


def score(
    paths: Annotated[list[str], typer.Argument(
        help="Video files, folders (their videos, sorted) or quoted glob patterns.", show_default=False)],
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="Weights NAME (see `aqa weights list`) or checkpoint FILE; default: $AQA_WEIGHTS, "
        "then the bundled demo weights, then ~/.cache/aqa.", show_default=False)] = None,
    device: Annotated[str, typer.Option("--device", envvar="AQA_DEVICE",
                                        help="auto, cpu, cuda or cuda:N.")] = "auto",
    fmt: Annotated[Optional[DataFormat], typer.Option(
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
    height: Annotated[Optional[str], typer.Option(
        "--height", help="The dive's height, 1m, 3m, 5m, 7.5m or 10m (3, 3M and 3 m read as 3m): final = the expected DD of the predicted dive there × "
        "execution. Without it: the score head, and the DD shown is the table's at the height the weights "
        "were trained on (most often), else 3m.",
        show_default=False)] = None,
    dd: Annotated[Optional[str], typer.Option(
        "--dd", help="The dive's DD from the scoresheet (0.1-5.0; 3,2 reads as 3.2): final = DD × execution.",
        show_default=False)] = None,
    dive: Annotated[Optional[str], typer.Option(
        "--dive", help="The dive's number from the scoresheet, e.g. 5156B (5156b reads too; with --height where "
        "its DD differs between heights): its labels are reported and final = its table DD × execution.",
        show_default=False)] = None,
    dives: Annotated[Optional[Path], typer.Option(
        "--dives", help="A meet's dive sheet: a CSV with columns video,dive,height,dd (any of the last three; "
        "video by path or file name): each video's own options; empty cells keep --dive, --height, --dd. "
        "Rows naming no input are listed.", show_default=False)] = None,
    start: Annotated[Optional[float], typer.Option(
        "--start", min=0, help="Score from this time (s) on, instead of where the dive locator finds the dive.",
        show_default=False)] = None,
    end: Annotated[Optional[float], typer.Option(
        "--end", min=0, help="Score up to this time (s).", show_default=False)] = None,
    all_dives: Annotated[bool, typer.Option(
        "--all-dives", help="A row for every dive the locator finds (a training session): each scored on its "
        "own span. With --csv (or -o FILE.csv) resumable: a video whose dives are all there is not scored "
        "again; under torchrun each process takes whole videos.")] = False,
    locate: Annotated[Optional[bool], typer.Option(
        "--locate/--no-locate", help="Find the dive (take-off to entry and splash) in each video and score that "
        "span; --no-locate scores the whole file. Default: when the locator's weights are there (bundled: "
        "trained on synthetic SynDive sessions).", show_default=False)] = None,
    reframe: Annotated[Optional[bool], typer.Option(
        "--reframe/--no-reframe", help="Crop a diver filmed wider than the weights learned (small in the picture) "
        "to the framing they know, frame by frame; footage framed as they learned is left as it is. Default: "
        "when the framer's weights are there (bundled: trained on synthetic SynDive frames).",
        show_default=False)] = None,
    clips: Annotated[Optional[int], typer.Option(
        "--clips", min=1, max=64, help="Clips per video (each as many frames as the weights' clips: 32 for "
        "the bundled ones); default: the weights' setting.",
        show_default=False)] = None,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="Also write the coach's report: FILE.html for one video, or a folder (one page per "
        "dive and index.html, resumable). Self-contained HTML: frames, score, classes, commentary.",
        show_default=False)] = None,
    dive_check: Annotated[Optional[bool], typer.Option(
        "--dive-check/--no-dive-check", help="Also ask the Kinetics-400 I3D whether each video looks like a "
        "dive (looks_like_dive, and a warning when it does not); default: when it is imported (`aqa weights "
        "import-i3d`). It took 5-6 s a video on a busy 2-core CPU.", show_default=False)] = None,
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

      aqa score meet/ --height 3m --report meet-report/

      aqa score anna.mp4 --dive 5156B --height 3m

      aqa score meet/ --dives meet-dives.csv --csv meet.csv

      aqa score session.mp4 --all-dives -o session.csv
    """
    from aqa_cli.batch import ScoreJob
    from aqa_cli.errors import UsageError
    from aqa_cli.scoring import SYNTHETIC_NOTE, check_dive, check_options
    from aqa_cli.sheet import DiveSheet

    one_line_warnings()
    height, dd, clips = check_options(height, dd, clips)  # before the weights load
    sheet = DiveSheet.read(dives, height) if dives else None
    window = _window(start, end) if start is not None or end is not None else None
    if all_dives and (window or report):
        raise UsageError("--all-dives scores every dive found: not with --start/--end or --report")
    job = ScoreJob(paths, weights=weights, device=device, recursive=recursive, fmt=fmt.value if fmt else None,
                   output=output, csv_file=csv_file, dive_check=dive_check, locate=False if window else locate,
                   all_dives=all_dives, reframe=reframe)
    scorer = job.scorer
    quiet, verbose = quiet or not job.shard.main, verbose and job.shard.main  # under torchrun only rank 0 speaks
    if dive:
        dive = check_dive(dive, height or scorer.one_height, dd)[0]
    if not quiet:
        _say_what_applies_to_all(job.inputs, sheet, dive=dive, dd=dd, window=window)
    if verbose:
        err.print(f"weights: {scorer.path} on {scorer.device}", markup=False, highlight=False)
    if scorer.synthetic and not quiet:
        err.print(f"[yellow]note:[/yellow] {escape(scorer.name)}: {SYNTHETIC_NOTE}", highlight=False, soft_wrap=True)
    single = len(job.inputs) == 1
    panel_only = single and not quiet and job.fmt == "table" and output is None and sys.stdout.isatty()

    bar = views.Progress(len(job.inputs), enabled=not quiet and not single and err.is_terminal)
    if single and not quiet and err.is_terminal and scorer.locator is not None and window is None:
        bar = _locating_bar(job.inputs[0][0], scorer)  # one long recording: the locator's pass is the wait
    pages = _report_writer(report, scorer, single, job.settings(height, dd, clips, dive, sheet, window)) \
        if report and job.shard.main else None

    def show(result, resumed: bool) -> None:
        if result.warning and not quiet:
            err.print(f"[yellow]warning:[/yellow] {escape(f'{result.video}: {result.warning}')}", highlight=False,
                      soft_wrap=True)
        if result.error:
            err.print(f"[red]failed:[/red] {escape(f'{result.video}: {result.error}')}", highlight=False,
                      soft_wrap=True)
        if verbose and result.timings:
            err.print(f"{result.video}: decode {result.timings['decode']:.2f} s, "
                      f"model {result.timings['model']:.2f} s", markup=False, highlight=False)
        if single and not quiet and not result.error:
            views.print_panel(err, result, scorer, result.height or height or scorer.default_height)
        if pages:
            pages.add(result)
        bar.advance()

    summary = job.run(None if panel_only else sys.stdout, height=height, dd=dd, clips=clips, dive=dive, sheet=sheet,
                      window=window, fail_fast=fail_fast, on_result=show, display=bar)
    if pages:
        where = pages.close()
        if not quiet:
            err.print(f"report: {where}", markup=False, highlight=False, soft_wrap=True)
    if not quiet:
        views.print_summary(err, summary)
    if summary.failed:
        raise typer.Exit(1)


class _ReportPages:
    """`--report`: one HTML file for one video, or a ReportFolder (pages + index.html, resumable)."""

    def __init__(self, target: Path, scorer, single: bool, settings: dict, height: str | None):
        from aqa_cli.report import ReportFolder, model_card
        from aqa_cli.scoring import SYNTHETIC_NOTE

        self.target, self.height = target, height
        self.page_options = {"scorer_name": scorer.name, "model_card": model_card(scorer.data, scorer.metrics),
                             "synthetic_note": SYNTHETIC_NOTE if scorer.synthetic else None, "height": height}
        self.folder = None if single and target.suffix.lower() in (".html", ".htm") else \
            ReportFolder(target, settings, **self.page_options)

    def add(self, result) -> None:
        """Write the result's page; the strip's frames are decoded again, straight at their size (about
        25 ms for a SynDive clip, 250 ms for 720p: benchmarks/bench_report.py)."""
        from aqa_cli.report import STRIP_FRAMES, strip_size, write_dive_report
        from aqa_cli.video import probe, read_even

        frames = duration = None
        if not result.error:
            info = probe(result.video)
            frames = read_even(result.video, n=STRIP_FRAMES, size=strip_size(info.width, info.height), clip_len=1)
            duration = info.duration
        if self.folder is None:
            if frames is not None:
                write_dive_report(result, frames, self.target, duration=duration, **self.page_options)
        elif not self.folder.is_done(result.video):
            self.folder.add(result, frames, duration=duration)

    def close(self) -> Path:
        return self.target if self.folder is None else self.folder.close()


def _report_writer(target: Path, scorer, single: bool, settings: dict) -> _ReportPages:
    from aqa_cli.errors import UsageError

    if target.suffix.lower() in (".html", ".htm") and not single:
        raise UsageError(f"--report {target}: one page is for one video; give a folder for several")
    return _ReportPages(target, scorer, single, settings, settings.get("height"))


def _locating_bar(video: str, scorer) -> views.Progress:
    """A bar over the recording's seconds, moved by the dive locator's pass (`Scorer.progress`)."""
    from aqa_cli.errors import AqaError
    from aqa_cli.video import probe

    try:
        duration = probe(video).duration
    except AqaError:  # an unreadable file: its error comes with its result
        return views.Progress(1, enabled=False)
    bar = views.Progress(duration, enabled=duration > 0, label="finding the dive", seconds=True)
    scorer.progress = bar.update
    return bar


def _window(start: float | None, end: float | None) -> tuple[float, float]:
    """--start/--end as a window (s); a missing end is the end of the file."""
    from aqa_cli.errors import UsageError

    start, end = start or 0.0, float("inf") if end is None else end
    if not end > start:
        raise UsageError(f"--start {start} --end {end}: the end must come after the start")
    return start, end


def _say_what_applies_to_all(inputs: list, sheet, *, dive: str | None, dd: float | None, window=None) -> None:
    """A dive or DD given once applies to every video of a batch: say so, and name the sheet's rows that
    match no input (a misspelt name would otherwise silently score that video without its dive)."""
    videos = [video for video, problem in inputs if problem is None]
    span = f"{window[0]:g}-{window[1]:g} s" if window else None
    given = ", ".join(f"{flag} {value}" for flag, value in (("--dive", dive), ("--dd", dd), ("the span", span))
                      if value is not None)
    if given and len(videos) > 1:
        rest = " without a row in the dive sheet" if sheet else ""
        err.print(f"note: {given} applies to every one of the {len(videos)} videos{rest}", markup=False,
                  highlight=False, soft_wrap=True)
    if sheet and (unmatched := sheet.unmatched(videos)):
        names = ", ".join(f"{r.video} (line {r.line})" for r in unmatched[:5])
        more = f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
        err.print(f"warning: {len(unmatched)} row(s) of {sheet.path} name no input video: {names}{more}",
                  markup=False, highlight=False, soft_wrap=True)
