"""Read the cells of an .xlsx worksheet with the standard library (zipfile + XML), no openpyxl.

An .xlsx file is a zip of XML parts: `xl/workbook.xml` names the sheets, `xl/_rels/workbook.xml.rels`
maps them to `xl/worksheets/sheetN.xml`, and text cells point into `xl/sharedStrings.xml`. This reads
values only (numbers as float, text as str, booleans as bool); styles, formulas and dates as dates
are ignored, which is all the MTL-AQA spreadsheets need.
"""

from __future__ import annotations

import re
import zipfile
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

from aqa_cli.errors import DataError

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
       "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}
_REF = re.compile(r"^([A-Z]+)(\d+)$")
Cell = str | float | bool | None


def column_index(letters: str) -> int:
    """'A' → 0, 'Z' → 25, 'AA' → 26."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - ord("A") + 1
    return n - 1


def read_xlsx(path: str | Path, sheet: int | str = 0) -> list[list[Cell]]:
    """Rows of one worksheet (by index or name) as lists of cell values, empty cells None.

    Rows are dense from column A and row 1 (missing rows come back as empty lists). Raises
    DataError naming the file for anything that is not a readable workbook.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            strings = _shared_strings(z)
            xml = z.read(_sheet_part(z, sheet))
        root = ET.fromstring(xml)
    except FileNotFoundError:
        raise DataError(f"spreadsheet not found: {path}") from None
    except (zipfile.BadZipFile, KeyError, ET.ParseError) as exc:
        raise DataError(f"{path}: not a readable .xlsx workbook ({exc})") from None

    rows: list[list[Cell]] = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        number = int(row.get("r", len(rows) + 1))
        while len(rows) < number:
            rows.append([])
        cells = rows[number - 1]
        for c in row.findall("m:c", _NS):
            m = _REF.match(c.get("r", ""))
            col = column_index(m.group(1)) if m else len(cells)
            value = _value(c, strings)
            if value is None:
                continue
            cells.extend([None] * (col + 1 - len(cells)))
            cells[col] = value
    return rows


def _value(c: ET.Element, strings: list[str]) -> Cell:
    kind = c.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
    v = c.find("m:v", _NS)
    if v is None or v.text is None:
        return None
    if kind == "s":
        return strings[int(v.text)]
    if kind == "b":
        return v.text == "1"
    if kind in ("str", "e"):
        return v.text
    return float(v.text)


def _shared_strings(z: zipfile.ZipFile) -> list[str]:
    try:
        root = ET.fromstring(z.read("xl/sharedStrings.xml"))
    except KeyError:
        return []
    # A string item is <t> or rich-text runs <r><t>; phonetic hints (<rPh>) are not part of the text.
    out = []
    for si in root.findall("m:si", _NS):
        parts = [t.text or "" for t in si.findall("m:t", _NS)]
        parts += [t.text or "" for t in si.findall("m:r/m:t", _NS)]
        out.append("".join(parts))
    return out


def _sheet_part(z: zipfile.ZipFile, sheet: int | str) -> str:
    workbook = ET.fromstring(z.read("xl/workbook.xml"))
    sheets = workbook.findall("m:sheets/m:sheet", _NS)
    if isinstance(sheet, int):
        if not 0 <= sheet < len(sheets):
            raise KeyError(f"no sheet {sheet}, the workbook has {len(sheets)}")
        chosen = sheets[sheet]
    else:
        matches = [s for s in sheets if s.get("name") == sheet]
        if not matches:
            raise KeyError(f"no sheet named {sheet!r}")
        chosen = matches[0]
    rel_id = chosen.get(f"{{{_NS['r']}}}id")
    rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    for rel in rels.findall("rel:Relationship", _NS):
        if rel.get("Id") == rel_id:
            target = rel.get("Target", "")
            # Targets are relative to xl/ unless absolute ("/xl/worksheets/sheet1.xml").
            return target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
    raise KeyError(f"sheet relationship {rel_id} not found")
