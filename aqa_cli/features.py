"""`aqa features extract`: per-sample segment features of a dataset root from a pretrained backbone.

    ROOT/frames/<id>.npy --window (segments) or whole sample (stride)--> uint8 (T, H, W, 3)
      --resize short side to size·256/224, centre crop `size`, RGB to [-1, 1]--> float (3, T, size, size)
      --clips at datasets.features.segment_starts--> (K, 3, clip_len, size, size)
      --backbone.features, `batch` clips at a time--> float16 (K, dim) --> FEATS/<id>.npy

The preprocessing is the Kinetics I3D release's (resize, centre crop 224, [-1, 1]); `size` below 224
trades fidelity for speed on a CPU and is recorded in the index. Resumable: samples whose array exists
are skipped, and the index (written first) makes a rerun with other settings a one-line refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path


from aqa_cli.datasets.features import FeatureFolder, FeatureIndex, segment_starts
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.errors import UsageError

BACKBONES = ("i3d",)


@dataclass
class ExtractSummary:
    """What one `extract` did: samples written now, found done, and the folder."""

    written: int
    skipped: int
    out: Path


def sample_clips(x, starts: list[int], clip_len: int):
    """float (3, T, H, W) → (K, 3, clip_len, H, W), clip k starting at frame starts[k]."""
    import torch

    return torch.stack([x[:, s:s + clip_len] for s in starts])


def extract(root: str | Path, out: str | Path, model, index: FeatureIndex, *, device: str = "auto",
            batch: int = 8, progress: Callable[[int, int], None] | None = None) -> ExtractSummary:
    """Write FEATS/<id>.npy for every annotated sample of `root` (every split) not done yet.

    model: a backbone with `features(x)`: float (B, 3, clip_len, size, size) → (B, index.dim), in eval
    mode. index: how the features are made (FeatureIndex; `data` is filled in from the root here).
    progress(done, total) is called after each sample. Raises UsageError before any work for settings
    a folder already holds otherwise, or a root whose samples are shorter than one clip.
    """
    import torch

    from aqa_cli.device import resolve_device
    from aqa_cli.transforms import i3d_input

    droot = DatasetRoot(root)
    info = droot.info
    index = replace(index, data={"name": info.name, "source": info.source, "version": info.version,
                                 "synthetic": info.synthetic})
    length = info.frames if index.segments else info.frames + 2 * info.pad
    try:
        starts = segment_starts(length, index.clip_len, index.segments, index.stride)
    except ValueError as exc:
        raise UsageError(f"{droot.root}: {exc}") from None
    folder = FeatureFolder(out)
    folder.open(index)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    ids = sorted(droot.samples)
    todo = [i for i in ids if not folder.has(i)]
    done = len(ids) - len(todo)
    if progress:
        progress(done, len(ids))
    # bf16 only on CUDA: CPUs without bf16 units run it far slower than fp32 (DESIGN.md).
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")
    for n, sample_id in enumerate(todo, start=1):
        frames = droot.load_frames(sample_id)
        if index.segments:
            frames = frames[info.pad:info.pad + info.frames]
        clips = sample_clips(i3d_input(frames, index.size), starts, index.clip_len)
        parts = []
        with torch.inference_mode(), autocast:
            for b in range(0, len(clips), batch):
                parts.append(model.features(clips[b:b + batch].to(dev)).float().cpu())
        folder.write(sample_id, torch.cat(parts).numpy())
        if progress:
            progress(done + n, len(ids))
    return ExtractSummary(written=len(todo), skipped=done, out=Path(out))
