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


SETTINGS = {"weights_sha256": "abc", "height": None, "dd": None, "clips": None}


def good(video: str, score: float = 71.2549) -> ScoreResult:
    return ScoreResult(video=video, final_score=score, execution=23.751, difficulty=3.0, dive_number="105B",
                       description="Forward 2½ Somersaults Pike", position="pike", armstand=False,
                       rotation_type="forward", ss_no=5, tw_no=0, commentary="A clean entry.", weights="demo",
                       probabilities={"position": 0.9, "armstand": 0.99, "rotation_type": 0.8, "ss_no": 0.71234,
                                      "tw_no": 0.6}, dd_from="expected", window_start=1.5, window_end=5.25,
                       window_from="located", board_side="right", height="3m", height_from="predicted",
                       zoom=2.034, framing="reframed")


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
                       "commentary": "A clean entry.", "weights": "demo", "error": None,
                       "score_source": "expected DD", "p_position": 0.9, "p_armstand": 0.99, "p_rotation_type": 0.8,
                       "p_ss_no": 0.7123, "p_tw_no": 0.6, "looks_like_dive": None, "warning": None,
                       "window_start": 1.5, "window_end": 5.25, "window_from": "located", "board_side": "right",
                       "height": "3m", "height_from": "predicted", "zoom": 2.03, "framing": "reframed"}
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


def write_csv(out, *results, settings=SETTINGS):
    """A resumable CSV at `out` holding `results`, closed (what one finished run leaves)."""
    w = writers.ResumableCsv(out, settings)
    for result in results:
        w.write(result)
    w.close()


def test_resume_reuses_scored_rows_and_replaces_failed_changed_and_cut_ones(tmp_path):
    a, b, c, d = make_files(tmp_path, 4)
    out = tmp_path / "out.csv"
    write_csv(out, good(a), good(b), bad(c), good(d))

    # b changes on disk after it was scored; d's row is cut off mid-write (no final newline).
    os.utime(b, ns=(1, 1))
    text = out.read_text()
    out.write_text(text[: text.index(d) + 20])

    w = writers.ResumableCsv(out, SETTINGS)
    assert w.done(a).final_score == 71.25 and w.done(a).probabilities == good(a).probabilities
    assert w.done(b) is None  # changed since
    assert w.done(c) is None  # failed inputs are retried
    assert w.done(d) is None  # its row was cut off
    assert [r["video"] for r in read_rows(out)] == [a, b, c]  # the cut row is gone, the rest wait
    for v in (b, c, d):
        w.write(good(v, score=60.0))
    w.close()
    rows = read_rows(out)
    assert [r["video"] for r in rows] == [a, b, c, d]  # replaced where they were: one row per input
    assert [r["final_score"] for r in rows] == ["71.25", "60.0", "60.0", "60.0"] and not any(r["error"] for r in rows)

    w = writers.ResumableCsv(out, SETTINGS)  # a third run has nothing left to do
    assert all(w.done(v) is not None for v in (a, b, c, d))
    w.close()
    assert len(read_rows(out)) == 4


def test_rows_of_inputs_not_in_this_run_are_kept(tmp_path):
    """A drive that is offline today, or another folder's videos: their rows stay."""
    a, b = make_files(tmp_path, 2)
    out = tmp_path / "out.csv"
    write_csv(out, good(a))
    os.rename(a, a + ".offline")
    w = writers.ResumableCsv(out, SETTINGS)
    assert w.done(a) is None
    w.write(good(b))
    w.close()
    assert [r["video"] for r in read_rows(out)] == [a, b]


