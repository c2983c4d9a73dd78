"""Reading and writing video with PyAV: decode, sample, resize in libswscale; write H.264.

Every reader returns uint8 frames shaped (T, H, W, 3) in RGB order, upright (the container's
display matrix / rotate tag is applied), resized by libswscale while converting from YUV, so a
full-size RGB frame never exists in numpy.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import VideoDecodeError


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = 25,
    crf: int | None = None,
) -> Path:
    """Encode RGB frames to an H.264 (yuv420p) file, playable in browsers and phones.

    `frames` is uint8 (T, H, W, 3) or any iterable of (H, W, 3) uint8 frames of one size, so long
    renders can be streamed. yuv420p stores colour at half resolution, so H.264 needs even
    width and height: an odd size is padded by one row / column that repeats the edge pixels
    (the picture is never scaled). `crf` is x264's constant rate factor (0 lossless .. 51;
    default 23, visually clean for our synthetic renders). The container follows the suffix
    (.mp4, .mkv, .mov); mp4/mov files get their index at the front (faststart).
    """
    path = Path(path)
    options = {"movflags": "+faststart"} if path.suffix.lower() in {".mp4", ".mov", ".m4v"} else {}
    try:
        _encode(path, frames, fps, crf, options)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a half-written file that looks like a video
        raise
    return path


def _encode(path: Path, frames, fps: float, crf: int | None, options: dict) -> None:
    """The body of `write_video`: one libx264 stream, created from the first frame's size."""
    import av

    count = 0
    with av.open(str(path), "w", options=options) as container:
        stream = None
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"write_video: frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
            h, w = frame.shape[:2]
            if stream is None:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height = w + w % 2, h + h % 2
                stream.pix_fmt = "yuv420p"
                # veryfast: far quicker than x264's default preset on 2 cores; renders compress easily.
                stream.options = {"crf": str(23 if crf is None else crf), "preset": "veryfast"}
                size = (w, h)
            elif (w, h) != size:
                raise ValueError(f"write_video: frame {count} is {w}x{h}, the first was {size[0]}x{size[1]}")
            if w % 2 or h % 2:
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError(f"write_video: no frames to write to {path}")
        for packet in stream.encode():
            container.mux(packet)
