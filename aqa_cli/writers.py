"""Writers for score results: a table, a JSON list, or CSV, and the resumable CSV file. They format
and write; `batch.py` runs the job that feeds them.

Every format carries the same record (`scoring.FIELDS`, in that order): JSON keys = CSV columns.

    video          the input path as given
    final_score    float, 2 decimals        execution   float, 2 decimals (sum of the counted marks)
    difficulty     float (DD)               dive_number "105B"; description "Forward 2½ Somersaults Pike"
    position       free | pike | tuck       armstand    true | false
    rotation_type  back | forward | inward | reverse
    ss_no, tw_no   int: half somersaults, half twists
    commentary     the dive sentence (from the heads) and the captioner's execution remarks
    weights        the weights' name (or the file given)
    error          one-line reason the input could not be scored, else null / empty

Missing values are JSON null and empty CSV cells. CSV writes `true` / `false` for armstand.

**Resume.** `ResumableCsv(path, settings)` appends to an existing aqa CSV. Next to it,
`<path>.aqa-resume.jsonl` holds one line per row: {"video", "path" (absolute), "size" (bytes),
"mtime_ns", "settings" (weights' sha256, height, DD, clips), and the panel's "probabilities" and
"dd_from"}. It is written and flushed *before* the CSV row, so an interrupted run can leave a state
line without its row but never a row without its state; rows and state lines of one video name come in
the same order, which is how they are matched (a row deleted or rows sorted by hand lose only their own
state). A row is reused (the input is not scored
again) when its file still has the size and mtime it was scored at, the settings are the same, and it
has no error. Every other row stays in the file until its input is scored again, and then the new row
takes its place: a file that is offline today, or was scored from another folder under the same name,
keeps its row; an input has one row; a row cut off mid-write is dropped (its input is scored again).
An input's row key is `row_key` (the file's absolute path). With `--all-dives` an input has a row per
dive found: each state line adds "dive" (its index k) and "dives" (n), the key is `row_key(path, k)`, the input
is reused only when all n rows are (`done_dives`), and its dive 0 written again replaces every row it had.

**Parts** (scoring under torchrun, `batch.py` and `shard.py`): each process writes its own resumable
CSV `<path>.part-<r>-of-<N>`; `merge_parts(path, settings, keys)` folds every part found (any world
size, oldest first) into `<path>` with their state lines as written, puts the rows of `keys` (this
run's inputs) in that order, rewrites both files atomically, then deletes the parts. Killed before the
deletion, a merge is simply repeated: a part's row replaces the same input's row.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import deque
from pathlib import Path
from typing import IO, Any

from aqa_cli.errors import UsageError
from aqa_cli.rules import HEADS, HEIGHTS
from aqa_cli.scoring import FIELDS, FRAMINGS, HEIGHT_SOURCES, SCORE_SOURCES, SIDES, WINDOW_SOURCES, ScoreResult
from aqa_cli.shard import find_parts

DECIMALS = {"final_score": 2, "execution": 2, "difficulty": 2, **{f"p_{h}": 4 for h in HEADS}, "looks_like_dive": 4,
            "window_start": 2, "window_end": 2, "zoom": 2}
# The columns of CSVs earlier versions wrote (before score_source and the probabilities; before the
# scored window; before the framer): resumed, such a CSV is upgraded, the new columns of its rows left empty.
EARLIER_FIELDS = (FIELDS[:14], FIELDS[:FIELDS.index("warning") + 1], FIELDS[:FIELDS.index("height_from") + 1])
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
    """Rebuild a result from a CSV row written by `csv_cells` (used to re-emit resumed rows); ValueError
    for a cell that is not its column's type."""
    values: dict[str, Any] = {}
    probabilities: dict[str, float] = {}
    dd_from = ""
    for name in FIELDS:
        text = row.get(name, "")
        if name == "score_source":
            if text and text not in SCORE_SOURCES.values():
                raise ValueError(f"score_source {text!r}: expected one of {', '.join(sorted(set(SCORE_SOURCES.values())))}")
            dd_from = {source: key for key, source in SCORE_SOURCES.items()}.get(text, "")
            continue
        choices = {"window_from": WINDOW_SOURCES, "board_side": SIDES, "height": HEIGHTS, "height_from": HEIGHT_SOURCES,
                   "framing": FRAMINGS}
        if text and text not in choices.get(name, (text,)):  # a closed set: also how a cut-off last cell shows
            raise ValueError(f"{name} {text!r}: expected one of {', '.join(choices[name])}")
        if name.startswith("p_"):
            if text:
                probabilities[name[2:]] = float(text)
            continue
        if text == "":
            values[name] = None
        elif name in DECIMALS:
            values[name] = float(text)
        elif name in INTS:
            values[name] = int(text)
        elif name == "armstand":
            if text.lower() not in ("true", "false"):  # a spreadsheet may save TRUE / FALSE
                raise ValueError(f"armstand {text!r}: expected true or false")
            values[name] = text.lower() == "true"
        else:
            values[name] = text
    return ScoreResult(**values, probabilities=probabilities, dd_from=dd_from)


