"""End-to-end cost of `aqa score` against its floor, and what overlapping decode with the model buys.

1. One video, fresh process: the wall time of `aqa score one.mp4` (best of --repeats) next to its floor
   measured in the same run = a fresh process importing torch and PyAV + a bare PyAV decode of the
   file (every frame, no conversion) + the model's forward pass alone (warm). The command's own
   time is split into start-up (the import floor), decode (read_even + transforms, from `-v`),
   model (forward + caption generation, from `-v`) and other (the rest: aqa's own imports,
   reading and hashing the weights, building the model, writing the output, exiting). Goal ≤ 1.25 ×.
2. Batch: videos/s of `score_videos` (decode on 1 or 2 threads, or on a process pool, while the model
   runs) against the sum of decode-only and model-only time for the same videos. Goal ≤ 0.8 ×.

Without --weights it builds a random-init model from the `tiny-mtl` config (the demo model's
architecture): the timings are real, the scores meaningless. The clip is a synthetic 720p H.264
video (benchmarks/bench_video.py's generator), 4 s at 25 fps.

Run: python benchmarks/bench_score.py [--weights FILE] [--videos 4] [--repeats 3]
(about 2 minutes on 2 idle cores; every figure is the best of --repeats, the least disturbed run)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video import bare_decode, best_of, synthetic_720p  # noqa: E402


def tiny_checkpoint(path: Path) -> Path:
    """A random-init tiny-mtl checkpoint with a 300-word vocabulary (the SynDive demo's order of size)."""
    import torch

    from aqa_cli.checkpoint import Checkpoint, Preprocess
    from aqa_cli.config import load_config, to_dict
    from aqa_cli.models import build_model
    from aqa_cli.rules import LABEL_NAMES
    from aqa_cli.text import SPECIALS

    torch.manual_seed(0)
    cfg = load_config("tiny-mtl")
    vocab = list(SPECIALS) + [f"w{i}" for i in range(297)]
    cfg.model.vocab_size = len(vocab)
    Checkpoint(model=build_model(cfg.model).state_dict(), model_config=cfg.model, preprocess=Preprocess.from_config(cfg),
               vocab=vocab, label_maps=LABEL_NAMES, train_config=to_dict(cfg),
               data={"name": "none (random init, benchmark only)", "synthetic": True}).save(path)
    return path


AQA_IMPORTS = ("import torch, av, aqa_cli.cli, aqa_cli.scoring, aqa_cli.writers, aqa_cli.models, aqa_cli.video, "
               "aqa_cli.transforms, aqa_cli.rules")


def fresh(cmd: list[str]) -> tuple[float, str]:
    """Wall time of a fresh process and its stderr."""
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t, out.stderr


def decode_only(spec: dict, path: str):
    """read_even only (uint8 frames); module-level so a process pool can run it."""
    from aqa_cli.video import read_even

    return read_even(path, n=spec["clips"] * spec["clip_len"], size=tuple(spec["resize"]))


def batch_process_pool(scorer, paths, workers: int):
    """score_videos' pipeline with decoding in worker processes instead of a thread (for comparison)."""
    from aqa_cli.transforms import clips_from_frames

    p = scorer.preprocess
    spec = {"clips": int(p["clips"]), "clip_len": int(p["clip_len"]), "resize": p["resize"]}
    # spawn, not fork: the parent already runs torch's thread pools, which do not survive a fork.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(decode_only, spec, str(v)) for v in paths]
        for video, fut in zip(paths, futures):
            clips = clips_from_frames(fut.result(), spec["clips"], spec["clip_len"], int(p["crop"]),
                                      p["mean"], p["std"])
            scorer.predict(str(video), clips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="checkpoint to use (default: a random-init tiny-mtl model)")
    parser.add_argument("--videos", type=int, default=4, help="videos in the batch measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from aqa_cli.batch import score_videos
    from aqa_cli.scoring import load_model

    work = Path(tempfile.mkdtemp(prefix="aqa-bench-"))
    try:
        clip = work / "dive.mp4"
        synthetic_720p(clip, 100)
        weights = Path(args.weights) if args.weights else tiny_checkpoint(work / "tiny.pt")
        print(f"weights: {weights}{'' if args.weights else ' (random init, tiny-mtl architecture)'}")
        print(f"video: synthetic 1280x720 H.264, 100 frames; torch threads {torch.get_num_threads()}, "
              f"{os.cpu_count()} CPUs\n")

        # --- 1. one video as a fresh process, and its floor --------------------------------------
        aqa = [sys.executable, "-m", "aqa_cli", "score", str(clip), "--weights", str(weights), "--device", "cpu",
               "-q", "-v", "-f", "json"]
        # Interleaved, so that load from other processes hits the command and its floor alike.
        runs, startups, imports = [], [], []
        for _ in range(args.repeats):
            runs.append(fresh(aqa))
            startups.append(fresh([sys.executable, "-c", "import torch, av"])[0])
            imports.append(fresh([sys.executable, "-c", AQA_IMPORTS])[0])
        total, stderr = min(runs, key=lambda r: r[0])
        decode_s, model_s = map(float, re.search(r"decode ([\d.]+) s, model ([\d.]+) s", stderr).groups())
        startup, with_aqa = min(startups), min(imports)
        bare = best_of(lambda: bare_decode(clip, "SLICE"), args.repeats)
        loading = best_of(lambda: load_model(str(weights), device="cpu"), args.repeats)

        scorer = load_model(str(weights), device="cpu")
        x = scorer.prepare(clip).unsqueeze(0)
        with torch.inference_mode():
            scorer.model(x)  # warm-up: the first call allocates and picks kernels
            forward = best_of(lambda: scorer.model(x), args.repeats)
            generate = best_of(lambda: scorer.model.generate(x), args.repeats) if scorer.captions else 0.0
        floor = startup + bare + forward
        other = total - startup - decode_s - model_s
        print("one video, fresh process (best of %d)" % args.repeats)
        print(f"  aqa score          {total:6.2f} s = start-up {startup:.2f} + decode {decode_s:.2f} "
              f"+ model {model_s:.2f} + other {other:.2f}")
        rest = other - (with_aqa - startup) - loading
        print(f"    other            = aqa's own imports (typer, rich, aqa modules) {with_aqa - startup:.2f} s "
              f"+ finding, hashing, loading the weights {loading:.2f} s + the rest (argument parsing, "
              f"threads, output, exit) {rest:.2f} s")
        print(f"  floor              {floor:6.2f} s = import torch+av {startup:.2f} + bare decode {bare:.2f} "
              f"+ forward {forward:.2f}   (caption generation alone: {generate:.2f} s)")
        print(f"  ratio              {total / floor:6.2f} x   (goal <= 1.25)\n")

        # --- 2. batch throughput vs decode-only + model-only --------------------------------------
        paths = []
        for i in range(args.videos):
            paths.append(work / f"v{i}.mp4")
            shutil.copy(clip, paths[-1])
        prepared = [scorer.prepare(v) for v in paths]
        default_threads = torch.get_num_threads()
        print(f"batch of {args.videos} (each figure the best of {args.repeats}, serial and overlapped runs "
              "interleaved):")
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            serial, walls = [], {"score_videos, 1 decoder": [], "score_videos, 2 decoders": [],
                                 "process pool, 1 worker": []}
            for _ in range(args.repeats):
                t = time.perf_counter()
                for v in paths:
                    scorer.prepare(v)
                t_decode = time.perf_counter() - t
                for v, c in zip(paths, prepared):
                    scorer.predict(str(v), c)
                serial.append((t_decode + (time.perf_counter() - t - t_decode), t_decode))
                walls["score_videos, 1 decoder"].append(best_of(lambda: list(score_videos(paths, scorer, workers=1)), 1))
                walls["score_videos, 2 decoders"].append(
                    best_of(lambda: list(score_videos(paths, scorer, workers=2)), 1))
                walls["process pool, 1 worker"].append(best_of(lambda: batch_process_pool(scorer, paths, 1), 1))
            total_s, decode_sum = min(serial)
            print(f"  torch threads {threads}: decode-only {decode_sum:.2f} s + model-only {total_s - decode_sum:.2f} s"
                  f" = {total_s:.2f} s ({args.videos / total_s:.2f} videos/s)")
            for label, times in walls.items():
                wall = min(times)
                print(f"    {label:24s} {wall:5.2f} s, {args.videos / wall:.2f} videos/s, "
                      f"{wall / total_s:.2f} x the sum (goal <= 0.8)")
        torch.set_num_threads(default_threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
