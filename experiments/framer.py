"""The framer (issue 29, "half-size diver"): its training frames, its training, and what it buys.

    python experiments/framer.py data --out /work/data/framer-train.npz --dives 4000 --seed 101
    python experiments/framer.py data --out /work/data/framer-val.npz --dives 300 --seed 102
    python experiments/framer.py train --train /work/data/framer-train.npz --val /work/data/framer-val.npz \
        --out weights/syndive-framer.pt
    python experiments/framer.py wide --out /work/data/syndive-wide2-hd --dives 200 --k 2 --scale 2 --seed 103
    python experiments/framer.py aqa /work/data/syndive-wide2-hd [--no-framer|--no-relocate|--no-hold|--no-locate]

Every picture here is a SynDive rendering (synthetic). `data` renders single frames of SynDive dives
(seeds of their own, no dive of the bundled models' sets) three ways, each labelled with the box the
replay camera shows (centre and height as fractions of the frame, see aqa_cli/models/framer.py):
- as SynDive films them (20 %): the box is the whole frame;
- filmed wider (55 %): the same scene through a camera 1.15-3.5x wider, its centre moved so the replay
  camera's box stays in the picture: the box is where that box lands;
- shrunk (25 %): the replay camera's picture shrunk to 35-90 % and placed anywhere on a canvas of its
  edge colour, the way an edited video letterboxes a small picture.
Half the frames are mirrored (the box too); half are first shrunk to 86x64 as the bundled tiny-mtl
decodes. `wide` renders whole dives through a camera 2x wider than the replay camera, centred on it,
as videos with their annotations; `aqa` scores them with the bundled model as `aqa score` does, or with
one of its steps switched off. Results and the tries: experiments/framer.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from aqa_cli.datasets.syndive import synth
from aqa_cli.datasets.syndive.motion import camera
from aqa_cli.datasets.syndive.render import Camera, render_frame

RENDER = (171, 128)  # SynDive's stored size (width, height)
INPUT = (96, 72)  # the framer's input (models/framer.py)


def resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one uint8 (H, W, 3) frame to (width, height) = size."""
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    y = torch.nn.functional.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False)
    return y[0].round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def shrink_onto_canvas(frame: np.ndarray, s: float, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """The frame shrunk by s and placed at random on a canvas of its edge colour: (canvas, cx, cy)."""
    h, w, _ = frame.shape
    small = resize(frame, (max(2, round(w * s)), max(2, round(h * s))))
    edge = np.median(np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]), axis=0)
    canvas = np.empty_like(frame)
    canvas[:] = edge.astype(np.uint8)
    top = int(rng.integers(0, h - small.shape[0] + 1))
    left = int(rng.integers(0, w - small.shape[1] + 1))
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas, (left + small.shape[1] / 2) / w, (top + small.shape[0] / 2) / h


