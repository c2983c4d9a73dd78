"""Batch scoring: many inputs → results in input order → the outputs (what `aqa score` runs).

    inputs.expand_inputs(paths) command-line paths, folders and patterns → [(video, problem)]
    score_videos(paths, scorer) decode the next videos on a thread pool while the model works on the
                                current one (PyAV and torch both release the GIL); one result per input
    score_inputs(inputs, ...)   the same, taking rows an earlier run stored in the resumable CSV
    ScoreJob(paths, ...).run()  opens the outputs (`writers`), writes each result as it comes, and
                                returns a BatchSummary of the counts

`ScoreJob(paths, ...)` expands the inputs, picks the format (given, else from the `-o` suffix, else
table) and loads the weights before anything is written. An input that cannot be read gives a result
whose `error` holds a one-line reason; the batch goes on unless `fail_fast`.

**Under torchrun** (WORLD_SIZE > 1; `shard.py`) a resumable CSV is required (`--csv` or `-o FILE.csv`).
Every process joins the process group (`device.init_distributed`: GPU `LOCAL_RANK`, else the CPU with
its share of the cores) and takes rank 0's input list. Rank 0 first folds the parts a killed run left
(any world size) into the CSV; then rank r scores inputs r, r+N, ... into its own resumable part
(`out.csv.part-<r>-of-<N>`), skipping those the CSV holds, and says "done" in its status file (`Beacon`).
Rank 0 waits for every part, merges them into the CSV in input order (`writers.merge_parts`, which
deletes them: the CSV and its state are the record, so the same command run again skips everything),
writes the data output and calls `on_result` (its own results as they come, the others' as it finds
them in their parts, `_OtherParts`), and every rank returns the whole job's summary. The other ranks write nothing else and
show nothing. With `fail_fast` each rank stops at its own first failure.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aqa_cli.errors import AqaError, UsageError
from aqa_cli.inputs import VIDEO_SUFFIXES, expand_inputs
from aqa_cli.scoring import Scorer, ScoreResult, check_options, load_model
from aqa_cli.shard import Beacon, RankError, Shard, part_path, remove_status_files
from aqa_cli.sheet import DiveSheet
from aqa_cli.writers import STATE_SUFFIX, ResumableCsv, merge_parts, open_writer, row_key


def score_videos(paths: Iterable[str | Path], model: Scorer | None = None, *, weights: str | Path | None = None,
                 device: str = "auto", height: str | None = None, dd: float | None = None,
                 clips: int | None = None, dive: str | None = None, sheet: DiveSheet | None = None,
                 window: tuple[float, float] | None = None, workers: int = 2, prefetch: int = 2,
                 fail_fast: bool = False) -> Iterator[ScoreResult]:
    """Score many videos, decoding up to `workers + prefetch` ahead of the model; one result per input,
    in input order. Two decoder threads by default: on a quiet 2-core machine a batch of six 720p videos
    took 0.68 x (decode-only + model-only) time with two, 0.92 x with one (benchmarks/bench_score.py).
    A bad input gives a result with `error` set; with `fail_fast` the iteration stops after the first one.
    `paths` may be one path (str or Path) too. Options `check_options` refuses raise UsageError at once.
    `dive` names every video's dive; a dive `sheet` gives videos their own dive, height and DD; `window`
    (start, end) s is the span of every video to score (default: the dive the scorer's locator finds)."""
    height, dd, clips = check_options(height, dd, clips)
    given = {"height": height, "dd": dd, "dive": dive}
    scorer = model or load_model(weights, device)
    todo = iter([paths] if isinstance(paths, (str, Path)) else paths)
    pending: deque[tuple[str, Future]] = deque()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="aqa-decode")

    def submit() -> None:
        for path in todo:
            pending.append((str(path), pool.submit(_timed_prepare, scorer, path, clips, window)))
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
                options = sheet.options_for(video, **given) if sheet else given
                result = scorer.predict(video, prepared, **options)
                result.timings = {"decode": decode_s, "model": time.perf_counter() - t0}
            except AqaError as exc:
                result = ScoreResult(video=video, weights=scorer.name, error=one_line(exc, video))
            yield result
            if fail_fast and result.error:
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def score_inputs(inputs: list[tuple[str, str | None]], scorer: Scorer, *, done=None, height: str | None = None,
                 dd: float | None = None, clips: int | None = None, dive: str | None = None,
                 sheet: DiveSheet | None = None, window: tuple[float, float] | None = None, fail_fast: bool = False,
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
    fresh = score_videos(todo, scorer, height=height, dd=dd, clips=clips, dive=dive, sheet=sheet, window=window,
                         fail_fast=fail_fast, workers=workers)
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


def score_each_dive(inputs: list[tuple[str, str | None]], scorer: Scorer, *, height: str | None = None,
                    dd: float | None = None, clips: int | None = None, dive: str | None = None,
                    sheet: DiveSheet | None = None, fail_fast: bool = False,
                    done: Callable[[str], list[ScoreResult] | None] | None = None, **_
                    ) -> Iterator[tuple[ScoreResult, bool]]:
    """`--all-dives`: a result for every dive the scorer's locator finds in each input, in time order (an
    input where it finds none: one result of the whole file, warned; one that cannot be read: its error),
    each with `dive_of` = (k, n). `done(path)` (`writers.ResumableCsv.done_dives`) gives the stored
    results of an input an earlier run scored whole: those are yielded with resumed=True."""
    from aqa_cli.locate import find_dives

    given = {"height": height, "dd": dd, "dive": dive}
    for video, problem in inputs:
        stored = done(video) if done and problem is None else None
        if stored is not None:
            for result in stored:
                result.video = video
                yield result, True
            continue
        results = [ScoreResult(video=video, weights=scorer.name, error=problem, dive_of=(0, 1))] if problem else []
        try:
            found = [] if problem else find_dives(video, scorer.locator, progress=scorer.progress)
            spans = [[d] for d in found] or ([] if problem else [[]])
            for k, one in enumerate(spans):
                result = scorer.predict(video, scorer.read(video, clips, dives=one),
                                        **(sheet.options_for(video, **given) if sheet else given))
                result.dive_of = (k, len(spans))
                results.append(result)
        except AqaError as exc:
            results = [ScoreResult(video=video, weights=scorer.name, error=one_line(exc, video), dive_of=(0, 1))]
        for result in results:
            yield result, False
            if fail_fast and result.error:
                return


def _timed_prepare(scorer: Scorer, path: str | Path, clips: int | None, window: tuple[float, float] | None):
    t0 = time.perf_counter()
    try:
        prepared = scorer.read(path, clips, window)
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


@dataclass
class BatchSummary:
    """What a `ScoreJob.run` did: `total` inputs, `scored` without error (of which `resumed` were taken
    from the resumable CSV at `resume_path`), the `failed` results, and whether it stopped at the first
    failure (`fail_fast`)."""

    total: int
    scored: int = 0
    resumed: int = 0
    failed: list[ScoreResult] = field(default_factory=list)
    resume_path: Path | None = None
    fail_fast: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) of folder files not scored

    def add(self, result: ScoreResult, resumed: bool) -> None:
        """Count one result."""
        if result.error:
            self.failed.append(result)
        else:
            self.scored += 1
            self.resumed += resumed

    @property
    def not_tried(self) -> int:
        """Inputs left unscored because `fail_fast` stopped the batch."""
        return self.total - self.scored - len(self.failed) if self.fail_fast and self.failed else 0



