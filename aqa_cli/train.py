"""Training: the loop behind `aqa train`, single process or DistributedDataParallel under torchrun.

One epoch = one pass over the train split (augmented, `train_one_epoch`), then the validation split
picks the best checkpoint (`validate`); the test split is evaluated once, at the end, with the best
checkpoint (aqa never picks an epoch on the test set). A run directory holds:

    last.pt        checkpoint after the latest epoch, its `state` holding what --resume needs (epoch,
                   best epoch, optimiser, scheduler, RNG; with train.ema the trained weights too)
    best.pt        checkpoint of the epoch with the best validation Spearman (the last epoch when the root
                   has no val split), with the test metrics added at the end
    metrics.jsonl  one line per epoch: losses, throughput, validation metrics
    report.json    best epoch, its validation metrics and the test metrics

With `train.ema` the checkpoints' `model` is the moving average of the weights (what is validated and
tested). The parts: losses.py (the loss), budget.py (train.max_minutes), device.py (torchrun),
checkpoint.py (the files), train_progress.py (what is shown).

Determinism: the model is initialised from `train.seed`, each epoch's order comes from (seed, epoch)
and each sample's augmentation from (seed, epoch, index) (datasets/frames.py), and last.pt stores the
torch RNG state, so `--resume` ends where an uninterrupted run ends.
"""

from __future__ import annotations

import gc
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqa_cli.budget import Budget
from aqa_cli.checkpoint import Checkpoint, Preprocess, label_maps, source_revision
from aqa_cli.config import ModelConfig, RunConfig, check_values, to_dict
from aqa_cli.datasets.frames import FramesDataset, collate, execution_target
from aqa_cli.datasets.layout import DatasetRoot, Sample
from aqa_cli.device import Distributed, init_distributed
from aqa_cli.errors import UsageError
from aqa_cli.evaluate import compute_metrics, has_captioner, predict, score_range
from aqa_cli.losses import compute_loss
from aqa_cli.storage import atomic_write_text
from aqa_cli.text import Vocabulary
from aqa_cli.train_progress import TrainProgress, draw_curves

SELECT = ("score", "expected_dd_x_execution")  # val metrics whose Spearman can pick the checkpoint


