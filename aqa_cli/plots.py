"""Figures for practitioners: training curves of one or more runs, and evaluation plots.

    plot_curves([RUN, ...], out.png)        RUN/metrics.jsonl per epoch: the loss terms, validation
                                            Spearmans and head accuracies, the chosen epoch marked;
                                            several runs overlaid, one colour each
    plot_eval(report, rows, out_dir)        predicted against judged score, a confusion matrix per dive
                                            head, the per-sample errors sorted (aqa eval's report dict
                                            and evaluate.prediction_rows, or the --predictions CSV's rows)

matplotlib is an extra (`pip install 'aqa[plots]'`), imported only inside these functions; they draw
with its object API on the Agg canvas (no pyplot state, no display needed). Each PNG is written
atomically, so a viewer refreshing RUN/curves.png during training never reads half a file.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aqa_cli.errors import UsageError
from aqa_cli.rules import HEADS, LABEL_NAMES
from aqa_cli.storage import atomic_write_bytes

PANEL = (3.3, 2.5)  # inches per subplot
DPI = 100
COLUMNS = 4

# The validation numbers drawn, where a run has them: (metrics key, panel title).
SPEARMANS = (("score", "score head"), ("expected_dd_x_execution", "expected DD × execution"),
             ("known_dd_x_execution", "own DD × execution"), ("execution", "execution"))
CAPTIONS = (("bleu4", "BLEU-4"), ("cider_d", "CIDEr-D"))
ACCURACIES = (*HEADS, "dive_number")
HEAD_TITLES = {"rotation_type": "direction", "ss_no": "somersaults", "tw_no": "twists"}  # ticks count turns


def _figure(rows: int, columns: int, size: tuple[float, float] = PANEL):
    """A matplotlib Figure of rows × columns panels, or a one-line UsageError without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise UsageError("plots need matplotlib, which is not installed: pip install 'aqa[plots]'") from None
    fig = Figure(figsize=(columns * size[0], rows * size[1]), dpi=DPI, layout="constrained")
    return fig, fig.subplots(rows, columns, squeeze=False)


def _save(fig, out: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(out, buf.getvalue())
    return out


# ---------------------------------------------------------------------------------------------
# Training curves


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The epochs of RUN/metrics.jsonl in order (a line that is not a JSON object with an epoch, e.g.
    one cut off by a crash, is skipped); UsageError when the run has no metrics file."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise UsageError(f"{run_dir}: no metrics.jsonl (not an aqa training run, or no epoch finished yet)")
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            records.append(record)
    return sorted(records, key=lambda r: r["epoch"])


def chosen_epoch(run_dir: str | Path, records: Sequence[Mapping[str, Any]], select: str | None = None) -> int | None:
    """The epoch whose checkpoint the run keeps (0-based, as metrics.jsonl counts): report.json's
    `best_epoch` once the run has finished, else the best validation Spearman of `selection_metric`
    so far (None before any epoch had one)."""
    report = _read_json(Path(run_dir) / "report.json")
    if isinstance(report.get("best_epoch"), int) and report["best_epoch"] >= 0:
        return report["best_epoch"]
    metric = selection_metric(run_dir, select)
    scored = [(v, r["epoch"]) for r in records if (v := _number(_get(r, "val", metric, "spearman"))) is not None]
    return max(scored, key=lambda item: (item[0], -item[1]))[1] if scored else None  # ties: the first epoch


def selection_metric(run_dir: str | Path, select: str | None = None) -> str:
    """The validation score whose Spearman picks the run's epoch: `select` (train.select) when given,
    else the one report.json names ("val expected_dd_x_execution spearman"), else "score" (the default)."""
    words = str(_read_json(Path(run_dir) / "report.json").get("selected_on", "")).split()
    return select or (words[1] if len(words) == 3 and words[0] == "val" else "score")


def plot_curves(run_dirs: Sequence[str | Path], out: str | Path, *, select: str | None = None) -> Path:
    """Draw the training curves of one or more runs into the PNG `out`; returns `out`.

    One panel per quantity any run has: the mean training loss (total, then each term), the validation
    Spearman of each score the run measures, BLEU-4 / CIDEr-D, and each head's validation accuracy;
    x is the epoch counted from 1, as `aqa train` prints it. Each run is one colour, named in the legend
    by its folder, the epoch it keeps (`chosen_epoch`; `select` as there) and its validation size; a
    dashed line of its colour marks that epoch, and the panel of the metric that picks it says so.
    """
    if not run_dirs:
        raise UsageError("plot_curves: give at least one run directory")
    runs = [(Path(d), read_metrics(d)) for d in run_dirs]
    panels = _curve_panels([records for _, records in runs])
    if not panels:
        raise UsageError(f"{', '.join(str(d) for d in run_dirs)}: metrics.jsonl holds no epoch yet")
    fig, axes = _figure(math.ceil(len(panels) / COLUMNS), min(COLUMNS, len(panels)))
    flat = list(axes.flat)
    names = _run_names([d for d, _ in runs])
    picks = {("val", selection_metric(d, select), "spearman") for d, _ in runs}
    for k, (run_dir, records) in enumerate(runs):
        colour = f"C{k % 10}"
        best = chosen_epoch(run_dir, records, select)
        for (_, path, _), ax in zip(panels, flat):
            xs, ys = _series(records, path)
            ax.plot(xs, ys, color=colour, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.4,
                    label=_run_label(names[k], best, records))
            if best is not None:
                ax.axvline(best + 1, color=colour, linestyle="--", linewidth=1, alpha=0.7)
    for (title, path, limits), ax in zip(panels, flat):
        ax.set_title(title + (" (picks the epoch)" if path in picks else ""), fontsize=10,
                     fontweight="bold" if path in picks else "normal")
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if limits:
            ax.set_ylim(*limits)
    for ax in flat[len(panels):]:
        ax.set_axis_off()
    handles, labels = flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(runs), 3), fontsize=9, frameon=False)
    return _save(fig, Path(out))


