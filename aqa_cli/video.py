"""Reading and writing video with PyAV: decode, sample, resize in libswscale; write H.264.

Every reader returns uint8 frames shaped (T, H, W, 3) in RGB order, upright (the display matrix
a phone writes is applied), resized by libswscale while it converts from YUV, so a full-size RGB
frame never exists in numpy. Each reader decodes the file in one sequential pass (seeking per
sampled frame was measured 35-60x slower, issue #2) and converts only the frames it keeps.

`size` is (width, height) for a landscape picture, e.g. (171, 128) as in C3D / MTL-AQA. A
portrait picture (taller than wide once upright) gets (height, width) instead, e.g. 128 wide and
171 tall, so it is never squashed to a landscape shape.

Every unreadable input raises `VideoDecodeError` with a one-line message naming the file and the
cause: missing, a directory, empty, not media, no video stream, no decodable frame, truncated or
corrupt data. FFmpeg's own log stays off (PyAV's default since version 13), so nothing else is
printed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import VideoDecodeError


# Chosen with benchmarks/bench_video.py (720p H.264 -> 171x128, 2 cores shared with other jobs at
# load ~2; at load 3.5 the speed ranking drowned in noise, so re-measure on a quiet machine):
# - BILINEAR: swscale's bilinear filter widens with the downscale, so it antialiases (41.5 dB PSNR
#   against torch's antialiased bilinear); FAST_BILINEAR and POINT were 20-60 % faster but alias
#   badly (18-22 dB); AREA and BICUBIC were not reliably faster and further from it (33 dB).
# - swscale threads=1: its default (one thread per core) was 1.6-2.5x slower at these small outputs.
# - decoder threading: FFmpeg's default "SLICE"; "FRAME"/"AUTO" were within run-to-run noise of it
#   on 2 cores and hold extra frames in flight.
INTERPOLATION = "BILINEAR"
SWS_THREADS = 1
THREAD_TYPE = "SLICE"


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header and first frame say about it.

    frames:   frame count from the container's index, else estimated as duration x fps.
    fps:      average frame rate (frames / s); the mean for variable-frame-rate files.
    duration: seconds covered by the video stream.
    width, height: the upright (displayed) picture size in pixels, after `rotation`.
    rotation: clockwise degrees (0, 90, 180, 270) a player turns the stored picture, from the
              display matrix (a phone filming upright records 90).
    """

    frames: int
    fps: float
    duration: float
    width: int
    height: int
    rotation: int


def probe(path: str | Path) -> VideoInfo:
    """Describe a video from its header plus its first decoded frame.

    Decoding one frame reads the per-frame display matrix and proves the file holds a decodable
    picture, so a VideoInfo is only returned for a video the readers can read.
    """
    with _Decoder(path) as dec:
        first = next(iter(dec), None)
        if first is None:
            dec.fail_short("no decodable video frame")
        quarter = _quarter_turns(first)
        w, h = (first.height, first.width) if quarter % 2 else (first.width, first.height)
        frames = dec.declared_frames or max(1, round(dec.duration * dec.fps))
        return VideoInfo(frames, dec.fps, dec.duration, w, h, (-90 * quarter) % 360)


