"""MSCADC: multiscale context aggregation with dilated convolutions (Parmar & Morris, CVPR 2019).

What the paper describes, completed from the authors' code release (github.com/ParitoshParmar/MTL-AQA,
`models/MSCADC`), which fills in the sizes the paper leaves out:

- Input: one clip of 16 frames taken across the 103-frame window (every 6.5 frames), centre 180×180
  crop of frames resized to 640×360. Choosing those frames is the data loader's job; here a clip is
  any (3, T, H, W) tensor.
- Trunk: the C3D topology at half width (32, 64, 128, 128, 256, 256, 256, 256), each conv followed by
  BatchNorm and ReLU; pools after conv1 (1,2,2), conv2 and conv3b (2,2,2); no pool4/pool5; conv5a and
  conv5b dilated by 2 (conv5b is padded 1 only, so it trims one voxel per side); dropout at the end.
  16×180×180 → 256×2×20×20.
- Each task has its own head (`ContextHead`): a 1×1×1 bottleneck to 12 channels (padded 1, as in the
  release: the map grows by a border of bias values), replication padding 9, the context module —
  unpadded 3×3×3 convs with dilations 1, 1, 2, 4, 1 and widths 24, 24, 48, 96, 96, BN+ReLU (Yu &
  Koltun's context module, in 3D) — a 1×1×1 conv back to 12, BN+ReLU, max pool 2, a 3×3×3 conv with
  BN+ReLU. The score head ends in a 3×3×3 conv to 1 channel averaged over the map; the classification
  head is one context head with five such output convs (3, 2, 4, 10, 8 channels); the caption head
  ends in a 3×3×3 conv and a max pool (2, stride 1), flattened into 12×1×10×10 = 1200 features.

Choices of aqa where the sources say nothing or fix a size:
- The final average is over the whole map (the release's AvgPool (2,11,11) at 16×180×180), so smaller
  test inputs also work; at 16×180×180 the two are the same.
- `execution` (aqa's extra head) is one more context head shaped like the score head.
- `width_divisor` divides the trunk widths as it does C3D's (1 is the paper's net); the heads' 12-channel
  bottleneck is kept.
- Several clips per video (the paper uses one): each clip runs through trunk and heads, and the
  outputs are averaged over clips; the captioner reads one caption feature per clip.
"""

from __future__ import annotations

import torch
from torch import nn

from aqa_cli.models.c3d import C3D_LAYERS, scaled_widths

MSCADC_WIDTHS = (32, 64, 128, 128, 256, 256, 256, 256)
_POOL_AFTER = {0: (1, 2, 2), 1: (2, 2, 2), 3: (2, 2, 2)}
# (dilation, padding) per conv index; others are (1, 1). conv5b's padding of 1 with dilation 2 trims
# one voxel per side, as in the release.
_DILATED = {6: (2, 2), 7: (2, 1)}

BOTTLENECK = 12
# Context module: (width as a multiple of BOTTLENECK, dilation) of each unpadded 3×3×3 conv.
_CONTEXT = ((2, 1), (2, 1), (4, 2), (8, 4), (8, 1))
# An unpadded 3×3×3 conv with dilation d trims d voxels per side: padding by their sum keeps the size.
_CONTEXT_PAD = sum(d for _, d in _CONTEXT)


class MSCADCTrunk(nn.Module):
    """The shared trunk. forward: clips (M, 3, T, H, W) → maps (M, C, T//4 - 2, H//8 - 2, W//8 - 2)."""

    arch = "mscadc"  # the `arch` an aqa backbone file must name to load here

    def __init__(self, width_divisor: int = 1, dropout: float = 0.5):
        super().__init__()
        self.widths = scaled_widths(MSCADC_WIDTHS, width_divisor)
        in_ch = 3
        for i, (name, width) in enumerate(zip(C3D_LAYERS, self.widths)):
            dilation, padding = _DILATED.get(i, (1, 1))
            self.add_module(name, nn.Conv3d(in_ch, width, 3, padding=padding, dilation=dilation))
            self.add_module(name.replace("conv", "bn"), nn.BatchNorm3d(width))
            in_ch = width
        self.pools = nn.ModuleList(nn.MaxPool3d(k, stride=k) for k in _POOL_AFTER.values())
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    @property
    def out_channels(self) -> int:
        return self.widths[-1]

    @staticmethod
    def out_size(clip_len: int, crop_size: int) -> tuple[int, int]:
        """(frames, side) of the trunk's map for a clip of `clip_len` frames at `crop_size`²."""
        return clip_len // 4 - 2, crop_size // 8 - 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pools = iter(self.pools)
        for i, name in enumerate(C3D_LAYERS):
            x = self.relu(getattr(self, name.replace("conv", "bn"))(getattr(self, name)(x)))
            if i in _POOL_AFTER:
                x = next(pools)(x)
        return self.dropout(x)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, **kw) -> list[nn.Module]:
    return [nn.Conv3d(in_ch, out_ch, kernel, **kw), nn.BatchNorm3d(out_ch), nn.ReLU(inplace=True)]


