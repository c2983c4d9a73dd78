"""The `aqa` command line: thin Typer commands, each one library call, plus an error-mapping `main()`.

stdout carries data only; messages and progress go to stderr (`err`). Heavy imports (torch, av) happen
inside commands so `aqa --help` and `aqa --version` stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer
from rich.console import Console

from aqa_cli import __version__
from aqa_cli.errors import AqaError

err = Console(stderr=True)

app = typer.Typer(
    name="aqa",
    help="Action Quality Assessment of sports video: score dives, train and evaluate models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Get, make and inspect datasets (download, preprocess, synth, info).",
                       no_args_is_help=True)
weights_app = typer.Typer(help="List, verify and import model weights.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(weights_app, name="weights")


def _not_built(what: str) -> None:
    """Commands whose issue is still open say so and exit 2: never pretend to work."""
    err.print(f"[red]aqa {what}: not built yet[/red] (see the project's open issues)")
    raise typer.Exit(2)


def _version_text() -> str:
    import platform

    import av
    import torch

    cuda = torch.cuda.is_available()
    gpu = f"yes ({torch.cuda.get_device_name(0)})" if cuda else "no"
    return (f"aqa {__version__}\ntorch {torch.__version__}\nPyAV {av.__version__}\n"
            f"Python {platform.python_version()}\nCUDA available: {gpu}")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(_version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version_callback, is_eager=True,
        help="Print aqa, torch, PyAV and Python versions and whether CUDA is available.")] = None,
) -> None:
    """Action Quality Assessment of sports video (diving first).

    Examples:

      aqa score dive.mp4

      aqa score meet/ --csv meet.csv

      aqa train --task mtl --config tiny-mtl --data syndive --out runs/tiny
    """


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def score(ctx: typer.Context) -> None:
    """Score dive videos: final score, dive number, classes and commentary."""
    _not_built("score")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context) -> None:
    """Train a single-task or multitask model on a dataset root."""
    _not_built("train")


@app.command(name="eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def eval_(ctx: typer.Context) -> None:
    """Evaluate a checkpoint on a dataset split with honest metrics."""
    _not_built("eval")


@data_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def download(ctx: typer.Context) -> None:
    """Download a dataset's annotations (and videos) into a root."""
    _not_built("data download")


@data_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def preprocess(ctx: typer.Context) -> None:
    """Cut dives from source videos into frame arrays of the common dataset root."""
    _not_built("data preprocess")


@data_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def synth(ctx: typer.Context) -> None:
    """Render a SynDive synthetic diving dataset."""
    _not_built("data synth")


@data_app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def info(ctx: typer.Context) -> None:
    """Summarise a dataset root: counts, label histograms, score ranges."""
    _not_built("data info")


@weights_app.command(name="list", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def weights_list(ctx: typer.Context) -> None:
    """Show the available weights with their data and metrics."""
    _not_built("weights list")


def main() -> None:
    """Entry point: run the app, turning known errors into one red line (and the fix) on stderr.

    Click handles usage errors itself (exit 2); AqaError subclasses carry their own exit code.
    """
    try:
        app()
    except AqaError as exc:
        _report(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]Interrupted.[/red]")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AQA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        err.print("This is a bug in aqa; rerun with AQA_DEBUG=1 for the traceback and report it.")
        sys.exit(1)


def _report(exc: AqaError) -> None:
    err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"  fix: {exc.hint}", highlight=False, soft_wrap=True)
    if os.environ.get("AQA_DEBUG"):
        err.print_exception()
