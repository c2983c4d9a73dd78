"""`aqa train` and `aqa eval`: fit a model on a dataset root; measure a checkpoint on a split."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from aqa_cli.cli import views
from aqa_cli.cli.common import err


class Task(str, Enum):
    stl = "stl"
    mtl = "mtl"
    s4aqa = "s4aqa"
    regress = "regress"
    mtl_features = "mtl-features"


FEATURE_TASKS = ("s4aqa", "regress", "mtl-features")  # trained on segment features (semi.py), not on frames
# The default config of each task on features (the others: c3d-avg-TASK).
FEATURE_CONFIGS = {"s4aqa": "s4aqa", "regress": "s4aqa", "mtl-features": "i3d-frozen-mtl"}


def train(
    data: Annotated[Optional[str], typer.Option("--data", help="Dataset root (see `aqa data synth`); "
                                                "default: data.root of the config.", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Run directory: last.pt, best.pt, metrics.jsonl, "
                                      "report.json.")] = Path("runs/aqa"),
    task: Annotated[Optional[Task], typer.Option("--task", help="stl: score only; mtl: score, dive classes and "
                                                 "commentary; s4aqa: semi-supervised on segment features (Zhang et "
                                                 "al. 2022); regress: its supervised baseline on the same labelled "
                                                 "subset; mtl-features: regress with execution and dive-class "
                                                 "heads. Default: the config's.", show_default=False)] = None,
    config: Annotated[Optional[str], typer.Option(
        "--config", "-c", help="Shipped config NAME (c3d-avg-mtl, tiny-mtl, smoke, ...) or a YAML FILE; "
        "default c3d-avg-TASK.", show_default=False)] = None,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override a config key, e.g. --set train.lr=3e-4 (repeatable).", show_default=False)] = None,
    features: Annotated[Optional[str], typer.Option(
        "--features", help="s4aqa/regress/mtl-features: the root's features folder (aqa features extract).",
        show_default=False)] = None,
    labeled_ratio: Annotated[Optional[float], typer.Option(
        "--labeled-ratio", help="s4aqa/regress: fraction of the train split whose scores are used "
        "(score-stratified, recorded in RUN/labeled.txt).", show_default=False)] = None,
    labeled_seed: Annotated[Optional[int], typer.Option(
        "--labeled-seed", help="s4aqa/regress: which videos of each score stratum are labelled.",
        show_default=False)] = None,
    unlabeled: Annotated[Optional[str], typer.Option(
        "--unlabeled", help="s4aqa: features folder of an extra unscored root (all of it unlabelled).",
        show_default=False)] = None,
    apparatus: Annotated[Optional[str], typer.Option(
        "--apparatus", help="s4aqa/regress on Rhythmic Gymnastics: train on one apparatus (Ball, Clubs, "
        "Hoop, Ribbon), or 'all': one model each in OUT/<apparatus>/ and their Fisher-z average in "
        "OUT/report.json.", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from last.pt.")] = False,
    device: Annotated[str, typer.Option("--device", envvar="AQA_DEVICE", help="auto, cpu, cuda or cuda:N.")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Train a single-task or multitask model on a dataset root.

    The validation split picks best.pt; the test split is evaluated once, at the end. Run the same
    command under torchrun for DistributedDataParallel. --set train.max_minutes=N is a time budget:
    when the epochs left would not fit, the run trains those that do, the learning rate decaying
    over them.

    Examples:

      aqa train --task mtl --config tiny-mtl --data syndive --out runs/tiny

      aqa train --config smoke --data syndive --out runs/smoke --set train.epochs=1

      torchrun --nproc-per-node 2 -m aqa_cli train --config c3d-avg-mtl --data mtl-aqa --out runs/paper

      aqa train --task s4aqa --config s4aqa --data syndive --features feats/syndive-i3d --labeled-ratio 0.1

      aqa train --task s4aqa --data rg --features feats/rg-i3d --labeled-ratio 0.4 --apparatus all --out runs/rg
    """
    from aqa_cli.config import load_config

    name = task.value if task else "mtl"
    cfg = load_config(config or FEATURE_CONFIGS.get(name, f"c3d-avg-{name}"), overrides or [])
    if data is not None:
        cfg.data.root = data
    for key, value in (("features", features), ("labeled_ratio", labeled_ratio), ("labeled_seed", labeled_seed),
                       ("unlabeled", unlabeled)):
        if value is not None:
            setattr(cfg.semi, key, value)
    if name in FEATURE_TASKS or apparatus is not None:
        _train_features(cfg, out, name, apparatus, quiet)
        return
    from aqa_cli.train import train as run_training

    if task is not None:
        cfg.model.task = task.value
    try:
        report = run_training(cfg, out, resume=resume, device=device, quiet=quiet, console=err)
    except KeyboardInterrupt:
        if (out / "last.pt").is_file():
            err.print(f"The run can go on: add --resume to the same command (last epoch saved in {out / 'last.pt'}).",
                      markup=False, highlight=False, soft_wrap=True)
        raise
    if report and not quiet:
        err.print(f"report: {out / 'report.json'}", markup=False, highlight=False)