def train(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, device: str = "auto",
          quiet: bool = False, console=None) -> dict:
    """Train `cfg` on `cfg.data.root`, writing the run directory `out_dir`; returns the report dict.

    With `resume`, continues from `out_dir/last.pt`; `cfg` must then describe the same model and data
    (training keys such as `train.epochs` may differ: extending a finished run is allowed).
    """
    out_dir = Path(out_dir)
    _check_request(cfg, out_dir, resume)
    dist = init_distributed(device)
    _make_run_dir(out_dir)
    torch.set_num_threads(max(1, torch.get_num_threads() // dist.world))

    data = TrainData.open(cfg)
    _check_recipe(cfg, data.model_config)
    run = _build(cfg, data, dist.device, fresh=not resume)
    state = _resume(run, out_dir / "last.pt", cfg, data) if resume else RunState(horizon=cfg.train.epochs)
    if dist.world > 1:
        run.net = torch.nn.parallel.DistributedDataParallel(
            run.model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    loaders = Loaders.build(cfg, data, dist)
    template = _checkpoint_template(cfg, data, dist.main)

    display = TrainProgress(console, quiet or not dist.main, state.horizon, loaders.batches, state.next_epoch)
    curves_missing = False  # said once that curves.png needs matplotlib
    if dist.main and not len(loaders.test.dataset):
        display.warn(f"{data.root.root}: the test split is empty; the run will report no test numbers")
    budget = Budget(cfg.train.max_minutes, time.monotonic())
    cut = None  # batches done when the time budget stopped an epoch
    with display:
        for epoch in range(state.next_epoch, cfg.train.epochs):
            if epoch >= state.horizon:
                break
            record, cut = train_one_epoch(run, loaders.train, loaders.batches, epoch, dist, budget, display)
            if cut is not None and dist.main:
                display.shorten(epoch + 1, f"train.max_minutes {budget.minutes:g}: the time is up; stopping during "
                                f"epoch {epoch + 1} of {state.horizon} (after {cut} of {loaders.batches} batches; "
                                "report.json: stopped_early)")
            if dist.main:
                record["val"] = validate(run.served, loaders.val, data, run.device)
                improved = state.update_best(epoch, record["val"], cfg.train.select, len(loaders.val.dataset) > 0)
                if cut is None:
                    _fit_budget(state, budget, epoch, run.sched, display)
                _append_metrics(out_dir / "metrics.jsonl", record)
                curves_missing = draw_curves(out_dir, cfg.train.select, console, curves_missing)
                _save(template, run, state, epoch, record["val"], out_dir, improved)
                display.end_epoch(record)
            state.horizon = dist.broadcast(state.horizon)  # every process trains the epochs rank 0 fitted
            if cut is not None:
                break

    report = {}
    if dist.main:
        report = _finish(run, state, cfg, data, loaders.test, out_dir, stopped_early=cut is not None,
                         seconds=time.monotonic() - budget.started)
        display.summary(report)
    if dist.world > 1:
        # DDP's reducer keeps the gloo group and its threads alive, and it sits in reference cycles: freed
        # by the garbage collector at interpreter exit, it can abort the process (SIGABRT). Free it now.
        run.net = run.model
        gc.collect()
    dist.close()
    return report


@dataclass
class TrainData:
    """The dataset root, and what training reads off its train split before the first step."""

    root: DatasetRoot
    samples: list[Sample]  # the train split
    vocab: Vocabulary | None  # of the train split's commentary, for a model with a captioner
    model_config: ModelConfig  # cfg.model with the vocabulary's size
    score_mean: float  # of the train split's final scores, points
    score_sd: float  # their sd (1 when all are equal): the loss's unit
    exec_mean: float | None  # of the train split's known executions (None: none known), points
    exec_sd: float  # their sd (1 when unknown or all equal)
    score_range: tuple[float, float]  # lowest and highest score of the whole root: R-ℓ2's normaliser

    @classmethod
    def open(cls, cfg: RunConfig) -> TrainData:
        root = DatasetRoot(cfg.data.root)
        samples = root.split("train")
        if not samples:
            raise UsageError(f"{root.root}: the train split is empty")
        mcfg = replace(cfg.model, classes=dict(cfg.model.classes))
        vocab = None
        if has_captioner(mcfg):
            vocab = Vocabulary.build(s.commentary for s in samples)
            mcfg.vocab_size = len(vocab)
        scores = np.array([s.final_score for s in samples], dtype=float)
        execs = np.array([execution_target(s) for s in samples])
        execs = execs[np.isfinite(execs)]
        return cls(root, samples, vocab, mcfg, score_mean=float(scores.mean()),
                   score_sd=float(scores.std()) if scores.std() > 0 else 1.0,
                   exec_mean=float(execs.mean()) if execs.size else None,
                   exec_sd=float(execs.std()) if execs.size and execs.std() > 0 else 1.0,
                   score_range=score_range(root))


@dataclass
class Training:
    """What one run trains with: the model, its optimiser, schedule and moving average, and the loss."""

    cfg: RunConfig
    model: Any  # the AQAModel being trained
    optim: Any
    sched: Any  # CosineAnnealingLR (train.scheduler cosine), or None
    ema: Any  # torch's AveragedModel of `model` (train.ema), or None
    score_sd: float  # the loss's units, points (TrainData)
    exec_sd: float
    device: Any  # torch.device
    net: Any = None  # what the step calls: `model`, or `model` in DistributedDataParallel under torchrun

    def __post_init__(self):
        if self.net is None:
            self.net = self.model

    @property
    def served(self):
        """The weights that are validated, saved and tested: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def autocast(self) -> bool:
        """bf16 autocast: on CUDA only (on these CPUs bf16 is far slower than fp32)."""
        return self.device.type == "cuda"


@dataclass
class RunState:
    """Where a run stands between epochs; last.pt's `state` keeps it for --resume."""

    horizon: int  # the epochs the run trains: train.epochs, or fewer when train.max_minutes cannot fit them
    next_epoch: int = 0
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": -1, "value": -math.inf, "val": {}})

    def update_best(self, epoch: int, val: dict, select: str, has_val: bool) -> bool:
        """Keep `epoch` as the best when its validation Spearman of `select` is higher (NaN ranks below
        every number); without a val split nothing can pick an epoch honestly, so the last one is kept."""
        rho = val.get(select, {}).get("spearman", math.nan)
        value = -math.inf if rho is None or math.isnan(rho) else rho
        improved = self.best["epoch"] < 0 or value > self.best["value"] or not has_val
        if improved:
            self.best = {"epoch": epoch, "value": value, "val": val}
        return improved


@dataclass
class Loaders:
    """The train, val and test DataLoaders, and the batches an epoch trains (train.limit_batches)."""

    train: Any
    val: Any
    test: Any
    batches: int

    @classmethod
    def build(cls, cfg: RunConfig, data: TrainData, dist: Distributed) -> Loaders:
        """Every split's frames are checked here, before the first epoch (FramesDataset)."""
        from torch.utils.data import DataLoader, DistributedSampler

        t, mcfg = cfg.train, data.model_config
        train_ds = FramesDataset(data.root, "train", cfg.data, mcfg, vocab=data.vocab, train=True, seed=t.seed)
        sampler = DistributedSampler(train_ds, num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=t.seed)
        args = dict(num_workers=cfg.data.workers, collate_fn=collate, pin_memory=dist.device.type == "cuda",
                    persistent_workers=False)
        # BatchNorm on the video feature cannot train on a batch of one: drop a last batch of one sample.
        lone = mcfg.feature_norm and math.ceil(len(train_ds) / dist.world) % t.batch_size == 1
        train = DataLoader(train_ds, batch_size=t.batch_size, sampler=sampler, drop_last=lone,
                           generator=torch.Generator().manual_seed(t.seed), **args)
        val, test = (DataLoader(FramesDataset(data.root, split, cfg.data, mcfg, train=False),
                                batch_size=max(t.batch_size, 4), shuffle=False, **args) for split in ("val", "test"))
        batches = len(train) if t.limit_batches <= 0 else min(t.limit_batches, len(train))
        return cls(train, val, test, batches)


def train_one_epoch(run: Training, loader, batches: int, epoch: int, dist: Distributed, budget: Budget,
                    display: TrainProgress) -> tuple[dict, int | None]:
    """One pass over the train split, at most `batches` batches of (B, N, 3, T, H, W) clips: forward,
    loss, backward, optimiser step and moving-average update per batch, then the scheduler's step.

    Returns the epoch's metrics.jsonl record (each loss term's mean over the samples, lr, seconds,
    clips/s) and, when the time budget ran out mid-epoch, the batches done (else None).
    """
    run.net.train()
    loader.sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)
    clips_per_sample = loader.dataset.data.clips * dist.world  # clips/s counts every process's
    sums: dict[str, float] = {}
    seen, cut, t0 = 0, None, time.monotonic()
    display.start_epoch(epoch)
    for step, batch in enumerate(loader):
        if step >= batches:
            break
        batch = {k: v.to(run.device, non_blocking=True) for k, v in batch.items()}
        run.optim.zero_grad(set_to_none=True)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.autocast):
            out = run.net(batch["clips"], captions=batch.get("caption"))
            loss, parts = compute_loss(out, batch, run.cfg.train, run.score_sd, run.exec_sd)
        loss.backward()
        if run.cfg.train.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.train.grad_clip)
        run.optim.step()
        if run.ema is not None:
            run.ema.update_parameters(run.model)
        seen += len(batch["clips"])
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * len(batch["clips"])
        now = time.monotonic()
        display.step(sums["loss"] / seen, seen * clips_per_sample / max(now - t0, 1e-9))
        if budget.on and dist.any(budget.spent(now)):  # every process stops at this step, or none does
            cut = step + 1
            break
    if run.sched is not None:
        run.sched.step()
    seconds = time.monotonic() - t0
    record = {"epoch": epoch, **{f"train_{k}": v / max(seen, 1) for k, v in sums.items()},
              "lr": run.optim.param_groups[0]["lr"], "seconds": round(seconds, 3),
              "clips_per_s": round(seen * clips_per_sample / max(seconds, 1e-9), 2)}
    return record, cut


