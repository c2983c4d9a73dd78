"""Generated diving sessions: SynDive dives embedded in longer real-time recordings (synthetic).

A session is what a coach's camera records at a pool: stretches of a diver standing or walking on the
board, other divers doing the same, the empty board or the pool, and 1-4 dives, each with its stance
(or approach, or handstand) before the take-off and the water settling after the entry. It plays in
real time, not as SynDive's slow-motion replay, and the stretches are joined by cuts, so a cut never
says where a dive is. The ground truth is each dive's window: from the take-off to the moment the
spray column has fallen back (`DiveTruth`), in seconds from the session's first frame.

Everything about session `index` comes from `numpy.random.default_rng([seed, index])` (the plan) and
`default_rng([seed, index, k + 1])` (the rendering of its stretch k), so the same seed gives the same
plan, the same frames and the same file (x264 with `synth.X264_PARAMS`).

    session = plan_session(seed=0, index=3)
    session.dives            # [DiveTruth(start=4.28, end=6.4, number="305C", height="3m"), ...]
    write_session(session, "s3.mp4")   # H.264, session.size at session.fps
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aqa_cli.datasets.syndive import synth
from aqa_cli.datasets.syndive.motion import DivePlan, body_box, camera
from aqa_cli.datasets.syndive.render import Camera, Pose, Scene, lowest_point, render_frame

SOURCE = "SynDive sessions (synthetic)"
VERSION = "1"
KINDS = ("stand", "walk", "other", "empty")  # the stretches without a dive
LEAD = (0.4, 3.0)  # s of stance or approach before the take-off
TAIL = (1.2, 4.0)  # s of water after the entry
STRETCH = (1.5, 6.0)  # s of a stretch without a dive
SPRAY_START = 0.06  # s before the entry when the spray starts (motion.DivePlan.splash_at)
WALK_START = 2.15  # s before take-off when motion's approach starts walking (0.95 + its 1.2 s of steps)


@dataclass(frozen=True)
class DiveTruth:
    """One dive's ground-truth window in the session: `start` take-off, `end` spray gone (s)."""

    start: float
    end: float
    number: str
    height: str


@dataclass(frozen=True)
class Stretch:
    """One stretch of the session between two cuts: `kind` is "dive" or one of KINDS; `frames` at the
    session's fps from `first` (frame index); a dive stretch carries its SynDive spec."""

    kind: str
    first: int
    frames: int
    height: str
    spec: synth.DiveSpec | None = None


@dataclass(frozen=True)
class Session:
    """A planned session: its stretches in order and the dives' windows (nothing rendered yet)."""

    seed: int
    index: int
    fps: float
    size: tuple[int, int]  # (width, height) of the rendered frames
    stretches: tuple[Stretch, ...]
    dives: tuple[DiveTruth, ...]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.stretches)

    @property
    def duration(self) -> float:
        return self.frames / self.fps


class _SessionPlan(DivePlan):
    """A DivePlan whose stance can be longer than SynDive's: before motion's approach starts walking
    (WALK_START s before the take-off) the diver stands still where the walk begins, instead of
    walking on the spot."""

    def pose(self, t: float) -> Pose:
        if self.approach and t < self.takeoff - WALK_START:
            pose = super().pose(self.takeoff - WALK_START)  # where the walk starts, feet together
            pose.stride, pose.knee = 0.0, 0.0
            return self._stand(pose, pose.com[0])
        return super().pose(t)


def dive_plan(spec: synth.DiveSpec) -> DivePlan:
    """The physical dive of a session's spec (take-off `spec.lead` s into its stretch)."""
    plan = synth.plan_of(spec)
    return _SessionPlan(**{f.name: getattr(plan, f.name) for f in dataclasses.fields(DivePlan)})


def spray_end(plan: DivePlan) -> float:
    """Time (s, the plan's clock) when the spray column has fallen back: the end of the dive's window.
    The spray's life is motion.DivePlan.splash_at's (tests/test_locate.py checks the two agree)."""
    return plan.entry - SPRAY_START + 0.35 + 0.5 * plan.splash