def read_window(
    path: str | Path, end_frame: int, frames: int = 103, size: tuple[int, int] = (171, 128), pad: int = 0
) -> np.ndarray:
    """The `frames` consecutive frames ending at `end_frame` (0-based, inclusive), plus `pad` each side.

    This is the MTL-AQA sample: 103 frames whose first 96 form 6 clips of 16. Returns uint8
    (frames + 2*pad, H, W, 3); row k is source frame end_frame - frames + 1 - pad + k, counting
    frames in decoding order as the annotations do.

    The window itself must lie inside the video: one that would start before frame 0 or end
    after the last frame is a VideoDecodeError (the annotation and the video do not match). The
    `pad` margins are augmentation slack, so where they stick out of the video they repeat the
    first or last frame instead of failing.
    """
    if frames < 1 or pad < 0:
        raise ValueError(f"read_window: need frames >= 1 and pad >= 0, got frames={frames}, pad={pad}")
    start = end_frame - frames + 1
    if start < 0:
        _check_path(Path(path))
        raise VideoDecodeError(
            f"{path}: the {frames}-frame window ending at frame {end_frame} would start at frame {start}, "
            "before the first frame (0)"
        )
    first, last = max(0, start - pad), end_frame + pad
    lead = first - (start - pad)  # leading pad rows before frame 0: they repeat frame 0
    out = None
    with _Decoder(path) as dec:
        for index, frame in enumerate(dec):
            if index < first:
                continue
            if out is None:
                hw = _output_hw(frame, size)
                out = np.empty((frames + 2 * pad, *hw, 3), np.uint8)
            out[lead + index - first] = _to_rgb(frame, hw)
            if index == last:
                break
        if dec.count <= end_frame:
            dec.fail_short(f"the window needs frames {start}..{end_frame}")
    got = dec.count - first if dec.count <= last else last - first + 1
    out[:lead] = out[lead]
    out[lead + got :] = out[lead + got - 1]
    return out


def read_even(path: str | Path, n: int = 96, size: tuple[int, int] = (171, 128), clip_len: int = 16,
              start: float | None = None, end: float | None = None,
              on_problem: Callable[[str], None] | None = None, hold_end: bool = False) -> np.ndarray:
    """`n` frames spread evenly in time over the whole video, or over [start, end], in seconds after the
    stream's start (`iter_resampled`'s times): uint8 (n, H, W, 3).

    The span (first frame or `start` to declared end or `end`) is cut into n equal slots, each taking
    the frame on screen at its middle, so a variable-frame-rate file is sampled evenly in time. Only the
    chosen frames are converted (memory: n small frames, whatever the length); with `start` the decoder
    first seeks to the key frame before it, so a late window is not decoded from the beginning.

    Fewer than n frames are repeated (with fewer than `clip_len` this also warns). When decoding stops
    early, the last good frame fills the remaining slots with a warning if at most 5 % of the span is
    lost; more is a VideoDecodeError. Frames decoded from damaged data are a warning too. Warnings go to
    `on_problem(message)` when given (a scorer keeps them with its result), else to `warnings.warn`.

    With `hold_end`, an `end` past the stream's end still sets the span, and the slots after the last
    frame hold it (no warning): a located dive's margin after the entry then reads a recording that stops
    at the splash as one with still water recorded after it.
    """
    def report(message: str) -> None:
        on_problem(message) if on_problem else warnings.warn(message, stacklevel=3)

    if n < 1:
        raise ValueError(f"read_even: need n >= 1, got {n}")
    if start is not None and end is not None and not end > start:
        raise ValueError(f"read_even: need end > start, got [{start}, {end}]")
    out = None
    slot = 0
    previous = None
    with _Decoder(path) as dec:
        if start:
            dec.seek(start)
        limit = dec.end_time if end is None else dec.start_time + end
        stop = min(limit, dec.end_time)
        for frame in dec:
            t = dec.time_of(frame)
            if out is None:
                hw = _output_hw(frame, size)
                out = np.empty((n, *hw, 3), np.uint8)
                first = t if start is None else max(t, dec.start_time + start)
                span = max((limit if hold_end else stop) - first, 1e-9)
                targets = first + (np.arange(n) + 0.5) * span / n
            while slot < n and previous is not None and t > targets[slot]:
                out[slot] = _to_rgb(previous, hw)
                slot += 1
            if slot == n:
                break
            previous = frame
        if previous is None:
            dec.fail_short("no decodable video frame")
        if slot < n:
            lost = stop - dec.time_of(previous)
            # A healthy stream ends about one frame period after its last frame (VFR: a few).
            if lost > max(3 / dec.fps, 0.05 * span):
                dec.fail_short(f"even sampling needs frames up to {targets[-1]:.2f} s")
            if dec.error is not None or lost > 3 / dec.fps:
                report(f"{path}: the last {lost:.2f} s could not be decoded ({dec.error or 'stream ends early'}); "
                       "repeating the last good frame")
            out[slot:] = _to_rgb(previous, hw)
        if dec.corrupt:
            report(f"{path}: {dec.corrupt} of {dec.count} frames read were decoded from damaged data")
        if dec.count < clip_len and start is None and end is None:
            report(f"{path}: only {dec.count} frame(s), fewer than one {clip_len}-frame clip; frames are repeated "
                   f"to fill {n}")
    return out


