"""Find the dives in a longer recording: `find_dives(path, locator) -> [DiveWindow(start, end, confidence)]`.

The recording is decoded once, streaming, at a low rate and size (`LocatorConfig.fps`, `.size`: 10 fps,
64x48) with `video.iter_resampled`; the locator's frame CNN encodes it chunk by chunk, so only a
`hidden`-wide feature per sampled frame is kept (an hour at 10 fps: 36 000 x 64 floats, 9 MB); its
temporal conv net gives each sampled frame the probability that it lies inside a dive (take-off to
spray gone); `windows` cuts that curve into dives: above `threshold`, gaps shorter than `merge_gap`
closed, windows shorter than `min_length` dropped, edges placed where the curve crosses the threshold
(linear between samples) and widened by `pad` s each side.

The bundled locator, `weights/syndive-locator.pt`, was trained on generated sessions of SynDive
renderings (datasets/syndive/session.py): synthetic, not calibrated for real footage. Its file is an aqa
checkpoint (checkpoint.py) with model_config.task "locate" and the locator's own settings in
train_config["locator"]; `train_locator` makes one.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aqa_cli.checkpoint import Checkpoint, Preprocess
from aqa_cli.config import ModelConfig
from aqa_cli.errors import WeightsError

NAME = "syndive-locator"  # the bundled locator's weights name
TASK = "locate"  # model_config.task of a locator checkpoint
SYNTHETIC_NOTE = "a locator trained on synthetic SynDive sessions only, not calibrated for real footage"


@dataclass(frozen=True)
class DiveWindow:
    """One found dive: `start` (take-off) and `end` (spray gone) in seconds from the video's first frame,
    `confidence` the mean in-dive probability over the window (0-1)."""

    start: float
    end: float
    confidence: float


@dataclass
class LocatorConfig:
    """How the locator reads a video, its network's sizes, and how its curve becomes windows."""

    fps: float = 10.0  # frames per second sampled from the video
    size: tuple[int, int] = (64, 48)  # (width, height) they are resized to (portrait: swapped)
    width: int = 16  # the frame CNN's first width (then 2x, 2x, 4x)
    hidden: int = 64  # features per frame, and the temporal net's channels
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1)
    threshold: float = 0.5  # in-dive probability that starts a window
    merge_gap: float = 0.3  # s: windows closer than this are one dive
    min_length: float = 0.6  # s: shorter windows are dropped (the shortest 1 m dive window is ~1.3 s)
    pad: float = 0.0  # s added before and after each window

    def network(self):
        from aqa_cli.models.locator import Locator

        return Locator(tuple(self.size), self.width, self.hidden, tuple(self.dilations))


@dataclass
class DiveLocator:
    """A loaded locator: the network (eval mode, CPU), its config, where it came from and what it was
    trained on (`data`, with "synthetic")."""

    model: object
    config: LocatorConfig
    path: Path | None = None
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return bool(self.data.get("synthetic"))

    def checkpoint(self, metrics: dict | None = None, data: dict | None = None) -> Checkpoint:
        """This locator as an aqa checkpoint (its settings in train_config["locator"])."""
        c = self.config
        pre = Preprocess(clips=1, clip_len=1, resize=tuple(c.size), crop=min(c.size), mean=(0.5, 0.5, 0.5),
                         std=(1.0, 1.0, 1.0), frames=1)
        return Checkpoint(model=self.model.state_dict(), model_config=ModelConfig(backbone="locator", task=TASK),
                          preprocess=pre, train_config={"locator": dataclasses.asdict(c)},
                          metrics=metrics if metrics is not None else self.metrics,
                          data=data if data is not None else self.data)


