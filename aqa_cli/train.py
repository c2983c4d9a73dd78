"""Training: the loop behind `aqa train`, single process or DistributedDataParallel under torchrun.

One epoch = one pass over the train split (augmented), then the validation split picks the best
checkpoint; the test split is evaluated once, at the end, with the best checkpoint (aqa never picks an
epoch on the test set). A run directory holds:

    last.pt        checkpoint after the latest epoch, with optimiser/scheduler/RNG state (--resume)
    best.pt        checkpoint of the epoch with the best validation Spearman (the last epoch when the root
                   has no val split), with the test metrics added at the end
    metrics.jsonl  one line per epoch: losses, throughput, validation metrics
    report.json    best epoch, its validation metrics and the test metrics

With `train.ema` the checkpoints' `model` is the moving average of the weights (what is validated and
tested); last.pt also keeps the trained weights (`trained_model`) for --resume.

Loss (the MTL-AQA recipe, Parmar & Morris 2019, and its released code): MSE + L1 on the final score
divided by a scale (the paper divides by 17, the sd of MTL-AQA scores; aqa uses the train split's sd,
16.9 on MTL-AQA), + the same on execution when the model regresses it, + the sum of the five
classification cross-entropies, + 0.01 × the caption cross-entropy (tokens after `<sos>`, up to and
including `<eos>`). Each term's weight is in TrainConfig.

Determinism: the model is initialised from `train.seed`, each epoch's order comes from (seed, epoch)
and each sample's augmentation from (seed, epoch, index) (datasets/frames.py), and `last.pt` stores the
torch RNG state, so `--resume` ends where an uninterrupted run ends.

Time budget (`train.max_minutes`): after each epoch from the second on, if the epochs left at the pace
measured since the first (which also fills the frame cache) would overrun the budget, the run is
shortened to the epochs that fit (`fit_epochs`) and the cosine schedule decays over those, so a slower
machine still ends on an annealed learning rate; a run that still overruns stops mid-epoch (under
torchrun every process at the same step, when any one's clock passes the budget).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from aqa_cli.config import RunConfig, check_values, from_dict, to_dict
from aqa_cli.storage import atomic_write_text
from aqa_cli.device import resolve_device
from aqa_cli.errors import UsageError

@dataclass
class _Dist:
    """Where this process sits in a torchrun job (world 1 when run plainly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str):
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), resolve_device(device_name)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device(f"cuda:{local}")
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank, world, local), device


def label_maps(classes: dict[str, int]) -> dict[str, list[str]]:
    """Class names per head for the checkpoint (dive.LABEL_NAMES; plain numbers for other sizes)."""
    from aqa_cli.rules import LABEL_NAMES

    return {h: (LABEL_NAMES[h] if len(LABEL_NAMES.get(h, [])) == k else [str(i) for i in range(k)])
            for h, k in classes.items()}


