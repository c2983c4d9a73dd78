"""Writers for score results: a table, a JSON list, or CSV; the resumable CSV file; and `ScoreJob`, a
batch of inputs scored into those outputs (what `aqa score` runs).

Every format carries the same record (`scoring.FIELDS`, in that order): JSON keys = CSV columns.

    video          the input path as given
    final_score    float, 2 decimals        execution   float, 2 decimals (sum of the counted marks)
    difficulty     float (DD)               dive_number "105B"; description "Forward 2½ Somersaults Pike"
    position       free | pike | tuck       armstand    true | false
    rotation_type  back | forward | inward | reverse
    ss_no, tw_no   int: half somersaults, half twists
    commentary     generated sentence       weights     the weights' name (or the file given)
    error          one-line reason the input could not be scored, else null / empty

Missing values are JSON null and empty CSV cells. CSV writes `true` / `false` for armstand.

**Resume.** `ResumableCsv(path)` appends to an existing aqa CSV. Next to it, `<path>.aqa-resume.jsonl`
holds one line per written row: {"video", "path" (absolute), "size" (bytes), "mtime_ns"}. It is written
and flushed *before* the CSV row, so an interrupted run can leave a state line without its row (that
input is simply scored again) but never a row without its state. On opening, a row is kept when its
state still matches the file on disk and it has no error; other rows (file changed or gone, failed
inputs, a row cut off mid-write) are dropped by rewriting both files atomically, so their inputs are
scored again: never a duplicate row, never a lost one.

**Batch.** `ScoreJob(paths, ...)` expands the inputs, picks the format (given, else from the `-o` suffix,
else table) and loads the weights; `run()` opens the outputs (stdout or `-o FILE`, plus the resumable
CSV), writes each result as it comes (in input order), and returns a `BatchSummary` of the counts.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aqa_cli import scoring
from aqa_cli.errors import UsageError
from aqa_cli.scoring import FIELDS, ScoreResult

DECIMALS = {"final_score": 2, "execution": 2, "difficulty": 2}
INTS = ("ss_no", "tw_no")
STATE_SUFFIX = ".aqa-resume.jsonl"


def record(result: ScoreResult) -> dict[str, Any]:
    """The public record of a result with rounded scores (JSON-ready)."""
    out = result.record()
    for name, places in DECIMALS.items():
        if out[name] is not None:
            out[name] = round(float(out[name]), places)
    return out


def csv_cells(result: ScoreResult) -> list[str]:
    """One CSV row: empty cells for None, true/false for booleans."""
    rec = record(result)
    return ["" if v is None else ("true" if v is True else "false" if v is False else str(v))
            for v in (rec[name] for name in FIELDS)]


def from_csv_row(row: dict[str, str]) -> ScoreResult:
    """Rebuild a result from a CSV row written by `csv_cells` (used to re-emit resumed rows)."""
    values: dict[str, Any] = {}
    for name in FIELDS:
        text = row.get(name, "")
        if text == "":
            values[name] = None
        elif name in DECIMALS:
            values[name] = float(text)
        elif name in INTS:
            values[name] = int(text)
        elif name == "armstand":
            values[name] = text == "true"
        else:
            values[name] = text
    return ScoreResult(**values)


class CsvWriter:
    """CSV to a text stream: header first, then one flushed row per result."""

    def __init__(self, stream: IO[str], header: bool = True):
        self.stream = stream
        self._csv = csv.writer(stream, lineterminator="\n")
        if header:
            self._csv.writerow(FIELDS)
            stream.flush()

    def write(self, result: ScoreResult) -> None:
        self._csv.writerow(csv_cells(result))
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class JsonWriter:
    """A JSON list streamed element by element (valid JSON once closed)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.count = 0

    def write(self, result: ScoreResult) -> None:
        sep = "[\n  " if self.count == 0 else ",\n  "
        self.stream.write(sep + json.dumps(record(result), ensure_ascii=False))
        self.stream.flush()
        self.count += 1

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()


