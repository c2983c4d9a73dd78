"""Training on segment features: `aqa train --task s4aqa` (semi-supervised, models/s4aqa.py),
`--task regress`, the supervised baseline (the same encoder and regressor on the labelled videos alone),
and `--task mtl-features`, that baseline with the MTL heads (execution and the five dive classes) trained
with it: the frozen-feature MTL variant, whose outputs scoring turns into DD × execution and a dive number.

    ROOT (scores, splits) + FEATS (features of ROOT, datasets/features.py) [+ extra unscored FEATS]
      train split --score-stratified draw of labeled_ratio (labeled_seed)--> labelled | unlabelled
      --epochs of Adam: one pass over the labelled videos each, every step a labelled batch and (s4aqa)
      an unlabelled batch from an endless shuffled stream-->
      val Spearman picks the epoch --> the test split scored once, with that epoch's weights

A run directory holds:

    labeled.txt    the labelled subset's ids, one per line (the rest of the train split is unlabelled)
    metrics.jsonl  one line per epoch: the loss terms' means and the validation metrics
    best.pt        aqa checkpoint of the epoch with the best validation Spearman (the last epoch when
                   there is no val split, as for Rhythmic Gymnastics), the test metrics added at the end
    report.json    the best epoch, its validation metrics, the test metrics, the subset's sizes

Both tasks see the same labelled batches in the same order for a seed: an epoch is one pass over the
labelled subset, so the baseline gets the same number of supervised steps and the same epoch budget.
Rhythmic Gymnastics trains one model per apparatus (`semi.group`, `aqa train --apparatus`): the
samples of each split whose `apparatus` is that group; `train_groups` runs all of them and averages
their test Spearman through Fisher's z. Features sampled with a stride (routines: one clip every S
frames) differ in length: they are padded to the longest sample's length, which becomes the model's
number of positions, and the encoder masks the padding (models/s4aqa.py).

mtl-features adds two loss terms on the labelled batch: "exec", the MSE of the standardised execution
(left out where a sample's execution is unknown), weighted by train.execution_weight, and "cls", the
sum of the five heads' cross-entropies (losses.classification_loss: unknown labels left out), weighted
by train.cls_weight. Its validation metrics are `aqa eval`'s (evaluate.compute_metrics) and
train.select picks the epoch on the score head ("score") or on the rules' expected DD × execution.

Deterministic: the model is initialised from train.seed, batches and masked positions come from a
generator seeded with it, and the subset from semi.labeled_seed alone (every task and training seed of
a ratio trains on the same videos).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from aqa_cli.checkpoint import Checkpoint, Preprocess, label_maps
from aqa_cli.config import ModelConfig, RunConfig, SemiConfig, check_values, to_dict
from aqa_cli.datasets.features import FeatureFolder, FeatureIndex, load_features, open_features
from aqa_cli.datasets.layout import DatasetRoot, Sample
from aqa_cli.evaluate import group_samples, score_range
from aqa_cli.errors import UsageError
from aqa_cli.losses import classification_loss
from aqa_cli.metrics import fisher_z_mean, score_report
from aqa_cli.models.s4aqa import (MTL_TASK, S4AQA, TASKS, alignment_loss, build_s4aqa, recovery_loss,
                                  regression_loss)
from aqa_cli.rules import HEADS
from aqa_cli.storage import atomic_write_text

__all__ = ["fisher_z_mean", "labeled_subset", "train_semi", "train_groups"]
RUN_FILES = ("labeled.txt", "metrics.jsonl", "best.pt", "report.json")


@dataclass
class Split:
    """Samples with their features and scores: ids (N), x float (N, T, D), y float (N,) in points,
    lengths long (N,): sample n's real segments are x[n, :lengths[n]] (the rest padding); execution
    float (N,) in points, NaN where unknown, and labels long (N, 5) in rules.HEADS order, -1 where
    unknown (the MTL heads' targets); samples (N) for evaluate.compute_metrics."""

    ids: list[str]
    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor
    execution: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    samples: list[Sample] | None = None


@dataclass
class SemiData:
    """What a run trains and is measured on."""

    root: DatasetRoot
    index: FeatureIndex
    labeled: Split
    unlabeled: torch.Tensor  # (N_u, T, D): the rest of the train split, then the extra folders' samples
    unlabeled_lengths: torch.Tensor  # (N_u,) long
    val: Split
    test: Split
    sources: dict[str, int]  # unlabelled videos per source ("train" and each extra folder)


def labeled_subset(samples: list[Sample], ratio: float, seed: int) -> list[str]:
    """The ids of the labelled subset of `samples`: round(ratio · N) videos (at least 2), one drawn at
    random (numpy generator `seed`) from each of as many strata of near-equal size, the strata cut from
    the samples sorted by (final score, id). Every score quantile is represented, and the draw depends
    on the samples' scores and ids only, not on their order. Returned in stratum order (rising score)."""
    n = round(ratio * len(samples))
    if n < 2 or not 0 < ratio <= 1:
        raise UsageError(f"semi.labeled_ratio={ratio}: {n} of {len(samples)} training videos labelled; "
                         "a score scale needs at least 2")
    order = sorted(samples, key=lambda s: (s.final_score, s.id))
    rng = np.random.default_rng(seed)
    return [order[int(rng.choice(stratum))].id for stratum in np.array_split(np.arange(len(order)), n)]


def _split(root: DatasetRoot, group: str, name: str) -> list[Sample]:
    """Split `name` of the root, of its samples in `group` (Rhythmic Gymnastics: one apparatus) when
    given; [] for a val split the root does not have."""
    if name == "val" and not (root.root / "splits" / "val.txt").is_file():
        return []
    return group_samples(root, root.split(name), group)


def positions(folders: list[tuple[FeatureFolder, list[str]]], semi: SemiConfig, index: FeatureIndex) -> tuple[int, int]:
    """(segments, pad) for `load_features`: semi.segments when set (every sample resampled); the
    features' own count for a window sampling; for stride sampling, pad to the longest sample among
    `folders`' ids (the model's positions)."""
    if semi.segments or not index.stride:
        return semi.segments or index.segments, 0
    return 0, max((f.length(i) for f, ids in folders for i in ids), default=1)


def open_data(cfg: RunConfig, labeled: list[str]) -> SemiData:
    """The run's tensors: `labeled` ids of the train split, the rest of it and every sample of the
    extra folders unlabelled, val and test scored (see the module docstring)."""
    semi = cfg.semi
    root = DatasetRoot(cfg.data.root)
    folder = open_features(semi.features, root.info, None, "--features")
    index = folder.read_index()
    chosen = set(labeled)
    rest = [s.id for s in _split(root, semi.group, "train") if s.id not in chosen]
    val, test = _split(root, semi.group, "val"), _split(root, semi.group, "test")
    extra, extra_ids = None, []
    if semi.unlabeled:
        if Path(semi.unlabeled).resolve() == folder.path.resolve():
            raise UsageError(f"--unlabeled {semi.unlabeled}: the labelled root's own features (its train split "
                             "is already used)")
        extra = open_features(semi.unlabeled, None, index, "--unlabeled")
        extra_ids = sorted(p.stem for p in extra.path.glob("*.npy"))
    used = [(folder, labeled + rest + [s.id for s in val + test])] + ([(extra, extra_ids)] if extra else [])
    segments, pad = positions(used, semi, index)

    def scored(samples: list[Sample]) -> Split:
        from aqa_cli.datasets.frames import execution_target

        ids = [s.id for s in samples]
        x, lengths = load_features(folder, ids, segments, pad)
        execution = torch.tensor([execution_target(s) for s in samples], dtype=torch.float32)
        labels = torch.tensor([[getattr(s, h) for h in HEADS] for s in samples], dtype=torch.long)
        labels = labels.reshape(-1, len(HEADS))  # (0, 5) for an empty split
        return Split(ids, x, torch.tensor([s.final_score for s in samples]), lengths, execution, labels, samples)

    lab = scored([root.samples[i] for i in labeled])
    unlabeled, lengths = load_features(folder, rest, segments, pad)
    sources = {"train": len(rest)}
    if extra is not None:
        more, more_lengths = load_features(extra, extra_ids, segments, pad)
        keep = [(x, n) for x, n in ((unlabeled, lengths), (more, more_lengths)) if len(x)]
        unlabeled = torch.cat([x for x, _ in keep]) if keep else lab.x[:0]
        lengths = torch.cat([n for _, n in keep]) if keep else lab.lengths[:0]
        sources[semi.unlabeled] = len(extra_ids)
    return SemiData(root, index, lab, unlabeled, lengths, scored(val), scored(test), sources)


def build_model(semi: SemiConfig, in_dim: int, segments: int, task: str,
                classes: dict[str, int] | None = None) -> S4AQA:
    """The model of `task` ("s4aqa" with decoder and discriminator, "regress" without, "mtl-features"
    with the execution head and a dive head per entry of `classes`)."""
    return build_s4aqa(task, in_dim, segments, semi.width, semi.layers, semi.heads, semi.dropout, classes)


def endless_batches(n: int, size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches (size,) over range(n), reshuffled after each pass, forever (all n when n < size)."""
    while True:
        perm = torch.randperm(n, generator=gen)
        for b in range(0, max(n - size, 0) + 1, size):
            yield perm[b:b + size]


@dataclass
class Unlabelled:
    """The unlabelled side of training: batches of indices into SemiData.unlabeled and the generator of
    their order and masked positions (apart from the labelled order, so both tasks share that)."""

    batches: Iterator[torch.Tensor]
    gen: torch.Generator

    @classmethod
    def stream(cls, n: int, size: int, seed: int) -> Unlabelled:
        gen = torch.Generator().manual_seed(seed)
        return cls(endless_batches(n, size, gen), gen)


def step_losses(model: S4AQA, labelled: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                unlabelled: tuple[torch.Tensor, torch.Tensor] | None, semi: SemiConfig,
                gen: torch.Generator, targets: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> dict[str, torch.Tensor]:
    """One step's loss terms: "reg" on the labelled batch (xl (B_l, T, D), standardised scores zl
    (B_l,), lengths (B_l,)); with `targets` (standardised execution (B_l,), NaN where unknown; labels
    (B_l, 5) long, -1 where unknown) for a model with MTL heads, "exec" and "cls" on the same batch;
    with an unlabelled batch (xu (B_u, T, D), lengths (B_u,)), "rcvr" (λ1 > 0) on one masked segment
    per video drawn from `gen` among its real segments, and "adv" (λ2 > 0) of D on the labelled,
    unlabelled and masked unlabelled features."""
    xl, zl, nl = labelled
    f_l = model.pool(model.encode(xl, lengths=nl), nl)
    terms = {"reg": regression_loss(model.regress(f_l), zl)}
    if targets is not None:
        ze, labels = targets
        known = torch.isfinite(ze)
        if model.executor is not None and bool(known.any()):  # a batch without one adds no term
            terms["exec"] = regression_loss(model.execute(f_l)[known], ze[known])
        if len(model.classifiers):
            terms["cls"] = classification_loss(model.classify(f_l), labels)
    if unlabelled is None or not (semi.recovery_weight or semi.alignment_weight):
        return terms
    xu, nu = unlabelled
    if bool((nu >= xu.shape[1]).all()):  # equal lengths: the draw the SynDive experiments made
        masked = torch.randint(xu.shape[1], (len(xu),), generator=gen)
    else:
        masked = (torch.rand(len(xu), generator=gen) * nu).long().clamp(max=xu.shape[1] - 1)
    tokens = model.encode(xu, masked, nu)
    if semi.recovery_weight:
        terms["rcvr"] = recovery_loss(model.recover(tokens, masked), xu[torch.arange(len(xu)), masked])
    if semi.alignment_weight:
        f_u = torch.cat([model.pool(model.encode(xu, lengths=nu), nu), model.pool(tokens, nu)])
        terms["adv"] = alignment_loss(model.discriminate(f_l, semi.grl), model.discriminate(f_u, semi.grl))
    return terms


def total_loss(terms: dict[str, torch.Tensor], semi: SemiConfig, train=None) -> torch.Tensor:
    """L = L_reg + λ1 · L_rcvr + λ2 · L_adv, and for MTL heads + train.execution_weight · L_exec +
    train.cls_weight · L_cls (TrainConfig `train`; terms that were not computed count 0)."""
    weights = {"reg": 1.0, "rcvr": semi.recovery_weight, "adv": semi.alignment_weight,
               "exec": train.execution_weight if train else 1.0, "cls": train.cls_weight if train else 1.0}
    return sum(weights[k] * v for k, v in terms.items())


def train_one_epoch(model: S4AQA, optim: torch.optim.Optimizer, data: SemiData, cfg: RunConfig,
                    order: torch.Generator, unlabelled: Unlabelled | None) -> dict[str, float]:
    """One pass over the labelled subset in an order drawn from `order`, batches of train.batch_size
    (s4aqa: each with the next batch of `unlabelled`); returns each loss term's mean over the steps."""
    model.train()
    z = (data.labeled.y - model.score_mean) / model.score_std
    mtl = model.executor is not None or len(model.classifiers) > 0
    ze = (data.labeled.execution - model.exec_mean) / model.exec_std if model.executor is not None else \
        torch.full_like(z, math.nan)
    perm = torch.randperm(len(z), generator=order)
    sums: dict[str, float] = {}
    steps = range(0, len(perm), cfg.train.batch_size)
    for b in steps:
        idx = perm[b:b + cfg.train.batch_size]
        lab = (data.labeled.x[idx], z[idx], data.labeled.lengths[idx])
        unl, gen = None, None
        if unlabelled:
            u = next(unlabelled.batches)
            unl, gen = (data.unlabeled[u], data.unlabeled_lengths[u]), unlabelled.gen
        targets = (ze[idx], data.labeled.labels[idx]) if mtl else None
        terms = step_losses(model, lab, unl, cfg.semi, gen, targets)
        optim.zero_grad(set_to_none=True)
        total_loss(terms, cfg.semi, cfg.train).backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optim.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach())
    return {k: v / len(steps) for k, v in sums.items()}