def validate(model, loader, data: TrainData, device) -> dict:
    """What `aqa eval` reports (evaluate.compute_metrics) for `model` on `device` over the split `loader`
    reads, with greedy commentary when the model has a captioner; {} for an empty split."""
    if not len(loader.dataset):
        return {}
    pred = predict(model, loader, device, data.vocab, captions=data.vocab is not None, autocast=device.type == "cuda")
    return compute_metrics(pred, loader.dataset.samples, *data.score_range, data.root.info.synthetic)


def _check_request(cfg: RunConfig, out_dir: Path, resume: bool) -> None:
    """UsageError before any work for what cannot run: no root, a value out of range, a run directory
    that is a file, --resume without last.pt, or a new run over one that holds results."""
    if not cfg.data.root:
        raise UsageError("no dataset root: pass --data ROOT (or set data.root in the config)")
    check_values(cfg)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file: give a folder for the run")
    if resume and not (out_dir / "last.pt").is_file():
        raise UsageError(f"--resume: no {out_dir / 'last.pt'} to resume from", hint="drop --resume to start a new run")
    held = [n for n in ("last.pt", "best.pt", "report.json", "metrics.jsonl") if (out_dir / n).exists()]
    if not resume and held:
        raise UsageError(f"{out_dir} already holds a run ({', '.join(held)})",
                         hint="pass --resume to continue it (needs last.pt), or choose another --out")