class _OtherParts:
    """Rank 0's view of the other ranks' progress: called now and then, it reads their parts (read-only;
    a row being written is skipped until whole) and passes each new result to `on_result`, so that rank
    0's progress bar counts every rank's videos. At most one look a second: a look reads whole parts."""

    def __init__(self, job: ScoreJob, settings: dict, on_result: Callable[[ScoreResult, bool], None]):
        self.job, self.settings, self.on_result = job, settings, on_result
        self.shown: set[str] = set()  # row keys passed to on_result
        self.last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self.last < 1.0:
            return
        self.last = time.monotonic()
        shard, out = self.job.shard, self.job.resume_path
        for rank in range(1, shard.world):
            try:
                part = ResumableCsv(part_path(out, rank, shard.world), self.settings, readonly=True)
            except AqaError:
                continue  # e.g. not written yet: the merge shows its rows
            for video, _ in Shard(rank, shard.world).take(self.job.inputs):
                rows = self.job.stored_rows(part, video) if row_key(video) not in self.shown else None
                if rows is not None:
                    self.shown.add(row_key(video))
                    for result in rows:
                        result.video = video
                        self.on_result(result, False)

class ScoreJob:
    """One batch of `aqa score`: inputs (`expand_inputs`), output format and a loaded `scorer`.

    `fmt` is "table", "json" or "csv", or None for the `output` suffix's (.csv, .json), else table.
    `output` receives the data instead of the stream given to `run`; a CSV there, or `csv_file`, is
    a `ResumableCsv`. Raises UsageError (no videos; -o FILE.csv together with --csv; an output that is a
    folder, a video's name or one of the inputs; no CSV under torchrun) before loading the weights, then
    what `scoring.load_model` raises. `shard` is this process's place (rank 0 of 1 when run plainly);
    only where `shard.main` should the caller print.
    """

    def __init__(self, paths, *, weights: str | Path | None = None, device: str = "auto", recursive: bool = False,
                 fmt: str | None = None, output: Path | None = None, csv_file: Path | None = None,
                 dive_check: bool | None = None, locate: bool | None = None, all_dives: bool = False,
                 reframe: bool | None = None):
        self.skipped: list[tuple[str, str]] = []  # files of the folders given that are not videos
        self.inputs = expand_inputs(paths, recursive=recursive, skipped=self.skipped)
        self.fmt = fmt or {".csv": "csv", ".json": "json"}.get(output.suffix.lower() if output else "", "table")
        if output is not None and csv_file is not None and self.fmt == "csv":
            raise UsageError("give either -o FILE.csv or --csv FILE, not both")
        self.output = output
        self.all_dives = all_dives  # a row per dive found, keyed by the video and the dive's index
        self.resume_path = output if output is not None and self.fmt == "csv" else csv_file
        inputs = {os.path.abspath(video) for video, _ in self.inputs}
        for flag, path in (("-o", output), ("--csv", csv_file)):
            if path is None:
                continue
            if path.is_dir():
                raise UsageError(f"{flag} {path} is a folder: give a file name, e.g. {path / 'scores.csv'}")
            if path.name.endswith(STATE_SUFFIX):
                raise UsageError(f"{flag} {path} is a resumable CSV's state file: give the CSV's own name")
            if os.path.abspath(path) in inputs or path.suffix.lower() in VIDEO_SUFFIXES:
                raise UsageError(f"{flag} {path} is a video's name: the output would overwrite it",
                                 hint="give the output its own name, e.g. -o scores.csv")
        if output is not None and csv_file is not None and os.path.abspath(output) == os.path.abspath(csv_file):
            raise UsageError(f"-o and --csv name the same file {output}: give them different names")
        self.shard, self.dist = Shard.from_env(), None
        if self.shard.world > 1:
            device = self._join(device)
        if all_dives and locate is False:
            raise UsageError("--all-dives needs the dive locator: not with --no-locate")
        self.scorer = load_model(weights, device, dive_check=dive_check, locate=True if all_dives else locate,
                                 reframe=reframe)

    def _join(self, device: str) -> str:
        """Under torchrun: join the process group and take rank 0's inputs; returns the device to load
        the weights on (cuda:LOCAL_RANK, or the CPU with this process's share of the cores)."""
        import torch

        from aqa_cli.device import init_distributed, resolve_device

        if self.resume_path is None:
            raise UsageError(f"under torchrun (WORLD_SIZE={self.shard.world}) give --csv FILE or -o FILE.csv: "
                             "each process writes its part next to it and rank 0 merges them",
                             hint="torchrun --nproc-per-node 2 -m aqa_cli score meet/ --csv meet.csv")
        gpus = torch.cuda.device_count() if resolve_device(device).type == "cuda" else None
        if gpus is not None and self.shard.local_rank >= gpus:  # each process takes GPU LOCAL_RANK
            raise UsageError(f"LOCAL_RANK={self.shard.local_rank} but this machine has {gpus} GPU(s)",
                             hint=f"torchrun --nproc-per-node {gpus} ..., or --device cpu")
        self.dist = init_distributed(device)
        if self.dist.device.type == "cpu":
            torch.set_num_threads(self.shard.cpu_threads())
        self.inputs = self.dist.broadcast(self.inputs)  # one list, even if a folder changed meanwhile
        return str(self.dist.device)

    def settings(self, height: str | None = None, dd: float | None = None, clips: int | None = None,
                 dive: str | None = None, sheet: DiveSheet | None = None,
                 window: tuple[float, float] | None = None) -> dict:
        """What a result depends on besides its video (the resume key): the weights, the options and the
        dive sheet's bytes. UsageError for options `check_options` refuses."""
        return {**self.scorer.settings(height, dd, clips, dive), **({"dive_sheet": sheet.sha256} if sheet else {}),
                **({"window": list(window)} if window else {})}

    def run(self, stream: IO[str] | None, *, height: str | None = None, dd: float | None = None,
            clips: int | None = None, dive: str | None = None, sheet: DiveSheet | None = None,
            window: tuple[float, float] | None = None, fail_fast: bool = False,
            on_result: Callable[[ScoreResult, bool], None] | None = None,
            display: AbstractContextManager | None = None) -> BatchSummary:
        """Score every input, in order, writing each result to the resumable CSV (unless it came from
        there) and to the data output: `self.output` when set, else `stream` (None: no data output,
        e.g. when a one-video panel replaces the table). `on_result(result, resumed)` is called after
        each result is written; `display` (e.g. a progress bar) is entered once the outputs are open
        and left before they are closed, so a table printed on closing never meets a live bar."""
        summary = BatchSummary(total=len(self.inputs), resume_path=self.resume_path, fail_fast=fail_fast,
                               skipped=self.skipped)
        settings = self.settings(height, dd, clips, dive, sheet, window)  # checks the options before any file is opened
        options = dict(height=height, dd=dd, clips=clips, dive=dive, sheet=sheet, window=window, fail_fast=fail_fast)
        if self.shard.world > 1:
            return self._run_shard(stream, settings, options, summary, on_result, display)
        folded = self._fold(settings) if self.resume_path else 0
        with ExitStack() as stack:
            resumable = ResumableCsv(self.resume_path, settings) if self.resume_path else None
            if resumable:
                stack.callback(resumable.close)
                if folded:  # a killed torchrun job's parts were folded in: rows in input order, as it would
                    resumable.order_by(self._keys())
            data = self._data_writer(stack, stream)
            if self.all_dives:
                results = score_each_dive(self.inputs, self.scorer, done=resumable.done_dives if resumable else None,
                                          **options)
            else:
                results = score_inputs(self.inputs, self.scorer, done=resumable.done if resumable else None, **options)
            stack.callback(results.close)
            if display is not None:
                stack.enter_context(display)
            for result, resumed in results:
                if resumable and not resumed:
                    resumable.write(result)
                if data:
                    data.write(result)
                summary.add(result, resumed)
                if on_result:
                    on_result(result, resumed)
        if self.all_dives:  # counted in dives, not inputs
            summary.total = summary.scored + len(summary.failed)
        return summary

    def _fold(self, settings: dict) -> int:
        """Fold the parts a killed or failed torchrun job left (any world size) into the CSV, in input
        order, and delete its status files; returns how many parts there were."""
        folded = merge_parts(self.resume_path, settings, self._keys())
        remove_status_files(self.resume_path)
        return folded

    def _keys(self) -> list[str]:
        return [row_key(video) for video, _ in self.inputs]

    def _data_writer(self, stack: ExitStack, stream: IO[str] | None):
        """The data output's writer (closed by `stack`), or None: `self.output` unless it is the
        resumable CSV, else `stream`."""
        if self.output is None:
            out = stream
        elif self.fmt == "csv" and self.resume_path == self.output:
            out = None  # the resumable CSV is the output
        else:
            try:
                self.output.parent.mkdir(parents=True, exist_ok=True)  # as the CSV's folder is made
                out = stack.enter_context(open(self.output, "w", encoding="utf-8"))
            except OSError as exc:
                raise UsageError(f"cannot write {self.output}: {exc.strerror}") from None
        data = open_writer(self.fmt, out) if out is not None else None
        if data:
            stack.callback(data.close)
        return data

    def _run_shard(self, stream, settings: dict, options: dict, summary: BatchSummary,
                   on_result, display) -> BatchSummary:
        """`run` as one of torchrun's processes (see the module docstring)."""
        shard, dist = self.shard, self.dist
        if shard.main:
            self._fold(settings)  # before any rank reads the CSV
        token = dist.broadcast(uuid.uuid4().hex if shard.main else None)
        beacon = Beacon(self.resume_path, shard, token).start()
        try:
            with ExitStack() as stack:
                late = stack.enter_context(ExitStack())  # the data output, opened once the parts are in
                if display is not None and shard.main:
                    stack.enter_context(display)
                stored = ResumableCsv(self.resume_path, settings, readonly=True)
                others = _OtherParts(self, settings, on_result) if shard.main and on_result else None
                own = self._score_part(stored, options, on_result if shard.main else None, others)
                beacon.set("done")
                if not shard.main:
                    beacon.wait([0], "merged")
                else:
                    beacon.wait(range(1, shard.world), tick=others)
                    self._merge(stored, own, self._data_writer(late, stream), summary, on_result, others)
                    beacon.set("merged")
        except AqaError as exc:
            beacon.fail(str(exc))
            if isinstance(exc, RankError):
                raise
            raise type(exc)(f"rank {shard.rank} of {shard.world}: {exc}", hint=exc.hint) from None
        except BaseException as exc:  # e.g. Ctrl-C: the others stop waiting at once
            beacon.fail(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            beacon.stop()
        summary = dist.broadcast(summary)  # every rank returns the job's summary (and exit code)
        if shard.main:
            beacon.remove(range(shard.world))
        dist.close()
        return summary

    def _merge(self, stored: ResumableCsv, own: dict, data, summary: BatchSummary, on_result,
               others: _OtherParts | None) -> None:
        """Rank 0, once every part is done: fold the parts into the CSV, then emit every result in
        input order to the data output and the summary, and to `on_result` those not shown yet (rank
        0's own were shown as they came, the others' as `others` found them in their parts)."""
        world = self.shard.world
        parts = {r: ResumableCsv(part_path(self.resume_path, r, world), readonly=True) for r in range(1, world)}
        merge_parts(self.resume_path, stored.settings, self._keys())
        for i, (video, _) in enumerate(self.inputs):
            r = self.shard.owner(i)
            if r == 0:
                got = own.get(row_key(video))
            else:
                fresh = self.stored_rows(parts[r], video)
                previous = self.done_rows(stored, video) if fresh is None else None  # resumed by rank r, or never tried
                got = [(x, False) for x in fresh] if fresh else [(x, True) for x in previous] if previous else None
            if got is None:  # --fail-fast stopped that rank before this input
                continue
            for result, resumed in got:
                result.video = video
                if data:
                    data.write(result)
                summary.add(result, resumed)
                if on_result and r and not (others and row_key(video) in others.shown):
                    on_result(result, resumed)
        if self.all_dives:  # counted in dives, not inputs
            summary.total = summary.scored + len(summary.failed)

    def stored_rows(self, csv_file: ResumableCsv, video: str) -> list[ScoreResult] | None:
        """The rows `csv_file` holds for input `video` (another process's part): its one row, or with
        --all-dives all of its dives' rows; None when it holds none (or not all of them)."""
        if self.all_dives:
            return csv_file.stored_dives(video)
        result = csv_file.stored(video)
        return None if result is None else [result]

    def done_rows(self, csv_file: ResumableCsv, video: str) -> list[ScoreResult] | None:
        """The rows of `video` an earlier run left in `csv_file` that are still valid (see `done`)."""
        if self.all_dives:
            return csv_file.done_dives(video)
        result = csv_file.done(video)
        return None if result is None else [result]

    def _score_part(self, stored: ResumableCsv, options: dict, on_result,
                    others: _OtherParts | None = None) -> dict[str, list[tuple[ScoreResult, bool]]]:
        """Score this rank's inputs into its part, skipping those `stored` (the CSV) holds, calling
        `others()` after each (rank 0: the other ranks' progress); returns {row_key: [(result, resumed), ...]}
        of this rank's inputs (one each; --all-dives: one per dive)."""
        part = ResumableCsv(part_path(self.resume_path, self.shard.rank, self.shard.world), stored.settings)
        own: dict[str, list[tuple[ScoreResult, bool]]] = {}
        mine = self.shard.take(self.inputs)
        results = score_each_dive(mine, self.scorer, done=stored.done_dives, **options) if self.all_dives else \
            score_inputs(mine, self.scorer, done=stored.done, **options)
        try:
            for result, resumed in results:
                if not resumed:
                    part.write(result)
                own.setdefault(row_key(result.video), []).append((result, resumed))
                if on_result:
                    on_result(result, resumed)
                if others:
                    others()
        finally:
            results.close()
            part.close()
        return own