def source_revision() -> str:
    """git commit of the aqa source tree that is running ("" when not a git checkout)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def compute_loss(out: dict, batch: dict, cfg: RunConfig, score_scale: float, exec_scale: float):
    """The training loss and its parts (floats, for logging). See the module docstring."""
    import torch
    import torch.nn.functional as F

    t = cfg.train

    def regression(pred, true, scale: float):
        """MSE + L1 (weighted by score_mse / score_l1) of predictions against targets over `scale`."""
        pred, true = pred.float() / scale, true / scale
        return t.score_mse * F.mse_loss(pred, true) + t.score_l1 * F.l1_loss(pred, true)

    score_loss = regression(out["score"], batch["score"], score_scale)
    loss, parts = score_loss, {"score": score_loss.item()}
    if "execution" in out:
        known = torch.isfinite(batch["execution"])
        if known.any():
            exec_loss = regression(out["execution"][known], batch["execution"][known], exec_scale)
            loss = loss + t.execution_weight * exec_loss
            parts["execution"] = exec_loss.item()
    if out.get("logits"):
        from aqa_cli.rules import HEADS  # the column order of batch["labels"]

        # Unknown labels are -1 in a dataset root; a batch where a head has none adds 0, not NaN.
        labels = {h: batch["labels"][:, HEADS.index(h)] for h in out["logits"]}
        ces = [F.cross_entropy(logits.float(), labels[h], ignore_index=-1)
               if (labels[h] >= 0).any() else logits.sum() * 0.0
               for h, logits in out["logits"].items()]
        cls_loss = torch.stack(ces).sum()
        loss = loss + t.cls_weight * cls_loss
        parts["cls"] = cls_loss.item()
    if "caption_logits" in out:
        logits = out["caption_logits"].float()  # (B, L-1, V) predicting tokens 1..L-1
        target = batch["caption"][:, 1:]
        steps = torch.arange(target.shape[1], device=target.device)
        mask = steps[None, :] < (batch["caption_len"][:, None] - 1)  # real tokens and the first <eos>
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
        cap_loss = (ce * mask.reshape(-1)).sum() / mask.sum().clamp(min=1)
        loss = loss + t.caption_weight * cap_loss
        parts["caption"] = cap_loss.item()
    parts["loss"] = loss.item()
    return loss, parts


def _init_output_bias(head, value: float) -> None:
    """Start a regression head at the train mean: its last one-output layer's bias := `value`.

    Scores are regressed in points (MTL-AQA: mean 67); from a zero bias, Adam at lr 1e-4 would spend
    thousands of steps just walking the bias to the mean before learning anything about quality.
    """
    import torch

    if head is None:
        return
    last = [m for m in head.modules() if getattr(m, "bias", None) is not None and m.bias.numel() == 1]
    if last:
        with torch.no_grad():
            last[-1].bias.fill_(value)


def fit_epochs(planned: int, done: int, elapsed_s: float, epoch_s: float, budget_s: float) -> int:
    """The epochs a run can finish within `budget_s` seconds: `planned`, or fewer when `done` epochs took
    `elapsed_s` and the other ones, at `epoch_s` each, would overrun it; never fewer than `done`.
    A budget of 0 is no budget."""
    if budget_s <= 0 or done >= planned or elapsed_s + (planned - done) * epoch_s <= budget_s:
        return planned
    return done + max(0, int((budget_s - elapsed_s) // epoch_s))


SELECT = ("score", "expected_dd_x_execution")  # val metrics whose Spearman can pick the checkpoint


def _selection_value(val: dict, metric: str) -> float:
    """Validation Spearman of `metric`; NaN (constant predictions, empty split) ranks below every number."""
    rho = val.get(metric, {}).get("spearman", math.nan)
    return -math.inf if rho is None or math.isnan(rho) else rho


def train(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, device: str = "auto",
          quiet: bool = False, console=None) -> dict:
    """Train `cfg` on `cfg.data.root`, writing the run directory `out_dir`; returns the report dict.

    With `resume`, continues from `out_dir/last.pt`; `cfg` must then describe the same model and data
    (training keys such as `train.epochs` may differ: extending a finished run is allowed).
    """
    import numpy as np
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader, DistributedSampler

    from aqa_cli import models
    from aqa_cli.datasets.frames import FramesDataset, collate, execution_target
    from aqa_cli.datasets.layout import DatasetRoot
    from aqa_cli.evaluate import compute_metrics, has_captioner, predict, score_range
    from aqa_cli.text import Vocabulary
    from aqa_cli.weights import load_checkpoint, save_checkpoint

    out_dir = Path(out_dir)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if not cfg.data.root:
        raise UsageError("no dataset root: pass --data ROOT (or set data.root in the config)")
    check_values(cfg)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file: give a folder for the run")
    if resume and not last_path.is_file():
        raise UsageError(f"--resume: no {last_path} to resume from", hint="drop --resume to start a new run")
    held = [n for n in (last_path.name, best_path.name, "report.json", "metrics.jsonl") if (out_dir / n).exists()]
    if not resume and held:
        raise UsageError(f"{out_dir} already holds a run ({', '.join(held)})",
                         hint="pass --resume to continue it (needs last.pt), or choose another --out")
    dist_info, dev = _init_distributed(device)
    try:  # now, not when the first epoch is saved
        out_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(out_dir, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UsageError(f"cannot write the run to {out_dir}: {exc.strerror}") from None
    torch.set_num_threads(max(1, torch.get_num_threads() // dist_info.world))

    root = DatasetRoot(cfg.data.root)
    train_samples = root.split("train")
    if not train_samples:
        raise UsageError(f"{root.root}: the train split is empty")
    mcfg = replace(cfg.model, classes=dict(cfg.model.classes))
    vocab = None
    if has_captioner(mcfg):
        vocab = Vocabulary.build(s.commentary for s in train_samples)
        mcfg.vocab_size = len(vocab)
    scores = np.array([s.final_score for s in train_samples], dtype=float)
    score_scale = float(scores.std()) if scores.std() > 0 else 1.0
    execs = np.array([execution_target(s) for s in train_samples])
    execs = execs[np.isfinite(execs)]
    exec_scale = float(execs.std()) if execs.size and execs.std() > 0 else 1.0

    t = cfg.train
    if t.optimizer not in ("adam", "adamw") or t.scheduler not in ("none", "cosine"):
        raise UsageError(f"train.optimizer={t.optimizer!r}, train.scheduler={t.scheduler!r}: "
                         "supported are adam|adamw and none|cosine")
    d = cfg.data
    if d.clips < 1 or d.stride < 1 or d.clips * mcfg.clip_len * d.stride > d.frames:
        raise UsageError(f"data.clips={d.clips} x model.clip_len={mcfg.clip_len} x data.stride={d.stride} frames "
                         f"must be at least 1 and fit the data.frames={d.frames}-frame window")
    if mcfg.crop_size > min(d.resize):
        raise UsageError(f"model.crop_size={mcfg.crop_size} is larger than the frames (data.resize "
                         f"{d.resize[0]}x{d.resize[1]})")
    torch.manual_seed(t.seed)
    model = models.build_model(mcfg)
    if not resume:
        _init_output_bias(getattr(model.heads, "score", None), float(scores.mean()))
        if execs.size:
            _init_output_bias(getattr(model.heads, "execution", None), float(execs.mean()))
    model = model.to(dev)
    if dev.type == "cpu":
        model = model.to(memory_format=torch.channels_last_3d)
    optim = (torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam)(
        model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=max(1, t.epochs))
             if t.scheduler == "cosine" else None)
    rules_ok = mcfg.task == "mtl" and mcfg.execution  # the rules' score needs the dive heads and execution
    if t.select not in SELECT or (t.select != "score" and not rules_ok):
        raise UsageError(f"train.select={t.select!r}: expected score, or expected_dd_x_execution for MTL models "
                         "with an execution head", hint="--set train.select=score")
    swa = torch.optim.swa_utils
    ema = (swa.AveragedModel(model, multi_avg_fn=swa.get_ema_multi_avg_fn(t.ema), use_buffers=True)
           if t.ema > 0 else None)
    served = ema.module if ema is not None else model  # the weights validated, saved and tested

    start_epoch, best = 0, {"epoch": -1, "value": -math.inf, "val": {}}
    horizon = t.epochs  # the epochs the run trains: fewer when train.max_minutes cannot fit them all
    if resume:
        ckpt = load_checkpoint(last_path)
        if "optimizer" not in ckpt:
            raise UsageError(f"--resume: {last_path} is not a resumable checkpoint (no optimiser state: a best.pt?)")
        saved = from_dict(RunConfig, ckpt["train_config"], where=f"{last_path} train_config")
        differ = _config_differences(saved, cfg)
        if differ:
            raise UsageError(f"--resume: {', '.join(differ)} {'differs' if len(differ) == 1 else 'differ'} from "
                             f"what {last_path} was trained with",
                             hint="resume with the same --config and model/data --set overrides")
        trained_on = (ckpt.get("data") or {}).get("name"), (ckpt.get("data") or {}).get("train_samples")
        same_words = vocab is None or list(vocab.words) == list(ckpt.get("vocab") or [])  # from the train captions
        if trained_on != (root.info.name, len(train_samples)) or not same_words:
            raise UsageError(f"--resume: {root.root} is not the dataset {last_path} was trained on "
                             f"({trained_on[0]}, {trained_on[1]} training dives"
                             f"{'' if same_words else ', other training captions'})")
        model.load_state_dict(ckpt.get("trained_model", ckpt["model"]))
        if ema is not None:
            if "trained_model" not in ckpt:
                raise UsageError(f"--resume: {last_path} was trained without train.ema",
                                 hint="resume with the same train.ema")
            ema.module.load_state_dict(ckpt["model"])
            ema.n_averaged.fill_(ckpt["ema_steps"])
        optim.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt.get("scheduler"):
            sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        start_epoch, best = ckpt["epoch"] + 1, ckpt["best"]
        if saved.train.epochs == t.epochs:  # a run extended with more epochs plans them afresh
            horizon = ckpt.get("epochs_fitted", t.epochs)

    net = model
    if dist_info.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None)

    train_ds = FramesDataset(root, "train", cfg.data, mcfg, vocab=vocab, train=True, seed=t.seed)
    val_ds = FramesDataset(root, "val", cfg.data, mcfg, train=False)
    if not len(FramesDataset(root, "test", cfg.data, mcfg)) and dist_info.main:  # its split and frames checked now
        (console or _stderr()).print(f"warning: {root.root}: the test split is empty; the run will report no test "
                                     "numbers", markup=False, highlight=False, soft_wrap=True)
    sampler = DistributedSampler(train_ds, num_replicas=dist_info.world, rank=dist_info.rank, shuffle=True,
                                 seed=t.seed)
    loader_args = dict(num_workers=cfg.data.workers, collate_fn=collate, pin_memory=dev.type == "cuda",
                       persistent_workers=False)
    # BatchNorm on the video feature cannot train on a batch of one: drop a last batch of one sample.
    lone = mcfg.feature_norm and math.ceil(len(train_ds) / dist_info.world) % t.batch_size == 1
    train_loader = DataLoader(train_ds, batch_size=t.batch_size, sampler=sampler, drop_last=lone,
                              generator=torch.Generator().manual_seed(t.seed), **loader_args)
    val_loader = DataLoader(val_ds, batch_size=max(t.batch_size, 4), shuffle=False, **loader_args)
    batches = len(train_loader) if t.limit_batches <= 0 else min(t.limit_batches, len(train_loader))
    lo, hi = score_range(root)
    autocast = dev.type == "cuda"
    # heights {height: count} of the training dives: `aqa score` reads its default DD table from it.
    heights = Counter(s.height for s in train_samples if s.height)
    data_meta = {"name": root.info.name, "source": root.info.source, "synthetic": root.info.synthetic,
                 "version": root.info.version, "train_samples": len(train_samples),
                 "heights": dict(heights.most_common())}
    base = {
        "model_config": to_dict(replace(mcfg, pretrained="")),  # the weights are in the state dict
        "preprocess": {"frames": cfg.data.frames, "clips": cfg.data.clips, "stride": cfg.data.stride,
                       "shift": cfg.data.shift, "clip_len": mcfg.clip_len,
                       "resize": list(cfg.data.resize), "crop": mcfg.crop_size, "mean": list(cfg.data.mean),
                       "std": list(cfg.data.std)},
        "vocab": list(vocab.words) if vocab else [],
        "label_maps": label_maps(mcfg.classes),
        "train_config": to_dict(cfg),
        "data": data_meta,
        "source_revision": source_revision() if dist_info.main else "",
    }

    display = _Display(console, quiet or not dist_info.main, horizon, batches, start_epoch)
    clips_per_sample = cfg.data.clips
    started = time.monotonic()
    first_done = None  # when this process finished its first epoch (which also fills the frame cache)
    stopped_early = False
    with display:
        for epoch in range(start_epoch, t.epochs):
            if epoch >= horizon:
                break
            net.train()
            sampler.set_epoch(epoch)
            train_ds.set_epoch(epoch)
            sums: dict[str, float] = {}
            seen, t0 = 0, time.monotonic()
            display.start_epoch(epoch)
            for step, batch in enumerate(train_loader):
                if step >= batches:
                    break
                batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
                clips = batch["clips"]

                def forward(batch=batch):
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                        out = net(batch["clips"], captions=batch.get("caption") if vocab is not None else None)
                    return compute_loss(out, batch, cfg, score_scale, exec_scale)

                optim.zero_grad(set_to_none=True)
                loss, parts = forward()
                loss.backward()
                if t.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                optim.step()
                if ema is not None:
                    ema.update_parameters(model)
                n = clips.shape[0]
                seen += n
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v * n
                rate = seen * clips_per_sample * dist_info.world / max(time.monotonic() - t0, 1e-9)
                display.step(sums["loss"] / seen, rate)
                if t.max_minutes > 0 and _over_budget(time.monotonic() - started > t.max_minutes * 60,
                                                      dist_info.world, dev):
                    stopped_early = True
                    if dist_info.main:
                        display.shorten(epoch + 1, f"train.max_minutes {t.max_minutes:g}: the time is up; stopping during "
                                        f"epoch {epoch + 1} of {horizon} (after {step + 1} of {batches} batches; "
                                        "report.json: stopped_early)")
                    break
            if sched is not None:
                sched.step()
            seconds = time.monotonic() - t0
            record = {"epoch": epoch, **{f"train_{k}": v / max(seen, 1) for k, v in sums.items()},
                      "lr": optim.param_groups[0]["lr"], "seconds": round(seconds, 3),
                      "clips_per_s": round(seen * clips_per_sample * dist_info.world / max(seconds, 1e-9), 2)}
            if dist_info.main:
                val = (compute_metrics(predict(served, val_loader, dev, vocab, captions=vocab is not None,
                                               autocast=autocast), val_ds.samples, lo, hi, root.info.synthetic)
                       if len(val_ds) else {})
                record["val"] = val
                value = _selection_value(val, t.select)
                # Without a val split nothing can pick an epoch honestly: the last one is kept.
                improved = best["epoch"] < 0 or value > best["value"] or not len(val_ds)
                if improved:
                    best = {"epoch": epoch, "value": value, "val": val}
                now = time.monotonic()
                if first_done is None:
                    first_done = (epoch, now)
                elif not stopped_early:
                    fitted = fit_epochs(horizon, epoch + 1, now - started,
                                        (now - first_done[1]) / (epoch - first_done[0]), t.max_minutes * 60)
                    if fitted < horizon:
                        display.shorten(fitted, f"train.max_minutes {t.max_minutes:g}: at the pace so far, {horizon} "
                                        f"epochs would not fit; training {fitted}, the learning rate decaying over them")
                        horizon = fitted
                        if sched is not None:  # the chained cosine goes on from the current rate to 0 at `fitted`
                            sched.T_max = fitted
                _append_metrics(out_dir / "metrics.jsonl", record)
                ckpt = {**base, "model": _cpu_state(served), "metrics": {"val": val}, "epoch": epoch}
                if improved:
                    save_checkpoint(best_path, ckpt)
                if ema is not None:  # resuming needs the trained weights as well as their average
                    ckpt.update(trained_model=_cpu_state(model), ema_steps=int(ema.n_averaged))
                save_checkpoint(last_path, {**ckpt, "optimizer": optim.state_dict(),
                                            "scheduler": sched.state_dict() if sched else {},
                                            "rng": {"torch": torch.get_rng_state()}, "best": best,
                                            "epochs_fitted": horizon})
                display.end_epoch(record)
            if dist_info.world > 1:
                dist.barrier()
                shared = [horizon]  # every process trains the epochs rank 0 fitted
                dist.broadcast_object_list(shared, src=0)
                horizon = shared[0]
            if stopped_early:
                break

    report = {}
    if dist_info.main:
        report = _finish(best_path, out_dir, model, root, mcfg, cfg, vocab, dev, best, lo, hi, autocast,
                         stopped_early, time.monotonic() - started, horizon)
        display.summary(report)
    if dist_info.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return report


def _config_differences(saved: RunConfig, cfg: RunConfig) -> list[str]:
    """The model and data keys (data.root aside: a dataset may move) where `cfg` differs from `saved`."""
    differ = []
    for section in ("model", "data"):
        old, new = to_dict(getattr(saved, section)), to_dict(getattr(cfg, section))
        differ += [f"{section}.{k}" for k in new if new[k] != old.get(k) and f"{section}.{k}" != "data.root"]
    return differ


def _stderr():
    from rich.console import Console

    return Console(stderr=True, emoji=False)


def _over_budget(over: bool, world: int, dev) -> bool:
    """Whether to stop mid-epoch: any process's clock past the budget stops them all at the same step.
    Each process reads its own clock; under DDP one that stopped alone would leave the others waiting
    in the next step's all-reduce for ever."""
    if world == 1:
        return over
    import torch
    import torch.distributed as dist

    flag = torch.tensor([float(over)], device=dev)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def _finish(best_path, out_dir, model, root, mcfg, cfg, vocab, dev, best, lo, hi, autocast,
            stopped_early, seconds, epochs_fitted) -> dict:
    """Test the best checkpoint once, store the test metrics in best.pt and write report.json."""
    from torch.utils.data import DataLoader

    from aqa_cli.datasets.frames import FramesDataset, collate
    from aqa_cli.evaluate import compute_metrics, predict
    from aqa_cli.weights import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(best_path)
    model.load_state_dict(ckpt["model"])
    test_ds = FramesDataset(root, "test", cfg.data, mcfg, train=False)
    loader = DataLoader(test_ds, batch_size=max(cfg.train.batch_size, 4), shuffle=False,
                        num_workers=cfg.data.workers, collate_fn=collate)
    test = (compute_metrics(predict(model, loader, dev, vocab, captions=vocab is not None, autocast=autocast),
                            test_ds.samples, lo, hi, root.info.synthetic) if len(test_ds) else {})
    ckpt["metrics"] = {"val": best["val"], "test": test}
    save_checkpoint(best_path, {k: v for k, v in ckpt.items() if k != "format_version"})
    selected_on = f"val {cfg.train.select} spearman" if best["val"] else "last epoch (no val split)"
    report = {"best_epoch": best["epoch"], "selected_on": selected_on, "val": best["val"], "test": test,
              "stopped_early": stopped_early, "epochs_fitted": epochs_fitted, "train_seconds": round(seconds, 1),
              "data": ckpt["data"], "task": mcfg.task, "backbone": mcfg.backbone}
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


