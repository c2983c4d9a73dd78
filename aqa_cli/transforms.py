"""Frames → normalised clips: the one preprocessing path shared by training, evaluation and scoring.

Every function is small and pure: randomness comes in as a `numpy.random.Generator`, so a sample's
augmentation is a function of (seed, epoch, index) and resuming a run replays it exactly.

    frames uint8 (T, H, W, 3)
      --window (103 frames, ±jitter)--> (F, H, W, 3)
      --every stride-th of clips × clip_len × stride frames (the first ones; training: starting up to
        `shift` later, and with `speed` at a random rate), resize, crop (random | centre;
        training with `scale`: of a random side s), hflip--> uint8 (N·L, s, s, 3)
      --to float, /255, (training with `color`: channel gains), ImageNet mean/std, (resize s → c)-->
        float32 (N, 3, L, c, c)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def window_start(pad: int, jitter: int = 0, rng: np.random.Generator | None = None) -> int:
    """First frame of the sample window in an array stored with `pad` extra frames on each side.

    Training shifts the window by k ∈ [-jitter, jitter] frames (clamped to what is stored);
    evaluation (rng None or jitter 0) uses the annotated window, which starts at index `pad`.
    """
    reach = min(jitter, pad)
    if rng is None or reach == 0:
        return pad
    return pad + int(rng.integers(-reach, reach + 1))


def crop_box(height: int, width: int, crop: int, rng: np.random.Generator | None = None) -> tuple[int, int]:
    """Top-left corner (y, x) of a `crop`×`crop` box: uniform at random with `rng`, else centred."""
    if crop > height or crop > width:
        raise ValueError(f"crop {crop} is larger than the frame ({width}x{height})")
    if rng is None:
        return (height - crop) // 2, (width - crop) // 2
    return int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))


def resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of uint8 (T, H, W, 3) frames to `size` = (width, height); no-op when equal."""
    width, height = size
    if frames.shape[1:3] == (height, width):
        return frames
    x = frames.permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                                        antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def zoom_side(crop: int, scale: float, height: int, width: int, rng: np.random.Generator) -> int:
    """Side of a training crop that is resized to `crop` afterwards: crop·s for s uniform in
    [1 - scale, 1 + scale], at most the frame's shorter side (a camera zoomed in or out a little)."""
    return int(min(round(crop * rng.uniform(1.0 - scale, 1.0 + scale)), height, width))


def normalize(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (T, H, W, 3) → float32 (3, T, H, W), scaled to [0, 1] then standardised per channel."""
    x = frames.permute(3, 0, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    return x.sub_(m).div_(s)


def clips_from_frames(
    frames: np.ndarray | torch.Tensor,
    clips: int = 6,
    clip_len: int = 16,
    crop: int = 112,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    *,
    size: tuple[int, int] | None = None,
    hflip: float = 0.0,
    stride: int = 1,
    scale: float = 0.0,
    shift: int = 0,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """Cut a window of frames into `clips` consecutive clips of `clip_len` frames, ready for a 3D CNN.

    frames: uint8 (T, H, W, 3), T ≥ clips × clip_len × stride; every `stride`-th of the first
        clips × clip_len × stride frames is used (103-frame MTL-AQA windows → the first 96 frames →
        6 clips, as the paper does; stride 2 → 3 clips over the same 96 frames at half the cost).
    size: (width, height) to resize to first (MSCADC's 640×360); None keeps the stored size.
    rng: a Generator starts the clips up to `shift` frames later (as far as T allows), draws a random
        crop (of a random size resized to `crop` when `scale` > 0, see zoom_side) and flips with
        probability `hflip`, the same for every frame of the sample. None is the evaluation path:
        centre crop, no zoom, no flip, and the clips start halfway into the range training drew
        from (shift // 2, as far as T allows): at its first frame, the edge of what the model saw in
        training, SynDive's rules score was lower for every checkpoint tried (experiments/RESULTS.md).
    Returns float32 (clips, 3, clip_len, crop, crop).
    """
    need = clips * clip_len
    if frames.shape[0] < need * stride:
        raise ValueError(f"need at least {need * stride} frames for {clips} clips of {clip_len} at stride "
                         f"{stride}, got {frames.shape[0]}")
    total = frames.shape[0]
    span = need * stride  # frames the clips take up from `first`
    reach = max(0, min(shift, total - span))
    first = reach // 2
    if rng is not None and shift > 0:  # drawn only when on: runs without a shift replay exactly
        first = int(rng.integers(0, reach + 1))
    x = frames[first: first + span: stride]
    # np.array copies: a memmap is read-only and only the frames used are read from disk.
    x = torch.from_numpy(np.array(x)) if isinstance(x, np.ndarray) else x
    if size is not None:
        x = resize(x, size)
    side = zoom_side(crop, scale, x.shape[1], x.shape[2], rng) if rng is not None and scale > 0 else crop
    y0, x0 = crop_box(x.shape[1], x.shape[2], side, rng)
    x = x[:, y0:y0 + side, x0:x0 + side]
    if rng is not None and hflip > 0 and rng.random() < hflip:
        x = x.flip(2)
    x = normalize(x, mean, std)  # (3, need, side, side)
    if side != crop:  # after normalising (linear, so the same result) on floats: 2x faster than on uint8
        x = torch.nn.functional.interpolate(x, size=(crop, crop), mode="bilinear", align_corners=False)
    return x.view(3, clips, clip_len, crop, crop).transpose(0, 1).contiguous()


def sample_clips(
    frames: np.ndarray,
    pad: int,
    window: int,
    clips: int = 6,
    clip_len: int = 16,
    crop: int = 112,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    *,
    size: tuple[int, int] | None = None,
    jitter: int = 0,
    hflip: float = 0.0,
    stride: int = 1,
    scale: float = 0.0,
    shift: int = 0,
    rng: np.random.Generator | None = None,
) -> torch.Tensor:
    """Clips of one stored sample: pick its (jittered) `window`-frame window, then `clips_from_frames`.

    frames: uint8 (window + 2·pad, H, W, 3), as in a dataset root's frames/<id>.npy (may be a memmap;
    only the frames used are read). Returns float32 (clips, 3, clip_len, crop, crop).
    """
    start = window_start(pad, jitter, rng)
    return clips_from_frames(frames[start:start + window], clips, clip_len, crop, mean, std,
                             size=size, hflip=hflip, stride=stride, scale=scale, shift=shift, rng=rng)


def i3d_input(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """uint8 (T, H, W, 3) → float32 (3, T, size, size) in [-1, 1], as the Kinetics I3D release prepared
    its input: the short side resized to round(size · 256 / 224) (bilinear), then the centre square."""
    _, h, w, _ = frames.shape
    scale = round(size * 256 / 224) / min(h, w)
    x = torch.from_numpy(np.array(frames))  # a copy: memory-mapped frames are read-only
    x = resize(x, (max(size, round(w * scale)), max(size, round(h * scale))))
    top, left = (x.shape[1] - size) // 2, (x.shape[2] - size) // 2
    return normalize(x[:, top:top + size, left:left + size], (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
