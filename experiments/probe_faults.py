"""Which of SynDive's hidden execution faults does a model's video feature hold? (a diagnostic, not a test)

Runs a C3D-AVG checkpoint over the train and test splits of a SynDive root, keeps the shared video
feature (fc6's output, `feature_dim` wide) of every dive, fits one ridge regression per hidden fault
(see aqa_cli/datasets/synth.py; signed faults as magnitudes, but entry_tilt_deg) on the train split
and prints the Spearman correlation of its predictions with the truth on the test split. A fault the feature barely
holds (test Spearman near 0) is one the heads cannot read, whatever they are trained on.

Run (~1 min for 900 dives on 2 cores):
    python experiments/probe_faults.py weights/syndive-tiny-mtl.pt data/syndive3-1000
Measured in session 14 (the bundled weights of session 11, SynDive 3 seed 1, 700 train / 200 test
dives, lambda 100): splash 0.94, rotation error 0.77, the same rotation signed as the body leans on
screen (entry_tilt_deg, which the splash cannot tell) 0.22, twist error 0.74 (twisting dives have one,
the others none), loose 0.69, knee bend 0.32, legs apart 0.35, height loss 0.29, distance 0.18,
execution 0.81 (train: 0.96, 0.84, 0.53, 0.80, 0.83, 0.58, 0.56, 0.54, 0.48, 0.94).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.utils.data import DataLoader

from aqa_cli.config import DataConfig
from faults import fault_sizes

from aqa_cli.datasets.frames import FramesDataset, collate
from aqa_cli.datasets.layout import DatasetRoot
from aqa_cli.metrics import spearman
from aqa_cli.checkpoint import Checkpoint

FAULTS = ("splash_m", "rotation_error_deg", "entry_tilt_deg", "twist_error_deg", "loose", "knee_bend_deg", "legs_apart_deg",
          "height_loss", "distance_m", "execution")


def features(model, root: DatasetRoot, split: str, data: DataConfig) -> tuple[np.ndarray, list]:
    """fc6 outputs (S, feature_dim) of every dive of `split`, in split order, and the samples."""
    ds = FramesDataset(root, split, data, model.config)
    kept: list[torch.Tensor] = []
    # a temporal head's fc6 gives (B, D, T) and its heads read the mean over the T steps
    hook = model.heads.fc6.register_forward_hook(
        lambda _m, _i, out: kept.append((out.mean(2) if out.dim() == 3 else out).detach()))
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=16, collate_fn=collate):
            model(batch["clips"])
    hook.remove()
    return torch.cat(kept).numpy(), ds.samples


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Weights (D,) and intercept of ridge regression on standardised features."""
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ (y - y.mean()))
    return w, float(y.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", help="a C3D-AVG checkpoint (e.g. weights/syndive-tiny-mtl.pt)")
    ap.add_argument("root", help="the SynDive root it was trained on (its train and test splits)")
    ap.add_argument("--lam", type=float, default=100.0, help="ridge penalty on standardised features")
    args = ap.parse_args()

    ckpt = Checkpoint.load(args.weights)
    model = ckpt.build_model()
    root = DatasetRoot(args.root)
    if not root.info.synthetic:
        raise SystemExit(f"{args.root}: hidden faults exist only in SynDive roots")
    data = ckpt.preprocess.data_config(args.root)
    (xa, train), (xb, test) = (features(model, root, s, data) for s in ("train", "test"))
    mu, sd = xa.mean(0), xa.std(0) + 1e-6
    xa, xb = (xa - mu) / sd, (xb - mu) / sd
    print(f"{'fault':20s} {'train':>6s} {'test':>6s}   ridge on {xa.shape[1]} fc6 features, lambda {args.lam:g}")
    for name in FAULTS:
        ya, yb = (np.concatenate([fault_sizes(s, [name]) for s in part]) for part in (train, test))
        w, b = ridge(xa, ya, args.lam)
        print(f"{name:20s} {spearman(xa @ w + b, ya):6.2f} {spearman(xb @ w + b, yb):6.2f}")


if __name__ == "__main__":
    main()
