"""Training throughput (clips/s) and data-loader samples/s: aqa's memory-mapped frames vs one JPEG per frame.

Writes a temporary synthetic dataset root (smooth moving gradients plus noise, 171x128, the 103-frame
window plus 3 frames of padding each side) and the same frames as one JPEG file per frame at 640x360,
which is how the MTL-AQA reference implementation reads its data (PIL open + resize to 171x128 per
frame, then crop, flip and normalise). Then prints:

  1. loader samples/s, single process: aqa's FramesDataset (train mode: jitter, random crop, flip,
     normalise) against the JPEG-per-frame loader producing the same (103, 3, 112, 112) input, and
     their ratio;
  2. training throughput of the model a config builds (default tiny-mtl): clips/s through forward,
     loss, backward and an Adam step, fed by the real FramesDataset loader.

Pillow is needed for the JPEG side only, and only by this benchmark (aqa itself never reads JPEGs):
    pip install pillow
Run: python benchmarks/bench_train.py [--samples 12] [--steps 6] [--config tiny-mtl]
(about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from aqa_cli import models
from aqa_cli.config import load_config
from aqa_cli.datasets.frames import FramesDataset, collate
from aqa_cli.datasets.layout import DatasetInfo, DatasetRoot, Sample, save_frames, write_root
from aqa_cli.losses import compute_loss
from aqa_cli.transforms import IMAGENET_MEAN, IMAGENET_STD

PAD, WINDOW = 3, 103
JPEG_SIZE = (640, 360)  # (width, height) of the JPEG frames the reference loader reads


def synthetic_frames(rng: np.random.Generator, t: int, h: int, w: int) -> np.ndarray:
    """uint8 (t, h, w, 3): a gradient drifting over time plus mild noise (JPEG-compressible, not flat)."""
    y, x = np.mgrid[0:h, 0:w]
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        base = (x * 255 / w + 3 * i) % 256
        frames[i, ..., 0] = base
        frames[i, ..., 1] = (y * 255 / h + 2 * i) % 256
        frames[i, ..., 2] = (base + rng.integers(0, 24, (h, w))) % 256
    return frames


def build(folder: Path, n: int) -> Path:
    """Write the dataset root (frames/*.npy) and jpeg/<id>/%05d.jpg; return the root."""
    from PIL import Image

    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        frames = synthetic_frames(rng, WINDOW + 2 * PAD, 128, 171)
        save_frames(folder / "frames" / f"s{i}.npy", frames)
        big = synthetic_frames(rng, WINDOW + 2 * PAD, JPEG_SIZE[1], JPEG_SIZE[0])
        out = folder / "jpeg" / f"s{i}"
        out.mkdir(parents=True)
        for k, frame in enumerate(big):
            Image.fromarray(frame).save(out / f"{k:05d}.jpg", quality=90)
        samples.append(Sample(id=f"s{i}", final_score=40.0 + i, difficulty=2.0, position=i % 3, armstand=0,
                              rotation_type=i % 4, ss_no=3, tw_no=0, commentary="a tidy dive with little splash"))
    ids = [s.id for s in samples]
    write_root(folder, DatasetInfo(name="bench", source="benchmark (synthetic)", synthetic=True, pad=PAD),
               samples, {"train": ids, "val": [], "test": []})
    return folder


def jpeg_item(folder: Path, rng: np.random.Generator, crop: int = 112) -> torch.Tensor:
    """The reference loader's work for one sample: 103 JPEG decodes + PIL resize + crop + flip + normalise."""
    from PIL import Image

    files = sorted(folder.iterdir())
    start = PAD + int(rng.integers(-3, 4))
    flip = rng.random() < 0.5
    mean = np.array(IMAGENET_MEAN, np.float32)
    std = np.array(IMAGENET_STD, np.float32)
    out = np.empty((WINDOW, 3, crop, crop), np.float32)
    for k, path in enumerate(files[start:start + WINDOW]):
        img = Image.open(path).convert("RGB").resize((171, 128), Image.BILINEAR)
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        left, top = (171 - crop) // 2, (128 - crop) // 2
        arr = np.asarray(img.crop((left, top, left + crop, top + crop)), np.float32) / 255.0
        out[k] = ((arr - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(out)


def rate(fn, n: int) -> float:
    fn(0)  # warm-up (page cache, first-call allocations)
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--steps", type=int, default=6, help="timed training steps")
    ap.add_argument("--config", default="tiny-mtl")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = build(Path(tmp), args.samples)
        cfg = load_config(args.config, [f"data.root={root}", "data.workers=0"])
        ds = FramesDataset(DatasetRoot(root), "train", cfg.data, cfg.model, train=True)
        rng = np.random.default_rng(0)
        npy = rate(lambda i: ds[i % len(ds)], args.samples)
        jpg = rate(lambda i: jpeg_item(root / "jpeg" / f"s{i % args.samples}", rng), args.samples)
        print(f"loader, 1 process, {torch.get_num_threads()} torch threads")
        print(f"  aqa memmap .npy      {npy:8.2f} samples/s")
        print(f"  JPEG per frame (PIL) {jpg:8.2f} samples/s   ({JPEG_SIZE[0]}x{JPEG_SIZE[1]} JPEGs)")
        print(f"  ratio                {npy / jpg:8.1f}x")

        from aqa_cli.text import Vocabulary

        vocab = Vocabulary.build(["a tidy dive with little splash"])
        cfg.model.vocab_size = len(vocab)
        ds = FramesDataset(DatasetRoot(root), "train", cfg.data, cfg.model, vocab=vocab, train=True)
        model = models.build_model(cfg.model)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        loader = DataLoader(ds, batch_size=cfg.train.batch_size, shuffle=True, collate_fn=collate)
        model.train()

        def step(batch):
            captions = batch["caption"] if model.captioner is not None else None
            out = model(batch["clips"], captions=captions)
            loss, _ = compute_loss(out, batch, cfg.train, 17.0, 3.0)
            opt.zero_grad()
            loss.backward()
            opt.step()

        batches = iter(loader)
        step(next(batches))  # warm-up
        n_clips, t0 = 0, time.perf_counter()
        for _ in range(args.steps):
            batch = next(batches, None)
            if batch is None:  # start another epoch
                batches = iter(loader)
                batch = next(batches)
            step(batch)
            n_clips += batch["clips"].shape[0] * batch["clips"].shape[1]
        seconds = time.perf_counter() - t0
        print(f"training {args.config} (batch {cfg.train.batch_size}, {cfg.data.clips} clips/sample), "
              "data loading included:")
        print(f"  {n_clips / seconds:8.2f} clips/s  ({seconds / args.steps:.2f} s/step)")


if __name__ == "__main__":
    main()