def iter_frame_ranges(
    path: str | Path, ranges: Sequence[tuple[int, int]], size: tuple[int, int] = (171, 128)
) -> Iterator[tuple[int, np.ndarray]]:
    """Cut many frame ranges out of one long video in a single sequential pass.

    `ranges` holds inclusive 0-based (first, last) frame numbers, in any order and possibly
    overlapping. Yields (i, uint8 (last - first + 1, H, W, 3)) for ranges[i] as soon as its last
    frame is decoded, so results arrive in order of `last` and only unfinished ranges are held
    in memory (MTL-AQA cuts ~100 dives from each hour-long broadcast this way). Decoding stops
    after the last frame any range needs. A range beyond the end of the video, or a decoding
    failure, raises VideoDecodeError after every range completed before it was yielded.
    """
    spans = [(int(a), int(b)) for a, b in ranges]
    for i, (a, b) in enumerate(spans):
        if a < 0 or b < a:
            raise ValueError(f"iter_frame_ranges: range {i} ({a}, {b}) is not 0 <= first <= last")
    _check_path(Path(path))
    return _cut_ranges(path, spans, size)


def _cut_ranges(path: str | Path, spans: list[tuple[int, int]], size: tuple[int, int]) -> Iterator[tuple[int, np.ndarray]]:
    """The generator behind `iter_frame_ranges`."""
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    waiting = 0  # order[waiting:] have not started yet
    open_: dict[int, np.ndarray] = {}
    with _Decoder(path) as dec:
        for index, frame in enumerate(dec):
            while waiting < len(order) and spans[order[waiting]][0] == index:
                i = order[waiting]
                hw = _output_hw(frame, size)
                open_[i] = np.empty((spans[i][1] - spans[i][0] + 1, *hw, 3), np.uint8)
                waiting += 1
            if not open_:
                if waiting == len(order):
                    return
                continue
            rgb = _to_rgb(frame, next(iter(open_.values())).shape[1:3])
            for i in sorted(open_):
                first, last = spans[i]
                open_[i][index - first] = rgb
                if index == last:
                    yield i, open_.pop(i)
        if open_ or waiting < len(order):
            i = min(list(open_) + order[waiting:], key=lambda i: spans[i][1])
            dec.fail_short(f"range {i} needs frames {spans[i][0]}..{spans[i][1]}")