def _make_run_dir(out_dir: Path) -> None:
    """Create the run directory now, not when the first epoch is saved, and check it is writable."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(out_dir, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UsageError(f"cannot write the run to {out_dir}: {exc.strerror}") from None


def _check_recipe(cfg: RunConfig, mcfg: ModelConfig) -> None:
    """UsageError for choices training does not support, or clips the window or frames cannot hold."""
    t, d = cfg.train, cfg.data
    if t.optimizer not in ("adam", "adamw") or t.scheduler not in ("none", "cosine"):
        raise UsageError(f"train.optimizer={t.optimizer!r}, train.scheduler={t.scheduler!r}: "
                         "supported are adam|adamw and none|cosine")
    if d.clips < 1 or d.stride < 1 or d.clips * mcfg.clip_len * d.stride > d.frames:
        raise UsageError(f"data.clips={d.clips} x model.clip_len={mcfg.clip_len} x data.stride={d.stride} frames "
                         f"must be at least 1 and fit the data.frames={d.frames}-frame window")
    if mcfg.crop_size > min(d.resize):
        raise UsageError(f"model.crop_size={mcfg.crop_size} is larger than the frames (data.resize "
                         f"{d.resize[0]}x{d.resize[1]})")
    rules_ok = mcfg.task == "mtl" and mcfg.execution  # the rules' score needs the dive heads and execution
    if t.select not in SELECT or (t.select != "score" and not rules_ok):
        raise UsageError(f"train.select={t.select!r}: expected score, or expected_dd_x_execution for MTL models "
                         "with an execution head", hint="--set train.select=score")


def _build(cfg: RunConfig, data: TrainData, device, fresh: bool) -> Training:
    """The model initialised from train.seed (a fresh run's regression heads starting at the train
    means), on `device`, with its optimiser, schedule and moving average."""
    from aqa_cli.models import build_model

    t = cfg.train
    torch.manual_seed(t.seed)
    model = build_model(data.model_config)
    if fresh:
        _init_output_bias(getattr(model.heads, "score", None), data.score_mean)
        if data.exec_mean is not None:
            _init_output_bias(getattr(model.heads, "execution", None), data.exec_mean)
    model = model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last_3d)
    optim = (torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam)(
        model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=max(1, t.epochs))
             if t.scheduler == "cosine" else None)
    swa = torch.optim.swa_utils
    ema = (swa.AveragedModel(model, multi_avg_fn=swa.get_ema_multi_avg_fn(t.ema), use_buffers=True)
           if t.ema > 0 else None)  # BatchNorm's statistics averaged too (use_buffers)
    return Training(cfg, model, optim, sched, ema, data.score_sd, data.exec_sd, device)


def _init_output_bias(head, value: float) -> None:
    """Start a regression head at the train mean: its last one-output layer's bias := `value`.

    Scores are regressed in points (MTL-AQA: mean 67); from a zero bias, Adam at lr 1e-4 would spend
    thousands of steps just walking the bias to the mean before learning anything about quality.
    """
    if head is None:
        return
    last = [m for m in head.modules() if getattr(m, "bias", None) is not None and m.bias.numel() == 1]
    if last:
        with torch.no_grad():
            last[-1].bias.fill_(value)


def _resume(run: Training, path: Path, cfg: RunConfig, data: TrainData) -> RunState:
    """Load last.pt's weights, optimiser, scheduler and RNG into `run`; the state to go on from."""
    ckpt = Checkpoint.load(path)
    saved = _check_resumable(ckpt, path, cfg, data)
    state = ckpt.state
    run.model.load_state_dict(state.get("trained_model", ckpt.model))
    if run.ema is not None:
        if "trained_model" not in state:
            raise UsageError(f"--resume: {path} was trained without train.ema", hint="resume with the same train.ema")
        run.ema.module.load_state_dict(ckpt.model)
        run.ema.n_averaged.fill_(state["ema_steps"])
    run.optim.load_state_dict(state["optimizer"])
    if run.sched is not None and state.get("scheduler"):
        run.sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    horizon = cfg.train.epochs
    if saved.train.epochs == cfg.train.epochs:  # a run extended with more epochs plans them afresh
        horizon = state.get("epochs_fitted", horizon)
    return RunState(horizon=horizon, next_epoch=state["epoch"] + 1, best=state["best"])


