"""Typed configuration: dataclasses, YAML files and `--set key=value` overrides.

A run is described by one `RunConfig` with four sections, each a dataclass:

    model:  ModelConfig   what `build_model` builds (also stored in every checkpoint)
    data:   DataConfig    how samples are read and augmented
    train:  TrainConfig   optimisation and schedule
    semi:   SemiConfig    training on segment features: S4AQA and its supervised baseline (semi.py)

Configs shipped with aqa live in `aqa_cli/configs/NAME.yaml`; `load_config("tiny-mtl")` or
`load_config("my.yaml")` reads one, then `--set train.lr=3e-4` style overrides are applied with type
checking. A misspelled key is a `ConfigError` that names the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aqa_cli.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "configs"

# Label spaces of the MTL-AQA release (see rules.py): position free/pike/tuck; armstand no/yes;
# rotation back/forward/inward/reverse; half somersaults 0..9; half twists 0..7.
DEFAULT_CLASSES = {"position": 3, "armstand": 2, "rotation_type": 4, "ss_no": 10, "tw_no": 8}


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model; stored in checkpoints as `model_config`."""

    backbone: str = "c3d"  # "c3d" (Tran et al. 2015), "mscadc" (Parmar & Morris 2019) or "i3d" (Kinetics)
    task: str = "mtl"  # "stl": the score head only; "mtl": score, execution, dive classes, captioner
    clip_len: int = 16  # frames per clip fed to the 3D CNN
    crop_size: int = 112  # side of the square input, pixels (MSCADC: 180)
    width_divisor: int = 1  # divide every conv width by this (8: the small CPU backbone)
    stem_time_stride: int = 1  # C3D: 2 strides conv1 in time (twice clip_len at about the same cost)
    head: str = "avg"  # C3D: "temporal" keeps time in pool4/pool5 and makes fc6 a conv over the steps
    feature_dim: int = 4096  # width of fc6, the video feature every linear head reads
    batchnorm: bool = False  # C3D: BatchNorm after every conv (a backbone trained from scratch)
    feature_norm: bool = False  # C3D: BatchNorm on the pool5 features before fc6 (keeps its ReLUs alive)
    dropout: float = 0.5  # after fc6 (MSCADC: after the trunk)
    classes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CLASSES))  # classes per dive head
    execution: bool = True  # MTL: also regress execution (the sum of the three counted judges' marks)
    caption: bool = True  # MTL: include the S2VT commentary generator
    caption_hidden: int = 512  # width of the captioner's GRUs
    caption_embed: int = 512  # width of its word embedding
    caption_layers: int = 2  # GRU layers
    caption_dropout: float = 0.5  # between GRU layers
    caption_max_len: int = 100  # longest generated commentary, in tokens
    vocab_size: int = 0  # set from the train split's commentary at training time
    pretrained: str = ""  # aqa backbone file loaded into the backbone (`aqa weights import-c3d` or `import-i3d`)


@dataclass
class DataConfig:
    """How samples are read from a dataset root and turned into clips."""

    root: str = ""  # the dataset root (`--data`)
    frames: int = 103  # the dive window: this many frames ending at the annotated end frame
    clips: int = 6  # the window's first clips × clip_len × stride frames (96) form the clips
    stride: int = 1  # use every stride-th frame (2: 3 clips of 16 cover the 96 frames 6 cover at 1)
    jitter: int = 3  # training: shift the window by up to ± this many frames
    resize: tuple[int, int] = (171, 128)  # (width, height) the frames are resized to before cropping
    hflip: float = 0.5  # training: probability of a horizontal flip
    scale: float = 0.0  # training: crop a square of crop × U(1 ± scale) pixels, resized to the crop
    shift: int = 0  # training: start the clips up to this many frames into the window (evaluation: half)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # per RGB channel, of pixels in [0, 1] (ImageNet)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)  # per RGB channel, likewise (ImageNet)
    workers: int = 2  # DataLoader worker processes (0: load in the training process)
    cache: bool = False  # with workers 0: keep each sample's resized frames in memory after its first read
    caption_max_len: int = 100  # training captions are cut to this many tokens


