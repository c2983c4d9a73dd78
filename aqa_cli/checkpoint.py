"""THE checkpoint schema: every aqa model file is written and read here, and nowhere else.

A checkpoint is one plain dict saved with `torch.save` and read with `torch.load(weights_only=True)`
(`storage.load_tensors`), so loading never runs code:

    format_version  int (FORMAT)
    model           state dict
    model_config    dict of ModelConfig: the model is rebuilt from it alone
    preprocess      Preprocess as a dict: how frames become the model's clips
    vocab           list of words (text.Vocabulary.words); [] for models without a captioner
    label_maps      {"position": ["free", "pike", "tuck"], ...} class names per head
    train_config    dict of RunConfig (how it was trained)
    metrics         {"val": {...}, "test": {...}} as measured at save time
    data            {"name", "source", "synthetic": bool, "version", "train_samples",
                    "heights": {height: count}}: what it was trained on
    source_revision git commit of aqa that trained it ("" when unknown)
    state           training state for --resume (last.pt only): epoch, best, optimizer, scheduler,
                    rng, ema_steps, trained_model, epochs_fitted

`Checkpoint` is that dict as a dataclass. Files written before the retired experiments left aqa still
load when they did not use them (their keys at the neutral value are dropped); one that did is refused
in one line naming the option and the last commit that had it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqa_cli.config import DataConfig, ModelConfig, RunConfig, from_dict, to_dict
from aqa_cli.errors import WeightsError
from aqa_cli.storage import atomic_write_bytes, load_tensors

FORMAT = 1
REQUIRED_KEYS = ("format_version", "model", "model_config", "preprocess")
PREPROCESS_KEYS = ("clips", "clip_len", "resize", "crop", "mean", "std")  # what scoring cannot guess

# Options removed with the experiments that were not kept (experiments/RESULTS.md), with the value at
# which they did nothing. The last aqa commit that had them: RETIRED_AT.
RETIRED_AT = "b9486e7"
RETIRED: dict[str, dict[str, Any]] = {
    "model": {"stem_stride": 1, "time_pool": "max", "execution_dropout": 0.0, "execution_bins": 0, "faults": []},
    "data": {"speed": 0.0, "color": 0.0},
    "train": {"rank_weight": 0.0, "rules_weight": 0.0, "sam_rho": 0.0, "execution_sigma": None,
              "label_smoothing": 0.0, "fault_weight": None},
}  # None: any value is neutral (a weight or width of a term that is off)


@dataclass
class Preprocess:
    """How a video's frames become the model's input: `frames` of the dive window, resized to `resize`
    (width, height), cut into `clips` clips of `clip_len` frames every `stride`-th frame starting up to
    `shift` frames into the window (evaluation: `shift // 2`), centre-cropped to `crop`, normalised."""

    clips: int
    clip_len: int
    resize: tuple[int, int]
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    frames: int = 103  # the MTL-AQA window
    stride: int = 1
    shift: int = 0  # checkpoints older than this key evaluate from the window's first frame

    @classmethod
    def from_config(cls, cfg: RunConfig) -> Preprocess:
        return cls(frames=cfg.data.frames, clips=cfg.data.clips, clip_len=cfg.model.clip_len,
                   resize=tuple(cfg.data.resize), crop=cfg.model.crop_size, mean=tuple(cfg.data.mean),
                   std=tuple(cfg.data.std), stride=cfg.data.stride, shift=cfg.data.shift)

    def data_config(self, root: str | Path, workers: int = 0) -> DataConfig:
        """The DataConfig that reads `root` as the model was trained to see it (no augmentation)."""
        return DataConfig(root=str(root), frames=self.frames, clips=self.clips, stride=self.stride,
                          shift=self.shift, resize=tuple(self.resize), mean=tuple(self.mean),
                          std=tuple(self.std), workers=workers)


@dataclass
class Checkpoint:
    """An aqa model file in memory (see the module docstring for each field)."""

    model: dict[str, Any]
    model_config: ModelConfig
    preprocess: Preprocess
    vocab: list[str] = field(default_factory=list)
    label_maps: dict[str, list[str]] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    source_revision: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """True when the weights were trained on synthetic data (SynDive): say so wherever they score."""
        return bool(self.data.get("synthetic"))

    def run_config(self, where: str = "checkpoint") -> RunConfig:
        return from_dict(RunConfig, self.train_config, where=f"{where} train_config")

    @property
    def on_features(self) -> bool:
        """True for a model on precomputed segment features (S4AQA, its baseline or the baseline with MTL
        heads: `aqa train --task s4aqa|regress|mtl-features`): it reads the features in
        data["features"]'s index, not frames."""
        from aqa_cli.models.s4aqa import TASKS

        return self.model_config.task in TASKS

    def feature_positions(self) -> tuple[int, int]:
        """(segments, pad) for datasets.features.load_features / stack_features: how a features model
        reads a sample's (T, D) features: padded to its `preprocess.clips` positions with the length kept
        (data["padded"]: stride features of routines), or resampled to that many segments."""
        clips = self.preprocess.clips
        return (0, clips) if self.data.get("padded") else (clips, 0)

    def build_model(self):
        """The model rebuilt from `model_config` with its weights loaded (eval mode, CPU). A features
        model (`on_features`) takes its input width from data["features"]["dim"], its positions from
        preprocess.clips, its encoder's sizes from train_config["semi"] and (mtl-features) its dive
        heads from model_config.classes."""
        from aqa_cli.models import build_model

        return self.load_into(self._build_features_model() if self.on_features else build_model(self.model_config))

    def load_into(self, model, path: str | Path | None = None):
        """`model` (built from `model_config`) with these weights, in eval mode; WeightsError in one line
        (naming `path` when given) when they do not fit it."""
        missing, unexpected = model.load_state_dict(self.model, strict=False)
        if missing or unexpected:
            raise WeightsError(f"{path or 'checkpoint'}: weights do not fit their own model config: missing "
                               f"{list(missing)[:5]}, unexpected {list(unexpected)[:5]}")
        return model.eval()

    def _build_features_model(self):
        from aqa_cli.models.s4aqa import build_s4aqa

        semi = self.train_config.get("semi") or {}
        dim = (self.data.get("features") or {}).get("dim")
        if not isinstance(dim, int) or not all(isinstance(semi.get(k), int) for k in ("width", "layers", "heads")):
            raise WeightsError("features checkpoint lacks its features' width or its encoder's sizes "
                               "(data.features.dim, train_config.semi)", hint="train it again with aqa train")
        return build_s4aqa(self.model_config.task, dim, self.preprocess.clips, semi["width"], semi["layers"],
                           semi["heads"], float(semi.get("dropout", 0.0)), classes=dict(self.model_config.classes))

    def to_dict(self) -> dict[str, Any]:
        out = {"format_version": FORMAT, "model": self.model, "model_config": to_dict(self.model_config),
               "preprocess": to_dict(self.preprocess), "vocab": list(self.vocab),
               "label_maps": self.label_maps, "train_config": self.train_config, "metrics": self.metrics,
               "data": self.data, "source_revision": self.source_revision}
        if self.state:
            out["state"] = self.state
        return out

    def save(self, path: str | Path) -> None:
        """Write atomically (temporary file in the same folder, then rename)."""
        import torch

        buf = io.BytesIO()
        torch.save(self.to_dict(), buf)
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load(cls, path: str | Path, map_location: str = "cpu") -> Checkpoint:
        """Read a checkpoint safely (no code runs), or WeightsError in one line saying why not."""
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"weights file not found: {path}")
        raw = load_tensors(path, "aqa checkpoint", map_location)
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: Any, where: str = "checkpoint") -> Checkpoint:
        if not isinstance(raw, dict) or any(k not in raw for k in REQUIRED_KEYS):
            raise WeightsError(f"{where}: not an aqa checkpoint (missing {', '.join(REQUIRED_KEYS)})")
        if not isinstance(raw["format_version"], int) or raw["format_version"] > FORMAT:
            raise WeightsError(f"{where}: checkpoint format {raw['format_version']} is newer than this aqa "
                               f"understands ({FORMAT})", hint="upgrade aqa")
        pre = raw["preprocess"]
        missing = [k for k in PREPROCESS_KEYS if not isinstance(pre, dict) or k not in pre]
        if missing:
            raise WeightsError(f"{where}: checkpoint 'preprocess' lacks {', '.join(missing)}",
                               hint="re-save it with aqa train, which records every preprocessing value")
        model_config = _without_retired(dict(raw["model_config"]), "model", where)
        train_config = {section: _without_retired(dict(values), section, where) if section in RETIRED else values
                        for section, values in (raw.get("train_config") or {}).items()}
        legacy_state = {k: raw[k] for k in ("epoch", "best", "optimizer", "scheduler", "rng", "ema_steps",
                                            "trained_model", "epochs_fitted") if k in raw}
        known = set(Preprocess.__dataclass_fields__)
        return cls(
            model=raw["model"],
            model_config=from_dict(ModelConfig, model_config, where=f"{where} model_config"),
            preprocess=Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in pre.items() if k in known}),
            vocab=list(raw.get("vocab") or []), label_maps=dict(raw.get("label_maps") or {}),
            train_config=train_config, metrics=dict(raw.get("metrics") or {}), data=dict(raw.get("data") or {}),
            source_revision=str(raw.get("source_revision") or ""), state={**legacy_state, **(raw.get("state") or {})})


def label_maps(classes: dict[str, int]) -> dict[str, list[str]]:
    """The `label_maps` of a model with `classes` per head: rules.LABEL_NAMES where a head has their
    number of classes, else the class numbers as names."""
    from aqa_cli.rules import LABEL_NAMES

    return {h: (LABEL_NAMES[h] if len(LABEL_NAMES.get(h, [])) == k else [str(i) for i in range(k)])
            for h, k in classes.items()}


def _without_retired(values: dict[str, Any], section: str, where: str) -> dict[str, Any]:
    """`values` without the section's retired keys, or WeightsError when one of them was in use."""
    for key, neutral in RETIRED[section].items():
        if key in values:
            value = values.pop(key)
            if neutral is not None and value != neutral:
                raise WeightsError(f"{where}: trained with {section}.{key}={value!r}, an experiment this aqa no "
                                   "longer has", hint=f"load it with aqa at commit {RETIRED_AT} "
                                   "(experiments/RESULTS.md says what it did)")
    return values


def source_revision() -> str:
    """git commit of the aqa source tree that is running ("" when not a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
