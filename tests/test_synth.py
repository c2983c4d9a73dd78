"""SynDive: determinism, the dataset-root schema, judges' rule and labels, decoded frames, the CLI."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aqa_cli import rules, video
from aqa_cli.cli import app
from aqa_cli.datasets import layout
from aqa_cli.datasets.syndive import synth
from aqa_cli.datasets.syndive.motion import ZOOM_TIGHTEST, DivePlan, camera, framing
from aqa_cli.datasets.syndive.render import Camera, Scene, _project, body_capsules, render_frame
from aqa_cli.errors import DataError, UsageError
from aqa_cli.text import tokenize

COUNT, SIZE, FRAMES = 5, (64, 48), 12


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """The same tiny set made twice: with 1 worker and with 2."""
    base = tmp_path_factory.mktemp("syn")
    for workers in (1, 2):
        synth.synthesize(base / f"w{workers}", COUNT, seed=3, size=SIZE, frames=FRAMES, workers=workers)
    return base / "w1", base / "w2"


def test_same_seed_same_bytes_whatever_the_workers(roots):
    one, two = roots
    assert (one / "annotations.jsonl").read_bytes() == (two / "annotations.jsonl").read_bytes()
    for i in range(COUNT):
        a = np.load(one / "frames" / f"{synth.sample_id(i)}.npy")
        b = np.load(two / "frames" / f"{synth.sample_id(i)}.npy")
        assert np.array_equal(a, b)


def test_other_seed_other_dives(tmp_path, roots):
    synth.synthesize(tmp_path / "s4", 3, seed=4, size=SIZE, frames=FRAMES)
    other = layout.DatasetRoot(tmp_path / "s4").samples
    first = layout.DatasetRoot(roots[0]).samples
    assert [s.judge_scores for s in other.values()] != [s.judge_scores for s in list(first.values())[:3]]


def test_schema_round_trip(roots):
    ds = layout.DatasetRoot(roots[0])
    info = ds.info
    assert info.synthetic is True and info.source == "SynDive (synthetic)"
    assert (info.width, info.height, info.frames, info.pad) == (*SIZE, FRAMES, 0)
    assert info.extra["seed"] == 3 and info.counts["total"] == COUNT
    assert len(ds.samples) == COUNT
    ids = [s.id for name in layout.SPLITS for s in ds.split(name)]
    assert sorted(ids) == sorted(ds.samples) and len(ids) == len(set(ids))
    assert len(ds.split("test")) == 1 and len(ds.split("val")) == 1
    for s in ds.samples.values():
        assert s.end_frame == FRAMES - 1 and s.start_frame == 0
        assert (roots[0] / "videos" / s.video).is_file()
        assert set(s.faults) >= {"rotation_error_deg", "twist_error_deg", "knee_bend_deg", "loose",
                                 "legs_apart_deg", "height_loss", "distance_m", "splash_m", "execution"}


def test_judges_rule_and_labels_match_the_dive_number(roots):
    for s in layout.DatasetRoot(roots[0]).samples.values():
        assert len(s.judge_scores) == 7
        assert all(0 <= m <= 10 and (2 * m) == int(2 * m) for m in s.judge_scores)
        assert s.final_score == rules.final_score(s.judge_scores, s.difficulty)
        assert s.difficulty == rules.difficulty(s.dive_number, s.height)
        assert s.height in ("1m", "3m", "10m")
        labels = rules.parse_dive(s.dive_number)
        assert (s.position, s.armstand, s.rotation_type, s.ss_no, s.tw_no) == (
            labels.position, labels.armstand, labels.rotation_type, labels.ss_no, labels.tw_no)
        assert s.expected_score == round(3 * s.faults["execution"] * s.difficulty, 2)
        # judges' noise moves the score, but not far from the noise-free one
        assert abs(s.final_score - s.expected_score) < 3 * 1.5 * s.difficulty
        assert s.commentary and s.commentary.split() == tokenize(s.commentary)


def test_decoded_videos_have_the_promised_frames_and_size(roots):
    ds = layout.DatasetRoot(roots[0])
    for s in ds.samples.values():
        frames = ds.load_frames(s.id)
        assert frames.dtype == np.uint8 and frames.shape == (FRAMES, SIZE[1], SIZE[0], 3)
        info = video.probe(roots[0] / "videos" / s.video)
        assert info.frames == FRAMES and info.fps == pytest.approx(25.0)
        again = video.read_window(roots[0] / "videos" / s.video, FRAMES - 1, FRAMES, SIZE)
        assert np.array_equal(again, frames)  # the stored frames are the decoded video
        assert frames.std() > 10  # a picture, not a blank


def test_contact_sheet_is_a_png_grid(roots, tmp_path):
    samples = list(layout.DatasetRoot(roots[0]).samples.values())
    out = synth.contact_sheet(roots[0], samples, tmp_path / "sheet.png", dives=3, columns=4)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (4 * (SIZE[0] + 2), 3 * (SIZE[1] + 2))
    at = data.index(b"IDAT")
    raw = np.frombuffer(zlib.decompress(data[at + 4 : at + 4 + struct.unpack(">I", data[at - 4 : at])[0]]), np.uint8)
    raw = raw.reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 2).all()  # every row uses the "Up" filter
    pixels = (np.cumsum(raw[:, 1:].astype(np.int64), axis=0) % 256).reshape(height, width, 3)
    first = layout.DatasetRoot(roots[0]).load_frames(samples[0].id)[0]
    assert np.array_equal(pixels[1 : 1 + SIZE[1], 1 : 1 + SIZE[0]], first)  # top-left cell = dive 0, frame 0


def _scene(plan: DivePlan) -> Scene:
    grey = np.array([0.5, 0.5, 0.5], np.float32)
    return Scene(width=96, height=72, board_height=plan.height, platform=plan.platform, suit=grey, skin=grey,
                 hair=grey, wall=np.array([0.2, 0.2, 0.25], np.float32), wall_accent=grey,
                 water=np.array([0.1, 0.3, 0.4], np.float32), board=grey,
                 light=np.array([0.0, 0.6, 0.8], np.float32), ambient=0.5, wall_depth=8.0, noise=0.0)


def test_splash_grows_with_the_entry_error():
    """Bright spray pixels just after the entry: a rip leaves few, a bad entry many."""
    bright = []
    for splash in (0.05, 1.2):
        plan = DivePlan(height=3.0, platform=False, letter="C", ss_no=5, tw_no=0, facing=1, sense=1,
                        armstand=False, takeoff=1.0, splash=splash)
        t = plan.entry + 0.25
        img = render_frame(_scene(plan), Camera(pos=(1.0, 1.3, 10.0), f=72 * 10 / 3.0), plan.pose(t),
                           plan.splash_at(t), t, np.random.default_rng(0))
        bright.append(int((img.min(axis=2) > 200).sum()))
    assert bright[1] > 5 * max(bright[0], 1)


@pytest.mark.parametrize("digit,head_toward", [(1, +1), (2, +1), (3, -1), (4, -1)])
def test_rotation_sense_relative_to_the_board(digit, head_toward):
    """Forward and back dives turn the head out over the water (+x) after take-off, reverse and
    inward dives back toward the board (-x); the total turn is the dive's half somersaults."""
    plan = DivePlan(height=10.0, platform=True, letter="B", ss_no=3, tw_no=0,
                    facing=1 if digit in (1, 3) else -1, sense=1 if digit in (1, 4) else -1,
                    armstand=False, takeoff=1.0)
    early = plan.pose(plan.takeoff + 0.05 * plan.flight)
    assert math.copysign(1, -early.pitch) == head_toward  # pitch > 0 moves the head toward -x
    end = plan.pose(plan.entry - 1e-3)
    assert abs(end.pitch) == pytest.approx(3 * math.pi, abs=0.05)


