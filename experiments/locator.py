"""The dive locator on generated SynDive sessions (synthetic): make training data, train, measure.

    python experiments/locator.py data --seed 1 --count 300 --out runs/locator-data
    python experiments/locator.py train --data runs/locator-data --out weights/syndive-locator.pt
    python experiments/locator.py measure --weights weights/syndive-locator.pt --seed 2 --count 100 \\
        --videos runs/locator-eval --json runs/locator-eval.json

`data` renders each session at the locator's own rate (10 fps), encodes it to H.264 and reads it back
as find_dives does; `measure` writes real-time (25 fps) sessions of 1-4 dives to video files and runs
`find_dives` on each file, as `aqa locate` does: dives found with window IoU >= 0.7, false windows,
mean IoU, and the decode + locate time per minute of video. Results and commands: experiments/locator.md.
One torch thread everywhere (the build machine is shared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from aqa_cli import locate


def make_data(args) -> None:
    """Training sessions → DIR/s{index:04d}.npz (frames uint8 (T, 48, 64, 3), labels (T,))."""
    cfg = locate.LocatorConfig()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for i in range(args.first, args.count):
        target = out / f"s{i:04d}.npz"
        if target.exists():
            continue
        frames, labels, plan = locate.session_example(args.seed, i, cfg)
        np.savez(target, frames=frames, labels=labels, dives=len(plan.dives))
        if i % 20 == 0:
            print(f"session {i}: {len(frames)} samples, {len(plan.dives)} dives, {time.time() - start:.0f} s",
                  file=sys.stderr, flush=True)


def make_videos(args) -> None:
    """Held-out sessions as real-time videos: DIR/s{index:04d}.mp4 and DIR/truth.json (the dives' windows)."""
    from aqa_cli.datasets.syndive import session as sessions

    out = Path(args.videos)
    out.mkdir(parents=True, exist_ok=True)
    truth, start = {}, time.time()
    for i in range(args.count):
        plan = sessions.plan_session(args.seed, i, size=(128, 96), fps=25.0)
        target = out / f"s{i:04d}.mp4"
        if not target.exists():
            sessions.write_session(plan, target)
        truth[target.name] = {"duration": plan.duration,
                              "dives": [[d.start, d.end, d.number, d.height] for d in plan.dives]}
        if i % 10 == 0:
            print(f"video {i}: {plan.duration:.1f} s, {time.time() - start:.0f} s", file=sys.stderr, flush=True)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))


def train(args) -> None:
    """Train on DIR/*.npz and save the locator as an aqa checkpoint (synthetic data, said in `data`)."""
    files = sorted(Path(args.data).glob("s*.npz"))[:args.sessions]
    examples = [(z["frames"], z["labels"]) for z in map(np.load, files)]
    cfg = locate.LocatorConfig()
    start = time.time()
    log = lambda stage, step, loss: print(f"{stage} {step}: loss {loss:.4f} ({time.time() - start:.0f} s)",
                                          file=sys.stderr, flush=True)
    locator = locate.train_locator(examples, cfg, frame_steps=args.frame_steps, epochs=args.epochs, seed=args.seed,
                                   shrink=args.shrink, log=log)
    minutes = (time.time() - start) / 60
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    data = {"name": "syndive-sessions", "source": "SynDive sessions (synthetic)", "synthetic": True,
            "version": "1", "train_samples": len(examples), "seed": args.data_seed, "fps": cfg.fps,
            "note": "generated sessions of SynDive renderings, 1-4 dives each; synthetic, not real footage"}
    ckpt = locator.checkpoint(data=data)
    ckpt.train_config["recipe"] = {"frame_steps": args.frame_steps, "epochs": args.epochs, "seed": args.seed,
                                   "shrink": args.shrink,
                                   "minutes": round(minutes, 1), "threads": 1}
    ckpt.source_revision = revision
    ckpt.save(args.out)
    print(f"saved {args.out} after {minutes:.1f} min", file=sys.stderr)