def load_locator(weights: str | Path | None = None) -> DiveLocator:
    """The locator in `weights` (a file, or a NAME in the bundled folder or the cache; default the
    bundled `syndive-locator`), checked against its folder's manifest. WeightsError in one line when
    it is missing, corrupt or not a locator."""
    from aqa_cli.weights import find_weights, verify_file

    path = find_weights(weights or NAME)
    verify_file(path)
    ckpt = Checkpoint.load(path)
    settings = ckpt.train_config.get("locator")
    if ckpt.model_config.task != TASK or not isinstance(settings, dict):
        raise WeightsError(f"{path}: not a dive locator (model task {ckpt.model_config.task!r})",
                           hint=f"give a locator's weights, e.g. {NAME}")
    try:
        config = LocatorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
        model = config.network()
        model.load_state_dict(ckpt.model)
    except (TypeError, RuntimeError) as exc:
        raise WeightsError(f"{path}: the locator's weights do not fit its settings ({str(exc).splitlines()[0]})")
    return DiveLocator(model.eval(), config, path, ckpt.data, ckpt.metrics)


# ---------------------------------------------------------------------------------------------
# Locating


def dive_probability(path: str | Path, locator: DiveLocator, chunk: int = 256,
                     progress: Callable[[float], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode `path` once at the locator's rate and size: (times (T,) s, in-dive probability (T,)).

    Streams: one chunk of `chunk` small frames at a time, then the features (T, hidden). `progress(s)`
    is called with the seconds read so far."""
    import torch

    from aqa_cli.video import iter_resampled

    cfg, net = locator.config, locator.model
    times, feats, previous = [], [], None
    with torch.inference_mode():
        for t, frames in iter_resampled(path, cfg.fps, tuple(cfg.size), chunk):
            if previous is None and frames.shape[1] > frames.shape[2]:
                warnings.warn(f"{path}: a portrait video; the locator was trained on landscape recordings only",
                              stacklevel=2)
            x = torch.from_numpy(frames)[None]
            feats.append(net.encode(x, previous)[0])
            previous = x[:, -1]
            times.append(t)
            if progress:
                progress(float(t[-1]))
        logits = net.temporal(torch.cat(feats)[None])[0]
    return np.concatenate(times), torch.sigmoid(logits).numpy().astype(np.float64)


def span_probability(frames: np.ndarray, locator: DiveLocator) -> np.ndarray:
    """In-dive probability (T,) of one span's frames uint8 (T, H, W, 3), sampled at the locator's rate and
    size (the scorer's second look at a reframed dive: the frames cropped to the diver first)."""
    import torch

    with torch.inference_mode():
        logits = locator.model(torch.from_numpy(np.ascontiguousarray(frames))[None])[0]
    return torch.sigmoid(logits).numpy().astype(np.float64)


def find_dives(path: str | Path, locator: DiveLocator, progress: Callable[[float], None] | None = None
               ) -> list[DiveWindow]:
    """The dives in the video at `path`, in time order (see the module docstring).

    Raises VideoDecodeError (one line) for a file that is not a readable video."""
    times, prob = dive_probability(path, locator, progress=progress)
    return windows(times, prob, locator.config)


def windows(times: np.ndarray, prob: np.ndarray, cfg: LocatorConfig) -> list[DiveWindow]:
    """Cut an in-dive probability curve into windows: times (T,) s at a fixed step, prob (T,) in 0-1.

    A window is a run of samples at or above `threshold`; its edges are where the curve crosses the
    threshold, interpolated between the samples either side (half a step out at the ends of the curve);
    runs less than `merge_gap` apart are joined; runs shorter than `min_length` dropped; then `pad` is
    added each side (not beyond the curve's ends)."""
    times, prob = np.asarray(times, float), np.asarray(prob, float)
    if times.size == 0:
        return []
    step = float(times[1] - times[0]) if times.size > 1 else 1.0 / cfg.fps
    above = prob >= cfg.threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], above.astype(np.int8), [0]])))
    runs = [[_crossing(times, prob, a, cfg.threshold, step), _crossing(times, prob, b, cfg.threshold, step), a, b]
            for a, b in zip(edges[0::2], edges[1::2])]  # samples a..b-1 are above
    merged: list[list] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] < cfg.merge_gap:
            merged[-1][1], merged[-1][3] = run[1], run[3]
        else:
            merged.append(run)
    lo, hi = times[0] - step / 2, times[-1] + step / 2
    return [DiveWindow(round(max(s - cfg.pad, lo), 3), round(min(e + cfg.pad, hi), 3),
                       round(float(prob[a:b].mean()), 4))
            for s, e, a, b in merged if e - s >= cfg.min_length]