class TableWriter:
    """A Rich table, printed when closed (a table needs all its rows to size its columns)."""

    COLUMNS = ("video", "final_score", "execution", "difficulty", "dive_number", "description", "commentary")

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.rows: list[dict[str, Any]] = []

    def write(self, result: ScoreResult) -> None:
        self.rows.append(record(result))

    def close(self) -> None:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in self.COLUMNS:
            table.add_column(name, overflow="fold")
        for rec in self.rows:
            cells = ["" if rec[n] is None else str(rec[n]) for n in self.COLUMNS]
            if rec["error"]:
                cells[1:] = ["", "", "", "", "", f"error: {rec['error']}"]
            table.add_row(*(Text(c) for c in cells))  # Text: a "[final]" in a file name is not markup
        # Wide when not a terminal, so files get one line per video instead of wrapped cells.
        tty = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        Console(file=self.stream, width=None if tty else 240, highlight=False).print(table)
        self.stream.flush()


def open_writer(fmt: str, stream: IO[str]):
    """A writer for format "table", "json" or "csv" on a text stream."""
    writers = {"table": TableWriter, "json": JsonWriter, "csv": CsvWriter}
    if fmt not in writers:
        raise UsageError(f"unknown format {fmt!r}: expected table, json or csv")
    return writers[fmt](stream)


