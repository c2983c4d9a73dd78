"""Peak memory, wall time and progress of `aqa score` on one long 1080p recording (issue 29).

Issue 29 asks that `aqa score` on a 60-minute 1080p recording stays under 1 GiB RSS and shows
progress. This script builds such a recording cheaply and runs the CLI on it as a user would:

  1. one minute of 1920x1080 25 fps H.264 is encoded once: a SynDive example (synthetic footage)
     scaled to 1080 rows by libswscale, its sides padded with the edge pixels, each 4.1 s dive
     followed by 0.9 s of its last frame, 12 dives a minute, plus a little per-frame noise (like
     sensor noise) so the bitrate is not that of a flat cartoon;
  2. that minute is copied --minutes times into --video by remuxing its packets with shifted
     timestamps (no re-encoding), so a 60-minute file costs one minute of encoding; both files are
     kept and reused by later runs;
  3. `python -m aqa_cli score VIDEO <--score-args>` runs in a child process whose stderr is a
     pseudo-terminal (Rich draws progress bars only on a terminal); its peak RSS comes from the
     kernel's own count (os.wait4's ru_maxrss), RSS is also sampled ten times a second from
     /proc/PID/status, and every stderr write is timestamped. "Progress shown" means stderr was
     written in at least 3 different seconds between 10 % and 90 % of the run, i.e. something
     moved while the work went on, whatever form the progress takes.

Only the CLI is called, so the script measures whatever `aqa score` does with long files today or
after it learns to locate dives. The machine may be shared: the load average is printed beside the
figures; a busy machine lengthens the wall time (memory does not depend on it).

Run: python benchmarks/bench_long.py --minutes 5   (5 minutes of video took 82-230 s at load 7-10 on 2 cores)
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FPS = 25
WIDTH, HEIGHT = 1920, 1080
BLOCK = 5 * FPS  # one dive (103 frames) then its last frame held, 5 s in all
SOURCE = Path(__file__).resolve().parents[1] / "examples" / "syndive_107C_1m.mp4"
LIMIT_MIB = 1024


def unit_frames(source: Path):
    """Yield the one-minute unit: uint8 (1080, 1920, 3) frames, 60 s at 25 fps."""
    import av
    import numpy as np

    with av.open(str(source)) as c:
        # 1080 rows, width kept in proportion (even), then padded to 1920 with the edge columns.
        small = [f for f in c.decode(video=0)]
        width = round(small[0].width * HEIGHT / small[0].height) // 2 * 2
        dive = [f.to_ndarray(width=width, height=HEIGHT, format="rgb24", interpolation="BICUBIC") for f in small]
    left = (WIDTH - width) // 2
    rng = np.random.default_rng(0)
    # A few noise fields cycled: fresh noise per frame costs more to draw than to encode.
    noise = [rng.integers(0, 8, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(7)]
    for i in range(60 * FPS):
        k = i % BLOCK
        frame = dive[min(k, len(dive) - 1)]
        frame = np.pad(frame, ((0, 0), (left, WIDTH - width - left), (0, 0)), mode="edge")
        yield np.minimum(frame, 247) + noise[i % len(noise)]


def concat(unit: Path, out: Path, copies: int) -> None:
    """Write `copies` back-to-back copies of `unit` to `out` without re-encoding (packet remux)."""
    import av

    part = out.with_name(out.name + ".part")
    with av.open(str(unit)) as src, av.open(str(part), "w", format="mp4") as dst:
        s_in = src.streams.video[0]
        s_out = dst.add_stream_from_template(s_in)
        step = round(60 / s_in.time_base)  # one unit's length in the stream's ticks
        for k in range(copies):
            src.seek(0, stream=s_in)
            for packet in src.demux(s_in):
                if packet.dts is None:  # the demuxer's empty flush packet
                    continue
                packet.pts += k * step
                packet.dts += k * step
                packet.stream = s_out
                dst.mux(packet)
    part.replace(out)


def make_recording(video: Path, minutes: int) -> None:
    """Build (or reuse) the --minutes long recording and the one-minute unit beside it."""
    from aqa_cli.video import probe, write_video

    if video.exists():
        info = probe(video)
        if abs(info.duration - 60 * minutes) > 1 or (info.width, info.height) != (WIDTH, HEIGHT):
            sys.exit(f"bench_long: {video} holds {info.duration / 60:.1f} min at {info.width}x{info.height}, "
                     f"not {minutes} min at {WIDTH}x{HEIGHT}: give another --video or delete it")
        print(f"reusing {video}", file=sys.stderr)
        return
    video.parent.mkdir(parents=True, exist_ok=True)
    unit = video.with_name(f"unit_1080p_1min_{SOURCE.stem}.mp4")
    if not unit.exists():
        t = time.perf_counter()
        print(f"encoding the one-minute 1080p unit {unit} ...", file=sys.stderr, flush=True)
        partial = unit.with_suffix(".partial.mp4")  # renamed when complete: a killed run leaves no unit
        write_video(partial, unit_frames(SOURCE), fps=FPS)
        partial.replace(unit)
        print(f"  encoded in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    t = time.perf_counter()
    concat(unit, video, minutes)
    print(f"remuxed {minutes} copies into {video} in {time.perf_counter() - t:.0f} s", file=sys.stderr)


def rss_kib(pid: int) -> int | None:
    """The process's resident set size now (KiB), or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def run_score(video: Path, score_args: list[str]) -> dict:
    """Run `aqa score` on `video`, stderr on a pseudo-terminal; peak RSS, wall time and stderr writes."""
    cmd = [sys.executable, "-m", "aqa_cli", "score", str(video), *score_args]
    env = {**os.environ, "COLUMNS": "120", "TERM": os.environ.get("TERM", "xterm"), "PYTHONIOENCODING": "utf-8"}
    master, slave = pty.openpty()
    # stdout to a file, not a pipe: many rows (one per dive found) would fill a pipe nobody reads meanwhile.
    out = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=slave, env=env)
    os.close(slave)
    writes: list[tuple[float, bytes]] = []
    samples: list[tuple[float, int]] = []
    next_sample = 0.0
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        now = time.perf_counter() - t0
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal (it exited)
                data = b""
            if not data:
                break
            writes.append((now, data))
        if now >= next_sample:
            kib = rss_kib(child.pid)
            if kib is not None:
                samples.append((now, kib))
            next_sample = now + 0.1
    _, status, usage = os.wait4(child.pid, 0)  # usage: this child's own kernel counts, ru_maxrss in KiB
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    os.close(master)
    out.seek(0)
    stdout = out.read().decode(errors="replace")
    out.close()
    return {"cmd": cmd, "wall": wall, "rc": child.returncode, "peak_kib": usage.ru_maxrss,
            "samples": samples, "writes": writes, "stdout": stdout}


