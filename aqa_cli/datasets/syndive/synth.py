"""SynDive: a procedural synthetic diving dataset with known ground truth (`aqa data synth`).

Each dive is drawn from the World Aquatics DD table at one of the requested heights, given hidden
execution faults, rendered (render.py, motion.py), encoded to H.264, decoded back at the stored size
(so training sees the same codec artefacts as inference) and judged by a panel of 7.

Everything about dive `i` comes from `numpy.random.default_rng([seed, i])`, so the same seed gives
byte-identical annotations and identical frames whatever the number of workers.

Hidden faults (`Sample.faults`, all from the noise-free side of the judging):
    skill              0..1, the diver's form on the day (faults shrink as it grows)
    rotation_error_deg over (+) or under (-) rotation at entry, degrees from vertical
    twist_error_deg    long (+) or short (-) twist, degrees (0 for dives without twists)
    knee_bend_deg      bent knees in the straight parts and at entry
    loose              0 tight .. 1 loose tuck or pike (0 for straight and free)
    legs_apart_deg     abduction of each leg in flight
    height_loss        fraction of the ideal take-off speed missing (low dive)
    distance_m         entry point vs a safe 1 m from the board tip (- too close, + too far)
    splash_m           height of the spray column (grows with the entry errors; a rip is < 0.15)
    execution          the noise-free execution mark 0-10 that these faults earn

Judges: each of 7 marks the noise-free execution plus their own bias (N(0, 0.3), drawn once per
set from the seed: the same panel judges every dive) and fresh noise (N(0, 0.45)), rounded to half
points in 0-10; the final score drops the 2 highest and 2 lowest and multiplies the sum by DD
(rules.final_score). `expected_score` = 3 × execution × DD, the score a noise-free panel would give,
so the Spearman correlation of expected and final scores is the best any model can reach on the set
(the oracle ceiling).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import signal
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aqa_cli import rules
from aqa_cli.datasets import layout
from aqa_cli.datasets.syndive import commentary
from aqa_cli.datasets.syndive.motion import DivePlan, camera
from aqa_cli.datasets.syndive.render import Scene, render_frame, write_png
from aqa_cli.errors import UsageError

GENERATOR = "syndive"
VERSION = "3"
SOURCE = "SynDive (synthetic)"
DEFAULT_HEIGHTS = ("1m", "3m", "10m")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test
JUDGES = 7
JUDGE_BIAS, JUDGE_NOISE = 0.3, 0.45  # standard deviations in marks (bias: per judge, for the set)
X264_PARAMS = "mbtree=0:threads=1"
LEAD = (0.2, 0.4)  # s of stance, handstand or end of the hurdle shown before the take-off
AFTER_ENTRY = (0.55, 0.8)  # s of entry and splash shown after the hands or feet reach the water
ROTATION_GROUPS = {0: "back", 1: "forward", 2: "inward", 3: "reverse"}
MAX_FRAMES = 1000  # 40 s at 25 fps, far more than a dive; (1000, 1080, 1920, 3) uint8 is already 6.2 GB
# What a SynDive root holds, in the order a swap takes them out: dataset.yaml first, so a root
# caught halfway never looks complete (it is put back last).
ENTRIES = ("dataset.yaml", "annotations.jsonl", "splits", "frames", "videos")


@dataclass
class DiveSpec:
    """What one synthetic dive is: its number, height, faults, judges' marks and look."""

    index: int
    number: str
    height: str
    dd: float
    faults: dict
    judge_scores: list[float]
    lead: float  # s before the take-off at the start of the clip
    after_entry: float  # s of entry and splash at the end of the clip


def sample_id(index: int) -> str:
    return f"syn{index:05d}"


def fits_label_space(labels: rules.DiveLabels) -> bool:
    """Whether a model with MTL-AQA's heads can name this dive (ss_no 0-9, tw_no 0-7)."""
    return (labels.ss_no < len(rules.LABEL_NAMES["ss_no"]) and labels.tw_no < len(rules.LABEL_NAMES["tw_no"]))