def _stat_key(path: str | Path) -> dict[str, Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class ResumableCsv:
    """An aqa CSV file that survives interruption: see the module docstring for the rules.

    `done(path)` gives the stored result for an input already scored (same path, size and mtime),
    `write(result)` appends one row (state line first, both flushed), `close()` closes both files.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.state_path = self.path.with_name(self.path.name + STATE_SUFFIX)
        self._done: dict[str, ScoreResult] = {}
        kept_rows, kept_states = self._load()
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if fresh or self._rewrite_needed:
            self._write_all(kept_rows, kept_states)
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._state = open(self.state_path, "a", encoding="utf-8")
        self._csv = CsvWriter(self._file, header=False)

    def _load(self) -> tuple[list[list[str]], list[dict[str, Any]]]:
        """Read the existing CSV and state; keep the rows that are still valid (module docstring)."""
        self._rewrite_needed = False
        if not self.path.exists() or self.path.stat().st_size == 0:
            return [], []
        text = self.path.read_text(encoding="utf-8")
        lines = list(csv.reader(io.StringIO(text)))
        if not lines or tuple(lines[0]) != FIELDS:
            raise UsageError(f"{self.path}: not an aqa score CSV (its columns differ); "
                             "choose another file or delete it")
        rows = lines[1:]
        if not text.endswith("\n") and rows:
            rows = rows[:-1]  # the last row was cut off mid-write
            self._rewrite_needed = True
        states: dict[str, dict[str, Any]] = {}
        if self.state_path.exists():
            for line in self.state_path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    states[entry["video"]] = entry
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a state line cut off mid-write: its row was never written
        kept_rows, kept_states = [], []
        for cells in rows:
            row = dict(zip(FIELDS, cells))
            entry = states.get(row.get("video", ""))
            now = _stat_key(entry["path"]) if entry else None
            valid = (len(cells) == len(FIELDS) and not row["error"] and entry is not None
                     and now is not None and now["size"] == entry["size"] and now["mtime_ns"] == entry["mtime_ns"]
                     and entry["path"] not in self._done)
            if valid:
                self._done[entry["path"]] = from_csv_row(row)
                kept_rows.append(cells)
                kept_states.append(entry)
            else:
                self._rewrite_needed = True
        return kept_rows, kept_states

    def _write_all(self, rows: list[list[str]], states: list[dict[str, Any]]) -> None:
        from aqa_cli.datasets.layout import atomic_write_text

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(rows)
        # State first: a crash between the two leaves extra state lines, which are harmless.
        atomic_write_text(self.state_path, "".join(json.dumps(s) + "\n" for s in states))
        atomic_write_text(self.path, buf.getvalue())

    def done(self, path: str | Path) -> ScoreResult | None:
        """The stored result when `path` (same size and mtime) is already in the CSV, else None."""
        now = _stat_key(path)
        return self._done.get(now["path"]) if now else None

    def write(self, result: ScoreResult) -> None:
        key = _stat_key(result.video) or {"path": os.path.abspath(result.video), "size": None, "mtime_ns": None}
        self._state.write(json.dumps({"video": result.video, **key}) + "\n")
        self._state.flush()
        self._csv.write(result)

    def close(self) -> None:
        self._file.close()
        self._state.close()


@dataclass
class BatchSummary:
    """What a `ScoreJob.run` did: `total` inputs, `scored` without error (of which `resumed` were taken
    from the resumable CSV at `resume_path`), the `failed` results, and whether it stopped at the first
    failure (`fail_fast`)."""

    total: int
    scored: int = 0
    resumed: int = 0
    failed: list[ScoreResult] = field(default_factory=list)
    resume_path: Path | None = None
    fail_fast: bool = False

    @property
    def not_tried(self) -> int:
        """Inputs left unscored because `fail_fast` stopped the batch."""
        return self.total - self.scored - len(self.failed) if self.fail_fast and self.failed else 0


class ScoreJob:
    """One batch of `aqa score`: inputs (`scoring.expand_inputs`), output format and a loaded `scorer`.

    `fmt` is "table", "json" or "csv", or None for the `output` suffix's (.csv, .json), else table.
    `output` receives the data instead of the stream given to `run`; a CSV there, or `csv_file`, is
    a `ResumableCsv`. Raises UsageError (no videos; -o FILE.csv together with --csv) before loading
    the weights, then what `scoring.load_model` raises.
    """

    def __init__(self, paths, *, weights: str | Path | None = None, device: str = "auto", recursive: bool = False,
                 fmt: str | None = None, output: Path | None = None, csv_file: Path | None = None):
        self.inputs = scoring.expand_inputs(paths, recursive=recursive)
        self.fmt = fmt or {".csv": "csv", ".json": "json"}.get(output.suffix.lower() if output else "", "table")
        if output is not None and csv_file is not None and self.fmt == "csv":
            raise UsageError("give either -o FILE.csv or --csv FILE, not both")
        self.output = output
        self.resume_path = output if output is not None and self.fmt == "csv" else csv_file
        self.scorer = scoring.load_model(weights, device)

    def run(self, stream: IO[str] | None, *, height: str | None = None, dd: float | None = None,
            clips: int | None = None, fail_fast: bool = False,
            on_result: Callable[[ScoreResult, bool], None] | None = None,
            display: AbstractContextManager | None = None) -> BatchSummary:
        """Score every input, in order, writing each result to the resumable CSV (unless it came from
        there) and to the data output: `self.output` when set, else `stream` (None: no data output,
        e.g. when a one-video panel replaces the table). `on_result(result, resumed)` is called after
        each result is written; `display` (e.g. a progress bar) is entered once the outputs are open
        and left before they are closed, so a table printed on closing never meets a live bar."""
        summary = BatchSummary(total=len(self.inputs), resume_path=self.resume_path, fail_fast=fail_fast)
        with ExitStack() as stack:
            resumable = ResumableCsv(self.resume_path) if self.resume_path else None
            if resumable:
                stack.callback(resumable.close)
            if self.output is None:
                out = stream
            elif self.fmt == "csv":
                out = None  # the resumable CSV is the output
            else:
                out = stack.enter_context(open(self.output, "w", encoding="utf-8"))
            data = open_writer(self.fmt, out) if out is not None else None
            if data:
                stack.callback(data.close)
            results = scoring.score_inputs(self.inputs, self.scorer, done=resumable.done if resumable else None,
                                           height=height, dd=dd, clips=clips, fail_fast=fail_fast)
            stack.callback(results.close)
            if display is not None:
                stack.enter_context(display)
            for result, resumed in results:
                if resumable and not resumed:
                    resumable.write(result)
                if data:
                    data.write(result)
                if result.error:
                    summary.failed.append(result)
                else:
                    summary.scored += 1
                    summary.resumed += resumed
                if on_result:
                    on_result(result, resumed)
        return summary
