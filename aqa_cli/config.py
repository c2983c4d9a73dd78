"""Typed configuration: dataclasses, YAML files and `--set key=value` overrides.

A run is described by one `RunConfig` with three sections, each a dataclass:

    model:  ModelConfig   what `build_model` builds (also stored in every checkpoint)
    data:   DataConfig    how samples are read and augmented
    train:  TrainConfig   optimisation and schedule

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
    """Everything needed to rebuild a model; stored in checkpoints as `model_config`.

    backbone: "c3d" (Tran et al. 2015; `width_divisor` > 1 gives the small CPU backbone) or "mscadc".
    task: "stl" (score head only) or "mtl" (score, five classification heads, captioner).
    """

    backbone: str = "c3d"
    task: str = "mtl"
    clip_len: int = 16  # frames per clip fed to the 3D CNN
    crop_size: int = 112  # spatial input (MSCADC: 180)
    width_divisor: int = 1  # divide every conv width by this (8 → the small demo backbone)
    stem_stride: int = 1  # C3D: 2 strides conv1 in space (twice the crop at about the same cost)
    stem_time_stride: int = 1  # C3D: 2 strides conv1 in time (twice clip_len at about the same cost)
    time_pool: str = "max"  # C3D: "avg" averages pool2-pool5 over time (max over space stays)
    head: str = "avg"  # C3D: "temporal" keeps time in pool4/pool5 and makes fc6 a conv over the steps
    feature_dim: int = 4096  # width of fc6, the shared feature the heads read
    batchnorm: bool = False  # C3D only: BatchNorm after every conv (the small from-scratch backbone)
    feature_norm: bool = False  # C3D-AVG only: BatchNorm on the clip-averaged feature before fc6
    dropout: float = 0.5
    classes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CLASSES))
    execution: bool = True  # MTL only: also regress execution (sum of the counted judges' marks)
    # C3D MTL only: more dropout on the feature the execution head reads, after `dropout` (0.375 after
    # 0.2 keeps half of it, as dropout 0.5 does) while the dive heads read it with `dropout` alone.
    execution_dropout: float = 0.0
    # C3D MTL only: read execution as a distribution over this many values evenly spaced on [0, 30] (61:
    # every half point), trained against a Gaussian around the judged execution (train.execution_sigma)
    # as USDL (Tang et al., CVPR 2020) does for the score; 0: one regressed number (MSE + L1).
    execution_bins: int = 0
    caption: bool = True  # MTL only: include the S2VT-style captioner
    caption_hidden: int = 512
    caption_embed: int = 512
    caption_layers: int = 2
    caption_dropout: float = 0.5
    caption_max_len: int = 100
    vocab_size: int = 0  # set from the dataset's vocabulary at training time
    pretrained: str = ""  # aqa backbone file (see `aqa weights import-c3d`) loaded into the convs
    # C3D MTL only: also regress the size of these annotated execution faults (SynDive's hidden
    # `faults`, e.g. knee_bend_deg), one linear output each: a training signal that names what the
    # judges deduct for. Training needs a root whose train split annotates every one of them.
    faults: list[str] = field(default_factory=list)


@dataclass
class DataConfig:
    """How samples are read from a dataset root and turned into clips."""

    root: str = ""
    frames: int = 103  # the MTL-AQA window: 103 frames ending at end_frame
    clips: int = 6  # the first clips × clip_len × stride (= 96) frames of the window form the clips
    stride: int = 1  # use every stride-th frame (2: 3 clips of 16 cover the same 96 frames as 6 at 1)
    jitter: int = 3  # training: shift the window by up to ± this many frames
    resize: tuple[int, int] = (171, 128)  # (width, height) frames are stored at
    hflip: float = 0.5  # training: probability of a horizontal flip
    scale: float = 0.0  # training: crop a square of crop × U(1 ± scale) pixels, resized to the crop
    shift: int = 0  # training: start the clips up to this many frames later within the window
    speed: float = 0.0  # training: play the window at a rate r ~ U(1 ± speed) (nearest frames)
    color: float = 0.0  # training: multiply each colour channel by its own gain ~ U(1 ± color)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet, RGB in [0, 1]
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    workers: int = 2  # DataLoader worker processes
    # Keep each sample's resized frames in memory after its first read, so later epochs skip the
    # resize (a quarter of a tiny-mtl epoch on 2 cores). Costs T×H×W×3 bytes per sample at the
    # resized size; only used with workers: 0 (DataLoader workers are rebuilt every epoch).
    cache: bool = False
    caption_max_len: int = 100  # training captions are cut to this many tokens


@dataclass
class TrainConfig:
    """Optimisation, loss weights and schedule."""

    epochs: int = 100
    batch_size: int = 3
    lr: float = 1e-4
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam (weight_decay added to the gradient) | adamw (decoupled decay)
    scheduler: str = "none"  # none | cosine
    score_mse: float = 1.0  # weight of the MSE term on the score
    score_l1: float = 1.0  # weight of the L1 term on the score
    execution_weight: float = 1.0  # weight of MSE + L1 on execution (MTL models with that head)
    execution_sigma: float = 1.5  # model.execution_bins: sd, in points, of the Gaussian target around the judged value
    # Weight of a pairwise ranking loss on execution (0: off): over the batch's pairs of dives with
    # different execution, log(1 + exp(-(e_i - e_j) / s)) for the one judged higher (i), s a quarter of
    # the train split's sd. Spearman scores the order; MSE + L1 weigh the few failed dives most.
    rank_weight: float = 0.0
    cls_weight: float = 1.0  # weight of the sum of the five cross-entropies
    label_smoothing: float = 0.0  # of the five cross-entropies' targets (torch's label_smoothing)
    fault_weight: float = 1.0  # weight of the mean MSE on the standardised fault sizes (model.faults)
    caption_weight: float = 0.01  # weight of the captioning cross-entropy
    # Weight of MSE + L1 between the rules score (expected DD at the dive's height under the five
    # heads x predicted execution) and the final score, both over the score's scale (0: off). It
    # trains the heads and execution on the score aqa eval and aqa score --height report.
    rules_weight: float = 0.0
    seed: int = 0
    # A time budget in minutes (0: none): a run whose epochs would not fit is shortened to the ones that
    # do, the cosine decaying over them, and one that still overruns stops mid-epoch (train.py).
    max_minutes: float = 0.0
    limit_batches: int = 0  # use only this many batches per epoch (0: all); for smoke runs
    grad_clip: float = 0.0  # clip the gradient norm to this (0: off)
    # Sharpness-aware minimisation (Foret et al., ICLR 2021; 0: off): each step takes the gradient at
    # the weights moved this far (L2) up the batch's gradient, so the optimiser seeks flat minima. Twice
    # the compute per step.
    sam_rho: float = 0.0
    # Exponential moving average of the weights (and BatchNorm statistics), updated after every step
    # with this decay (0: off). When on, the average is what is validated, saved as the model and tested.
    ema: float = 0.0
    # The validation metric whose Spearman picks the checkpoint: "score" (the score head) or
    # "expected_dd_x_execution" (the expected table DD of the predicted dive x predicted execution).
    select: str = "score"


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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
    **{f"model.{k}": ("[0, 1)", "a probability") for k in ("dropout", "execution_dropout", "caption_dropout")},
    **{f"data.{k}": ("[1, inf)", "") for k in ("frames", "clips", "stride", "caption_max_len")},
    **{f"data.{k}": ("[0, inf)", "frames") for k in ("jitter", "shift")},
    "data.workers": ("[0, inf)", "loader processes; 0 loads in the main process"),
    "data.hflip": ("[0, 1]", "a probability"),
    "data.scale": ("[0, 1)", "0.15: crops of 0.85x to 1.15x"),
    "data.speed": ("[0, 1)", "a rate spread; 0.1: 0.9x to 1.1x"),
    "data.color": ("[0, 1)", "a gain spread; 0.2: 0.8x to 1.2x"),
    "train.epochs": ("[1, inf)", ""),
    "train.batch_size": ("[1, 4096]", ""),
    "train.lr": ("(0, 10]", "a learning rate"),
    "train.seed": ("[0, inf)", ""),
    **{f"train.{k}": ("[0, inf)", "0: off") for k in ("weight_decay", "rank_weight", "rules_weight", "max_minutes",
                                                       "limit_batches", "grad_clip", "sam_rho")},
    **{f"train.{k}": ("[0, inf)", "a loss weight") for k in ("score_mse", "score_l1", "execution_weight",
                                                              "cls_weight", "fault_weight", "caption_weight")},
    "train.label_smoothing": ("[0, 1)", ""),
    "train.execution_sigma": ("(0, 30]", "points of execution"),
    "model.execution_bins": ("[0, 1000]", "0: one regressed number"),
    "train.ema": ("[0, 1)", "a decay per step; 0 turns the average off"),
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
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        return [_coerce(v, typing.get_args(ftype)[0], key) for v in value]
    if origin is dict:
        kt, vt = typing.get_args(ftype)
        if not isinstance(value, dict):
            raise bad
        return {_coerce(k, kt, key): _coerce(v, vt, key) for k, v in value.items()}
    raise bad


def _type_name(ftype: Any) -> str:
    if typing.get_origin(ftype):  # list[str], tuple[int, int]: the element types too
        return str(ftype).replace("typing.", "")
    return getattr(ftype, "__name__", None) or str(ftype)
