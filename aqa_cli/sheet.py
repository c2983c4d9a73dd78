"""The meet's dive sheet: a CSV naming each video's dive, height and DD (`aqa score --dives FILE.csv`).

    video,dive,height,dd
    heat1/anna.mp4,5156B,3m,
    heat1/ben.mp4,107C,3,
    carla.mp4,,,"3,2"

One row per video. `video` is a path (relative to the sheet's folder, or absolute) or a bare file name,
which then matches a video of that name anywhere in the batch (when no two rows share it). `dive`,
`height` and `dd` may each be empty; a row's empty height falls back to the command's `--height`.
Columns are found by name (case-insensitive; `file` for video, `board` for height, `difficulty` for
dd); a semicolon-separated sheet (spreadsheets with a decimal comma write those) reads too.

Every row is checked when the sheet is read (dive numbers against the DD tables at their height), so a
typo stops the command at once with its line number rather than after an hour of scoring.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from aqa_cli import rules
from aqa_cli.errors import UsageError

_COLUMNS = {"video": "video", "file": "video", "dive": "dive", "dive_number": "dive", "height": "height",
            "board": "height", "dd": "dd", "difficulty": "dd"}


@dataclass(frozen=True)
class SheetRow:
    """One video's scoring options: a canonical dive number, a height ("3m"), a DD; each may be None."""

    video: str
    dive: str | None = None
    height: str | None = None
    dd: float | None = None
    line: int = 0  # in the sheet, for messages

    def options(self) -> dict:
        """Keyword arguments for Scorer.predict / score_videos."""
        return {"dive": self.dive, "height": self.height, "dd": self.dd}


class DiveSheet:
    """A read and checked dive sheet; `lookup(video)` finds a video's row."""

    def __init__(self, path: Path, rows: list[SheetRow]):
        self.path, self.rows = path, rows
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self._by_path = {str((path.parent / r.video).resolve()): r for r in rows}
        names: dict[str, list[SheetRow]] = {}
        for r in rows:
            names.setdefault(Path(r.video).name, []).append(r)
        self._by_name = {name: rs[0] for name, rs in names.items() if len(rs) == 1}

    @classmethod
    def read(cls, path: str | Path, height: str | None = None) -> DiveSheet:
        """Read and check a sheet; `height` is the command's --height (for rows that give none).
        UsageError naming the file and line for anything wrong."""
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8-sig")  # a BOM from spreadsheet exports
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--dives {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
        lines = text.splitlines()
        if not lines or not lines[0].strip():
            raise UsageError(f"--dives {path}: empty; expected a header such as video,dive,height,dd")
        delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
        reader = csv.reader(lines, delimiter=delimiter)
        header = [_COLUMNS.get(name.strip().lower()) for name in next(reader)]
        if "video" not in header or not {"dive", "height", "dd"} & set(header):
            raise UsageError(f"--dives {path}: the header needs a video column and at least one of dive, height, "
                             "dd (e.g. video,dive,height)")
        rows, seen = [], {}
        for line, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                raise UsageError(f"--dives {path}, line {line}: {len(values)} cells for {len(header)} columns (a "
                                 'decimal comma needs quotes, "3,2", or a sheet separated by ;)')
            cells = {name: value.strip() for name, value in zip(header, values) if name}
            row = _check_row(path, line, cells, height)
            key = str((path.parent / row.video).resolve())
            if key in seen:
                raise UsageError(f"--dives {path}, line {line}: {row.video} is already on line {seen[key]}")
            seen[key] = line
            rows.append(row)
        return cls(path, rows)

    def lookup(self, video: str | Path) -> SheetRow | None:
        """The row for a video: by its path, else by its file name when only one row has that name."""
        return self._by_path.get(str(Path(video).resolve())) or self._by_name.get(Path(video).name)

    def options_for(self, video: str | Path, **given) -> dict:
        """The options `video` is scored with: its row's dive, height and dd over the command's `given`
        ones (keywords dive, height, dd); a video without a row keeps `given`."""
        row = self.lookup(video)
        if row is None:
            return given
        return {**given, **{name: value for name, value in row.options().items() if value is not None}}

    def unmatched(self, videos: list[str]) -> list[SheetRow]:
        """The rows that name none of `videos` (a misspelt file name, a video left out of the batch)."""
        used = {id(row) for v in videos if (row := self.lookup(v)) is not None}
        return [r for r in self.rows if id(r) not in used]


def _check_row(path: Path, line: int, cells: dict[str, str], default_height: str | None) -> SheetRow:
    where = f"--dives {path}, line {line}"
    video = cells.get("video", "")
    if not video:
        raise UsageError(f"{where}: no video")
    try:
        height = rules.normalize_height(cells["height"]) if cells.get("height") else default_height
        dd = rules.parse_dd(cells["dd"]) if cells.get("dd") else None
        dive = None
        if cells.get("dive"):
            # With a DD on the row the table's is not needed, so only the number itself is checked.
            dive = rules.canonical_number(cells["dive"]) if dd is not None else \
                rules.known_dive(cells["dive"], height)[0]
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return SheetRow(video, dive, height, dd, line)
