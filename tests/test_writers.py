"""Writers: exact JSON/CSV fields and values, the table, and the resumable CSV's keep/drop rules."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from aqa_cli import writers
from aqa_cli.errors import UsageError
from aqa_cli.scoring import FIELDS, ScoreResult


def good(video: str) -> ScoreResult:
    return ScoreResult(video=video, final_score=71.2549, execution=23.751, difficulty=3.0, dive_number="105B",
                       description="Forward 2½ Somersaults Pike", position="pike", armstand=False,
                       rotation_type="forward", ss_no=5, tw_no=0, commentary="A clean entry.", weights="demo",
                       probabilities={"position": 0.9})


def bad(video: str) -> ScoreResult:
    return ScoreResult(video=video, weights="demo", error="not a media file FFmpeg can read")


def test_json_list_has_exactly_the_public_fields():
    buf = io.StringIO()
    w = writers.open_writer("json", buf)
    w.write(good("a.mp4"))
    w.write(bad("b.mp4"))
    w.close()
    rows = json.loads(buf.getvalue())
    assert [list(r) for r in rows] == [list(FIELDS)] * 2
    assert rows[0] == {"video": "a.mp4", "final_score": 71.25, "execution": 23.75, "difficulty": 3.0,
                       "dive_number": "105B", "description": "Forward 2½ Somersaults Pike", "position": "pike",
                       "armstand": False, "rotation_type": "forward", "ss_no": 5, "tw_no": 0,
                       "commentary": "A clean entry.", "weights": "demo", "error": None}
    assert rows[1]["error"] == "not a media file FFmpeg can read" and rows[1]["final_score"] is None


def test_empty_json_is_an_empty_list():
    buf = io.StringIO()
    w = writers.open_writer("json", buf)
    w.close()
    assert json.loads(buf.getvalue()) == []


def test_csv_round_trips_through_from_csv_row():
    buf = io.StringIO()
    w = writers.open_writer("csv", buf)
    w.write(good("a,b.mp4"))  # a comma in a name must be quoted
    w.write(bad("c.mp4"))
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert list(rows[0]) == list(FIELDS)
    assert rows[0]["armstand"] == "false" and rows[1]["final_score"] == ""
    back = writers.from_csv_row(rows[0])
    assert writers.record(back) == writers.record(good("a,b.mp4"))
    assert writers.from_csv_row(rows[1]).error == "not a media file FFmpeg can read"


def test_table_has_one_line_per_video_and_shows_errors():
    buf = io.StringIO()
    w = writers.open_writer("table", buf)
    w.write(good("a.mp4"))
    w.write(bad("b.mp4"))
    w.close()
    lines = buf.getvalue().strip().splitlines()
    assert lines[0].split()[:5] == ["video", "final_score", "execution", "difficulty", "dive_number"]
    assert lines[1].split()[:5] == ["a.mp4", "71.25", "23.75", "3.0", "105B"]
    assert lines[2].startswith("b.mp4") and "error: not a media file" in lines[2]
    assert len(lines) == 3


def test_table_shows_brackets_in_file_names_as_written():
    buf = io.StringIO()
    w = writers.open_writer("table", buf)
    w.write(good("Final [heat 2] dive.mp4"))  # Rich would read "[heat 2]" as markup and drop it
    w.close()
    assert "Final [heat 2] dive.mp4" in buf.getvalue()


def make_files(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / f"v{i}.mp4"
        p.write_bytes(b"x" * (i + 1))
        paths.append(str(p))
    return paths


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_resume_keeps_scored_rows_and_redoes_failed_changed_and_cut_rows(tmp_path):
    a, b, c, d = make_files(tmp_path, 4)
    out = tmp_path / "out.csv"
    w = writers.ResumableCsv(out)
    for v in (a, b, c):
        w.write(good(v))
    w.write(bad(d))
    w.close()

    # b changes on disk after it was scored; c's row is cut off mid-write (no final newline).
    os.utime(b, ns=(1, 1))
    lines = out.read_text().splitlines(keepends=True)
    c_line = next(i for i, line in enumerate(lines) if line.startswith(c))
    lines[c_line] = lines[c_line][:20]  # cut, and it becomes the last line
    del lines[c_line + 1:]
    out.write_text("".join(lines))

    w = writers.ResumableCsv(out)
    assert w.done(a) is not None and w.done(a).final_score == 71.25
    assert w.done(b) is None  # changed since
    assert w.done(c) is None  # its row was cut off
    assert w.done(d) is None  # failed inputs are retried
    assert [r["video"] for r in read_rows(out)] == [a]  # the rewrite dropped the rest
    for v in (b, c, d):
        w.write(good(v))
    w.close()
    rows = read_rows(out)
    assert [r["video"] for r in rows] == [a, b, c, d] and all(not r["error"] for r in rows)

    w = writers.ResumableCsv(out)  # a third run has nothing left to do
    assert all(w.done(v) is not None for v in (a, b, c, d))
    w.close()
    assert len(read_rows(out)) == 4


def test_resume_without_state_rescores(tmp_path):
    (a,) = make_files(tmp_path, 1)
    out = tmp_path / "out.csv"
    w = writers.ResumableCsv(out)
    w.write(good(a))
    w.close()
    (tmp_path / ("out.csv" + writers.STATE_SUFFIX)).unlink()
    w = writers.ResumableCsv(out)
    assert w.done(a) is None and read_rows(out) == []
    w.close()


def test_foreign_csv_is_refused(tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("name,score\nx,1\n")
    with pytest.raises(UsageError, match="not an aqa score CSV"):
        writers.ResumableCsv(out)
    assert out.read_text() == "name,score\nx,1\n"
