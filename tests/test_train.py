"""Training: a smoke run learns, resume equals an uninterrupted run, torchrun with 2 CPU processes, the
time budget, the loss terms, the frames Dataset, and the CLI's errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from aqa_cli.checkpoint import Checkpoint
from aqa_cli.config import DataConfig, ModelConfig, load_config
from aqa_cli.datasets.frames import FramesDataset, collate, execution_target
from aqa_cli.datasets.layout import DatasetRoot, Sample
from aqa_cli.errors import UsageError
from aqa_cli.rules import HEIGHTS
from aqa_cli.text import Vocabulary
from aqa_cli.train import train
from trainroot import SMALL, make_root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("root"))


def _cfg(root, *extra):
    return load_config("smoke", [f"data.root={root}", *SMALL, "train.limit_batches=0", *extra])


def _epochs(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_smoke_training_lowers_the_loss_and_writes_a_self_describing_run(root, tmp_path):
    torch.set_num_threads(1)
    report = train(_cfg(root, "train.epochs=4"), tmp_path, quiet=True)
    epochs = _epochs(tmp_path)
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert {"score", "accuracy", "captions", "oracle"} <= set(epochs[0]["val"])
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["best_epoch"] == report["best_epoch"]
    assert saved["test"]["score"]["n"] == 2
    best = Checkpoint.load(tmp_path / "best.pt")
    assert best.metrics["test"]["score"]["n"] == 2  # the test split was measured once, at the end
    assert best.vocab[:3] == ["<eos>", "<sos>", "<unk>"] and "pike" in best.vocab
    assert best.model_config.vocab_size == len(best.vocab)
    assert best.preprocess.crop == 16 and best.preprocess.resize == (20, 16)
    assert best.preprocess.shift == 0  # where evaluation starts the clips: shift // 2
    assert best.label_maps["position"] == ["free", "pike", "tuck"]
    assert best.synthetic and best.data["heights"] == {"3m": len(DatasetRoot(root).split("train"))}  # all 3m
    assert best.train_config["train"]["epochs"] == 4 and not best.state  # resume state is last.pt's alone
    best.build_model()  # rebuilt from the checkpoint alone
    last = Checkpoint.load(tmp_path / "last.pt")
    assert {"epoch", "best", "optimizer", "scheduler", "rng", "epochs_fitted"} <= set(last.state)
    assert last.state["epoch"] == 3 and last.state["best"]["epoch"] == report["best_epoch"]


def test_feature_norm_trains_even_when_the_last_batch_would_hold_one_dive(root, tmp_path):
    torch.set_num_threads(1)
    # 8 training dives in batches of 7: the lone eighth would break BatchNorm, so it is left out.
    train(_cfg(root, "train.epochs=1", "train.batch_size=7", "model.feature_norm=true"), tmp_path, quiet=True)
    model = Checkpoint.load(tmp_path / "best.pt").build_model()
    assert isinstance(model.heads.fc6[0], torch.nn.BatchNorm1d)
    assert model.heads.fc6[0].num_batches_tracked.item() == 1


def _as_written_before_the_state_key(path):
    """Rewrite a last.pt as aqa wrote it before checkpoint.py: the resume state at the top level, and
    the retired options at their neutral values in the configs."""
    raw = torch.load(path, weights_only=True)
    raw.update(raw.pop("state"))
    raw["model_config"].update(stem_stride=1, time_pool="max", execution_dropout=0.0, execution_bins=0, faults=[])
    raw["train_config"]["model"].update(raw["model_config"], vocab_size=0)
    raw["train_config"]["train"].update(rank_weight=0.0, rules_weight=0.0, sam_rho=0.0, execution_sigma=1.5,
                                        label_smoothing=0.0, fault_weight=1.0)
    raw["train_config"]["data"].update(speed=0.0, color=0.0)
    torch.save(raw, path)


@pytest.mark.parametrize("ema, old_file", [("0", False), ("0.5", False), ("0.5", True)])
def test_resume_ends_where_an_uninterrupted_run_ends(root, tmp_path, ema, old_file):
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_cfg(root, "train.epochs=2", f"train.ema={ema}"), straight, quiet=True)
    train(_cfg(root, "train.epochs=1", f"train.ema={ema}"), split, quiet=True)
    if old_file:  # a run started before the checkpoint schema had an owner resumes the same
        _as_written_before_the_state_key(split / "last.pt")
    train(_cfg(root, "train.epochs=2", f"train.ema={ema}"), split, quiet=True, resume=True)
    a, b = Checkpoint.load(straight / "last.pt"), Checkpoint.load(split / "last.pt")
    assert ("trained_model" in a.state) == (ema != "0")
    pairs = [(a.model, b.model)] + ([(a.state["trained_model"], b.state["trained_model"])] if ema != "0" else [])
    for x, y in pairs:
        assert x.keys() == y.keys()
        for key in x:
            assert torch.equal(x[key], y[key]), key
    if ema != "0":  # the saved model is the average, not the last weights
        assert not torch.equal(a.model["heads.score.fc.weight"], a.state["trained_model"]["heads.score.fc.weight"])
    timing = ("seconds", "clips_per_s")
    strip = lambda e: {k: v for k, v in e.items() if k not in timing}  # noqa: E731
    assert [strip(e) for e in _epochs(straight)] == [strip(e) for e in _epochs(split)]


def test_a_run_directory_is_never_overwritten_and_resume_needs_one(root, tmp_path):
    train(_cfg(root, "train.epochs=1", "train.limit_batches=1"), tmp_path, quiet=True)
    with pytest.raises(UsageError, match="already holds a run"):
        train(_cfg(root, "train.epochs=1"), tmp_path, quiet=True)
    with pytest.raises(UsageError, match="no .*last.pt"):
        train(_cfg(root), tmp_path / "fresh", quiet=True, resume=True)
    with pytest.raises(UsageError, match="differs"):
        train(_cfg(root, "train.epochs=2", "model.feature_dim=32"), tmp_path, quiet=True, resume=True)


def _torchrun_train(program: list[str], root, out, *sets: str) -> subprocess.CompletedProcess:
    """`aqa train` on the smoke config under torchrun, 2 CPU processes; `program` is what torchrun runs
    (["-m", "aqa_cli"] or a script). The timeout turns a hang into a failure."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", *program, "train",
           "--config", "smoke", "--data", str(root), "--out", str(out), "-q", "--device", "cpu",
           *[x for s in [*SMALL, *sets] for x in ("--set", s)]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_torchrun_with_two_cpu_processes(root, tmp_path):
    out = _torchrun_train(["-m", "aqa_cli"], root, tmp_path, "train.epochs=1")
    assert out.returncode == 0, out.stderr
    (epoch,) = _epochs(tmp_path)  # rank 0 alone writes
    assert epoch["epoch"] == 0 and np.isfinite(epoch["train_loss"])
    assert json.loads((tmp_path / "report.json").read_text())["test"]["score"]["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "curves.png", "last.pt", "metrics.jsonl",
                                                          "report.json"]


