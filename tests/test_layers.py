"""The layer contract in pyproject.toml ([tool.importlinter]): the package keeps it, and a planted import
from a low layer up to a high one (a circle in the making) breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("importlinter", reason="import-linter is in the test extras: pip install '.[test]'")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the `aqa_cli` package found at `tree` (first on the path), with `tree`'s contract."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers():
    out = lint_imports(REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 kept, 0 broken" in out.stdout


def test_an_import_from_rules_up_to_scoring_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "aqa_cli", tmp_path / "aqa_cli", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    rules = tmp_path / "aqa_cli" / "rules.py"
    rules.write_text(rules.read_text() + "\n\nfrom aqa_cli.scoring import Scorer  # planted: rules -> scoring -> rules\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0
    assert "aqa_cli.rules -> aqa_cli.scoring" in out.stdout
    assert "0 kept, 1 broken" in out.stdout