def _check_resumable(ckpt: Checkpoint, path: Path, cfg: RunConfig, data: TrainData) -> RunConfig:
    """The config `ckpt` was trained with, or UsageError unless it is a last.pt of the same model and
    data: every model and data key alike (but data.root: a dataset may move), the same dataset,
    training dives and captions."""
    if "optimizer" not in ckpt.state:
        raise UsageError(f"--resume: {path} is not a resumable checkpoint (no optimiser state: a best.pt?)")
    saved = ckpt.run_config(str(path))
    differ = []
    for section in ("model", "data"):
        old, new = to_dict(getattr(saved, section)), to_dict(getattr(cfg, section))
        differ += [f"{section}.{k}" for k in new if new[k] != old.get(k) and f"{section}.{k}" != "data.root"]
    if differ:
        raise UsageError(f"--resume: {', '.join(differ)} {'differs' if len(differ) == 1 else 'differ'} from "
                         f"what {path} was trained with",
                         hint="resume with the same --config and model/data --set overrides")
    trained_on = ckpt.data.get("name"), ckpt.data.get("train_samples")
    same_words = data.vocab is None or list(data.vocab.words) == ckpt.vocab  # from the train captions
    if trained_on != (data.root.info.name, len(data.samples)) or not same_words:
        raise UsageError(f"--resume: {data.root.root} is not the dataset {path} was trained on "
                         f"({trained_on[0]}, {trained_on[1]} training dives"
                         f"{'' if same_words else ', other training captions'})")
    return saved


