"""`aqa locate`: the dives in longer recordings → one row per dive (stdout), progress and notes (stderr)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from aqa_cli.cli.common import DataFormat, err, one_line_warnings

FIELDS = ("video", "dive", "start", "end", "confidence")


def locate(
    paths: Annotated[list[str], typer.Argument(
        help="Video files, folders (their videos, sorted) or quoted glob patterns.", show_default=False)],
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="Locator weights NAME or FILE; default: the bundled syndive-locator.",
        show_default=False)] = None,
    fmt: Annotated[DataFormat, typer.Option("--format", "-f", help="Output format on stdout.")] = DataFormat.table,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Search folders' subfolders too.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only data and errors: no notes or progress.")] = False,
) -> None:
    """Find the dives (take-off to entry and splash) in longer recordings: one row per dive.

    Each video is decoded once at 10 fps and 64x48 pixels, streaming (memory stays flat for an hour of
    1080p), and a small temporal network marks the moments inside a dive. Rows: video, dive (1, 2, ...),
    start and end in seconds from the first frame, confidence (0-1).

    The bundled locator was trained on synthetic SynDive sessions only, not calibrated for real footage.

    stdout carries only data; progress, notes and errors go to stderr. Exit codes: 0 all read, 1 some
    video could not be read, 2 usage error, 3 weights missing or corrupt.

    Examples:

      aqa locate session.mp4

      aqa locate training/ -f csv > dives.csv

      aqa locate "clips/*.mp4" -f json
    """
    from aqa_cli.inputs import expand_inputs
    from aqa_cli.errors import AqaError
    from aqa_cli.locate import SYNTHETIC_NOTE, find_dives, load_locator

    one_line_warnings()
    inputs = expand_inputs(paths, recursive)
    locator = load_locator(weights)
    if locator.synthetic and not quiet:
        err.print(f"[yellow]note:[/yellow] {escape(locator.path.stem)}: {SYNTHETIC_NOTE}", highlight=False,
                  soft_wrap=True)
    rows, failed = [], 0
    for video, problem in inputs:
        try:
            if problem:
                raise AqaError(f"{video}: {problem}")
            with _Progress(video, enabled=not quiet and err.is_terminal) as progress:
                found = find_dives(video, locator, progress=progress)
        except AqaError as exc:
            failed += 1
            err.print(f"[red]failed:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            continue
        if not found and not quiet:
            err.print(f"[yellow]warning:[/yellow] {escape(video)}: no dive found", highlight=False, soft_wrap=True)
        rows += [{"video": video, "dive": i + 1, "start": w.start, "end": w.end, "confidence": w.confidence}
                 for i, w in enumerate(found)]
    _write(rows, fmt)
    if not quiet:
        err.print(f"{len(rows)} dive(s) in {len(inputs) - failed}/{len(inputs)} video(s)", highlight=False)
    if failed:
        raise typer.Exit(1)


def _write(rows: list[dict], fmt: DataFormat) -> None:
    """The rows on stdout as a table, a JSON list or CSV (columns FIELDS)."""
    if fmt is DataFormat.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif fmt is DataFormat.csv:
        writer = csv.DictWriter(sys.stdout, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in FIELDS:
            table.add_column(name, overflow="fold", justify="left" if name == "video" else "right")
        for row in rows:
            table.add_row(Text(row["video"]), str(row["dive"]), f"{row['start']:.2f}", f"{row['end']:.2f}",
                          f"{row['confidence']:.2f}")
        tty = sys.stdout.isatty()
        Console(width=None if tty else 4000, highlight=False, emoji=False).print(table)
    sys.stdout.flush()


class _Progress:
    """A transient bar on stderr over one video's seconds; called with the seconds read so far."""

    def __init__(self, video: str, enabled: bool):
        self.video, self.enabled, self.bar = video, enabled, None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            from aqa_cli.video import probe

            total = probe(self.video).duration
            self.bar = Progress(TextColumn(f"locating {escape(Path(self.video).name)}"), BarColumn(),
                                TimeRemainingColumn(), console=err, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("locate", total=max(total, 1e-3))
        return self

    def __call__(self, seconds: float) -> None:
        if self.bar:
            self.bar.update(self.task, completed=seconds)

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()
        return False
