"""What a dataset root holds, for `aqa data info`: counts, label histograms, ranges, missing files.

`summarize(root)` works on any root in the common layout (MTL-AQA, SynDive, ...) and returns a plain
dict (the JSON of `aqa data info -f json`). Its keys:

    root, name, source, version, synthetic   from dataset.yaml
    counts          {"train", "val", "test", "total"}: samples per split (from splits/*.txt)
    labels          {head: {class name: count}} for position, armstand, rotation_type, ss_no, tw_no
                    over all samples; samples without the label count under "unknown"
    final_score     {"min", "max", "mean", "std"} over all samples (null when there are none)
    difficulty      {"min", "max", "distinct"}: DD range and number of distinct DD values
    heights         {"1m", ..., "10m", "unknown": count}
    judges          {"<panel size>": count}: how many samples carry 5, 7, 11 ... marks ("0": none)
    dive_numbers    number of distinct dive numbers
    vocabulary      {"train": words in the training captions, "all": in all captions, "captioned":
                    samples with a caption}; word counts include the 3 special tokens, as a
                    Vocabulary built from those captions would (text.py)
    frames          {"expected_shape": [T, H, W, 3], "present", "missing", "corrupt" (counts),
                    "missing_ids", "corrupt_ids" (at most 20 each)}
    oracle_spearman synthetic roots only: Spearman correlation of expected_score (the noise-free
                    score) with final_score on the test split, the best any model can reach; null when
                    not synthetic or fewer than ORACLE_MIN test dives carry expected_score
    extra           dataset.yaml's source-specific facts
    warnings        one line each: what looks wrong but does not stop the summary (missing split
                    files, an oracle left out for too few test dives)
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import numpy as np

from aqa_cli.datasets.layout import SPLITS, DatasetRoot, Sample
from aqa_cli.rules import HEIGHTS, LABEL_NAMES
from aqa_cli.text import Vocabulary

LIST_LIMIT = 20  # ids listed per problem kind; the counts are complete
ORACLE_MIN = 3  # test dives below which a rank correlation says nothing (2 dives give ±1)


def summarize(root: str | Path) -> dict:
    """Summary of the dataset root at `root` (see the module docstring for the keys)."""
    ds = DatasetRoot(root)
    samples = list(ds.samples.values())
    splits = {name: _split_or_empty(ds, name) for name in SPLITS}
    warnings = []
    absent = [f"splits/{name}.txt" for name in SPLITS if not (ds.root / "splits" / f"{name}.txt").is_file()]
    if absent:
        warnings.append(f"{ds.root}: missing {', '.join(absent)} (counted as empty)")
    oracle = None
    if ds.info.synthetic:
        oracle, n = _oracle(splits["test"])
        if n < ORACLE_MIN:
            warnings.append(f"oracle Spearman left out: {n} test dives with expected_score (need {ORACLE_MIN})")
    return {
        "root": str(ds.root), "name": ds.info.name, "source": ds.info.source,
        "version": ds.info.version, "synthetic": ds.info.synthetic,
        "counts": {**{name: len(ids) for name, ids in splits.items()}, "total": len(samples)},
        "labels": _label_histograms(samples),
        "final_score": _stats([s.final_score for s in samples]),
        "difficulty": _dd_range(samples),
        "heights": _heights(samples),
        "judges": {str(k): v for k, v in sorted(Counter(len(s.judge_scores) for s in samples).items())},
        "dive_numbers": len({s.dive_number for s in samples if s.dive_number}),
        "vocabulary": {
            "train": len(Vocabulary.build(s.commentary for s in splits["train"])),
            "all": len(Vocabulary.build(s.commentary for s in samples)),
            "captioned": sum(1 for s in samples if s.commentary),
        },
        "frames": _frames(ds, samples),
        "oracle_spearman": oracle,
        "extra": ds.info.extra,
        "warnings": warnings,
    }


def _split_or_empty(ds: DatasetRoot, name: str) -> list[Sample]:
    return ds.split(name) if (ds.root / "splits" / f"{name}.txt").is_file() else []


def _label_histograms(samples: list[Sample]) -> dict[str, dict[str, int]]:
    out = {}
    for head, names in LABEL_NAMES.items():
        counts = Counter(getattr(s, head) for s in samples)
        hist = {name: counts.pop(i, 0) for i, name in enumerate(names)}
        unknown = counts.pop(-1, 0)
        hist.update({str(k): v for k, v in sorted(counts.items())})  # codes beyond the heads' classes
        if unknown:
            hist["unknown"] = unknown
        out[head] = hist
    return out


def _stats(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"min": min(values), "max": max(values), "mean": round(statistics.fmean(values), 3),
            "std": round(statistics.pstdev(values), 3)}


def _dd_range(samples: list[Sample]) -> dict | None:
    dds = [s.difficulty for s in samples if s.difficulty > 0]
    if not dds:
        return None
    return {"min": min(dds), "max": max(dds), "distinct": len(set(dds))}


def _heights(samples: list[Sample]) -> dict[str, int]:
    counts = Counter(s.height or "unknown" for s in samples)
    return {h: counts[h] for h in (*HEIGHTS, "unknown") if counts[h]}


def _frames(ds: DatasetRoot, samples: list[Sample]) -> dict:
    """Check every frames/<id>.npy from its header only (memory-mapped): shape and dtype."""
    info = ds.info
    expected = (info.frames + 2 * info.pad, info.height, info.width, 3)
    missing, corrupt = [], []
    for s in samples:
        path = ds.frames_path(s.id)
        if not path.is_file():
            missing.append(s.id)
            continue
        try:
            arr = np.load(path, mmap_mode="r")
            ok = arr.dtype == np.uint8 and arr.shape == expected
        except (ValueError, OSError, EOFError):
            ok = False
        if not ok:
            corrupt.append(s.id)
    return {"expected_shape": list(expected), "present": len(samples) - len(missing) - len(corrupt),
            "missing": len(missing), "corrupt": len(corrupt),
            "missing_ids": missing[:LIST_LIMIT], "corrupt_ids": corrupt[:LIST_LIMIT]}


def _oracle(test: list[Sample]) -> tuple[float | None, int]:
    """(Spearman of expected_score with final_score, or None; the number of dives it is over)."""
    pairs = [(s.expected_score, s.final_score) for s in test if s.expected_score is not None]
    if len(pairs) < ORACLE_MIN:
        return None, len(pairs)
    from scipy.stats import spearmanr

    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return (None if np.isnan(rho) else round(float(rho), 4)), len(pairs)
