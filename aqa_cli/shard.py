"""Scale-out over torchrun's processes: which inputs a process takes, where it writes its part, and how
the processes wait for each other through small status files next to the output.

    Shard.from_env()          this process's place: RANK / WORLD_SIZE / LOCAL_RANK / LOCAL_WORLD_SIZE as
                              torchrun sets them (rank 0 of 1 when run plainly)
    shard.take(items)         the items this rank handles: r, r+N, r+2N... of a list every rank builds
                              the same way (`inputs.expand_inputs` is deterministic, and rank 0's list is
                              broadcast anyway)
    part_path(out, r, N)      `out.csv.part-<r>-of-<N>`: rank r's own resumable file
    find_parts(out)           the parts next to `out` from runs of any world size, oldest first
    remove_status_files(out)  the status files a failed or killed job left
    Beacon(out, shard, token) the status file `out.csv.part-<r>-of-<N>.status`: a heartbeat while the
                              process works, then "done" / "merged" / "failed"; `wait(ranks, state)`

Why files and not only a collective (`dist.barrier`): shards take very different times (one rank may
draw the hour-long recording), and a collective has one fixed timeout for the whole wait. A rank's
heartbeat (its status file rewritten every `BEAT_S` s) says it is alive however long its shard takes;
a rank that died or lost its node is named after `timeout` seconds without a beat (`AQA_RANK_TIMEOUT`,
default 120 s), and a rank that failed with an error says so in its file, so the others stop at once.
The waiter compares the file's content, not its mtime, against its own clock, so nodes' clocks need
not agree. Parts and status files must be on a file system every node sees (one output path).

Nothing here knows the CSV format (`writers` merges) or torch (`batch` holds the process group).
`aqa features extract` can shard the same way: take() and Beacon (one file per sample there: no merge).
"""

from __future__ import annotations

import glob
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aqa_cli.errors import AqaError, UsageError
from aqa_cli.storage import atomic_write_text

T = TypeVar("T")
BEAT_S = 2.0  # seconds between heartbeats
TIMEOUT_S = 120.0  # without a beat from a rank this long, it is taken for dead
STATUS_SUFFIX = ".status"


class RankError(AqaError):
    """Another rank failed or stopped answering (raised by `Beacon.wait`; the message names it)."""


@dataclass(frozen=True)
class Shard:
    """This process's place among `world` processes (`local_world` of them on this machine)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Shard:
        """Read torchrun's variables; UsageError for values that do not describe a place."""
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local_rank = int(env.get("LOCAL_RANK", "0"))
            local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
        except ValueError:
            raise UsageError("WORLD_SIZE, RANK, LOCAL_RANK and LOCAL_WORLD_SIZE must be whole numbers "
                             "(torchrun sets them)") from None
        if world < 1 or not 0 <= rank < world or not 0 <= local_rank < max(1, local_world):
            raise UsageError(f"RANK={rank} of WORLD_SIZE={world} (LOCAL_RANK={local_rank}): not a place in "
                             "a torchrun job")
        return cls(rank, world, local_rank, max(1, local_world))

    @property
    def main(self) -> bool:
        """Rank 0: merges the parts, writes the outputs and prints."""
        return self.rank == 0

    def take(self, items: Sequence[T]) -> list[T]:
        """This rank's items, in order: indices rank, rank + world, ... (round robin, so that sorted
        inputs of growing size spread evenly)."""
        return list(items[self.rank::self.world])

    def owner(self, index: int) -> int:
        """The rank that handles item `index` of the full list."""
        return index % self.world

    def cpu_threads(self) -> int:
        """Compute threads for one process on the CPU: this machine's cores shared by its processes."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return max(1, cores // self.local_world)


def part_path(out: str | Path, rank: int, world: int) -> Path:
    """Rank `rank`'s part of the output `out` in a job of `world` processes."""
    out = Path(out)
    return out.with_name(f"{out.name}.part-{rank}-of-{world}")