def split_metrics(model: S4AQA, split: Split, lo: float, hi: float, synthetic: bool = False) -> dict:
    """n, spearman and relative_l2 (over the score range lo..hi) of the model on a scored split; for a
    model with MTL heads `aqa eval`'s whole report (evaluate.compute_metrics)."""
    from aqa_cli.evaluate import compute_metrics, predict_features, predict_features_outputs

    if not split.ids:
        return {}
    if model.executor is not None or len(model.classifiers):
        return compute_metrics(predict_features_outputs(model, split.x, split.lengths), split.samples, lo, hi,
                               synthetic=synthetic)
    return score_report(predict_features(model, split.x, split.lengths), split.y.numpy(), lo, hi)


def selected_spearman(metrics: dict, select: str = "score") -> float:
    """The Spearman that picks the epoch from `split_metrics`' report: its "spearman" (score-only
    models), or the `select` entry's ("score" or "expected_dd_x_execution", MTL heads); NaN when absent."""
    if "spearman" in metrics:
        return metrics["spearman"]
    value = (metrics.get(select) or {}).get("spearman")
    return math.nan if value is None else value


def train_semi(cfg: RunConfig, out_dir: str | Path, task: str = "s4aqa",
               log: Callable[[str], None] | None = None) -> dict:
    """Train `task` ("s4aqa" or "regress") on `cfg.data.root` and `cfg.semi.features`, writing the run
    directory `out_dir` (see the module docstring); returns the report. `log` gets one line per epoch.
    UsageError before any work for a bad request (task, values, a run directory holding a run,
    features of another root or made another way, s4aqa without unlabelled videos)."""
    import time

    out_dir = Path(out_dir)
    _check_request(cfg, out_dir, task)
    root = DatasetRoot(cfg.data.root)
    labeled = labeled_subset(_split(root, cfg.semi.group, "train"), cfg.semi.labeled_ratio, cfg.semi.labeled_seed)
    data = open_data(cfg, labeled)
    if task == "s4aqa" and not len(data.unlabeled):
        raise UsageError("--task s4aqa: no unlabelled videos (labeled_ratio 1 and no --unlabeled)",
                         hint="lower semi.labeled_ratio, add --unlabeled FEATS, or train --task regress")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "labeled.txt", "".join(i + "\n" for i in labeled))
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.semi, data.labeled.x.shape[2], data.labeled.x.shape[1], task, dict(cfg.model.classes))
    model.score_mean.fill_(float(data.labeled.y.mean()))
    model.score_std.fill_(float(data.labeled.y.std()) or 1.0)  # equal scores: standardise by 1 point
    if model.executor is not None:
        known = data.labeled.execution[torch.isfinite(data.labeled.execution)]
        if len(known) < 2:
            raise UsageError("--task mtl-features: fewer than 2 labelled videos with a known execution "
                             "(judges' marks, or a DD to divide the score by)", hint="train --task regress")
        model.exec_mean.fill_(float(known.mean()))
        model.exec_std.fill_(float(known.std()) or 1.0)
    adam = torch.optim.AdamW if cfg.train.optimizer == "adamw" else torch.optim.Adam
    optim = adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(optim, cfg.train.epochs)
             if cfg.train.scheduler == "cosine" else None)
    order = torch.Generator().manual_seed(cfg.train.seed)
    unlabelled = (Unlabelled.stream(len(data.unlabeled), cfg.semi.unlabeled_batch, cfg.train.seed + 1)
                  if task == "s4aqa" else None)
    lo, hi = score_range(data.root)
    best, best_rho, start = {"epoch": 0, "val": {}}, -math.inf, time.monotonic()
    (out_dir / "metrics.jsonl").write_text("")
    for epoch in range(1, cfg.train.epochs + 1):
        losses = train_one_epoch(model, optim, data, cfg, order, unlabelled)
        if sched is not None:
            sched.step()
        val = split_metrics(model, data.val, lo, hi, data.root.info.synthetic)
        rho = selected_spearman(val, cfg.train.select)
        if not data.val.ids or epoch == 1 or rho > best_rho:  # NaN never improves on a number
            best, best_rho = {"epoch": epoch, "val": val}, rho if math.isfinite(rho) else -math.inf
            _checkpoint(cfg, data, task, model, {"val": val}).save(out_dir / "best.pt")
        _append(out_dir / "metrics.jsonl", {"epoch": epoch, **losses, "val": val})
        if log:
            log(_epoch_line(epoch, cfg.train.epochs, losses, rho, best["epoch"] == epoch))
    return _finish(model, data, best, out_dir, task, (lo, hi), time.monotonic() - start, cfg.train.select)