def _checkpoint_template(cfg: RunConfig, data: TrainData, main: bool) -> Checkpoint:
    """Every field best.pt and last.pt share but the weights, metrics and resume state."""
    info = data.root.info
    heights = Counter(s.height for s in data.samples if s.height)  # `aqa score` takes its DD table's height from it
    return Checkpoint(
        model={}, model_config=replace(data.model_config, pretrained=""),  # the weights are in `model`
        preprocess=Preprocess.from_config(cfg), vocab=list(data.vocab.words) if data.vocab else [],
        label_maps=label_maps(data.model_config.classes), train_config=to_dict(cfg),
        data={"name": info.name, "source": info.source, "synthetic": info.synthetic, "version": info.version,
              "train_samples": len(data.samples), "heights": dict(heights.most_common())},
        source_revision=source_revision() if main else "")


def _fit_budget(state: RunState, budget: Budget, epoch: int, sched, display: TrainProgress) -> None:
    """Shorten the run to the epochs train.max_minutes still fits, the cosine decaying over them."""
    fitted = budget.fit(state.horizon, epoch, time.monotonic())
    if fitted < state.horizon:
        display.shorten(fitted, f"train.max_minutes {budget.minutes:g}: at the pace so far, {state.horizon} "
                        f"epochs would not fit; training {fitted}, the learning rate decaying over them")
        state.horizon = fitted
        if sched is not None:  # the chained cosine goes on from the current rate to 0 at `fitted`
            sched.T_max = fitted


def _save(template: Checkpoint, run: Training, state: RunState, epoch: int, val: dict, out_dir: Path,
          improved: bool) -> None:
    """best.pt when the epoch improved on the best, and last.pt with the resume state."""
    ckpt = replace(template, model=_cpu_state(run.served), metrics={"val": val})
    if improved:
        ckpt.save(out_dir / "best.pt")
    resume = {"epoch": epoch, "best": state.best, "optimizer": run.optim.state_dict(),
              "scheduler": run.sched.state_dict() if run.sched else {}, "rng": {"torch": torch.get_rng_state()},
              "epochs_fitted": state.horizon}
    if run.ema is not None:  # resuming needs the trained weights as well as their average
        resume.update(trained_model=_cpu_state(run.model), ema_steps=int(run.ema.n_averaged))
    replace(ckpt, state=resume).save(out_dir / "last.pt")


def _finish(run: Training, state: RunState, cfg: RunConfig, data: TrainData, test_loader, out_dir: Path,
            stopped_early: bool, seconds: float) -> dict:
    """Test the best checkpoint once, store the test metrics in best.pt and write report.json."""
    best_path = out_dir / "best.pt"
    ckpt = Checkpoint.load(best_path)
    run.model.load_state_dict(ckpt.model)
    test = validate(run.model, test_loader, data, run.device)
    ckpt.metrics = {"val": state.best["val"], "test": test}
    ckpt.save(best_path)
    selected_on = f"val {cfg.train.select} spearman" if state.best["val"] else "last epoch (no val split)"
    report = {"best_epoch": state.best["epoch"], "selected_on": selected_on, "val": state.best["val"], "test": test,
              "stopped_early": stopped_early, "epochs_fitted": state.horizon, "train_seconds": round(seconds, 1),
              "data": ckpt.data, "task": ckpt.model_config.task, "backbone": ckpt.model_config.backbone}
    atomic_write_text(out_dir / "report.json", json.dumps(_jsonable(report), indent=2) + "\n")
    return report


def _cpu_state(model) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _jsonable(obj):
    """NaN → None so report files are strict JSON."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _append_metrics(path: Path, record: dict) -> None:
    """Append one epoch to metrics.jsonl, first dropping lines of epochs ≥ this one (left by a run that
    stopped after writing metrics but before its checkpoint)."""
    lines = path.read_text().splitlines() if path.is_file() else []
    kept = [ln for ln in lines if ln.strip() and json.loads(ln)["epoch"] < record["epoch"]]
    kept.append(json.dumps(_jsonable(record)))
    atomic_write_text(path, "\n".join(kept) + "\n")
