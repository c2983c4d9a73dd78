"""Issue 29's robustness table: the five example dives under the edits a club's own footage differs by.

    python experiments/edits.py --out /tmp/edits [--weights NAME] [--height]

Each edit is made here with PyAV from the decoded frames (this machine has no ffmpeg): mirror (hflip),
1 s and 3 s of standing before (the first frame held, as ffmpeg's tpad=start_mode=clone) or of water
after (the last frame held), the second half of the dive alone, 1080p60 (upscaled, each frame shown
twice) and a half-size diver (the picture shrunk to half and centred on its own edge colour). Every
video is scored through the public API (`load_model`, `Scorer.score`: what `aqa score` runs, with its
defaults unless --height gives each example its height from examples/ground_truth.csv), and the table
gives, per edit, how many of the five read the original's dive number and the largest score move.
The examples are SynDive renderings (synthetic).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
INTACT = ("mirror", "pad 1 s before", "pad 3 s before", "pad 1 s after", "pad 3 s after", "1080p60", "half-size diver")


def read_all(path: Path) -> tuple[np.ndarray, float]:
    """Every frame of a video: uint8 (T, H, W, 3) and its frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate)


def half_size(frames: np.ndarray) -> np.ndarray:
    """The picture at half size, centred on a canvas of its own size filled with each frame's edge colour."""
    t, h, w, _ = frames.shape
    small = frames[:, ::2, ::2]
    out = np.empty_like(frames)
    out[:] = np.median(np.concatenate([frames[:, 0], frames[:, -1]], axis=1), axis=1)[:, None, None, :].astype(np.uint8)
    top, left = (h - small.shape[1]) // 2, (w - small.shape[2]) // 2
    out[:, top:top + small.shape[1], left:left + small.shape[2]] = small
    return out


def upscale(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of every frame to (W, H) = size."""
    import torch

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    y = torch.nn.functional.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False)
    return y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def edits(frames: np.ndarray, fps: float) -> dict[str, tuple[np.ndarray, float]]:
    """Edit name → (frames, fps)."""
    n = int(round(fps))
    hold = lambda frame, k: np.repeat(frame[None], k, axis=0)  # noqa: E731
    return {
        "original": (frames, fps),
        "mirror": (frames[:, :, ::-1].copy(), fps),
        "pad 1 s before": (np.concatenate([hold(frames[0], n), frames]), fps),
        "pad 3 s before": (np.concatenate([hold(frames[0], 3 * n), frames]), fps),
        "pad 1 s after": (np.concatenate([frames, hold(frames[-1], n)]), fps),
        "pad 3 s after": (np.concatenate([frames, hold(frames[-1], 3 * n)]), fps),
        "second half": (frames[len(frames) // 2:], fps),
        "1080p60": (np.repeat(upscale(frames, (1920, 1080)), 2, axis=0), 2 * fps),
        "half-size diver": (half_size(frames), fps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the edited videos and results.json")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--height", action="store_true", help="give each example its height (ground_truth.csv)")
    args = parser.parse_args()

    import torch

    from aqa_cli import load_model
    from aqa_cli.video import write_video

    torch.set_num_threads(1)
    truth = {r["video"]: r for r in csv.DictReader(open(EXAMPLES / "ground_truth.csv"))}
    scorer = load_model(args.weights, device="cpu", dive_check=False)
    rows = []
    for video in sorted(EXAMPLES.glob("syndive_*.mp4")):
        frames, fps = read_all(video)
        height = truth.get(video.name, {}).get("height") if args.height else None
        for name, (clip, rate) in edits(frames, fps).items():
            path = args.out / video.stem / (name.replace(" ", "_") + ".mp4")
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, clip, fps=rate, crf=18)
            r = scorer.score(path, height=height)
            rows.append({"video": video.name, "edit": name, "dive": r.dive_number, "final": r.final_score,
                         "warning": r.warning, **{k: getattr(r, k, None) for k in ("window_start", "window_end", "zoom", "framing")}})
            print(f"{video.name:28s} {name:16s} {r.dive_number or '-':7s} {r.final_score:7.2f}", flush=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    base = {r["video"]: r for r in rows if r["edit"] == "original"}
    print("\n| edit | same dive number | largest score move | dives read |")
    print("|---|---|---|---|")
    for name in [e for e in dict.fromkeys(r["edit"] for r in rows) if e != "original"]:
        these = [r for r in rows if r["edit"] == name]
        same = sum(r["dive"] == base[r["video"]]["dive"] for r in these)
        move = max(abs(r["final"] - base[r["video"]]["final"]) for r in these)
        read = ", ".join(f"{base[r['video']]['dive']}→{r['dive']}" for r in these if r["dive"] != base[r["video"]]["dive"])
        print(f"| {name}{'' if name in INTACT else ' (dive not intact)'} | {same}/{len(these)} | {move:.1f} | {read or '-'} |")


if __name__ == "__main__":
    main()
