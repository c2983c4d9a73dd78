"""Segment features of a dataset root: the one owner of the features folder's format.

    FEATS/index.json    FeatureIndex: backbone, its weights' sha256, the sampling, the input size and
                        scaling, the dataset root it was made from, the feature width
    FEATS/<id>.npy      float16 (segments, dim): one row per clip of the sample, in time order

A features folder is made by `aqa features extract` (aqa_cli/features.py) and read by training on
features (S4AQA and the frozen-backbone heads). Training refuses features made another way than it
expects (`FeatureIndex.require`), so a model never mixes backbones, weights or samplings silently.

Sampling (`segment_starts`): `segments` K clips over the dive window, the first K-1 every
ceil((T - clip_len) / (K - 1)) frames and the last ending at the window's end: for the 103-frame window,
16-frame clips and K = 10 this is 0, 10, ..., 80 and 87, the convention of USDL and CoRe; or `stride` S:
clips starting every S frames over the whole sample (long routines: S = clip_len gives non-overlapping
clips).

Reading for training and evaluation (`open_features`, `load_features`): a folder is checked against the
dataset root it claims to come from and, where a model expects it, against the index the model was
trained on; samples of differing lengths (stride sampling of routines) come back padded, with their
lengths, so an encoder can mask the padding.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aqa_cli.errors import DataError, UsageError
from aqa_cli.storage import atomic_write_bytes, atomic_write_text

INDEX = "index.json"
FORMAT = 1


@dataclass(frozen=True)
class FeatureIndex:
    """How a features folder was made. Two folders agree when everything but `data` and `count` does."""

    backbone: str  # "i3d"
    weights_sha256: str
    clip_len: int
    segments: int = 0  # K clips over the dive window (0: use `stride`)
    stride: int = 0  # clips every S frames over the whole sample (0: use `segments`)
    size: int = 224  # crop side fed to the backbone (after resizing the short side to size * 256 / 224)
    scaling: str = "[-1, 1]"  # how RGB was scaled: the Kinetics I3D release's [-1, 1]
    dim: int = 1024
    dtype: str = "float16"
    data: dict[str, Any] = field(default_factory=dict)  # the root: name, source, version, synthetic
    weights: str = ""  # the weights file's name when extracted (information only)
    format: int = FORMAT

    def sampling(self) -> str:
        return f"{self.segments} segments" if self.segments else f"stride {self.stride}"

    def differences(self, other: FeatureIndex) -> list[str]:
        """The settings in which `other` differs (data, weights' file name and format aside)."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{k}: {mine[k]!r} vs {theirs[k]!r}" for k in mine
                if k not in ("data", "weights", "format") and mine[k] != theirs[k]]

    def require(self, expected: FeatureIndex, where: str) -> None:
        """UsageError naming each setting in which these features differ from what is expected."""
        diff = self.differences(expected)
        if diff:
            raise UsageError(f"{where}: features made another way ({'; '.join(diff)})",
                             hint="extract them again with the expected settings into a new folder")


