"""Scoring: weights → a `Scorer`; a video → a `ScoreResult`; many videos → results in input order.

    video --video.read_even(n = clips × clip_len, size = resize)--> uint8 (n, H, W, 3)
          --transforms.clips_from_frames(crop, mean, std)--> float (N, 3, clip_len, crop, crop)
          --model (one video per forward: its N clips are the batch)--> score, execution, 5 class
            distributions, commentary ids --> ScoreResult

Every preprocessing value comes from the checkpoint's `Preprocess`, never from constants here.

**Scores.** For a model with execution and dive heads the final score follows the rules, DD × execution,
whenever the DD can be known: the DD the coach gives (`dd=`), else the expected table DD of the dive
at the height (`dive.expected_difficulty`: the World Aquatics DDs weighted by the five heads'
probabilities), where the height is given (`height=`) or the checkpoint was trained at one height.
Otherwise `final_score` is the model's score head (what it was trained to predict: it needs no
height) and `difficulty` the table DD of the predicted dive number at the checkpoint's most common
height (`data.height`, or the most common key of `data.heights`, a {height: count} dict; else "3m").
On SynDive the expected DD × execution ranked the scores better than the score head (README).

**Batches.** `score_videos` decodes the next videos on a thread pool while the model works on the
current one (PyAV and torch both release the GIL), and yields exactly one result per input in input
order; an input that cannot be read gives a result whose `error` holds a one-line reason.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aqa_cli import rules
from aqa_cli.checkpoint import Checkpoint
from aqa_cli.errors import AqaError, UsageError

# The public record: JSON keys = CSV columns, in this order (see writers.py for the value formats).
FIELDS = ("video", "final_score", "execution", "difficulty", "dive_number", "description", "position",
          "armstand", "rotation_type", "ss_no", "tw_no", "commentary", "weights", "error")
DEFAULT_HEIGHT = "3m"
DD_RANGE = (0.1, 5.0)  # what --dd accepts; the World Aquatics table spans 1.2-4.8
MAX_CLIPS = 64
SYNTHETIC_NOTE = "demo weights trained on SynDive synthetic renderings: not calibrated for real footage"


@dataclass
class ScoreResult:
    """One scored video. The fields in `FIELDS` are the stable output record; `probabilities` and
    `timings` are kept for the one-video panel and `-v` and are never written to JSON or CSV.

    position / rotation_type are class names ("pike", "forward"); armstand a bool; ss_no / tw_no
    counts of half somersaults / half twists. Everything but `video` and `weights` is None when
    `error` is set (or when the model has no such head).
    """

    video: str
    final_score: float | None = None
    execution: float | None = None
    difficulty: float | None = None
    dive_number: str | None = None
    description: str | None = None
    position: str | None = None
    armstand: bool | None = None
    rotation_type: str | None = None
    ss_no: int | None = None
    tw_no: int | None = None
    commentary: str | None = None
    weights: str | None = None
    error: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)  # head → probability of its prediction
    dd_from: str = ""  # where `difficulty` came from: "given", "expected" or "table" (see the module docstring)
    timings: dict[str, float] = field(default_factory=dict)  # stage → seconds (decode, model)

    def record(self) -> dict[str, Any]:
        """The public fields only, in `FIELDS` order."""
        return {name: getattr(self, name) for name in FIELDS}


class Scorer:
    """A loaded model with everything needed to score videos: preprocessing, vocabulary, labels."""

    def __init__(self, checkpoint: Checkpoint, path: Path, device: str = "auto", name: str | None = None):
        from aqa_cli.device import resolve_device
        from aqa_cli.rules import LABEL_NAMES
        from aqa_cli.text import Vocabulary

        self.device = resolve_device(device)
        self.path = path
        self.name = name or path.stem
        self.preprocess = checkpoint.preprocess
        self.data = checkpoint.data
        self.metrics = checkpoint.metrics
        self.synthetic = checkpoint.synthetic
        self.label_names = {**LABEL_NAMES, **checkpoint.label_maps}
        self.vocab = Vocabulary(checkpoint.vocab) if checkpoint.vocab else None
        self.model = checkpoint.build_model().to(self.device)
        self.captions = bool(self.vocab) and getattr(self.model, "captioner", None) is not None
        self.default_height = default_height(self.data)
        self.one_height = one_height(self.data)
        self._sha256: str | None = None

    def settings(self, height: str | None = None, dd: float | None = None, clips: int | None = None) -> dict:
        """What a result depends on besides the video: the weights' bytes and the options (resume keys)."""
        if self._sha256 is None:
            from aqa_cli.weights import file_sha256

            self._sha256 = file_sha256(self.path)
        return {"weights_sha256": self._sha256, **dict(zip(("height", "dd", "clips"), check_options(height, dd, clips)))}

    def prepare(self, path: str | Path, clips: int | None = None):
        """Decode and transform one video: float (N, 3, clip_len, crop, crop) on the CPU (thread-safe)."""
        from aqa_cli.transforms import clips_from_frames
        from aqa_cli.video import read_even

        p = self.preprocess
        n_clips = clips or p.clips
        frames = read_even(path, n=n_clips * p.clip_len, size=tuple(p.resize), clip_len=p.clip_len)
        return clips_from_frames(frames, n_clips, p.clip_len, p.crop, p.mean, p.std)

    def predict(self, video: str, clips, *, height: str | None = None, dd: float | None = None) -> ScoreResult:
        """Run the model on prepared clips (N, 3, T, H, W) and turn its outputs into a ScoreResult."""
        import torch

        x = clips.unsqueeze(0).to(self.device)
        # bf16 autocast only on CUDA: on CPUs without bf16 units it is ~100x slower than fp32.
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        with torch.inference_mode(), autocast:
            out = self.model.predict(x)  # heads and caption from one backbone pass
        ids = out["caption"][0].tolist() if self.captions else None
        result = ScoreResult(video=video, weights=self.name)
        score = float(out["score"][0])
        execution = float(out["execution"][0]) if "execution" in out else None
        labels, log_probs = {}, {}
        for head, logits in (out.get("logits") or {}).items():
            log_prob = torch.log_softmax(logits[0].float(), dim=0)
            log_probs[head] = log_prob.cpu().numpy()
            prob = log_prob.exp()
            k = int(prob.argmax())
            labels[head] = k
            names = self.label_names.get(head)
            result.probabilities[head] = float(prob[k])
            if head in ("position", "rotation_type"):
                setattr(result, head, names[k] if names and k < len(names) else str(k))
            elif head == "armstand":
                result.armstand = bool(k)
            elif head in ("ss_no", "tw_no"):
                setattr(result, head, k)
        known_height = height or self.one_height  # a height the rules' DD can rely on
        table_height = known_height or self.default_height
        result.dive_number = rules.number_from_classes(labels, table_height)
        result.description = rules.describe(result.dive_number) if result.dive_number else None
        table_dd = rules.table_difficulty(result.dive_number, table_height)
        if execution is None and table_dd:
            execution = score / table_dd  # a model without an execution head: back it out of the table DD
        verdict = rules.predicted_final(score, execution, log_probs or None, known_height, dd)
        result.final_score, result.execution = verdict.final_score, verdict.execution
        result.difficulty, result.dd_from = verdict.difficulty, verdict.dd_from
        if not verdict.dd_from and table_dd is not None:  # the score head's final, shown beside the table DD
            result.difficulty, result.dd_from = table_dd, "table"
        if ids is not None:
            from aqa_cli.text import detokenize

            result.commentary = detokenize(self.vocab.decode(ids))
        return result

    def score(self, path: str | Path, *, height: str | None = None, dd: float | None = None,
              clips: int | None = None) -> ScoreResult:
        """Score one video; raises AqaError (e.g. VideoDecodeError) when it cannot be read, UsageError for
        options `check_options` refuses."""
        height, dd, clips = check_options(height, dd, clips)
        t0 = time.perf_counter()
        prepared = self.prepare(path, clips)
        t1 = time.perf_counter()
        result = self.predict(str(path), prepared, height=height, dd=dd)
        result.timings = {"decode": t1 - t0, "model": time.perf_counter() - t1}
        return result