def test_camera_zooms_in_on_a_tuck_and_keeps_the_whole_body_in_frame():
    """The replay camera shows less of the hall while the body is closed (the diver looks larger) and
    opens up for the straight entry; every capsule end stays inside the 171x128 frame."""
    plan = DivePlan(height=3.0, platform=False, letter="C", ss_no=5, tw_no=0, facing=1, sense=1,
                    armstand=False, takeoff=0.3)
    shown = [framing(plan, t, 2.5) for t in np.linspace(0.0, plan.entry + 0.5, 60)]
    mid = framing(plan, plan.takeoff + 0.5 * plan.flight, 2.5)
    assert mid < 0.7 * 2.5 and framing(plan, plan.entry, 2.5) == 2.5 and min(shown) >= ZOOM_TIGHTEST
    for t in np.linspace(plan.takeoff, plan.entry, 25):
        cam = camera(plan, t, 128, 2.5, 10.0, (0.0, 0.0), np.zeros(2))
        a, b, _, _ = body_capsules(plan.pose(t))
        u, v, _ = _project(cam, np.concatenate([a, b]), 171, 128)
        assert (u > 0).all() and (u < 171).all() and (v > 0).all() and (v < 128).all(), t


runner = CliRunner()


def usage_error(args: list[str]) -> UsageError:
    """Run the CLI in-process and return the UsageError it raised (cli.main() maps it to exit 2)."""
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UsageError), (result.exception, result.output)
    assert result.exception.exit_code == 2 and "\n" not in str(result.exception)
    return result.exception


