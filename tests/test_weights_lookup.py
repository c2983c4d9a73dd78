"""Weights lookup order (--weights, $AQA_WEIGHTS, bundled, cache), manifest checksums, list/verify."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from checkpoints import make_checkpoint
from typer.testing import CliRunner

from aqa_cli import weights
from aqa_cli.cli import app
from aqa_cli.errors import WeightsError


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty bundled and cache folders in tmp_path, no $AQA_WEIGHTS."""
    bundled, cache = tmp_path / "bundled", tmp_path / "cache"
    bundled.mkdir()
    monkeypatch.setattr(weights, "bundled_dir", lambda: bundled)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("AQA_WEIGHTS", raising=False)
    return bundled, cache / "aqa"


def put(ckpt, folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    return shutil.copy(ckpt, folder / name)


def test_lookup_order(places, tiny_ckpt, tmp_path, monkeypatch):
    bundled, cache = places
    put(tiny_ckpt, cache, "cached.pt")
    assert weights.find_weights() == cache / "cached.pt"  # only the cache has weights

    put(tiny_ckpt, bundled, "a-demo.pt")
    put(tiny_ckpt, bundled, "b-demo.pt")
    weights.write_manifest(bundled, default="b-demo")
    assert weights.find_weights() == bundled / "b-demo.pt"  # bundled (its manifest default) beats cache

    env_file = put(tiny_ckpt, tmp_path / "env", "env.pt")
    monkeypatch.setenv("AQA_WEIGHTS", str(env_file))
    assert weights.find_weights() == env_file  # $AQA_WEIGHTS beats bundled

    given = put(tiny_ckpt, tmp_path / "given", "given.pt")
    assert weights.find_weights(str(given)) == given  # --weights beats everything

    monkeypatch.setenv("AQA_WEIGHTS", "cached")  # a name is searched in bundled, then cache
    assert weights.find_weights() == cache / "cached.pt"
    assert weights.find_weights("a-demo") == bundled / "a-demo.pt"


def test_nothing_found_names_every_place(places):
    bundled, cache = places
    with pytest.raises(WeightsError) as info:
        weights.find_weights()
    message = str(info.value)
    assert "--weights (not set)" in message and "$AQA_WEIGHTS (not set)" in message
    assert str(bundled) in message and str(cache) in message
    assert "aqa train" in info.value.hint and "\n" not in message


def test_unknown_name_and_missing_file(places, tiny_ckpt):
    put(tiny_ckpt, places[0], "demo.pt")
    with pytest.raises(WeightsError, match=r"'nope' \(from --weights\) not found; available: demo"):
        weights.find_weights("nope")
    with pytest.raises(WeightsError, match="weights file not found: missing/x.pt"):
        weights.find_weights("missing/x.pt")
    with pytest.raises(WeightsError, match="is a folder, not a checkpoint file"):
        weights.find_weights(str(places[0]))


def test_checksum_and_size_are_checked_at_load(places, tiny_ckpt):
    from aqa_cli.scoring import load_model

    bundled, _ = places
    path = put(tiny_ckpt, bundled, "demo.pt")
    weights.write_manifest(bundled)
    manifest = yaml.safe_load((bundled / "manifest.yaml").read_text())
    assert manifest["files"]["demo.pt"]["size"] == path.stat().st_size
    assert load_model(device="cpu").path == path

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 differs") as info:
        load_model(device="cpu")
    assert info.value.exit_code == 3

    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(WeightsError, match="corrupt: .* bytes, manifest says"):
        load_model(device="cpu")


def test_bundled_checkpoint_must_be_in_manifest(places, tiny_ckpt):
    put(tiny_ckpt, places[0], "demo.pt")
    with pytest.raises(WeightsError, match="missing from .*manifest.yaml") as info:
        weights.verify_file(places[0] / "demo.pt")
    assert info.value.hint == "aqa weights verify --update"


def test_not_a_checkpoint_is_a_weights_error(tmp_path, places):
    from aqa_cli.scoring import load_model

    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable aqa checkpoint"):
        load_model(str(bad), device="cpu")


def test_unreadable_checkpoints_say_why_in_one_line(tmp_path):
    import pickle
    import warnings
    import zipfile

    import torch

    from aqa_cli.checkpoint import Checkpoint

    text, archive, cut, code, plain = (tmp_path / f"{name}.pt" for name in ("text", "archive", "cut", "code", "plain"))
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=4))  # a plain pickle: torch warns, then refuses
    text.write_text("not a checkpoint")
    torch.save({"model": {}}, cut)
    cut.write_bytes(cut.read_bytes()[:100])  # a download cut short
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "b")
    torch.save({"model": print}, code)  # pickles a reference to a function: weights_only refuses it
    for path, why in [(text, "not a PyTorch file"), (archive, "a zip archive, not a PyTorch file"),
                      (cut, "a damaged or incomplete zip archive: an interrupted download or copy\\?"),
                      (code, r"it holds a Python object \(print\), refused since loading it could run code"),
                      (plain, r"Unsupported operand \d+")]:
        with warnings.catch_warnings(), pytest.raises(WeightsError,
                                                      match=rf"{path.name}: not a readable aqa checkpoint \({why}\)$") as info:
            warnings.simplefilter("error")  # torch's warnings are not shown: the error says it in one line
            Checkpoint.load(path)
        assert "\n" not in str(info.value) and "weights_only" not in str(info.value)