def _aqa(*args):
    return subprocess.run([sys.executable, "-m", "aqa_cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_set_typo_names_the_closest_key(root, tmp_path):
    out = _aqa("train", "--config", "smoke", "--data", str(root), "--out", str(tmp_path / "r"),
               "--set", "train.epoks=3")
    assert out.returncode == 2
    assert "train.epochs" in out.stderr and out.stdout == ""


def test_clips_that_do_not_fit_the_window_are_a_usage_error(root, tmp_path):
    with pytest.raises(UsageError, match="must be at least 1 and fit the data.frames=103-frame window"):
        train(_cfg(root, "data.stride=2"), tmp_path, quiet=True)  # smoke: 6 clips of 16; at stride 2, 192 frames
    with pytest.raises(UsageError, match=r"model.crop_size=500 is larger than the frames \(data.resize 20x16\)"):
        train(_cfg(root, "model.crop_size=500"), tmp_path, quiet=True)


@pytest.mark.parametrize("bad, why", [
    ("data.stride=0", r"data\.stride=0: expected >= 1"), ("data.clips=0", r"data\.clips=0: expected >= 1"),
    ("data.scale=1.0", r"data\.scale=1\.0: expected \[0, 1\) \(0\.15: crops of 0\.85x to 1\.15x\)"),
    ("train.grad_clip=-0.1", r"train\.grad_clip=-0\.1: expected >= 0 \(0: off\)"),
    ("train.epochs=0", r"train\.epochs=0: expected >= 1"), ("train.batch_size=0", r"train\.batch_size=0: expected \[1, 4096\]"),
    ("train.lr=-1", r"train\.lr=-1\.0: expected \(0, 10\] \(a learning rate\)"), ("train.lr=.nan", "train.lr=nan"),
    ("model.dropout=2", r"model\.dropout=2\.0: expected \[0, 1\)"), ("data.workers=-1", r"data\.workers=-1: expected >= 0"),
    ("data.jitter=-5", r"data\.jitter=-5: expected >= 0"), ("data.hflip=2", r"data\.hflip=2\.0: expected \[0, 1\]"),
    ("train.ema=1", r"train\.ema=1\.0: expected \[0, 1\)"),
    # these used to fail inside torch (or train a NaN model with exit 0)
    ("train.seed=-1", r"train\.seed=-1: expected >= 0"), ("train.lr=1e300", r"train\.lr=1e\+300: expected \(0, 10\]"),
    ("model.feature_dim=100000000", r"model\.feature_dim=100000000: expected \[1, 65536\]"),
    ("model.classes={position: 2}", r"model\.classes\.position=2: the labels use 3 classes"),
    ("model.classes={foo: 3}", r"model\.classes: unknown head 'foo'"),
    ("data.std=[0, 0, 0]", r"expected finite means and standard deviations > 0"),
    ("data.mean=[.nan, 0, 0]", r"expected finite means"),
])
def test_values_out_of_range_are_usage_errors_before_training(root, tmp_path, bad, why):
    with pytest.raises(UsageError, match=why):
        train(_cfg(root, bad), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_adamw_decays_the_weights_apart_from_the_gradient(root, tmp_path):
    torch.set_num_threads(1)
    train(_cfg(root, "train.epochs=1", "train.optimizer=adamw", "train.weight_decay=0.1"), tmp_path, quiet=True)
    group = Checkpoint.load(tmp_path / "last.pt").state["optimizer"]["param_groups"][0]
    assert group["decoupled_weight_decay"] and group["weight_decay"] == 0.1
    with pytest.raises(UsageError, match=r"train.optimizer='sgd'.*supported are adam\|adamw"):
        train(_cfg(root, "train.optimizer=sgd"), tmp_path / "b", quiet=True)


def test_select_picks_the_epoch_with_the_best_val_rules_score(root, tmp_path):
    torch.set_num_threads(1)
    report = train(_cfg(root, "train.epochs=3", "train.select=expected_dd_x_execution"), tmp_path, quiet=True)
    vals = [e["val"]["expected_dd_x_execution"]["spearman"] for e in _epochs(tmp_path)]
    vals = [-np.inf if np.isnan(v) else v for v in vals]
    assert report["selected_on"] == "val expected_dd_x_execution spearman"
    assert report["best_epoch"] == int(np.argmax(vals))
    assert "expected_dd_x_execution" in report["test"]
    with pytest.raises(UsageError, match="train.select='spearman'"):
        train(_cfg(root, "train.select=spearman"), tmp_path / "b", quiet=True)
    with pytest.raises(UsageError, match="train.select='expected_dd_x_execution'"):
        train(_cfg(root, "train.select=expected_dd_x_execution", "model.task=stl"), tmp_path / "c", quiet=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cli_device_cuda_without_cuda_is_an_error(root, tmp_path):
    out = _aqa("train", "--config", "smoke", "--data", str(root), "--out", str(tmp_path / "r"), "--device", "cuda")
    assert out.returncode == 2
    assert "CUDA is not available" in out.stderr
    assert not (tmp_path / "r").exists()


def test_dataset_items_targets_and_augmentation(root):
    droot = DatasetRoot(root)
    data = DataConfig(root=str(root), resize=(20, 16))
    model = ModelConfig(crop_size=16)
    vocab = Vocabulary.build(s.commentary for s in droot.split("train"))
    ds = FramesDataset(droot, "train", data, model, vocab=vocab, train=True, seed=1)
    item = ds[3]
    assert item["clips"].shape == (6, 3, 16, 16, 16) and item["clips"].dtype == torch.float32
    sample = ds.samples[3]
    assert item["score"].item() == pytest.approx(sample.final_score)
    assert item["execution"].item() == pytest.approx(sum(sample.judge_scores[2:5]))
    assert item["labels"].tolist() == [sample.position, sample.armstand, sample.rotation_type, sample.ss_no,
                                       sample.tw_no]
    assert vocab.decode(item["caption"].tolist()) == sample.commentary.split()
    assert sample.height == "3m" and item["height"].item() == HEIGHTS.index("3m")
    assert torch.equal(ds[3]["clips"], item["clips"])  # a function of (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["clips"], item["clips"])
    evaluation = FramesDataset(droot, "train", data, model, train=False)
    assert torch.equal(evaluation[3]["clips"], evaluation[3]["clips"]) and "caption" not in evaluation[3]
    shifted = replace(data, shift=6)  # evaluation starts the clips at shift // 2 = 3 frames into the window
    assert not torch.equal(FramesDataset(droot, "train", shifted, model, train=False)[3]["clips"],
                           evaluation[3]["clips"])
    batch = collate([ds[0], ds[1]])
    assert batch["clips"].shape[:2] == (2, 6)
    assert batch["caption"].shape[1] == int(batch["caption_len"].max())


def test_cached_resize_gives_the_same_clips(root):
    droot = DatasetRoot(root)
    model = ModelConfig(crop_size=8, clip_len=4)
    plain = DataConfig(root=str(root), resize=(10, 8), clips=2, stride=2)
    cached = DataConfig(root=str(root), resize=(10, 8), clips=2, stride=2, cache=True)
    for training in (True, False):
        a = FramesDataset(droot, "train", plain, model, train=training, seed=1)
        b = FramesDataset(droot, "train", cached, model, train=training, seed=1)
        for i in (0, 3, 0):  # 0 twice: the second read comes from the cache
            assert torch.equal(a[i]["clips"], b[i]["clips"])
    assert set(b._cache) == {b.samples[0].id, b.samples[3].id}
    loaded = next(iter(torch.utils.data.DataLoader(b, batch_size=4, num_workers=1, collate_fn=collate)))
    assert torch.equal(loaded["clips"], collate([a[i] for i in range(4)])["clips"])  # workers skip the cache
    assert b._cache[b.samples[0].id].shape[1:] == (8, 10, 3)
    stored = FramesDataset(droot, "train", DataConfig(root=str(root), resize=(20, 16), cache=True),
                           ModelConfig(crop_size=16), train=False)
    stored[0]
    assert not stored._cache  # nothing to resize, nothing cached


def test_execution_target_falls_back_to_score_over_difficulty():
    assert execution_target(Sample(id="a", judge_scores=[6, 7, 7, 8, 8, 9, 10])) == 23.0
    assert execution_target(Sample(id="b", final_score=60.0, difficulty=3.0)) == 20.0
    assert np.isnan(execution_target(Sample(id="c", final_score=60.0)))


def test_loss_reads_each_heads_labels_by_name_whatever_the_config_order():
    from aqa_cli.losses import compute_loss

    weights = load_config("smoke", []).train
    g = torch.Generator().manual_seed(0)
    logits = {h: torch.randn(4, k, generator=g) for h, k in
              [("position", 3), ("armstand", 2), ("rotation_type", 4), ("ss_no", 10), ("tw_no", 8)]}
    batch = {"score": torch.full((4,), 50.0), "labels": torch.tensor([[0, 1, 2, 3, 4]] * 4)}
    ordered = compute_loss({"score": torch.zeros(4), "logits": logits}, batch, weights, 10.0, 1.0)[1]
    shuffled = dict(reversed(list(logits.items())))
    assert compute_loss({"score": torch.zeros(4), "logits": shuffled}, batch, weights, 10.0, 1.0)[1] == ordered
    only_rotation = {"rotation_type": logits["rotation_type"]}
    ce = torch.nn.functional.cross_entropy(logits["rotation_type"], torch.full((4,), 2)).item()
    cls = compute_loss({"score": torch.zeros(4), "logits": only_rotation}, batch, weights, 10.0, 1.0)[1]["cls"]
    assert cls == pytest.approx(ce)


def test_loss_terms_by_hand():
    from aqa_cli.losses import caption_loss, classification_loss, compute_loss, regression_loss

    # MSE + L1 in units of the scale: errors of 2 and -4 points over 2 are 1 and -2
    pred, true = torch.tensor([52.0, 46.0]), torch.tensor([50.0, 50.0])
    assert regression_loss(pred, true, 2.0, 1.0, 0.5).item() == pytest.approx((1 + 4) / 2 + 0.5 * (1 + 2) / 2)
    # unknown labels (-1) are left out; a head with none known adds 0, not NaN
    logits = {"position": torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), "armstand": torch.zeros(2, 2)}
    labels = torch.tensor([[0, -1, 0, 0, 0], [-1, -1, 0, 0, 0]])
    want = torch.nn.functional.cross_entropy(logits["position"][:1], torch.tensor([0])).item()
    assert classification_loss(logits, labels).item() == pytest.approx(want)
    # captions: the words and the first <eos> count, the padding after it does not
    caption = torch.tensor([[1, 5, 0, 0], [1, 6, 7, 0]])  # <sos> w <eos> <pad>, <sos> w w <eos>
    cap_logits = torch.randn(2, 3, 9, generator=torch.Generator().manual_seed(0))
    per_token = torch.nn.functional.cross_entropy(cap_logits.reshape(-1, 9), caption[:, 1:].reshape(-1), reduction="none")
    want = (per_token.view(2, 3)[0, :2].sum() + per_token.view(2, 3)[1].sum()) / 5
    assert caption_loss(cap_logits, caption, torch.tensor([3, 4])).item() == pytest.approx(want.item())
    # the total weighs each term; dives without a known execution are left out of its term
    weights = load_config("smoke", ["train.execution_weight=2", "train.cls_weight=3", "train.caption_weight=0.5"]).train
    out = {"score": pred, "execution": torch.tensor([20.0, 99.0]), "logits": logits, "caption_logits": cap_logits}
    batch = {"score": true, "execution": torch.tensor([21.0, math.nan]), "labels": labels, "caption": caption,
             "caption_len": torch.tensor([3, 4])}
    loss, parts = compute_loss(out, batch, weights, 2.0, 0.5)
    assert parts["execution"] == pytest.approx(4.0 + 2.0)  # 1 point over 0.5: MSE 4, L1 2
    assert parts["loss"] == pytest.approx(loss.item())
    assert loss.item() == pytest.approx(parts["score"] + 2 * parts["execution"] + 3 * parts["cls"]
                                        + 0.5 * parts["caption"], rel=1e-6)


def test_fit_epochs_keeps_the_plan_unless_the_rest_would_overrun_the_budget():
    from aqa_cli.budget import Budget, fit_epochs

    assert fit_epochs(80, 2, 60, 25, 0) == 80  # no budget
    assert fit_epochs(80, 2, 60, 25, 60 + 78 * 25) == 80  # fits exactly
    assert fit_epochs(80, 2, 60, 25, 1000) == 2 + 37  # (1000 - 60) // 25 more
    assert fit_epochs(80, 10, 900, 25, 910) == 10  # not one more fits: never fewer than done
    assert fit_epochs(4, 4, 900, 25, 100) == 4  # already done
    budget = Budget(10, started=100.0)  # 600 s from t = 100 s
    assert budget.on and not budget.spent(700.0) and budget.spent(700.5)
    assert budget.fit(80, 0, 160.0) == 80  # the first epoch (cache filling) only marks where the pace starts
    # epoch 1 ended 25 s after epoch 0: 2 done in 85 s of the 600, 78 more at 25 s would overrun
    assert budget.fit(80, 1, 185.0) == 2 + (600 - 85) // 25
    assert not Budget(0, started=0.0).spent(1e9) and Budget(0, started=0.0).fit(80, 5, 1e9) == 80


def test_a_run_that_would_overrun_max_minutes_is_shortened_and_anneals(root, tmp_path, monkeypatch, capsys):
    import itertools
    import types

    import aqa_cli.train as train_module

    # A clock that advances 1 s per reading: the start, then per epoch of 4 steps its start, each step,
    # its end and the budget's check (7 readings). After two epochs (14 s, 7 s each since the first)
    # 8 epochs would need 56 s of the 39 allowed; 2 + (39 - 14) // 7 = 5 fit.
    ticks = itertools.count()
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(monotonic=lambda: float(next(ticks))))
    torch.set_num_threads(1)
    cfg = _cfg(root, "train.epochs=8", "train.max_minutes=0.65", "train.scheduler=cosine")
    report = train(cfg, tmp_path, quiet=True)
    epochs = _epochs(tmp_path)
    assert report["epochs_fitted"] == 5 and not report["stopped_early"]
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3, 4]
    assert epochs[1]["lr"] == pytest.approx(1e-3 * (1 + math.cos(math.pi * 2 / 8)) / 2)  # on the 8-epoch cosine
    assert epochs[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # then decayed to 0 over the 5 fitted
    assert Checkpoint.load(tmp_path / "last.pt").state["epochs_fitted"] == 5  # what --resume goes on with
    assert "8 epochs would not fit; training 5" in " ".join(capsys.readouterr().err.split())  # even with -q
    train(cfg, tmp_path, quiet=True, resume=True)  # resuming the finished run trains no more epochs
    assert len(_epochs(tmp_path)) == 5


def test_torchrun_processes_stop_at_the_same_step_when_one_clock_passes_max_minutes(root, tmp_path):
    # Rank 0's clock passes the 1-minute budget at its first step, rank 1's never does: both must stop
    # there, or rank 1 waits in the next step's all-reduce for ever (the subprocess timeout catches that).
    script = tmp_path / "clocks.py"
    script.write_text(
        "import itertools, os, sys, types\n"
        "import aqa_cli.train\n"
        "from aqa_cli.cli import main\n"
        "pace = 1000.0 if os.environ['RANK'] == '0' else 0.001\n"
        "ticks = itertools.count()\n"
        "aqa_cli.train.time = types.SimpleNamespace(monotonic=lambda: next(ticks) * pace)\n"
        "sys.argv = ['aqa', *sys.argv[1:]]\n"
        "main()\n")
    run = tmp_path / "run"
    out = _torchrun_train([str(script)], root, run, "train.epochs=3", "train.max_minutes=1")
    assert out.returncode == 0, out.stderr
    report = json.loads((run / "report.json").read_text())
    assert report["stopped_early"] and [e["epoch"] for e in _epochs(run)] == [0]


def test_a_run_with_results_but_no_last_pt_is_not_overwritten(root, tmp_path):
    (tmp_path / "report.json").write_text("{}")  # last.pt deleted to save space: the results stay
    with pytest.raises(UsageError, match=r"already holds a run \(report.json\)"):
        train(_cfg(root, "train.epochs=1"), tmp_path, quiet=True)
    assert (tmp_path / "report.json").read_text() == "{}"
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is a file: give a folder"):
        train(_cfg(root, "train.epochs=1"), tmp_path / "file", quiet=True)


def test_resume_names_what_differs_and_takes_a_moved_dataset(root, tmp_path):
    import shutil

    run = tmp_path / "run"
    train(_cfg(root, "train.epochs=1", "train.limit_batches=1"), run, quiet=True)
    moved = shutil.copytree(root, tmp_path / "moved")
    train(_cfg(moved, "train.epochs=2", "train.limit_batches=1"), run, quiet=True, resume=True)
    with pytest.raises(UsageError, match=r"--resume: model\.feature_dim, data\.jitter differ from"):
        train(_cfg(moved, "train.epochs=3", "model.feature_dim=32", "data.jitter=1"), run, quiet=True, resume=True)
    other = make_root(tmp_path / "other", n=9, splits=(5, 2, 2))
    with pytest.raises(UsageError, match="is not the dataset .* was trained on"):
        train(_cfg(other, "train.epochs=3"), run, quiet=True, resume=True)
    shutil.copy(run / "best.pt", tmp_path / "last.pt")
    with pytest.raises(UsageError, match="not a resumable checkpoint"):
        train(_cfg(root, "train.epochs=3"), tmp_path, quiet=True, resume=True)


def test_missing_frames_and_short_windows_are_found_before_training(root, tmp_path):
    import shutil

    from aqa_cli.errors import DataError

    broken = shutil.copytree(root, tmp_path / "broken")
    test_id = DatasetRoot(broken).split("test")[0].id
    (broken / "frames" / f"{test_id}.npy").unlink()  # a test dive: used only after training
    with pytest.raises(DataError, match=r"1 of the test split's dives have no frames file"):
        train(_cfg(broken, "train.epochs=1"), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # not one epoch trained
    with pytest.raises(DataError, match="its dives hold 103 frames, fewer than the 192 the clips read"):
        train(_cfg(root, "model.clip_len=32", "data.frames=206", "data.clips=6"), tmp_path / "run", quiet=True)


def test_an_error_in_a_loader_worker_is_one_line():
    from torch.utils.data import DataLoader, Dataset

    from aqa_cli.errors import DataError

    class Broken(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            raise DataError("corrupt frames file x.npy: cut short")

    with pytest.raises(DataError) as info:
        next(iter(DataLoader(Broken(), num_workers=1)))
    assert str(info.value) == "corrupt frames file x.npy: cut short"


def test_a_run_stopped_by_max_minutes_mid_epoch_says_so(root, tmp_path, monkeypatch, capsys):
    import itertools
    import types

    import aqa_cli.train as train_module

    ticks = itertools.count(step=100)  # every clock reading 100 s later: the first step is past 1 minute
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(monotonic=lambda: float(next(ticks))))
    report = train(_cfg(root, "train.epochs=3", "train.max_minutes=1"), tmp_path, quiet=True)
    assert report["stopped_early"] and [e["epoch"] for e in _epochs(tmp_path)] == [0]
    err = " ".join(capsys.readouterr().err.split())
    assert "the time is up; stopping during epoch 1 of 3 (after 1 of 4 batches" in err


def test_resume_on_another_dataset_of_the_same_size_is_refused(root, tmp_path):
    import json as json_module

    run = tmp_path / "run"
    train(_cfg(root, "train.epochs=1", "train.limit_batches=1"), run, quiet=True)
    other = make_root(tmp_path / "other")
    lines = (other / "annotations.jsonl").read_text().splitlines()
    recaptioned = []
    for line in lines:
        record = json_module.loads(line)
        record["commentary"] = "a different caption " + record["id"]
        recaptioned.append(json_module.dumps(record))
    (other / "annotations.jsonl").write_text("\n".join(recaptioned) + "\n")
    with pytest.raises(UsageError, match="other training captions"):
        train(_cfg(other, "train.epochs=2"), run, quiet=True, resume=True)
