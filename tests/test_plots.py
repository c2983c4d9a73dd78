"""Figures (aqa_cli/plots.py): training curves from metrics.jsonl, evaluation plots, and the one-line message
when matplotlib (the `plots` extra) is missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from aqa_cli import plots
from aqa_cli.errors import UsageError

EPOCHS = 6


def metrics_record(epoch: int, rho: float) -> dict:
    """One epoch as train.py writes it (NaN stored as null)."""
    return {"epoch": epoch, "train_score": 2.0 - 0.2 * epoch, "train_cls": 7.0 - 0.5 * epoch, "train_loss": 9.0 - epoch,
            "lr": 1e-3, "seconds": 3.0, "clips_per_s": 10.0,
            "val": {"score": {"n": 8, "spearman": rho, "relative_l2": 1.0},
                    "expected_dd_x_execution": {"n": 8, "spearman": None},
                    "accuracy": {"position": 0.5 + 0.05 * epoch, "rotation_type": 0.25 * (epoch % 4)}}}


def write_run(path: Path, rhos: list[float], best_epoch: int | None = None) -> Path:
    path.mkdir(parents=True)
    lines = [json.dumps(metrics_record(e, r)) for e, r in enumerate(rhos)]
    (path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"epoch": 9, "train_lo')  # cut off by a crash
    if best_epoch is not None:
        (path / "report.json").write_text(json.dumps({"best_epoch": best_epoch,
                                                      "selected_on": "val score spearman"}))
    return path


def read_png(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def count_colour(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    return int((np.abs(image.astype(int) - rgb).max(axis=2) <= tolerance).sum())


def test_read_metrics_skips_a_cut_line_and_chosen_epoch(tmp_path):
    run = write_run(tmp_path / "a", [0.1, 0.5, 0.4, 0.5], best_epoch=3)
    assert [r["epoch"] for r in plots.read_metrics(run)] == [0, 1, 2, 3]
    assert plots.chosen_epoch(run, plots.read_metrics(run)) == 3  # report.json decides once it exists
    (run / "report.json").unlink()
    assert plots.chosen_epoch(run, plots.read_metrics(run)) == 1  # best so far; a tie keeps the first
    assert plots.chosen_epoch(run, plots.read_metrics(run), select="expected_dd_x_execution") is None
    with pytest.raises(UsageError, match="no metrics.jsonl"):
        plots.read_metrics(tmp_path)


def test_curves_of_two_runs(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the `plots` extra (matplotlib)")
    a = write_run(tmp_path / "run-a", [0.1 * e for e in range(EPOCHS)], best_epoch=4)
    b = write_run(tmp_path / "run-b", [0.3, 0.2, 0.6, 0.1])  # still training: no report.json yet
    out = plots.plot_curves([a, b], tmp_path / "out" / "curves.png")
    image = read_png(out)
    # Panels: total loss, score and cls losses, val score Spearman, position and rotation accuracies
    # (expected DD x execution is null in every epoch, so it gets no panel): 4 columns, 2 rows.
    width, height = plots.PANEL
    assert image.shape == (round(2 * height * plots.DPI), round(4 * width * plots.DPI), 3)
    assert image.std() > 10
    blue, orange = (31, 119, 180), (255, 127, 14)  # matplotlib's C0 and C1: one per run
    assert count_colour(image, blue) > 500 and count_colour(image, orange) > 500


def test_curves_refuse_a_run_without_epochs(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the `plots` extra (matplotlib)")
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(UsageError, match="no epoch"):
        plots.plot_curves([tmp_path], tmp_path / "c.png")


def eval_rows(count: int = 30, text: bool = False) -> list[dict]:
    """Rows shaped like evaluate.prediction_rows (text=True: read back from the --predictions CSV)."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(count):
        truth = float(40 + 2 * i)
        row = {"id": f"syn{i:05d}", "height": "3m", "final_score": truth, "score": truth + rng.normal(0, 6),
               "execution": 20.0, "difficulty": 2.0, "rules_score": truth + rng.normal(0, 4), "expected_dd": 2.0,
               "dive_number": "105B", "dive_number_pred": "105B"}
        for head, classes in (("position", 3), ("armstand", 2), ("rotation_type", 4), ("ss_no", 10), ("tw_no", 8)):
            row[head] = i % classes
            row[f"{head}_pred"] = (i + (i % 5 == 0)) % classes
        rows.append({k: str(v) for k, v in row.items()} if text else row)
    return rows


def test_eval_rows_read_alike_as_numbers_and_as_csv_text():
    assert plots._pairs(eval_rows(), "rules_score") == plots._pairs(eval_rows(text=True), "rules_score")
    assert plots._predicted(eval_rows(text=True))[0] == "rules_score"
    assert plots._predicted([{**eval_rows(1)[0], "rules_score": ""}])[0] == "score"  # no height: the score head


def test_eval_plots(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the `plots` extra (matplotlib)")
    report = {"split": "test", "score": {"spearman": 0.81}, "expected_dd_x_execution": {"spearman": 0.9},
              "accuracy": {"position": 0.8}}
    written = plots.plot_eval(report, eval_rows(text=True), tmp_path)
    assert [p.name for p in written] == ["scores.png", "confusion.png", "errors.png"]
    for path in written:
        image = read_png(path)
        assert image.std() > 10, path.name
    assert read_png(written[1]).shape[1] > 4 * read_png(written[1]).shape[0]  # five matrices side by side


def test_eval_plots_of_a_score_only_model(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need the `plots` extra (matplotlib)")
    rows = [{"id": str(i), "height": "3m", "final_score": 50.0 + i, "score": 52.0 + 0.5 * i} for i in range(10)]
    written = plots.plot_eval({"score": {"spearman": 1.0}}, rows, tmp_path)
    assert [p.name for p in written] == ["scores.png", "errors.png"]


def test_missing_matplotlib_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    run = write_run(tmp_path / "run", [0.1, 0.2])
    with pytest.raises(UsageError) as caught:
        plots.plot_curves([run], tmp_path / "curves.png")
    message = str(caught.value)
    assert "\n" not in message and "pip install 'aqa[plots]'" in message
    with pytest.raises(UsageError, match=r"aqa\[plots\]"):
        plots.plot_eval({}, eval_rows(3), tmp_path)
    assert not (tmp_path / "curves.png").exists()
