"""`aqa score` with the bundled helpers: the view model (board side: mirrored footage reads as filmed;
the height when none is given) and the locator (the span scored), on a SynDive example (synthetic)."""

from __future__ import annotations

import os

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from aqa_cli.scoring import load_model
from aqa_cli.video import write_video

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "syndive_205C_3m.mp4"


@pytest.fixture(scope="module")
def scorer():
    torch.set_num_threads(1)
    return load_model(device="cpu", dive_check=False)  # bundled weights, locator and view model


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    with av.open(str(EXAMPLE)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return write_video(tmp_path_factory.mktemp("mirror") / "mirrored.mp4", frames[:, :, ::-1], fps=25, crf=18)


def test_mirrored_footage_reads_the_dive_as_filmed(scorer, mirrored):
    assert scorer.view is not None and scorer.locator is not None
    filmed, flipped = scorer.score(EXAMPLE), scorer.score(mirrored)
    assert (filmed.board_side, flipped.board_side) == ("left", "right")
    assert filmed.dive_number == flipped.dive_number == "205C"
    assert abs(filmed.final_score - flipped.final_score) < 5
    # without the view model the mirrored back dive reads as another group (the 205C -> 305C)
    scorer.view, view = None, scorer.view
    try:
        assert scorer.score(mirrored).dive_number != "205C"
    finally:
        scorer.view = view


def test_the_height_is_predicted_when_not_given_and_the_given_one_wins(scorer):
    predicted = scorer.score(EXAMPLE)
    assert (predicted.height, predicted.height_from, predicted.score_source) == ("3m", "predicted", "expected DD")
    given = scorer.score(EXAMPLE, height="10m")
    assert (given.height, given.height_from) == ("10m", "given")
    assert given.difficulty != predicted.difficulty  # the 10 m table's DDs


def test_the_span_scored_is_the_located_dive(scorer):
    r = scorer.score(EXAMPLE)
    assert r.window_from == "located" and 0 <= r.window_start < 1 and 3.5 < r.window_end <= 4.2  # a 4.12 s clip
    whole = scorer.score(EXAMPLE, window=(0.0, 4.12))
    assert (whole.window_from, whole.window_start, whole.window_end) == ("given", 0.0, 4.12)


def test_frames_decoded_from_damaged_data_are_a_warning_not_silence(scorer, tmp_path):
    data = bytearray(EXAMPLE.read_bytes())
    for i in np.random.default_rng(0).integers(len(data) // 4, len(data) - 1000, 40):
        data[i:i + 8] = bytes(8)  # zeroed bytes inside the coded frames: FFmpeg conceals and flags them
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    r = scorer.score(damaged)
    assert r.error is None and "frames read were decoded from damaged data" in r.warning
    assert scorer.score(EXAMPLE).warning is None


def test_a_dive_whose_take_off_is_cut_off_is_a_warning(scorer, tmp_path):
    with av.open(str(EXAMPLE)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    second_half = write_video(tmp_path / "second_half.mp4", frames[len(frames) // 2:], fps=25, crf=18)
    assert "take-off may be cut off" in scorer.score(second_half).warning


def test_all_dives_gives_a_row_per_dive_of_a_session(tmp_path):
    import json

    from test_score import score

    from aqa_cli import locate
    from aqa_cli.datasets.syndive import session as sessions

    plan = sessions.plan_session(0, 3, dives=(2, 2), size=(128, 96), fps=10.0)
    video = sessions.write_session(plan, tmp_path / "session.mp4")
    code, out, err, res = score(str(video), "--all-dives", "--no-dive-check", "-f", "json")
    assert code == 0, (err, res.exception)
    rows = json.loads(out)
    assert len(rows) == len(plan.dives) == 2 and all(r["window_from"] == "located" for r in rows)
    for row, truth in zip(rows, plan.dives):  # in time order, each span around its own dive
        assert row["window_start"] <= truth.start + 0.2 and row["window_end"] >= truth.end - 0.2
        assert locate.iou((row["window_start"], row["window_end"]), (truth.start, truth.end)) > 0.5
    assert "Scored 2/2" in err
    # resumable per video: a rerun takes both dives from the CSV; a changed video is scored again, its
    # rows replaced (not added to)
    csv_file = tmp_path / "s.csv"
    code, out, err, res = score(str(video), "--all-dives", "--no-dive-check", "-o", str(csv_file))
    assert code == 0 and len(csv_file.read_text().splitlines()) == 3  # header + a row per dive
    first = csv_file.read_text()
    code, out, err, res = score(str(video), "--all-dives", "--no-dive-check", "--csv", str(csv_file))
    assert code == 0 and "Scored 2/2 (2 already in" in err and csv_file.read_text() == first
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    code, out, err, res = score(str(video), "--all-dives", "--no-dive-check", "--csv", str(csv_file))
    assert code == 0 and "already in" not in err and csv_file.read_text() == first