def plan_session(seed: int, index: int, dives: tuple[int, int] = (1, 4), size: tuple[int, int] = (128, 96),
                 fps: float = 25.0, heights: tuple[str, ...] = synth.DEFAULT_HEIGHTS) -> Session:
    """Plan session `index` of the set `seed`: `dives` (min, max) dives, each with 0-2 stretches
    without a dive before it and 0-1 after the last; stretch lengths in whole frames."""
    rng = np.random.default_rng([seed, index])
    count = int(rng.integers(dives[0], dives[1] + 1))
    stretches: list[Stretch] = []
    truths: list[DiveTruth] = []
    first = 0

    def add(kind: str, seconds: float, height: str, spec=None) -> int:
        nonlocal first
        n = max(1, round(seconds * fps))
        stretches.append(Stretch(kind, first, n, height, spec))
        first += n
        return first - n

    for _ in range(count):
        for _ in range(int(rng.integers(0, 3))):
            add(str(rng.choice(KINDS)), rng.uniform(*STRETCH), heights[int(rng.integers(len(heights)))])
        spec, _ = synth.make_spec(int(rng.integers(2**31)), 0, heights)
        spec = dataclasses.replace(spec, lead=float(rng.uniform(*LEAD)))
        plan = dive_plan(spec)
        start = add("dive", plan.entry + rng.uniform(*TAIL), spec.height, spec) / fps
        truths.append(DiveTruth(round(start + plan.takeoff, 3), round(start + spray_end(plan), 3),
                                spec.number, spec.height))
    if rng.random() < 0.5:
        add(str(rng.choice(KINDS)), rng.uniform(*STRETCH), heights[int(rng.integers(len(heights)))])
    return Session(seed, index, float(fps), tuple(size), tuple(stretches), tuple(truths))


def render_session(session: Session) -> Iterator[np.ndarray]:
    """Yield the session's frames in order: uint8 (H, W, 3) each, (W, H) = session.size."""
    for k, stretch in enumerate(session.stretches):
        rng = np.random.default_rng([session.seed, session.index, k + 1])
        yield from _render_stretch(stretch, rng, session.size, session.fps)


def write_session(session: Session, path: str | Path, crf: int | None = None) -> Path:
    """Render and encode the session to H.264 at `path` (streamed: never the whole session in memory)."""
    from aqa_cli import video

    return video.write_video(path, render_session(session), fps=session.fps, crf=crf,
                             x264_params=synth.X264_PARAMS)


def labels(session: Session, times: np.ndarray) -> np.ndarray:
    """1.0 where `times` (s, any shape) fall inside a dive's window, else 0.0: float32, same shape."""
    out = np.zeros(np.shape(times), np.float32)
    for d in session.dives:
        out[(times >= d.start) & (times < d.end)] = 1.0
    return out


# ---------------------------------------------------------------------------------------------
# Rendering one stretch


