"""Evaluation: every reported number against hand-computed values, and `aqa eval` equal to the test
numbers training wrote."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from aqa_cli import rules
from aqa_cli.config import load_config
from aqa_cli.datasets.layout import DatasetRoot, Sample
from aqa_cli.evaluate import Predictions, compute_metrics, evaluate_checkpoint, prediction_rows
from aqa_cli.train import train
from aqa_cli.checkpoint import Checkpoint
from trainroot import SMALL, make_root

# (dive number, position, armstand, rotation_type, ss_no, tw_no)
LABELS = {"107B": (1, 0, 1, 7, 0), "205C": (2, 0, 0, 5, 0), "405C": (2, 0, 2, 5, 0)}


def _samples(expected=True):
    numbers = ["107B", "205C", "405C", "107B"]
    execution = [21.0, 24.0, 18.0, 27.0]
    out = []
    for i, (number, e) in enumerate(zip(numbers, execution)):
        dd = rules.difficulty(number, "3m")
        out.append(Sample(id=f"s{i}", final_score=round(dd * e, 2), difficulty=dd, dive_number=number,
                          height="3m", commentary="a clean entry with little splash",
                          expected_score=dd * e + (0.5 if expected else 0.0),
                          **dict(zip(("position", "armstand", "rotation_type", "ss_no", "tw_no"), LABELS[number]))))
    return out, np.array(execution)


def _predictions(samples, execution):
    heads = ("position", "armstand", "rotation_type", "ss_no", "tw_no")
    classes = {h: np.array([getattr(s, h) for s in samples]) for h in heads}
    classes["position"][3] = 2  # sample 3 predicted as 107C instead of 107B
    return Predictions(score=np.array([50.0, 70.0, 40.0, 90.0]), execution=execution.copy(), classes=classes,
                       captions=[s.commentary.split() for s in samples])


def test_metrics_against_hand_computed_values():
    samples, execution = _samples()
    pred = _predictions(samples, execution)
    lo, hi = 40.0, 100.0
    report = compute_metrics(pred, samples, lo, hi, synthetic=True)
    true = [s.final_score for s in samples]  # 65.1, 67.2, 48.6, 83.7: ranks 2 3 1 4 vs predicted 2 3 1 4
    assert report["score"]["spearman"] == pytest.approx(1.0)
    expected_rl2 = 100 * np.mean(((pred.score - true) / (hi - lo)) ** 2)
    assert report["score"]["relative_l2"] == pytest.approx(expected_rl2)
    acc = report["accuracy"]
    assert acc["position"] == 0.75 and acc["dive_number"] == 0.75
    assert acc["armstand"] == acc["rotation_type"] == acc["ss_no"] == acc["tw_no"] == 1.0
    # DD(predicted number) × predicted execution: exact for the three right dives, 107C's DD for the last.
    recomputed = [s.final_score for s in samples[:3]] + [rules.difficulty("107C", "3m") * 27.0]
    dd = report["dd_x_execution"]
    assert dd["n"] == 4
    assert dd["relative_l2"] == pytest.approx(100 * np.mean(((np.array(recomputed) - true) / (hi - lo)) ** 2))
    assert report["execution"]["spearman"] == pytest.approx(1.0)
    # the sample's own DD × predicted execution: exact here (execution predicted perfectly), all 4 dives
    assert report["known_dd_x_execution"]["n"] == 4
    assert report["known_dd_x_execution"]["spearman"] == pytest.approx(1.0)
    assert report["known_dd_x_execution"]["relative_l2"] == pytest.approx(0.0, abs=1e-5)  # sample 3 too
    assert report["captions"]["n"] == 4 and report["captions"]["bleu4"] == pytest.approx(1.0)
    assert report["oracle"]["spearman"] == pytest.approx(1.0)  # a constant offset keeps the ranks


def test_a_straight_dive_predicted_as_class_0_gets_its_number_and_dd():
    # 101A: MTL-AQA's position class 0; the DD table lists 101 at 3 m only as straight.
    samples, execution = _samples()
    dd = rules.difficulty("101A", "3m")
    samples[3] = Sample(id="s3", final_score=round(dd * 27.0, 2), difficulty=dd, dive_number="101A",
                        height="3m", position=0, armstand=0, rotation_type=1, ss_no=1, tw_no=0)
    pred = _predictions(samples, execution)
    pred.classes["position"][3] = 0
    report = compute_metrics(pred, samples, 40.0, 100.0)
    assert report["accuracy"]["dive_number"] == 1.0
    assert report["dd_x_execution"]["n"] == 4
    assert report["dd_x_execution"]["relative_l2"] == pytest.approx(0.0, abs=1e-5)


def test_expected_dd_times_execution_mixes_the_dds_as_the_heads_doubt():
    samples, execution = _samples()
    pred = _predictions(samples, execution)
    sizes = {"position": 3, "armstand": 2, "rotation_type": 4, "ss_no": 10, "tw_no": 8}
    with np.errstate(divide="ignore"):
        pred.log_probs = {h: np.log(np.eye(k)[pred.classes[h]]) for h, k in sizes.items()}
        pred.log_probs["position"][3] = np.log([0.0, 0.75, 0.25])  # sample 3 (107B): 75 % pike, 25 % tuck
        pred.log_probs["armstand"][2] = np.log([0.0, 1.0])  # sample 2: an armstand, not done off a 3 m board
    samples[1].height = ""  # no height: no rules score
    report = compute_metrics(pred, samples, 40.0, 100.0)
    dd3 = 0.75 * rules.difficulty("107B", "3m") + 0.25 * rules.difficulty("107C", "3m")
    # sample 0 exact, sample 2 falls back to the score head (40), sample 3 mixes 107B and 107C
    recomputed = np.array([samples[0].final_score, 40.0, dd3 * 27.0])
    true = np.array([s.final_score for i, s in enumerate(samples) if i != 1])
    got = report["expected_dd_x_execution"]
    assert got["n"] == 3
    assert got["relative_l2"] == pytest.approx(100 * np.mean(((recomputed - true) / 60.0) ** 2))
    # the same numbers, one row per sample, for --predictions
    rows = prediction_rows(pred, samples)
    assert [r["id"] for r in rows] == ["s0", "s1", "s2", "s3"]
    assert [r["rules_score"] for r in rows] == [pytest.approx(samples[0].final_score, abs=1e-3), "", 40.0,
                                                pytest.approx(dd3 * 27.0, abs=1e-3)]
    assert [r["expected_dd"] for r in rows] == [pytest.approx(samples[0].difficulty), "", "",
                                                pytest.approx(dd3, abs=1e-4)]
    assert rows[3]["dive_number"] == "107B" and rows[3]["dive_number_pred"] == "107C"
    assert rows[3]["position"] == 1 and rows[3]["position_pred"] == 2
    assert rows[2]["dive_number_pred"] == "405C"  # the argmax classes (no armstand) spell the dive
    assert rows[0]["commentary_pred"] == samples[0].commentary


def test_prediction_rows_leave_out_what_the_model_does_not_predict():
    samples, execution = _samples()
    stl = prediction_rows(Predictions(score=np.array([1.0, 2.0, 3.0, 4.0])), samples)
    assert list(stl[0]) == ["id", "height", "final_score", "score"]
    assert stl[3] == {"id": "s3", "height": "3m", "final_score": samples[3].final_score, "score": 4.0}
    pred = _predictions(samples, execution)  # sample 2 predicted as a tuck (class 2)
    samples[2].position = -1
    mtl = prediction_rows(pred, samples)
    assert mtl[2]["position"] == "" and mtl[2]["position_pred"] == 2  # an unknown label stays empty
    assert "rules_score" not in mtl[0]  # no log-probabilities, no expected DD


def test_unknown_labels_are_left_out_and_real_data_has_no_oracle():
    samples, execution = _samples()
    samples[3].position = -1
    samples[3].dive_number = ""
    report = compute_metrics(_predictions(samples, execution), samples, 40.0, 100.0, synthetic=False)
    assert report["accuracy"]["position"] == 1.0 and report["accuracy"]["dive_number"] == 1.0
    assert "oracle" not in report


def test_stl_predictions_report_the_score_only():
    samples, _ = _samples()
    report = compute_metrics(Predictions(score=np.array([1.0, 1.0, 1.0, 1.0])), samples, 40.0, 100.0)
    assert set(report) == {"score"}
    assert math.isnan(report["score"]["spearman"])  # constant predictions have no ranking


def test_eval_of_best_checkpoint_equals_the_test_numbers_of_training(tmp_path):
    torch.set_num_threads(1)
    root = make_root(tmp_path / "root")
    # 3 clips at stride 2 (every second frame of 96), starting shift // 2 = 3 frames into the window:
    # eval must read the same frames as training's own test pass did
    cfg = load_config("smoke", [f"data.root={root}", *SMALL, "train.epochs=1", "train.limit_batches=2",
                                "data.clips=3", "data.stride=2", "data.shift=7"])
    train(cfg, tmp_path / "run", quiet=True)
    stored = Checkpoint.load(tmp_path / "run" / "best.pt").metrics["test"]
    report = evaluate_checkpoint(tmp_path / "run" / "best.pt", root, split="test", device="cpu")
    assert report["samples"] == 2 and report["data"]["synthetic"] is True
    assert report["score"] == pytest.approx(stored["score"], nan_ok=True)
    assert report["accuracy"] == pytest.approx(stored["accuracy"], nan_ok=True)
    out = subprocess.run([sys.executable, "-m", "aqa_cli", "eval", "--weights", str(tmp_path / "run" / "best.pt"),
                          "--data", str(root), "--split", "val", "-f", "json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    parsed = json.loads(out.stdout)
    assert parsed["split"] == "val" and parsed["score"]["n"] == 2 and "oracle" in parsed
    with_rows = evaluate_checkpoint(tmp_path / "run" / "best.pt", root, split="test", device="cpu",
                                    predictions=tmp_path / "rows" / "test.csv")
    assert with_rows["score"] == pytest.approx(stored["score"], nan_ok=True)
    with open(tmp_path / "rows" / "test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    test_samples = DatasetRoot(root).split("test")
    assert [r["id"] for r in rows] == [s.id for s in test_samples]
    assert [float(r["final_score"]) for r in rows] == [s.final_score for s in test_samples]
    assert {"score", "execution", "rules_score", "dive_number_pred", "tw_no_pred", "commentary_pred"} <= set(rows[0])
    folder = subprocess.run([sys.executable, "-m", "aqa_cli", "eval", "--weights", str(tmp_path / "run" / "best.pt"),
                             "--data", str(root), "--predictions", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert folder.returncode != 0 and "is a folder" in folder.stderr and "Traceback" not in folder.stderr
    written = subprocess.run([sys.executable, "-m", "aqa_cli", "eval", "--weights", str(tmp_path / "run" / "best.pt"),
                              "--data", str(root), "--predictions", str(tmp_path / "val.csv"), "--split", "val"],
                             capture_output=True, text=True, timeout=120)
    assert written.returncode == 0 and f"wrote 2 rows to {tmp_path / 'val.csv'}" in written.stderr
    assert len((tmp_path / "val.csv").read_text().splitlines()) == 3  # header + the 2 val dives
    every = evaluate_checkpoint(tmp_path / "run" / "best.pt", root, split="all", device="cpu")
    assert every["samples"] == sum(len(DatasetRoot(root).split(n)) for n in ("train", "val", "test"))


def test_eval_checks_outputs_and_splits_before_running(tmp_path):
    from aqa_cli.errors import UsageError

    root = make_root(tmp_path / "root")
    cfg = load_config("smoke", [f"data.root={root}", *SMALL, "train.epochs=1", "train.limit_batches=1"])
    train(cfg, tmp_path / "run", quiet=True)
    best = tmp_path / "run" / "best.pt"
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is not a writable folder"):
        evaluate_checkpoint(best, root, predictions=tmp_path / "file" / "rows.csv")
    for target in (best, root / "annotations.jsonl", root / "rows.csv"):
        with pytest.raises(UsageError, match="would overwrite an input"):
            evaluate_checkpoint(best, root, predictions=target)
    with pytest.raises(UsageError, match="names a folder"):
        evaluate_checkpoint(best, root, predictions=f"{tmp_path}/new/")
    (root / "splits" / "test.txt").write_text("")
    with pytest.raises(UsageError, match="the test split is empty"):
        evaluate_checkpoint(best, root, device="cpu")
