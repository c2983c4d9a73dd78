"""The frozen-feature MTL variant (`aqa train --task mtl-features`): the regress encoder on segment
features with execution and dive-class heads; its losses on hand-made cases, a tiny run on random
features end to end (checkpoint, `aqa eval --features`), and `aqa score` applying the rules to it."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from test_s4aqa import random_features, tiny_config
from trainroot import make_root

from aqa_cli.config import SemiConfig, TrainConfig
from aqa_cli.errors import UsageError
from aqa_cli.evaluate import evaluate_features_checkpoint
from aqa_cli.losses import classification_loss
from aqa_cli.models.s4aqa import build_s4aqa
from aqa_cli import rules
from aqa_cli.rules import HEADS, LABEL_NAMES
from aqa_cli.semi import step_losses, total_loss, train_semi

CLASSES = {h: len(LABEL_NAMES[h]) for h in HEADS}


def mtl_model():
    torch.manual_seed(0)
    return build_s4aqa("mtl-features", 6, 5, width=8, layers=1, heads=2, dropout=0.0, classes=CLASSES)


def test_the_mtl_model_gives_score_execution_and_every_dive_heads_logits_in_points():
    model = mtl_model().eval()
    model.exec_mean.fill_(20.0)
    model.exec_std.fill_(3.0)
    v = torch.randn(3, 5, 6)
    out = model(v)
    assert out["score"].shape == (3,) and out["execution"].shape == (3,)
    assert {h: tuple(x.shape) for h, x in out["logits"].items()} == {h: (3, k) for h, k in CLASSES.items()}
    f = model.pool(model.encode(v))
    assert torch.allclose(out["execution"], model.execute(f) * 3.0 + 20.0)
    with pytest.raises(ValueError, match="classes"):
        build_s4aqa("mtl-features", 6, 5, width=8, layers=1, heads=2)
    plain = build_s4aqa("regress", 6, 5, width=8, layers=1, heads=2).eval()
    assert set(plain(v)) == {"score"} and not any(k.startswith(("executor", "classifiers")) for k in plain.state_dict())


@torch.no_grad()
def test_the_mtl_terms_leave_out_unknown_execution_and_labels_and_take_the_train_weights():
    model = mtl_model().eval()  # no dropout: the same f in the test's own computation
    xl, zl, nl = torch.randn(4, 5, 6), torch.randn(4), torch.full((4,), 5)
    ze = torch.tensor([0.5, math.nan, -1.0, math.nan])
    labels = torch.tensor([[0, 1, 2, 3, 4], [1, 0, 1, 5, -1], [-1, -1, -1, -1, -1], [2, 0, 3, 9, 7]])
    terms = step_losses(model, (xl, zl, nl), None, SemiConfig(), None, (ze, labels))
    f = model.pool(model.encode(xl))
    known = torch.tensor([True, False, True, False])
    assert set(terms) == {"reg", "exec", "cls"}
    assert float(terms["exec"]) == pytest.approx(float(F.mse_loss(model.execute(f)[known], ze[known])), abs=1e-6)
    assert float(terms["cls"]) == pytest.approx(float(classification_loss(model.classify(f), labels)), abs=1e-6)
    train = TrainConfig(execution_weight=0.5, cls_weight=2.0)
    expected = terms["reg"] + 0.5 * terms["exec"] + 2.0 * terms["cls"]
    assert float(total_loss(terms, SemiConfig(), train)) == pytest.approx(float(expected), abs=1e-6)
    none_known = step_losses(model, (xl, zl, nl), None, SemiConfig(), None, (torch.full((4,), math.nan), labels))
    assert "exec" not in none_known  # a batch without a known execution adds no term, not NaN


def test_mtl_features_trains_saves_a_rebuildable_checkpoint_and_eval_reports_every_head(tmp_path):
    from aqa_cli.checkpoint import Checkpoint

    root = make_root(tmp_path / "root", n=20, splits=(12, 4, 4))
    feats = random_features(root, tmp_path / "feats")
    cfg = tiny_config(root, feats, labeled_ratio=1.0)
    cfg.train.select = "expected_dd_x_execution"
    report = train_semi(cfg, tmp_path / "run", "mtl-features")
    assert report["task"] == "mtl-features" and report["labeled"] == 12
    assert report["selected_on"] == "val expected_dd_x_execution spearman"
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(x[k]) for x in lines for k in ("reg", "exec", "cls"))
    test = report["test"]
    assert set(test["accuracy"]) == {*HEADS, "dive_number"} and test["execution"]["n"] == 4
    assert test["score"]["n"] == 4 and test["expected_dd_x_execution"]["n"] == 4
    ckpt = Checkpoint.load(tmp_path / "run" / "best.pt")
    assert ckpt.on_features and ckpt.model_config.execution and dict(ckpt.model_config.classes) == CLASSES
    assert ckpt.label_maps["rotation_type"] == LABEL_NAMES["rotation_type"]
    model = ckpt.build_model()
    assert set(model.classifiers) == set(HEADS) and model.decoder is None
    measured = evaluate_features_checkpoint(tmp_path / "run" / "best.pt", root, feats)
    for key in ("score", "accuracy", "execution", "expected_dd_x_execution"):
        assert measured[key] == pytest.approx(test[key], nan_ok=True), key
    again = train_semi(cfg, tmp_path / "again", "mtl-features")
    assert json.dumps(again["test"]) == json.dumps(test) and again["best_epoch"] == report["best_epoch"]


def test_selecting_on_the_rules_score_is_refused_for_a_score_only_model(tmp_path):
    root = make_root(tmp_path / "root", n=8, splits=(4, 2, 2))
    cfg = tiny_config(root, random_features(root, tmp_path / "feats"), labeled_ratio=1.0)
    cfg.train.select = "expected_dd_x_execution"
    with pytest.raises(UsageError, match="train.select"):
        train_semi(cfg, tmp_path / "run", "regress")


def test_aqa_score_applies_the_rules_to_an_mtl_features_model(tmp_path, monkeypatch):
    from media import make_video
    from test_score_features import train_on_stand_in_features

    from aqa_cli.scoring import load_model

    ckpt, _, _ = train_on_stand_in_features(tmp_path, monkeypatch, "mtl-features", labeled_ratio=1.0)
    scorer = load_model(ckpt, device="cpu", dive_check=False, locate=False)
    clip = make_video(tmp_path / "dive.mp4", 40)
    result = scorer.score(clip, height="3m")
    x, lengths = scorer.features(scorer.features.prepare(clip))
    with torch.no_grad():
        out = scorer.model(x, lengths)
    # the model's own heads reach the result: its execution, each head's argmax class, DD x execution
    execution = rules.clip_execution(float(out["execution"][0]))
    assert result.execution == pytest.approx(execution, abs=1e-4)
    argmax = {h: int(out["logits"][h][0].argmax()) for h in HEADS}
    assert (result.position, result.rotation_type) == (LABEL_NAMES["position"][argmax["position"]],
                                                       LABEL_NAMES["rotation_type"][argmax["rotation_type"]])
    assert (result.armstand, result.ss_no, result.tw_no) == (bool(argmax["armstand"]), argmax["ss_no"], argmax["tw_no"])
    assert result.dive_number == rules.number_from_classes(argmax, "3m")
    if result.dd_from == "expected":  # the heads read a dive listed at 3 m: the expected DD x execution
        assert result.final_score == pytest.approx(result.difficulty * execution, abs=1e-3)
    given = scorer.score(clip, dd=2.5)
    assert given.dd_from == "given" and given.final_score == pytest.approx(2.5 * execution, abs=1e-3)
