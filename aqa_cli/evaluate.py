"""Evaluation: run a model over a dataset split and compute the honest metrics of `aqa eval`.

    predict(model, loader, ...)      → Predictions (numpy arrays + generated captions), batch by batch
    compute_metrics(pred, samples)   → the report dict (score, classes, dive number, DD × execution,
                                       captions, and the oracle ceiling on synthetic data)
    evaluate_checkpoint(weights, root, split)   → both, from a checkpoint file alone
    evaluate_features_checkpoint(weights, root, features, split)   → the same for a model on segment
                                       features (S4AQA / its baseline: a score only; mtl-features: the
                                       score, execution and dive heads), on the features folder it was
                                       trained on the like of
    evaluate_groups(run_dir, root, features, split)   → one features model per group (Rhythmic
                                       Gymnastics: per apparatus), each on its group, and the Fisher-z
                                       average of their Spearman, as the RG papers report
    prediction_rows(pred, samples)   → one row per sample, truth beside prediction (--predictions CSV)

Training calls `predict` + `compute_metrics` on the validation split every epoch and on the test split
once at the end; `aqa eval` calls `evaluate_checkpoint`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aqa_cli import rules, metrics
from aqa_cli.datasets.layout import DatasetRoot, Sample
from aqa_cli.storage import check_writable
from aqa_cli.rules import HEADS
from aqa_cli.text import Vocabulary


@dataclass
class Predictions:
    """Model outputs over a split, in split order. Arrays have shape (S,) for S samples."""

    score: np.ndarray
    execution: np.ndarray | None = None
    classes: dict[str, np.ndarray] = field(default_factory=dict)  # head → predicted class ids
    log_probs: dict[str, np.ndarray] = field(default_factory=dict)  # head → (S, K) log-probabilities
    captions: list[list[str]] | None = None  # generated commentary tokens


def predict(model, loader, device, vocab: Vocabulary | None = None, captions: bool = True,
            autocast: bool = False) -> Predictions:
    """Evaluate `model` (eval mode, no grad) on every batch of `loader` (see datasets/frames.py).

    captions: generate commentary greedily (only for models with a captioner; needs `vocab`).
    """
    import torch

    model.eval()
    scores, execs, log_probs, texts = [], [], {h: [] for h in HEADS}, []
    has_exec = has_cls = False
    with torch.no_grad():
        for batch in loader:
            clips = batch["clips"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                out = model(clips)
                if captions and vocab is not None:
                    ids = model.generate(clips)
                    texts.extend(vocab.decode(row.tolist()) for row in ids.cpu())
            scores.append(out["score"].float().cpu())
            if "execution" in out:
                has_exec = True
                execs.append(out["execution"].float().cpu())
            for head, logits in (out.get("logits") or {}).items():
                has_cls = True
                log_probs[head].append(torch.log_softmax(logits.float(), -1).cpu())
    cat = lambda xs: torch.cat(xs).numpy() if xs else np.zeros(0)  # noqa: E731
    return Predictions(
        score=cat(scores),
        execution=cat(execs) if has_exec else None,
        classes={h: cat(v).argmax(-1) for h, v in log_probs.items()} if has_cls else {},
        log_probs={h: cat(v) for h, v in log_probs.items()} if has_cls else {},
        captions=texts if texts else None,
    )


def has_captioner(cfg) -> bool:
    """Whether a model built from ModelConfig `cfg` has a commentary head."""
    return cfg.task == "mtl" and cfg.caption


def score_range(root: DatasetRoot) -> tuple[float, float]:
    """(lowest, highest) final score over every sample of the root: R-ℓ2's normaliser."""
    values = [s.final_score for s in root.samples.values()]
    return (min(values), max(values)) if values else (0.0, 1.0)