def _train_features(cfg, out: Path, task: str, apparatus: str | None, quiet: bool) -> None:
    """`aqa train --task s4aqa|regress|mtl-features`: one run (semi.train_semi), or one per apparatus
    (train_groups)."""
    from aqa_cli.errors import UsageError
    from aqa_cli.semi import selected_spearman, train_groups, train_semi

    if task not in FEATURE_TASKS:
        raise UsageError("--apparatus: only --task s4aqa, regress or mtl-features train per apparatus (on features)")

    def log(line: str) -> None:
        err.print(line, markup=False, highlight=False)

    if apparatus == "all":
        from aqa_cli.datasets.layout import DatasetRoot

        root = DatasetRoot(cfg.data.root)
        groups = sorted({s.apparatus for s in root.samples.values() if s.apparatus})
        if not groups:
            raise UsageError(f"--apparatus all: {root.root} has no apparatus (its samples have none)",
                             hint="Rhythmic Gymnastics roots come from `aqa data prepare rg`")
        summary = train_groups(cfg, out, groups, task, log=None if quiet else log)
        if not quiet:
            rhos = ", ".join(f"{g} {r if r is not None else float('nan'):.3f}" for g, r in summary["test_spearman"].items())
            log(f"report: {out / 'report.json'} (test Spearman {rhos}; Fisher-z average "
                f"{summary['fisher_z_mean']:.3f})")
        return
    if apparatus:
        cfg.semi.group = apparatus
    report = train_semi(cfg, out, task, log=None if quiet else log)
    if not quiet:
        rho = selected_spearman(report["test"])  # the score head's
        log(f"report: {out / 'report.json'} (test Spearman {rho:.3f})")


class EvalFormat(str, Enum):
    table = "table"
    json = "json"


