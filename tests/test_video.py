"""Tests for aqa_cli.video on synthetic videos encoded here (see tests/media.py).

Frames carry their own index as a cell pattern, so every test checks which source frame each
decoded frame really is, not just shapes.
"""

from __future__ import annotations

import math
import warnings

import av
import numpy as np
import pytest

from aqa_cli.errors import VideoDecodeError
from aqa_cli.video import iter_frame_ranges, probe, read_even, read_window, write_video
from media import (
    frame_index,
    frame_times,
    make_audio_only,
    make_empty,
    make_text,
    make_truncated,
    make_video,
    pattern,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Test videos shared by this module, encoded once."""
    d = tmp_path_factory.mktemp("videos")
    return {
        "500": make_video(d / "f500.mp4", 500),
        "8": make_video(d / "f8.mp4", 8),
        "odd": make_video(d / "odd.mp4", 20, size=(175, 131)),
        "vfr": make_video(d / "vfr.mp4", 60, vfr=True),
        "audio": make_video(d / "av.mp4", 30, audio=True),
        "mkv": make_video(d / "v.mkv", 30, codec="mpeg4"),
        "raw": make_video(d / "raw.h264", 30),  # elementary stream: no timestamps, no duration
    }


def indices(frames: np.ndarray) -> list[int]:
    return [frame_index(f) for f in frames]


# --- write_video ---------------------------------------------------------------------------


def test_write_video_roundtrip_pads_odd_sizes(tmp_path):
    src = np.stack([pattern(i, 175, 131) for i in range(12)])
    path = write_video(tmp_path / "w.mp4", src, fps=30)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (s.width, s.height, s.average_rate) == (176, 132, 30)
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert indices(d[:131, :175] for d in decoded) == list(range(12))
    # The added row / column repeats the edge (within compression noise), it is not black.
    last = decoded[3].astype(int)
    assert np.abs(last[131, :175] - last[130, :175]).mean() < 12
    assert np.abs(last[:131, 175] - last[:131, 174]).mean() < 12


def test_write_video_streams_an_iterable_and_rejects_bad_frames(tmp_path):
    path = write_video(tmp_path / "gen.mkv", (pattern(i, 64, 48) for i in range(5)), crf=30)
    with pytest.warns(UserWarning, match="fewer than one 16-frame clip"):
        assert indices(read_even(path, 5, size=(64, 48))) == list(range(5))
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "none.mp4", [])
    with pytest.raises(ValueError, match="first was 64x48"):
        write_video(tmp_path / "mixed.mp4", [pattern(0, 64, 48), pattern(1, 32, 48)])
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "float.mp4", np.zeros((2, 8, 8, 3), np.float32))
    assert not list(tmp_path.glob("none.*")) + list(tmp_path.glob("mixed.*")) + list(tmp_path.glob("float.*"))


# --- probe -------------------------------------------------------------------------------


def test_probe(videos, tmp_path):
    assert probe(videos["500"]) == probe(videos["500"])
    info = probe(videos["500"])
    assert (info.frames, info.fps, info.duration, info.width, info.height, info.rotation) == (500, 25, 20, 64, 48, 0)
    info = probe(videos["odd"])
    assert (info.width, info.height, info.frames) == (175, 131, 20)
    info = probe(videos["vfr"])
    assert info.frames == 60
    assert info.duration == pytest.approx(frame_times(60, vfr=True)[-1] + 1 / 25, abs=0.03)
    info = probe(make_video(tmp_path / "phone.mp4", 4, size=(64, 48), rotate=90))
    assert (info.width, info.height, info.rotation) == (48, 64, 90)


# --- read_window ---------------------------------------------------------------------------


def test_read_window_is_frame_exact(videos):
    out = read_window(videos["500"], end_frame=300, frames=103)
    assert out.shape == (103, 128, 171, 3) and out.dtype == np.uint8
    assert indices(out) == list(range(198, 301))


def test_read_window_pad_and_edges(videos):
    out = read_window(videos["500"], end_frame=300, frames=103, pad=5)
    assert indices(out) == list(range(193, 306))
    # pad margins outside the video repeat the edge frame; the window itself is exact
    assert indices(read_window(videos["500"], 102, frames=103, pad=3)) == [0] * 4 + list(range(1, 106))
    assert indices(read_window(videos["500"], 499, frames=103, pad=3)) == list(range(394, 500)) + [499] * 3


@pytest.mark.parametrize(("end", "cause"), [(500, "only 500 frames"), (101, "before the first frame")])
def test_read_window_outside_the_video_is_an_error(videos, end, cause):
    with pytest.raises(VideoDecodeError, match=cause) as e:
        read_window(videos["500"], end_frame=end, frames=103)
    assert str(videos["500"]) in str(e.value)


def test_read_window_odd_size_native_resolution(videos):
    out = read_window(videos["odd"], end_frame=19, frames=16, size=(175, 131))
    assert out.shape == (16, 131, 175, 3)
    assert indices(out) == list(range(4, 20))


# --- read_even -----------------------------------------------------------------------------


def test_read_even_spreads_over_the_whole_video(videos):
    out = read_even(videos["500"], n=96)
    assert out.shape == (96, 128, 171, 3) and out.dtype == np.uint8
    assert indices(out) == [math.floor((k + 0.5) * 500 / 96) for k in range(96)]


def test_read_even_over_a_window_seeks_and_spreads_inside_it(videos):
    # 500 frames at 25 fps: [12 s, 16 s] holds frames 300-399; the file's key frames make the seek land
    # before the window, and the frames decoded on the way in are not taken
    out = read_even(videos["500"], n=32, start=12.0, end=16.0)
    assert indices(out) == [300 + math.floor((k + 0.5) * 100 / 32) for k in range(32)]
    # an end past the stream is the stream's end
    assert indices(read_even(videos["500"], n=8, start=18.0, end=99.0)) == [450 + math.floor((k + 0.5) * 50 / 8) for k in range(8)]
    # ... unless the end is held: [18 s, 22 s] of a 20 s video, its second half the last frame held
    held = read_even(videos["500"], n=8, start=18.0, end=22.0, hold_end=True)
    assert indices(held) == [450 + math.floor((k + 0.5) * 100 / 8) for k in range(4)] + [499] * 4


def test_read_even_uses_timestamps_for_variable_frame_rate(videos):
    times = frame_times(60, vfr=True)
    end = probe(videos["vfr"]).duration
    n = 24
    expected = []
    for k in range(n):
        t = (k + 0.5) * end / n
        expected.append(max(i for i, ti in enumerate(times) if ti <= t + 1e-9))
    got = indices(read_even(videos["vfr"], n=n, size=(64, 48)))
    assert got == expected
    # sampling by frame count would differ: the VFR timing matters
    assert got != [math.floor((k + 0.5) * 60 / n) for k in range(n)]


def test_read_even_short_video_repeats_frames_and_warns(videos):
    with pytest.warns(UserWarning, match="only 8 frame"):
        out = read_even(videos["8"], n=96)
    assert out.shape == (96, 128, 171, 3)
    assert indices(out) == [k // 12 for k in range(96)]
    with pytest.warns(UserWarning):
        one = read_even(make_video(videos["8"].with_name("one.mp4"), 1), n=16)
    assert indices(one) == [0] * 16


def test_read_even_odd_size_audio_and_other_codecs(videos):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough frames: no warning
        assert indices(read_even(videos["odd"], n=20)) == list(range(20))
        assert indices(read_even(videos["audio"], n=30)) == list(range(30))
        assert indices(read_even(videos["mkv"], n=30)) == list(range(30))
        assert indices(read_even(videos["raw"], n=10)) == [3 * k + 1 for k in range(10)]
    assert (probe(videos["raw"]).frames, probe(videos["raw"]).duration) == (30, 1.2)


def test_colours_come_out_in_rgb_order(tmp_path):
    path = make_video(tmp_path / "solid.mp4", 16, color_fn=lambda i: (200, 40, 90))
    out = read_even(path, n=4, size=(32, 24))
    assert np.abs(out.reshape(-1, 3).mean(0) - (200, 40, 90)).max() < 6


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotated_video_comes_out_upright(tmp_path, rotate):
    path = make_video(tmp_path / f"r{rotate}.mp4", 20, size=(64, 48), rotate=rotate)
    out = read_even(path, n=20)
    # frame_index checks the orientation markers, so a wrong turn fails here
    assert indices(out) == list(range(20))
    portrait = rotate in (90, 270)
    assert out.shape == ((20, 171, 128, 3) if portrait else (20, 128, 171, 3))
    assert indices(read_window(path, 19, frames=16)) == list(range(4, 20))


# --- iter_frame_ranges ---------------------------------------------------------------------


def test_iter_frame_ranges_one_pass_in_completion_order(videos):
    ranges = [(300, 410), (5, 12), (10, 20), (0, 0), (480, 499)]
    got = list(iter_frame_ranges(videos["500"], ranges, size=(64, 48)))
    assert [i for i, _ in got] == [3, 1, 2, 0, 4]  # by last frame
    for i, frames in got:
        first, last = ranges[i]
        assert frames.shape == (last - first + 1, 48, 64, 3)
        assert indices(frames) == list(range(first, last + 1))


def test_iter_frame_ranges_past_the_end_fails_after_the_good_ranges(videos):
    it = iter_frame_ranges(videos["500"], [(490, 520), (10, 20)], size=(32, 24))
    i, frames = next(it)
    assert i == 1 and len(frames) == 11
    with pytest.raises(VideoDecodeError, match=r"only 500 frames.*range 0 needs frames 490..520"):
        next(it)
    # damage after the last frame any range needs does not matter
    cut = make_truncated(videos["500"].with_name("cut_late.mp4"), 200, keep=0.5)
    assert [indices(f) for _, f in iter_frame_ranges(cut, [(10, 40)], size=(32, 24))] == [list(range(10, 41))]
    with pytest.raises(ValueError, match="range 0"):
        iter_frame_ranges(videos["500"], [(5, 4)])


# --- bad input -----------------------------------------------------------------------------

BAD = {
    "missing": (lambda d: d / "nope.mp4", "no such file"),
    "directory": (lambda d: d, "is a directory"),
    "empty": (lambda d: make_empty(d / "empty.mp4"), "empty file"),
    "text": (lambda d: make_text(d / "notes.mp4"), "not a media file"),
    "audio only": (lambda d: make_audio_only(d / "song.mp4"), "no video stream"),
    "cut, index lost": (lambda d: make_truncated(d / "cut.mp4", 60, index_first=False), "truncated"),
    "cut mid-stream": (lambda d: make_truncated(d / "cut2.mp4", 200, keep=0.5), "truncated or corrupt"),
}

READERS = {
    "probe": probe,
    "read_even": read_even,
    "read_window": lambda p: read_window(p, 150, frames=103),
    "iter_frame_ranges": lambda p: list(iter_frame_ranges(p, [(100, 150)])),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_video_decode_error(tmp_path, capfd, case, reader):
    make, cause = BAD[case]
    path = make(tmp_path)
    if case == "cut mid-stream" and reader == "probe":
        assert probe(path).frames == 200  # the header is intact; the damage is further on
        return
    with pytest.raises(VideoDecodeError) as e:
        READERS[reader](path)
    message = str(e.value)
    assert cause in message and str(path) in message and "\n" not in message
    assert e.value.__cause__ is None  # no chained FFmpeg traceback
    assert e.value.__suppress_context__ or e.value.__context__ is None
    assert capfd.readouterr().err == ""  # FFmpeg's own log stays silent


def test_truncated_tail_keeps_the_frames_decoded_so_far(tmp_path):
    path = make_truncated(tmp_path / "tail.mp4", 200, keep=0.999)
    with pytest.warns(UserWarning, match="could not be decoded"):
        out = read_even(path, n=50, size=(64, 48))
    got = indices(out)
    expected = [math.floor((k + 0.5) * 200 / 50) for k in range(50)]
    assert got[:45] == expected[:45]
    assert got[-1] < 199 and got == sorted(got)  # the tail repeats the last good frame
    # a window inside the readable part is fine, one over the damage is an error
    assert indices(read_window(path, 150, frames=16, size=(64, 48))) == list(range(135, 151))
    with pytest.raises(VideoDecodeError, match="truncated or corrupt"):
        read_window(path, 199, frames=16)
