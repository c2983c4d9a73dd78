"""The view model (aqa_cli.view, aqa_cli/models/view.py): board side and height.

The bundled weights/syndive-view.pt is read on the SynDive examples (synthetic renderings, every one
filmed with the board on the left), as filmed and mirrored; its training path runs on a tiny random root.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from aqa_cli.checkpoint import Preprocess
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.errors import WeightsError
from aqa_cli.models.view import ViewNet, view_config
from aqa_cli.view import View, ViewSamples, board_left, load_view, read_view, train_view
from trainroot import make_root

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def test_shapes_for_any_clip_geometry():
    torch.manual_seed(0)
    net = ViewNet(view_config()).eval()
    # tiny-mtl's clips (3 x 32 frames of 56 px) and the C3D papers' (6 x 16 of 112 px)
    for shape in ((2, 3, 3, 32, 56, 56), (1, 6, 3, 16, 112, 112)):
        out = net(torch.randn(shape))
        assert out["side"].shape == (shape[0], 2)
        assert out["height"].shape == (shape[0], 3)
    with pytest.raises(ValueError, match=r"\(B, N, 3, T, H, W\)"):
        net(torch.randn(3, 3, 32, 56, 56))
    assert sum(p.numel() for p in net.state_dict().values()) * 4 < 1_000_000  # < 1 MB of float32


@pytest.fixture(scope="module")
def reader():
    return load_view()  # the bundled weights, checked against weights/manifest.yaml


@pytest.fixture(scope="module")
def examples(reader):
    """[(file name, true height, clips (N, 3, T, H, W) as the view model's preprocess makes them)]"""
    with open(EXAMPLES / "ground_truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [(row["video"], row["height"], reader.prepare(EXAMPLES / row["video"])) for row in rows]


def test_bundled_weights_are_synthetic_and_say_so(reader):
    assert reader.data["synthetic"] is True
    assert "SynDive" in reader.data["source"]


def test_mirroring_the_clips_moves_the_board_to_the_right(reader, examples):
    for name, _, clips in examples:
        as_filmed, mirrored = reader.read(clips), reader.read(clips.flip(-1))
        assert as_filmed.board_side == "left" and as_filmed.p_right < 0.5, name
        assert mirrored.board_side == "right" and mirrored.p_right > 0.5, name
        # the test-time flip undoes the mirror exactly, and leaves a board-left video alone
        assert torch.equal(board_left(clips.flip(-1), mirrored), clips)
        assert board_left(clips, as_filmed) is clips


def test_height_of_the_examples_matches_their_file_names(reader, examples):
    for name, height, clips in examples:
        assert name.removesuffix(".mp4").endswith(height)  # syndive_107C_1m.mp4 → 1m
        for x in (clips, clips.flip(-1)):
            view = reader.read(x)
            assert view.height == height, (name, view)
            assert 1 / 3 < view.p_height <= 1.0


def test_read_view_defaults_to_the_bundled_reader(reader, examples):
    _, _, clips = examples[0]
    assert read_view(clips) == reader.read(clips)
    assert isinstance(read_view(clips, reader), View)
    with pytest.raises(ValueError, match="one video's clips"):
        reader.read(clips.unsqueeze(0))


@pytest.mark.parametrize("kind", ["garbage", "missing", "folder", "aqa model"])
def test_loading_a_bad_file_is_a_one_line_error(kind, tmp_path):
    path = {"garbage": tmp_path / "view.pt", "missing": tmp_path / "nope.pt", "folder": tmp_path,
            "aqa model": REPO / "weights" / "syndive-tiny-mtl.pt"}[kind]
    if kind == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError) as info:
        load_view(path)
    message = str(info.value)
    assert message and "\n" not in message
    if kind == "aqa model":
        assert "not a view model" in message


def test_training_writes_a_view_checkpoint_that_loads(tmp_path):
    root = make_root(tmp_path / "root")  # 16x20 random frames, every dive at 3m, flagged synthetic
    pre = Preprocess(clips=2, clip_len=16, resize=(20, 16), crop=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    torch.manual_seed(0)
    metrics = train_view(root, tmp_path / "view.pt", pre, epochs=1, batch_size=4, log=lambda line: None)
    assert set(metrics) >= {"val", "test", "best_epoch"}
    assert metrics["test"]["mirrored"]["count"] == 2
    loaded = load_view(tmp_path / "view.pt")  # outside the bundled folder: not in a manifest, allowed
    assert loaded.data["synthetic"] is True and loaded.data["heights"] == {"1m": 0, "3m": 8, "10m": 0}
    assert loaded.preprocess == pre
    view = loaded.read(torch.zeros(2, 3, 16, 16, 16))
    assert view.board_side in ("left", "right") and view.height in ("1m", "3m", "10m")


def test_mirrored_samples_are_the_flipped_clips_labelled_right(tmp_path):
    root = DatasetRoot(make_root(tmp_path / "root"))
    pre = Preprocess(clips=2, clip_len=16, resize=(20, 16), crop=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    plain = ViewSamples(root, "val", pre, train=False, flip=0.0)[0]
    mirrored = ViewSamples(root, "val", pre, train=False, flip=1.0)[0]
    assert torch.equal(mirrored["clips"], plain["clips"].flip(-1))
    assert (int(plain["side"]), int(mirrored["side"])) == (0, 1)
    assert int(plain["height"]) == int(mirrored["height"]) == 1  # 3m
    drawn = ViewSamples(root, "train", pre, train=True, flip=0.5, seed=0)
    sides = [int(drawn[i]["side"]) for i in range(len(drawn))]
    assert 0 < sum(sides) < len(sides)  # both sides drawn over 8 samples at p = 0.5 (seed 0)
