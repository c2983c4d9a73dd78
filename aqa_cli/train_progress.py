"""What `aqa train` shows while it runs: Rich bars and one line per epoch, on stderr (stdout stays data)."""

from __future__ import annotations

import math
from pathlib import Path

from aqa_cli.errors import UsageError


def stderr_console():
    """A Rich console on stderr, as the CLI prints its messages."""
    from rich.console import Console

    return Console(stderr=True, emoji=False)


class TrainProgress:
    """Live progress: an epoch bar, a batch bar with loss, clips/s and ETA, and one printed line per
    finished epoch. Silent when `quiet` (-q, and every torchrun process but rank 0), apart from warnings
    (`warn`, `shorten`)."""

    def __init__(self, console, quiet: bool, epochs: int, batches: int, start_epoch: int):
        self.quiet = quiet
        self.console = console or stderr_console()
        if quiet:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=True)
        self.epochs_task = self.progress.add_task("epochs", total=epochs, completed=start_epoch, info="")
        self.batch_task = self.progress.add_task("batches", total=batches, info="")
        self.batches = batches

    def __enter__(self):
        if not self.quiet:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if not self.quiet:
            self.progress.__exit__(*exc)

    def warn(self, text: str) -> None:
        """A yellow warning line, printed even when quiet."""
        self.console.print(f"warning: {text}", style="yellow", markup=False, highlight=False, soft_wrap=True)

    def start_epoch(self, epoch: int) -> None:
        if not self.quiet:
            self.progress.reset(self.batch_task, total=self.batches, description=f"epoch {epoch + 1}", info="")

    def shorten(self, epochs: int, text: str) -> None:
        """The run now trains `epochs` epochs; `text` says why."""
        if not self.quiet:
            self.progress.update(self.epochs_task, total=epochs)
        self.warn(text)

    def step(self, loss: float, clips_per_s: float) -> None:
        if not self.quiet:
            self.progress.update(self.batch_task, advance=1, info=f"loss {loss:.4f}  {clips_per_s:.1f} clips/s")

    def end_epoch(self, record: dict) -> None:
        """The epoch's line: mean training loss, validation Spearman and two accuracies, speed."""
        if self.quiet:
            return
        self.progress.advance(self.epochs_task)
        val = record.get("val", {})
        rho = val.get("score", {}).get("spearman")
        acc = val.get("accuracy", {})
        extra = "".join(f" {short} {acc[h]:.2f}" for h, short in (("position", "pos"), ("rotation_type", "rot"))
                        if h in acc)
        self.console.print(f"epoch {record['epoch'] + 1}: loss {record.get('train_loss', math.nan):.3f} "
                           f"val ρ {_fmt(rho)}{_rules(val)}{extra} {record['clips_per_s']:.1f} clips/s "
                           f"{record['seconds']:.0f}s", highlight=False, soft_wrap=True)

    def summary(self, report: dict) -> None:
        """The run's last line: the chosen epoch and its test Spearman."""
        if self.quiet:
            return
        test = report.get("test", {})
        rho = test.get("score", {}).get("spearman")
        self.console.print(f"best epoch {report['best_epoch'] + 1} (by {report['selected_on']}); "
                           f"test ρ {_fmt(rho)}{_rules(test)}", highlight=False, soft_wrap=True)


def _rules(metrics: dict) -> str:
    """' (E[DD]×exec ρ 0.782)' where the metrics have the rules' score, else ''."""
    rho = metrics.get("expected_dd_x_execution", {}).get("spearman")
    return f" (E[DD]×exec ρ {_fmt(rho)})" if rho is not None else ""


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def draw_curves(out_dir: Path, select: str, console, said: bool) -> bool:
    """Redraw RUN/curves.png from metrics.jsonl (plots.plot_curves); without matplotlib say so once, in
    one line, and go on training. Returns whether that has been said."""
    from aqa_cli.plots import plot_curves

    try:
        plot_curves([out_dir], out_dir / "curves.png", select=select)
    except UsageError as exc:
        if not said and console is not None:
            console.print(f"note: no curves.png: {exc}", markup=False, highlight=False, soft_wrap=True)
        return True
    return said