def _run_label(name: str, best: int | None, records: Sequence[Mapping[str, Any]]) -> str:
    """"run-a: keeps epoch 5 (dashed), val 8 dives": the legend entry of one run."""
    label = name + (f": keeps epoch {best + 1} (dashed)" if best is not None else "")
    sizes = [n for r in records if (n := _number(_get(r, "val", "score", "n"))) is not None]
    return label + (f", val {int(sizes[-1])} dives" if sizes else "")


def _curve_panels(runs: Sequence[Sequence[Mapping[str, Any]]]) -> list[tuple[str, tuple[str, ...], tuple | None]]:
    """(title, key path into a metrics record, y limits) of every quantity at least one run has."""
    records = [r for run in runs for r in run]
    terms = dict.fromkeys(k for r in records for k in r if k.startswith("train_") and k != "train_loss")
    candidates = [("training loss (total)", ("train_loss",), None)]
    candidates += [(f"training loss: {k.removeprefix('train_')}", (k,), None) for k in terms]
    candidates += [(f"val Spearman: {title}", ("val", key, "spearman"), (-1.05, 1.05)) for key, title in SPEARMANS]
    candidates += [(f"val {title}", ("val", "captions", key), None) for key, title in CAPTIONS]
    candidates += [(f"val accuracy: {head}", ("val", "accuracy", head), (-0.05, 1.05)) for head in ACCURACIES]
    return [c for c in candidates if any(_number(_get(r, *c[1])) is not None for r in records)]


def _series(records: Iterable[Mapping[str, Any]], path: tuple[str, ...]) -> tuple[list[int], list[float]]:
    """Epochs (from 1) and values of one quantity, skipping epochs without it (NaN is stored as null)."""
    points = [(r["epoch"] + 1, v) for r in records if (v := _number(_get(r, *path))) is not None]
    return [x for x, _ in points], [y for _, y in points]


def _run_names(run_dirs: Sequence[Path]) -> list[str]:
    """Each run's folder name, or its whole path where two runs share a name."""
    names = [d.name or str(d) for d in run_dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, run_dirs)]


