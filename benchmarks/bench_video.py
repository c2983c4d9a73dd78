"""How fast the video reader decodes + resizes, against a bare PyAV decode loop of the same file.

Encodes its own synthetic 720p H.264 clip (a panning textured background with a moving block,
so the encoder has real detail to code), then prints frames per second for:

  1. bare PyAV decode (no conversion) with each decoder thread_type, the floor we compare to;
  2. read_even (96 frames kept) and read_window (103 frames kept) at 171x128, and their ratio to
     the bare loop (1.0 would mean conversion and sampling cost nothing);
  3. decode + swscale resize of every frame to 171x128 for each interpolation, with swscale
     threads=1 and threads=0 (auto), and the PSNR of each against an antialiased reference
     (full-size RGB downscaled by torch's antialiased bilinear), to pick speed vs quality;
  4. read_even under each decoder thread_type.

Run: python benchmarks/bench_video.py [--frames 120]   (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from aqa_cli import video

SIZE = (171, 128)
THREAD_TYPES = ["NONE", "SLICE", "FRAME", "AUTO"]
INTERPOLATIONS = ["POINT", "FAST_BILINEAR", "BILINEAR", "AREA", "BICUBIC"]


def synthetic_720p(path: Path, n: int) -> None:
    """Write n frames of 1280x720 synthetic footage: a textured background panning 4 px/frame,
    a moving block, and fresh per-frame noise (like sensor noise) so the bitrate is broadcast-like."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (90, 200, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)  # 720 x 1600, 8-px blocks
    texture = (texture // 2 + rng.integers(0, 24, texture.shape, dtype=np.uint8)).astype(np.uint8)  # <= 151

    def frames():
        for i in range(n):
            frame = texture[:, 4 * i % 320 : 4 * i % 320 + 1280] + rng.integers(0, 16, (720, 1280, 3), dtype=np.uint8)
            x = 100 + 6 * i % 1000
            frame[300:420, x : x + 120] = (230, 60, 40)
            yield frame

    video.write_video(path, frames(), fps=25)


def best_of(fn, repeats: int = 3) -> float:
    """Fastest wall time (s) of `repeats` runs: the least disturbed by other processes."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bare_decode(path: Path, thread_type: str) -> int:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_type = thread_type
        return sum(1 for _ in c.decode(s))


def decode_resize_all(path: Path, interpolation: str, threads: int) -> None:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_type = video.THREAD_TYPE
        for f in c.decode(s):
            f.to_ndarray(width=SIZE[0], height=SIZE[1], format="rgb24", interpolation=interpolation, threads=threads)


def psnr_against_reference(path: Path, n: int = 8) -> dict[str, float]:
    """PSNR (dB) of each swscale interpolation against torch's antialiased bilinear, over n frames."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    errors = {name: [] for name in INTERPOLATIONS}
    with av.open(str(path)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k >= n:
                break
            full = torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float()
            ref = F.interpolate(full, size=(SIZE[1], SIZE[0]), mode="bilinear", antialias=True, align_corners=False)
            ref = ref[0].permute(1, 2, 0).numpy()
            for name in INTERPOLATIONS:
                out = f.to_ndarray(width=SIZE[0], height=SIZE[1], format="rgb24", interpolation=name, threads=1)
                errors[name].append(np.mean((out.astype(np.float32) - ref) ** 2))
    return {name: 10 * np.log10(255**2 / np.mean(e)) for name, e in errors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="length of the synthetic 720p clip")
    args = parser.parse_args()
    n = args.frames

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_720p.mp4"
        t = time.perf_counter()
        synthetic_720p(path, n)
        mbps = path.stat().st_size * 8 / 1e6 / (n / 25)
        print(f"synthetic 720p H.264 clip: {n} frames at 25 fps, {mbps:.1f} Mbit/s, "
              f"encoded in {time.perf_counter() - t:.1f} s")
        bare_decode(path, "SLICE")  # warm the page cache and FFmpeg's tables

        print("\n1. bare PyAV decode loop (no conversion), frames/s")
        bare = {}
        for tt in THREAD_TYPES:
            bare[tt] = n / best_of(lambda: bare_decode(path, tt))
            print(f"   thread_type={tt:<6} {bare[tt]:7.1f}")
        floor = bare[video.THREAD_TYPE]

        print(f"\n2. reader (decode + keep + swscale to {SIZE[0]}x{SIZE[1]}), frames decoded/s, "
              f"ratio to the bare loop with thread_type={video.THREAD_TYPE}")
        for name, fn in [
            ("read_even(n=96)", lambda: video.read_even(path, 96, SIZE)),
            ("read_window(103 ending at the last frame)", lambda: video.read_window(path, n - 1, 103, SIZE)),
            ("iter_frame_ranges(3 ranges of 30)", lambda: list(video.iter_frame_ranges(
                path, [(0, 29), (60, 89), (n - 30, n - 1)], SIZE))),
        ]:
            fps = n / best_of(fn)
            print(f"   {name:<42} {fps:7.1f} frames/s   ratio {fps / floor:.2f}")

        print(f"\n3. decode + swscale every frame to {SIZE[0]}x{SIZE[1]}, frames/s "
              "(PSNR vs antialiased reference)")
        quality = psnr_against_reference(path)
        for name in INTERPOLATIONS:
            speeds = [n / best_of(lambda: decode_resize_all(path, name, threads)) for threads in (1, 0)]
            print(f"   {name:<14} sws threads=1 {speeds[0]:7.1f}   threads=auto {speeds[1]:7.1f}   "
                  f"PSNR {quality[name]:5.1f} dB")

        print("\n4. read_even(n=96) by decoder thread_type, frames/s")
        chosen = video.THREAD_TYPE
        try:
            for tt in THREAD_TYPES:
                video.THREAD_TYPE = tt
                print(f"   thread_type={tt:<6} {n / best_of(lambda: video.read_even(path, 96, SIZE)):7.1f}")
        finally:
            video.THREAD_TYPE = chosen
        print(f"\nreader settings: interpolation={video.INTERPOLATION}, sws threads={video.SWS_THREADS}, "
              f"thread_type={video.THREAD_TYPE}")


if __name__ == "__main__":
    main()