def _complete(cells: list[str]) -> bool:
    """Whether a CSV row (the last, without its newline) holds every column in readable form."""
    try:
        from_csv_row(dict(zip(FIELDS, cells)))
    except ValueError:
        return False
    return len(cells) == len(FIELDS)


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
        Console(file=self.stream, width=None if tty else 4000, highlight=False, emoji=False).print(table)
        self.stream.flush()


def open_writer(fmt: str, stream: IO[str]):
    """A writer for format "table", "json" or "csv" on a text stream."""
    writers = {"table": TableWriter, "json": JsonWriter, "csv": CsvWriter}
    if fmt not in writers:
        raise UsageError(f"unknown format {fmt!r}: expected table, json or csv")
    return writers[fmt](stream)


def row_key(video: str | Path, dive: int | None = None) -> str:
    """Which input a row is of: the video file's absolute path (a state line's "path"), and for a row
    of `--all-dives` the index k of its dive in the video ("PATH<NUL>k"). Resume, merge and output order
    all key rows by this alone."""
    return os.path.abspath(video) + ("" if dive is None else f"\0{dive}")  # NUL: in no file's path


def _stat_key(path: str | Path) -> dict[str, Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"path": row_key(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class ResumableCsv:
    """An aqa CSV file that survives interruption: see the module docstring for the rules.

    `settings` is what the scores depend on besides the video (`Scorer.settings`: the weights' sha256,
    height, DD, clips); a stored row is reused only under the same settings. `done(path)` gives the
    stored result for an input already scored (same file, size, mtime and settings), `write(result)`
    appends one row (state line first, both flushed) that replaces the input's earlier row when the file
    is closed, `close()` closes both files. Raises UsageError for a file that is not an aqa score CSV or a
    row that cannot be read back, naming its line. `readonly=True` only reads (for `done`, `stored` and
    `absorb`): nothing is rewritten or opened for writing, so other processes may read it meanwhile.
    """

    def __init__(self, path: str | Path, settings: dict[str, Any] | None = None, *, readonly: bool = False):
        self.path = Path(path)
        self.state_path = self.path.with_name(self.path.name + STATE_SUFFIX)
        self.settings = settings or {}
        for p in (self.path, self.state_path):
            if p.is_dir():
                raise UsageError(f"{p} is a folder: give the CSV a file name")
        self._rows, self._states, rewrite = self._load()
        self._index = {self._key(i): i for i in range(len(self._rows))}  # later rows win
        if len(self._index) < len(self._rows):
            rewrite = True  # an interrupted run rescored an input: keep only its newest row
        self._replaced = False  # a row was written for an input the file already had: compact on closing
        self._order: dict[str, int] = {}  # row key -> place, for `order_by`
        self.readonly = readonly
        if readonly:
            return
        if rewrite or not self.path.exists() or self.path.stat().st_size == 0:
            self._compact()
        try:
            self._file = open(self.path, "a", newline="", encoding="utf-8")
            self._state = open(self.state_path, "a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from None
        self._csv = CsvWriter(self._file, header=False)

    def _key(self, i: int) -> str:
        """Which input row i is of: its absolute path, or for a row without state its `video` as written."""
        state = self._states[i]
        return row_key(state["path"], state.get("dive")) if state else "video:" + self._rows[i][0]

    def _load(self) -> tuple[list[list[str]], list[dict[str, Any] | None], bool]:
        """The existing rows, each with its state line (None when it has none) and whether to rewrite."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return [], [], False
        text, rewrite = self._read_text()
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None or (tuple(header) != FIELDS and tuple(header) not in EARLIER_FIELDS):
            raise UsageError(f"{self.path}: not an aqa score CSV (its columns differ); "
                             "choose another file or delete it")
        legacy = len(header) if tuple(header) in EARLIER_FIELDS else 0  # upgraded: the file is rewritten
        rewrite = rewrite or bool(legacy)
        rows, lines = [], []
        for cells in reader:
            if cells:  # a blank line (a spreadsheet's last one) is no row
                complete = len(cells) == legacy if legacy else True
                rows.append(cells + [""] * (len(FIELDS) - legacy) if legacy and complete else cells)
                lines.append(reader.line_num)
        if rows and not text.endswith("\n") and not _complete(rows[-1]):
            rows.pop()  # the last row was cut off mid-write: its input is scored again
            rewrite = True
        for cells, line in zip(rows, lines):
            if len(cells) != len(FIELDS):
                raise UsageError(f"{self.path}, line {line}: {len(cells)} cells, not {len(FIELDS)}",
                                 hint="fix or delete that row (its video is then scored again)")
            try:
                from_csv_row(dict(zip(FIELDS, cells)))
            except ValueError as exc:
                raise UsageError(f"{self.path}, line {line}: {exc}",
                                 hint="fix or delete that row (its video is then scored again)") from None
        # Each state line is written just before its row, so rows and state lines of one video name
        # come in the same order: row k of a name takes that name's k-th state line. Matching by name,
        # not by position, a row deleted or rows sorted in a spreadsheet cost only their own state.
        by_video: dict[str, deque[dict[str, Any]]] = {}
        count = 0
        if self.state_path.exists():
            for line in self.state_path.read_text(encoding="utf-8", errors="replace").splitlines():
                count += 1
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and {"video", "path", "size", "mtime_ns"} <= set(entry):
                    by_video.setdefault(entry["video"], deque()).append(entry)
        if count != len(rows):
            rewrite = True  # e.g. a state line whose row was never written
        states = [by_video[cells[0]].popleft() if by_video.get(cells[0]) else None for cells in rows]
        return rows, states, rewrite

    def _read_text(self) -> tuple[str, bool]:
        """The CSV's text (a spreadsheet's BOM dropped) and whether its last line had to be cut: a row
        cut off mid-write can end inside a multi-byte character (½ in a description)."""
        try:
            raw = self.path.read_bytes()
            return raw.decode("utf-8-sig"), False
        except UnicodeDecodeError as exc:
            if b"\n" not in raw[exc.start:]:  # the bad byte is on the last, unfinished line
                return raw[: raw.rfind(b"\n") + 1].decode("utf-8-sig", errors="replace"), True
            raise UsageError(f"{self.path}: not UTF-8 text, so not an aqa score CSV ({exc.reason} at byte "
                             f"{exc.start})", hint="choose another file or delete it") from None
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror}") from None

    def _compact(self) -> None:
        """Rewrite both files atomically: each input's newest row, in the order inputs first appeared."""
        from aqa_cli.storage import atomic_write_text

        rows, states = self._rows, self._states
        order, seen = [], set()
        for i in range(len(rows)):
            key = self._key(i)
            if key in self._index and key not in seen:
                seen.add(key)
                order.append(self._index[key])
        if self._order:  # the ordered inputs' rows trade places among themselves; the others stay put
            slots = [j for j, i in enumerate(order) if self._place(i) is not None]
            ordered = sorted((order[j] for j in slots), key=self._place)
            for j, i in zip(slots, ordered):
                order[j] = i
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(rows[i] for i in order)
        # A row without a state line cannot get one back; an empty line keeps the rows and lines aligned.
        state_text = "".join((json.dumps(states[i]) if states[i] else "{}") + "\n" for i in order)
        try:
            atomic_write_text(self.state_path, state_text)  # state first: extra state lines are harmless
            atomic_write_text(self.path, buf.getvalue())
        except OSError as exc:
            raise UsageError(f"cannot write {exc.filename or self.path}: {exc.strerror}") from None
        self._rows = [rows[i] for i in order]
        self._states = [states[i] for i in order]
        self._index = {self._key(i): i for i in range(len(self._rows))}

    def _place(self, i: int) -> tuple[int, int] | None:
        """Where row i goes under `order_by`: (its input's place, its dive's index), or None when its
        input is not among the ordered ones."""
        state = self._states[i]
        place = self._order.get(row_key(state["path"]) if state else self._key(i))
        return None if place is None else (place, state.get("dive", 0) if state else 0)

    def done(self, path: str | Path) -> ScoreResult | None:
        """The stored result when `path` is already in the CSV, without error, and the file (size, mtime)
        and the settings are those it was scored with; else None."""
        now = _stat_key(path)
        i = self._index.get(now["path"]) if now else None
        return self._result(i) if i is not None and self._valid(i, now) else None

    def done_dives(self, path: str | Path) -> list[ScoreResult] | None:
        """`--all-dives`: the stored result of every dive of `path`, in order, when an earlier run wrote
        all of them and each is valid as `done` checks it; else None."""
        now = _stat_key(path)
        rows = self._dive_rows(path) if now else None
        return [self._result(i) for i in rows] if rows and all(self._valid(i, now) for i in rows) else None

    def stored_dives(self, path: str | Path) -> list[ScoreResult] | None:
        """`--all-dives`: every row stored for input `path` (errors too, whatever its file and settings
        are now), in dive order, or None unless all n of them are there: what another process wrote."""
        rows = self._dive_rows(path)
        return [self._result(i) for i in rows] if rows else None

    def _dive_rows(self, path: str | Path) -> list[int] | None:
        """The rows of all n dives of input `path` (n from its dive 0's state line), or None."""
        first = self._index.get(row_key(path, 0))
        if first is None or self._states[first] is None:
            return None
        rows = [self._index.get(row_key(path, k)) for k in range(self._states[first].get("dives", 0))]
        return None if not rows or None in rows else rows

    def _valid(self, i: int, now: dict[str, Any]) -> bool:
        """Whether row i can be reused: no error, its file's size and mtime are `now`'s, the same settings."""
        state, cells = self._states[i], self._rows[i]
        return not cells[FIELDS.index("error")] and (state["size"], state["mtime_ns"]) == (now["size"], now["mtime_ns"]) \
            and state.get("settings") == self.settings

    def stored(self, path: str | Path) -> ScoreResult | None:
        """The row stored for input `path` (with an error or not, whatever its file and settings are
        now), or None when it has none: what another process wrote into its part."""
        i = self._index.get(row_key(path))
        return None if i is None or self._states[i] is None else self._result(i)

    def _result(self, i: int) -> ScoreResult:
        state, cells = self._states[i], self._rows[i]
        result = from_csv_row(dict(zip(FIELDS, cells)))
        result.probabilities = dict(state.get("probabilities") or result.probabilities)
        result.dd_from = state.get("dd_from") or ""
        if "dive" in state:
            result.dive_of = (state["dive"], state["dives"])
        return result

    def absorb(self, other: ResumableCsv) -> None:
        """Take `other`'s rows with their state lines as written (not re-stat'ed): each replaces this
        file's row of the same input. Written when this file is closed."""
        for cells, state in zip(other._rows, other._states):
            self._rows.append(cells)
            self._states.append(state)
            if state:
                self._index.pop("video:" + cells[0], None)
            self._index[self._key(len(self._rows) - 1)] = len(self._rows) - 1
        self._replaced = self._replaced or bool(other._rows)

    def order_by(self, keys: list[str]) -> None:
        """On closing, put the rows of `keys` (`row_key`s, e.g. this run's inputs) in that order, in the
        places those rows hold; other rows keep theirs."""
        self._order = {key: n for n, key in enumerate(keys)}
        self._replaced = True

    def write(self, result: ScoreResult) -> None:
        if self.readonly:
            raise ValueError(f"{self.path} was opened read-only")
        key = _stat_key(result.video) or {"path": row_key(result.video), "size": None, "mtime_ns": None}
        state = {"video": result.video, **key, "settings": self.settings,
                 "probabilities": result.probabilities, "dd_from": result.dd_from}
        index = key["path"]
        if result.dive_of is not None:  # --all-dives: its k-th of n dives; the first replaces all it had
            state["dive"], state["dives"] = result.dive_of
            index = row_key(key["path"], result.dive_of[0])
            if result.dive_of[0] == 0:
                for old in [k for k in self._index if k.startswith(row_key(key["path"], 0)[:-1])]:
                    del self._index[old]
                    self._replaced = True
        self._state.write(json.dumps(state) + "\n")
        self._state.flush()
        self._csv.write(result)
        self._rows.append(csv_cells(result))
        self._states.append(state)
        unkeyed = self._index.pop("video:" + result.video, None)  # a row without state, of the same name
        self._replaced = self._replaced or unkeyed is not None or index in self._index
        self._index[index] = len(self._rows) - 1

    def close(self) -> None:
        if self.readonly:
            return
        self._file.close()
        self._state.close()
        if self._replaced:
            self._compact()


def merge_parts(path: str | Path, settings: dict[str, Any] | None, keys: list[str]) -> int:
    """Fold the parts next to the resumable CSV `path` (`shard.find_parts`: any world size, oldest
    first) into it, the rows of `keys` (`row_key`s) in that order, then delete the parts and their state
    files. Returns how many parts were merged (0: `path` is left as it was)."""
    parts = find_parts(path)
    if not parts:
        return 0
    merged = ResumableCsv(path, settings)
    try:
        for part in parts:
            merged.absorb(ResumableCsv(part, readonly=True))
        merged.order_by(keys)
    finally:
        merged.close()
    for part in parts:  # the CSV before its state: a state line without its row is harmless
        part.unlink(missing_ok=True)
        part.with_name(part.name + STATE_SUFFIX).unlink(missing_ok=True)
    return len(parts)