def measure(args) -> None:
    """find_dives on every held-out video; print and write the table of the goals."""
    truth = json.loads((Path(args.videos) / "truth.json").read_text())
    locator = locate.load_locator(args.weights)
    for key in ("threshold", "min_length", "merge_gap", "pad"):
        if getattr(args, key) is not None:
            setattr(locator.config, key, getattr(args, key))
    ious, found_ok, false, n_found, n_true, seconds, video_s = [], 0, 0, 0, 0, 0.0, 0.0
    rows = []
    for name, t in sorted(truth.items())[:args.count]:
        start = time.perf_counter()
        found = locate.find_dives(Path(args.videos) / name, locator)
        seconds += time.perf_counter() - start
        video_s += t["duration"]
        best, ok, bad = locate.match([(w.start, w.end) for w in found], [(a, b) for a, b, *_ in t["dives"]])
        ious += best
        found_ok, false, n_found, n_true = found_ok + ok, false + bad, n_found + len(found), n_true + len(best)
        rows.append({"video": name, "found": [[w.start, w.end, w.confidence] for w in found], "iou": best,
                     "dives": t["dives"]})
    result = {"sessions": len(rows), "dives": n_true, "found_iou_0.7": found_ok, "windows": n_found,
              "false_windows": false, "recall_iou_0.7": round(found_ok / n_true, 4),
              "false_fraction": round(false / max(n_found, 1), 4), "mean_iou": round(float(np.mean(ious)), 4),
              "seconds_per_video_minute": round(60 * seconds / video_s, 2), "video_minutes": round(video_s / 60, 2),
              "config": vars(locator.config)}
    print(json.dumps({k: v for k, v in result.items()}, default=list))
    if args.json:
        Path(args.json).write_text(json.dumps({**result, "rows": rows}, indent=1, default=list))


def validate(args) -> None:
    """The same goals on the rendered validation sessions (DIR/*.npz of seed --seed, read at 10 fps),
    for each threshold: how the settings are chosen without looking at the held-out videos. --mirror:
    the same sessions flipped left-right (the board on the right, as half of poolside footage is)."""
    from aqa_cli.datasets.syndive import session as sessions

    locator = locate.load_locator(args.weights)
    curves = []
    for f in sorted(Path(args.data).glob("s*.npz")):
        index = int(f.stem[1:])
        plan = sessions.plan_session(args.seed, index, size=(128, 96), fps=locator.config.fps)
        frames = np.load(f)["frames"]
        if args.shrink:
            frames = locate.shrunk(frames, args.shrink)
        frames = torch.from_numpy(np.ascontiguousarray(frames[:, :, ::-1] if args.mirror else frames))[None]
        with torch.inference_mode():
            prob = torch.sigmoid(locator.model(frames))[0].numpy()
        curves.append((np.arange(len(prob)) / locator.config.fps, prob, [(d.start, d.end) for d in plan.dives]))
    for threshold in args.thresholds:
        locator.config.threshold = threshold
        ious, ok, false, found_n = [], 0, 0, 0
        for times, prob, truth in curves:
            found = [(w.start, w.end) for w in locate.windows(times, prob, locator.config)]
            best, k, bad = locate.match(found, truth)
            ious, ok, false, found_n = ious + best, ok + k, false + bad, found_n + len(found)
        print(f"threshold {threshold}: {ok}/{len(ious)} dives at IoU >= 0.7 ({ok / len(ious):.3f}), "
              f"{false}/{found_n} false windows, mean IoU {np.mean(ious):.3f}")
        if args.json and threshold == args.thresholds[-1]:
            Path(args.json).write_text(json.dumps(
                {"sessions": len(curves), "dives": len(ious), "found_iou_0.7": ok, "windows": found_n,
                 "false_windows": false, "recall_iou_0.7": round(ok / len(ious), 4),
                 "false_fraction": round(false / max(found_n, 1), 4), "mean_iou": round(float(np.mean(ious)), 4),
                 "threshold": threshold, "mirror": args.mirror}, indent=1))


def speed(args) -> None:
    """Decode + locate time and peak memory on a long 1080p file: generated sessions (synthetic) rendered
    at 128x72 and upscaled 15x (nearest) to 1920x1080 at 25 fps, --minutes long, then `aqa locate` on it
    in a fresh process (its peak RSS from the kernel)."""
    import resource

    from aqa_cli import video
    from aqa_cli.datasets.syndive import session as sessions

    path = Path(args.out)
    if not path.exists():
        def frames():
            total, index = 0, 0
            while total < args.minutes * 60 * 25:
                for frame in sessions.render_session(sessions.plan_session(4, index, size=(128, 72), fps=25.0)):
                    yield np.repeat(np.repeat(frame, 15, axis=0), 15, axis=1)
                    total += 1
                    if total >= args.minutes * 60 * 25:
                        return
                index += 1
        start = time.time()
        video.write_video(path, frames(), fps=25)
        print(f"wrote {path} in {time.time() - start:.0f} s", file=sys.stderr)
    if args.repeat > 1:
        path = _repeat(path, args.repeat)
    info = video.probe(path)
    cmd = [sys.executable, "-c", "import sys, torch; torch.set_num_threads(1); from aqa_cli.cli import main; "
           "sys.argv = ['aqa', 'locate', '-q', '-f', 'csv', sys.argv[1]] + sys.argv[2:]; main()", str(path)]
    if args.weights:
        cmd += ["--weights", args.weights]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"video": str(path), "size": [info.width, info.height], "minutes": round(info.duration / 60, 2),
                      "seconds": round(seconds, 1), "seconds_per_video_minute": round(seconds * 60 / info.duration, 2),
                      "peak_rss_mib": round(peak), "rows": len(out.stdout.splitlines()) - 1, "rc": out.returncode}))