def test_cli_error_is_one_red_line_and_exit_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "aqa_cli", "data", "synth", str(tmp_path / "r"), "--count", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines()[0] == "error: --count 0: need at least 1 dive"


@pytest.mark.parametrize("args,needle", [
    (["--size", "abc"], "--size"),
    (["--size", "10x10"], "--size"),
    (["--count", "0"], "--count"),
    (["--heights", "2m"], "--heights"),
    (["--frames", "3"], "--frames"),
    (["--seed", "-1"], "--seed"),
    (["--workers", "0"], "--workers"),
    (["--preview", "sheet.jpg"], "--preview"),
])
def test_cli_usage_errors(tmp_path, args, needle):
    error = usage_error(["data", "synth", str(tmp_path / "r"), "--count", "1", *args])
    assert needle in str(error)
    assert not (tmp_path / "r" / "annotations.jsonl").exists()


@pytest.mark.parametrize("count,size,frames,needle", [
    (1, (171, 128), 100000, "--frames 100000: expected 8-1000"),
    (10**8, (1920, 1080), 1000, "GB free there"),  # 622 PB of frames
])
def test_output_size_is_bounded_before_any_work(tmp_path, count, size, frames, needle):
    with pytest.raises(UsageError, match=needle):
        synth.check_options(tmp_path / "r", count, size, frames, 25.0, ("3m",), False)