@dataclass
class TrainConfig:
    """Optimisation, loss weights and schedule (the loss terms: losses.py)."""

    epochs: int = 100  # passes over the train split
    batch_size: int = 3  # dives per step (per process under torchrun)
    lr: float = 1e-4  # learning rate of Adam / AdamW
    weight_decay: float = 0.0  # L2 penalty (adam) or decoupled decay (adamw)
    optimizer: str = "adam"  # adam (weight_decay added to the gradient) | adamw (decoupled decay)
    scheduler: str = "none"  # none | cosine (to 0 at the last epoch)
    score_mse: float = 1.0  # weight of the MSE term of the score and execution regressions
    score_l1: float = 1.0  # weight of their L1 term
    execution_weight: float = 1.0  # weight of the execution regression (MTL models with that head)
    cls_weight: float = 1.0  # weight of the sum of the five dive classes' cross-entropies
    caption_weight: float = 0.01  # weight of the captioning cross-entropy
    seed: int = 0  # initialisation, epoch order and augmentation all follow from it
    max_minutes: float = 0.0  # time budget (0: none): fewer epochs when they would not fit (budget.py)
    limit_batches: int = 0  # use only this many batches per epoch (0: all); for smoke runs
    grad_clip: float = 0.0  # clip the gradient norm to this (0: off)
    ema: float = 0.0  # decay per step of a moving average of the weights, validated and saved (0: off)
    select: str = "score"  # val Spearman that picks the checkpoint: score | expected_dd_x_execution


@dataclass
class SemiConfig:
    """Training on precomputed segment features (semi.py): `--task s4aqa` and its baseline `--task regress`."""

    features: str = ""  # features folder of the dataset root (`--features`)
    unlabeled: str = ""  # features folder of an extra unscored root: all its samples unlabelled
    group: str = ""  # read splits/<group>/{train,val,test}.txt (Rhythmic Gymnastics: one apparatus)
    labeled_ratio: float = 0.1  # fraction of the train split whose scores training uses
    labeled_seed: int = 0  # which video of each score stratum is labelled
    segments: int = 0  # 0: the features' own count (equal for all); N: each sample resampled to N
    width: int = 256  # encoder width H
    layers: int = 2  # encoder transformer blocks
    heads: int = 4  # attention heads (width must divide by it)
    dropout: float = 0.1  # in the encoder and the regressor
    unlabeled_batch: int = 16  # unlabelled videos per step (s4aqa)
    recovery_weight: float = 50.0  # λ1, weight of the L1 feature recovery
    alignment_weight: float = 0.1  # λ2, weight of the discriminator's cross-entropy
    grl: float = 1.0  # gradient reversal: D's gradient reaches the encoder times -grl


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    semi: SemiConfig = field(default_factory=SemiConfig)


