"""The view of a dive: which side the board is on, and from what height: read, trained and measured.

Every SynDive dive is filmed with the board on the left, so the AQA models trained on it read the
direction of rotation on screen as part of the dive group: mirrored footage turns a forward dive into
an inward one. The view model (models/view.py) reads the clips the Scorer already prepared, so it adds
no decoding; when it sees the board on the right the clips are mirrored (`board_left`) before the AQA
model, which then sees the dive as it was trained to. It also reads the height (1m, 3m, 10m) for the
DD when the coach gives none.

    reader = load_view()                          # bundled weights/syndive-view.pt (synthetic SynDive)
    clips = scorer.prepare("dive.mp4")           # float (N, 3, T, H, W)
    view = reader.read(clips)                     # View(board_side="right", p_right=0.97, height="10m", ...)
    clips = board_left(clips, view)               # mirrored only when the board is on the right

The clips should be prepared as the view checkpoint's `preprocess` says (the bundled one: tiny-mtl's, 3
clips of 32 frames, 56 px crops of 86x64 frames); `ViewReader.prepare` decodes a video that way when
the Scorer's preprocessing differs. Training (`train_view`) draws random horizontal flips, which are the
side labels, and reads the height from the annotations; `evaluate_view` measures both on a split.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqa_cli.checkpoint import Checkpoint, Preprocess, source_revision
from aqa_cli.errors import DataError, WeightsError

SIDES = ("left", "right")
HEIGHTS = ("1m", "3m", "10m")  # SynDive's heights, the height head's classes in this order
VIEW_FILE = "syndive-view.pt"


@dataclass(frozen=True)
class View:
    """What the view model reads from one video: the board's side (and the probability it is on the
    right) and the height with its probability."""

    board_side: str  # "left" | "right"
    p_right: float
    height: str  # one of the checkpoint's height classes, e.g. "10m"
    p_height: float


class ViewReader:
    """A loaded view model: `read` clips (prepared as `preprocess` says) → View."""

    def __init__(self, checkpoint: Checkpoint, path: Path | None = None, device: str = "cpu"):
        from aqa_cli.device import resolve_device
        from aqa_cli.models.view import ViewNet

        self.path = path
        self.device = resolve_device(device)
        self.preprocess = checkpoint.preprocess
        self.heights = tuple(checkpoint.label_maps.get("height") or HEIGHTS)
        self.data = checkpoint.data
        self.metrics = checkpoint.metrics
        self.model = checkpoint.load_into(ViewNet(checkpoint.model_config), path).to(self.device)

    def prepare(self, path: str | Path) -> torch.Tensor:
        """Decode a video into clips as this model was trained on: float (N, 3, clip_len, crop, crop)."""
        from aqa_cli.transforms import clips_from_frames
        from aqa_cli.video import read_even

        p = self.preprocess
        frames = read_even(path, n=p.clips * p.clip_len, size=tuple(p.resize), clip_len=p.clip_len)
        return clips_from_frames(frames, p.clips, p.clip_len, p.crop, p.mean, p.std)

    def logits(self, clips: torch.Tensor) -> dict[str, torch.Tensor]:
        """clips float (B, N, 3, T, H, W) → {"side": (B, 2), "height": (B, K)} on the CPU."""
        with torch.inference_mode():
            out = self.model(clips.to(self.device))
        return {k: v.float().cpu() for k, v in out.items()}

    def read_batch(self, clips: torch.Tensor) -> list[View]:
        """One View per video of clips float (B, N, 3, T, H, W)."""
        out = self.logits(clips)
        p_side, p_height = out["side"].softmax(-1), out["height"].softmax(-1)
        views = []
        for ps, ph in zip(p_side, p_height):
            k = int(ph.argmax())
            views.append(View(SIDES[int(ps.argmax())], float(ps[1]), self.heights[k], float(ph[k])))
        return views

    def read(self, clips: torch.Tensor) -> View:
        """The View of one video's clips float (N, 3, T, H, W) (a Scorer's `prepare`)."""
        if clips.dim() != 5:
            raise ValueError(f"expected one video's clips (N, 3, T, H, W), got {tuple(clips.shape)}")
        return self.read_batch(clips.unsqueeze(0))[0]


def load_view(path: str | Path | None = None, device: str = "cpu") -> ViewReader:
    """Load view weights (default: the bundled weights/syndive-view.pt), checked against their folder's
    manifest; WeightsError in one line for a missing, corrupt or non-view file."""
    from aqa_cli.models.view import BACKBONE
    from aqa_cli.weights import bundled_dir, verify_file

    path = Path(path).expanduser() if path is not None else bundled_dir() / VIEW_FILE
    if path.is_dir():
        raise WeightsError(f"view weights {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise WeightsError(f"view weights not found: {path}")
    verify_file(path)  # size and sha256 against the folder's manifest, as load_model does
    checkpoint = Checkpoint.load(path)  # WeightsError when not an aqa checkpoint
    if checkpoint.model_config.backbone != BACKBONE:
        raise WeightsError(f"{path}: not a view model (its backbone is {checkpoint.model_config.backbone!r})",
                           hint=f"pass view weights such as weights/{VIEW_FILE}")
    return ViewReader(checkpoint, path, device)


def read_view(clips: torch.Tensor, reader: ViewReader | None = None) -> View:
    """The View of one video's clips float (N, 3, T, H, W), by `reader` (default: the bundled weights)."""
    return (reader or load_view()).read(clips)


