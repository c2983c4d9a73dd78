"""S4AQA on segment features: the loss terms on hand-made cases, the gradient-reversal layer, the
masked encoder, the labelled subset, the Fisher-z average, and both tasks end to end on a tiny root."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from trainroot import make_root

from aqa_cli.config import RunConfig
from aqa_cli.datasets.features import FeatureFolder, FeatureIndex
from aqa_cli.datasets.layout import DatasetRoot, Sample
from aqa_cli.errors import UsageError
from aqa_cli.models.s4aqa import S4AQA, alignment_loss, recovery_loss, reverse_gradient
from aqa_cli.evaluate import evaluate_features_checkpoint
from aqa_cli.semi import fisher_z_mean, labeled_subset, train_semi


def small_model(semi: bool = True) -> S4AQA:
    torch.manual_seed(0)
    return S4AQA(in_dim=6, segments=5, width=8, layers=1, heads=2, dropout=0.0, semi=semi)


def test_recovery_loss_is_the_mean_absolute_error_of_the_token_at_the_masked_position():
    recovered = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[0.0, 2.0], [3.0, 6.0]])
    assert float(recovery_loss(recovered, target)) == pytest.approx((1 + 0 + 0 + 2) / 4)
    model = small_model()
    model.decoder = nn.Identity()  # Φ out of the way: recover() must read token k of each video
    tokens = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    assert torch.equal(model.recover(tokens, torch.tensor([2, 0])), torch.stack([tokens[0, 2], tokens[1, 0]]))


def test_alignment_loss_is_the_discriminators_cross_entropy_labelled_one_unlabelled_zero():
    assert float(alignment_loss(torch.zeros(2), torch.zeros(4))) == pytest.approx(math.log(2))
    confident = alignment_loss(torch.tensor([20.0]), torch.tensor([-20.0, -20.0]))
    wrong = alignment_loss(torch.tensor([-20.0]), torch.tensor([20.0, 20.0]))
    assert float(confident) < 1e-6 and float(wrong) == pytest.approx(20.0, abs=1e-6)


def test_the_mask_token_hides_the_masked_segment_and_the_encoder_keeps_one_token_per_segment():
    model = small_model().eval()
    v = torch.randn(2, 5, 6)
    other = v.clone()
    other[0, 3], other[1, 1] = 100.0, -100.0  # change only the segments that are masked
    masked = torch.tensor([3, 1])
    assert model.encode(v).shape == (2, 5, 8)
    assert torch.allclose(model.encode(v, masked), model.encode(other, masked), atol=1e-6)
    assert not torch.allclose(model.encode(v), model.encode(other))


def test_gradient_reversal_sends_the_discriminators_gradient_to_the_encoder_negated_and_scaled():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-1.5, -2.0]))

    model, v, coeff = small_model().eval(), torch.randn(3, 5, 6), 0.3

    def grads(reverse: bool):
        model.zero_grad()
        f = model.pool(model.encode(v))
        logits = model.discriminate(f, coeff) if reverse else model.discriminator(f).squeeze(-1)
        alignment_loss(logits[:1], logits[1:]).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    reversed_, plain = grads(True), grads(False)
    encoder = [n for n in plain if n.startswith("encoder.")]
    assert encoder and all(plain[n].abs().sum() > 0 for n in encoder if "mask_token" not in n)
    for name in encoder:
        assert torch.allclose(reversed_[name], -coeff * plain[name], atol=1e-7), name
    for name in (n for n in plain if n.startswith("discriminator.")):  # D itself learns unreversed
        assert torch.allclose(reversed_[name], plain[name])


def test_the_baseline_has_the_same_encoder_and_regressor_without_decoder_and_discriminator():
    semi, base = small_model(True), small_model(False)
    assert base.decoder is None and base.discriminator is None
    shared = {k: v for k, v in semi.state_dict().items() if k.split(".")[0] in ("encoder", "regressor")}
    assert shared.keys() == base.state_dict().keys() - {"score_mean", "score_std"}
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in shared.items())  # same seed, same start


def scored(n: int, seed: int = 0) -> list[Sample]:
    scores = np.random.default_rng(seed).permutation(n).astype(float)
    return [Sample(id=f"s{i:03d}", final_score=float(s)) for i, s in enumerate(scores)]


def test_the_labelled_subset_is_deterministic_stratified_and_independent_of_the_order():
    samples = scored(100)
    ids = labeled_subset(samples, 0.1, seed=0)
    assert len(ids) == len(set(ids)) == 10
    assert ids == labeled_subset(list(reversed(samples)), 0.1, seed=0)  # order of the split file: no matter
    assert ids != labeled_subset(samples, 0.1, seed=1)
    score = {s.id: s.final_score for s in samples}
    assert sorted(int(score[i]) // 10 for i in ids) == list(range(10))  # one from each score decile
    assert len(labeled_subset(samples, 0.4, seed=3)) == 40
    with pytest.raises(UsageError, match="at least 2"):
        labeled_subset(samples, 0.01, seed=0)


def test_fisher_z_mean_on_hand_computed_cases_and_the_papers_rg_row():
    assert fisher_z_mean([0.5, 0.0]) == pytest.approx(2 - math.sqrt(3))  # tanh(atanh(0.5) / 2) = 2 - √3
    assert fisher_z_mean([0.3, 0.3, 0.3]) == pytest.approx(0.3)
    assert fisher_z_mean([0.248, 0.388, 0.372, 0.357]) == pytest.approx(0.342, abs=5e-4)  # S4AQA on RG at 40 %
    assert fisher_z_mean([1.0, 0.2]) == 1.0
    assert math.isnan(fisher_z_mean([0.2, math.nan])) and math.isnan(fisher_z_mean([]))
    with pytest.raises(ValueError):
        fisher_z_mean([1.2])


def random_features(root, out, segments: int = 4, dim: int = 6, seed: int = 0, name: str | None = None) -> str:
    """A features folder of random arrays for every sample of `root`, the first feature following the
    score a little, so a model has something to find."""
    droot = DatasetRoot(root)
    info = droot.info
    index = FeatureIndex(backbone="random", weights_sha256="0" * 64, clip_len=16, segments=segments, size=16,
                         dim=dim, data={"name": name or info.name, "version": info.version})
    folder = FeatureFolder(out)
    folder.open(index)
    rng = np.random.default_rng(seed)
    for sample in droot.samples.values():
        a = rng.normal(size=(segments, dim))
        a[:, 0] += sample.final_score / 20
        folder.write(sample.id, a)
    return str(out)


def tiny_config(root, feats, **semi) -> RunConfig:
    cfg = RunConfig()
    cfg.data.root = str(root)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr = 3, 4, 1e-3
    cfg.semi.features, cfg.semi.labeled_ratio = feats, 0.25
    cfg.semi.width, cfg.semi.heads, cfg.semi.layers, cfg.semi.unlabeled_batch = 8, 2, 1, 4
    for key, value in semi.items():
        setattr(cfg.semi, key, value)
    return cfg


def test_both_tasks_train_on_the_same_subset_save_aqa_checkpoints_and_repeat_exactly(tmp_path):
    root = make_root(tmp_path / "root", n=20, splits=(12, 4, 4))
    feats = random_features(root, tmp_path / "feats")
    reports = {task: train_semi(tiny_config(root, feats), tmp_path / task, task) for task in ("regress", "s4aqa")}
    for task, report in reports.items():
        run = tmp_path / task
        assert report["task"] == task and report["labeled"] == 3 and report["test"]["n"] == 4
        assert report["unlabeled"] == {"train": 9}
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [x["epoch"] for x in lines] == [1, 2, 3] and math.isfinite(lines[-1]["reg"])
        assert ("rcvr" in lines[0] and "adv" in lines[0]) == (task == "s4aqa")
        measured = evaluate_features_checkpoint(run / "best.pt", root, feats)
        assert measured["score"] == pytest.approx(report["test"], nan_ok=True) and measured["task"] == task
    assert (tmp_path / "regress" / "labeled.txt").read_text() == (tmp_path / "s4aqa" / "labeled.txt").read_text()
    again = train_semi(tiny_config(root, feats), tmp_path / "again", "s4aqa")
    assert again["test"] == reports["s4aqa"]["test"] and again["val"] == reports["s4aqa"]["val"]


def test_extra_unscored_features_join_the_unlabelled_side_and_bad_requests_are_refused(tmp_path):
    root = make_root(tmp_path / "root", n=20, splits=(12, 4, 4))
    feats = random_features(root, tmp_path / "feats")
    extra = random_features(make_root(tmp_path / "more", n=8, splits=(8, 0, 0)), tmp_path / "more-feats", seed=1)
    report = train_semi(tiny_config(root, feats, unlabeled=extra), tmp_path / "run", "s4aqa")
    assert report["unlabeled"] == {"train": 9, extra: 8}
    with pytest.raises(UsageError, match="already holds a run"):
        train_semi(tiny_config(root, feats), tmp_path / "run", "s4aqa")
    with pytest.raises(UsageError, match="no unlabelled videos"):
        train_semi(tiny_config(root, feats, labeled_ratio=1.0), tmp_path / "all", "s4aqa")
    with pytest.raises(UsageError, match="--task"):
        train_semi(tiny_config(root, feats), tmp_path / "x", "mtl")
    other = random_features(root, tmp_path / "other", segments=4, dim=7)
    with pytest.raises(UsageError, match="dim"):
        train_semi(tiny_config(root, feats, unlabeled=other), tmp_path / "y", "s4aqa")
    stranger = random_features(root, tmp_path / "stranger", name="mtl-aqa")
    with pytest.raises(UsageError, match="not of the root"):
        train_semi(tiny_config(root, stranger), tmp_path / "z", "regress")


def test_the_shipped_config_loads_and_a_width_the_heads_do_not_divide_is_refused(tmp_path):
    from aqa_cli.config import load_config

    cfg = load_config("s4aqa", ["semi.labeled_ratio=0.4"])
    assert (cfg.semi.recovery_weight, cfg.semi.alignment_weight, cfg.semi.labeled_ratio) == (50.0, 0.1, 0.4)
    root = make_root(tmp_path / "root", n=8, splits=(4, 2, 2))
    with pytest.raises(UsageError, match="divide"):
        train_semi(tiny_config(root, random_features(root, tmp_path / "feats"), heads=3), tmp_path / "run")


def test_padding_is_masked_a_padded_video_scores_as_the_same_video_alone():
    torch.manual_seed(0)
    model = small_model().eval()
    v = torch.randn(2, 5, 6)
    padded = v.clone()
    padded[0, 3:] = 99.0  # video 0 has 3 real segments: whatever follows must not count
    lengths = torch.tensor([3, 5])
    with torch.no_grad():
        both = model(padded, lengths)["score"]
        alone = model(v[:1, :3])["score"]
        assert both[0] == pytest.approx(float(alone[0]), abs=1e-5)
        assert both[1] == pytest.approx(float(model(v[1:])["score"][0]), abs=1e-5)
        tokens = model.encode(padded, lengths=lengths)
        assert torch.allclose(model.pool(tokens, lengths)[0], tokens[0, :3].mean(0))


def test_eval_of_a_features_model_refuses_other_features_and_the_checkpoint_rebuilds_the_model(tmp_path):
    from aqa_cli.checkpoint import Checkpoint
    from aqa_cli.evaluate import evaluate_checkpoint

    root = make_root(tmp_path / "root", n=20, splits=(12, 4, 4))
    feats = random_features(root, tmp_path / "feats")
    train_semi(tiny_config(root, feats), tmp_path / "run", "regress")
    ckpt = Checkpoint.load(tmp_path / "run" / "best.pt")
    model = ckpt.build_model()
    assert ckpt.on_features and model.decoder is None and model.encoder.position.shape == (4, 8)
    report = evaluate_features_checkpoint(tmp_path / "run" / "best.pt", root, feats, split="all")
    assert report["samples"] == 20 and report["score"]["n"] == 20 and "oracle" in report  # a synthetic root
    assert "accuracy" not in report and "execution" not in report  # a score-only model reports the score
    other = random_features(root, tmp_path / "other", segments=5)
    with pytest.raises(UsageError, match="made another way.*segments: 5 vs 4"):
        evaluate_features_checkpoint(tmp_path / "run" / "best.pt", root, other)
    with pytest.raises(UsageError, match="segment features"):
        evaluate_checkpoint(tmp_path / "run" / "best.pt", root)


def test_unlabelled_videos_of_different_lengths_mask_only_their_real_segments():
    from aqa_cli.config import SemiConfig
    from aqa_cli.semi import step_losses

    torch.manual_seed(0)
    model = small_model()
    xu = torch.randn(64, 5, 6)
    lengths = torch.randint(1, 6, (64,))
    for b, n in enumerate(lengths):
        xu[b, n:] = 1e3  # padding: a segment drawn from it would make the L1 target about 1000
    xl = torch.randn(4, 5, 6)
    terms = step_losses(model, (xl, torch.zeros(4), torch.full((4,), 5)), (xu, lengths),
                        SemiConfig(alignment_weight=0.0), torch.Generator().manual_seed(0))
    assert float(terms["rcvr"].detach()) < 10 and set(terms) == {"reg", "rcvr"}