def compute_metrics(pred: Predictions, samples: list[Sample], lo: float, hi: float,
                    synthetic: bool = False) -> dict:
    """Every number `aqa eval` reports for predictions `pred` of `samples` (same order).

    score:        n, spearman, relative_l2 (×100 over the dataset's range lo..hi)
    accuracy:     per head and `dive_number` (all five heads right), on samples with that label
    dd_x_execution: DD(predicted dive number, height) × predicted execution, where both are known
    expected_dd_x_execution: the expected DD of the predicted dive at its height (rules.expected_difficulty,
                  from `log_probs`) × predicted execution, or the score head where the heads read no dive
                  listed at that height: the final score `aqa score --height` reports
    known_dd_x_execution: the sample's own DD × predicted execution: what `aqa score --dd` reports when
                  the DD is taken from the scoresheet (competitions announce each dive's DD)
    captions:     bleu4, cider_d against the sample's commentary
    oracle:       synthetic roots only: Spearman(expected_score, final_score), the best any model can do
    """
    true = np.array([s.final_score for s in samples], dtype=float)
    report: dict = {"score": metrics.score_report(pred.score, true, lo, hi)}
    if pred.classes:
        acc = {}
        for head, p in pred.classes.items():
            t = np.array([getattr(s, head) for s in samples])
            known = t >= 0
            acc[head] = metrics.accuracy(p[known], t[known])
        numbers = [_dive_number(pred, i, s.height) for i, s in enumerate(samples)]
        known = [i for i, s in enumerate(samples) if s.dive_number]
        acc["dive_number"] = metrics.accuracy([numbers[i] for i in known],
                                              [samples[i].dive_number for i in known])
        report["accuracy"] = acc
        if pred.execution is not None:
            report["dd_x_execution"] = _times_execution(
                [rules.table_difficulty(n, s.height) for n, s in zip(numbers, samples)], pred, samples, lo, hi)
            if pred.log_probs:
                report["expected_dd_x_execution"] = _scored(
                    [_rules_score(pred, i, s.height)[0] for i, s in enumerate(samples)], samples, lo, hi)
    if pred.execution is not None:
        from aqa_cli.datasets.frames import execution_target

        if any(s.difficulty > 0 for s in samples):
            report["known_dd_x_execution"] = _times_execution(
                [s.difficulty if s.difficulty > 0 else None for s in samples], pred, samples, lo, hi)

        t = np.array([execution_target(s) for s in samples])
        ok = np.isfinite(t)
        report["execution"] = {"n": int(ok.sum()), "spearman": metrics.spearman(pred.execution[ok], t[ok])}
    if pred.captions is not None:
        refs = {i: [s.commentary.split()] for i, s in enumerate(samples) if s.commentary.strip()}
        hyps = {i: pred.captions[i] for i in refs}
        report["captions"] = ({"n": len(refs), "bleu4": metrics.bleu4(refs, hyps),
                               "cider_d": metrics.cider_d(refs, hyps)} if refs else {"n": 0})
    expected = [s.expected_score for s in samples]
    if synthetic and samples and all(e is not None for e in expected):
        report["oracle"] = {"spearman": metrics.spearman(expected, true)}
    return report


def _dive_number(pred: Predictions, i: int, height: str | None) -> str:
    """The dive number the five predicted classes spell at `height`, or "" when they spell no valid dive."""
    return rules.number_from_classes({h: pred.classes[h][i] for h in HEADS}, height) or ""


def _scored(scores: list[float | None], samples: list[Sample], lo: float, hi: float) -> dict:
    """Spearman and relative L2 of `scores` against the final scores, over the samples that have one."""
    keep = [i for i, v in enumerate(scores) if v is not None]
    if not keep:
        return {"n": 0, "spearman": math.nan, "relative_l2": math.nan}
    return metrics.score_report([scores[i] for i in keep], [samples[i].final_score for i in keep], lo, hi)


def _times_execution(dds: list[float | None], pred: Predictions, samples: list[Sample], lo: float,
                     hi: float) -> dict:
    """`_scored` of DD × predicted execution (as `aqa score --dd` computes it), over the samples whose DD
    (`dds[i]`) is known."""
    return _scored([rules.predicted_final(pred.score[i], pred.execution[i], dd=dd).final_score if dd is not None
                    else None for i, dd in enumerate(dds)], samples, lo, hi)


def _rules_score(pred: Predictions, i: int, height: str | None) -> tuple[float | None, float | None]:
    """The final score `aqa score --height` gives sample i, and its DD (None where the heads read no dive
    listed at `height`, and the score head is the final); (None, None) without a known height."""
    if not height:
        return None, None
    verdict = rules.predicted_final(pred.score[i], pred.execution[i], {h: v[i] for h, v in pred.log_probs.items()},
                                    height)
    return verdict.final_score, verdict.difficulty


def prediction_rows(pred: Predictions, samples: list[Sample]) -> list[dict[str, object]]:
    """One row per sample (split order) for `aqa eval --predictions`: the truth beside each prediction,
    for looking at the errors behind the metrics. Columns the model does not predict are left out
    (an STL model: id, height, final_score, score); a value that is not known is "".

    score: the score head; rules_score: the expected DD × predicted execution (compute_metrics'
    expected_dd_x_execution); expected_dd: its DD; dive_number_pred: the five argmax classes' number.
    """
    def num(x) -> object:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)

    rows = []
    for i, s in enumerate(samples):
        row: dict[str, object] = {"id": s.id, "height": s.height, "final_score": s.final_score,
                                  "score": num(pred.score[i])}
        if pred.execution is not None:
            row["execution"] = num(pred.execution[i])
            row["difficulty"] = num(s.difficulty) if s.difficulty > 0 else ""
        if pred.log_probs and pred.execution is not None:
            final, dd = _rules_score(pred, i, s.height)
            row["rules_score"], row["expected_dd"] = num(final), num(dd)
        if pred.classes:
            row["dive_number"] = s.dive_number
            row["dive_number_pred"] = _dive_number(pred, i, s.height)
            for head in pred.classes:
                truth = getattr(s, head)
                row[head] = truth if truth >= 0 else ""
                row[f"{head}_pred"] = int(pred.classes[head][i])
        if pred.captions is not None:
            row["commentary_pred"] = " ".join(pred.captions[i])
        rows.append(row)
    return rows


