"""`aqa score` and the scoring API: formats, inputs, bad files, exit codes, DD rules, resume after a kill.

The checkpoint is a tiny random-init model (tests/checkpoints.py): predictions are meaningless, so
the tests check plumbing, formats and rules, never accuracy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from checkpoints import make_checkpoint
from media import make_audio_only, make_empty, make_text, make_truncated, make_video
from typer.testing import CliRunner

from aqa_cli import batch, cli, scoring, writers
from aqa_cli.rules import difficulty
from aqa_cli.errors import AqaError, UsageError, VideoDecodeError
from aqa_cli.batch import score_videos
from aqa_cli.inputs import expand_inputs
from aqa_cli.scoring import FIELDS, ScoreResult, load_model, score_video

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return str(make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "dive.mp4", 40)


@pytest.fixture(scope="module")
def scorer(ckpt):
    torch.set_num_threads(1)
    return load_model(ckpt, device="cpu")


@pytest.fixture
def meet(tmp_path, clip):
    """meet/ with b.mp4, A.MOV, notes.txt and sub/c.mkv (copies of one small video)."""
    root = tmp_path / "meet"
    (root / "sub").mkdir(parents=True)
    for name in ("b.mp4", "A.MOV", "sub/c.mkv"):
        shutil.copy(clip, root / name)
    (root / "notes.txt").write_text("not a video")
    return root


def score(*args, ckpt=None):
    """Run `aqa score` in-process; AqaErrors map to their exit code as cli.main() does."""
    res = runner.invoke(cli.app, ["score", *args, *(["--weights", ckpt] if ckpt else [])])
    code = res.exception.exit_code if isinstance(res.exception, AqaError) else res.exit_code
    return code, res.stdout, res.stderr, res


def test_json_has_exact_fields_and_one_record_per_input(meet, ckpt):
    code, out, err, _ = score(str(meet), "-f", "json", ckpt=ckpt)
    assert code == 0, err
    rows = json.loads(out)
    assert [list(r) for r in rows] == [list(FIELDS)] * 2
    assert [r["video"] for r in rows] == [str(meet / "A.MOV"), str(meet / "b.mp4")]  # sorted, any case
    r = rows[0]
    assert isinstance(r["final_score"], float) and isinstance(r["execution"], float)
    assert r["position"] in ("free", "pike", "tuck") and isinstance(r["armstand"], bool)
    assert r["rotation_type"] in ("back", "forward", "inward", "reverse")
    assert 0 <= r["ss_no"] < 10 and 0 <= r["tw_no"] < 8 and r["error"] is None
    assert r["weights"] == ckpt and r["commentary"].endswith(".")
    assert rows[0] | {"video": ""} == rows[1] | {"video": ""}  # same content, same scores
    assert "Scored 2/2" in err and "synthetic renderings: not calibrated for real footage" in err


def test_csv_and_table_formats(meet, ckpt):
    code, out, _, _ = score(str(meet), "-f", "csv", ckpt=ckpt)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert tuple(rows[0]) == FIELDS and len(rows) == 3
    code, out, _, _ = score(str(meet), ckpt=ckpt)
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["video", "final_score", "execution"] and len(lines) == 3


def test_recursion_and_globs(meet, ckpt):
    _, out, _, _ = score(str(meet), "--recursive", "-f", "json", ckpt=ckpt)
    assert [r["video"] for r in json.loads(out)] == [str(meet / n) for n in ("A.MOV", "b.mp4", "sub/c.mkv")]
    _, out, _, _ = score(str(meet / "*.mp4"), str(meet / "sub" / "*"), "-f", "json", ckpt=ckpt)
    assert [r["video"] for r in json.loads(out)] == [str(meet / "b.mp4"), str(meet / "sub" / "c.mkv")]


def test_patterns_keep_videos_and_one_file_is_scored_once(meet, ckpt):
    (meet / "scores.csv").write_text("")  # what a previous run wrote next to the videos
    _, out, _, _ = score(str(meet / "*"), str(meet / "." / "b.mp4"), "-f", "json", ckpt=ckpt)
    assert [r["video"] for r in json.loads(out)] == [str(meet / n) for n in ("A.MOV", "b.mp4", "sub/c.mkv")]
    code, _, _, res = score(str(meet / "*.txt"), ckpt=ckpt)
    assert code == 2 and "no videos match this pattern" in str(res.exception)


def test_outputs_never_overwrite_inputs(tmp_path, clip, ckpt):
    video = tmp_path / "a.mp4"
    shutil.copy(clip, video)
    before = video.read_bytes()
    for args, why in ((["-o", str(video)], "is a video's name"),          # `-o *.mp4` expanded by the shell
                      (["-o", str(tmp_path / "new.mp4")], "is a video's name"),
                      (["--csv", str(video)], "is a video's name"),
                      (["-o", str(tmp_path)], "is a folder"),
                      (["-o", str(tmp_path / "s.csv.aqa-resume.jsonl")], "state file"),
                      (["-f", "json", "-o", str(tmp_path / "s.csv"), "--csv", str(tmp_path / "s.csv")], "same file")):
        code, _, _, res = score(str(video), *args, ckpt=ckpt)
        assert code == 2 and why in str(res.exception), (args, res.exception)
    assert video.read_bytes() == before and not (tmp_path / "new.mp4").exists()
    code, _, _, _ = score(str(video), "-q", "-o", str(tmp_path / "new" / "r.json"), ckpt=ckpt)
    assert code == 0 and len(json.loads((tmp_path / "new" / "r.json").read_text())) == 1


def test_the_api_checks_options_as_the_cli_does(scorer, clip):
    for options in ({"height": "7m"}, {"dd": -1}, {"dd": float("nan")}, {"dd": "3.2.1"}, {"clips": 0}, {"clips": -1}):
        with pytest.raises(UsageError):
            score_video(clip, scorer, **options)
        with pytest.raises(UsageError):
            next(score_videos([clip], scorer, **options))
    assert score_video(clip, scorer, height="10", dd=3).difficulty == 3.0
    assert score_video(clip, scorer, height="10 M", dd="3,2").difficulty == 3.2  # as the command line reads them
    assert [r.video for r in score_videos(str(clip), scorer)] == [str(clip)]  # one path, not its characters


def test_an_error_line_keeps_its_reason_when_the_name_holds_a_newline():
    path = "odd/bad\nname.mp4"
    assert batch.one_line(AqaError(f"{path}: not a media file\nmore"), path) == "not a media file"


def test_no_videos_is_a_usage_error(tmp_path, ckpt):
    (tmp_path / "empty").mkdir()
    code, out, _, res = score(str(tmp_path / "empty"), ckpt=ckpt)
    assert code == 2 and out == "" and "no videos found" in str(res.exception)
    code, *_ = score(str(tmp_path / "empty" / "*.mp4"), ckpt=ckpt)
    assert code == 2


def test_bad_inputs_each_give_a_one_line_error_row(tmp_path, clip, ckpt):
    bad = tmp_path / "bad"
    bad.mkdir()
    inputs = [
        make_text(bad / "text.mp4"),
        make_truncated(bad / "truncated.mp4", 50, keep=0.3, index_first=False),
        make_audio_only(bad / "audio.mp4", 0.3),
        make_empty(bad / "empty.mp4"),
        tmp_path / "no-videos",  # a folder with no videos, next to inputs that have some
        tmp_path / "missing.mp4",
    ]
    (tmp_path / "no-videos").mkdir()
    code, out, err, _ = score(*map(str, inputs), str(clip), "-f", "json", ckpt=ckpt)
    rows = json.loads(out)
    assert code == 1
    assert [r["video"] for r in rows] == [str(p) for p in inputs] + [str(clip)]
    for r in rows[:-1]:
        assert r["error"] and "\n" not in r["error"] and r["final_score"] is None, r
    assert rows[-1]["error"] is None and rows[-1]["final_score"] is not None
    assert "Traceback" not in err and "Scored 1/7; 6 failed" in err
    assert "no video stream" in rows[2]["error"].lower() or "audio" in rows[2]["error"].lower()
    assert rows[4]["error"].startswith("no videos in this folder")
    assert rows[5]["error"] == "file not found"


def test_unreadable_file_gives_an_error_row(tmp_path, clip, ckpt, monkeypatch):
    locked = tmp_path / "locked.mp4"
    shutil.copy(clip, locked)
    if os.geteuid() == 0:
        # Root reads chmod-000 files, so simulate the OS refusing to open it instead.
        def refuse(path, *a, **k):
            raise PermissionError(13, "Permission denied", str(path))
        monkeypatch.setattr("aqa_cli.video.read_even", refuse)
    else:
        locked.chmod(0)
    code, out, err, _ = score(str(locked), "-f", "json", ckpt=ckpt)
    (row,) = json.loads(out)
    assert code == 1 and "Permission denied" in row["error"] and "Traceback" not in err


def test_fail_fast_stops_at_the_first_failure(tmp_path, clip, ckpt):
    text = make_text(tmp_path / "text.mp4")
    code, out, err, _ = score(str(text), str(clip), "--fail-fast", "-f", "json", ckpt=ckpt)
    assert code == 1 and [r["video"] for r in json.loads(out)] == [str(text)]
    assert "--fail-fast" in err and "1 not tried" in err


def test_weights_errors_exit_3_with_one_line(tmp_path, clip, monkeypatch, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    monkeypatch.setattr(sys, "argv", ["aqa", "score", str(clip), "--weights", str(bad)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    assert info.value.code == 3 and captured.out == ""
    assert captured.err.startswith("error: ") and "bad.pt" in captured.err and "Traceback" not in captured.err


def test_bad_device_is_a_usage_error(clip, ckpt):
    code, *_ = score(str(clip), "--device", "tpu", ckpt=ckpt)
    assert code == 2
    if not torch.cuda.is_available():
        code, _, _, res = score(str(clip), "--device", "cuda", ckpt=ckpt)
        assert code == 2 and "CUDA is not available" in str(res.exception)


def test_single_video_panel_goes_to_stderr_and_output_file(tmp_path, clip, ckpt):
    code, out, err, _ = score(str(clip), ckpt=ckpt)
    assert code == 0 and "Final score" in err and "p=" in err and "Final score" not in out
    assert out.strip().splitlines()[1].startswith(str(clip))
    code, out, err, _ = score(str(clip), "-q", "-o", str(tmp_path / "r.json"), ckpt=ckpt)
    assert code == 0 and out == "" and err == ""
    assert json.loads((tmp_path / "r.json").read_text())[0]["video"] == str(clip)


def test_the_panel_names_the_heights_whose_table_lists_a_dive_missing_at_this_one():
    import io
    import types

    from rich.console import Console

    from aqa_cli.cli import views
    from aqa_cli.scoring import ScoreResult

    weights = types.SimpleNamespace(name="w", synthetic=False)
    console = Console(file=io.StringIO(), width=200)
    views.print_panel(console, ScoreResult("a.mp4", dive_number="646C"), weights, "3m")  # an armstand: platform only
    assert "not in the 3m table; listed at 10m: give --height" in console.file.getvalue()
    console = Console(file=io.StringIO(), width=200)
    views.print_panel(console, ScoreResult("a.mp4", dive_number="109D"), weights, "3m")  # listed at no height
    assert "(not in the 3m table)" in console.file.getvalue()


class FixedModel:
    """Stands in for AQAModel.predict: always predicts dive 105B (forward 2½ somersaults pike),
    score 60, execution 25, and the caption ids [3, 4]; with `position=0` the free / straight class."""

    def __init__(self, position: int = 1):
        self.position = position

    def predict(self, x):
        def onehot(k, n):
            return torch.nn.functional.one_hot(torch.tensor([k]), n).float() * 10
        return {"score": torch.tensor([60.0]), "execution": torch.tensor([25.0]),
                "logits": {"position": onehot(self.position, 3), "armstand": onehot(0, 2), "rotation_type": onehot(1, 4),
                           "ss_no": onehot(5, 10), "tw_no": onehot(0, 8)},
                "caption": torch.tensor([[3, 4, 0]])}


def test_dd_from_table_at_height_or_given(scorer, clip, monkeypatch):
    monkeypatch.setattr(scorer, "model", FixedModel())
    r = score_video(clip, scorer)
    assert (r.dive_number, r.description) == ("105B", "Forward 2½ Somersaults Pike")
    assert r.difficulty == difficulty("105B", "3m") and r.final_score == 60.0 and r.execution == 25.0
    assert r.probabilities["position"] > 0.99
    assert r.dd_from == "table"  # trained at several heights and none given: the score head
    # a given height: the expected DD there (the heads are sure of 105B) x execution
    at1 = score_video(clip, scorer, height="1m")
    assert at1.dd_from == "expected" and at1.difficulty == pytest.approx(difficulty("105B", "1m"), abs=1e-3)
    assert at1.final_score == pytest.approx(at1.difficulty * 25.0)
    monkeypatch.setattr(scorer, "one_height", "10m")  # weights trained at one height: that one
    at10 = score_video(clip, scorer)
    assert at10.dd_from == "expected" and at10.difficulty == pytest.approx(difficulty("105B", "10m"), abs=1e-3)
    given = score_video(clip, scorer, dd=3.1)
    assert given.dd_from == "given" and given.difficulty == 3.1 and given.final_score == pytest.approx(3.1 * 25.0)
    assert given.raw_commentary == scorer.vocab.words[3].capitalize() + " " + scorer.vocab.words[4] + "."


def test_class_0_is_named_straight_where_the_table_lists_the_dive_only_so(scorer, clip, monkeypatch):
    monkeypatch.setattr(scorer, "model", FixedModel(position=0))
    r = score_video(clip, scorer)
    assert (r.dive_number, r.difficulty) == ("105A", difficulty("105A", "3m"))


def test_default_height_comes_from_the_checkpoint():
    assert scoring.default_height({"heights": {"10m": 5, "3m": 2}}) == "10m"
    assert scoring.default_height({"height": 1}) == "1m"
    assert scoring.default_height({}) == "3m"
    assert scoring.one_height({"heights": {"10m": 5, "3m": 2}}) is None
    assert scoring.one_height({"heights": {"10m": 5}}) == scoring.one_height({"height": 10}) == "10m"
    assert scoring.one_height({}) is None


def test_python_api_batch_keeps_order_and_errors(tmp_path, scorer, clip):
    text = make_text(tmp_path / "x.mp4")
    results = list(score_videos([clip, text, clip], scorer))
    assert [r.video for r in results] == [str(clip), str(text), str(clip)]
    assert [r.error is None for r in results] == [True, False, True]
    assert isinstance(results[0], ScoreResult) and results[0].timings["model"] > 0
    assert results[0].record() == results[2].record()
    with pytest.raises(VideoDecodeError):
        score_video(text, scorer)
    with pytest.raises(UsageError):
        expand_inputs([tmp_path / "nothing-here"])


def test_csv_resume_after_killing_the_process(tmp_path, clip, ckpt):
    videos = tmp_path / "many"
    videos.mkdir()
    n = 40
    for i in range(n):
        shutil.copy(clip, videos / f"d{i:02d}.mp4")
    out = tmp_path / "meet.csv"
    cmd = [sys.executable, "-m", "aqa_cli", "score", str(videos), "--csv", str(out), "--weights", ckpt,
           "-q", "--clips", "8", "-f", "json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 4:  # header + 3 rows
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    raw = out.read_text()
    first = raw.splitlines()
    assert 4 <= len(first) < n + 1, "the run was not interrupted mid-batch"

    rerun = [c for c in cmd if c != "-q"][:-2] + ["-f", "csv"]
    done = subprocess.run(rerun, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    final = out.read_text().splitlines()
    # complete rows: each is written whole and flushed, so only the last can be cut, and it is kept when
    # it still parses in full (as ResumableCsv decides)
    kept = len(first) - 1 - (not raw.endswith("\n") and not writers._complete(next(csv.reader([first[-1]]))))
    assert final[: kept + 1] == first[: kept + 1]  # rows from the killed run are kept as they were
    videos_in = [row.split(",")[0] for row in final[1:]]
    assert sorted(videos_in) == [str(videos / f"d{i:02d}.mp4") for i in range(n)]  # none lost, none twice
    assert list(csv.reader(io.StringIO(done.stdout)))[1:] == list(csv.reader(io.StringIO("\n".join(final[1:]))))
    assert f"Scored {n}/{n} ({kept} already in {out})" in done.stderr


def test_prediction_matches_forward_and_generate(scorer):
    """predict() runs the backbone once for heads and captioner: same numbers as forward + generate."""
    from aqa_cli.text import detokenize

    x = torch.randn(2, 3, 16, 32, 32, generator=torch.Generator().manual_seed(1))
    r = scorer.predict("v.mp4", x)
    with torch.inference_mode():
        out = scorer.model(x[None])
        ids = scorer.model.generate(x[None])[0].tolist()
    # Clipped to what the rules allow: a score is never negative, an execution at most 3 x 10.
    assert r.final_score == pytest.approx(max(float(out["score"][0]), 0.0), abs=1e-5)
    assert r.execution == pytest.approx(min(max(float(out["execution"][0]), 0.0), 30.0), abs=1e-5)
    assert r.ss_no == int(out["logits"]["ss_no"][0].argmax())
    assert r.raw_commentary == detokenize(scorer.vocab.decode(ids))


def test_weights_from_environment(clip, ckpt, monkeypatch):
    monkeypatch.setenv("AQA_WEIGHTS", ckpt)
    code, out, _, _ = score(str(clip), "-f", "json")
    assert code == 0 and json.loads(out)[0]["weights"] == "tiny"


def test_json_output_file_and_resumable_csv_together(tmp_path, clip, ckpt):
    """-o FILE.json with --csv FILE: the JSON goes to the file and the rows to the CSV."""
    code, out, err, _ = score(str(clip), "-q", "-o", str(tmp_path / "r.json"), "--csv", str(tmp_path / "m.csv"),
                              ckpt=ckpt)
    assert code == 0 and out == "", err
    (row,) = json.loads((tmp_path / "r.json").read_text())
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert row["video"] == rows[0]["video"] == str(clip) and len(rows) == 1


def test_score_job_counts_resumed_and_failed(tmp_path, clip, ckpt):
    from aqa_cli.batch import ScoreJob

    text = make_text(tmp_path / "text.mp4")
    seen = []
    job = ScoreJob([clip, text], weights=ckpt, device="cpu", csv_file=tmp_path / "m.csv")
    first = job.run(io.StringIO(), on_result=lambda r, resumed: seen.append((r.video, resumed)))
    assert (first.total, first.scored, first.resumed, [r.video for r in first.failed]) == (2, 1, 0, [str(text)])
    again = ScoreJob([clip, text], weights=ckpt, device="cpu", fmt="json", csv_file=tmp_path / "m.csv")
    stream = io.StringIO()
    second = again.run(stream, on_result=lambda r, resumed: seen.append((r.video, resumed)))
    assert (second.scored, second.resumed, len(second.failed), second.not_tried) == (1, 1, 1, 0)
    assert seen[2:] == [(str(clip), True), (str(text), False)]
    assert [r["video"] for r in json.loads(stream.getvalue())] == [str(clip), str(text)]
    third = again.run(io.StringIO(), dd=3.2)  # another DD: the stored row is not that score
    assert (third.scored, third.resumed) == (1, 0)


def _contradictions(commentary: str, number: str | None) -> list[str]:
    """What `commentary` says about the dive that dive `number` (the heads' reading) is not: a direction,
    a position, a twist or a somersault count of another dive. Written apart from scoring.one_story."""
    from aqa_cli.rules import SPOKEN_DIRECTIONS, parse_dive, spoken_halves

    text = commentary.lower().replace(".", " ")
    words = set(text.split())
    found = []
    if number is None:
        return sorted(words & {*SPOKEN_DIRECTIONS, "armstand", "tuck", "pike", "straight", "free", "twist", "twists"})
    dive = parse_dive(number)
    for word in words & set(SPOKEN_DIRECTIONS):
        if word != SPOKEN_DIRECTIONS[dive.rotation_type]:
            found.append(word)
    if ("armstand" in words) != dive.armstand:
        found.append("armstand")
    position = {"A": "straight", "B": "pike", "C": "tuck", "D": "free"}[number[-1]]
    found += [w for w in words & {"tuck", "pike", "straight", "free"} if w != position]
    if dive.tw_no == 0 and words & {"twist", "twists", "twisting"}:
        found.append("twist")
    if dive.tw_no and spoken_halves(dive.tw_no, "twist") not in text:
        found.append(f"not {spoken_halves(dive.tw_no, 'twist')}")
    if dive.ss_no > 1 and spoken_halves(dive.ss_no, "somersault") not in text:
        found.append(f"not {spoken_halves(dive.ss_no, 'somersault')}")
    return found


def test_the_bundled_models_commentary_never_contradicts_its_heads_on_the_examples():
    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.mp4"))
    assert len(examples) == 5
    scorer = load_model()
    raw_disagreed = 0
    for video in examples:
        result = score_video(video, scorer)
        assert result.commentary and result.dive_number
        assert _contradictions(result.commentary, result.dive_number) == [], (video, result.commentary)
        raw_disagreed += bool(_contradictions(result.raw_commentary, result.dive_number))
    assert raw_disagreed >= 1  # the captioner's own words do contradict the heads on these: the rule matters


def test_one_story_on_generated_captions_of_other_dives():
    """SynDive captions of one dive, shown beside heads that read another: the shown text says only
    what the heads say about the dive, and keeps the execution remarks that claim nothing else."""
    import numpy as np

    from aqa_cli.datasets.syndive.commentary import commentary
    from aqa_cli.rules import dd_entries
    from aqa_cli.scoring import one_story

    dives = sorted({e.dive for e in dd_entries() if e.height in ("3m", "10m")})
    rng = np.random.default_rng(0)
    kept = 0
    for i in range(300):
        said, read = rng.choice(dives, 2)
        faults = {"rotation_error_deg": rng.normal(0, 25), "height_loss": rng.uniform(0, 0.2),
                  "distance_m": rng.normal(0, 0.5), "splash_m": rng.uniform(0, 1), "loose": rng.uniform(0, 0.5),
                  "knee_bend_deg": rng.uniform(0, 30), "legs_apart_deg": rng.uniform(0, 20),
                  "twist_error_deg": rng.normal(0, 30)}
        words = commentary(np.random.default_rng(i), str(said), "3m", faults).split()
        for number in (str(read), None):
            shown = one_story(words, number, "3m" if i % 2 else None)
            assert _contradictions(shown, number) == [], (words, number, shown)
        kept += len(one_story(words, str(read), None).split(". ")) > 1
    assert kept > 50  # remarks about execution survive
