"""SynDive speed: milliseconds per frame to render, encode (H.264) and decode back, one process.

    python benchmarks/bench_synth.py [--dives 12] [--size 171x128] [--frames 103]

The target is 1000 dives x 103 frames in under 10 minutes on 2 cores, i.e. about 11 ms per frame per
core for everything. The numbers depend on what else runs on the machine: note the load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from aqa_cli import video
from aqa_cli.datasets.syndive import synth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dives", type=int, default=12)
    parser.add_argument("--size", default="171x128")
    parser.add_argument("--frames", type=int, default=103)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    spent = {"render": 0.0, "encode": 0.0, "decode": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dive.mp4"
        for i in range(args.dives):
            spec, rng = synth.make_spec(0, i, synth.DEFAULT_HEIGHTS)
            synth.make_sample(spec, rng)  # advances the RNG exactly as the generator does
            t = time.perf_counter()
            frames = list(synth.render_dive(spec, rng, size, args.frames, 25.0))
            spent["render"] += time.perf_counter() - t
            t = time.perf_counter()
            video.write_video(path, frames, fps=25.0, x264_params=synth.X264_PARAMS)
            spent["encode"] += time.perf_counter() - t
            t = time.perf_counter()
            video.read_window(path, args.frames - 1, args.frames, size)
            spent["decode"] += time.perf_counter() - t
    n = args.dives * args.frames
    per = {k: 1e3 * v / n for k, v in spent.items()}
    total = sum(per.values())
    print(f"{args.dives} dives x {args.frames} frames at {size[0]}x{size[1]} "
          f"(load average {os.getloadavg()[0]:.1f})")
    for k, v in per.items():
        print(f"  {k:7s} {v:6.2f} ms/frame")
    print(f"  total   {total:6.2f} ms/frame -> 1000 dives on 2 cores ≈ {1000 * args.frames * total / 2e3 / 60:.1f} min")


if __name__ == "__main__":
    main()