def eval_(
    weights: Annotated[str, typer.Option("--weights", help="Checkpoint FILE (e.g. runs/tiny/best.pt) or weights "
                                         "NAME (see `aqa weights list`).", show_default=False)],
    data: Annotated[str, typer.Option("--data", help="Dataset root to evaluate on.", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="train, val, test, or all (every split: for a root "
                                       "the weights never trained on).")] = "test",
    fmt: Annotated[EvalFormat, typer.Option("--format", "-f", help="table or json.")] = EvalFormat.table,
    device: Annotated[str, typer.Option("--device", envvar="AQA_DEVICE", help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Samples per batch.")] = 4,
    predictions: Annotated[Optional[str], typer.Option(
        "--predictions", help="Also write one CSV row per sample (truth beside each prediction) to FILE.",
        show_default=False)] = None,
    features: Annotated[Optional[str], typer.Option(
        "--features", help="For a model on segment features (--task s4aqa|regress|mtl-features): the root's features "
        "folder, extracted as the model's training features were. --weights may then also be the --out "
        "of `aqa train --apparatus all`: each apparatus and their Fisher-z average.", show_default=False)] = None,
    plots: Annotated[Optional[Path], typer.Option(
        "--plots", help="Also draw scores.png (predicted vs judged), confusion.png (each dive head) and "
        "errors.png (per-sample errors, sorted) into DIR, with the rows behind them (needs aqa[plots]).",
        show_default=False)] = None,
) -> None:
    """Evaluate a checkpoint on a dataset split with honest metrics.

    Spearman's ρ, R-ℓ2, accuracy per head and of the whole dive number, DD × predicted execution,
    BLEU-4 / CIDEr-D of the commentary, and on synthetic data the oracle ceiling.

    Examples:

      aqa eval --weights runs/tiny/best.pt --data syndive

      aqa eval --weights runs/tiny/best.pt --data syndive --split val -f json > val.json

      aqa eval --weights runs/tiny/best.pt --data syndive-dev --split all

      aqa eval --weights runs/tiny/best.pt --data syndive --predictions test.csv

      aqa eval --weights runs/tiny/best.pt --data syndive --plots eval-plots/

      aqa eval --weights runs/s4aqa/best.pt --data syndive --features feats/syndive-i3d

      aqa eval --weights runs/rg --data rg --features feats/rg-i3d
    """
    import json

    from aqa_cli.evaluate import evaluate_checkpoint

    if plots is not None:
        from importlib.util import find_spec

        from aqa_cli.errors import UsageError

        if find_spec("matplotlib") is None:  # said before minutes of evaluation, not after
            raise UsageError("--plots needs matplotlib, which is not installed: pip install 'aqa[plots]'")
        plots.mkdir(parents=True, exist_ok=True)
        predictions = predictions or str(plots / "predictions.csv")
    if features is not None:
        report = _evaluate_features(weights, data, features, split, predictions, plots is not None)
    else:
        report = evaluate_checkpoint(weights, data, split=split, device=device, batch_size=batch_size,
                                     predictions=predictions)
    if plots is not None:
        import csv

        from aqa_cli.plots import plot_eval

        with open(predictions, newline="", encoding="utf-8") as f:
            drawn = plot_eval(report, list(csv.DictReader(f)), plots)
        err.print(f"plots: {', '.join(str(p) for p in drawn)}", markup=False, highlight=False, soft_wrap=True)
    if predictions is not None:
        err.print(f"wrote {report['samples']} rows to {predictions}", markup=False, highlight=False, soft_wrap=True)
    if fmt == EvalFormat.json:
        clean = json.loads(json.dumps(report), parse_constant=lambda c: None)  # NaN → null: strict JSON
        typer.echo(json.dumps(clean, indent=2))
        return
    views.print_eval_report(report, split)
    if report["data"].get("synthetic"):
        err.print("[yellow]synthetic data:[/yellow] numbers measure the synthetic task, not real diving")


def _evaluate_features(weights: str, data: str, features: str, split: str, predictions: str | None,
                       plots: bool) -> dict:
    """`aqa eval --features`: one features checkpoint, or a folder of per-apparatus runs."""
    from aqa_cli.errors import UsageError
    from aqa_cli.evaluate import evaluate_features_checkpoint, evaluate_groups

    if not Path(weights).is_dir():
        return evaluate_features_checkpoint(weights, data, features, split, predictions=predictions)
    if predictions is not None or plots:
        raise UsageError("--predictions and --plots take one checkpoint, not a folder of runs")
    return evaluate_groups(weights, data, features, split)


def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (each with metrics.jsonl).",
                                               show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("curves.png"),
) -> None:
    """Overlay the training curves of several runs: loss terms, validation Spearman and accuracies per
    epoch, each run's chosen epoch marked (needs aqa[plots]: matplotlib).

    Examples:

      aqa plot runs/tiny-mtl runs/seed1 -o compare.png
    """
    from aqa_cli.plots import plot_curves

    err.print(f"wrote {plot_curves(runs, out)}", markup=False, highlight=False)