def stamp(args) -> None:
    """Record measured numbers in the checkpoint's `metrics` (the weights are not touched)."""
    from aqa_cli.checkpoint import Checkpoint

    ckpt = Checkpoint.load(args.weights)
    keys = ("sessions", "dives", "found_iou_0.7", "windows", "false_windows", "recall_iou_0.7", "false_fraction",
            "mean_iou")
    for split, path in (("val", args.val), ("test", args.test)):
        if path:
            ckpt.metrics[split] = {k: v for k, v in json.loads(Path(path).read_text()).items() if k in keys}
    ckpt.metrics["note"] = args.note
    ckpt.save(args.weights)


def _repeat(path: Path, times: int) -> Path:
    """`path` copied `times` times end to end into PATH-xN.mp4 by remuxing its packets with shifted
    timestamps (no re-encoding): a long file for the price of one."""
    import av

    out = path.with_name(f"{path.stem}-x{times}{path.suffix}")
    if out.exists():
        return out
    with av.open(str(path)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        target = dst.add_stream_from_template(stream)
        span = None
        for k in range(times):
            src.seek(0)
            last = 0
            for packet in src.demux(stream):
                if packet.dts is None:
                    continue
                if span is not None:
                    packet.pts += k * span
                    packet.dts += k * span
                last = max(last, packet.pts + (packet.duration or 0))
                packet.stream = target
                dst.mux(packet)
            span = span or last
    return out


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("data", help="render training sessions")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--count", type=int, default=300)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(run=make_data)
    p = sub.add_parser("videos", help="write held-out sessions as 25 fps videos")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--videos", required=True)
    p.set_defaults(run=make_videos)
    p = sub.add_parser("train", help="train the locator on the rendered sessions")
    p.add_argument("--data", required=True)
    p.add_argument("--data-seed", type=int, default=1)
    p.add_argument("--sessions", type=int, default=10**6)
    p.add_argument("--frame-steps", type=int, default=400)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shrink", type=float, default=0.0, help="share of training frames shown shrunk (locate.train_locator)")
    p.add_argument("--out", required=True)
    p.set_defaults(run=train)
    p = sub.add_parser("measure", help="find_dives on held-out session videos")
    p.add_argument("--weights", required=True)
    p.add_argument("--videos", required=True)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--json")
    for key in ("threshold", "min_length", "merge_gap", "pad"):
        p.add_argument(f"--{key.replace('_', '-')}", type=float)
    p.set_defaults(run=measure)
    p = sub.add_parser("validate", help="the goals on rendered validation sessions, per threshold")
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7])
    p.add_argument("--mirror", action="store_true", help="flip the frames left-right (board on the right)")
    p.add_argument("--shrink", type=float, default=0.0, help="the picture shrunk to this on its edge colour")
    p.add_argument("--json", help="write the last threshold's numbers here")
    p.set_defaults(run=validate)
    p = sub.add_parser("speed", help="decode + locate time and peak RSS on a long 1080p file")
    p.add_argument("--out", required=True, help="the 1080p video (made when missing)")
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=1, help="run on the file copied this many times end to end")
    p.add_argument("--weights")
    p.set_defaults(run=speed)
    p = sub.add_parser("stamp", help="record measured numbers in the checkpoint's metrics")
    p.add_argument("--weights", required=True)
    p.add_argument("--val")
    p.add_argument("--test")
    p.add_argument("--note", default="val: 20 generated sessions (seed 3) read at 10 fps; test: 100 held-out "
                   "generated sessions (seed 2) as 25 fps videos; synthetic")
    p.set_defaults(run=stamp)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
