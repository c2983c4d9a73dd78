"""The dive a coach knows: `--dive 5156B` (its labels and table DD) and the meet's dive sheet (`--dives`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from checkpoints import make_checkpoint
from media import make_video
from test_score import FixedModel

from aqa_cli import rules
from aqa_cli.errors import UsageError
from aqa_cli.scoring import check_dive, load_model, score_video
from aqa_cli.sheet import DiveSheet


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    torch.set_num_threads(1)
    return load_model(str(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")), device="cpu", dive_check=False)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "dive.mp4", 40)


def test_known_dive_reads_leniently_and_needs_the_height_only_when_the_dd_differs():
    assert rules.known_dive(" 5156b ", "3") == ("5156B", rules.difficulty("5156B", "3m"))
    with pytest.raises(ValueError, match=r"5156B: give the height, its DD is 3.9 at 3m, 3.8 at 10m"):
        rules.known_dive("5156B")
    with pytest.raises(ValueError, match=r"646C: not listed at 3m \(listed at 10m\)"):
        rules.known_dive("646C", "3m")
    # a dive listed at one height needs none
    only = next(e for e in rules.dd_entries() if rules.listed_heights(e.dive) == [e.height])
    assert rules.known_dive(only.dive) == (only.dive, only.dd)
    with pytest.raises(ValueError, match="position letter"):
        rules.known_dive("51x6B", "3m")


def test_parse_dd_takes_a_decimal_comma_and_refuses_what_no_scoresheet_has():
    assert rules.parse_dd("3,2") == rules.parse_dd(" 3.2") == rules.parse_dd(3.2) == 3.2
    for bad in ("abc", "0", 7.5, float("nan"), True):
        with pytest.raises(ValueError, match="DD"):
            rules.parse_dd(bad)


def test_a_named_dive_sets_the_labels_and_its_table_dd(scorer, clip, monkeypatch):
    monkeypatch.setattr(scorer, "model", FixedModel())  # the model reads 105B, execution 25
    r = score_video(clip, scorer, dive="5156b", height="3m")
    assert (r.dive_number, r.position, r.rotation_type, r.ss_no, r.tw_no, r.armstand) == \
        ("5156B", "pike", "forward", 5, 6, False)
    assert r.description == rules.describe("5156B")
    assert (r.difficulty, r.dd_from, r.score_source) == (3.9, "dive", "given dive")
    assert r.final_score == pytest.approx(3.9 * 25.0)
    # p_<head>: what the model gives the named class (it is sure of pike and of no twist)
    assert r.probabilities["position"] > 0.99 and r.probabilities["tw_no"] < 0.01
    assert rules.spoken_dive("5156B") in r.commentary  # the named dive is the one spoken of
    given = score_video(clip, scorer, dive="5156B", dd=3.1)  # the scoresheet's DD wins; no height needed
    assert (given.dive_number, given.difficulty, given.score_source) == ("5156B", 3.1, "given DD")
    with pytest.raises(UsageError, match="give the height"):
        score_video(clip, scorer, dive="5156B")
    with pytest.raises(UsageError, match="not listed at 1m"):
        check_dive("5156B", "1m")


def test_dive_sheet_matches_paths_and_names_and_checks_every_row(tmp_path):
    (tmp_path / "heat1").mkdir()
    sheet = tmp_path / "meet.csv"
    sheet.write_text("\ufeffVideo;Dive;Board;DD\nheat1/anna.mp4;5156b;3;\nben.mp4;107C;1 m;\ncarla.mp4;;;3,2\n"
                     "dora.mp4;5156B;;2,9\n;;;\n")
    s = DiveSheet.read(sheet, height=None)
    assert [(r.video, r.dive, r.height, r.dd) for r in s.rows] == [
        ("heat1/anna.mp4", "5156B", "3m", None), ("ben.mp4", "107C", "1m", None), ("carla.mp4", None, None, 3.2),
        ("dora.mp4", "5156B", None, 2.9)]
    assert s.lookup(tmp_path / "heat1" / "anna.mp4").dive == "5156B"
    assert s.lookup("/elsewhere/ben.mp4").options() == {"dive": "107C", "height": "1m", "dd": None}  # by name
    assert s.lookup(tmp_path / "heat1" / "zoe.mp4") is None
    assert [r.video for r in s.unmatched([str(tmp_path / "ben.mp4"), str(tmp_path / "heat1/anna.mp4")])] == \
        ["carla.mp4", "dora.mp4"]
    # the command's --height fills rows without one
    assert DiveSheet.read(sheet, height="10m").lookup("carla.mp4").height == "10m"


@pytest.mark.parametrize("text, message", [
    ("video,dive\na.mp4,5156B\n", "line 2: dive 5156B: give the height"),
    ("video,dive,height\na.mp4,107Q,3m\n", "line 2: dive number '107Q'"),
    ("video,dd\na.mp4,abc\n", "line 2: DD 'abc': expected a number"),
    ("video,height\na.mp4,2m\n", "line 2: height '2m'"),
    ("video,dive,height\na.mp4,107C,3m\n./a.mp4,107B,3m\n", "line 3: ./a.mp4 is already on line 2"),
    ("name,dive\na.mp4,107C\n", "the header needs a video column"),
    ("", "empty"),
    ("video,dive,height,dd\na.mp4,,,3,2\n", "line 2: 5 cells for 4 columns"),
])
def test_a_bad_dive_sheet_is_one_line_naming_the_line(tmp_path, text, message):
    sheet = tmp_path / "meet.csv"
    sheet.write_text(text)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as info:
        DiveSheet.read(sheet)
    assert "\n" not in str(info.value) and str(sheet) in str(info.value)


def test_a_missing_dive_sheet_is_one_line(tmp_path):
    with pytest.raises(UsageError, match="cannot read it"):
        DiveSheet.read(tmp_path / "nope.csv")


def test_cli_dive_and_dive_sheet(tmp_path, clip):
    import json
    import shutil

    from test_score import score

    ckpt = str(make_checkpoint(tmp_path / "tiny.pt"))
    code, out, err, _ = score(str(clip), "--dive", "5156b", "--height", "3", "-f", "json", ckpt=ckpt)
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["dive_number"], row["difficulty"], row["score_source"], row["tw_no"]) == ("5156B", 3.9, "given dive", 6)
    code, out, err, res = score(str(clip), "--dive", "5156B", ckpt=ckpt)
    assert code == 2 and "5156B: give the height, its DD is 3.9 at 3m, 3.8 at 10m" in str(res.exception)

    meet = tmp_path / "meet"
    meet.mkdir()
    for name in ("anna.mp4", "ben.mp4", "carla.mp4"):
        shutil.copy(clip, meet / name)
    sheet = tmp_path / "dives.csv"
    sheet.write_text('video,dive,height,dd\nmeet/anna.mp4,107C,1m,\nben.mp4,,,"3,2"\nzoe.mp4,101A,1m,\n')
    code, out, err, _ = score(str(meet), "--dives", str(sheet), "--height", "10m", "-f", "json", ckpt=ckpt)
    assert code == 0, err
    rows = {Path(r["video"]).name: r for r in json.loads(out)}
    assert (rows["anna.mp4"]["dive_number"], rows["anna.mp4"]["difficulty"]) == ("107C", rules.difficulty("107C", "1m"))
    assert (rows["ben.mp4"]["difficulty"], rows["ben.mp4"]["score_source"]) == (3.2, "given DD")
    _, plain, _, _ = score(str(meet / "carla.mp4"), "--height", "10m", "-f", "json", ckpt=ckpt)
    assert rows["carla.mp4"] == json.loads(plain)[0]  # no row: scored with the command's options
    assert "1 row(s) of" in err and "zoe.mp4 (line 4)" in err  # a row naming no input is listed
    code, out, err, _ = score(str(meet), "--dd", "3.0", "-f", "json", ckpt=ckpt)
    assert code == 0 and "--dd 3.0 applies to every one of the 3 videos" in err
    sheet.write_text("video,dive\nanna.mp4,5156B\n")
    code, out, err, res = score(str(meet), "--dives", str(sheet), ckpt=ckpt)
    assert code == 2 and "line 2: dive 5156B: give the height" in str(res.exception) and out == ""
