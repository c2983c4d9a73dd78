"""C3D (Tran et al. 2015) up to pool5, as the MTL-AQA paper uses it, plus its pretrained-weights file.

Layers (every conv 3×3×3, padding 1, ReLU; widths for `width_divisor=1`):

    conv1   64  pool1 (1,2,2)
    conv2  128  pool2 (2,2,2)
    conv3a 256, conv3b 256  pool3 (2,2,2)
    conv4a 512, conv4b 512  pool4 (2,2,2)
    conv5a 512, conv5b 512  pool5 (2,2,2) with padding (0,1,1)

A 16×112×112 clip gives a 512×1×4×4 pool5 map: 8192 features. The convolutions hold 27,655,936
parameters, and their names (`conv1.weight` … `conv5b.bias`) are those of the Sports-1M C3D weights, so
that file's convolutions load without renaming. `width_divisor=8` gives the small CPU demo backbone
(8…64 channels, 1024 features per 16×112×112 clip). `stem_time_stride=2` strides conv1 by 2 in time:
a clip of twice the frames (32 consecutive ones instead of every second of 64) gives the maps of a
16-frame clip at about the same cost, while conv1's filters still see every frame. `keep_time=True`
pools only space in pool4 and pool5, so each clip's map keeps T'/4 time steps (4 for 16 conv1
outputs) for a head that reads them in order.

Backbone weights travel in an "aqa backbone file": `torch.save` of
`{"format": "aqa-backbone", "arch": "c3d" | "mscadc", "state_dict": {...}}`, written by
`aqa weights import-c3d` (or `save_backbone_weights`) and read by `load_backbone_weights`.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from aqa_cli.errors import WeightsError
from aqa_cli.storage import atomic_write_bytes, load_tensors

C3D_LAYERS = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
C3D_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512)
# Index (into C3D_LAYERS) of the last conv before each pool, with the pool's kernel (T, H, W).
_POOL_AFTER = {0: (1, 2, 2), 1: (2, 2, 2), 3: (2, 2, 2), 5: (2, 2, 2), 7: (2, 2, 2)}

BACKBONE_FORMAT = "aqa-backbone"


def scaled_widths(widths: tuple[int, ...], divisor: int) -> tuple[int, ...]:
    """Channel widths divided by `divisor`; every width must stay a whole number of channels."""
    if divisor < 1 or any(w % divisor for w in widths):
        raise ValueError(f"width_divisor {divisor} must be >= 1 and divide every width {widths}")
    return tuple(w // divisor for w in widths)


class C3D(nn.Module):
    """C3D convolutions and pools up to pool5.

    forward: clips (M, 3, T, H, W) float → pool5 maps (M, C5, T'//16, H//16//2+1, W//16//2+1),
    C5 = 512 / width_divisor, T' = T // stem_time_stride; T'//4 time steps instead of T'//16 with
    keep_time.
    `out_features(T, S)` gives the flattened size of one clip's map.
    """

    arch = "c3d"  # the `arch` an aqa backbone file must name to load here

    def __init__(self, width_divisor: int = 1, batchnorm: bool = False, stem_time_stride: int = 1,
                 keep_time: bool = False):
        super().__init__()
        self.widths = scaled_widths(C3D_WIDTHS, width_divisor)
        self.stem_time_stride, self.keep_time = stem_time_stride, keep_time
        # Optional BatchNorm after each conv (not in the original C3D, whose Sports-1M weights have
        # none): it lets the small backbone, trained from scratch, leave its initial plateau sooner.
        self.norms = nn.ModuleList(nn.BatchNorm3d(w) for w in self.widths) if batchnorm else None
        in_ch = 3
        for name, width in zip(C3D_LAYERS, self.widths):
            stride = (stem_time_stride, 1, 1) if name == "conv1" else 1
            self.add_module(name, nn.Conv3d(in_ch, width, kernel_size=3, stride=stride, padding=1))
            in_ch = width
        kernels = {i: (1, *k[1:]) if keep_time and i >= 5 else k for i, k in _POOL_AFTER.items()}
        self.pools = nn.ModuleList(nn.MaxPool3d(k, stride=k, padding=(0, 1, 1) if i == 7 else 0)
                                   for i, k in kernels.items())
        self.relu = nn.ReLU(inplace=True)
        self._init_weights()

    def _init_weights(self) -> None:
        # Without BatchNorm, He-normal init keeps activation variance roughly constant through the
        # eight ReLU convs, so a model trained from scratch (the small demo backbone) starts with
        # pool5 features of order 1 instead of ones that shrink layer after layer.
        for name in C3D_LAYERS:
            conv = getattr(self, name)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pools = iter(self.pools)
        for i, name in enumerate(C3D_LAYERS):
            x = getattr(self, name)(x)
            if self.norms is not None:
                x = self.norms[i](x)
            x = self.relu(x)
            if i in _POOL_AFTER:
                x = next(pools)(x)
        return x

    def out_steps(self, clip_len: int) -> int:
        """Time steps of one clip's pool5 map."""
        return clip_len // self.stem_time_stride // (4 if self.keep_time else 16)

    def out_features(self, clip_len: int, crop_size: int) -> int:
        """Flattened pool5 size of one clip of `clip_len` frames at `crop_size`² pixels."""
        s = crop_size // 16 // 2 + 1  # pool5 pads H and W by 1: ceil on the last halving
        return self.widths[-1] * self.out_steps(clip_len) * s * s


def save_backbone_weights(state_dict: dict[str, torch.Tensor], path: str | Path, arch: str = "c3d") -> None:
    """Write an aqa backbone file (see the module docstring) atomically."""
    buf = io.BytesIO()
    torch.save({"format": BACKBONE_FORMAT, "arch": arch,
                "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}}, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_backbone_weights(model_or_backbone: nn.Module, path: str | Path) -> None:
    """Load an aqa backbone file into a backbone (or into `AQAModel.backbone`), strictly.

    Raises WeightsError when the file is missing or unreadable, is not an aqa backbone file, was made
    for another architecture, or when its keys or tensor shapes differ from the backbone's (the
    message lists them: e.g. weights for full C3D loaded into the small one).
    """
    backbone = getattr(model_or_backbone, "backbone", model_or_backbone)
    arch = getattr(backbone, "arch", "c3d")
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"backbone weights file not found: {path}",
                           hint="make one with `aqa weights import-c3d c3d.pickle --out FILE`")
    blob = load_tensors(path, "backbone weights file")
    if not isinstance(blob, dict) or blob.get("format") != BACKBONE_FORMAT or "state_dict" not in blob:
        raise WeightsError(f"{path}: not an aqa backbone file (expected a dict with format "
                           f"{BACKBONE_FORMAT!r})", hint="convert with `aqa weights import-c3d`")
    if blob.get("arch") != arch:
        raise WeightsError(f"{path}: backbone weights are for {blob.get('arch')!r}, the model is {arch!r}")
    given, expected = blob["state_dict"], backbone.state_dict()
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(f"{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)}"
                    for k in set(given) & set(expected) if given[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{label}: {', '.join(items[:8])}{' …' if len(items) > 8 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected),
                                      ("shape (file vs model)", shapes)) if items]
        raise WeightsError(f"{path}: backbone weights do not fit the model ({'; '.join(parts)})",
                           hint="check model.width_divisor / model.backbone against the file")
    backbone.load_state_dict(given)