class _Display:
    """Rich live progress on stderr: an epoch bar, a batch bar with loss, clips/s and ETA, and one
    printed line per finished epoch. Silent when `quiet`, apart from warnings (`shorten`)."""

    def __init__(self, console, quiet: bool, epochs: int, batches: int, start_epoch: int):

        self.quiet = quiet
        self.console = console or _stderr()
        if quiet:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=True)
        self.epochs_task = self.progress.add_task("epochs", total=epochs, completed=start_epoch, info="")
        self.batch_task = self.progress.add_task("batches", total=batches, info="")
        self.batches = batches

    def __enter__(self):
        if not self.quiet:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if not self.quiet:
            self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int) -> None:
        if not self.quiet:
            self.progress.reset(self.batch_task, total=self.batches, description=f"epoch {epoch + 1}", info="")

    def shorten(self, epochs: int, text: str) -> None:
        """The run now trains `epochs` epochs; `text` says why (printed even when quiet)."""
        if not self.quiet:
            self.progress.update(self.epochs_task, total=epochs)
        self.console.print(f"warning: {text}", style="yellow", highlight=False, soft_wrap=True)

    def step(self, loss: float, clips_per_s: float) -> None:
        if not self.quiet:
            self.progress.update(self.batch_task, advance=1, info=f"loss {loss:.4f}  {clips_per_s:.1f} clips/s")

    def end_epoch(self, record: dict) -> None:
        if self.quiet:
            return
        self.progress.advance(self.epochs_task)
        val = record.get("val", {})
        rho = val.get("score", {}).get("spearman")
        acc = val.get("accuracy", {})
        extra = "".join(f" {short} {acc[h]:.2f}" for h, short in (("position", "pos"), ("rotation_type", "rot"))
                        if h in acc)
        self.console.print(f"epoch {record['epoch'] + 1}: loss {record.get('train_loss', math.nan):.3f} "
                           f"val ρ {_fmt(rho)}{_rules(val)}{extra} {record['clips_per_s']:.1f} clips/s "
                           f"{record['seconds']:.0f}s", highlight=False, soft_wrap=True)

    def summary(self, report: dict) -> None:
        if self.quiet:
            return
        test = report.get("test", {})
        rho = test.get("score", {}).get("spearman")
        self.console.print(f"best epoch {report['best_epoch'] + 1} (by {report['selected_on']}); "
                           f"test ρ {_fmt(rho)}{_rules(test)}", highlight=False, soft_wrap=True)


def _rules(metrics: dict) -> str:
    """' (E[DD]×exec ρ 0.782)' where the metrics have the rules' score, else ''."""
    rho = metrics.get("expected_dd_x_execution", {}).get("spearman")
    return f" (E[DD]×exec ρ {_fmt(rho)})" if rho is not None else ""


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"
