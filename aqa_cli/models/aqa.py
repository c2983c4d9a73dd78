"""The AQA model: a 3D-CNN backbone, task heads and an optional captioner, built from a `ModelConfig`.

Variants (`backbone` × `task`):

- C3D-AVG (backbone "c3d"): every clip through C3D to pool5; the clips' pool5 features averaged;
  fc6 (`feature_dim`, 4096 in the paper; ReLU, dropout) gives the video feature that all linear heads
  share. `width_divisor=8` with `feature_dim=512` is the small CPU demo model.
- C3D with `head: temporal`: pool4 and pool5 keep time, so each clip gives 4 pool5 steps (of 8
  frames with the time stem) and the clips together one sequence in order; fc6 becomes a width-3
  convolution over that sequence whose ReLU outputs are averaged over time, so a feature that fires
  once per half twist is summed over the dive (counted) rather than max-pooled away within a clip.
- MSCADC (backbone "mscadc"): BatchNorm trunk with dilated conv5 layers and a dilated context head per
  task (see mscadc.py); 16 frames at 180×180 in the paper.
- STL: the score head only. MTL: score, execution (if `execution`), one classifier per entry of
  `classes`, and the S2VT captioner (if `caption`) reading per-clip features (C3D: pool5; MSCADC: its
  caption head's features).

The N clips of a batch run through the backbone as one batch of B·N clips (at batch 1 some oneDNN
convolutions take a slow path). Conv weights are kept in `channels_last_3d` memory format and CPU input
is converted to it, which oneDNN's 3D convolutions run faster (see benchmarks/bench_models.py).
"""

from __future__ import annotations

import torch
from torch import nn

from aqa_cli.config import ModelConfig, from_dict
from aqa_cli.errors import ConfigError
from aqa_cli.models.c3d import C3D, C3D_WIDTHS, load_backbone_weights
from aqa_cli.models.captioner import Captioner
from aqa_cli.models.heads import ClassHeads, RegressionHead
from aqa_cli.models.i3d import I3D
from aqa_cli.models.mscadc import MSCADC_WIDTHS, MSCADCHeads, MSCADCTrunk

BACKBONES = ("c3d", "mscadc", "i3d")
TASKS = ("stl", "mtl")


class C3DAvgHeads(nn.Module):
    """C3D-AVG heads: clip features averaged, then fc6 shared by linear heads.

    forward: pool5 maps (B, N, C, t, h, w) → {"score": (B,), "execution": (B,), "logits": {name: (B, K)}}
    (execution and logits only where the config asks for them).
    """

    def __init__(self, cfg: ModelConfig, in_features: int):
        super().__init__()
        mtl = cfg.task == "mtl"
        # feature_norm: a from-scratch backbone's averaged pool5 features are all positive and differ
        # little between videos, so Adam's first steps switch most fc6 ReLUs off for good (73 % of them
        # dead after 30 steps of tiny-mtl, 11 % with this BatchNorm standardising each feature).
        norm = [nn.BatchNorm1d(in_features)] if cfg.feature_norm else []
        self.fc6 = nn.Sequential(*norm, nn.Linear(in_features, cfg.feature_dim), nn.ReLU(inplace=True),
                                 nn.Dropout(cfg.dropout))
        self.score = RegressionHead(cfg.feature_dim)
        self.execution = RegressionHead(cfg.feature_dim) if mtl and cfg.execution else None
        self.classes = ClassHeads(cfg.feature_dim, cfg.classes) if mtl else None
        self.caption_dim = in_features

    def video_feature(self, maps: torch.Tensor) -> torch.Tensor:
        """pool5 maps (B, N, C, t, h, w) → the shared video feature (B, feature_dim)."""
        return self.fc6(self.clip_features(maps).mean(1))

    def forward(self, maps: torch.Tensor) -> dict:
        video = self.video_feature(maps)
        out: dict = {"score": self.score(video)}
        if self.execution is not None:
            out["execution"] = self.execution(video)
        if self.classes is not None:
            out["logits"] = self.classes(video)
        return out

    @staticmethod
    def clip_features(maps: torch.Tensor) -> torch.Tensor:
        """(B, N, C, t, h, w) → (B, N, C·t·h·w): the flattened pool5 map of each clip."""
        return maps.flatten(2)

    caption_features = clip_features