def available_configs() -> list[str]:
    """Names of the configs shipped with aqa (`aqa_cli/configs/*.yaml`)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a shipped config by name or a YAML file by path, then apply `key=value` overrides."""
    path = Path(name_or_path)
    if not path.suffix and len(path.parts) == 1 and not str(name_or_path).startswith("."):  # a name, not ./smoke
        path = CONFIG_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"no config named {str(name_or_path)!r}; available: {', '.join(available_configs())}"
            )
    elif not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at} ({getattr(exc, 'problem', None) or str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections model/data/train")
    cfg = from_dict(RunConfig, raw, where=str(path))
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """Apply `section.key=value` strings (values parsed as YAML, then type-checked)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        target: Any = cfg
        for i, part in enumerate(parts):
            names = [f.name for f in dataclasses.fields(target)]
            if part not in names:
                prefix = ".".join(parts[:i])
                full = [f"{prefix}.{n}" if prefix else n for n in names]
                raise ConfigError(f"unknown config key {key!r}{_did_you_mean(key, _all_keys(cfg), full)}")
            if i == len(parts) - 1:
                ftype = _field_types(type(target))[part]
                value = _coerce(yaml.safe_load(text) if text.strip() else "", ftype, f"--set {key}")
                setattr(target, part, value)
            else:
                target = getattr(target, part)
                if not dataclasses.is_dataclass(target):
                    raise ConfigError(f"config key {key!r}: {'.'.join(parts[: i + 1])} is not a section")
    return cfg


def to_dict(obj: Any) -> dict:
    """A plain dict (lists for tuples) that YAML, JSON and `torch.load(weights_only=True)` accept."""
    def plain(v: Any) -> Any:
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(obj).items()}


def from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build dataclass `cls` from a dict, recursing into nested dataclasses, checking every key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    types = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in types:
            raise ConfigError(f"{where}: unknown key {key!r}{_did_you_mean(key, list(types))}")
        ftype = types[key]
        if dataclasses.is_dataclass(ftype):
            kwargs[key] = from_dict(ftype, value or {}, where=f"{where}: {key}")
        else:
            kwargs[key] = _coerce(value, ftype, f"{where}.{key}" if ": " in where else f"{where}: {key}")
    return cls(**kwargs)


# Numeric keys, the values they accept (an interval, "inf" for no upper bound) and what the value means.
# `check_values` refuses the rest before training starts, not as a torch error (or a NaN loss) later.
RANGES: dict[str, tuple[str, str]] = {
    **{f"model.{k}": (f"[1, {hi}]", "") for k, hi in (("clip_len", 512), ("width_divisor", 64), ("feature_dim", 65536),
                                                      ("caption_hidden", 8192), ("caption_embed", 8192),
                                                      ("caption_layers", 8), ("caption_max_len", 1000))},
    "model.crop_size": ("[8, 1080]", "pixels"),
    **{f"model.{k}": ("[0, 1)", "a probability") for k in ("dropout", "caption_dropout")},
    **{f"data.{k}": ("[1, inf)", "") for k in ("frames", "clips", "stride", "caption_max_len")},
    **{f"data.{k}": ("[0, inf)", "frames") for k in ("jitter", "shift")},
    "data.workers": ("[0, inf)", "loader processes; 0 loads in the main process"),
    "data.hflip": ("[0, 1]", "a probability"),
    "data.scale": ("[0, 1)", "0.15: crops of 0.85x to 1.15x"),
    "train.epochs": ("[1, inf)", ""),
    "train.batch_size": ("[1, 4096]", ""),
    "train.lr": ("(0, 10]", "a learning rate"),
    "train.seed": ("[0, inf)", ""),
    **{f"train.{k}": ("[0, inf)", "0: off") for k in ("weight_decay", "max_minutes", "limit_batches", "grad_clip")},
    **{f"train.{k}": ("[0, inf)", "a loss weight") for k in ("score_mse", "score_l1", "execution_weight",
                                                              "cls_weight", "caption_weight")},
    "train.ema": ("[0, 1)", "a decay per step; 0 turns the average off"),
    "semi.labeled_ratio": ("(0, 1]", "a fraction of the train split"),
    **{f"semi.{k}": ("[0, inf)", "") for k in ("labeled_seed", "segments")},
    **{f"semi.{k}": (f"[1, {hi}]", "") for k, hi in (("width", 8192), ("layers", 64), ("heads", 64),
                                                     ("unlabeled_batch", 4096))},
    "semi.dropout": ("[0, 1)", "a probability"),
    **{f"semi.{k}": ("[0, inf)", "a loss weight; 0: off") for k in ("recovery_weight", "alignment_weight")},
    "semi.grl": ("[0, inf)", "the reversed gradient's scale"),
}


def check_values(cfg: RunConfig) -> None:
    """Raise ConfigError naming the first key in RANGES whose value is outside its interval (or NaN); also
    data.mean must be finite and data.std positive, and model.classes must name heads with at least the
    classes the datasets' labels use (DEFAULT_CLASSES)."""
    import math

    for key, (interval, meaning) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        lo, hi = (float(x) for x in interval[1:-1].split(","))
        inside = (lo <= value if interval[0] == "[" else lo < value) and (value <= hi if interval[-1] == "]" else value < hi)
        if not (math.isfinite(value) and inside):
            shown = f">= {lo:g}" if hi == math.inf else interval
            raise ConfigError(f"{key}={value}: expected {shown}" + (f" ({meaning})" if meaning else ""))
    if not all(math.isfinite(m) for m in cfg.data.mean) or not all(math.isfinite(v) and v > 0 for v in cfg.data.std):
        raise ConfigError(f"data.mean={list(cfg.data.mean)}, data.std={list(cfg.data.std)}: expected finite means "
                          "and standard deviations > 0 (per RGB channel, of pixels in [0, 1])")
    for head, n in cfg.model.classes.items():
        if head not in DEFAULT_CLASSES:
            raise ConfigError(f"model.classes: unknown head {head!r}{_did_you_mean(head, list(DEFAULT_CLASSES))}")
        if n < DEFAULT_CLASSES[head]:
            raise ConfigError(f"model.classes.{head}={n}: the labels use {DEFAULT_CLASSES[head]} classes")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _all_keys(cfg: RunConfig) -> list[str]:
    return [
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(cfg)
        for f in dataclasses.fields(getattr(cfg, section.name))
    ]


def _did_you_mean(key: str, *candidate_lists: list[str]) -> str:
    candidates = [c for lst in candidate_lists for c in lst]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _coerce(value: Any, ftype: Any, key: str) -> Any:
    """Check `value` against the annotated type; ints are accepted where floats are expected."""
    origin = typing.get_origin(ftype)
    bad = ConfigError(f"{key}: expected {_type_name(ftype)}, got {value!r}")
    if ftype is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if ftype is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if ftype is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if ftype is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad
        return str(value)
    if origin is tuple:
        args = typing.get_args(ftype)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise bad
        return tuple(_coerce(v, t, key) for v, t in zip(value, args))
    if origin is dict:
        kt, vt = typing.get_args(ftype)
        if not isinstance(value, dict):
            raise bad
        return {_coerce(k, kt, key): _coerce(v, vt, key) for k, v in value.items()}
    raise bad


def _type_name(ftype: Any) -> str:
    if typing.get_origin(ftype):  # tuple[int, int], dict[str, int]: the element types too
        return str(ftype).replace("typing.", "")
    return getattr(ftype, "__name__", None) or str(ftype)
