"""The CLI skeleton: help, --version, error mapping and exit codes, run as a real process."""

import os
import subprocess
import sys

import pytest


def aqa(*args, env=None):
    return subprocess.run([sys.executable, "-m", "aqa_cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_help_lists_every_command():
    """Each command has its own row in the Commands panel (its name first, then its help): the app's own
    description also names score, train and eval, so a bare `in` would pass without the commands."""
    out = aqa("--help", env={"COLUMNS": "100", "TERM": "dumb"})
    assert out.returncode == 0
    rows = [line.strip("│ ").split() for line in out.stdout.split("Commands")[1].splitlines()]
    listed = [row[0] for row in rows if row]
    for name in ("score", "train", "eval", "data", "weights"):
        assert name in listed, out.stdout


def test_help_paragraphs_wrap_to_an_80_column_terminal_and_examples_keep_their_lines():
    out = aqa("data", "synth", "--help", env={"COLUMNS": "80", "TERM": "dumb"})
    assert out.returncode == 0
    lines = [line.strip() for line in out.stdout.splitlines()]
    # The docstring breaks its source line after "rendered (an"; help must not (a ragged short line).
    assert not any(line.endswith("rendered (an") for line in lines)
    assert "Dives are drawn from the World Aquatics DD table, given hidden execution" in lines
    assert "aqa data info data/syndive" in lines  # each example stays a line of its own


def test_version_reports_libraries_and_cuda():
    out = aqa("--version")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith("aqa ")
    assert any(line.startswith("torch ") for line in lines)
    assert any(line.startswith("PyAV ") for line in lines)
    assert any(line.startswith("Python ") for line in lines)
    assert any(line.startswith("CUDA available: ") for line in lines)


def test_unknown_command_is_a_usage_error():
    out = aqa("frobnicate")
    assert out.returncode == 2
    assert "No such command" in out.stderr
    assert out.stdout == ""


def test_known_errors_are_one_line_and_debug_adds_traceback(monkeypatch):
    from aqa_cli import cli
    from aqa_cli.errors import DataError

    def boom():
        raise DataError("the root /x is broken", hint="run aqa data synth /x")

    monkeypatch.setattr(cli, "app", boom)
    monkeypatch.delenv("AQA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1

    def bug():
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(cli, "app", bug)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    monkeypatch.setenv("AQA_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli.main()


def test_error_line_format(capsys, monkeypatch):
    from aqa_cli import cli
    from aqa_cli.errors import WeightsError

    def missing():
        raise WeightsError("no weights found (looked in: a, b)", hint="aqa weights list")

    monkeypatch.setattr(cli, "app", missing)
    monkeypatch.delenv("AQA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert "error: no weights found (looked in: a, b)" in err
    assert "fix: aqa weights list" in err
    assert "Traceback" not in err


def test_error_messages_keep_square_brackets():
    out = aqa("score", "final [heat 2].mp4")  # Rich would read "[heat 2]" as markup and drop it
    assert out.returncode == 2
    assert "error: no videos found (final [heat 2].mp4: no videos match this pattern" in out.stderr
    out = aqa("train", "--config", "smoke", "--set", "data.resize=knee")
    assert "expected tuple[int, int], got 'knee'" in out.stderr