def evaluate_checkpoint(weights: str | Path, data_root: str | Path, split: str = "test",
                        device: str = "auto", batch_size: int = 4, workers: int = 0,
                        predictions: str | Path | None = None) -> dict:
    """Load a checkpoint, run it on `split` of `data_root` and return the report (see compute_metrics)
    with `split`, `weights`, `data` and `samples` added.

    predictions: also write `prediction_rows` to this CSV file (atomically: whole or not at all).
    """
    from torch.utils.data import DataLoader

    from aqa_cli.checkpoint import Checkpoint
    from aqa_cli.datasets.frames import FramesDataset, collate
    from aqa_cli.device import resolve_device
    from aqa_cli.errors import UsageError
    from aqa_cli.weights import find_weights

    weights_path = find_weights(weights)  # a file, or a name as `aqa score --weights` takes
    if predictions is not None:  # checked before minutes of evaluation, not after
        _check_predictions(str(predictions), weights_path, Path(data_root))
    dev = resolve_device(device)
    ckpt = Checkpoint.load(weights_path)
    if ckpt.on_features:
        raise UsageError(f"{weights} is a model on segment features (task {ckpt.model_config.task})",
                         hint="add --features FEATS: the root's features, extracted as its training features were")
    model = ckpt.build_model().to(dev)
    root = DatasetRoot(data_root)
    mcfg = ckpt.model_config
    dcfg = ckpt.preprocess.data_config(data_root, workers)
    vocab = Vocabulary(ckpt.vocab) if ckpt.vocab else None
    ds = FramesDataset(root, split, dcfg, mcfg, vocab=None, train=False)
    if not len(ds):
        raise UsageError(f"{root.root}: the {split} split is empty: nothing to evaluate")
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate)
    pred = predict(model, loader, dev, vocab, captions=has_captioner(mcfg), autocast=dev.type == "cuda")
    lo, hi = score_range(root)
    report = compute_metrics(pred, ds.samples, lo, hi, synthetic=root.info.synthetic)
    report.update(split=split, weights=str(weights), samples=len(ds),
                  data={"name": root.info.name, "source": root.info.source, "synthetic": root.info.synthetic})
    if predictions is not None:
        _write_csv(Path(predictions), prediction_rows(pred, ds.samples))
    return report


def _check_predictions(text: str, weights: Path, data_root: Path) -> None:
    """UsageError unless the predictions CSV can be written at `text` without replacing an input: the
    weights, or anything inside the dataset root (its annotations, a video)."""
    import os

    from aqa_cli.errors import UsageError

    if text.endswith(("/", os.sep)):
        raise UsageError(f"--predictions {text}: names a folder; give a CSV file name")
    path = Path(text)
    check_writable(path, "--predictions")
    target = path.resolve()
    if target == weights.resolve() or data_root.resolve() in target.parents:
        raise UsageError(f"--predictions {text}: would overwrite an input (the weights or a file of the dataset)",
                         hint="write the rows outside the dataset root, e.g. --predictions rows.csv")


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    import csv
    import io

    from aqa_cli.storage import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def group_samples(root: DatasetRoot, samples: list[Sample], group: str) -> list[Sample]:
    """`samples` of `group` (Rhythmic Gymnastics: the apparatus, `Sample.apparatus`); all of them when
    `group` is ""; UsageError naming the root's groups when none is in it."""
    if not group:
        return samples
    found = sorted({s.apparatus for s in root.samples.values() if s.apparatus})
    if group not in found:
        from aqa_cli.errors import UsageError

        raise UsageError(f"{root.root}: no samples of apparatus {group!r}"
                         + (f" (it has {', '.join(found)})" if found else " (its samples have no apparatus)"),
                         hint="Rhythmic Gymnastics roots come from `aqa data prepare rg`")
    return [s for s in samples if s.apparatus == group]