def choose_dive(rng: np.random.Generator, height: str) -> tuple[str, float]:
    """A dive number and its DD at `height`: rotation direction uniform, then a plain, twisting (30%)
    or armstand (15%, platforms only) dive, then a table entry weighted by a bell around DD 3.0 (sd
    0.5), the DD of a typical elite competition dive, so scores spread like MTL-AQA's.
    Flying dives and dives beyond MTL-AQA's label spaces (e.g. 4½ twists) are left out."""
    entries = rules.dd_entries(height)
    platform = entries[0].apparatus == "platform"
    rotation = int(rng.integers(4))
    kind = str(rng.choice(["plain", "twist", "armstand"], p=[0.55, 0.3, 0.15] if platform else [0.7, 0.3, 0.0]))

    def kind_of(labels: rules.DiveLabels) -> str:
        return "armstand" if labels.armstand else "twist" if labels.tw_no else "plain"

    labelled = [(e, rules.parse_dive(e.dive)) for e in entries]
    labelled = [(e, lab) for e, lab in labelled if not lab.flying and fits_label_space(lab)]
    pool = [e for e, lab in labelled if lab.rotation_type == rotation and kind_of(lab) == kind]
    pool = pool or [e for e, lab in labelled if lab.rotation_type == rotation]
    weights = np.array([math.exp(-0.5 * ((e.dd - 3.0) / 0.5) ** 2) for e in pool])
    pick = pool[int(rng.choice(len(pool), p=weights / weights.sum()))]
    return pick.dive, pick.dd


def draw_faults(rng: np.random.Generator, labels: rules.DiveLabels, letter: str) -> dict:
    """Hidden execution faults (see the module docstring) and the noise-free execution mark they earn."""
    skill = float(rng.beta(5.0, 1.6))
    bad = 1.0 - skill
    rot = float(rng.normal(0.0, 3.0 + 30.0 * bad))
    if rng.random() < 0.03:  # a failed dive: badly over or under at the entry
        rot = float(rng.choice([-1.0, 1.0]) * rng.uniform(45.0, 90.0))
    twist = float(rng.normal(0.0, 5.0 + 45.0 * bad)) if labels.tw_no else 0.0
    knee = float(abs(rng.normal(0.0, 2.0 + 22.0 * bad)))
    loose = float(min(abs(rng.normal(0.0, 0.05 + 0.6 * bad)), 1.0)) if letter in "BC" else 0.0
    legs = float(abs(rng.normal(0.0, 1.0 + 14.0 * bad)))
    low = float(min(abs(rng.normal(0.0, 0.03 + 0.3 * bad)), 0.4))
    dist = float(rng.normal(0.0, 0.1 + 0.6 * bad))
    splash = 0.06 + 0.014 * abs(rot) + 0.008 * knee + 0.012 * legs + abs(rng.normal(0.0, 0.04))
    splash = float(min(splash, 2.0))
    deduction = (0.055 * abs(rot) + 0.03 * abs(twist) + 0.035 * knee + 1.8 * loose + 0.05 * legs
                 + 5.0 * low + 1.5 * max(abs(dist) - 0.15, 0.0) + 1.2 * max(splash - 0.12, 0.0))
    execution = float(np.clip(10.0 - 0.3 - deduction, 0.0, 10.0))
    r = lambda x, n=2: round(x, n)
    return {"skill": r(skill, 3), "rotation_error_deg": r(rot, 1), "twist_error_deg": r(twist, 1),
            "knee_bend_deg": r(knee, 1), "loose": r(loose, 3), "legs_apart_deg": r(legs, 1),
            "height_loss": r(low, 3), "distance_m": r(dist, 3), "splash_m": r(splash, 3),
            "execution": r(execution, 3)}


def panel_bias(seed: int) -> np.ndarray:
    """Each judge's own leniency (+) or severity (-) in marks, fixed for the whole set: (JUDGES,)."""
    return np.random.default_rng([seed, 2**31 - 2]).normal(0.0, JUDGE_BIAS, JUDGES)


def judge(rng: np.random.Generator, execution: float, bias: np.ndarray) -> list[float]:
    """Seven judges' marks: the noise-free mark plus each judge's bias and fresh noise, in half
    points 0-10."""
    marks = execution + bias + rng.normal(0.0, JUDGE_NOISE, JUDGES)
    return [float(m) for m in np.clip(np.round(marks * 2.0) / 2.0, 0.0, 10.0)]


