"""Clip transforms: windows, crops, flips and normalisation, checked on frames that carry their index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aqa_cli.transforms import IMAGENET_MEAN, IMAGENET_STD, clips_from_frames, crop_box, sample_clips, window_start


def indexed_frames(t=110, h=12, w=14):
    """uint8 (t, h, w, 3): channel 0 = frame index, channel 1 = column, channel 2 = row."""
    f = np.zeros((t, h, w, 3), np.uint8)
    f[..., 0] = np.arange(t)[:, None, None]
    f[..., 1] = np.arange(w)[None, None, :]
    f[..., 2] = np.arange(h)[None, :, None]
    return f


def raw(clips):
    """Undo the normalisation: float (N, 3, L, c, c) → pixel values (N, 3, L, c, c)."""
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    return ((clips * s + m) * 255).round()


def test_eval_path_takes_the_first_frames_centre_crop_and_shape():
    clips = clips_from_frames(indexed_frames(), clips=6, clip_len=16, crop=8)
    assert clips.shape == (6, 3, 16, 8, 8) and clips.dtype == torch.float32
    px = raw(clips)
    assert px[2, 0, 5, 0, 0] == 2 * 16 + 5  # clip 2, frame 5 is frame 37 of the window
    assert px[0, 1, 0, 0, 0] == 3 and px[0, 2, 0, 0, 0] == 2  # centre: x0 = (14-8)//2, y0 = (12-8)//2
    norm = (np.array([37, 3, 2]) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert clips[2, :, 5, 0, 0].numpy() == pytest.approx(norm, abs=1e-5)


def test_training_crop_and_flip_are_random_but_reproducible():
    frames = indexed_frames()
    rng = lambda: np.random.default_rng(7)  # noqa: E731
    a = clips_from_frames(frames, crop=8, hflip=1.0, rng=rng())
    assert torch.equal(a, clips_from_frames(frames, crop=8, hflip=1.0, rng=rng()))
    cols = raw(a)[0, 1, 0, 0, :]
    assert (cols[:-1] - cols[1:] == 1).all()  # flipped: columns run right to left
    corners = {crop_box(12, 14, 8, np.random.default_rng(s)) for s in range(50)}
    assert len(corners) > 5 and all(0 <= y <= 4 and 0 <= x <= 6 for y, x in corners)


def test_scale_jitter_zooms_the_whole_clip_and_keeps_the_crop_size():
    frames = indexed_frames(t=96, h=40, w=40)
    widths = set()
    for seed in range(20):
        clips = clips_from_frames(frames, clips=2, crop=20, scale=0.4, rng=np.random.default_rng(seed))
        assert clips.shape == (2, 3, 16, 20, 20)
        cols = raw(clips)[:, 1]  # (N, L, 20, 20): the source column of each pixel
        assert (cols == cols[0, 0]).all()  # the same box and zoom in every frame
        widths.add(int(cols[0, 0, 0, -1] - cols[0, 0, 0, 0]))  # columns spanned: the box side - 1 (about)
    assert min(widths) <= 15 and max(widths) >= 23  # zoomed in (side ~12-19) and out (~21-28)
    # scale 0 and the evaluation path are the plain crops, whatever `scale` says there
    plain = clips_from_frames(frames, crop=20, rng=np.random.default_rng(3))
    assert torch.equal(plain, clips_from_frames(frames, crop=20, scale=0.0, rng=np.random.default_rng(3)))
    assert torch.equal(clips_from_frames(frames, crop=20), clips_from_frames(frames, crop=20, scale=0.4))


def test_window_jitter_stays_within_the_stored_padding():
    assert window_start(pad=3) == 3
    starts = {window_start(3, 3, np.random.default_rng(s)) for s in range(200)}
    assert starts == set(range(0, 7))
    assert {window_start(1, 3, np.random.default_rng(s)) for s in range(100)} == {0, 1, 2}
    clips = sample_clips(indexed_frames(103 + 6), pad=3, window=103, crop=8)
    assert raw(clips)[0, 0, 0, 0, 0] == 3  # the annotated window starts after the padding


def test_resize_and_errors():
    clips = clips_from_frames(indexed_frames(), clips=2, crop=16, size=(20, 18))
    assert clips.shape == (2, 3, 16, 16, 16)
    with pytest.raises(ValueError, match="larger than the frame"):
        clips_from_frames(indexed_frames(), crop=16)
    with pytest.raises(ValueError, match="need at least 96 frames"):
        clips_from_frames(indexed_frames(t=50), crop=8)


def test_stride_takes_every_other_frame_of_the_same_window():
    clips = sample_clips(indexed_frames(103 + 6), pad=3, window=103, clips=3, crop=8, stride=2)
    assert clips.shape == (3, 3, 16, 8, 8)
    px = raw(clips)[:, 0, :, 0, 0].flatten()  # frame index of each of the 48 frames, in order
    assert px.tolist() == [3 + 2 * i for i in range(48)]  # window frames 0, 2, ..., 94
    with pytest.raises(ValueError, match="need at least 96 frames for 3 clips of 16 at stride 2"):
        clips_from_frames(indexed_frames(t=95), clips=3, crop=8, stride=2)


def test_shift_starts_the_clips_later_in_training_and_halfway_in_evaluation():
    frames = indexed_frames(t=103)  # 7 frames more than 3 clips of 16 at stride 2 need
    firsts = set()
    for seed in range(60):
        px = raw(clips_from_frames(frames, clips=3, crop=8, stride=2, shift=10, rng=np.random.default_rng(seed)))
        idx = px[:, 0, :, 0, 0].flatten()
        assert (idx[1:] - idx[:-1] == 2).all()  # still every second frame, in order
        firsts.add(int(idx[0]))
    assert firsts == set(range(0, 8))  # at most 10 later, and no further than the window allows
    # the evaluation path starts halfway into the range training draws from (as far as the window
    # allows); shift 0 with the same generator starts at the window's first frame
    assert raw(clips_from_frames(frames, clips=3, crop=8, stride=2, shift=7))[0, 0, 0, 0, 0] == 3
    assert raw(clips_from_frames(frames, clips=3, crop=8, stride=2, shift=10))[0, 0, 0, 0, 0] == 3
    assert raw(clips_from_frames(frames, clips=3, crop=8, stride=2, shift=4))[0, 0, 0, 0, 0] == 2
    assert raw(clips_from_frames(frames, clips=3, crop=8, stride=2))[0, 0, 0, 0, 0] == 0
    assert torch.equal(clips_from_frames(frames, clips=3, crop=8, stride=2, rng=np.random.default_rng(1)),
                       clips_from_frames(frames, clips=3, crop=8, stride=2, shift=0, rng=np.random.default_rng(1)))
