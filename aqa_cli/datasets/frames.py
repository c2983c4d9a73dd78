"""A torch `Dataset` over one split of a dataset root: memory-mapped frames → clips and targets.

Every dataset source (SynDive, MTL-AQA, ...) writes the same root (see layout.py), so this is the one
loader for training and evaluation. Frames were decoded once at preprocessing time; an item only
slices a memory-mapped uint8 array, crops, flips and normalises (transforms.py).

Augmentation is drawn from `numpy.random.default_rng((seed, epoch, index))`: an item depends on nothing
but those three numbers, so results do not depend on the number of DataLoader workers or processes,
and a resumed run sees exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from aqa_cli import rules
from aqa_cli.config import DataConfig, ModelConfig
from aqa_cli.datasets.layout import DatasetRoot, Sample
from aqa_cli.rules import HEADS
from aqa_cli.errors import DataError
from aqa_cli.text import Vocabulary
from aqa_cli.transforms import resize, sample_clips


def execution_target(sample: Sample) -> float:
    """Judged execution (sum of the counted marks) of a sample; NaN when it cannot be known.

    From the judges' marks when the root has them, else final_score / difficulty (the same number
    when the score was computed by the rules); NaN marks "no target" and is left out of the loss.
    """
    if sample.judge_scores:
        try:
            return rules.judged_execution(sample.judge_scores)
        except ValueError:
            pass
    if sample.difficulty > 0:
        return sample.final_score / sample.difficulty
    return math.nan


class FramesDataset(Dataset):
    """Split `split` of `root` as dicts of tensors (see `__getitem__`).

    train=True draws a jittered window, a random crop and a flip per item; train=False takes the
    annotated window with a centre crop, as inference does.
    """

    def __init__(self, root: DatasetRoot, split: str, data: DataConfig, model: ModelConfig,
                 vocab: Vocabulary | None = None, train: bool = False, seed: int = 0):
        self.root = root
        self.samples = root.split(split)
        self.split = split
        # Checked here, before any training: a missing file or too short a window found in a DataLoader
        # worker, or only at test time after hours of training, would cost the run.
        missing = [s.id for s in self.samples if not root.frames_path(s.id).is_file()]
        if missing:
            raise DataError(f"{root.root}: {len(missing)} of the {split} split's dives have no frames file, e.g. "
                            f"{root.frames_path(missing[0])}", hint="run the dataset's preprocess step")
        need = data.clips * model.clip_len * data.stride
        if self.samples and need > root.info.frames + root.info.pad:
            raise DataError(f"{root.root}: its dives hold {root.info.frames} frames, fewer than the {need} the clips "
                            f"read (data.clips {data.clips} x model.clip_len {model.clip_len} x data.stride {data.stride})",
                            hint=f"--set data.frames={root.info.frames} and a data.clips whose clips fit in it")
        self.data = data
        self.model = model
        self.vocab = vocab
        self.train = train
        self.seed = seed
        self.epoch = 0
        stored = (root.info.width, root.info.height)
        # Resize only when the config asks for a size other than the stored one (MSCADC: 640×360).
        self.size = None if tuple(data.resize) == stored else tuple(data.resize)
        self._cache: dict[str, np.ndarray] = {}  # sample id → resized frames (data.cache)

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation stream of `epoch` (call before building each epoch's iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        """One sample:

        clips      float32 (N, 3, clip_len, crop, crop)
        score      float32 ()   final score
        execution  float32 ()   judged execution, NaN when unknown
        labels     int64 (5,)   position, armstand, rotation_type, ss_no, tw_no; -1 when unknown
        caption    int64 (L,)   `<sos> ... <eos>` ids (only with a vocabulary), L ≤ caption_max_len
        height     int64 ()     index of the board / platform height in rules.HEIGHTS; -1 when unknown
        index      int64 ()     position of the sample in the split
        """
        sample = self.samples[index]
        rng = np.random.default_rng((self.seed, self.epoch, index)) if self.train else None
        frames, size = self._frames(sample.id)
        d, m = self.data, self.model
        clips = sample_clips(frames, self.root.info.pad, d.frames, d.clips, m.clip_len, m.crop_size,
                             d.mean, d.std, size=size, jitter=d.jitter if self.train else 0,
                             hflip=d.hflip if self.train else 0.0, stride=d.stride, scale=d.scale,
                             shift=d.shift, rng=rng)
        item = {
            "clips": clips,
            "score": torch.tensor(sample.final_score, dtype=torch.float32),
            "execution": torch.tensor(execution_target(sample), dtype=torch.float32),
            "labels": torch.tensor([getattr(sample, h) for h in HEADS], dtype=torch.int64),
            "height": torch.tensor(rules.HEIGHTS.index(sample.height) if sample.height in rules.HEIGHTS else -1),
            "index": torch.tensor(index, dtype=torch.int64),
        }
        if self.vocab is not None:
            ids = self.vocab.encode(sample.commentary, max_len=d.caption_max_len)
            item["caption"] = torch.tensor(ids, dtype=torch.int64)
        return item

    def _frames(self, sample_id: str) -> tuple[np.ndarray, tuple[int, int] | None]:
        """Stored frames and the size still to resize them to; with data.cache, every frame of the
        sample resized once (the resize works frame by frame, so the clips are the same). Only in the
        main process: DataLoader workers are rebuilt every epoch, so their caches would be thrown away
        after costing a resize of every frame."""
        if not (self.data.cache and self.size) or get_worker_info() is not None:
            return self.root.load_frames(sample_id), self.size
        if sample_id not in self._cache:
            frames = torch.from_numpy(np.array(self.root.load_frames(sample_id)))
            self._cache[sample_id] = resize(frames, self.size).numpy()
        return self._cache[sample_id], None


def collate(items: list[dict]) -> dict:
    """Stack items into a batch; captions are right-padded with `<eos>` (id 0) to the longest one and
    come with `caption_len` (B,) so losses can mask the padding."""
    batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "caption"}
    if "caption" in items[0]:
        lengths = torch.tensor([len(it["caption"]) for it in items], dtype=torch.int64)
        ids = torch.zeros(len(items), int(lengths.max()), dtype=torch.int64)
        for row, it in enumerate(items):
            ids[row, : len(it["caption"])] = it["caption"]
        batch["caption"] = ids
        batch["caption_len"] = lengths
    return batch