def iter_resampled(path: str | Path, fps: float = 10.0, size: tuple[int, int] = (64, 48),
                   chunk: int = 128) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A whole video at a low, fixed rate and size, streamed in one pass as chunks (times float64 (n,),
    frames uint8 (n, H, W, 3)), n <= `chunk`: sample k is the frame on screen k / `fps` s after the first
    (even in time for variable-rate files). Only kept frames are converted and one chunk is held, so memory
    stays flat for hour-long files. A stream failing midway ends with a warning; no frame: VideoDecodeError."""
    if fps <= 0 or chunk < 1:
        raise ValueError(f"iter_resampled: need fps > 0 and chunk >= 1, got fps={fps}, chunk={chunk}")
    times, frames, k, previous = [], [], 0, None
    with _Decoder(path) as dec:
        for frame in dec:
            if previous is None:
                t0, hw = dec.time_of(frame), _output_hw(frame, size)
            while previous is not None and t0 + k / fps < dec.time_of(frame) - 1e-6:  # due before it: the one before
                times.append(k / fps), frames.append(_to_rgb(previous, hw))
                k += 1
                if len(frames) == chunk:
                    yield np.array(times), np.stack(frames)
                    times, frames = [], []
            previous = frame
        if previous is None:
            dec.fail_short("no decodable video frame")
        if t0 + k / fps <= dec.time_of(previous) + 1e-6:  # a sample due at the last frame's own time
            times.append(k / fps), frames.append(_to_rgb(previous, hw))
        if dec.error is not None:
            warnings.warn(f"{path}: decoding stopped after {dec.count} frames ({dec.error}); kept those", stacklevel=2)
    if frames:
        yield np.array(times), np.stack(frames)


# ---------------------------------------------------------------------------------------------
# Decoding internals


class _Decoder:
    """One sequential decoding pass over a file's first video stream, failing as VideoDecodeError.

    Use as a context manager; iterating yields av.VideoFrame in presentation order. A decoding
    error mid-stream ends the iteration and is kept in `error` (readers decide whether the frames
    they already have are enough); `count` is the number of frames yielded.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count = 0
        self.corrupt = 0  # frames FFmpeg decoded from damaged data (concealed errors: they still come)
        self.error: str | None = None

    def __enter__(self) -> _Decoder:
        import av

        _check_path(self.path)
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
            raise VideoDecodeError(_open_failure(self.path, e)) from None
        try:
            self._inspect()
        except BaseException:
            self.container.close()
            raise
        return self

    def _inspect(self) -> None:
        """Pick the video stream and read rate, duration and frame count from the header."""
        streams = self.container.streams
        if not streams.video:
            kinds = sorted({s.type for s in streams}) or ["no"]
            raise VideoDecodeError(f"{self.path}: no video stream (only {', '.join(kinds)} streams)")
        self.stream = stream = streams.video[0]
        if stream.codec_context is None:  # FFmpeg found the stream but has no decoder for its codec
            raise VideoDecodeError(f"{self.path}: no decoder for its video codec in this FFmpeg build")
        stream.codec_context.thread_type = THREAD_TYPE
        tb = stream.time_base
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else 25.0
        self.declared_frames = stream.frames
        self.start_time = start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        if stream.duration and tb:
            self.duration = float(stream.duration * tb)
        elif self.container.duration:
            self.duration = self.container.duration / 1_000_000 - start  # container: microseconds
        else:
            self._scan_packets()
        self.end_time = start + self.duration

    def _scan_packets(self) -> None:
        """Count frames and find the duration by demuxing (no decoding), for headers without either.

        Raw elementary streams (.h264) and some live recordings carry no duration; a demux-only
        pass reads the file once more but costs little next to decoding it.
        """
        import av

        packets, end = 0, 0.0
        try:
            with av.open(str(self.path)) as container:
                for packet in container.demux(container.streams.video[0]):
                    if packet.size:
                        packets += 1
                        if packet.pts is not None and packet.time_base:
                            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        except av.FFmpegError:
            pass  # damage is reported by the decoding pass, with its position
        self.declared_frames = self.declared_frames or packets
        self.duration = end or packets / self.fps

    def __iter__(self) -> Iterator:
        import av

        try:
            for frame in self.container.decode(self.stream):
                self.count += 1
                self.corrupt += frame.is_corrupt
                yield frame
        except av.FFmpegError as e:
            self.error = f"FFmpeg: {e.strerror or e}"

    def seek(self, seconds: float) -> None:
        """Go to the key frame at or before `seconds` after the stream's start (when the stream has
        timestamps; else stay at the start)."""
        import av

        tb = self.stream.time_base
        if tb and self.stream.start_time is not None:
            try:
                self.container.seek(self.stream.start_time + int(seconds / tb), stream=self.stream, backward=True)
            except av.FFmpegError:
                pass  # unseekable (e.g. a pipe-like file): decode from the start, which is only slower

    def time_of(self, frame) -> float:
        """Presentation time (s) of a frame; from its position when the stream has no timestamps."""
        return float(frame.time) if frame.pts is not None and frame.time_base else (self.count - 1) / self.fps

    def fail_short(self, need: str) -> None:
        """Raise the VideoDecodeError for a stream that ended before the caller got what it needed."""
        where = f"after {self.count} frame(s)" if self.count else "before the first frame"
        if self.error:
            raise VideoDecodeError(f"{self.path}: truncated or corrupt: decoding failed {where} ({self.error}); {need}")
        if self.count == 0:
            raise VideoDecodeError(f"{self.path}: no decodable video frame; {need}")
        declared = self.declared_frames
        if declared > self.count:
            raise VideoDecodeError(
                f"{self.path}: truncated: the container lists {declared} frames but decoding stopped "
                f"{where}; {need}"
            )
        raise VideoDecodeError(f"{self.path}: the video has only {self.count} frames (0..{self.count - 1}); {need}")

    def __exit__(self, *exc) -> None:
        self.container.close()