def dive_frames(seed: int, index: int, per_dive: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_dive` labelled frames of dive `index`: uint8 (K, 72, 96, 3) and float (K, 3) (cx, cy, s)."""
    spec, rng = synth.make_spec(seed, index, synth.DEFAULT_HEIGHTS)
    plan = synth.plan_of(spec)
    scene = synth.make_scene(rng, plan, RENDER, int(rng.integers(2**31)))
    w, h = RENDER
    view, dist = float(rng.uniform(2.3, 2.7)), float(rng.uniform(8.0, 14.0))
    offset = (float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.1, 0.2)))
    yaw = float(rng.uniform(-0.3, 0.3))
    images, labels = [], []
    for _ in range(per_dive):
        t = float(rng.uniform(0.0, plan.entry + spec.after_entry))
        replay = camera(plan, t, h, view, dist, offset, rng.normal(0.0, 0.01, 2), yaw)
        shown = h * dist / replay.f  # metres the replay camera shows top to bottom
        kind = rng.random()
        if kind < 0.2:
            image, box = render_frame(scene, replay, plan.pose(t), plan.splash_at(t), t, rng), (0.5, 0.5, 1.0)
        elif kind < 0.75:
            k = float(np.exp(rng.uniform(np.log(1.15), np.log(3.5))))
            dx = float(rng.uniform(-1, 1)) * (k - 1) / 2 * shown * (w / h) * 0.9
            dy = float(rng.uniform(-1, 1)) * (k - 1) / 2 * shown * 0.9
            wide = Camera(pos=(replay.pos[0] - dx, replay.pos[1] - dy, dist), f=h * dist / (k * shown), yaw=yaw)
            image = render_frame(scene, wide, plan.pose(t), plan.splash_at(t), t, rng)
            box = (0.5 + (h / w) * dx / (k * shown), 0.5 - dy / (k * shown), 1.0 / k)
        else:
            s = float(rng.uniform(0.35, 0.9))
            image, cx, cy = shrink_onto_canvas(render_frame(scene, replay, plan.pose(t), plan.splash_at(t), t, rng),
                                               s, rng)
            box = (cx, cy, s)
        if rng.random() < 0.5:
            image, box = image[:, ::-1], (1.0 - box[0], box[1], box[2])
        if rng.random() < 0.5:  # decoded small first, as the Scorer decodes for tiny-mtl
            image = resize(np.ascontiguousarray(image), (86, 64))
        images.append(resize(np.ascontiguousarray(image), INPUT))
        labels.append(box)
    return np.stack(images), np.asarray(labels, np.float32)


def _one(job: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    torch.set_num_threads(1)
    return dive_frames(*job)


def make_data(args) -> None:
    from multiprocessing import Pool

    start = time.monotonic()
    jobs = [(args.seed, i, args.per_dive) for i in range(args.dives)]
    images, labels = [], []
    with Pool(args.workers) as pool:
        for i, (x, y) in enumerate(pool.imap(_one, jobs, chunksize=4)):
            images.append(x)
            labels.append(y)
            if (i + 1) % 100 == 0:
                print(f"{i + 1}/{args.dives} dives ({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, images=np.concatenate(images), labels=np.concatenate(labels))
    print(f"{sum(len(x) for x in images)} frames → {args.out} ({time.monotonic() - start:.0f} s)", file=sys.stderr)


def to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) → float (B, 3, H, W), /255 - 0.5 (the framer's normalisation)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).sub(0.5)


def box_errors(pred: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Mean absolute centre error (fraction of the frame) and mean |log s| error of (B, 3) predictions."""
    return {"centre": float((pred[:, :2] - labels[:, :2]).abs().mean()),
            "log_scale": float((pred[:, 2] - labels[:, 2].log()).abs().mean())}


def train(args) -> None:
    from aqa_cli.checkpoint import Checkpoint, Preprocess, source_revision
    from aqa_cli.config import RunConfig, TrainConfig, to_dict
    from aqa_cli.models.framer import FramerNet, framer_config

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tr, va = np.load(args.train), np.load(args.val)
    x_val, y_val = to_input(va["images"]), torch.from_numpy(va["labels"])
    images, labels = tr["images"], torch.from_numpy(tr["labels"])
    target = torch.cat([labels[:, :2], labels[:, 2:].log()], dim=1)
    cfg = framer_config()
    model = FramerNet(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (len(images) // args.batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(args.seed)
    best, best_state, history, start = None, None, [], time.monotonic()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        for b in range(len(images) // args.batch):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x = to_input(images[idx.numpy()])
            x = x * torch.empty(len(x), 3, 1, 1).uniform_(0.8, 1.2, generator=gen)  # colour gains
            loss = torch.nn.functional.smooth_l1_loss(model(x), target[idx], beta=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
        model.eval()
        with torch.inference_mode():
            val = box_errors(torch.cat([model(x_val[i:i + 256]) for i in range(0, len(x_val), 256)]), y_val)
        history.append({"epoch": epoch + 1, "train_loss": total / (len(images) // args.batch), "val": val})
        print(f"epoch {epoch + 1}/{args.epochs} loss {history[-1]['train_loss']:.4f} val centre {val['centre']:.4f} "
              f"log-scale {val['log_scale']:.4f} ({(time.monotonic() - start) / 60:.1f} min)", file=sys.stderr, flush=True)
        key = val["centre"] + val["log_scale"]
        if best is None or key < best:
            best, best_state = key, {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_epoch = epoch + 1
    model.load_state_dict(best_state)
    torch.save(best_state, args.out.with_suffix(".state.pt"))  # the weights, whatever happens to the checkpoint
    metrics = {"val": history[best_epoch - 1]["val"], "best_epoch": best_epoch, "epochs": args.epochs,
               "history": history, "train_minutes": round((time.monotonic() - start) / 60, 2)}
    run = RunConfig(model=cfg, train=TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                                                 seed=args.seed, scheduler="onecycle"))
    Checkpoint(model=model.state_dict(), model_config=cfg, preprocess=Preprocess(clips=1, clip_len=1, resize=INPUT, crop=INPUT[1],
                                                                      mean=(0.5,) * 3, std=(1.0,) * 3, frames=1),
               train_config=to_dict(run), metrics=metrics,
               data={"name": "syndive", "source": "SynDive frames (synthetic renderings)", "synthetic": True, "train_frames": len(images),
                     "note": "single SynDive frames: as filmed, through 1.15-3.5x wider cameras, and shrunk "
                             "onto their edge colour; half mirrored (experiments/framer.py)"},
               source_revision=source_revision()).save(args.out)
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}), flush=True)


def render_wide(spec, rng: np.random.Generator, k: float, frames: int = 103, size: tuple[int, int] = RENDER):
    """A dive's frames, uint8 (H, W, 3) each, through a camera k times wider than SynDive's replay camera
    and centred where it points (render_dive's draws and timing, the focal length divided by k)."""
    plan = synth.plan_of(spec)
    w, h = size
    scene = synth.make_scene(rng, plan, size, int(rng.integers(2**31)))
    view, dist = float(rng.uniform(2.3, 2.7)), float(rng.uniform(8.0, 14.0))
    offset = (float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.1, 0.2)))
    yaw = float(rng.uniform(-0.3, 0.3))
    shake_amp = float(rng.uniform(0.005, 0.03))
    shake = np.cumsum(rng.normal(0.0, shake_amp, (frames, 2)), axis=0) * 0.5
    shake -= shake.mean(axis=0)
    step = (plan.entry + spec.after_entry) / frames
    for i in range(frames):
        t = i * step
        replay = camera(plan, t, h, view, dist, offset, shake[i], yaw)
        yield render_frame(scene, Camera(pos=replay.pos, f=replay.f / k, yaw=yaw), plan.pose(t), plan.splash_at(t), t, rng)


def _wide_one(job: tuple[str, int, int, float, int]) -> dict:
    from aqa_cli.video import write_video

    out, seed, index, k, scale = job
    spec, rng = synth.make_spec(seed, index, synth.DEFAULT_HEIGHTS)
    sample = synth.make_sample(spec, np.random.default_rng([seed, index, 1]))
    name = f"{index:04d}.mp4"
    size = (RENDER[0] * scale, RENDER[1] * scale)
    write_video(Path(out) / name, render_wide(spec, rng, k, size=size), fps=25.0, crf=23)
    return {"video": name, "dive_number": spec.number, "height": spec.height, "final_score": sample.final_score}


def make_wide(args) -> None:
    from multiprocessing import Pool

    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(args.out), args.seed, i, args.k, args.scale) for i in range(args.dives)]
    with Pool(args.workers) as pool:
        rows = list(pool.imap(_wide_one, jobs, chunksize=2))
    (args.out / "truth.json").write_text(json.dumps({"k": args.k, "seed": args.seed, "scale": args.scale,
                                                     "dives": rows}, indent=1))
    print(f"{len(rows)} dives through a {args.k}x wider camera → {args.out}", file=sys.stderr)


def score_wide(args) -> None:
    """Dive number accuracy (true height given) and score Spearman of the bundled model on a `wide` set,
    as `aqa score` runs it or with steps switched off (--no-framer, --no-relocate, --no-hold, --no-locate:
    the whole file, which is the dive's own SynDive window)."""
    from scipy.stats import spearmanr

    import aqa_cli.video
    from aqa_cli import load_model
    from aqa_cli.scoring import Scorer

    torch.set_num_threads(args.threads)
    if args.no_relocate:
        Scorer._relocate = lambda *_: None
    if args.no_hold:
        read_even = aqa_cli.video.read_even
        aqa_cli.video.read_even = lambda *a, **k: read_even(*a, **{**k, "hold_end": False})
    truth = json.loads((args.root / "truth.json").read_text())
    scorer = load_model(None, device="cpu", dive_check=False, reframe=not args.no_framer,
                        locate=False if args.no_locate else None)
    right, pred, true, zooms = 0, [], [], []
    for row in truth["dives"]:
        r = scorer.score(args.root / row["video"], height=row["height"])
        right += r.dive_number == row["dive_number"]
        pred.append(r.final_score)
        true.append(row["final_score"])
        zooms.append(r.zoom if r.zoom is not None else float("nan"))
    n, off = len(truth["dives"]), [k for k in ("no_framer", "no_relocate", "no_hold", "no_locate") if getattr(args, k)]
    print(f"{args.root.name} (k={truth['k']}) {' '.join(off) or 'as shipped'}: dive number {right}/{n} = "
          f"{right / n:.3f}, Spearman {spearmanr(pred, true)[0]:.3f}, median zoom "
          f"{np.nanmedian(zooms) if zooms and not all(z != z for z in zooms) else float('nan'):.2f}, "
          f"reframed {sum(z >= 1.25 for z in zooms if z == z)}/{n}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("data")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dives", type=int, default=4000)
    p.add_argument("--per-dive", type=int, default=8)
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--workers", type=int, default=2)
    p = sub.add_parser("train")
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--val", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("wide")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dives", type=int, default=200)
    p.add_argument("--k", type=float, default=2.0)
    p.add_argument("--scale", type=int, default=1, help="render at this multiple of SynDive's 171x128")
    p.add_argument("--seed", type=int, default=103)
    p.add_argument("--workers", type=int, default=2)
    p = sub.add_parser("aqa")
    p.add_argument("root", type=Path)
    p.add_argument("--threads", type=int, default=1)
    for flag in ("--no-framer", "--no-relocate", "--no-hold", "--no-locate"):
        p.add_argument(flag, action="store_true")
    args = parser.parse_args()
    {"data": make_data, "train": train, "wide": make_wide, "aqa": score_wide}[args.cmd](args)


if __name__ == "__main__":
    main()
