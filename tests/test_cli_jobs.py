"""Commands wired to their jobs: `aqa score --report`, `aqa eval --plots`, `aqa plot`, the curves.png
`aqa train` keeps, and `aqa train --task s4aqa|regress` (the jobs themselves: test_report.py,
test_plots.py, test_s4aqa.py)."""

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


def test_train_task_s4aqa_and_regress_from_the_command_line(tmp_path):
    """`aqa train --task s4aqa|regress --features ... --labeled-ratio ...` reaches semi.train_semi with the
    options in cfg.semi (the method itself: tests/test_s4aqa.py)."""
    from test_s4aqa import random_features

    root = make_root(tmp_path / "root", n=20, splits=(12, 4, 4))
    feats = random_features(root, tmp_path / "feats")
    small = ["train.epochs=2", "train.batch_size=4", "semi.width=8", "semi.heads=2", "semi.layers=1",
             "semi.unlabeled_batch=4"]
    for task in ("regress", "s4aqa"):
        invoke("train", "--task", task, "--data", str(root), "--features", feats, "--labeled-ratio", "0.25",
               "--labeled-seed", "3", "--out", str(tmp_path / task), "-q", *[x for s in small for x in ("--set", s)])
        report = json.loads((tmp_path / task / "report.json").read_text())
        assert report["task"] == task and report["labeled"] == 3
    assert (tmp_path / "regress" / "labeled.txt").read_text() == (tmp_path / "s4aqa" / "labeled.txt").read_text()