class FeatureFolder:
    """A features folder on disk: its index and one array per sample."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def index_path(self) -> Path:
        return self.path / INDEX

    def read_index(self) -> FeatureIndex | None:
        """The folder's index, None when there is none yet; DataError for a damaged one."""
        if not self.index_path.is_file():
            return None
        try:
            raw = json.loads(self.index_path.read_text())
            return FeatureIndex(**raw)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{self.index_path}: not a features index ({exc})") from None

    def open(self, index: FeatureIndex) -> None:
        """Start or resume writing: a folder made another way is refused (UsageError); a new one gets
        its index first, so an interrupted extraction resumes under the same settings."""
        existing = self.read_index()
        if existing is not None:
            existing.require(index, str(self.path))
            return
        if self.path.exists() and any(self.path.iterdir()):
            raise UsageError(f"{self.path} holds files but no {INDEX}: give an empty or new folder")
        atomic_write_text(self.index_path, json.dumps(asdict(index), indent=2) + "\n")

    def array_path(self, sample_id: str) -> Path:
        return self.path / f"{sample_id}.npy"

    def has(self, sample_id: str) -> bool:
        return self.array_path(sample_id).is_file()

    def write(self, sample_id: str, features: np.ndarray) -> None:
        """Save one sample's (segments, dim) features as float16, atomically."""
        buf = io.BytesIO()
        np.save(buf, np.asarray(features, dtype=np.float16))
        atomic_write_bytes(self.array_path(sample_id), buf.getvalue())

    def length(self, sample_id: str) -> int:
        """One sample's segment count, read from its array's header (DataError as `load`)."""
        path = self.array_path(sample_id)
        try:
            return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
        except FileNotFoundError:
            raise DataError(f"{path}: no features for sample {sample_id}",
                            hint="run `aqa features extract` on this root (it resumes)") from None
        except ValueError as exc:
            raise DataError(f"{path}: damaged features file ({exc})") from None

    def load(self, sample_id: str) -> np.ndarray:
        """One sample's features as float32 (segments, dim); DataError when missing or damaged."""
        path = self.array_path(sample_id)
        try:
            return np.load(path, allow_pickle=False).astype(np.float32)
        except FileNotFoundError:
            raise DataError(f"{path}: no features for sample {sample_id}",
                            hint="run `aqa features extract` on this root (it resumes)") from None
        except ValueError as exc:
            raise DataError(f"{path}: damaged features file ({exc})") from None