def _check_request(cfg: RunConfig, out_dir: Path, task: str) -> None:
    """UsageError for an unknown task, no root or features, values out of range, or a run directory
    that is a file or already holds a run (runs on features take minutes: no --resume)."""
    if task not in TASKS:
        raise UsageError(f"--task {task}: features training runs {' or '.join(TASKS)}")
    select = cfg.train.select
    if select not in ("score", "expected_dd_x_execution") or (select != "score" and task != MTL_TASK):
        raise UsageError(f"train.select={select!r}: expected score, or expected_dd_x_execution for "
                         f"--task {MTL_TASK}", hint="--set train.select=score")
    if not cfg.data.root or not cfg.semi.features:
        raise UsageError("pass --data ROOT and --features FEATS (the features of that root)")
    check_values(cfg)
    if cfg.semi.width % cfg.semi.heads:
        raise UsageError(f"semi.width={cfg.semi.width}: must divide by semi.heads={cfg.semi.heads}")
    if cfg.train.optimizer not in ("adam", "adamw") or cfg.train.scheduler not in ("none", "cosine"):
        raise UsageError(f"train.optimizer={cfg.train.optimizer!r}, train.scheduler={cfg.train.scheduler!r}: "
                         "supported are adam|adamw and none|cosine")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file: give a folder for the run")
    held = [n for n in RUN_FILES if (out_dir / n).exists()]
    if held:
        raise UsageError(f"{out_dir} already holds a run ({', '.join(held)})", hint="choose another --out")


