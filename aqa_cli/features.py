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
The per-sample steps (clips of a window or of a whole video, the backbone over them) live in
datasets/features.py, where scoring one video with a features model can reach them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from aqa_cli.datasets.features import (FeatureFolder, FeatureIndex, encode_clips, segment_starts, video_batches,
                                       window_batches)
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.device import init_distributed, resolve_device
from aqa_cli.errors import UsageError
from aqa_cli.shard import Beacon, Shard

BACKBONES = ("i3d",)


@dataclass
class ExtractSummary:
    """What one `extract` did: samples written now, found done, the folder, and the samples left out
    for want of a video (a root of videos whose routines are not all there)."""

    written: int
    skipped: int
    out: Path
    missing: list[str] = field(default_factory=list)


def extract(root: str | Path, out: str | Path, model, index: FeatureIndex, *, device: str = "auto",
            batch: int = 8, progress: Callable[[int, int], None] | None = None) -> ExtractSummary:
    """Write FEATS/<id>.npy for every annotated sample of `root` (every split) not done yet.

    model: a backbone with `features(x)`: float (B, 3, clip_len, size, size) → (B, index.dim), in eval
    mode. index: how the features are made (FeatureIndex; `data` is filled in from the root here).
    A root that keeps videos instead of frames (`info.frames` 0: Rhythmic Gymnastics) is read from
    ROOT/videos/ with stride sampling over each whole video, decoded in one sequential pass that holds
    only the clips of the next batch; its samples without a video are left out (`missing`).
    progress(done, total) is called after each sample. Under torchrun (`torchrun --nproc-per-node N -m
    aqa_cli features extract ...`) rank 0 opens the folder and lists what is left, rank r extracts
    items r, r+N, ... of it (each sample is its own file, so nothing is merged), and rank 0 waits for
    every rank's status file (shard.Beacon) before it returns. Raises UsageError before any work for settings
    a folder already holds otherwise, a root whose samples are shorter than one clip, or a root of
    videos with window sampling.
    """
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
    missing = sorted(i for i, s in droot.samples.items() if from_videos and not s.video)
    ids = sorted(set(droot.samples) - set(missing))
    folder = FeatureFolder(out)
    shard, dist = Shard.from_env(), None
    if shard.world > 1:  # under torchrun: rank 0 opens the folder and lists the work; each takes its share
        import torch

        dist = init_distributed(device)
        if dist.device.type == "cpu":
            torch.set_num_threads(shard.cpu_threads())
    if shard.main:
        folder.open(index)
    todo = [i for i in ids if not folder.has(i)] if shard.main else None
    token, todo = dist.broadcast((uuid.uuid4().hex, todo) if shard.main else None) if dist else (None, todo)
    if not shard.main:
        folder.open(index)  # the index rank 0 wrote: the same settings, or a one-line refusal
    done = len(ids) - len(todo)
    dev = dist.device if dist else resolve_device(device)
    model = model.to(dev).eval()

    def count() -> int:  # samples written by every rank so far (rank 0's progress)
        return done + sum(folder.has(i) for i in todo) if dist else done + written

    written = 0
    if progress and shard.main:
        progress(done, len(ids))
    beacon = Beacon(Path(out) / "index", shard, token).start() if dist else None
    try:
        autocast = dev.type == "cuda"  # bf16 only on CUDA: CPUs without bf16 units run it far slower (DESIGN.md)
        for sample_id in shard.take(todo):
            if from_videos:
                batches = video_batches(droot.root / "videos" / droot.samples[sample_id].video, index, batch)
            else:
                frames = droot.load_frames(sample_id)
                if index.segments:
                    frames = frames[info.pad:info.pad + info.frames]
                batches = window_batches(frames, index, starts, batch)
            folder.write(sample_id, encode_clips(model, batches, dev, autocast))
            written += 1
            if progress and shard.main:
                progress(count(), len(ids))
        if beacon:
            beacon.set("done")
            if shard.main:
                beacon.wait(range(1, shard.world), tick=(lambda: progress(count(), len(ids))) if progress else None)
    except BaseException as exc:
        if beacon:
            beacon.fail(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if beacon:
            beacon.stop()
    if dist:
        dist.broadcast(None)  # rank 0 has seen every part done: the status files can go
        if shard.main:
            beacon.remove(range(shard.world))
        dist.close()
    return ExtractSummary(written=len(todo), skipped=done, out=Path(out), missing=missing)