def make_spec(seed: int, index: int, heights: tuple[str, ...]) -> tuple[DiveSpec, np.random.Generator]:
    """Dive `index` of the set with `seed`: its number, faults and marks, and the RNG (advanced past
    them) that the rendering of this dive continues with."""
    rng = np.random.default_rng([seed, index])
    height = heights[int(rng.integers(len(heights)))]
    number, dd = choose_dive(rng, height)
    labels = rules.parse_dive(number)
    faults = draw_faults(rng, labels, number[-1])
    marks = judge(rng, faults["execution"], panel_bias(seed))
    lead, after_entry = float(rng.uniform(*LEAD)), float(rng.uniform(*AFTER_ENTRY))
    return DiveSpec(index, number, height, dd, faults, marks, lead, after_entry), rng


def plan_of(spec: DiveSpec) -> DivePlan:
    """The physical dive for a spec: take-off `lead` s after the clip starts."""
    labels = rules.parse_dive(spec.number)
    facing, sense = rules.facing_and_sense(labels.rotation_type)
    f = spec.faults
    plan = DivePlan(
        height=float(spec.height[:-1]), platform=spec.height not in ("1m", "3m"), letter=spec.number[-1],
        ss_no=labels.ss_no, tw_no=labels.tw_no, facing=facing,
        sense=sense, armstand=bool(labels.armstand), takeoff=spec.lead,
        rotation_error=math.radians(f["rotation_error_deg"]), twist_error=math.radians(f["twist_error_deg"]),
        knee_bend=math.radians(f["knee_bend_deg"]), loose=f["loose"], legs_apart=math.radians(f["legs_apart_deg"]),
        height_loss=f["height_loss"], distance=f["distance_m"], splash=f["splash_m"])
    return plan


def _color(rng: np.random.Generator, hue: float | None = None, sat=(0.5, 0.9), val=(0.5, 0.95)) -> np.ndarray:
    """A random RGB colour (float32, 0-1) from hue / saturation / value ranges."""
    h = rng.random() if hue is None else hue
    s, v = rng.uniform(*sat), rng.uniform(*val)
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return (v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)).astype(np.float32)


SKIN = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.56], [0.78, 0.57, 0.42], [0.62, 0.43, 0.30],
                 [0.45, 0.30, 0.20], [0.33, 0.22, 0.15]], np.float32)


def make_scene(rng: np.random.Generator, plan: DivePlan, size: tuple[int, int], seed: int) -> Scene:
    """Colours, lighting and body size of one dive."""
    tone = rng.uniform(0, len(SKIN) - 1)
    lo = int(tone)
    skin = SKIN[lo] + (SKIN[min(lo + 1, len(SKIN) - 1)] - SKIN[lo]) * (tone - lo)
    light = np.array([rng.uniform(-0.7, 0.7), rng.uniform(0.3, 0.8), rng.uniform(0.5, 0.9)], np.float32)
    tint = rng.uniform(0.88, 1.08, 3).astype(np.float32)  # colour of the hall lighting
    return Scene(
        width=size[0], height=size[1], board_height=plan.height, platform=plan.platform,
        suit=_color(rng) * tint, skin=skin * tint, hair=_color(rng, sat=(0.3, 0.8), val=(0.08, 0.45)) * tint,
        wall=_color(rng, sat=(0.0, 0.25), val=(0.55, 0.9)) * tint, wall_accent=_color(rng) * tint,
        water=_color(rng, hue=rng.uniform(0.45, 0.6), sat=(0.5, 0.85), val=(0.45, 0.75)) * tint,
        board=_color(rng, sat=(0.0, 0.3), val=(0.7, 0.95)) * tint, light=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.3, 0.55)), wall_depth=float(rng.uniform(5.0, 12.0)),
        body_scale=float(rng.uniform(0.93, 1.07)), chest_suit=bool(rng.random() < 0.6),
        noise=float(rng.uniform(1.0, 3.0)), seed=seed)