def _epoch_line(epoch: int, epochs: int, losses: dict[str, float], rho: float, best: bool) -> str:
    terms = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
    return f"epoch {epoch}/{epochs}  {terms}  val spearman {rho:.4f}{'  best' if best else ''}"


def _checkpoint(cfg: RunConfig, data: SemiData, task: str, model: S4AQA, metrics: dict) -> Checkpoint:
    """The run's model as an aqa checkpoint. ModelConfig and Preprocess describe the backbone's input
    (clip length, crop, [-1, 1] scaling, segments); the features' index is in data["features"] and the
    encoder's sizes in train_config["semi"] (see `load_model`)."""
    idx, info = data.index, data.root.info
    segments = data.labeled.x.shape[1]
    classes = {h: fc[-1].out_features for h, fc in model.classifiers.items()}
    return Checkpoint(
        model={k: v.detach().clone() for k, v in model.state_dict().items()},
        model_config=ModelConfig(backbone=idx.backbone, task=task, clip_len=idx.clip_len, crop_size=idx.size,
                                 feature_dim=cfg.semi.width, dropout=cfg.semi.dropout, classes=classes,
                                 execution=model.executor is not None, caption=False),
        # resize (0, 0): the backbone's frames are resized by their short side (index.size · 256 / 224),
        # which Preprocess cannot say; scoring must read data["features"] instead.
        preprocess=Preprocess(clips=segments, clip_len=idx.clip_len, resize=(0, 0), crop=idx.size,
                              mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), frames=info.frames),
        label_maps=label_maps(classes), train_config=to_dict(cfg), metrics=metrics,
        data={"name": info.name, "source": info.source, "synthetic": info.synthetic, "version": info.version,
              "train_samples": len(data.labeled.ids), "group": cfg.semi.group, "features": asdict(idx),
              # padded: variable lengths kept up to preprocess.clips positions (stride features), else
              # every sample resampled to preprocess.clips segments; evaluation reads them the same way
              "padded": bool(idx.stride and not cfg.semi.segments),
              "unlabeled": dict(data.sources)})