def progress_seconds(writes: list[tuple[float, bytes]], wall: float) -> int:
    """How many different whole seconds between 10 % and 90 % of the run saw a stderr write."""
    return len({int(t) for t, _ in writes if 0.1 * wall <= t <= 0.9 * wall})


def plain(data: bytes) -> list[str]:
    """stderr bytes as text lines without terminal control sequences."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data.decode(errors="replace"))
    return [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]


def code_version() -> str:
    """The commit the CLI runs from, and whether aqa_cli/ has uncommitted changes (the tree may be shared)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "aqa_cli"], cwd=repo, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"{head}{f' + uncommitted changes in {len(dirty.splitlines())} aqa_cli file(s)' if dirty else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="length of the recording (default 60)")
    parser.add_argument("--video", type=Path, default=None, help="where the recording is cached (default "
                        "$TMPDIR/aqa-bench/long_1080p_<minutes>min.mp4); reused when it exists")
    parser.add_argument("--score-args", default="-f csv --verbose",
                        help="arguments after `aqa score VIDEO` (default: %(default)s)")
    args = parser.parse_args()
    if args.minutes < 1:
        parser.error("--minutes must be at least 1")
    video = args.video or Path(tempfile.gettempdir()) / "aqa-bench" / f"long_1080p_{args.minutes}min.mp4"
    make_recording(video, args.minutes)

    version = code_version()
    load_before = os.getloadavg()
    result = run_score(video, shlex.split(args.score_args))
    load_after = os.getloadavg()
    peak = result["peak_kib"] / 1024
    moving = progress_seconds(result["writes"], result["wall"])
    lines = plain(b"".join(data for _, data in result["writes"]))
    size_mb = video.stat().st_size / 1e6
    print(f"command: {shlex.join(result['cmd'])}   (code: {version})")
    print(f"recording: {args.minutes} min of 1920x1080 {FPS} fps H.264 (synthetic: SynDive {SOURCE.name} upscaled "
          f"and looped), {size_mb:.0f} MB, {size_mb * 8 / (60 * args.minutes):.1f} Mbit/s")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} CPUs "
          "(a busy machine lengthens the wall time)")
    print(f"exit code {result['rc']}; wall time {result['wall']:.1f} s "
          f"({result['wall'] / args.minutes:.1f} s per recorded minute)")
    print(f"peak RSS {peak:.0f} MiB ({'under' if peak < LIMIT_MIB else 'OVER'} the {LIMIT_MIB} MiB goal)")
    trace = result["samples"]
    if trace:
        picks = [trace[round(i * (len(trace) - 1) / 9)] for i in range(10)]
        print("RSS over the run (s: MiB): " + ", ".join(f"{t:.0f}: {k / 1024:.0f}" for t, k in picks))
        t_top, k_top = max(trace, key=lambda s: s[1])
        print(f"highest sampled RSS {k_top / 1024:.0f} MiB at {t_top:.1f} s (samples every 0.1 s can miss a short peak)")
    print(f"progress shown: {'yes' if moving >= 3 else 'no'} (stderr written in {moving} different seconds "
          f"between 10 % and 90 % of the run; {len(result['writes'])} writes in all)")
    print("stderr (the last 25 lines):")
    for line in lines[-25:]:
        print(f"  | {line[:160]}")
    if result["stdout"].strip():
        print("stdout, first lines:")
        for line in result["stdout"].strip().splitlines()[:3]:
            print(f"  | {line[:160]}")


if __name__ == "__main__":
    main()
