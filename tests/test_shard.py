"""Scale-out scoring: shard assignment, part names, merging parts in input order, resuming from the parts of
a killed run of another world size, the status files' waits, and one real torchrun run with 2 CPU processes
whose merged CSV equals a single-process run's.

The checkpoint is a tiny random-init model (tests/checkpoints.py): the scores are meaningless; the tests
check that every process's rows land once, in order, with their resume state.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import torch
from checkpoints import make_checkpoint
from media import make_video
from test_writers import make_files, read_rows

from aqa_cli import writers
from aqa_cli.batch import ScoreJob
from aqa_cli.errors import UsageError
from aqa_cli.scoring import ScoreResult
from aqa_cli.shard import Beacon, RankError, Shard, find_parts, part_path, status_path

SETTINGS = {"weights_sha256": "abc", "height": None, "dd": None, "clips": None}


def result(video, score: float = 50.0, error: str | None = None) -> ScoreResult:
    if error:
        return ScoreResult(video=str(video), weights="demo", error=error)
    return ScoreResult(video=str(video), final_score=score, execution=20.0, difficulty=2.5, dive_number="105B",
                       weights="demo", probabilities={"position": 0.9}, dd_from="expected")


def files(folder, n):
    folder.mkdir(exist_ok=True)
    return make_files(folder, n)


def write_part(out, rank, world, results, settings=SETTINGS):
    part = writers.ResumableCsv(part_path(out, rank, world), settings)
    for r in results:
        part.write(r)
    part.close()


def test_shards_cover_every_input_once_and_in_order():
    items = list(range(11))
    for world in (1, 2, 3, 4, 16):
        shards = [Shard(rank, world).take(items) for rank in range(world)]
        assert sorted(x for s in shards for x in s) == items
        for rank, taken in enumerate(shards):
            assert taken == sorted(taken) and all(Shard(0, world).owner(i) == rank for i in taken)
    assert Shard(1, 3).take(items) == [1, 4, 7, 10]


def test_the_place_comes_from_torchruns_variables():
    assert Shard.from_env({}) == Shard(0, 1, 0, 1)
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    shard = Shard.from_env(env)
    assert shard == Shard(3, 4, 1, 2) and not shard.main and shard.cpu_threads() >= 1
    with pytest.raises(UsageError, match="RANK=4 of WORLD_SIZE=4"):
        Shard.from_env({**env, "RANK": "4"})
    with pytest.raises(UsageError, match="whole numbers"):
        Shard.from_env({"WORLD_SIZE": "two"})


def test_parts_are_found_for_any_world_size_but_not_their_state_or_status(tmp_path):
    out = tmp_path / "meet [final].csv"  # glob's brackets in the name are taken literally
    for rank, world in ((0, 2), (1, 2), (2, 3)):
        write_part(out, rank, world, [])
        status_path(out, rank, world).write_text("{}")
    (tmp_path / "meet [final].csv.part-x-of-2").write_text("")
    (tmp_path / "other.csv.part-0-of-2").write_text("")
    assert part_path(out, 1, 2).name == "meet [final].csv.part-1-of-2"
    assert sorted(p.name for p in find_parts(out)) == [f"meet [final].csv.part-{r}-of-{w}" for r, w in
                                                       ((0, 2), (1, 2), (2, 3))]


def test_merge_puts_every_ranks_rows_in_input_order_and_removes_the_parts(tmp_path):
    videos = files(tmp_path / "in", 7)
    out = tmp_path / "out.csv"
    for rank in range(3):  # each rank scored its inputs rank, rank + 3, ...
        write_part(out, rank, 3, [result(v, score=i) for i, v in enumerate(videos) if i % 3 == rank])
    assert writers.merge_parts(out, SETTINGS, [writers.row_key(v) for v in videos]) == 3
    assert [r["video"] for r in read_rows(out)] == videos
    assert [float(r["final_score"]) for r in read_rows(out)] == list(range(7))
    assert find_parts(out) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "in", "out.csv", "out.csv" + writers.STATE_SUFFIX]
    again = writers.ResumableCsv(out, SETTINGS)
    assert all(again.done(v) is not None for v in videos)  # the state came along: a rerun skips them all
    assert again.done(videos[2]).probabilities == {"position": 0.9}
    again.close()
    assert writers.merge_parts(out, SETTINGS, []) == 0  # nothing to merge: the CSV is left alone


def test_merge_keeps_rows_of_other_inputs_in_place_and_replaces_rescored_ones(tmp_path):
    videos = files(tmp_path / "in", 4)
    out = tmp_path / "out.csv"
    old = writers.ResumableCsv(out, SETTINGS)
    for v in ("elsewhere.mp4", videos[3], videos[1]):  # an earlier run, another order, another input
        old.write(result(v, error="offline") if v == videos[1] else result(v, score=1.0))
    old.close()
    write_part(out, 0, 2, [result(videos[0], 10), result(videos[2], 12)])
    write_part(out, 1, 2, [result(videos[1], 11)])  # videos[3] was resumed by rank 1: no row in its part
    writers.merge_parts(out, SETTINGS, [writers.row_key(v) for v in videos])
    got = [(r["video"], r["final_score"], r["error"]) for r in read_rows(out)]
    assert got == [("elsewhere.mp4", "1.0", ""), (videos[0], "10.0", ""), (videos[1], "11.0", ""),
                   (videos[2], "12.0", ""), (videos[3], "1.0", "")]


def test_a_killed_run_of_another_world_size_resumes(tmp_path):
    """Three ranks were killed mid-run: rank 2 mid-row. Merged under two ranks, the finished rows count
    as done, the cut one does not, and the part of the same input written later wins."""
    videos = files(tmp_path / "in", 6)
    out = tmp_path / "out.csv"
    write_part(out, 0, 3, [result(videos[0], 1), result(videos[3], 1)])
    write_part(out, 1, 3, [result(videos[1], error="disk was away")])
    write_part(out, 2, 3, [result(videos[2], 3), result(videos[5], 3)])
    cut = part_path(out, 2, 3)
    cut.write_bytes(cut.read_bytes()[:-7])  # the last row lost its end
    time.sleep(0.01)
    write_part(out, 1, 2, [result(videos[1], 2)])  # a later run of two ranks rescored it, then died too
    writers.merge_parts(out, SETTINGS, [writers.row_key(v) for v in videos])
    merged = writers.ResumableCsv(out, SETTINGS, readonly=True)
    assert [bool(merged.done(v)) for v in videos] == [True, True, True, True, False, False]
    assert merged.done(videos[1]).final_score == 2
    assert [r["video"] for r in read_rows(out)] == videos[:4]


def test_a_waiter_names_the_rank_that_failed_or_went_silent(tmp_path):
    out = tmp_path / "out.csv"
    rank0, rank1 = (Beacon(out, Shard(r, 2), "job", timeout=0.5, beat_s=0.05) for r in (0, 1))
    status_path(out, 1, 2).write_text(json.dumps({"token": "old", "state": "done"}))  # a killed run's
    with pytest.raises(RankError, match=r"rank 1 of 2 stopped answering: it never started for 0 s"):
        rank0.wait([1])
    rank1.start()
    threading.Timer(0.2, rank1.set, args=("done",)).start()
    rank0.wait([1])  # beats, then done
    rank1.set("failed", error="rank 1 of 2: cannot write out.csv.part-1-of-2")
    with pytest.raises(RankError, match="rank 1 of 2 failed: rank 1 of 2: cannot write"):
        rank0.wait([1], "merged")
    rank1.set("working")
    rank1.stop()  # its heartbeat stops: the waiter gives up after `timeout`
    with pytest.raises(RankError, match="rank 1 of 2 stopped answering: no heartbeat for 0 s"):
        rank0.wait([1])
    rank0.remove([0, 1])
    assert not status_path(out, 1, 2).exists()


def test_torchrun_needs_a_csv_and_says_so_before_loading_weights(tmp_path, monkeypatch):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(UsageError, match=r"under torchrun \(WORLD_SIZE=2\) give --csv FILE or -o FILE.csv"):
        ScoreJob([video], weights=tmp_path / "missing.pt")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def meet(tmp_path_factory):
    """Five tiny videos of different lengths (so their scores differ) and a missing one."""
    folder = tmp_path_factory.mktemp("meet")
    for i, n in enumerate((34, 40, 36, 44, 38)):
        make_video(folder / f"d{i}.mp4", n)
    return folder


def test_a_plain_run_folds_in_the_parts_a_killed_torchrun_job_left(tmp_path, ckpt, meet):
    torch.set_num_threads(1)
    out = tmp_path / "out.csv"
    job = ScoreJob([meet], weights=ckpt, device="cpu", csv_file=out)
    videos = [v for v, _ in job.inputs]
    planted = result(videos[3], score=12.34)  # what "rank 1 of 3" stored before it was killed
    write_part(out, 1, 3, [planted], settings=job.scorer.settings())
    summary = job.run(None)
    assert (summary.total, summary.scored, summary.resumed, summary.failed) == (5, 5, 1, [])
    got = read_rows(out)
    assert [r["video"] for r in got] == videos and got[3]["final_score"] == "12.34"
    assert find_parts(out) == []


def test_torchrun_with_two_cpu_processes_equals_one_process(tmp_path, ckpt, meet):
    torch.set_num_threads(1)
    single = tmp_path / "single.csv"
    inputs = [str(meet), str(tmp_path / "missing.mp4")]  # a failed input is a row too
    job = ScoreJob(inputs, weights=ckpt, device="cpu", csv_file=single)
    job.run(None)
    out = tmp_path / "out.csv"
    # An earlier run of three processes was killed after rank 2 stored one video: resumed, not rescored.
    stored = writers.ResumableCsv(single, readonly=True).stored(meet / "d2.mp4")
    write_part(out, 2, 3, [stored], settings=job.scorer.settings())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "aqa_cli", "score",
           *inputs, "--csv", str(out), "--weights", str(ckpt), "--device", "cpu", "-f", "csv"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AQA_RANK_TIMEOUT": "60"}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 1, run.stderr  # 1: the missing file failed, as in one process
    assert "Scored 5/6 (1 already in" in run.stderr
    assert run.stderr.count(f"failed: {inputs[1]}: file not found") == 1, run.stderr  # shown once, by rank 0
    assert out.read_text() == single.read_text(), run.stderr
    data = list(csv.reader(io.StringIO(run.stdout)))  # rank 0's data alone, in input order
    assert data == list(csv.reader(io.StringIO(single.read_text()))), run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["single.csv", "single.csv" + writers.STATE_SUFFIX, "out.csv", "out.csv" + writers.STATE_SUFFIX])
    again = ScoreJob(inputs, weights=ckpt, device="cpu", csv_file=out).run(None)  # the state came along
    assert (again.scored, again.resumed, len(again.failed)) == (5, 5, 1)


def test_torchrun_all_dives_equals_one_process_and_resumes(tmp_path, ckpt):
    """--all-dives under torchrun: each rank writes every dive of its videos; the merged CSV holds them in
    input and dive order, as one process writes them, and a rerun takes them all from it."""
    from aqa_cli.datasets.syndive import session as sessions

    torch.set_num_threads(1)
    folder = tmp_path / "sessions"
    folder.mkdir()
    for i in range(3):
        sessions.write_session(sessions.plan_session(0, i, dives=(1, 2), size=(128, 96), fps=10.0),
                               folder / f"s{i}.mp4")
    single = tmp_path / "single.csv"
    ScoreJob([folder], weights=ckpt, device="cpu", csv_file=single, all_dives=True).run(None)
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "aqa_cli", "score",
           str(folder), "--all-dives", "--csv", str(out), "--weights", str(ckpt), "--device", "cpu", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AQA_RANK_TIMEOUT": "60"}
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 0, run.stderr
    rows = read_rows(out)
    assert out.read_text() == single.read_text(), run.stderr
    assert len(rows) > 3 and [r["video"] for r in rows] == sorted(r["video"] for r in rows)  # several dives a video
    again = ScoreJob([folder], weights=ckpt, device="cpu", csv_file=out, all_dives=True).run(None)
    assert again.resumed == again.scored == len(rows)
