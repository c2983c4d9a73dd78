"""The dataset root that every source writes and every loader reads.

    ROOT/dataset.yaml        DatasetInfo: name, source, version, fps, frame size, frames per sample, ...
    ROOT/annotations.jsonl   one `Sample` per line
    ROOT/splits/{train,val,test}.txt   one sample id per line
    ROOT/videos/             source videos (SynDive: one clip per sample)
    ROOT/frames/<id>.npy     uint8 (T, H, W, 3), memory-mappable, written atomically

A root being written may hold `UNFINISHED`, a work folder (see synth.synthesize); without
dataset.yaml beside it the root is an interrupted write, not a dataset.

A frames array holds the `frames` window of the sample plus `pad` extra frames on each side, so
training can jitter the window: window k (k in [-pad, pad]) is `array[pad + k : pad + k + frames]`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aqa_cli.errors import DataError, UsageError
from aqa_cli.storage import atomic_write_bytes, atomic_write_text

SPLITS = ("train", "val", "test")
UNFINISHED = ".unfinished"


@dataclass
class Sample:
    """One annotated sample (a dive, or a routine of another sport). Labels use the MTL-AQA codes (see
    dive.py); fields a source does not have keep their defaults, and None ones are not written."""

    id: str
    video: str = ""  # path relative to ROOT/videos
    start_frame: int = 0
    end_frame: int = 0  # last frame of the dive in `video`; the window is the `frames` ending here
    final_score: float = 0.0
    difficulty: float = 0.0
    judge_scores: list[float] = field(default_factory=list)
    dive_number: str = ""  # e.g. "407C"; empty when unknown
    position: int = -1  # 0 free (D), 1 pike (B), 2 tuck (C); -1 unknown
    armstand: int = -1
    rotation_type: int = -1  # 0 back, 1 forward, 2 inward, 3 reverse
    ss_no: int = -1  # half somersaults
    tw_no: int = -1  # half twists
    commentary: str = ""  # space-separated tokens (text.tokenize)
    height: str = ""  # "1m", "3m", "5m", "7.5m", "10m"; empty when unknown
    apparatus: str | None = None  # Rhythmic Gymnastics: Ball, Clubs, Hoop or Ribbon (one model each)
    expected_score: float | None = None  # SynDive only: the noise-free score
    faults: dict[str, Any] | None = None  # SynDive only: the hidden execution faults

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps({k: v for k, v in data.items() if v is not None}, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict) -> Sample:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise DataError(f"sample {data.get('id', '?')}: unknown fields {sorted(unknown)}")
        if "id" not in data:
            raise DataError("sample without an 'id'")
        return cls(**data)


@dataclass
class DatasetInfo:
    """`dataset.yaml`: what a dataset root holds."""

    name: str
    source: str  # e.g. "SynDive (synthetic)", "MTL-AQA"
    version: str = "1"
    synthetic: bool = False
    fps: float = 25.0
    width: int = 171
    height: int = 128
    frames: int = 103  # frames in the sample window
    pad: int = 0  # extra frames stored on each side of the window in frames/<id>.npy
    counts: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # source-specific facts (seed, generator...)

    @classmethod
    def from_dict(cls, data: Any) -> DatasetInfo:
        """dataset.yaml's mapping → DatasetInfo; a DataError names the keys that are missing, unknown
        or of the wrong type (a hand-edited file must fail here, not deep inside a loader)."""
        if not isinstance(data, dict):
            raise DataError(f"expected 'key: value' lines, got a {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing = [name for name, f in fields.items() if name not in data
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise DataError(f"missing {', '.join(missing)}")
        unknown = [str(k) for k in data if k not in fields]
        if unknown:
            raise DataError(f"unknown keys {', '.join(unknown)}")
        kinds = {"str": (str, "text"), "bool": (bool, "true or false"), "int": (int, "a whole number"),
                 "float": ((int, float), "a number"), "dict": (dict, "a mapping")}
        for name, value in data.items():
            kind, expected = kinds[fields[name].type.split("[")[0]]  # the annotation: "dict[str, int]" → dict
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise DataError(f"{name}: expected {expected}, got {value!r}")
        return cls(**data)

    @staticmethod
    def check_size(size: tuple[int, int]) -> None:
        """Refuse a stored frame size (width, height) outside 32-1920 x 32-1080 with a UsageError:
        smaller leaves nothing to crop, larger only costs memory (a 109-frame 1080p dive is 680 MB)."""
        if not (32 <= size[0] <= 1920 and 32 <= size[1] <= 1080):
            raise UsageError(f"--size {size[0]}x{size[1]}: width 32-1920 and height 32-1080 pixels",
                             hint="e.g. --size 171x128")


class DatasetRoot:
    """A dataset root on disk: its info, samples and splits."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise DataError(f"{self.root}: is a file, not a dataset root folder")
        if not self.root.is_dir():
            raise DataError(f"dataset root not found: {self.root}",
                            hint="create one with `aqa data synth ROOT` or `aqa data preprocess mtl-aqa`")
        meta = self.root / "dataset.yaml"
        if not meta.is_file():
            unfinished = (self.root / UNFINISHED).is_dir()
            raise DataError(f"{self.root} is not a dataset root (no dataset.yaml)",
                            hint="it holds an unfinished set (an interrupted run?): run the command that "
                                 "made it again" if unfinished else None)
        try:
            raw = yaml.safe_load(meta.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DataError(f"{meta}: not YAML ({str(exc).splitlines()[0]})") from None
        try:
            self.info = DatasetInfo.from_dict(raw)
        except DataError as exc:
            raise DataError(f"{meta}: {exc}") from None
        self.samples = read_annotations(self.root / "annotations.jsonl")

    def split(self, name: str) -> list[Sample]:
        """Samples of split `name`, in the order of `splits/<name>.txt`; "all": every split's samples,
        train, val, then test (a root held out from training, e.g. a second SynDive set)."""
        if name == "all":
            return [s for n in SPLITS if (self.root / "splits" / f"{n}.txt").is_file() for s in self.split(n)]
        path = self.root / "splits" / f"{name}.txt"
        if not path.is_file():
            raise DataError(f"{self.root}: no split {name!r} (missing {path})")
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        missing = [i for i in ids if i not in self.samples]
        if missing:
            raise DataError(f"{path}: {len(missing)} ids not in annotations.jsonl, e.g. {missing[0]!r}")
        return [self.samples[i] for i in ids]

    def frames_path(self, sample_id: str) -> Path:
        return self.root / "frames" / f"{sample_id}.npy"

    def load_frames(self, sample_id: str) -> np.ndarray:
        """Memory-mapped uint8 (T, H, W, 3) frames of one sample."""
        path = self.frames_path(sample_id)
        try:
            return np.load(path, mmap_mode="r")
        except FileNotFoundError:
            raise DataError(f"missing frames for {sample_id}: {path}",
                            hint="run the dataset's preprocess step") from None
        except ValueError as exc:
            raise DataError(f"corrupt frames file {path}: {exc}") from None


def read_annotations(path: Path) -> dict[str, Sample]:
    """`annotations.jsonl` → {id: Sample}, with the line number in every error."""
    if not path.is_file():
        raise DataError(f"missing {path}")
    samples: dict[str, Sample] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{n}: expected a JSON object {{...}}, got {line.strip()[:40]}")
        try:
            sample = Sample.from_dict(record)
        except DataError as exc:
            raise DataError(f"{path}:{n}: {exc}") from None
        problem = _wrong_value(record)
        if problem:
            raise DataError(f"{path}:{n}: sample {sample.id}: {problem}")
        if sample.id in samples:
            raise DataError(f"{path}:{n}: duplicate id {sample.id!r}")
        samples[sample.id] = sample
    return samples


def _wrong_value(record: dict) -> str | None:
    """'field value: expected ...' for the first value of an annotation record whose type does not
    match its `Sample` field, else None. JSON allows NaN and Infinity: numbers must be finite."""
    def number(value, whole=False) -> bool:
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (not whole and isinstance(value, float) and math.isfinite(value))

    types = {f.name: f.type for f in dataclasses.fields(Sample)}  # annotations as text: "float | None"
    for name, value in record.items():
        if value is None and types[name].endswith("| None"):
            continue
        kind = types[name].split("[")[0].split(" ")[0]  # "list[float]" → list, "float | None" → float
        ok, expected = {"str": (isinstance(value, str), "text"),
                        "int": (number(value, whole=True), "a whole number"),
                        "float": (number(value), "a finite number"),
                        "list": (isinstance(value, list) and all(map(number, value)), "a list of numbers"),
                        "dict": (isinstance(value, dict), "an object")}[kind]
        if not ok:
            return f"{name} {json.dumps(value)[:40]}: expected {expected}"
    return None


def write_root(root: str | Path, info: DatasetInfo, samples: list[Sample],
               splits: dict[str, list[str]]) -> None:
    """Write dataset.yaml, annotations.jsonl and splits/*.txt (each atomically)."""
    root = Path(root)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    info.counts = {name: len(splits.get(name, [])) for name in SPLITS}
    info.counts["total"] = len(samples)
    atomic_write_text(root / "dataset.yaml", yaml.safe_dump(dataclasses.asdict(info), sort_keys=False))
    atomic_write_text(root / "annotations.jsonl", "".join(s.to_json() + "\n" for s in samples))
    for name in SPLITS:
        atomic_write_text(root / "splits" / f"{name}.txt", "".join(i + "\n" for i in splits.get(name, [])))


def save_frames(path: str | Path, frames: np.ndarray) -> None:
    """Write uint8 (T, H, W, 3) frames as .npy atomically: a crash never leaves a half-written file."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(frames))
    atomic_write_bytes(Path(path), buf.getvalue())