def _finish(model: S4AQA, data: SemiData, best: dict, out_dir: Path, task: str, lo_hi: tuple[float, float],
            seconds: float, select: str = "score") -> dict:
    """Test the best epoch's weights once, add the test metrics to best.pt and write report.json."""
    ckpt = Checkpoint.load(out_dir / "best.pt")
    model.load_state_dict(ckpt.model)
    test = split_metrics(model, data.test, *lo_hi, data.root.info.synthetic)
    ckpt.metrics = {"val": best["val"], "test": test}
    ckpt.save(out_dir / "best.pt")
    report = {"task": task, "best_epoch": best["epoch"],
              "selected_on": (f"val {select} spearman" if model.executor is not None else "val spearman")
              if data.val.ids else "last epoch (no val split)",
              "val": best["val"], "test": test, "labeled": len(data.labeled.ids), "unlabeled": data.sources,
              "train_seconds": round(seconds, 1), "data": ckpt.data}
    atomic_write_text(out_dir / "report.json", json.dumps(_jsonable(report), indent=2) + "\n")
    return report


def train_groups(cfg: RunConfig, out_dir: str | Path, groups: list[str], task: str = "s4aqa",
                 log: Callable[[str], None] | None = None) -> dict:
    """One model per group (RG: per apparatus) in out_dir/<group>/, then out_dir/report.json with each
    group's test Spearman and their Fisher-z average, as the RG papers report."""
    out_dir = Path(out_dir)
    reports = {}
    for group in groups:
        one = copy.deepcopy(cfg)
        one.semi.group = group
        reports[group] = train_semi(one, out_dir / group, task, log)
    rhos = {g: selected_spearman(r["test"]) for g, r in reports.items()}
    summary = {"task": task, "test_spearman": rhos, "fisher_z_mean": fisher_z_mean(list(rhos.values()))}
    atomic_write_text(out_dir / "report.json", json.dumps(_jsonable(summary), indent=2) + "\n")
    return summary


def _append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(_jsonable(record)) + "\n")


def _jsonable(obj):
    """NaN and infinities → None, so report files are strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
