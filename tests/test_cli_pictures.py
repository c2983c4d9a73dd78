"""The commands behind the pictures: `aqa score --report`, `aqa eval --plots`, `aqa plot` and the
curves.png that `aqa train` keeps (the pages and figures themselves: tests/test_report.py, test_plots.py)."""

from __future__ import annotations

import json
import shutil

import pytest
from checkpoints import make_checkpoint
from media import make_video
from trainroot import SMALL, make_root
from typer.testing import CliRunner

from aqa_cli.cli import app

pytest.importorskip("matplotlib", reason="the plots need matplotlib: pip install '.[test]'")
runner = CliRunner()


def invoke(*args: str):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, (res.output, res.exception)
    return res


def test_report_for_one_video_and_for_a_folder_that_resumes(tmp_path):
    ckpt = make_checkpoint(tmp_path / "tiny.pt")
    meet = tmp_path / "meet"
    meet.mkdir()
    make_video(meet / "a.mp4", 40)
    shutil.copy(meet / "a.mp4", meet / "b.mp4")
    invoke("score", str(meet / "a.mp4"), "--weights", str(ckpt), "--report", str(tmp_path / "a.html"), "-q")
    page = (tmp_path / "a.html").read_text()
    assert "data:image/jpeg;base64," in page and "<html" in page.lower()
    invoke("score", str(meet), "--weights", str(ckpt), "--report", str(tmp_path / "rep"), "-q")
    pages = sorted(p.name for p in (tmp_path / "rep").glob("*.html"))
    assert len(pages) == 3 and "index.html" in pages
    index = (tmp_path / "rep" / "index.html").read_text()
    assert all(p in index for p in pages if p != "index.html")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "rep").glob("[ab]*.html")}
    invoke("score", str(meet), "--weights", str(ckpt), "--report", str(tmp_path / "rep"), "-q")
    assert {p: p.stat().st_mtime_ns for p in before} == before  # done pages are not written again
    res = runner.invoke(app, ["score", str(meet), "--weights", str(ckpt), "--report", str(tmp_path / "x.html")])
    assert "one page is for one video" in str(res.exception)  # a UsageError: exit 2 under main()


def test_eval_plots_and_training_curves(tmp_path):
    root = make_root(tmp_path / "root")
    run = tmp_path / "run"
    invoke("train", "--config", "smoke", "--data", str(root), "--out", str(run), "-q",
           "--set", "train.epochs=2", *[x for s in SMALL for x in ("--set", s)])
    assert (run / "curves.png").stat().st_size > 10_000
    invoke("eval", "--weights", str(run / "best.pt"), "--data", str(root), "--split", "all", "-f", "json",
           "--plots", str(tmp_path / "plots"))
    drawn = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert drawn == ["confusion.png", "errors.png", "predictions.csv", "scores.png"]
    invoke("plot", str(run), str(run), "-o", str(tmp_path / "both.png"))
    assert (tmp_path / "both.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run / "report.json").read_text())