def segment_starts(frames: int, clip_len: int, segments: int = 0, stride: int = 0) -> list[int]:
    """First frame of each clip of a sample `frames` long (see the module docstring); ValueError when
    the sample is shorter than one clip or neither sampling is given."""
    if frames < clip_len:
        raise ValueError(f"{frames} frames is shorter than one {clip_len}-frame clip")
    last = frames - clip_len
    if segments > 0:
        if segments == 1:
            return [last // 2]
        step = math.ceil(last / (segments - 1))
        return [min(i * step, last) for i in range(segments - 1)] + [last]
    if stride > 0:
        return list(range(0, last + 1, stride))
    raise ValueError("give segments or stride")


def open_features(path: str | Path, root_info=None, expected: FeatureIndex | None = None,
                  flag: str = "--features") -> FeatureFolder:
    """A features folder checked against its dataset root (`root_info`: the root's DatasetInfo, same
    name and version) and an `expected` index (same backbone, weights, sampling); UsageError in one line
    naming what differs, or that `path` is no features folder."""
    folder = FeatureFolder(path)
    index = folder.read_index()
    if index is None:
        raise UsageError(f"{flag} {path}: not a features folder (no {INDEX})",
                         hint="make one with `aqa features extract`")
    if root_info is not None and (index.data.get("name"), index.data.get("version")) != (root_info.name,
                                                                                           root_info.version):
        raise UsageError(f"{flag} {path}: features of {index.data.get('name')!r}, not of the root "
                         f"{root_info.name!r} (version {root_info.version})")
    if expected is not None:
        index.require(expected, f"{flag} {path}")
    return folder


def fit_length(a: np.ndarray, segments: int) -> np.ndarray:
    """(T, D) → (segments, D): the rows at `segments` evenly spaced positions over the whole sample
    (nearest row), so a long routine keeps its beginning and its end."""
    if len(a) == segments:
        return a
    return a[np.round(np.linspace(0, len(a) - 1, segments)).astype(int)]


def load_features(folder: FeatureFolder, ids: list[str], segments: int = 0, pad: int = 0):
    """The features of `ids` as (x float32 (N, T, D), lengths long (N,)).

    segments > 0: every sample resampled to that many rows (`fit_length`), lengths all `segments`.
    pad > 0: variable lengths kept, each sample's rows then zeros up to T = pad (a sample longer than
    `pad`, the model's positions, is resampled to `pad`). Neither: all samples must have one length
    (UsageError naming the range and the fix otherwise).
    """
    return stack_features([folder.load(i) for i in ids], segments, pad, str(folder.path))


def stack_features(arrays: list[np.ndarray], segments: int = 0, pad: int = 0, where: str = "features"):
    """`load_features` on arrays float (T_n, D) already in memory (e.g. one video's, to score it with a
    features model: segments, pad = (0, clips) for a checkpoint with data["padded"], else (clips, 0))."""
    import torch

    if not arrays:
        return torch.zeros(0, max(segments, pad, 1), 1), torch.zeros(0, dtype=torch.long)
    if pad:
        arrays = [fit_length(a, pad) if len(a) > pad else a for a in arrays]
        x = np.zeros((len(arrays), pad, arrays[0].shape[1]), np.float32)
        for n, a in enumerate(arrays):
            x[n, :len(a)] = a
        return torch.from_numpy(x), torch.tensor([len(a) for a in arrays])
    if not segments:
        counts = sorted({len(a) for a in arrays})
        if len(counts) > 1:
            raise UsageError(f"{where}: samples have {counts[0]} to {counts[-1]} segments",
                             hint=f"--set semi.segments={counts[0]} (every sample resampled to that many)")
        segments = counts[0]
    x = torch.from_numpy(np.stack([fit_length(a, segments) for a in arrays]))
    return x, torch.full((len(arrays),), segments)


# ---------------------------------------------------------------------------------------------
# Making one sample's features (`aqa features extract`, and scoring one video with a features model)


def cut_clips(x, starts: list[int], clip_len: int):
    """float (3, T, H, W) → (K, 3, clip_len, H, W), clip k starting at frame starts[k]."""
    import torch

    return torch.stack([x[:, s:s + clip_len] for s in starts])


def window_batches(frames: np.ndarray, index: FeatureIndex, starts: list[int], batch: int) -> list:
    """Clips of frames uint8 (T, H, W, 3) at `starts` (segment_starts of T), `batch` at a time:
    [(B, 3, clip_len, size, size) in [-1, 1], ...], prepared as the Kinetics I3D release did."""
    from aqa_cli.transforms import i3d_input

    clips = cut_clips(i3d_input(frames, index.size), starts, index.clip_len)
    return [clips[b:b + batch] for b in range(0, len(clips), batch)]


def video_batches(path: Path, index: FeatureIndex, batch: int):
    """Clips every `index.stride` frames over a whole video, `batch` at a time: (B, 3, clip_len, size,
    size) in [-1, 1]. One sequential decoding pass (video.iter_frame_ranges) resizes in libswscale to
    the short side I3D's preprocessing wants, and only the clips of the batch being filled are held: a
    90 s routine is ≈2300 frames, 1.3 GB of RGB at 224 px if decoded whole."""
    import torch

    from aqa_cli.errors import VideoDecodeError
    from aqa_cli.transforms import i3d_input
    from aqa_cli.video import iter_frame_ranges, probe

    meta = probe(path)
    scale = round(index.size * 256 / 224) / min(meta.width, meta.height)
    size = (round(max(meta.width, meta.height) * scale), round(min(meta.width, meta.height) * scale))
    try:
        starts = segment_starts(meta.frames, index.clip_len, stride=index.stride)
    except ValueError as exc:
        raise VideoDecodeError(f"{path}: {exc}") from None
    pending = []
    for _, frames in iter_frame_ranges(path, [(s, s + index.clip_len - 1) for s in starts], size):
        pending.append(i3d_input(frames, index.size))
        if len(pending) == batch:
            yield torch.stack(pending)
            pending = []
    if pending:
        yield torch.stack(pending)


def encode_clips(backbone, batches, device, autocast: bool = False) -> np.ndarray:
    """float32 (K, dim): `backbone.features` of every clip of `batches` ((B, 3, clip_len, size, size)
    each), in order, on `device` (a torch.device), under bf16 autocast when `autocast` (CUDA only)."""
    import torch

    parts = []
    for clips in batches:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            parts.append(backbone.features(clips.to(device)).float().cpu())
    return torch.cat(parts).numpy()