def check_options(height: str | None = None, dd: float | None = None,
                  clips: int | None = None) -> tuple[str | None, float | None, int | None]:
    """The scoring options as `predict` takes them ("10" → "10m"), or UsageError naming the bad one."""
    import math

    from aqa_cli.rules import normalize_height

    if height is not None:
        try:
            height = normalize_height(height)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if dd is not None:
        lo, hi = DD_RANGE
        if isinstance(dd, bool) or not isinstance(dd, (int, float)) or not (math.isfinite(dd) and lo <= dd <= hi):
            raise UsageError(f"DD {dd!r}: expected a number from {lo} to {hi}, the DD on the scoresheet")
        dd = float(dd)
    if clips is not None and (isinstance(clips, bool) or not isinstance(clips, int) or not 1 <= clips <= MAX_CLIPS):
        raise UsageError(f"clips {clips!r}: expected a whole number from 1 to {MAX_CLIPS}")
    return height, dd, clips


def one_height(data: dict[str, Any]) -> str | None:
    """The height of a checkpoint trained at one height only (`data.height`, or the only key of
    `data.heights`), else None."""
    from aqa_cli.rules import normalize_height

    heights = data.get("heights")
    height = data.get("height") or (next(iter(heights)) if isinstance(heights, dict) and len(heights) == 1 else None)
    try:
        return normalize_height(height) if height else None
    except ValueError:
        return None


