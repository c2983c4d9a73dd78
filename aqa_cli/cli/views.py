"""How results look to people: the one-video panel, the batch summary line, the progress bar, and the
tables of `aqa eval`, `aqa data info` and `aqa weights list`. Functions here render; they compute nothing.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from aqa_cli.cli.common import err


class Progress:
    """A transient Rich progress bar on stderr while in its context; `advance()` moves it by one video,
    or, counting `seconds` of one video (e.g. the dive locator's pass over a long recording), `update(t)`
    sets how far it is (thread-safe, as Rich's bars are)."""

    def __init__(self, total: float, enabled: bool, label: str = "scoring", seconds: bool = False):
        self.total, self.enabled, self.label, self.seconds = total, enabled, label, seconds
        self.bar = self.task = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            count = TextColumn("{task.completed:.0f}/{task.total:.0f} s") if self.seconds else MofNCompleteColumn()
            self.bar = Progress(TextColumn(self.label), BarColumn(), count, TimeRemainingColumn(), console=err,
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        return self

    def advance(self) -> None:
        if self.bar and not self.seconds:
            self.bar.advance(self.task)

    def update(self, completed: float) -> None:
        if self.bar:
            self.bar.update(self.task, completed=min(completed, self.total))

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()
        return False


def print_panel(err: Console, result, scorer, height: str) -> None:
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
    # A score-only model (S4AQA, regress on segment features) has no execution or dive to show.
    score_only = result.execution is None and result.dive_number is None
    how = {"given DD": "given DD x execution", "given dive": "the given dive's table DD x execution",
           "expected DD": "expected DD x execution",
           "score head": "a score-only model" if score_only else
           "the model's score head: give --height or --dd for DD x execution"}
    source = f"  [dim]({how[result.score_source]})[/dim]" if result.score_source else ""
    grid.add_row("Final score", f"[bold green]{num(result.final_score)}[/bold green]{source}")
    if not score_only:
        grid.add_row("Execution", num(result.execution))
        dd_from = {"given": "given", "dive": "the table's, for the given dive",
                   "table": f"the predicted dive's in the {height} table, not used for the final",
                   "expected": f"expected: the {height} table's DDs weighted by the dive's class probabilities"
                               + ("; the height as the view model reads it" if result.height_from == "predicted" else "")}
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
    if result.window_start is not None:
        how = {"located": "the dive the locator found", "given": "--start/--end"}.get(result.window_from, "")
        grid.add_row("Scored span", f"{result.window_start:.2f}-{result.window_end:.2f} s  [dim]({how})[/dim]")
    if result.board_side == "right":
        grid.add_row("Board side", "right  [dim](mirrored for the model, which learned the board on the left)[/dim]")
    if result.framing == "reframed":
        grid.add_row("Framing", f"zoomed {result.zoom:.1f}x  [dim](the diver was small in the picture: each frame "
                                "cropped to where a replay camera would point)[/dim]")
    if result.looks_like_dive is not None:
        seen = ", ".join(f"{name} {p:.2f}" for name, p in result.kinetics_top)
        flag = "[yellow]no[/yellow]" if "does not look like a dive" in (result.warning or "") else "yes"
        grid.add_row("Looks like a dive", f"{flag}  [dim]Kinetics I3D: diving p={result.looks_like_dive:.2f}; "
                                          f"top: {escape(seen)}[/dim]")
    grid.add_row("Weights", scorer.name + (f"\n[yellow]{SYNTHETIC_NOTE}[/yellow]" if scorer.synthetic else ""))
    err.print(Panel(grid, title=escape(result.video), expand=False), highlight=False)


def print_summary(err: Console, summary) -> None:
    """One line on stderr: how many inputs were scored, resumed and failed (batch.BatchSummary)."""
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
    if summary.skipped:
        names = ", ".join(f"{path} ({why})" for path, why in summary.skipped[:5])
        more = f" and {len(summary.skipped) - 5} more" if len(summary.skipped) > 5 else ""
        err.print(f"Not scored: {len(summary.skipped)} files of the folders given are not videos: {names}{more}",
                  markup=False, highlight=False, soft_wrap=True)


def print_dataset_summary(summary: dict) -> None:
    """`aqa data info`'s tables on stdout: facts about the root, then the label histograms."""
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


def metrics_line(metrics: dict) -> str:
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


def print_eval_report(report: dict, split: str) -> None:
    """`aqa eval`'s table on stdout: every number of the report, nested groups as dotted names."""
    import math

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


def print_weights_table(rows: list[dict]) -> None:
    """`aqa weights list`'s table on stdout: name, where, size, training data, test metrics."""
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "where", "size", "data", "test metrics"):
        table.add_column(column, overflow="fold")
    for row in rows:
        data = row["data"] or {}
        kind = "synthetic" if data.get("synthetic") else "real"
        metrics = (row["metrics"] or {}).get("test") or {}
        shown = metrics_line(metrics)
        name = row["name"] + (" (default)" if row["default"] else "")
        table.add_row(name, row["where"], f"{row['size'] / 1e6:.1f} MB",
                      row["error"] or f"{data.get('name', '?')} ({kind})", shown or "-")
    Console(highlight=False, emoji=False).print(table)
