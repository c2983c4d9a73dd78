"""Errors that aqa knows how to explain.

Every error a user can cause (a bad file, a missing dataset, wrong weights) is an `AqaError`:
`cli.main()` prints its message as one red line on stderr, adds `hint` (the fix) when there is one,
and exits with `exit_code`. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AqaError(Exception):
    """Base class: a one-line message, an optional hint, and the process exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(_from_worker(message))
        self.hint = hint


def _from_worker(message: str) -> str:
    """The error's own line, where a torch DataLoader worker re-raised it: torch rebuilds the exception
    in the main process as `Class("Caught Class in DataLoader worker process 0.\\nOriginal Traceback ...")`,
    whose last line is "module.Class: the message"."""
    if not (message.startswith("Caught ") and "\nOriginal Traceback" in message):
        return message
    last = message.rstrip().splitlines()[-1]
    return last.split(": ", 1)[1] if ": " in last else last


class UsageError(AqaError):
    """The command line asks for something that cannot be done (exit 2, like Click's usage errors)."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file or `--set key=value` override is invalid."""


class WeightsError(AqaError):
    """Weights are missing, corrupt (checksum) or of the wrong format (exit 3)."""

    exit_code = 3


class VideoDecodeError(AqaError):
    """A video file cannot be read; the message names the file and the cause."""


class DataError(AqaError):
    """A dataset root or annotation file is missing, incomplete or malformed."""


class UnsafePickleError(DataError):
    """A pickle asked for a global outside the allow-list (it was not executed)."""
