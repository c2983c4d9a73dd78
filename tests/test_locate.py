"""The dive locator: generated sessions (synthetic) and their ground truth, the streaming low-rate reader,
the network's shapes, windows from a probability curve, find_dives with the bundled weights, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from aqa_cli import locate, video
from aqa_cli.cli import app
from aqa_cli.datasets.syndive import session as sessions
from aqa_cli.datasets.syndive.render import render_frame
from aqa_cli.errors import VideoDecodeError
from aqa_cli.models.locator import Locator
from media import frame_index, make_audio_only, make_text, make_truncated, make_video

CFG = locate.LocatorConfig()


# ---------------------------------------------------------------------------------------------
# Generated sessions


def test_same_seed_same_session_and_frames():
    a, b = sessions.plan_session(5, 2, size=(64, 48), fps=5.0), sessions.plan_session(5, 2, size=(64, 48), fps=5.0)
    assert a == b
    frames_a = [f for _, f in zip(range(12), sessions.render_session(a))]
    frames_b = [f for _, f in zip(range(12), sessions.render_session(b))]
    assert all(np.array_equal(x, y) for x, y in zip(frames_a, frames_b))
    assert sessions.plan_session(6, 2) != sessions.plan_session(5, 2)


@pytest.mark.parametrize("index", range(6))
def test_ground_truth_is_take_off_to_spray_gone(index):
    s = sessions.plan_session(0, index, fps=25.0)
    dives = [x for x in s.stretches if x.kind == "dive"]
    assert 1 <= len(s.dives) == len(dives) <= 4
    assert {x.kind for x in s.stretches} <= {"dive", *sessions.KINDS}
    assert [x.first for x in s.stretches] == list(np.cumsum([0] + [x.frames for x in s.stretches[:-1]]))
    for truth, stretch in zip(s.dives, dives):
        plan = sessions.dive_plan(stretch.spec)
        begin = stretch.first / s.fps
        assert truth.start == pytest.approx(begin + plan.takeoff, abs=1e-3)  # take-off: flight starts
        assert truth.end < (stretch.first + stretch.frames) / s.fps  # the water after it is shown
        spray = lambda t: plan.splash_at(t - begin).height
        assert spray(truth.end - 0.05) > 0 and spray(truth.end + 0.05) == 0  # the spray has just fallen
    times = np.arange(0, s.duration, 0.1)
    labels = sessions.labels(s, times)
    inside = sum(d.end - d.start for d in s.dives)
    assert labels.mean() == pytest.approx(inside / s.duration, abs=0.02)


def test_empty_scene_has_no_diver():
    s = sessions.plan_session(0, 0, size=(64, 48))
    stretch = next(x for x in s.stretches if x.kind == "dive")
    plan = sessions.dive_plan(stretch.spec)
    scene_rng = np.random.default_rng(0)
    from aqa_cli.datasets.syndive import synth
    from aqa_cli.datasets.syndive.motion import camera

    scene = synth.make_scene(scene_rng, plan, (64, 48), 0)
    scene.noise = 0.0
    cam = camera(plan, 0.0, 48, 2.5, 10.0, (0.0, 0.0), np.zeros(2))
    empty = render_frame(scene, cam, None, None, 0.0, np.random.default_rng(1))
    diver = render_frame(scene, cam, plan.pose(0.0), None, 0.0, np.random.default_rng(1))
    assert empty.shape == diver.shape == (48, 64, 3)
    assert (np.abs(empty.astype(int) - diver).sum(axis=2) > 30).mean() > 0.02  # the diver is what differs


# ---------------------------------------------------------------------------------------------
# The streaming low-rate reader


def test_iter_resampled_takes_the_frame_on_screen(tmp_path):
    path = make_video(tmp_path / "v.mp4", 50, size=(64, 48), fps=25)  # frame i shows i, 2 s
    parts = list(video.iter_resampled(path, fps=10, size=(64, 48), chunk=7))
    assert all(len(t) == len(f) <= 7 for t, f in parts)
    times = np.concatenate([t for t, _ in parts])
    frames = np.concatenate([f for _, f in parts])
    assert np.allclose(times, np.arange(20) / 10)  # 0 .. 1.9 s: the last frame is at 1.96 s
    assert [frame_index(f) for f in frames] == [int(k * 2.5) for k in range(20)]


def test_iter_resampled_keeps_what_decodes_before_damage(tmp_path):
    path = make_truncated(tmp_path / "cut.mp4", 100, keep=0.5)
    with pytest.warns(UserWarning, match="decoding stopped after"):
        times = np.concatenate([t for t, _ in video.iter_resampled(path, fps=10)])
    assert 0 < len(times) < 40 and np.allclose(times, np.arange(len(times)) / 10)


def test_iter_resampled_bad_inputs_are_one_line(tmp_path):
    for path, needle in ((make_text(tmp_path / "notes.mp4"), "not a media file"),
                         (make_audio_only(tmp_path / "tone.m4a"), "no video stream"),
                         (tmp_path / "missing.mp4", "no such file")):
        with pytest.raises(VideoDecodeError, match=needle) as info:
            list(video.iter_resampled(path))
        assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# The network and the windows


def test_locator_shapes_and_chunked_encoding_equals_whole():
    torch.manual_seed(0)
    net = Locator((64, 48)).eval()
    frames = torch.randint(0, 256, (2, 9, 48, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        logits = net(frames)
        whole = net.encode(frames)
        parts = torch.cat([net.encode(frames[:, :4]), net.encode(frames[:, 4:], frames[:, 3])], dim=1)
    assert logits.shape == (2, 9) and whole.shape == (2, 9, 64)
    assert torch.allclose(whole, parts, atol=1e-5)
    assert sum(p.numel() for p in net.parameters()) < 500_000  # < 2 MB as float32


def curve(values: list[float], step: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(len(values)) * step, np.array(values, float)


def test_windows_threshold_crossings_merging_and_minimum_length():
    cfg = locate.LocatorConfig(threshold=0.5, merge_gap=0.3, min_length=0.6, pad=0.0)
    # A dive from 0.25 s to 1.25 s (crossings halfway between samples), a 1-sample dip at 0.8 s that is
    # merged, a 0.3 s blip at 2.0 s that is too short, a dive running off the end.
    p = [0, 0, 0.25, 0.75, 1, 1, 1, 1, 0.4, 1, 1, 1, 0.75, 0.25, 0, 0, 0, 0, 0, 0, 0.6, 0.6, 0.6, 0,
         0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    t, prob = curve(p)
    found = locate.windows(t, prob, cfg)
    assert [(w.start, w.end) for w in found] == [(pytest.approx(0.25), pytest.approx(1.25)),
                                                 (pytest.approx(3.05), pytest.approx(3.95))]
    assert found[0].confidence == pytest.approx(np.mean(p[3:13]))
    padded = locate.windows(t, prob, locate.LocatorConfig(pad=0.5, min_length=0.6))
    assert (padded[0].start, padded[0].end) == (pytest.approx(-0.05), pytest.approx(1.75))  # not before the curve
    assert padded[1].end == pytest.approx(3.95)  # never beyond the end of the curve
    gap = locate.windows(t, prob, locate.LocatorConfig(merge_gap=0.0, min_length=0.0))
    assert len(gap) == 4  # unmerged: the dip splits the first dive; the blip stays


def test_windows_of_an_empty_or_flat_curve():
    assert locate.windows(np.array([]), np.array([]), CFG) == []
    assert locate.windows(*curve([0.1] * 50), CFG) == []
    (whole,) = locate.windows(*curve([0.9] * 50), CFG)
    assert (whole.start, whole.end) == (pytest.approx(-0.05), pytest.approx(4.95))


def test_match_pairs_one_to_one():
    assert locate.iou((0, 2), (1, 3)) == pytest.approx(1 / 3)
    best, ok, false = locate.match([(0, 2), (0.1, 2), (5, 6), (9, 10)], [(0, 2), (5, 6.5), (20, 21)])
    assert best == [1.0, pytest.approx(1 / 1.5), 0.0] and ok == 1 and false == 2


# ---------------------------------------------------------------------------------------------
# The bundled weights on a generated session, and the CLI


@pytest.fixture(scope="module")
def session_video(tmp_path_factory):
    """A generated session of one dive (synthetic) at 10 fps, 128x96, and its plan."""
    plan = sessions.plan_session(0, 1, dives=(1, 1), size=(128, 96), fps=10.0)
    return sessions.write_session(plan, tmp_path_factory.mktemp("session") / "session.mp4"), plan


def test_find_dives_with_the_bundled_weights(session_video):
    path, plan = session_video
    locator = locate.load_locator()
    assert locator.synthetic and locator.path.name == "syndive-locator.pt"
    found = locate.find_dives(path, locator)
    (truth,) = plan.dives
    assert len(found) == 1
    assert locate.iou((found[0].start, found[0].end), (truth.start, truth.end)) >= 0.7
    assert 0.5 <= found[0].confidence <= 1.0


def test_the_bundled_locator_finds_a_diver_filmed_half_as_large(session_video):
    """Trained with shrunk pictures too (train_locator's `shrink`): the session read at the locator's rate
    and size, shrunk to half on its edge colour, gives the same dive."""
    path, plan = session_video
    locator = locate.load_locator()
    parts = list(video.iter_resampled(path, CFG.fps, CFG.size))
    times, frames = np.concatenate([t for t, _ in parts]), np.concatenate([f for _, f in parts])
    small = locate.shrunk(frames, 0.5)
    assert small.shape == frames.shape and (small[:, :12] == small[:, :1, :1]).all()  # a border of one colour
    (truth,) = plan.dives
    (found,) = locate.windows(times, locate.span_probability(small, locator), locator.config)
    # measured 0.96; the locator bundled before it was trained with `shrink` read 0.85 (it ended the dive late)
    assert locate.iou((found.start, found.end), (truth.start, truth.end)) >= 0.9


def test_cli_locate_rows_and_a_bad_input(session_video, tmp_path):
    path, plan = session_video
    runner = CliRunner()
    result = runner.invoke(app, ["locate", str(path), "-f", "json", "-q"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["dive"] for r in rows] == [1] and rows[0]["video"] == str(path)
    assert rows[0]["start"] < plan.dives[0].end and rows[0]["end"] > plan.dives[0].start
    csv = runner.invoke(app, ["locate", str(path), "-f", "csv", "-q"])
    assert csv.stdout.splitlines()[0] == "video,dive,start,end,confidence"
    audio = make_audio_only(tmp_path / "tone.m4a")
    bad = runner.invoke(app, ["locate", str(audio), "-f", "csv"])
    assert bad.exit_code == 1
    failed = [line for line in bad.stderr.splitlines() if "failed" in line]
    assert len(failed) == 1 and "no video stream" in failed[0]
    assert bad.stdout.splitlines() == ["video,dive,start,end,confidence"]
    assert "synthetic" in bad.stderr


def test_portrait_video_is_read_with_a_warning(tmp_path):
    path = make_video(tmp_path / "phone.mp4", 20, size=(64, 48), rotate=90)  # upright: 48 wide, 64 tall
    with pytest.warns(UserWarning, match="portrait"):
        found = locate.find_dives(path, locate.load_locator())
    assert found == []  # a test pattern is no dive