def _get(record: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(record, Mapping):
            return None
        record = record.get(key)
    return record


def _number(value: Any) -> float | None:
    """A finite float from a metrics or CSV value (None, "", NaN and text read as missing)."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------------------------
# Evaluation


def plot_eval(report: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """Draw `aqa eval`'s plots into `out_dir`; returns the PNGs written.

    report: the dict `evaluate.evaluate_checkpoint` returns (its Spearmans title the scatter). rows:
    `evaluate.prediction_rows` (or the --predictions CSV read back: numbers as text, "" for unknown).

        scores.png     predicted against judged final score, with y = x; the rules' score (expected DD ×
                       execution, what `aqa score --height` reports) where the rows have it, and the score head
        confusion.png  one confusion matrix per dive head, truth down, prediction across (MTL models)
        errors.png     |predicted − judged| per sample, largest first, the worst five listed by sample id
    """
    if not rows:
        raise UsageError("plot_eval: no prediction rows to plot")
    out_dir = Path(out_dir)
    written = [_scores_plot(report, rows, out_dir / "scores.png")]
    heads = [h for h in HEADS if any(_number(r.get(h)) is not None for r in rows) and f"{h}_pred" in rows[0]]
    if heads:
        written.append(_confusion_plot(report, rows, heads, out_dir / "confusion.png"))
    written.append(_errors_plot(rows, out_dir / "errors.png"))
    return written


def _predicted(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """Which prediction column the error plots read: (column, report key of its Spearman, its name)."""
    if all(_number(r.get("rules_score")) is not None for r in rows):
        return "rules_score", "expected_dd_x_execution", "expected DD × execution"
    return "score", "score", "score head"


def _pairs(rows: Sequence[Mapping[str, Any]], column: str) -> list[tuple[float, float, str]]:
    """(judged, predicted, id) of the rows where both are known."""
    out = []
    for r in rows:
        truth, pred = _number(r.get("final_score")), _number(r.get(column))
        if truth is not None and pred is not None:
            out.append((truth, pred, str(r.get("id", ""))))
    return out


def _scores_plot(report: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], out: Path) -> Path:
    fig, axes = _figure(1, 1, (5.6, 5.2))
    ax = axes[0, 0]
    main, key, name = _predicted(rows)
    series = [(main, key, name, "C0")] + ([("score", "score", "score head", "C1")] if main != "score" else [])
    everything = []
    for column, metric, label, colour in series:
        pairs = _pairs(rows, column)
        everything += pairs
        rho = _number(_get(report, metric, "spearman"))
        ax.scatter([p[0] for p in pairs], [p[1] for p in pairs], s=14, alpha=0.6 if column == main else 0.35,
                   color=colour, label=f"{label}: ρ {rho:.3f}" if rho is not None else label)
    lo = min(min(p[0], p[1]) for p in everything)
    hi = max(max(p[0], p[1]) for p in everything)
    ax.plot([lo, hi], [lo, hi], color="0.4", linewidth=1, linestyle=":", label="predicted = judged")
    rho = _number(_get(report, key, "spearman"))
    where = f"{report.get('split', '')} split, {len(rows)} dives".strip(", ")
    ax.set_title(f"Spearman {rho:.3f} ({name})\n{where}" if rho is not None else f"{name}\n{where}", fontsize=11)
    ax.set_xlabel("judged final score")
    ax.set_ylabel("predicted final score")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, out)


def _confusion_plot(report: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], heads: Sequence[str],
                    out: Path) -> Path:
    import numpy as np

    fig, axes = _figure(1, len(heads), (3.4, 4.0))
    for head, ax in zip(heads, axes[0]):
        pairs = [(int(t), int(p)) for r in rows
                 if (t := _number(r.get(head))) is not None and (p := _number(r.get(f"{head}_pred"))) is not None]
        size = max(max(max(pair) for pair in pairs) + 1, len(LABEL_NAMES.get(head, ())))
        counts = np.zeros((size, size), int)
        for t, p in pairs:
            counts[t, p] += 1
        names = LABEL_NAMES.get(head, [])
        ticks = [names[k] if k < len(names) else str(k) for k in range(size)]
        # Rows normalised: the colour is the share of each true class, so rare classes show their errors too.
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (t, p), n in np.ndenumerate(counts):
            if n:
                ax.text(p, t, str(n), ha="center", va="center", fontsize=8,
                        color="white" if shares[t, p] > 0.6 else "black")
        ax.set_xticks(range(size), ticks, fontsize=7, rotation=90 if size > 4 else 0)
        ax.set_yticks(range(size), ticks, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        accuracy = _number(_get(report, "accuracy", head))
        title = f"{HEAD_TITLES[head]} ({head})" if head in HEAD_TITLES else head
        ax.set_title(f"{title}\naccuracy {accuracy:.3f}, {len(pairs)} dives" if accuracy is not None else title,
                     fontsize=10)
    return _save(fig, out)


def _errors_plot(rows: Sequence[Mapping[str, Any]], out: Path) -> Path:
    column, _, name = _predicted(rows)
    pairs = sorted(((abs(p - t), i) for t, p, i in _pairs(rows, column)), reverse=True)
    fig, axes = _figure(1, 1, (8.0, 3.6))
    ax = axes[0, 0]
    errors = [e for e, _ in pairs]
    ax.bar(range(len(errors)), errors, width=0.85 if len(errors) < 100 else 1.0, color="C3")
    mean = sum(errors) / len(errors) if errors else 0.0
    ax.axhline(mean, color="0.3", linestyle="--", linewidth=1, label=f"mean {mean:.2f} points")
    worst = "\n".join(f"{sample}: {error:.1f}" for error, sample in pairs[:5])  # to look up in the CSV
    if worst:
        ax.text(0.98, 0.72, "largest:\n" + worst, transform=ax.transAxes, ha="right", va="top", fontsize=8,
                multialignment="left", family="monospace", bbox={"facecolor": "white", "edgecolor": "0.8"})
    ax.set_title(f"|predicted − judged| per dive ({name}), largest first", fontsize=11)
    ax.set_xlabel("dives, sorted by error")
    ax.set_ylabel("points")
    ax.set_xlim(-0.5, max(len(errors), 1) - 0.5)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, out)