def predict_features(model, x, lengths=None, batch: int = 256) -> np.ndarray:
    """Scores in points (N,) of a features model (models/s4aqa.py) on x float (N, T, D) with lengths
    long (N,) or None, in eval mode, `batch` samples at a time."""
    return predict_features_outputs(model, x, lengths, batch).score


def predict_features_outputs(model, x, lengths=None, batch: int = 256) -> Predictions:
    """Predictions of a features model (models/s4aqa.py) on x float (N, T, D) with lengths long (N,)
    or None, in eval mode, `batch` samples at a time: the score (N,), and the execution (N,) and each
    dive head's classes (N,) and log-probabilities (N, K) where the model has those heads."""
    import torch

    model.eval()
    if not len(x):
        return Predictions(score=np.zeros(0))
    with torch.no_grad():
        outs = [model(x[b:b + batch], None if lengths is None else lengths[b:b + batch])
                for b in range(0, len(x), batch)]
    log_probs = {h: torch.cat([torch.log_softmax(o["logits"][h].float(), -1) for o in outs]).numpy()
                 for h in (outs[0].get("logits") or {})}
    return Predictions(score=torch.cat([o["score"] for o in outs]).numpy(),
                       execution=torch.cat([o["execution"] for o in outs]).numpy() if "execution" in outs[0] else None,
                       classes={h: v.argmax(-1) for h, v in log_probs.items()}, log_probs=log_probs)


def evaluate_features_checkpoint(weights: str | Path, data_root: str | Path, features: str | Path,
                                 split: str = "test", predictions: str | Path | None = None) -> dict:
    """A features model's report (see compute_metrics: the score, and the oracle on synthetic roots; with
    MTL heads also the execution, each head's accuracy, the dive number and DD × execution) on
    `split` of `data_root` read from `features`, which must be made as the model's training features
    were (backbone, weights, sampling) and from this root; a model of one group (apparatus) is
    measured on that group's samples. UsageError for a checkpoint on frames, other features, or an
    empty split."""
    from aqa_cli.checkpoint import Checkpoint
    from aqa_cli.datasets.features import FeatureIndex, load_features, open_features
    from aqa_cli.errors import UsageError
    from aqa_cli.weights import find_weights

    weights_path = find_weights(weights)
    if predictions is not None:
        _check_predictions(str(predictions), weights_path, Path(data_root))
    ckpt = Checkpoint.load(weights_path)
    if not ckpt.on_features:
        raise UsageError(f"--features: {weights} is a model on frames (task {ckpt.model_config.task}), not on "
                         "segment features", hint="drop --features")
    model = ckpt.build_model()
    root = DatasetRoot(data_root)
    folder = open_features(features, root.info, FeatureIndex(**ckpt.data["features"]), "--features")
    group = ckpt.data.get("group", "")
    samples = group_samples(root, root.split(split), group)
    if not samples:
        raise UsageError(f"{root.root}: the {split} split{' of ' + group if group else ''} is empty: nothing "
                         "to evaluate")
    x, lengths = load_features(folder, [s.id for s in samples], *ckpt.feature_positions())
    pred = predict_features_outputs(model, x, lengths)
    report = compute_metrics(pred, samples, *score_range(root), synthetic=root.info.synthetic)
    report.update(split=split, weights=str(weights), samples=len(samples), task=ckpt.model_config.task,
                  group=group, data={"name": root.info.name, "source": root.info.source,
                                     "synthetic": root.info.synthetic})
    if predictions is not None:
        _write_csv(Path(predictions), prediction_rows(pred, samples))
    return report


def evaluate_groups(run_dir: str | Path, data_root: str | Path, features: str | Path,
                    split: str = "test") -> dict:
    """Every `run_dir/<group>/best.pt` (as `aqa train --apparatus all` writes them) on its group, and
    the Fisher-z average of their Spearman: {"<group>": score report, ..., "fisher_z_mean":
    {"spearman"}}, with split, weights, samples and data as evaluate_checkpoint has them."""
    from aqa_cli.errors import UsageError

    runs = sorted(p.parent for p in Path(run_dir).glob("*/best.pt"))
    if not runs:
        raise UsageError(f"--weights {run_dir}: a folder without <group>/best.pt runs",
                         hint="give a checkpoint file, or the --out of `aqa train --apparatus all`")
    groups = {}
    for run in runs:
        one = evaluate_features_checkpoint(run / "best.pt", data_root, features, split)
        groups[one["group"] or run.name] = one["score"]
    rhos = [v["spearman"] for v in groups.values()]
    return {**groups, "fisher_z_mean": {"spearman": metrics.fisher_z_mean(rhos)}, "split": split,
            "weights": str(run_dir), "samples": sum(v["n"] for v in groups.values()), "data": one["data"]}