def render_dive(spec: DiveSpec, rng: np.random.Generator, size: tuple[int, int], frames: int,
                fps: float):
    """Yield the dive's frames, uint8 (H, W, 3) each, rendered at `size` (width, height).

    The clip is a slow-motion replay, as broadcasts show dives: its `frames` frames span exactly
    `lead` s before the take-off, the flight, and `after_entry` s of entry and splash (1.4-2.4x slower
    than real time at 103 frames and 25 fps), so the flight fills 55-70 % of the 96 frames a model
    sees (at real speed a 1 m flight filled ~27 of them, the stance ~40).
    `fps` is the playback rate written to the video and does not change the timing."""
    plan = plan_of(spec)
    step = (plan.entry + spec.after_entry) / frames
    scene = make_scene(rng, plan, size, int(rng.integers(2**31)))
    view = float(rng.uniform(2.3, 2.7))  # widest framing (m top to bottom): a straight diver ~70% of it
    dist = float(rng.uniform(8.0, 14.0))
    offset = (float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.1, 0.2)))
    yaw = float(rng.uniform(-0.3, 0.3))
    shake_amp = float(rng.uniform(0.005, 0.03))
    shake = np.cumsum(rng.normal(0.0, shake_amp, (frames, 2)), axis=0) * 0.5
    shake -= shake.mean(axis=0)
    for i in range(frames):
        t = i * step
        cam = camera(plan, t, size[1], view, dist, offset, shake[i], yaw)
        yield render_frame(scene, cam, plan.pose(t), plan.splash_at(t), t, rng)


def make_sample(spec: DiveSpec, rng: np.random.Generator) -> layout.Sample:
    """The annotation record of a dive (without its frames)."""
    labels = rules.parse_dive(spec.number)
    execution = spec.faults["execution"]
    return layout.Sample(
        id=sample_id(spec.index), video=f"{sample_id(spec.index)}.mp4", start_frame=0, end_frame=0,
        final_score=rules.final_score(spec.judge_scores, spec.dd), difficulty=spec.dd,
        judge_scores=spec.judge_scores, dive_number=spec.number, position=labels.position,
        armstand=labels.armstand, rotation_type=labels.rotation_type, ss_no=labels.ss_no, tw_no=labels.tw_no,
        commentary=commentary.commentary(rng, spec.number, spec.height, spec.faults), height=spec.height,
        expected_score=round(3.0 * execution * spec.dd, 2), faults=spec.faults)


@dataclass(frozen=True)
class _Job:
    """What a worker needs to make dive `index` (picklable, for the process pool)."""

    root: str
    seed: int
    index: int
    heights: tuple[str, ...]
    size: tuple[int, int]
    frames: int
    fps: float


def _make_one(job: _Job) -> layout.Sample:
    """Render, encode, decode back and annotate one dive (runs in a worker process)."""
    from aqa_cli import video

    spec, rng = make_spec(job.seed, job.index, job.heights)
    sample = make_sample(spec, rng)
    path = Path(job.root) / "videos" / sample.video
    # One x264 thread and no macroblock tree: the same frames then always give the same bitstream.
    video.write_video(path, render_dive(spec, rng, job.size, job.frames, job.fps), fps=job.fps,
                      x264_params=X264_PARAMS)
    frames = video.read_window(path, end_frame=job.frames - 1, frames=job.frames, size=job.size)
    layout.save_frames(Path(job.root) / "frames" / f"{sample.id}.npy", frames)
    sample.end_frame = job.frames - 1
    return sample


def split_ids(ids: list[str], seed: int) -> dict[str, list[str]]:
    """Shuffle (by seed) and cut 70/10/20 into train/val/test; val and test get at least one dive
    each once there are three."""
    order = [ids[i] for i in np.random.default_rng([seed, 2**31 - 1]).permutation(len(ids))]
    n = len(ids)
    n_test = max(1, round(SPLIT_FRACTIONS[2] * n)) if n >= 3 else 0
    n_val = max(1, round(SPLIT_FRACTIONS[1] * n)) if n >= 3 else 0
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    position = {sample: k for k, sample in enumerate(ids)}
    return {name: sorted(part, key=position.__getitem__)
            for name, part in (("train", train), ("val", val), ("test", test))}


