"""The `aqa` command line: one module per command group, registered here, and the error-mapping `main()`.

    score.py    aqa score                 train.py  aqa train, aqa eval
    data.py     aqa data ...              weights.py  aqa weights ...
    features.py aqa features extract
    views.py    panels and tables         common.py   the stderr console and shared helpers

Commands are thin: parse, call one library function, render. stdout carries data only; messages and
progress go to stderr (`common.err`). Heavy imports (torch, av) happen inside commands so `aqa --help`
and `aqa --version` stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer
from rich.markup import escape

from aqa_cli import __version__
from aqa_cli.cli import data, features, locate, score, train, weights
from aqa_cli.cli.common import err, reflow
from aqa_cli.errors import AqaError

app = typer.Typer(
    name="aqa",
    help="Action Quality Assessment of sports video: score dives, train and evaluate models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


app.command()(score.score)
app.command()(train.train)
app.command(name="eval")(train.eval_)
app.command()(locate.locate)
app.command()(train.plot)
app.add_typer(data.app, name="data")
app.add_typer(weights.app, name="weights")
app.add_typer(features.app, name="features")
for _group in (app, data.app, weights.app, features.app):
    for _command in _group.registered_commands:
        _command.help = _command.help or reflow(_command.callback.__doc__ or "")


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
    except SystemExit as exc:
        if exc.code == 130:  # Typer turns Ctrl-C inside a command into a silent exit 130
            err.print("[red]Interrupted.[/red]")
        raise
    except Exception as exc:
        if os.environ.get("AQA_DEBUG"):
            raise
        err.print(f"[red]error:[/red] {escape(f'{type(exc).__name__}: {exc}')}", highlight=False)
        err.print("This is a bug in aqa; rerun with AQA_DEBUG=1 for the traceback and report it.")
        sys.exit(1)


def _report(exc: AqaError) -> None:
    err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"  fix: {exc.hint}", markup=False, highlight=False, soft_wrap=True)
    if os.environ.get("AQA_DEBUG"):
        err.print_exception()