class ContextHead(nn.Module):
    """The dilated context head every task owns.

    forward: trunk maps (M, C, t, h, w) → (M, 12, (t+2)//2, (h+2)//2, (w+2)//2).
    """

    def __init__(self, in_ch: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv3d(in_ch, BOTTLENECK, 1, padding=1),
                                   nn.ReplicationPad3d(_CONTEXT_PAD)]
        ch = BOTTLENECK
        for mult, dilation in _CONTEXT:
            layers += _conv_bn_relu(ch, BOTTLENECK * mult, 3, dilation=dilation)
            ch = BOTTLENECK * mult
        layers += [nn.Conv3d(ch, BOTTLENECK, 1), nn.BatchNorm3d(BOTTLENECK), nn.ReLU(inplace=True),
                   nn.MaxPool3d(2)]
        layers += _conv_bn_relu(BOTTLENECK, BOTTLENECK, 3, padding=1)
        self.layers = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.layers(maps)


class ContextOutputs(nn.Module):
    """A context head with named outputs, each a 3×3×3 conv to K channels averaged over the map.

    forward: (M, C, t, h, w) → {name: (M, K)}.
    """

    def __init__(self, in_ch: int, outputs: dict[str, int]):
        super().__init__()
        self.context = ContextHead(in_ch)
        self.outputs = nn.ModuleDict({name: nn.Conv3d(BOTTLENECK, k, 3, padding=1)
                                      for name, k in outputs.items()})

    def forward(self, maps: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.context(maps)
        return {name: conv(h).mean(dim=(2, 3, 4)) for name, conv in self.outputs.items()}


class ContextCaptionFeatures(nn.Module):
    """The caption task's context head: (M, C, t, h, w) → (M, D) features, D = 1200 at 16×180×180."""

    def __init__(self, in_ch: int):
        super().__init__()
        self.context = ContextHead(in_ch)
        self.conv = nn.Conv3d(BOTTLENECK, BOTTLENECK, 3, padding=1)
        self.pool = nn.MaxPool3d(2, stride=1)

    @staticmethod
    def out_features(t: int, s: int) -> int:
        """Feature size for a trunk map of t frames and s×s pixels."""
        return BOTTLENECK * ((t + 2) // 2 - 1) * ((s + 2) // 2 - 1) ** 2

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.context(maps))).flatten(1)


class MSCADCHeads(nn.Module):
    """Every head of an MSCADC model, reading the trunk maps of all clips of a batch.

    forward: maps (B, N, C, t, h, w) → {"score": (B,), "execution": (B,), "logits": {name: (B, K)}}
    (execution and logits only where the config asks for them), each averaged over the N clips.
    caption_features: maps → (B, N, caption_dim).
    """

    def __init__(self, cfg, in_ch: int, t: int, s: int):
        super().__init__()
        mtl = cfg.task == "mtl"
        self.score = ContextOutputs(in_ch, {"score": 1})
        self.execution = ContextOutputs(in_ch, {"execution": 1}) if mtl and cfg.execution else None
        self.classes = ContextOutputs(in_ch, dict(cfg.classes)) if mtl else None
        self.caption = ContextCaptionFeatures(in_ch) if mtl and cfg.caption else None
        self.caption_dim = ContextCaptionFeatures.out_features(t, s)

    def forward(self, maps: torch.Tensor) -> dict:
        b, n = maps.shape[:2]
        flat = maps.flatten(0, 1)

        def per_video(x: torch.Tensor) -> torch.Tensor:
            return x.unflatten(0, (b, n)).mean(1)

        out: dict = {"score": per_video(self.score(flat)["score"]).squeeze(1)}
        if self.execution is not None:
            out["execution"] = per_video(self.execution(flat)["execution"]).squeeze(1)
        if self.classes is not None:
            out["logits"] = {name: per_video(v) for name, v in self.classes(flat).items()}
        return out

    def caption_features(self, maps: torch.Tensor) -> torch.Tensor:
        return self.caption(maps.flatten(0, 1)).unflatten(0, maps.shape[:2])

    @staticmethod
    def clip_features(maps: torch.Tensor) -> torch.Tensor:
        """(B, N, C, t, h, w) → (B, N, C): the trunk map averaged over time and space."""
        return maps.mean(dim=(3, 4, 5))
