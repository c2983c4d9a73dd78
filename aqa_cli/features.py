"""`aqa features extract`: per-sample segment features of a dataset root from a pretrained backbone.

    ROOT/frames/<id>.npy --window (segments) or whole sample (stride)--> uint8 (T, H, W, 3)
      --resize short side to size·256/224, centre crop `size`, RGB to [-1, 1]--> float (3, T, size, size)
      --clips at datasets.features.segment_starts--> (K, 3, clip_len, size, size)
      --backbone.features, `batch` clips at a time--> float16 (K, dim) --> FEATS/<id>.npy
    ROOT/videos/<video> (roots of whole routines: no frames) --one sequential decode, clips every S
      frames, resized in libswscale--> the same, `batch` clips held at a time

The preprocessing is the Kinetics I3D release's (resize, centre crop 224, [-1, 1]); `size` below 224
trades fidelity for speed on a CPU and is recorded in the index. Resumable: samples whose array exists
are skipped, and the index (written first) makes a rerun with other settings a one-line refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path


from aqa_cli.datasets.features import FeatureFolder, FeatureIndex, segment_starts
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.errors import UsageError

BACKBONES = ("i3d",)


@dataclass
class ExtractSummary:
    """What one `extract` did: samples written now, found done, the folder, and the samples left out
    for want of a video (a root of videos whose routines are not all there)."""

    written: int
    skipped: int
    out: Path
    missing: list[str] = field(default_factory=list)


def sample_clips(x, starts: list[int], clip_len: int):
    """float (3, T, H, W) → (K, 3, clip_len, H, W), clip k starting at frame starts[k]."""
    import torch

    return torch.stack([x[:, s:s + clip_len] for s in starts])


def extract(root: str | Path, out: str | Path, model, index: FeatureIndex, *, device: str = "auto",
            batch: int = 8, progress: Callable[[int, int], None] | None = None) -> ExtractSummary:
    """Write FEATS/<id>.npy for every annotated sample of `root` (every split) not done yet.

    model: a backbone with `features(x)`: float (B, 3, clip_len, size, size) → (B, index.dim), in eval
    mode. index: how the features are made (FeatureIndex; `data` is filled in from the root here).
    A root that keeps videos instead of frames (`info.frames` 0: Rhythmic Gymnastics) is read from
    ROOT/videos/ with stride sampling over each whole video, decoded in one sequential pass that holds
    only the clips of the next batch; its samples without a video are left out (`missing`).
    progress(done, total) is called after each sample. Raises UsageError before any work for settings
    a folder already holds otherwise, a root whose samples are shorter than one clip, or a root of
    videos with window sampling.
    """
    import torch

    from aqa_cli.device import resolve_device

    droot = DatasetRoot(root)
    info = droot.info
    index = replace(index, data={"name": info.name, "source": info.source, "version": info.version,
                                 "synthetic": info.synthetic})
    from_videos = not info.frames
    if from_videos and not index.stride:
        raise UsageError(f"{droot.root} keeps whole videos (routines), not dive windows: extract with --stride S",
                         hint="e.g. --stride 32 --clip-len 32 (non-overlapping clips, as GDLT)")
    starts: list[int] = []
    if not from_videos:
        try:
            length = info.frames if index.segments else info.frames + 2 * info.pad
            starts = segment_starts(length, index.clip_len, index.segments, index.stride)
        except ValueError as exc:
            raise UsageError(f"{droot.root}: {exc}") from None
    folder = FeatureFolder(out)
    folder.open(index)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    missing = sorted(i for i, s in droot.samples.items() if from_videos and not s.video)
    ids = sorted(set(droot.samples) - set(missing))
    todo = [i for i in ids if not folder.has(i)]
    done = len(ids) - len(todo)
    if progress:
        progress(done, len(ids))
    # bf16 only on CUDA: CPUs without bf16 units run it far slower than fp32 (DESIGN.md).
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")
    for n, sample_id in enumerate(todo, start=1):
        batches = (video_batches(droot.root / "videos" / droot.samples[sample_id].video, index, batch)
                   if from_videos else frames_batches(droot, sample_id, index, starts, batch))
        parts = []
        for clips in batches:
            with torch.inference_mode(), autocast:
                parts.append(model.features(clips.to(dev)).float().cpu())
        folder.write(sample_id, torch.cat(parts).numpy())
        if progress:
            progress(done + n, len(ids))
    return ExtractSummary(written=len(todo), skipped=done, out=Path(out), missing=missing)


def frames_batches(droot: DatasetRoot, sample_id: str, index: FeatureIndex, starts: list[int], batch: int):
    """Clips of one sample's stored frames, `batch` at a time: (B, 3, clip_len, size, size) in [-1, 1]
    (the window alone for segment sampling, the padded frames for stride sampling)."""
    from aqa_cli.transforms import i3d_input

    info = droot.info
    frames = droot.load_frames(sample_id)
    if index.segments:
        frames = frames[info.pad:info.pad + info.frames]
    clips = sample_clips(i3d_input(frames, index.size), starts, index.clip_len)
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
    ranges = [(s, s + index.clip_len - 1) for s in starts]
    pending = []
    for _, frames in iter_frame_ranges(path, ranges, size):
        pending.append(i3d_input(frames, index.size))
        if len(pending) == batch:
            yield torch.stack(pending)
            pending = []
    if pending:
        yield torch.stack(pending)