def test_the_same_name_in_two_folders_is_two_inputs(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    for folder, score in (("A", 70.0), ("B", 40.0)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "dive.mp4").write_bytes(b"x")
        monkeypatch.chdir(tmp_path / folder)
        w = writers.ResumableCsv(out, SETTINGS)
        assert w.done("dive.mp4") is None  # A's row is not B's dive
        w.write(good("dive.mp4", score=score))
        w.close()
    w = writers.ResumableCsv(out, SETTINGS)  # still in B
    assert w.done("dive.mp4").final_score == 40.0
    w.close()
    assert [r["final_score"] for r in read_rows(out)] == ["70.0", "40.0"]


def test_other_settings_rescore_and_replace_the_row(tmp_path):
    (a,) = make_files(tmp_path, 1)
    out = tmp_path / "out.csv"
    write_csv(out, good(a))
    for changed in ({**SETTINGS, "dd": 3.2}, {**SETTINGS, "weights_sha256": "other"}):
        w = writers.ResumableCsv(out, changed)
        assert w.done(a) is None
        w.close()
    w = writers.ResumableCsv(out, {**SETTINGS, "dd": 3.2})
    w.write(good(a, score=76.0))
    w.close()
    assert [r["final_score"] for r in read_rows(out)] == ["76.0"]
    assert writers.ResumableCsv(out, {**SETTINGS, "dd": 3.2}).done(a).final_score == 76.0


def test_a_killed_rerun_leaves_one_row_per_input(tmp_path):
    """Killed after writing a changed input's new row, before replacing the old one: the newest wins."""
    (a,) = make_files(tmp_path, 1)
    out = tmp_path / "out.csv"
    write_csv(out, good(a))
    os.utime(a, ns=(1, 1))
    w = writers.ResumableCsv(out, SETTINGS)
    w.write(good(a, score=50.0))
    w._file.close()  # no close(): as if killed here
    w._state.close()
    assert len(read_rows(out)) == 2
    w = writers.ResumableCsv(out, SETTINGS)
    assert w.done(a).final_score == 50.0 and [r["final_score"] for r in read_rows(out)] == ["50.0"]
    w.close()


def test_rows_without_state_are_kept_until_rescored(tmp_path):
    a, b = make_files(tmp_path, 2)
    out = tmp_path / "out.csv"
    write_csv(out, good(a), good(b))
    (tmp_path / ("out.csv" + writers.STATE_SUFFIX)).unlink()
    w = writers.ResumableCsv(out, SETTINGS)
    assert w.done(a) is None and [r["video"] for r in read_rows(out)] == [a, b]
    w.write(good(a, score=10.0))  # same name as written: it replaces that row
    w.close()
    assert [(r["video"], r["final_score"]) for r in read_rows(out)] == [(b, "71.25"), (a, "10.0")]


def test_damaged_rows_are_refused_with_their_line(tmp_path):
    (a,) = make_files(tmp_path, 1)
    out = tmp_path / "out.csv"
    write_csv(out, good(a), good(a + "2"))
    text = out.read_text()
    for damaged, why in ((text.replace("71.25", "abc", 1), "line 2: could not convert"),
                         (text.replace(",5,0,", ",5.5,0,", 1), "line 2: invalid literal"),
                         (text.replace(",false,", ",", 1), f"line 2: {len(FIELDS) - 1} cells, not {len(FIELDS)}")):
        out.write_text(damaged)
        with pytest.raises(UsageError, match=why):
            writers.ResumableCsv(out, SETTINGS)
        assert out.read_text() == damaged  # refused, not rewritten
    out.write_bytes(text.encode() + b"\xff\xfe\n")
    with pytest.raises(UsageError, match="not UTF-8 text, so not an aqa score CSV"):
        writers.ResumableCsv(out, SETTINGS)


def test_a_spreadsheet_byte_order_mark_is_accepted(tmp_path):
    (a,) = make_files(tmp_path, 1)
    out = tmp_path / "out.csv"
    write_csv(out, good(a))
    out.write_bytes(b"\xef\xbb\xbf" + out.read_bytes())
    w = writers.ResumableCsv(out, SETTINGS)
    assert w.done(a) is not None
    w.close()


def test_foreign_csv_is_refused(tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("name,score\nx,1\n")
    with pytest.raises(UsageError, match="not an aqa score CSV"):
        writers.ResumableCsv(out)
    assert out.read_text() == "name,score\nx,1\n"


def test_spreadsheet_edits_keep_every_row(tmp_path):
    """Saved without a final newline, with a blank last line, TRUE/FALSE, CRLF, a row deleted or rows
    sorted: no row is dropped and only an edited row's own video is scored again."""
    a, b, c = make_files(tmp_path, 3)
    out = tmp_path / "out.csv"
    w = writers.ResumableCsv(out, SETTINGS)
    for v, score in ((a, 50.0), (b, 60.0), (c, 70.0)):
        w.write(good(v, score=score))
    w.close()
    text = out.read_text()
    for edited in (text.rstrip("\n"), text + "\n", text.replace(",false,", ",FALSE,"),
                   text.replace("\n", "\r\n").rstrip("\r\n")):
        out.write_bytes(edited.encode())
        w = writers.ResumableCsv(out, SETTINGS)
        assert [w.done(v).final_score for v in (a, b, c)] == [50.0, 60.0, 70.0]
        assert w.done(a).armstand is False
        w.close()
    lines = text.splitlines(keepends=True)
    out.write_text(lines[0] + lines[3] + lines[1])  # b's row deleted, c sorted before a
    w = writers.ResumableCsv(out, SETTINGS)
    assert (w.done(a).final_score, w.done(b), w.done(c).final_score) == (50.0, None, 70.0)
    w.close()
    out.write_text(text.replace(",false,", ",maybe,", 1))
    with pytest.raises(UsageError, match="line 2: armstand 'maybe'"):
        writers.ResumableCsv(out, SETTINGS)


def test_a_row_cut_inside_a_character_is_dropped_alone(tmp_path):
    a, b = make_files(tmp_path, 2)
    out = tmp_path / "out.csv"
    write_csv(out, good(a), good(b))
    raw = out.read_bytes()
    out.write_bytes(raw[: raw.rindex("½".encode()) + 1])  # the last row ends inside "½"
    w = writers.ResumableCsv(out, SETTINGS)
    assert w.done(a) is not None and w.done(b) is None
    w.close()
    assert [r["video"] for r in read_rows(out)] == [a]


@pytest.mark.parametrize("columns", [len(f) for f in writers.EARLIER_FIELDS])
def test_a_csv_of_an_earlier_version_is_upgraded_on_resume(tmp_path, columns):
    a, b = make_files(tmp_path, 2)
    out = tmp_path / "out.csv"
    write_csv(out, good(a))
    rows = list(csv.reader(io.StringIO(out.read_text())))
    out.write_text("".join(",".join(r[:columns]) + "\n" for r in rows))  # the columns of an earlier version
    w = writers.ResumableCsv(out, SETTINGS)
    assert w.done(a).final_score == 71.25  # its state line still matches: not scored again
    w.write(good(b))
    w.close()
    upgraded = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(upgraded[0]) == list(FIELDS)
    assert [r["video"] for r in upgraded] == [a, b]
    assert upgraded[0]["framing"] == "" and upgraded[1]["framing"] == "reframed"
    assert (upgraded[0]["p_position"] == "") == (columns == 14) and upgraded[1]["p_position"] == "0.9"
    assert upgraded[1]["score_source"] == "expected DD"


def test_read_only_never_rewrites_and_gives_any_stored_row(tmp_path):
    """Another process's part is read while nothing may change it: a cut last row is skipped, not cut."""
    videos = make_files(tmp_path, 3)
    out = tmp_path / "part.csv"
    write_csv(out, good(videos[0]), bad(videos[1]), good(videos[2]))
    out.write_bytes(out.read_bytes()[:-5])
    before = out.read_bytes()
    view = writers.ResumableCsv(out, SETTINGS, readonly=True)
    assert view.stored(videos[1]).error == "not a media file FFmpeg can read"  # stored, though not done
    assert view.done(videos[1]) is None and view.done(videos[0]) is not None and view.stored(videos[2]) is None
    with pytest.raises(ValueError, match="read-only"):
        view.write(good(videos[2]))
    view.close()
    assert out.read_bytes() == before
    assert writers.row_key(videos[0]) == os.path.abspath(videos[0])


def dive_row(video: str, k: int, n: int, score: float = 70.0) -> ScoreResult:
    result = good(video, score + k)
    result.dive_of = (k, n)
    return result


def test_all_dives_rows_resume_per_video_and_a_rescored_video_replaces_all_its_rows(tmp_path):
    a, b = make_files(tmp_path, 2)
    out = tmp_path / "out.csv"
    write_csv(out, *(dive_row(a, k, 3) for k in range(3)), dive_row(b, 0, 2))  # b: cut after its first dive
    w = writers.ResumableCsv(out, SETTINGS)
    assert [r.final_score for r in w.done_dives(a)] == [70.0, 71.0, 72.0]
    assert [r.dive_of for r in w.done_dives(a)] == [(0, 3), (1, 3), (2, 3)]
    assert w.done_dives(b) is None and w.done(a) is None  # b is incomplete; a has no whole-file row
    w.write(dive_row(a, 0, 1, 60.0))  # a scored again (changed): one dive now
    w.write(dive_row(b, 0, 2, 50.0))
    w.write(dive_row(b, 1, 2, 50.0))
    w.close()
    rows = read_rows(out)
    assert [(r["video"], r["final_score"]) for r in rows] == [(a, "60.0"), (b, "50.0"), (b, "51.0")]
    again = writers.ResumableCsv(out, SETTINGS)
    assert [r.final_score for r in again.done_dives(b)] == [50.0, 51.0] and len(again.done_dives(a)) == 1
    again.close()
