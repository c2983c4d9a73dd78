"""`aqa weights import-c3d`: Sports-1M C3D state dicts → aqa backbone files, and clear refusals."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from aqa_cli.errors import WeightsError
from aqa_cli.models.c3d import C3D, load_backbone_weights
from aqa_cli.weights import import_c3d


def sports1m_state_dict() -> dict[str, torch.Tensor]:
    """The key layout and conv shapes of the Sports-1M C3D file (values random; fc layers shrunk to
    keep the test small: only their names matter, they are dropped)."""
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) for k, v in C3D(1).state_dict().items()}
    for name, (out, inp) in {"fc6": (8, 4), "fc7": (8, 8), "fc8": (487, 8)}.items():
        state[f"{name}.weight"] = torch.zeros(out, inp)
        state[f"{name}.bias"] = torch.zeros(out)
    return state


@pytest.fixture(scope="module")
def sports1m(tmp_path_factory):
    path = tmp_path_factory.mktemp("c3d") / "c3d.pickle"
    state = sports1m_state_dict()
    torch.save(state, path)
    return path, state


def test_import_keeps_the_convolutions_and_loads_into_full_c3d(sports1m, tmp_path):
    path, state = sports1m
    info = import_c3d(path, tmp_path / "c3d.pt")
    assert info["tensors"] == 16 and info["parameters"] == 27_655_936
    assert info["dropped"] == ["fc6.bias", "fc6.weight", "fc7.bias", "fc7.weight", "fc8.bias", "fc8.weight"]
    blob = torch.load(tmp_path / "c3d.pt", weights_only=True)
    assert blob["format"] == "aqa-backbone" and blob["arch"] == "c3d"
    backbone = C3D(1)
    load_backbone_weights(backbone, tmp_path / "c3d.pt")
    assert torch.equal(backbone.state_dict()["conv3b.weight"], state["conv3b.weight"])


def test_a_plain_pickle_of_numpy_arrays_is_read_safely(tmp_path):
    state = {k: v.numpy() for k, v in sports1m_state_dict().items()}
    path = tmp_path / "c3d_numpy.pickle"
    path.write_bytes(pickle.dumps(state, protocol=2))
    assert import_c3d(path, tmp_path / "out.pt")["tensors"] == 16
    blob = torch.load(tmp_path / "out.pt", weights_only=True)
    assert np.array_equal(blob["state_dict"]["conv1.bias"].numpy(), state["conv1.bias"])


def test_wrong_layout_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    state = sports1m_state_dict()
    del state["conv5b.bias"]
    state["conv2.weight"] = torch.zeros(128, 32, 3, 3, 3)
    state["classifier.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "bad.pickle")
    with pytest.raises(WeightsError) as err:
        import_c3d(tmp_path / "bad.pickle", tmp_path / "out.pt")
    message = str(err.value)
    assert "missing: conv5b.bias" in message
    assert "unexpected: classifier.weight" in message
    assert "conv2.weight (128, 32, 3, 3, 3) (expected (128, 64, 3, 3, 3))" in message
    assert not (tmp_path / "out.pt").exists()


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(WeightsError, match="builtins.print"):
        import_c3d(path, tmp_path / "out.pt")


def test_cli_import_c3d_and_missing_file(sports1m, tmp_path):
    path, _ = sports1m
    run = lambda *a: subprocess.run([sys.executable, "-m", "aqa_cli", "weights", "import-c3d", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    out = run(str(path), "--out", str(tmp_path / "b.pt"))
    assert out.returncode == 0, out.stderr
    assert "27,655,936 parameters" in out.stderr and (tmp_path / "b.pt").is_file()
    out = run(str(tmp_path / "nope.pickle"), "--out", str(tmp_path / "c.pt"))
    assert out.returncode == 3 and "not found" in out.stderr


def test_text_object_arrays_and_bad_outputs_are_one_line_errors(sports1m, tmp_path):
    from aqa_cli.errors import UsageError

    text = tmp_path / "text.pickle"
    text.write_text("not weights")  # torch.load raised KeyError on this
    with pytest.raises(WeightsError, match="not a readable pickle"):
        import_c3d(text, tmp_path / "out.pt")
    state = {k: v.numpy() for k, v in sports1m_state_dict().items()}
    state["conv1.bias"] = np.array(list(range(64)), dtype=object)  # Python ints: no global to refuse
    objects = tmp_path / "objects.pickle"
    objects.write_bytes(pickle.dumps(state, protocol=2))
    with pytest.raises(WeightsError, match="not a tensor: conv1.bias"):
        import_c3d(objects, tmp_path / "out.pt")
    # The output is checked before the (300 MB) input is read: the input here does not even exist.
    with pytest.raises(UsageError, match="is a folder"):
        import_c3d(tmp_path / "nope.pickle", tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="not a writable folder"):
        import_c3d(tmp_path / "nope.pickle", tmp_path / "file" / "out.pt")