def _check_path(path: Path) -> None:
    """Fail early, with a precise cause, for paths FFmpeg would only call 'invalid'."""
    if not path.exists():
        raise VideoDecodeError(f"{path}: no such file", hint="check the path")
    if path.is_dir():
        raise VideoDecodeError(f"{path}: is a directory, not a video file", hint="pass the video files inside it")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: empty file (0 bytes)")


def _open_failure(path: Path, error: Exception) -> str:
    """One line saying why FFmpeg could not open `path`."""
    if isinstance(error, PermissionError):
        return f"{path}: permission denied"
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        # MP4/MOV whose index (moov box) is missing: usually cut off before the end.
        return f"{path}: truncated or incomplete MP4/MOV (its index is missing); FFmpeg cannot open it"
    reason = getattr(error, "strerror", None) or str(error)
    return f"{path}: not a media file FFmpeg can read ({reason})"


def _quarter_turns(frame) -> int:
    """Counter-clockwise quarter turns that make a decoded frame upright (np.rot90's k)."""
    rotation = frame.rotation  # display matrix angle, counter-clockwise degrees in [-180, 180]
    return round(rotation / 90) % 4 if rotation else 0


def _output_hw(frame, size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the upright output for `size` = (width, height), swapped for portrait."""
    width, height = size
    quarter = _quarter_turns(frame)
    upright_w, upright_h = (frame.height, frame.width) if quarter % 2 else (frame.width, frame.height)
    return (width, height) if upright_h > upright_w else (height, width)


def _to_rgb(frame, hw: tuple[int, int]) -> np.ndarray:
    """Resize + convert one frame in libswscale, then turn it upright: uint8 (H, W, 3) with (H, W) = hw."""
    quarter = _quarter_turns(frame)
    height, width = (hw[1], hw[0]) if quarter % 2 else hw  # the stored (pre-rotation) orientation
    rgb = frame.to_ndarray(
        width=width, height=height, format="rgb24", interpolation=INTERPOLATION, threads=SWS_THREADS
    )
    return np.rot90(rgb, k=quarter) if quarter else rgb


# ---------------------------------------------------------------------------------------------
# Writing


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = 25,
    crf: int | None = None,
    x264_params: str | None = None,
) -> Path:
    """Encode RGB frames to an H.264 (yuv420p) file, playable in browsers and phones.

    `frames` is uint8 (T, H, W, 3) or any iterable of (H, W, 3) uint8 frames of one size, so long
    renders can be streamed. yuv420p stores colour at half resolution, so H.264 needs even
    width and height: an odd size is padded by one row / column that repeats the edge pixels
    (the picture is never scaled; reading it back at the odd size rescales by under one pixel,
    reading at the stored even size and cropping gives the exact pixels). `crf` is x264's constant rate factor (0 lossless .. 51;
    default 23, visually clean for our synthetic renders). The container follows the suffix
    (.mp4, .mkv, .mov); mp4/mov files get their index at the front (faststart). `x264_params`
    passes extra x264 settings, e.g. "mbtree=0": with macroblock-tree rate control on, x264 gave
    different bitstreams for the same frames from one call to the next (seen on 64x48 renders), so
    SynDive turns it off to get identical files for the same seed.
    """
    path = Path(path)
    options = {"movflags": "+faststart"} if path.suffix.lower() in {".mp4", ".mov", ".m4v"} else {}
    try:
        _encode(path, frames, fps, crf, options, x264_params)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a half-written file that looks like a video
        raise
    return path


def _encode(path: Path, frames, fps: float, crf: int | None, options: dict, x264_params: str | None = None) -> None:
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
                if x264_params:
                    stream.options = {**stream.options, "x264-params": x264_params}
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