def find_parts(out: str | Path) -> list[Path]:
    """The parts next to `out` (any world size; not their state or status files), oldest first, so that
    folding them in this order lets a newer row of an input replace an older one."""
    out = Path(out)
    pattern = re.compile(re.escape(out.name) + r"\.part-(\d+)-of-(\d+)")
    # glob.escape: a file may be called "meet [final].csv"
    found = [p for p in out.parent.glob(f"{glob.escape(out.name)}.part-*-of-*") if pattern.fullmatch(p.name)
             and p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def status_path(out: str | Path, rank: int, world: int) -> Path:
    return part_path(out, rank, world).with_name(part_path(out, rank, world).name + STATUS_SUFFIX)


def remove_status_files(out: str | Path) -> None:
    """Delete the status files a failed or killed job left next to `out` (any world size)."""
    out = Path(out)
    pattern = re.compile(re.escape(out.name) + r"\.part-(\d+)-of-(\d+)" + re.escape(STATUS_SUFFIX))
    for path in out.parent.glob(f"{glob.escape(out.name)}.part-*-of-*{STATUS_SUFFIX}"):
        if pattern.fullmatch(path.name):
            path.unlink(missing_ok=True)


def timeout_s(env: Mapping[str, str] = os.environ) -> float:
    """`AQA_RANK_TIMEOUT` (seconds without a heartbeat before a rank is taken for dead), else 120."""
    text = env.get("AQA_RANK_TIMEOUT", "")
    try:
        value = float(text) if text else TIMEOUT_S
    except ValueError:
        raise UsageError(f"AQA_RANK_TIMEOUT={text!r}: expected seconds, e.g. 300") from None
    if not value > 0:
        raise UsageError(f"AQA_RANK_TIMEOUT={text!r}: expected seconds > 0")
    return value


class Beacon:
    """This rank's status file (`status_path`): {"token", "rank", "state", "beat", ...}, rewritten
    atomically by a heartbeat thread every `beat_s` seconds while the process lives, and by `set` when
    its state changes. `token` (one per job, from rank 0) tells this job's files from a killed run's."""

    def __init__(self, out: str | Path, shard: Shard, token: str, *, timeout: float | None = None,
                 beat_s: float = BEAT_S):
        self.out, self.shard, self.token = Path(out), shard, token
        self.timeout = timeout_s() if timeout is None else timeout
        self.beat_s = beat_s
        self.path = status_path(out, shard.rank, shard.world)
        self._status: dict[str, Any] = {"token": token, "rank": shard.rank, "state": "working", "beat": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Beacon:
        self._write()
        self._thread = threading.Thread(target=self._beat, name="aqa-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                self._write()
            except OSError:
                pass  # a full disk for one beat: the next one may pass, and a lasting one fails the waiters

    def _write(self, **change: Any) -> None:
        with self._lock:
            self._status.update(change, beat=self._status["beat"] + 1)
            atomic_write_text(self.path, json.dumps(self._status) + "\n")

    def set(self, state: str, **info: Any) -> None:
        """Announce "done" (the part is complete), "merged" (rank 0: the output is whole) or "failed"
        (with error=...)."""
        self._write(state=state, **info)

    def fail(self, error: str) -> None:
        """Announce "failed" with `error` (one line), so that the others stop waiting at once; a file
        that cannot be written now leaves them the heartbeat timeout instead."""
        try:
            self.set("failed", error=error)
        except OSError:
            pass

    def stop(self) -> None:
        """End the heartbeat (the file stays until `remove`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def remove(self, ranks: Iterable[int]) -> None:
        """Delete the status files of `ranks` (rank 0, once every rank has read what it needed)."""
        for rank in ranks:
            status_path(self.out, rank, self.shard.world).unlink(missing_ok=True)

    def wait(self, ranks: Iterable[int], state: str = "done", poll_s: float = 0.05,
             tick: Callable[[], None] | None = None) -> None:
        """Block until every rank in `ranks` has announced `state` under this token, calling `tick()`
        (e.g. progress) between looks. Raises RankError, naming the rank, when one announced "failed"
        or gave no heartbeat for `timeout` seconds."""
        waiting = {rank: (None, time.monotonic()) for rank in ranks}  # rank: (last content, when it changed)
        while waiting:
            for rank, (seen, since) in list(waiting.items()):
                path = status_path(self.out, rank, self.shard.world)
                try:
                    text = path.read_text(encoding="utf-8")
                    status = json.loads(text)
                except (OSError, ValueError):
                    text, status = None, None  # not written yet, or from before the atomic rename
                mine = isinstance(status, dict) and status.get("token") == self.token
                who = f"rank {rank} of {self.shard.world}"
                if mine and status.get("state") == state:
                    del waiting[rank]
                elif mine and status.get("state") == "failed":
                    raise RankError(f"{who} failed: {status.get('error') or 'no reason given'}")
                elif mine and text != seen:
                    waiting[rank] = (text, time.monotonic())
                elif time.monotonic() - since > self.timeout:
                    what = "no heartbeat" if mine else "it never started"
                    raise RankError(f"{who} stopped answering: {what} for {self.timeout:.0f} s ({path})",
                                   hint="rerun the same command: finished rows are kept and skipped; "
                                        "AQA_RANK_TIMEOUT=SECONDS waits longer")
            if waiting:
                if tick:
                    tick()
                time.sleep(poll_s)