def _render_stretch(stretch: Stretch, rng: np.random.Generator, size: tuple[int, int],
                    fps: float) -> Iterator[np.ndarray]:
    """The frames of one stretch: a camera set up afresh (a cut), the hall's look from the rng."""
    height = float(stretch.height[:-1])
    platform = stretch.height not in ("1m", "3m")
    probe = DivePlan(height=height, platform=platform, letter="A", ss_no=1, tw_no=0, facing=1, sense=1,
                     armstand=False, takeoff=1.0)
    scene = synth.make_scene(rng, probe, size, int(rng.integers(2**31)))
    view = float(rng.uniform(2.3, 3.2))  # metres shown top to bottom at the widest
    dist = float(rng.uniform(8.0, 14.0))
    offset = (float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.1, 0.2)))
    yaw = float(rng.uniform(-0.3, 0.3))
    shake = np.cumsum(rng.normal(0.0, float(rng.uniform(0.005, 0.03)), (stretch.frames, 2)), axis=0) * 0.5
    shake -= shake.mean(axis=0)
    t0 = float(rng.uniform(0.0, 100.0))  # where the water's ripples are
    if stretch.kind == "dive":
        plan = dive_plan(stretch.spec)
        for i in range(stretch.frames):
            t = i / fps
            cam = camera(plan, t, size[1], view, dist, offset, shake[i], yaw)
            yield render_frame(scene, cam, plan.pose(t), plan.splash_at(t), t0 + t, rng)
        return
    motion = _idle_motion(stretch.kind, rng, scene, height, platform)
    for i in range(stretch.frames):
        t = i / fps
        pose, target = motion(t)
        zoom = 1.0 if pose is None else min(view, max(1.1 * np.ptp(body_box(pose), axis=0).max() + 0.3, 1.4)) / view
        shown = view * zoom
        cy = max(target[1] + zoom * offset[1], 0.5 * shown - 0.2)
        cam = Camera(pos=(0.8 * target[0] + 0.2 + zoom * (offset[0] + shake[i, 0]), cy + zoom * shake[i, 1], dist),
                     f=size[1] * dist / shown, yaw=yaw)
        yield render_frame(scene, cam, pose, None, t0 + t, rng)


def _idle_motion(kind: str, rng: np.random.Generator, scene: Scene, height: float, platform: bool):
    """t (s) → (pose or None, camera target (x, y) in m) for a stretch without a dive.

    stand: a diver standing on the board (facing either way, arms moving a little); walk: walking
    along it and turning at its ends; other: another diver (own suit and build) standing or walking;
    empty: no one, the camera on the board's end or on the water."""
    back = -5.5 if platform else -4.6  # the board's far end, m behind the tip
    if kind == "empty":
        target = (float(rng.uniform(-1.5, 0.5)), height + 0.8) if rng.random() < 0.5 \
            else (float(rng.uniform(0.0, 2.0)), 0.8)
        return lambda t: (None, target)
    if kind == "other":  # another diver: another look; stands or walks
        other = synth.make_scene(rng, DivePlan(height=height, platform=platform, letter="A", ss_no=1, tw_no=0,
                                               facing=1, sense=1, armstand=False, takeoff=1.0),
                                 (scene.width, scene.height), 0)
        for name in ("suit", "skin", "hair", "chest_suit", "body_scale"):
            setattr(scene, name, getattr(other, name))
        kind = "walk" if rng.random() < 0.5 else "stand"
    facing = 1 if rng.random() < 0.5 else -1
    x0 = float(rng.uniform(back + 0.5, -0.2))
    phase, sway = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0.0, 0.4))

    def stand(t: float):
        pose = Pose(com=(0.0, 0.0), facing=facing, shoulder=sway * (1 + math.sin(1.3 * t + phase)),
                    arm_spread=0.1, ankle=1.4)
        return _on_board(pose, x0, height)

    speed = float(rng.uniform(0.8, 1.6))  # m/s

    def walk(t: float):
        span = -0.2 - (back + 0.5)
        s = (x0 - (back + 0.5) + speed * t) % (2 * span)  # there and back along the board
        x, way = (back + 0.5 + s, 1) if s < span else (back + 0.5 + 2 * span - s, -1)
        stride = 0.45 * math.sin(2 * math.pi * 0.9 * speed * t + phase)
        pose = Pose(com=(0.0, 0.0), facing=way * facing, stride=stride, knee=0.3 + 0.3 * abs(stride),
                    arm_spread=0.1, ankle=1.4)
        return _on_board(pose, x, height)

    return stand if kind == "stand" else walk


def _on_board(pose: Pose, x: float, height: float) -> tuple[Pose, tuple[float, float]]:
    """The pose standing on the board top at x, and the middle of its body (the camera's target)."""
    pose.com = (x, height - lowest_point(pose))
    box = body_box(pose)
    return pose, (float(box[:, 0].mean()), float(box[:, 1].mean()))