def _crossing(times: np.ndarray, prob: np.ndarray, i: int, threshold: float, step: float) -> float:
    """Where the curve crosses `threshold` between samples i-1 and i (i = len: after the last sample)."""
    if i == 0:
        return float(times[0] - step / 2)
    if i == len(times):
        return float(times[-1] + step / 2)
    p0, p1 = prob[i - 1], prob[i]
    frac = (threshold - p0) / (p1 - p0) if p1 != p0 else 0.5
    return float(times[i - 1] + min(max(frac, 0.0), 1.0) * (times[i] - times[i - 1]))


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two time windows (start, end) in s."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match(found: list[tuple[float, float]], truth: list[tuple[float, float]], min_iou: float = 0.7
          ) -> tuple[list[float], int, int]:
    """Pair found windows with true dives one to one, best IoU first: (the IoU of each true dive with its
    found window, 0 if none, in truth order), dives found with IoU >= `min_iou`, and false windows (found
    windows that overlap no true dive at all, or only one already paired better)."""
    pairs = sorted(((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True)
    used_f, used_t, best = set(), set(), [0.0] * len(truth)
    for score, i, j in pairs:
        if score > 0 and i not in used_f and j not in used_t:
            used_f.add(i), used_t.add(j)
            best[j] = score
    return best, sum(b >= min_iou for b in best), len(found) - len(used_f)


# ---------------------------------------------------------------------------------------------
# Training on generated sessions (synthetic)


def session_example(seed: int, index: int, cfg: LocatorConfig, workdir: str | Path | None = None
                    ) -> tuple[np.ndarray, np.ndarray, object]:
    """Render generated session `index` of set `seed` at the locator's own rate (so no frame is rendered
    for nothing), encode it to H.264 and read it back as `find_dives` does: (frames uint8 (T, H, W, 3),
    in-dive labels float32 (T,), the Session)."""
    from aqa_cli.datasets.syndive import session as sessions
    from aqa_cli.video import iter_resampled

    plan = sessions.plan_session(seed, index, size=(2 * cfg.size[0], 2 * cfg.size[1]), fps=cfg.fps)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = sessions.write_session(plan, Path(tmp) / "session.mp4")
        parts = list(iter_resampled(path, cfg.fps, tuple(cfg.size)))
    times = np.concatenate([t for t, _ in parts])
    return np.concatenate([f for _, f in parts]), sessions.labels(plan, times), plan


def train_locator(examples: list[tuple[np.ndarray, np.ndarray]], cfg: LocatorConfig, frame_steps: int = 400,
                  frame_batch: int = 192, epochs: int = 80, batch: int = 16, length: int = 300, lr: float = 2e-3,
                  seed: int = 0, shrink: float = 0.0, log: Callable[[str, int, float], None] | None = None
                  ) -> DiveLocator:
    """Fit a locator on (frames uint8 (T, H, W, 3), labels (T,)) examples in two stages, so that one
    CPU thread trains it in minutes: (1) the frame CNN with a linear "in a dive" head on `frame_steps`
    batches of single frames (and the frame before each), mirrored half the time (the board may be on
    either side); (2) frozen, it encodes every example and its mirror once, and the temporal net learns
    on random `length`-sample crops of those features for `epochs` passes. Both: per-sample binary
    cross-entropy, Adam, one-cycle schedule. `shrink` > 0: that share of the frames (stage 1), and one
    more copy of every example and its mirror (stage 2), show the picture shrunk to 40-90 % on its edge
    colour (`shrunk`): a diver filmed from further away. `log(stage, step, mean loss)`."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = cfg.network()
    head = torch.nn.Linear(cfg.hidden, 1)
    _fit_frames(model, head, examples, frame_steps, frame_batch, lr, rng, log, shrink)
    model.eval()
    feats = []
    with torch.inference_mode():
        for frames, labels in examples:
            copies = [frames] + ([shrunk(frames, float(rng.uniform(0.4, 0.9)), rng)] if shrink > 0 else [])
            for mirrored in [v for c in copies for v in (c, c[:, :, ::-1])]:
                x = torch.from_numpy(np.ascontiguousarray(mirrored))
                f = torch.cat([model.encode(x[None, a:a + 512], None if a == 0 else x[None, a - 1])[0]
                               for a in range(0, len(x), 512)])
                feats.append((f.clone(), torch.from_numpy(labels)))
    _fit_temporal(model, feats, epochs, batch, length, lr, rng, log)
    return DiveLocator(model.eval(), cfg, None, {}, {})


def shrunk(frames: np.ndarray, s: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Frames uint8 (T, H, W, 3) with the picture shrunk by `s` (antialiased) onto each frame's edge colour,
    at one place for all frames (random with `rng`, else centred)."""
    import torch

    t, h, w, _ = frames.shape
    sh, sw = max(1, round(h * s)), max(1, round(w * s))
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    small = torch.nn.functional.interpolate(x, size=(sh, sw), mode="bilinear", antialias=True, align_corners=False)
    edges = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    out = np.empty_like(frames)
    out[:] = np.median(edges, axis=1)[:, None, None, :].astype(np.uint8)
    top, left = ((h - sh) // 2, (w - sw) // 2) if rng is None else \
        (int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1)))
    out[:, top:top + sh, left:left + sw] = small.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def _fit_frames(model, head, examples, steps: int, batch: int, lr: float, rng: np.random.Generator, log,
                shrink: float = 0.0) -> None:
    """Stage 1: the frame CNN (model.frames, model.project) and `head` on random frames."""
    import torch

    params = [*model.frames.parameters(), *model.project.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    sizes = np.array([len(f) for f, _ in examples])
    model.train()
    total = 0.0
    for step in range(steps):
        which = rng.choice(len(examples), batch, p=sizes / sizes.sum())
        at = (rng.random(batch) * sizes[which]).astype(int)
        now = np.stack([examples[k][0][i] for k, i in zip(which, at)])
        before = np.stack([examples[k][0][max(i - 1, 0)] for k, i in zip(which, at)])
        flip = rng.random(batch) < 0.5
        now[flip], before[flip] = now[flip][:, :, ::-1], before[flip][:, :, ::-1]
        for k in np.nonzero(rng.random(batch) < shrink)[0]:  # the frame and the one before, alike
            pair = shrunk(np.stack([now[k], before[k]]), float(rng.uniform(0.4, 0.9)), rng)
            now[k], before[k] = pair
        labels = torch.tensor([examples[k][1][i] for k, i in zip(which, at)])
        logits = head(model.encode(torch.from_numpy(now)[:, None], torch.from_numpy(before))[:, 0])[:, 0]
        loss = loss_fn(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item()
        if log and (step + 1) % 50 == 0:
            log("frames", step + 1, total / 50)
            total = 0.0


def _fit_temporal(model, feats, epochs: int, batch: int, length: int, lr: float, rng: np.random.Generator,
                  log) -> None:
    """Stage 2: the temporal net (model.blocks, model.out) on random crops of precomputed features."""
    import torch

    params = [*model.blocks.parameters(), *model.out.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    per_epoch = math.ceil(len(feats) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch, pct_start=0.1)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.blocks.train(), model.out.train()
    for epoch in range(epochs):
        total = 0.0
        crops = list(_crops(feats, length, rng))
        for i in range(0, len(crops), batch):
            x = torch.stack([c[0] for c in crops[i:i + batch]])
            y = torch.stack([c[1] for c in crops[i:i + batch]])
            loss = loss_fn(model.temporal(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(x)
        if log and ((epoch + 1) % 10 == 0 or epoch == epochs - 1):
            log("temporal", epoch + 1, total / len(crops))


def _crops(examples: list, length: int, rng: np.random.Generator) -> Iterator[tuple]:
    """Every (features (T, D), labels (T,)) example once, in random order, as a random `length`-sample
    crop; shorter ones are padded by repeating their last step, labelled as it is."""
    import torch

    for k in rng.permutation(len(examples)):
        feats, labels = examples[k]
        if len(feats) < length:
            extra = length - len(feats)
            feats = torch.cat([feats, feats[-1:].expand(extra, -1)])
            labels = torch.cat([labels, labels[-1:].expand(extra)])
        a = int(rng.integers(0, len(feats) - length + 1))
        yield feats[a:a + length], labels[a:a + length]
