"""Reframing: a diver filmed wider than the models learned is cropped back to the framing they know.

SynDive's replay camera follows the diver and zooms so a straight body fills about 70 % of the picture;
the AQA models learned that framing only, and read a diver at half that size as another dive. The framer
(models/framer.py) reads each decoded frame and gives the box that camera would have shown; the boxes
are smoothed in time, and when the picture is clearly wider than the models' (median zoom >= MIN_ZOOM)
the scored span is decoded again at a size where the box keeps the model's resolution, and each frame is
cropped to its box. Footage framed as SynDive's is left as decoded, so its scores do not change.

    framer = load_framer()                      # bundled weights/syndive-framer.pt (synthetic SynDive)
    framing = framer.frame(frames)              # frames uint8 (T, H, W, 3): the Scorer's decoded frames
    if framing.needed:
        big = read_even(path, n=T, size=decode_size(framing, (W, H)))
        frames = crop(big, framing, (W, H))     # uint8 (T, H, W, 3), each frame its own box
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aqa_cli.checkpoint import Checkpoint
from aqa_cli.errors import WeightsError

FRAMER_FILE = "syndive-framer.pt"
MIN_ZOOM = 1.25  # a median zoom below this is the models' own framing (as filmed it reads 1.0-1.1)
MAX_ZOOM = 4.0  # a box smaller than a quarter of the frame is taken as a quarter (a diver that far is lost)
SMOOTH = 9  # frames in the running median over time (the 96 frames of a dive: about 0.4 s)


@dataclass(frozen=True)
class Framing:
    """The framer's boxes for T frames, smoothed in time: float (T, 3) of (cx, cy, s) (centre as
    fractions of the frame, s the box height / frame height, the box with the frame's aspect), and the
    zoom they ask for (1 / median s)."""

    boxes: np.ndarray
    zoom: float

    @property
    def needed(self) -> bool:
        """Whether the footage is framed wider than the models learned (then it is cropped)."""
        return self.zoom >= MIN_ZOOM


class Framer:
    """A loaded framer network: `frame(frames)` → Framing."""

    def __init__(self, checkpoint: Checkpoint, path: Path | None = None, device: str = "cpu"):
        from aqa_cli.device import resolve_device
        from aqa_cli.models.framer import FramerNet, input_size

        self.path = path
        self.device = resolve_device(device)
        self.size = input_size(checkpoint.model_config)
        self.metrics = checkpoint.metrics
        self.data = checkpoint.data
        self.model = checkpoint.load_into(FramerNet(checkpoint.model_config), path).to(self.device)

    def boxes(self, frames: np.ndarray) -> np.ndarray:
        """Each frame's box as the network reads it: uint8 (T, H, W, 3) → float (T, 3) (cx, cy, s)."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (self.size[1], self.size[0]):
            x = torch.nn.functional.interpolate(x, size=(self.size[1], self.size[0]), mode="bilinear",
                                                align_corners=False).round().clamp(0, 255)
        with torch.inference_mode():
            out = self.model(x.div(255.0).sub(0.5).to(self.device)).float().cpu().numpy()
        out[:, 2] = np.exp(out[:, 2])
        return out

    def frame(self, frames: np.ndarray) -> Framing:
        """The smoothed boxes of frames uint8 (T, H, W, 3) (in time order) and the zoom they ask for."""
        boxes = smooth(self.boxes(frames))
        return Framing(boxes, float(1.0 / np.median(boxes[:, 2])))


def smooth(boxes: np.ndarray, width: int = SMOOTH) -> np.ndarray:
    """Running median over time of float (T, 3) boxes (edges padded), s clipped to [1 / MAX_ZOOM, 1] and
    each box moved inside the frame: a crop never shows what is outside the picture."""
    half = min(width, len(boxes)) // 2
    padded = np.concatenate([boxes[:1].repeat(half, 0), boxes, boxes[-1:].repeat(half, 0)])
    out = np.stack([np.median(padded[i:i + 2 * half + 1], axis=0) for i in range(len(boxes))])
    out[:, 2] = out[:, 2].clip(1.0 / MAX_ZOOM, 1.0)
    for k in (0, 1):
        out[:, k] = out[:, k].clip(out[:, 2] / 2, 1 - out[:, 2] / 2)
    return out


def decode_size(framing: Framing, size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) to decode at so that the smallest box is `size` = (width, height) pixels."""
    zoom = 1.0 / float(framing.boxes[:, 2].min())
    return round(size[0] * zoom), round(size[1] * zoom)


def crop(frames: np.ndarray, framing: Framing, size: tuple[int, int]) -> np.ndarray:
    """Each of frames uint8 (T, H, W, 3) cropped to its box and resized to `size` = (width, height)
    (bilinear): uint8 (T, size[1], size[0], 3)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    b = torch.from_numpy(framing.boxes).float()
    theta = torch.zeros(len(b), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = b[:, 2]  # output [-1, 1] → the box in the input's [-1, 1]
    theta[:, 0, 2], theta[:, 1, 2] = 2 * b[:, 0] - 1, 2 * b[:, 1] - 1
    grid = torch.nn.functional.affine_grid(theta, [len(b), 3, size[1], size[0]], align_corners=False)
    y = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def load_framer(path: str | Path | None = None, device: str = "cpu") -> Framer:
    """Load framer weights (default: the bundled weights/syndive-framer.pt), checked against their
    folder's manifest; WeightsError in one line for a missing, corrupt or non-framer file."""
    from aqa_cli.models.framer import BACKBONE
    from aqa_cli.weights import bundled_dir, verify_file

    path = Path(path).expanduser() if path is not None else bundled_dir() / FRAMER_FILE
    if path.is_dir():
        raise WeightsError(f"framer weights {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise WeightsError(f"framer weights not found: {path}")
    verify_file(path)
    checkpoint = Checkpoint.load(path)
    if checkpoint.model_config.backbone != BACKBONE:
        raise WeightsError(f"{path}: not a framer model (its backbone is {checkpoint.model_config.backbone!r})",
                           hint=f"pass framer weights such as weights/{FRAMER_FILE}")
    return Framer(checkpoint, path, device)