def test_weights_list_and_verify_cli(places, tiny_ckpt):
    bundled, cache = places
    put(tiny_ckpt, bundled, "demo.pt")
    put(tiny_ckpt, cache, "mine.pt")
    runner = CliRunner()

    res = runner.invoke(app, ["weights", "verify", "--update"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [f"ok\t{bundled / 'demo.pt'}", f"unlisted\t{cache / 'mine.pt'}"]

    res = runner.invoke(app, ["weights", "list", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert [(r["name"], r["where"], r["default"]) for r in rows] == [("demo", "bundled", True),
                                                                     ("mine", "cache", False)]
    assert rows[0]["data"]["synthetic"] is True and rows[0]["metrics"]["test"]["spearman"] == 0.5

    res = runner.invoke(app, ["weights", "list"])
    assert res.exit_code == 0 and "demo (default)" in res.stdout and "synthetic" in res.stdout
    assert "spearman 0.500" in res.stdout

    (bundled / "demo.pt").write_bytes(b"garbage")
    res = runner.invoke(app, ["weights", "verify"])
    assert res.exit_code == 3
    assert res.stdout.splitlines()[0] == f"FAILED\t{bundled / 'demo.pt'}"
    assert "corrupt" in res.stderr


def test_weights_list_shows_nested_test_metrics_in_one_line():
    from aqa_cli.cli.views import metrics_line

    test = {"score": {"n": 200, "spearman": 0.8511, "relative_l2": 0.58},
            "accuracy": {"position": 0.935, "tw_no": 0.78},
            "captions": {"n": 200, "bleu4": 0.41}, "oracle": {"spearman": 0.9931}}
    assert metrics_line(test) == "score ρ 0.851, position 0.935, tw_no 0.780, oracle ρ 0.993"


def test_checkpoint_without_preprocessing_values_is_refused(tmp_path, tiny_ckpt):
    import torch

    from aqa_cli.scoring import load_model

    ckpt = torch.load(tiny_ckpt, weights_only=True)
    del ckpt["preprocess"]["crop"]
    torch.save(ckpt, tmp_path / "old.pt")  # as an aqa that did not check it wrote it
    with pytest.raises(WeightsError, match="'preprocess' lacks crop"):
        load_model(str(tmp_path / "old.pt"), device="cpu")


def test_torch_files_naming_blocked_modules_say_which(tmp_path):
    import os

    import torch

    from aqa_cli.checkpoint import Checkpoint

    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Exploit()}, path)
    with pytest.raises(WeightsError, match=r"it holds a Python object \((posix|nt)\.system\), refused") as info:
        Checkpoint.load(path)
    assert "weights_only" not in str(info.value)


def test_manifest_update_refuses_changed_and_unreadable_files(places, tiny_ckpt):
    bundled, cache = places
    put(tiny_ckpt, bundled, "demo.pt")
    weights.write_manifest(bundled)
    corrupt = bytearray((bundled / "demo.pt").read_bytes())
    corrupt[-100] ^= 1
    (bundled / "demo.pt").write_bytes(bytes(corrupt))
    runner = CliRunner()
    res = runner.invoke(app, ["weights", "verify", "--update"])
    assert isinstance(res.exception, WeightsError) and "differs from its entry" in str(res.exception)
    assert weights.read_manifest(bundled)["files"]["demo.pt"]["sha256"] != weights.file_sha256(bundled / "demo.pt")
    weights.write_manifest(bundled, replace=True)  # what a deliberate replacement asks for
    (bundled / "text.pt").write_text("garbage")
    with pytest.raises(WeightsError, match="text.pt: not a readable aqa checkpoint"):
        weights.write_manifest(bundled)
    res = runner.invoke(app, ["weights", "verify", "--update", str(bundled / "demo.pt")])
    assert res.exit_code != 0 and "give no files" in str(res.exception)


def test_verify_loads_unlisted_files_and_names_folders(places, tiny_ckpt, tmp_path):
    bundled, cache = places
    put(tiny_ckpt, cache, "mine.pt")
    (cache / "garbage.pt").write_text("garbage")
    results = dict(weights.verify_weights())
    assert results[cache / "mine.pt"] == "unlisted"
    assert "not a readable aqa checkpoint" in results[cache / "garbage.pt"]
    assert weights.verify_weights([tmp_path]) == [(tmp_path, f"{tmp_path} is a folder: give checkpoint files")]


def test_a_malformed_manifest_entry_is_a_weights_error(places, tiny_ckpt):
    bundled, _ = places
    put(tiny_ckpt, bundled, "demo.pt")
    (bundled / "manifest.yaml").write_text("default: demo\nfiles: {demo.pt: deadbeef}\n")
    with pytest.raises(WeightsError, match="the entry of demo.pt is not"):
        weights.verify_file(bundled / "demo.pt")