def board_left(clips: torch.Tensor, view: View) -> torch.Tensor:
    """The clips (..., H, W) as if filmed with the board on the left: mirrored when `view` saw it on the right."""
    return clips.flip(-1) if view.board_side == "right" else clips


# --------------------------------------------------------------------------------------------------
# Training and measuring on a dataset root


class ViewSamples(torch.utils.data.Dataset):
    """A dataset root's split as view samples: {"clips" (N, 3, T, c, c), "side" (), "height" ()}.

    flip: probability of mirroring a sample (training: 0.5, drawn from (seed, epoch, index)); 0 or 1
    for measuring. "side" is 1 when mirrored (SynDive films every board on the left); "height" the
    index in `heights`, -1 when the sample's height is not one of them (left out of the loss).
    """

    def __init__(self, root, split: str, preprocess: Preprocess, train: bool, flip: float, seed: int = 0,
                 heights: tuple[str, ...] = HEIGHTS):
        from aqa_cli.config import ModelConfig
        from aqa_cli.datasets.frames import FramesDataset

        # tiny-mtl's training augmentation (window jitter, zoom, start shift); no flips there: they are ours.
        data = replace(preprocess.data_config(root.root, workers=0), hflip=0.0, cache=train,
                       jitter=3 if train else 0, scale=0.15 if train else 0.0)
        model = ModelConfig(clip_len=preprocess.clip_len, crop_size=preprocess.crop)
        self.frames = FramesDataset(root, split, data, model, train=train, seed=seed)
        self.flip, self.seed, self.heights = flip, seed, heights

    def set_epoch(self, epoch: int) -> None:
        self.frames.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clips = self.frames[index]["clips"]
        rng = np.random.default_rng((self.seed, self.frames.epoch, index, 1))
        mirrored = self.flip >= 1.0 or (self.flip > 0 and rng.random() < self.flip)
        height = self.frames.samples[index].height
        return {"clips": clips.flip(-1) if mirrored else clips, "side": torch.tensor(int(mirrored)),
                "height": torch.tensor(self.heights.index(height) if height in self.heights else -1)}