def default_height(data: dict[str, Any]) -> str:
    """The DD table height a checkpoint's training data suggests (see the module docstring)."""
    from aqa_cli.rules import normalize_height

    height = data.get("height")
    heights = data.get("heights")
    if not height and isinstance(heights, dict) and heights:
        height = max(heights, key=lambda h: heights[h])
    try:
        return normalize_height(height) if height else DEFAULT_HEIGHT
    except ValueError:
        return DEFAULT_HEIGHT


def load_model(weights: str | Path | None = None, device: str = "auto") -> Scorer:
    """Find (`weights.find_weights`), verify (manifest sha256 and size) and load weights into a Scorer."""
    from aqa_cli.weights import find_weights, verify_file

    path = find_weights(weights)
    verify_file(path)
    checkpoint = Checkpoint.load(path)
    explicit = weights is not None and Path(str(weights)).expanduser().is_file()
    return Scorer(checkpoint, path, device=device, name=str(weights) if explicit else path.stem)


def score_video(path: str | Path, model: Scorer | None = None, *, weights: str | Path | None = None,
                device: str = "auto", height: str | None = None, dd: float | None = None,
                clips: int | None = None) -> ScoreResult:
    """Score one video (loading `weights` when no `model` is given). Raises AqaError on a bad video."""
    scorer = model or load_model(weights, device)
    return scorer.score(path, height=height, dd=dd, clips=clips)


def score_videos(paths: Iterable[str | Path], model: Scorer | None = None, *, weights: str | Path | None = None,
                 device: str = "auto", height: str | None = None, dd: float | None = None,
                 clips: int | None = None, workers: int = 2, prefetch: int = 2,
                 fail_fast: bool = False) -> Iterator[ScoreResult]:
    """Score many videos, decoding up to `workers + prefetch` ahead of the model; one result per input,
    in input order. Two decoder threads by default: on a quiet 2-core machine a batch of six 720p videos
    took 0.68 x (decode-only + model-only) time with two, 0.92 x with one (benchmarks/bench_score.py).
    A bad input gives a result with `error` set; with `fail_fast` the iteration stops after the first one.
    `paths` may be one path (str or Path) too. Options `check_options` refuses raise UsageError at once."""
    height, dd, clips = check_options(height, dd, clips)
    scorer = model or load_model(weights, device)
    todo = iter([paths] if isinstance(paths, (str, Path)) else paths)
    pending: deque[tuple[str, Future]] = deque()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="aqa-decode")

    def submit() -> None:
        for path in todo:
            pending.append((str(path), pool.submit(_timed_prepare, scorer, path, clips)))
            return

    try:
        for _ in range(max(1, workers) + max(0, prefetch)):
            submit()
        while pending:
            video, future = pending.popleft()
            submit()
            try:
                prepared, decode_s = future.result()
                t0 = time.perf_counter()
                result = scorer.predict(video, prepared, height=height, dd=dd)
                result.timings = {"decode": decode_s, "model": time.perf_counter() - t0}
            except AqaError as exc:
                result = ScoreResult(video=video, weights=scorer.name, error=one_line(exc, video))
            yield result
            if fail_fast and result.error:
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def score_inputs(inputs: list[tuple[str, str | None]], scorer: Scorer, *, done=None, height: str | None = None,
                 dd: float | None = None, clips: int | None = None, fail_fast: bool = False,
                 workers: int = 2) -> Iterator[tuple[ScoreResult, bool]]:
    """The CLI's batch: `inputs` from `expand_inputs`; yields (result, resumed) in input order.

    An input with an expansion error becomes an error result; `done(path)` (e.g.
    `writers.ResumableCsv.done`) returns a stored result for inputs scored by an earlier run, which is
    yielded with resumed=True instead of scoring the video again.
    """
    stored = {}
    todo = []
    for video, problem in inputs:
        if problem is None:
            previous = done(video) if done else None
            if previous is not None:
                previous.video = video
                stored[video] = previous
            else:
                todo.append(video)
    fresh = score_videos(todo, scorer, height=height, dd=dd, clips=clips, fail_fast=fail_fast, workers=workers)
    try:
        for video, problem in inputs:
            if problem is not None:
                result, resumed = ScoreResult(video=video, weights=scorer.name, error=problem), False
            elif video in stored:
                result, resumed = stored[video], True
            else:
                result, resumed = next(fresh, None), False
                if result is None:  # score_videos stopped early (fail_fast)
                    return
            yield result, resumed
            if fail_fast and result.error:
                return
    finally:
        fresh.close()


VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".3gp", ".ts", ".mts", ".m2ts")


def expand_inputs(paths: Iterable[str | Path], recursive: bool = False) -> list[tuple[str, str | None]]:
    """Command-line inputs → [(path, problem)] in order, without duplicates.

    A file is taken as given (whatever its suffix); a folder gives its videos (suffixes in
    VIDEO_SUFFIXES, case-insensitive), sorted, searching subfolders only with `recursive`; a pattern
    with * ? [ is expanded like the shell would, keeping the videos and folders it matches (so "meet/*"
    skips the CSV written there). A missing path, an empty folder or a pattern that matches no video
    becomes (path, one-line problem) so that it is reported as a failed input. One file named two ways
    (a.mp4, ./a.mp4) is scored once, under the first name.
    Raises UsageError when no input yields a video at all.
    """
    import glob

    out: dict[str, str | None] = {}
    for raw in paths:
        text = str(raw)
        if any(c in text for c in "*?[") and not Path(text).exists():
            matches = [m for m in sorted(glob.glob(text, recursive=recursive))
                       if Path(m).suffix.lower() in VIDEO_SUFFIXES or Path(m).is_dir()]
            if not matches:
                out.setdefault(text, f"no videos match this pattern ({'/'.join(VIDEO_SUFFIXES[:4])}/...)")
            for m in matches:
                _add_path(out, Path(m), recursive)
            continue
        path = Path(text)
        if path.is_dir():
            before = len(out)
            _add_path(out, path, recursive)
            if len(out) == before:
                where = "or its subfolders " if recursive else ""
                hint = "" if recursive else "; add --recursive to search subfolders"
                out.setdefault(text, f"no videos in this folder {where}({'/'.join(VIDEO_SUFFIXES[:4])}/...){hint}")
        elif path.exists():
            out.setdefault(text, None)
        else:
            out.setdefault(text, "file not found")
    if not any(problem is None for problem in out.values()):
        detail = "; ".join(f"{p}: {why}" for p, why in out.items()) or "no paths given"
        raise UsageError(f"no videos found ({detail[:300]})", hint="aqa score dive.mp4 | aqa score meet/ --recursive")
    seen: set[str] = set()
    unique = []
    for path, problem in out.items():
        key = os.path.abspath(path) if problem is None else path
        if key not in seen:
            seen.add(key)
            unique.append((path, problem))
    return unique


def _add_path(out: dict[str, str | None], path: Path, recursive: bool) -> None:
    if not path.is_dir():
        out.setdefault(str(path), None)
        return
    found = path.rglob("*") if recursive else path.iterdir()
    for p in sorted(found, key=lambda p: (str(p).lower(), str(p))):
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file():
            out.setdefault(str(p), None)


def _timed_prepare(scorer: Scorer, path: str | Path, clips: int | None):
    t0 = time.perf_counter()
    try:
        prepared = scorer.prepare(path, clips)
    except (OSError, ValueError) as exc:
        # Unreadable files (permissions, a folder) and too-short videos become the row's error too.
        raise AqaError(f"{path}: {type(exc).__name__}: {exc}") from None
    return prepared, time.perf_counter() - t0


def one_line(exc: BaseException, path: str = "") -> str:
    """An exception as one line: the first line of its message without a leading "PATH: " (the row
    already names the video), at most 300 characters."""
    text = str(exc).strip()
    if path and text.startswith(f"{path}: "):
        text = text[len(path) + 2:]  # before splitting lines: a file name may hold a newline
    lines = text.splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]