def check_options(root: Path, count: int, size: tuple[int, int], frames: int, fps: float,
                  heights: tuple[str, ...], overwrite: bool, seed: int = 0) -> tuple[str, ...]:
    """Validate everything before any work; return the heights normalised ('10' → '10m').
    Every problem is a one-line UsageError naming the value."""
    if count < 1:
        raise UsageError(f"--count {count}: need at least 1 dive")
    if seed < 0:  # numpy's seed sequences take non-negative integers only
        raise UsageError(f"--seed {seed}: need a non-negative integer", hint="e.g. --seed 0")
    layout.DatasetInfo.check_size(size)
    if not 8 <= frames <= MAX_FRAMES:
        raise UsageError(f"--frames {frames}: expected 8-{MAX_FRAMES} frames")
    if not 1 <= fps <= 240:
        raise UsageError(f"--fps {fps}: expected 1-240")
    try:
        heights = tuple(dict.fromkeys(rules.normalize_height(h) for h in heights))
    except ValueError as exc:
        raise UsageError(f"--heights: {exc}") from None
    if not heights:
        raise UsageError("--heights: give at least one height, e.g. 1m,3m,10m")
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not _unfinished(root):
        ours = _is_syndive(root)
        if not ours:
            raise UsageError(f"{root}: folder is not empty and is not a SynDive root",
                             hint="choose a new or empty folder")
        if not overwrite:
            raise UsageError(f"{root}: already holds a SynDive dataset",
                             hint="pass --overwrite to replace it, or choose a new folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        free = shutil.disk_usage(root).free
    except OSError as exc:
        raise UsageError(f"{root}: cannot write there ({exc.strerror or exc})") from None
    need = count * frames * size[0] * size[1] * 3  # the uint8 frames; the videos are a few % of that
    if need > free:  # an old set being overwritten stays until the new one is complete
        raise UsageError(f"{root}: the frames need about {need / 1e9:.1f} GB, only {free / 1e9:.1f} GB free there",
                         hint="fewer dives (--count) or frames (--frames), or a smaller --size")
    return heights


def check_preview(path: str | Path) -> Path:
    """Validate the contact sheet's path before any rendering and create its folder; return it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"--preview {path}: the contact sheet is a .png file")
    if path.is_dir():
        raise UsageError(f"--preview {path}: is a folder", hint="give a file name, e.g. sheet.png")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--preview {path}: cannot create its folder ({exc.strerror or exc})") from None
    return path


def _worker_count(workers: int, count: int) -> int:
    """Worker processes to start: at most one per CPU (more only fight for it) and per dive."""
    if workers < 1:
        raise UsageError(f"--workers {workers}: need at least 1")
    cpus = os.cpu_count() or 1
    if workers > cpus:
        warnings.warn(f"--workers {workers}: using {cpus}, the number of CPUs here", stacklevel=3)
    return min(workers, cpus, count)


def _is_syndive(root: Path) -> bool:
    try:
        return layout.DatasetRoot(root).info.source == SOURCE
    except Exception:  # anything unreadable is not ours to delete
        return False


def _unfinished(root: Path) -> bool:
    """Whether `root` holds only what an interrupted synthesize() leaves: its work folder and (from a
    swap caught halfway) dataset entries, without dataset.yaml."""
    names = {p.name for p in root.iterdir()}
    return layout.UNFINISHED in names and "dataset.yaml" not in names and names <= {layout.UNFINISHED, *ENTRIES}


def _swap_in(root: Path, work: Path) -> None:
    """Move the finished set from `work`/new into `root` in place of any older one, then drop `work`.
    Only renames inside `root`: up to the first the old set is whole, after the last the new one is;
    a run stopped in between leaves no dataset.yaml, so the next run takes the root as unfinished."""
    old = work / "old"
    old.mkdir()
    for name in ENTRIES:
        if os.path.lexists(root / name):
            (root / name).rename(old / name)
    for name in reversed(ENTRIES):
        (work / "new" / name).rename(root / name)
    shutil.rmtree(work)


@contextmanager
def _sigint_blocked():
    """SIGINT blocked in this thread inside the context (where the platform can block it); one that
    arrives meanwhile is delivered on leaving. Processes spawned inside inherit the blocked mask."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _ignore_sigint() -> None:
    """Pool initializer. Ctrl-C reaches every process of the terminal's group, and only the main
    process should answer it (leaving the pool terminates the workers): a worker that took it would
    print its own KeyboardInterrupt traceback. Workers start with SIGINT blocked, so one sent before
    this runs stays pending and is dropped here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def synthesize(root: str | Path, count: int, seed: int = 0, size: tuple[int, int] = (171, 128),
               frames: int = 103, fps: float = 25.0, heights: tuple[str, ...] = DEFAULT_HEIGHTS,
               workers: int = 1, overwrite: bool = False,
               progress: Callable[[int, int], None] | None = None,
               preview: str | Path | None = None) -> list[layout.Sample]:
    """Generate a SynDive dataset root with `count` dives; returns the samples in id order.

    `size` is (width, height) of the stored frames; `progress(done, total)` is called after each dive;
    `preview`: also write a contact sheet PNG there (its path is checked before rendering).
    `workers` above the CPU count is lowered to it (with a warning).

    The set is made in ROOT/.unfinished and moved into place when complete, so an interrupted run
    never harms an older set (--overwrite) and the next run clears what it left (with a warning).
    """
    root = Path(root)
    workers = _worker_count(workers, count)
    heights = check_options(root, count, size, frames, fps, heights, overwrite, seed)
    if preview is not None:
        preview = check_preview(preview)
    work = root / layout.UNFINISHED
    if work.exists():
        if _unfinished(root):
            warnings.warn(f"{root}: clearing an unfinished set left by an interrupted run", stacklevel=2)
        shutil.rmtree(work)
    new = work / "new"
    (new / "videos").mkdir(parents=True)
    jobs = [_Job(str(new), seed, i, heights, size, frames, fps) for i in range(count)]
    samples = []
    if workers <= 1:
        for job in jobs:
            samples.append(_make_one(job))
            if progress:
                progress(len(samples), count)
    else:
        with _sigint_blocked():  # until each worker ignores it (see _ignore_sigint)
            pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_ignore_sigint)
        with pool:
            for sample in pool.imap(_make_one, jobs):
                samples.append(sample)
                if progress:
                    progress(len(samples), count)
    info = layout.DatasetInfo(
        name="syndive", source=SOURCE, version=VERSION, synthetic=True, fps=float(fps), width=size[0],
        height=size[1], frames=frames, pad=0,
        extra={"generator": f"{GENERATOR} {VERSION}", "seed": seed, "heights": list(heights), "judges": JUDGES,
               "note": "synthetic renders with known ground truth; expected_score is the noise-free score"})
    layout.write_root(new, info, samples, split_ids([s.id for s in samples], seed))
    _swap_in(root, work)
    if preview is not None:
        contact_sheet(root, samples, preview)
    return samples


def contact_sheet(root: str | Path, samples: list[layout.Sample], out: str | Path, dives: int = 6,
                  columns: int = 8) -> Path:
    """A PNG grid: one row per dive (of different groups and positions where the set allows),
    `columns` evenly spaced frames each, written with the stdlib PNG writer."""
    out = check_preview(out)
    ds = layout.DatasetRoot(root)
    chosen, seen = [], set()
    for s in samples:  # first pass: a new (rotation, position, armstand) each
        key = (s.rotation_type, s.position, s.armstand)
        if key not in seen:
            seen.add(key)
            chosen.append(s)
    chosen += [s for s in samples if s not in chosen]
    rows = []
    for s in chosen[:dives]:
        frames = ds.load_frames(s.id)
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        row = np.concatenate([np.pad(frames[i], ((1, 1), (1, 1), (0, 0))) for i in picks], axis=1)
        rows.append(row)
    write_png(out, np.concatenate(rows, axis=0))
    return out


def summary(samples: list[layout.Sample], root: str | Path | None = None) -> dict:
    """Statistics of a generated set: score mean/sd/range, histograms, and the oracle ceiling on the
    test split of `root` (the dataset root `samples` were written to)."""
    from collections import Counter

    from aqa_cli.metrics import spearman

    scores = np.array([s.final_score for s in samples])
    group = lambda s: ("armstand " if s.armstand else "") + ("twisting " if s.tw_no else "") + \
        ROTATION_GROUPS[s.rotation_type]
    out = {
        "count": len(samples),
        "final_score": {"mean": round(float(scores.mean()), 2), "sd": round(float(scores.std()), 2),
                        "min": float(scores.min()), "max": float(scores.max())},
        "difficulty": {"min": min(s.difficulty for s in samples), "max": max(s.difficulty for s in samples)},
        "position": dict(Counter(rules.POSITION_NAMES[s.dive_number[-1]] for s in samples).most_common()),
        "group": dict(Counter(group(s) for s in samples).most_common()),
        "height": dict(Counter(s.height for s in samples).most_common()),
    }
    test_ids = [s.id for s in layout.DatasetRoot(root).split("test")] if root else []
    if len(test_ids) >= 3:
        by_id = {s.id: s for s in samples}
        test = [by_id[i] for i in test_ids]
        out["oracle_spearman_test"] = round(spearman([s.expected_score for s in test],
                                                     [s.final_score for s in test]), 4)
    return out