class C3DTemporalHeads(C3DAvgHeads):
    """C3D-AVG's heads on a temporal fc6 (`head: temporal`, see the module docstring): the N·t pool5
    steps of C·h·w features each, in order, through BatchNorm (feature_norm), a width-3 Conv1d to
    `feature_dim`, ReLU, the mean over the steps and dropout. Same forward contract as C3DAvgHeads."""

    def __init__(self, cfg: ModelConfig, in_features: int, steps_per_clip: int):
        super().__init__(cfg, in_features)
        step = in_features // steps_per_clip
        norm = [nn.BatchNorm1d(step)] if cfg.feature_norm else []
        self.fc6 = nn.Sequential(*norm, nn.Conv1d(step, cfg.feature_dim, 3, padding=1), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(cfg.dropout)

    def video_feature(self, maps: torch.Tensor) -> torch.Tensor:
        steps = maps.transpose(2, 3).flatten(3).flatten(1, 2)  # (B, N·t, C·h·w), in time order
        return self.drop(self.fc6(steps.transpose(1, 2)).mean(2))


class AQAModel(nn.Module):
    """Backbone + heads (+ captioner). Input clips are float (B, N, 3, T, H, W), normalised frames.

    forward(clips, captions=None) → dict:
        score (B,); execution (B,) [MTL with execution]; logits {name: (B, K)} [MTL];
        caption_logits (B, L-1, V) [when captions (B, L) long ids are given; teacher forcing].
    generate(clips, max_len=None, beam=1) → (B, L) long ids after `<sos>`, 0-padded.
    predict(clips, max_len=None, beam=1) → forward's dict plus caption (B, L) ids, one backbone pass.
    clip_features(clips) → (B, N, D) per-clip features (C3D: pool5; MSCADC: trunk map averaged).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        if cfg.backbone == "c3d":
            temporal = cfg.head == "temporal"
            self.backbone: nn.Module = C3D(cfg.width_divisor, cfg.batchnorm, cfg.stem_time_stride,
                                           keep_time=temporal)
            feats = self.backbone.out_features(cfg.clip_len, cfg.crop_size)
            self.heads: nn.Module = (C3DTemporalHeads(cfg, feats, self.backbone.out_steps(cfg.clip_len))
                                     if temporal else C3DAvgHeads(cfg, feats))
        elif cfg.backbone == "i3d":  # Kinetics I3D (`model.pretrained`: aqa weights import-i3d's file)
            self.backbone = I3DTrunk()
            self.heads = C3DAvgHeads(cfg, I3DTrunk.feature_dim)
        else:
            self.backbone = MSCADCTrunk(cfg.width_divisor, cfg.dropout)
            t, s = MSCADCTrunk.out_size(cfg.clip_len, cfg.crop_size)
            self.heads = MSCADCHeads(cfg, self.backbone.out_channels, t, s)
        self.captioner = None
        if cfg.task == "mtl" and cfg.caption:
            self.captioner = Captioner(self.heads.caption_dim, cfg.vocab_size, cfg.caption_hidden,
                                       cfg.caption_embed, cfg.caption_layers, cfg.caption_dropout,
                                       cfg.caption_max_len)
        # oneDNN's 3D convolutions run faster on NDHWC weights (measured in benchmarks/bench_models.py);
        # `.to(device)` keeps the format, load_state_dict copies into it.
        self.to(memory_format=torch.channels_last_3d)

    def _maps(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, N, 3, T, H, W) → backbone maps (B, N, C, t, h, w), all B·N clips in one batch."""
        c = self.config
        if clips.dim() != 6 or tuple(clips.shape[2:]) != (3, c.clip_len, c.crop_size, c.crop_size):
            raise ValueError(f"clips must be (B, N, 3, {c.clip_len}, {c.crop_size}, {c.crop_size}) for this "
                             f"model, got shape {tuple(clips.shape)}")
        x = clips.flatten(0, 1)
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self.backbone(x).unflatten(0, clips.shape[:2])

    def forward(self, clips: torch.Tensor, captions: torch.Tensor | None = None) -> dict:
        maps = self._maps(clips)
        out = self.heads(maps)
        if captions is not None:
            if self.captioner is None:
                raise ValueError("captions were given to a model without a captioner")
            out["caption_logits"] = self.captioner(self.heads.caption_features(maps), captions)
        return out

    def clip_features(self, clips: torch.Tensor) -> torch.Tensor:
        return self.heads.clip_features(self._maps(clips))

    @torch.no_grad()
    def generate(self, clips: torch.Tensor, max_len: int | None = None, beam: int = 1) -> torch.Tensor:
        """Commentary ids (B, L) for clips (B, N, 3, T, H, W); call in eval mode (dropout off)."""
        if self.captioner is None:
            raise ValueError("this model has no captioner (task stl or caption: false)")
        return self._decode(self._maps(clips), max_len, beam)

    @torch.no_grad()
    def predict(self, clips: torch.Tensor, max_len: int | None = None, beam: int = 1) -> dict:
        """Inference: forward(clips) outputs plus `caption` (B, L) ids as generate() gives them (models
        with a captioner), from one backbone pass (the backbone is most of the model's time). Call in
        eval mode."""
        maps = self._maps(clips)
        out = self.heads(maps)
        if self.captioner is not None:
            out["caption"] = self._decode(maps, max_len, beam)
        return out

    def _decode(self, maps: torch.Tensor, max_len: int | None, beam: int) -> torch.Tensor:
        """Backbone maps (B, N, C, t, h, w) → commentary ids (B, L): greedy, or beam search for beam > 1."""
        feats = self.heads.caption_features(maps)
        if beam <= 1:
            return self.captioner.greedy(feats, max_len)
        return self.captioner.beam_search(feats, beam, max_len)


class I3DTrunk(I3D):
    """The I3D as a backbone: clips (B, 3, T, H, W) in [-1, 1] → Mixed_5c averaged over (T, H, W), kept
    as a (B, 1024, 1, 1, 1) map so the C3D-AVG heads read it as they read pool5. Its state dict is the
    I3D's (the unused Kinetics logits included), so the imported Kinetics file loads as it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[:, :, None, None, None]


def build_model(cfg: ModelConfig | dict, load_pretrained: bool = True) -> AQAModel:
    """Build the model a config describes; load `cfg.pretrained` into the backbone when set.

    `load_pretrained=False` skips that file (rebuilding from a checkpoint, whose weights replace it).
    Raises ConfigError for values no model can be built from.
    """
    if isinstance(cfg, dict):
        cfg = from_dict(ModelConfig, cfg, where="model config")
    _check(cfg)
    model = AQAModel(cfg)
    if cfg.pretrained and load_pretrained:
        load_backbone_weights(model, cfg.pretrained)
    return model


# Options only the C3D backbone has: each one's default, and the one other value it takes.
C3D_OPTIONS = {"stem_time_stride": (1, 2), "head": ("avg", "temporal")}


def _check(cfg: ModelConfig) -> None:
    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"model.backbone {cfg.backbone!r} is not one of {', '.join(BACKBONES)}")
    if cfg.task not in TASKS:
        raise ConfigError(f"model.task {cfg.task!r} is not one of {', '.join(TASKS)}")
    widths = {"c3d": C3D_WIDTHS, "mscadc": MSCADC_WIDTHS}.get(cfg.backbone, ())
    if cfg.backbone == "i3d" and cfg.width_divisor != 1:
        raise ConfigError("model.width_divisor: the i3d backbone has the release's widths (1)")
    if cfg.width_divisor < 1 or any(w % cfg.width_divisor for w in widths):
        raise ConfigError(f"model.width_divisor {cfg.width_divisor} must divide every conv width {widths}")
    for key, (default, other) in C3D_OPTIONS.items():
        value = getattr(cfg, key)
        if value not in (default, other) or (value == other and cfg.backbone != "c3d"):
            raise ConfigError(f"model.{key} {value!r}: {default}, or {other} with the c3d backbone")
    # Smallest clips whose maps survive every pool and trimming conv (see c3d.py / mscadc.py), counted
    # after conv1's stride in time.
    min_len, min_crop = {"c3d": (16, 16), "mscadc": (16, 32), "i3d": (1, 32)}[cfg.backbone]
    if cfg.clip_len // cfg.stem_time_stride < min_len or cfg.crop_size < min_crop:
        strided = " after the stem's time stride" if cfg.stem_time_stride != 1 else ""
        raise ConfigError(f"model.clip_len {cfg.clip_len} / crop_size {cfg.crop_size} too small for "
                          f"{cfg.backbone} (needs at least {min_len} frames of {min_crop}×{min_crop}{strided})")
    if cfg.feature_dim < 1:
        raise ConfigError(f"model.feature_dim must be positive, got {cfg.feature_dim}")
    bad = {k: v for k, v in cfg.classes.items() if v < 2}
    if bad:
        raise ConfigError(f"model.classes needs at least 2 classes per head, got {bad}")
    if cfg.task == "mtl" and cfg.caption and cfg.vocab_size < 3:
        raise ConfigError(f"model.vocab_size {cfg.vocab_size}: a captioning model needs the dataset's "
                          "vocabulary size (at least 3: <eos>, <sos>, <unk>)",
                          hint="set model.vocab_size, or model.caption=false")
