"""`aqa data info`: the summary of any dataset root, and the MTL-AQA `--from` + `info` path end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from aqa_cli.cli import app
from aqa_cli.datasets.layout import DatasetInfo, Sample, save_frames, write_root
from aqa_cli.datasets.summary import summarize
from aqa_cli.errors import DataError

SHARED_MTL_AQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtl-aqa"


def aqa(*args):
    """Run the CLI in this process (fast); exit code, stdout and stderr as a real run has them."""
    result = CliRunner(env={"COLUMNS": "120"}).invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def _synthetic_root(root: Path) -> None:
    """6 synthetic samples: frames for 4 (one corrupt), two missing; expected_score for the oracle."""
    samples = [Sample(id=f"s{i}", final_score=float(40 + 5 * i), expected_score=float(41 + 5 * i) if i != 5 else 20.0,
                      difficulty=2.0 + 0.4 * (i % 2), judge_scores=[7.0] * (7 if i < 4 else 5),
                      dive_number="107B", position=1, armstand=0, rotation_type=1, ss_no=7, tw_no=0,
                      height="10m" if i < 3 else "3m", commentary="a clean rip entry" if i < 3 else "big splash")
               for i in range(6)]
    samples[4].position = -1  # unknown label
    info = DatasetInfo(name="tiny", source="SynDive (synthetic)", synthetic=True, frames=4, pad=1, width=8, height=6)
    write_root(root, info, samples, {"train": ["s0", "s1", "s2"], "val": [], "test": ["s3", "s4", "s5"]})
    for i in range(3):
        save_frames(root / "frames" / f"s{i}.npy", np.zeros((6, 6, 8, 3), np.uint8))
    save_frames(root / "frames" / "s3.npy", np.zeros((5, 6, 8, 3), np.uint8))  # wrong length: corrupt
    (root / "frames" / "s4.npy").write_bytes(b"\x93NUMPY garbage")


def test_summary_of_a_synthetic_root(tmp_path):
    _synthetic_root(tmp_path)
    s = summarize(tmp_path)
    assert s["synthetic"] is True
    assert s["counts"] == {"train": 3, "val": 0, "test": 3, "total": 6}
    assert s["labels"]["position"] == {"free": 0, "pike": 5, "tuck": 0, "unknown": 1}
    assert s["labels"]["rotation_type"]["forward"] == 6
    assert s["final_score"] == {"min": 40.0, "max": 65.0, "mean": 52.5, "std": 8.539}
    assert s["difficulty"] == {"min": 2.0, "max": 2.4, "distinct": 2}
    assert s["heights"] == {"3m": 3, "10m": 3}
    assert s["judges"] == {"5": 2, "7": 4}
    assert s["vocabulary"] == {"train": 3 + 4, "all": 3 + 6, "captioned": 6}
    assert s["frames"]["expected_shape"] == [6, 6, 8, 3]
    assert (s["frames"]["present"], s["frames"]["missing"], s["frames"]["corrupt"]) == (3, 1, 2)
    assert s["frames"]["missing_ids"] == ["s5"] and s["frames"]["corrupt_ids"] == ["s3", "s4"]
    # test split: expected 56, 61, 20 vs final 55, 60, 65 → ranks (2, 3, 1) vs (1, 2, 3): ρ = -0.5
    assert s["oracle_spearman"] == pytest.approx(-0.5)


def test_info_cli_table_and_json(tmp_path):
    _synthetic_root(tmp_path)
    table = aqa("data", "info", str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert "synthetic" in table.stdout and "6 (train 3, val 0, test 3)" in table.stdout
    out = aqa("data", "info", str(tmp_path), "-f", "json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["frames"]["corrupt"] == 2
    # A real process, so main() maps the error to one line and exit code 1.
    missing = subprocess.run([sys.executable, "-m", "aqa_cli", "data", "info", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert missing.returncode == 1 and "dataset root not found" in missing.stderr


def test_download_from_shared_copy_then_info_reports_the_real_numbers(tmp_path):
    if not SHARED_MTL_AQA.is_dir():
        pytest.skip(f"shared MTL-AQA release not found at {SHARED_MTL_AQA}")
    root = tmp_path / "mtl"
    out = aqa("data", "download", "mtl-aqa", "--root", str(root), "--from", str(SHARED_MTL_AQA), "--no-videos")
    assert out.returncode == 0, out.stderr
    assert "1412 dives" in out.stderr and out.stdout == ""
    info = json.loads(aqa("data", "info", str(root), "-f", "json").stdout)
    assert info["counts"] == {"train": 1059, "val": 0, "test": 353, "total": 1412}
    assert info["extra"]["official_split"] == {"train": 1059, "test": 353}
    assert info["judges"] == {"7": 1412}
    assert info["labels"]["position"] == {"free": 152, "pike": 702, "tuck": 558}
    assert info["labels"]["armstand"]["yes"] == 166
    assert info["final_score"]["min"] == 0.0 and info["final_score"]["max"] == 104.5
    assert info["difficulty"] == {"min": 1.5, "max": 4.1, "distinct": 23}
    assert info["dive_numbers"] == 58
    assert info["frames"]["missing"] == 1412  # no videos yet: nothing preprocessed
    assert info["oracle_spearman"] is None
    # Asking for videos without yt-dlp or local copies fails loudly with the URLs to fetch by hand.
    again = aqa("data", "download", "mtl-aqa", "--root", str(root), "--from", str(SHARED_MTL_AQA))
    assert again.returncode == 1
    assert "https://www.youtube.com/watch?v=cYkUl8MrXgA" in again.stderr


@pytest.mark.parametrize("field, value, says", [
    ("final_score", '"abc"', 'final_score "abc": expected a finite number'),
    ("final_score", "NaN", "final_score NaN: expected a finite number"),
    ("judge_scores", "null", "judge_scores null: expected a list of numbers"),
    ("position", "1.5", "position 1.5: expected a whole number"),
])
def test_hand_damaged_annotation_names_file_line_and_field(tmp_path, field, value, says):
    _synthetic_root(tmp_path)
    path = tmp_path / "annotations.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    lines[1] = json.dumps({k: v for k, v in record.items() if k != field})[:-1] + f', "{field}": {value}}}'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        summarize(tmp_path)
    assert str(info.value) == f"{path}:2: sample s1: {says}"


def test_annotation_line_that_is_not_an_object(tmp_path):
    _synthetic_root(tmp_path)
    path = tmp_path / "annotations.jsonl"
    path.write_text(path.read_text() + "[1, 2]\n")
    with pytest.raises(DataError, match=r"annotations\.jsonl:7: expected a JSON object \{\.\.\.\}, got \[1, 2\]"):
        summarize(tmp_path)


@pytest.mark.parametrize("edit, says", [
    (lambda text: text.replace("frames: 4", "frames: abc"), "frames: expected a whole number, got 'abc'"),
    (lambda text: text.replace("synthetic: true", "synthetic: 1"), "synthetic: expected true or false, got 1"),
    (lambda text: "\n".join(line for line in text.splitlines() if not line.startswith(("name:", "source:"))),
     "missing name, source"),
    (lambda text: text + "colour: blue\n", "unknown keys colour"),
    (lambda text: "- a list\n", "expected 'key: value' lines, got a list"),
])
def test_hand_damaged_dataset_yaml_names_the_key(tmp_path, edit, says):
    _synthetic_root(tmp_path)
    meta = tmp_path / "dataset.yaml"
    meta.write_text(edit(meta.read_text()))
    with pytest.raises(DataError) as info:
        summarize(tmp_path)
    assert str(info.value) == f"{meta}: {says}"


def test_info_on_a_file_says_it_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DataError, match="afile: is a file, not a dataset root folder"):
        summarize(tmp_path / "afile")


def test_missing_splits_and_a_tiny_oracle_are_warned_about(tmp_path):
    _synthetic_root(tmp_path)
    assert summarize(tmp_path)["warnings"] == []
    (tmp_path / "splits" / "test.txt").write_text("s3\ns4\n")  # 2 test dives: any ranking gives ±1
    s = summarize(tmp_path)
    assert s["oracle_spearman"] is None
    assert s["warnings"] == ["oracle Spearman left out: 2 test dives with expected_score (need 3)"]
    for name in ("train", "val", "test"):
        (tmp_path / "splits" / f"{name}.txt").unlink()
    s = summarize(tmp_path)
    assert s["counts"] == {"train": 0, "val": 0, "test": 0, "total": 6}
    missing = "splits/train.txt, splits/val.txt, splits/test.txt"
    assert s["warnings"][0] == f"{tmp_path}: missing {missing} (counted as empty)"
