"""Synthetic test media, encoded on the fly with PyAV (no files are shipped).

Every frame made by `make_video` carries its own index as a 4x4 grid of black / white cells
(`pattern`): the top-left cell is always white, the bottom-right always black (so orientation
shows), and the 14 other cells hold the bits of the frame number. The cells are large, so the
index survives H.264 compression, chroma subsampling and any resize to >= 8x8 pixels;
`frame_index(img)` reads it back, which lets a test tell exactly which source frame a decoded
frame came from.

These helpers deliberately encode with PyAV directly rather than through `aqa_cli.video`, so
reader tests do not depend on the writer under test.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

GRID = 4  # cells per side
DATA_CELLS = [k for k in range(GRID * GRID) if k not in (0, GRID * GRID - 1)]  # 14 bits


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """The upright frame for source frame `index`: uint8 (height, width, 3), black/white cells."""
    if not 0 <= index < 2 ** len(DATA_CELLS):
        raise ValueError(f"frame index {index} does not fit in {len(DATA_CELLS)} bits")
    bits = {0: 1, GRID * GRID - 1: 0}
    bits.update({cell: (index >> j) & 1 for j, cell in enumerate(DATA_CELLS)})
    img = np.zeros((height, width, 3), np.uint8)
    for cell, bit in bits.items():
        r, c = divmod(cell, GRID)
        img[r * height // GRID : (r + 1) * height // GRID, c * width // GRID : (c + 1) * width // GRID] = 255 * bit
    return img


def frame_index(img: np.ndarray) -> int:
    """Read back the source index from a decoded (H, W, 3) frame made by `pattern`.

    Looks at the middle half of each cell (away from blurred edges). Raises ValueError when the
    orientation markers are wrong (a frame that is rotated or mirrored, or not a pattern at all).
    """
    h, w = img.shape[:2]
    luma = np.asarray(img, np.float32).mean(axis=2)

    def bit(cell: int) -> int:
        r, c = divmod(cell, GRID)
        y0, y1 = r * h // GRID, (r + 1) * h // GRID
        x0, x1 = c * w // GRID, (c + 1) * w // GRID
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        return int(luma[y0 + dy : y1 - dy or None, x0 + dx : x1 - dx or None].mean() > 128)

    if bit(0) != 1 or bit(GRID * GRID - 1) != 0:
        raise ValueError("not an upright test pattern (orientation markers are wrong)")
    return sum(bit(cell) << j for j, cell in enumerate(DATA_CELLS))


def frame_times(n_frames: int, fps: float = 25, vfr: bool = False) -> list[float]:
    """Presentation time (s) of each frame `make_video` writes.

    Constant rate: i / fps. Variable rate (`vfr=True`): frame gaps cycle through 0.5, 1 and
    2.5 nominal frame periods (mean 4/3 of a period), like a phone that drops and bunches frames.
    """
    if not vfr:
        return [i / fps for i in range(n_frames)]
    gaps = [0.5, 1.0, 2.5]
    times, t = [], 0.0
    for i in range(n_frames):
        times.append(t)
        t += gaps[i % len(gaps)] / fps
    return times


def make_video(
    path: str | Path,
    n_frames: int,
    size: tuple[int, int] = (64, 48),
    fps: float = 25,
    *,
    color_fn: Callable[[int], tuple[int, int, int] | np.ndarray] | None = None,
    rotate: int | None = None,
    vfr: bool = False,
    audio: bool = False,
    codec: str = "libx264",
) -> Path:
    """Encode a synthetic test video of `n_frames` frames and return its path.

    size:     (width, height) as stored in the file. libx264 uses yuv420p for even sizes and
              yuv444p for odd ones (4:2:0 needs even sizes), so odd-sized files really exist.
    color_fn: frame content instead of the index pattern: i -> an RGB triple (solid frame) or a
              uint8 (H, W, 3) upright frame of the display size.
    rotate:   clockwise degrees a player turns the stored picture (the classic MP4 `rotate` tag;
              a phone held upright records 90). The upright picture (display size: width and
              height swapped for 90 / 270) is drawn, then stored turned back, so a reader that
              honours the display matrix gets `pattern(i)` at the display size.
    vfr:      irregular timestamps, see `frame_times`.
    audio:    add one AAC stream of a 440 Hz tone as long as the video.
    codec:    an FFmpeg encoder name ("libx264", "mpeg4", "ffv1", ...).
    """
    path = Path(path)
    w, h = size
    quarter_turns = (rotate or 0) // 90 % 4
    disp_w, disp_h = (h, w) if quarter_turns % 2 else (w, h)
    times = frame_times(n_frames, fps, vfr)
    time_base = Fraction(1, 1000) if vfr else 1 / Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w, h
        if codec == "libx264":
            stream.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
            stream.options = {"preset": "ultrafast", "crf": "18"}
        elif codec == "mpeg4":
            stream.pix_fmt = "yuv420p"
        # The encoder's time base, too: else PyAV rounds every pts to whole 1/fps ticks.
        stream.time_base = stream.codec_context.time_base = time_base
        if rotate:
            # PyAV takes counter-clockwise degrees (FFmpeg's display-matrix convention).
            stream.set_display_rotation(-rotate)
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=44100)
            astream.layout = "mono"
        for i, t in enumerate(times):
            if color_fn is None:
                upright = pattern(i, disp_w, disp_h)
            else:
                c = color_fn(i)
                upright = np.asarray(c, np.uint8) if np.ndim(c) == 3 else np.full((disp_h, disp_w, 3), c, np.uint8)
            # np.rot90 turns counter-clockwise; storing the picture turned CCW by `rotate`
            # means a player's clockwise turn brings it back upright.
            stored = np.ascontiguousarray(np.rot90(upright, k=quarter_turns))
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts = round(t / time_base)
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None:
            _encode_tone(container, astream, seconds=(times[-1] if times else 0) + 1 / fps)
    return path


def _encode_tone(container, astream, seconds: float, rate: int = 44100) -> None:
    """Mux `seconds` of a 440 Hz mono tone into `astream` (AAC takes 1024-sample frames)."""
    samples = np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate).astype(np.float32)
    for start in range(0, len(samples), 1024):
        chunk = samples[start : start + 1024][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        for packet in astream.encode(frame):
            container.mux(packet)
    for packet in astream.encode():
        container.mux(packet)


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An .mp4 (or any suffix) holding only an AAC tone: no video stream."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        astream = container.add_stream("aac", rate=44100)
        astream.layout = "mono"
        _encode_tone(container, astream, seconds)
    return path


def make_truncated(path: str | Path, n_frames: int = 50, keep: float = 0.5, *, index_first: bool = True, **kw) -> Path:
    """A video cut off after `keep` of its bytes, like an interrupted download or copy.

    index_first=True writes the MP4 index (moov) before the data (faststart), so the file still
    opens and decoding fails part-way; False leaves the index at the end, where the cut removes it
    and the file no longer opens at all. Extra keywords go to `make_video`.
    """
    path = Path(path)
    full = path.with_name(path.stem + ".full" + path.suffix)
    make_video(full, n_frames, **kw)
    if index_first:
        _faststart(full, path)
        full.unlink()
    else:
        full.rename(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _faststart(src: Path, dst: Path) -> None:
    """Remux `src` to `dst` with the MP4 index at the front (no re-encoding)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "+faststart"}) as out:
        istream = inp.streams.video[0]
        ostream = out.add_stream_from_template(istream)
        for packet in inp.demux(istream):
            if packet.dts is None:
                continue
            packet.stream = ostream
            out.mux(packet)


def make_empty(path: str | Path) -> Path:
    """A zero-byte file."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def make_text(path: str | Path) -> Path:
    """A plain text file with a video name (e.g. notes.mp4): not media at all."""
    path = Path(path)
    path.write_text("this is not a video, just text that someone named .mp4\n" * 20)
    return path