def _loader(dataset, batch_size: int, shuffle: bool = False, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _batch_metrics(model, batches) -> dict[str, float]:
    """Accuracy of both heads and the mean summed loss over the batches (eval mode, no gradients)."""
    model.eval()
    right = {"side": 0, "height": 0}
    counted = {"side": 0, "height": 0}
    loss = 0.0
    with torch.inference_mode():
        for batch in batches:
            out = model(batch["clips"])
            for head in right:
                target = batch[head]
                known = target >= 0
                right[head] += int((out[head].argmax(-1)[known] == target[known]).sum())
                counted[head] += int(known.sum())
            loss += float(_loss(out, batch)) * len(batch["side"])
    n = max(counted["side"], 1)
    return {"side_acc": right["side"] / n, "height_acc": right["height"] / max(counted["height"], 1),
            "loss": loss / n, "count": counted["side"]}


def _loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Side cross-entropy + height cross-entropy (samples of unknown height left out)."""
    loss = torch.nn.functional.cross_entropy(out["side"], batch["side"])
    if (batch["height"] >= 0).any():
        loss = loss + torch.nn.functional.cross_entropy(out["height"], batch["height"], ignore_index=-1)
    return loss


def evaluate_view(model, root, split: str, preprocess: Preprocess, batch_size: int = 32) -> dict[str, Any]:
    """Side and height accuracy of `model` (a ViewNet or ViewReader) on `split` of `root` (a DatasetRoot
    or path), as filmed ("as_filmed": every SynDive board on the left) and mirrored ("mirrored")."""
    from aqa_cli.datasets.layout import DatasetRoot

    root = root if not isinstance(root, (str, Path)) else DatasetRoot(root)
    net = model.model if isinstance(model, ViewReader) else model
    return {name: _batch_metrics(net, _loader(ViewSamples(root, split, preprocess, False, flip), batch_size))
            for name, flip in (("as_filmed", 0.0), ("mirrored", 1.0))}


def _val_key(metrics: dict[str, Any]) -> tuple[float, float]:
    """What picks the epoch: mean of the four accuracies (side and height, as filmed and mirrored), then
    the lower loss."""
    accs = [m[k] for m in metrics.values() for k in ("side_acc", "height_acc")]
    return sum(accs) / len(accs), -sum(m["loss"] for m in metrics.values())


def train_view(root: str | Path, out: str | Path, preprocess: Preprocess, *, epochs: int = 12,
               batch_size: int = 16, lr: float = 2e-3, seed: int = 0, max_minutes: float = 0.0,
               log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train a view network on `root`'s train split, pick the epoch on val, write the checkpoint to `out`.

    preprocess: how clips are made (the Scorer's: the bundled tiny-mtl's). Adam, cosine decay to 0;
    max_minutes > 0 stops after the epoch that passes the budget. Returns the metrics saved in the
    checkpoint: {"val": {...}, "test": {...}, "epochs": n, "best_epoch": k}.
    """
    from aqa_cli.config import RunConfig, TrainConfig, to_dict
    from aqa_cli.datasets.layout import DatasetRoot
    from aqa_cli.models.view import ViewNet, view_config

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    data_root = DatasetRoot(root)
    heights = {h: sum(s.height == h for s in data_root.split("train")) for h in HEIGHTS}
    if sum(heights.values()) == 0:
        raise DataError(f"{root}: no train dive at {', '.join(HEIGHTS)}: the height head has nothing to learn")
    torch.manual_seed(seed)
    cfg = view_config(heights=len(HEIGHTS))
    model = ViewNet(cfg)
    train_set = ViewSamples(data_root, "train", preprocess, train=True, flip=0.5, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    best, best_state, best_epoch, history = None, None, -1, []
    start = time.monotonic()
    for epoch in range(epochs):
        train_set.set_epoch(epoch)
        model.train()
        total, seen = 0.0, 0
        for batch in _loader(train_set, batch_size, shuffle=True, seed=seed * 1000 + epoch):
            loss = _loss(model(batch["clips"]), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + float(loss.detach()) * len(batch["side"]), seen + len(batch["side"])
        scheduler.step()
        val = evaluate_view(model, data_root, "val", preprocess)
        history.append({"epoch": epoch, "train_loss": total / max(seen, 1), "val": val})
        log(f"epoch {epoch + 1}/{epochs}  train loss {total / max(seen, 1):.3f}  val side "
            f"{val['as_filmed']['side_acc']:.3f}/{val['mirrored']['side_acc']:.3f}  height "
            f"{val['as_filmed']['height_acc']:.3f}/{val['mirrored']['height_acc']:.3f}  "
            f"({(time.monotonic() - start) / 60:.1f} min)")
        if best is None or _val_key(val) > best:
            best, best_epoch = _val_key(val), epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if max_minutes and time.monotonic() - start > max_minutes * 60:
            log(f"time budget of {max_minutes} min spent after epoch {epoch + 1}")
            break
    model.load_state_dict(best_state)
    metrics = {"val": history[best_epoch]["val"], "test": evaluate_view(model, data_root, "test", preprocess),
               "epochs": len(history), "best_epoch": best_epoch + 1,
               "train_minutes": round((time.monotonic() - start) / 60, 2)}
    info = data_root.info
    run = RunConfig(model=cfg, train=TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                                 scheduler="cosine", max_minutes=max_minutes))
    Checkpoint(model=model.state_dict(), model_config=cfg, preprocess=preprocess,
               label_maps={"side": list(SIDES), "height": list(HEIGHTS)}, train_config=to_dict(run),
               metrics=metrics, data={"name": info.name, "source": info.source, "synthetic": info.synthetic,
                                      "version": info.version, "train_samples": len(train_set),
                                      "heights": heights, "note": "board side labels: random mirroring; "
                                      "every SynDive board is filmed on the left"},
               source_revision=source_revision()).save(out)
    return metrics