def test_cli_refuses_unwritable_or_foreign_roots(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert "cannot write" in str(usage_error(["data", "synth", str(blocker / "r"), "--count", "1"]))
    assert "not a SynDive root" in str(usage_error(["data", "synth", str(tmp_path), "--count", "1"]))
    assert blocker.read_text() == "x"


def test_cli_writes_a_set_and_needs_overwrite_to_replace_it(tmp_path):
    root = tmp_path / "syn"
    args = ["data", "synth", str(root), "--count", "2", "--size", "48x32", "--frames", "8", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["count"] == 2 and len(layout.DatasetRoot(root).samples) == 2
    assert "--overwrite" in (usage_error(args).hint or "")
    result = runner.invoke(app, [*args, "--overwrite", "--seed", "5"])
    assert result.exit_code == 0 and layout.DatasetRoot(root).info.extra["seed"] == 5


def _crash_on_dive(monkeypatch, index: int) -> None:
    """Make synthesize() fail while rendering dive `index`, as a crash or a kill would stop it."""
    make_one = synth._make_one

    def crash(job):
        if job.index == index:
            raise RuntimeError("renderer crashed")
        return make_one(job)

    monkeypatch.setattr(synth, "_make_one", crash)


def test_the_next_run_clears_what_a_failed_run_left(tmp_path, monkeypatch):
    root = tmp_path / "syn"
    _crash_on_dive(monkeypatch, 1)
    with pytest.raises(RuntimeError):
        synth.synthesize(root, 3, size=SIZE, frames=FRAMES)
    with pytest.raises(DataError, match="no dataset.yaml") as error:
        layout.DatasetRoot(root)
    assert "unfinished" in error.value.hint
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="interrupted run"):
        synth.synthesize(root, 3, size=SIZE, frames=FRAMES)  # no --overwrite needed
    assert len(layout.DatasetRoot(root).samples) == 3
    assert sorted(p.name for p in root.iterdir()) == sorted(synth.ENTRIES)  # the work folder is gone
    # a folder that holds anything else besides is still not ours to clear
    other = tmp_path / "other"
    (other / layout.UNFINISHED).mkdir(parents=True)
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a SynDive root"):
        synth.synthesize(other, 1, size=SIZE, frames=FRAMES, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_overwrite_keeps_the_old_set_until_the_new_one_is_complete(tmp_path, monkeypatch):
    root = tmp_path / "syn"
    synth.synthesize(root, 2, seed=1, size=SIZE, frames=FRAMES)
    _crash_on_dive(monkeypatch, 1)
    with pytest.raises(RuntimeError):
        synth.synthesize(root, 2, seed=2, size=SIZE, frames=FRAMES, overwrite=True)
    old = layout.DatasetRoot(root)  # still whole: its info, annotations and frames
    assert old.info.extra["seed"] == 1 and all(old.load_frames(i).shape[0] == FRAMES for i in old.samples)
    monkeypatch.undo()
    synth.synthesize(root, 2, seed=2, size=SIZE, frames=FRAMES, overwrite=True)
    assert layout.DatasetRoot(root).info.extra["seed"] == 2
    assert not (root / layout.UNFINISHED).exists()


def test_preview_path_is_checked_before_rendering(tmp_path):
    folder = tmp_path / "sheet.png"
    folder.mkdir()
    with pytest.raises(UsageError, match="is a folder"):
        synth.synthesize(tmp_path / "syn", 1, size=SIZE, frames=FRAMES, preview=folder)
    assert not (tmp_path / "syn" / layout.UNFINISHED).exists()  # nothing rendered
    sheet = tmp_path / "new" / "sheet.png"  # a missing folder is made
    synth.synthesize(tmp_path / "syn", 1, size=SIZE, frames=FRAMES, preview=sheet)
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = list(layout.DatasetRoot(tmp_path / "syn").samples.values())
    with pytest.raises(UsageError, match="is a folder"):  # what the CLI calls after rendering
        synth.contact_sheet(tmp_path / "syn", samples, folder)


def test_workers_are_capped_at_the_cpu_count(monkeypatch):
    monkeypatch.setattr(synth.os, "cpu_count", lambda: 2)
    with pytest.warns(UserWarning, match="--workers 1000: using 2"):
        assert synth._worker_count(1000, 50) == 2
    assert synth._worker_count(2, 1) == 1  # never more workers than dives


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_a_parallel_run_without_worker_tracebacks(tmp_path):
    """Ctrl-C reaches every process of the group. The workers must ignore it (the main process
    terminates them): SIGINT sent to the workers alone first, so a worker that takes it has time to
    print its traceback before anything terminates it, then to the whole group."""
    root = tmp_path / "syn"
    # 1000 dives: minutes of work, so the run is still going when the signals come
    run = subprocess.Popen([sys.executable, "-m", "aqa_cli", "data", "synth", str(root), "-n", "1000", "--size",
                            "64x48", "--frames", "12", "-j", "2", "-q"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not list(root.glob(f"{layout.UNFINISHED}/new/frames/*.npy")):  # the workers are rendering
            assert time.monotonic() < deadline and run.poll() is None, run.stderr and run.stderr.read()
            time.sleep(0.02)
        for pid in _children(run.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert "Traceback" not in err and run.returncode == 130, err


def test_summary_oracle_uses_the_roots_test_split(roots, tmp_path):
    from aqa_cli.metrics import spearman

    root = tmp_path / "copy"
    shutil.copytree(roots[0], root, ignore=shutil.ignore_patterns("videos", "frames"))
    samples = list(layout.DatasetRoot(root).samples.values())
    test = samples[1:]
    (root / "splits" / "test.txt").write_text("".join(s.id + "\n" for s in test))
    stats = synth.summary(samples, root)
    want = spearman([s.expected_score for s in test], [s.final_score for s in test])
    assert stats["count"] == COUNT and stats["oracle_spearman_test"] == round(want, 4)
    assert "oracle_spearman_test" not in synth.summary(samples)
