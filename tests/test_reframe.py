"""Reframing (aqa_cli.reframe, aqa_cli/models/framer.py): a diver filmed wider is cropped back.

The bundled weights/syndive-framer.pt is read on the SynDive examples (synthetic renderings) as filmed
and shrunk to half size on their edge colour (what experiments/edits.py calls a half-size diver).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aqa_cli.errors import ConfigError, WeightsError
from aqa_cli.models.framer import FramerNet, framer_config
from aqa_cli.reframe import MAX_ZOOM, MIN_ZOOM, Framing, crop, decode_size, load_framer, smooth

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def test_network_shape_and_config_checks():
    net = FramerNet(framer_config()).eval()
    assert net(torch.randn(5, 3, 72, 96)).shape == (5, 3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.randn(3, 72, 96))
    with pytest.raises(ConfigError, match="too small"):
        FramerNet(framer_config(height=16))
    assert sum(p.numel() for p in net.state_dict().values()) * 4 < 1_500_000  # < 1.5 MB of float32


def test_smoothing_drops_a_one_frame_outlier_and_keeps_boxes_inside_the_frame():
    boxes = np.tile(np.array([[0.5, 0.5, 0.5]], np.float32), (20, 1))
    boxes[7] = (0.9, 0.1, 0.1)  # one wild frame
    out = smooth(boxes)
    assert np.allclose(out, boxes[0])
    edge = smooth(np.array([[0.95, 0.02, 0.6]] * 5 + [[0.5, 0.5, 0.01]] * 5 + [[0.5, 0.5, 3.0]] * 5, np.float32), width=1)
    assert np.allclose(edge[0], (0.7, 0.3, 0.6))  # moved in: the box stays in the picture
    assert edge[5, 2] == pytest.approx(1 / MAX_ZOOM) and edge[10, 2] == 1.0


def test_crop_takes_each_frame_s_box_exactly():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 128, 172, 3), dtype=np.uint8)
    whole = Framing(np.array([[0.5, 0.5, 1.0]] * 3, np.float32), 1.0)
    assert np.array_equal(crop(frames, whole, (172, 128)), frames)  # the whole frame at its size: unchanged
    half = Framing(np.array([[0.5, 0.5, 0.5]] * 3, np.float32), 2.0)
    assert decode_size(half, (86, 64)) == (172, 128)
    assert np.array_equal(crop(frames, half, (86, 64)), frames[:, 32:96, 43:129])  # the centre, pixel for pixel
    assert half.needed and not Framing(whole.boxes, MIN_ZOOM - 0.01).needed


def test_load_framer_refuses_what_is_not_framer_weights(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_framer(tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match="folder"):
        load_framer(tmp_path)
    with pytest.raises(WeightsError, match="not a framer model"):
        load_framer(REPO / "weights" / "syndive-view.pt")


def half_size(frames: np.ndarray) -> np.ndarray:
    """The picture at half size, centred on its edge colour (uint8 (T, H, W, 3)): a diver filmed from
    twice as far, as experiments/edits.py's "half-size diver" edit."""
    from aqa_cli.locate import shrunk

    return shrunk(frames, 0.5)


@pytest.fixture(scope="module")
def framer():
    return load_framer()  # the bundled weights, checked against weights/manifest.yaml


@pytest.fixture(scope="module")
def example_frames():
    from aqa_cli.video import read_even

    with open(EXAMPLES / "ground_truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {row["video"]: read_even(EXAMPLES / row["video"], n=96, size=(86, 64)) for row in rows}


def test_bundled_weights_are_synthetic_and_say_so(framer):
    assert framer.data["synthetic"] is True and "SynDive" in framer.data["source"]


def test_examples_as_filmed_are_left_alone_and_shrunk_ones_are_zoomed_back(framer, example_frames):
    for name, frames in example_frames.items():
        as_filmed, shrunk = framer.frame(frames), framer.frame(half_size(frames))
        assert not as_filmed.needed and as_filmed.zoom < 1.15, name
        assert shrunk.needed and 1.6 < shrunk.zoom < 2.5, name
        assert np.abs(np.median(shrunk.boxes[:, :2], axis=0) - 0.5).max() < 0.1, name  # centred, as shrunk


def test_aqa_score_reads_a_half_size_diver_as_the_dive_filmed(tmp_path, example_frames):
    from typer.testing import CliRunner

    from aqa_cli.cli import app
    from aqa_cli.video import probe, read_even, write_video

    name = "syndive_305C_10m.mp4"
    info = probe(EXAMPLES / name)
    frames = read_even(EXAMPLES / name, n=info.frames, size=(info.width, info.height))
    video = write_video(tmp_path / "half.mp4", half_size(frames), fps=info.fps, crf=18)
    runner = CliRunner()
    rows = {}
    for tag, args in (("filmed", [str(EXAMPLES / name)]), ("half", [str(video)]), ("off", [str(video), "--no-reframe"])):
        result = runner.invoke(app, ["score", *args, "--format", "json", "--no-dive-check"])
        assert result.exit_code == 0, result.output
        rows[tag] = json.loads(result.stdout)[0]
    assert (rows["filmed"]["framing"], rows["half"]["framing"], rows["off"]["framing"]) == ("as filmed", "reframed", None)
    assert rows["half"]["zoom"] > MIN_ZOOM and rows["off"]["zoom"] is None
    assert rows["half"]["dive_number"] == rows["filmed"]["dive_number"] == "305C"


def test_a_reframed_dive_is_located_again_in_the_cropped_frames(tmp_path):
    from aqa_cli import load_model
    from aqa_cli.locate import find_dives, iou
    from aqa_cli.video import probe, read_even, write_video

    name = "syndive_646C_10m.mp4"
    info = probe(EXAMPLES / name)
    frames = read_even(EXAMPLES / name, n=info.frames, size=(info.width, info.height))
    video = write_video(tmp_path / "half.mp4", half_size(frames), fps=info.fps, crf=18)
    scorer = load_model(None, device="cpu", dive_check=False, reframe=True, locate=True)
    (filmed,) = find_dives(EXAMPLES / name, scorer.locator)
    (small,) = find_dives(video, scorer.locator)  # the first look, at the small picture
    again = scorer._relocate(video, (0.0, info.duration), 2.0)
    # measured: 0.83-4.02 s cropped against 0.71-4.05 s as filmed (IoU 0.96); uncropped 0.93-3.25 s (0.69)
    assert again is not None and iou((again.start, again.end), (filmed.start, filmed.end)) >= 0.9
    assert iou((small.start, small.end), (filmed.start, filmed.end)) < 0.8
