"""What every command module shares: the stderr console, warnings as one line, option parsing helpers."""

from __future__ import annotations

import inspect
from enum import Enum

from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, emoji=False)  # ":train:" in a message is text, not an emoji


class DataFormat(str, Enum):
    """What a command that writes rows of data (score, locate) writes on stdout."""

    table = "table"
    json = "json"
    csv = "csv"


def one_line_warnings() -> None:
    """Decoder warnings (a short video, a damaged tail) as one yellow line each on stderr."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        err.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True)

    warnings.showwarning = show


def frame_size(size: str) -> tuple[int, int]:
    """--size WIDTHxHEIGHT → (width, height)."""
    from aqa_cli.errors import UsageError

    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 171x128") from None
    return width, height


def reflow(doc: str) -> str:
    """A docstring with the lines of each prose paragraph joined; indented paragraphs (examples) kept.

    Rich help keeps a docstring's line breaks, so on an 80-column terminal every source line longer than
    the panel left a short ragged line after it; joined, Rich wraps each paragraph to the terminal."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(p if p.startswith(" ") else " ".join(p.split("\n")) for p in paragraphs)
