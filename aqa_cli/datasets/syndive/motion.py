"""SynDive's choreography: a dive number and its faults → the diver's pose, the splash and the camera
at any time.

Physics (see DESIGN.md, "Facts for SynDive"): the centre of mass flies on a parabola under g = 9.81
m/s² from the take-off to the entry; the somersault rate is higher while the body is closed (tuck 3.5x,
pike 2.5x the open rate, from the smaller moment of inertia), scaled so the total rotation is exactly
the dive's half somersaults plus the hidden over/under-rotation; twists turn about the body's long axis
in the open part of the flight. Take-off faces the water for forward and reverse dives (a running
approach and hurdle on springboards), the board for back and inward dives; armstand dives start in a
handstand on the platform edge, upside down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aqa_cli.datasets.syndive.render import Camera, Pose, Splash, body_capsules, lowest_point

G = 9.81  # m/s²
# Somersault rate while closed relative to open (moment of inertia ratio, roughly): by position letter.
SPIN_GAIN = {"A": 1.0, "B": 2.5, "C": 3.5, "D": 1.4}
TAKEOFF_SPEED = {"springboard": 5.0, "1m": 4.3, "platform": 3.3, "armstand": 1.4}  # vertical, m/s
ENTRY_COM = 0.95  # height of the centre of mass (m) when the hands or feet reach the water
COME_OUT = 0.5  # rad still to turn after coming out of a tuck or pike, in the straight line to the entry
ENTRY_X = 1.0  # a safe, ideal entry point (m beyond the board tip)
ZOOM_TIGHTEST = 1.4  # m shown top to bottom when the camera is closest (a tight tuck)


@dataclass
class DivePlan:
    """Everything that decides one rendered dive (angles in radians, lengths in metres, times in s)."""

    height: float  # board / platform height above the water
    platform: bool
    letter: str  # A straight, B pike, C tuck, D free
    ss_no: int  # half somersaults
    tw_no: int  # half twists
    facing: int  # +1 chest to the water at take-off (forward, reverse), -1 to the board
    sense: int  # +1 forward rotation (forward, inward), -1 backward (back, reverse)
    armstand: bool
    takeoff: float  # time of take-off within the clip
    rotation_error: float = 0.0  # + over-rotated at entry, - short
    twist_error: float = 0.0
    knee_bend: float = 0.0
    loose: float = 0.0  # 0 tight .. 1 loose tuck/pike
    legs_apart: float = 0.0  # abduction of each leg in flight
    height_loss: float = 0.0  # fraction of the take-off speed missing
    distance: float = 0.0  # entry point offset from ENTRY_X (- closer to the board)
    splash: float = 0.1  # spray column height (m)

    def __post_init__(self) -> None:
        speed = TAKEOFF_SPEED["armstand" if self.armstand else "platform" if self.platform
                              else "1m" if self.height < 2 else "springboard"]
        self.vy = speed * (1.0 - self.height_loss)
        self.x0 = -0.15 if self.armstand else -0.25 if self.facing > 0 else -0.12
        self.y0 = self.height + (0.85 if self.armstand else 1.05)
        drop = self.y0 - ENTRY_COM
        self.flight = (self.vy + math.sqrt(self.vy ** 2 + 2 * G * drop)) / G
        self.vx = (ENTRY_X + self.distance - self.x0) / self.flight
        self.entry = self.takeoff + self.flight
        self.lean = 0.0 if self.armstand else 0.25
        start = math.pi if self.armstand else 0.0
        self.end_pitch = start + self.ss_no * math.pi + self.rotation_error
        self.approach = not self.platform and self.facing > 0 and not self.armstand
        # Closed window (tuck/pike) and twist window as fractions of the flight.
        closed = self.letter in "BC"
        twisting = self.tw_no > 0
        gain = SPIN_GAIN[self.letter] if closed or self.letter == "D" else 1.0
        if closed and not twisting:
            # Come out of the tuck/pike late enough that only COME_OUT rad are left to turn slowly
            # in the straight line before entry: solve for the open fraction a at the end.
            turn = abs(self.end_pitch - start)
            a = (0.08 + 0.92 * gain) / max(turn / COME_OUT - 1 + gain, 1e-3)
            span = 0.92 - min(max(a, 0.1), 0.6)
        else:
            span = 0.4
        self.closed_win = (0.08, 0.08 + span) if closed or self.letter == "D" else (0.0, 0.0)
        self.twist_win = ((0.08 + span, 0.88) if closed else (0.15, 0.8)) if twisting else (0.0, 0.0)
        grid = np.linspace(0.0, 1.0, 201)
        rate = 1.0 + (gain - 1.0) * self._closedness(grid)
        cum = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2)])
        self._grid, self._spin = grid, cum / cum[-1]  # fraction of the flight's rotation done

    def _closedness(self, u: np.ndarray | float) -> np.ndarray:
        """0 open .. 1 fully closed at flight fraction u; 0.08 of the flight to close or open."""
        a, b = self.closed_win
        if b <= a:
            return np.zeros_like(np.asarray(u, float))
        return np.clip(np.minimum((u - a) / 0.08, (b - u) / 0.08), 0.0, 1.0)

    def world_pitch(self, angle: float) -> float:
        """Somersault angle in the dive's sense → Pose.pitch (positive moves the head toward -x)."""
        return -self.facing * self.sense * angle

    def pose(self, t: float) -> Pose:
        """The body at time t (s)."""
        if t < self.takeoff:
            return self._before(t)
        if t < self.entry:
            return self._flight(t)
        pose = self._flight(self.entry - 1e-6)
        tau = t - self.entry  # after entry the body keeps sliding into the water, slowing down
        v = self.vy - G * self.flight
        pose.com = (pose.com[0] + 0.1 * self.vx * tau, ENTRY_COM + v * 0.35 * (1 - math.exp(-tau / 0.35)))
        return pose

    def _flight(self, t: float) -> Pose:
        tau = t - self.takeoff
        u = tau / self.flight
        spin = float(np.interp(u, self._grid, self._spin))
        start = math.pi if self.armstand else self.lean
        angle = start + (self.end_pitch - start) * spin
        k = float(self._closedness(u))
        a, b = self.twist_win
        tw = 0.0 if b <= a else _smooth((u - a) / (b - a)) * (self.tw_no * math.pi + self.twist_error)
        # Open shape: arms spread for somersaults, wrapped to the chest while twisting.
        open_ = dict(hip=0.3 if self.letter == "D" else 0.0, knee=self.knee_bend, shoulder=0.5,
                     arm_spread=1.2, elbow=0.3)
        if self.tw_no:
            open_.update(shoulder=0.4, arm_spread=0.0, elbow=2.2)
        loose = 1.0 - 0.3 * self.loose
        if self.letter == "C":
            shut = dict(hip=2.35 * loose, knee=2.45 * loose, shoulder=1.2, arm_spread=0.15,
                        elbow=0.9 + 0.8 * self.loose)
        elif self.letter == "B":
            shut = dict(hip=2.55 * loose, knee=self.knee_bend, shoulder=1.5 - 0.5 * self.loose,
                        arm_spread=0.1, elbow=0.2)
        else:
            shut = dict(open_, hip=0.45)
        # The entry line: arms overhead for head-first, along the body for feet-first.
        head_first = math.cos(self.end_pitch) < 0
        entry = dict(hip=0.0, knee=self.knee_bend, shoulder=math.pi if head_first else 0.0,
                     arm_spread=0.05, elbow=0.0)
        line_up = min(max(self.closed_win[1] - 0.04, 0.6), 0.9)  # reach for the water from here
        e = _smooth((u - line_up) / (0.97 - line_up))
        joints = {j: (open_[j] * (1 - k) + shut[j] * k) * (1 - e) + entry[j] * e for j in open_}
        com = (self.x0 + self.vx * tau, self.y0 + self.vy * tau - G * tau * tau / 2)
        spread = self.legs_apart * (1.0 - 0.5 * k)
        return Pose(com=com, pitch=self.world_pitch(angle), twist=tw, facing=self.facing,
                    spread=spread, ankle=0.0, **joints)

    def _before(self, t: float) -> Pose:
        """Handstand, standing press, or approach and hurdle, ending in the take-off at `takeoff`."""
        dt = self.takeoff - t  # time left before take-off
        if self.armstand:
            wobble = 0.03 * math.sin(5.0 * t)
            tilt = 0.25 * _smooth((0.4 - dt) / 0.4)  # the push starts the fall
            pose = Pose(com=(0.0, 0.0), pitch=self.world_pitch(math.pi + tilt + wobble), facing=self.facing,
                        shoulder=math.pi, arm_spread=0.15, ankle=0.0)
            return self._stand(pose, self.x0)
        crouch = _bump(dt, 0.3, 0.25)  # knees bend ~0.3 s before take-off, then extend
        swing = _smooth((0.9 - dt) / 0.5)  # arms swing back and down...
        lift = _smooth((0.3 - dt) / 0.3)  # ...then up through the take-off
        shoulder = -0.5 * swing * (1 - lift) + 2.6 * lift
        lean = self.world_pitch(self.lean * _smooth((0.4 - dt) / 0.4))
        pose = Pose(com=(0.0, 0.0), pitch=lean, facing=self.facing, hip=0.8 * crouch, knee=1.4 * crouch,
                    shoulder=shoulder, arm_spread=0.1, ankle=1.4 * (1 - lift))
        x, rise = self.x0, 0.0
        if self.approach:
            walk_end = 0.95  # s before take-off: walk until then, hurdle until 0.35 s
            if dt > walk_end:  # three or four steps at ~1.5 m/s, from a standing start
                walked = min(dt - walk_end, 1.2)
                x = -1.35 - 1.5 * walked
                pose.stride = 0.45 * math.sin(2 * math.pi * 1.8 * t) * min(1.0, (dt - walk_end) * 3)
                pose.knee = 0.3 + 0.3 * abs(pose.stride)
            elif dt > 0.35:  # hurdle: one knee up, arms up, a hop onto the tip of the board
                h = (walk_end - dt) / (walk_end - 0.35)
                x = -1.35 + (self.x0 + 1.35) * h
                rise = 0.55 * math.sin(math.pi * h)
                pose.stride, pose.hip, pose.knee = 0.6 * math.sin(math.pi * h), 0.3, 0.9 * math.sin(math.pi * h)
                pose.shoulder = 2.8 * math.sin(math.pi * h)
        pose = self._stand(pose, x)
        pose.com = (pose.com[0], pose.com[1] + rise)
        return pose

    def _stand(self, pose: Pose, x: float) -> Pose:
        """Put the pose's lowest point (feet, or hands in a handstand) on the board top at x."""
        low = lowest_point(pose)  # with com at (0, 0)
        pose.com = (x, self.height - low)
        return pose

    def splash_at(self, t: float) -> Splash | None:
        """Spray and foam after the entry; None before it."""
        tau = t - self.entry + 0.06  # the spray starts as the hands break the surface
        if tau <= 0:
            return None
        x = self.x0 + self.vx * self.flight
        life = 0.35 + 0.5 * self.splash
        height = self.splash * math.sin(math.pi * tau / life) if tau < life else 0.0
        foam = (0.25 + 0.6 * self.splash) * min(1.0, tau / 0.3) * math.exp(-max(tau - 1.5, 0.0))
        return Splash(x=x, height=height, width=0.2 + 0.35 * self.splash, foam=foam)

    def com_track(self, t: float) -> tuple[float, float]:
        """Where the centre of mass is (a camera target), without the pose."""
        if t < self.takeoff:
            return (self.x0 if not self.approach else min(self.x0, -1.35 - 1.5 * max(self.takeoff - t - 0.95, 0)),
                    self.y0)
        tau = min(t, self.entry) - self.takeoff
        return (self.x0 + self.vx * tau, max(self.y0 + self.vy * tau - G * tau * tau / 2, ENTRY_COM))


def camera(plan: DivePlan, t: float, frame_h: int, view: float, dist: float, offset: tuple[float, float],
           shake: np.ndarray, yaw: float = 0.0) -> Camera:
    """A rail camera `dist` m from the diving plane that follows the middle of the body (sideways with
    a 30 ms lag and 80 % of the way, so the diver stays inside a centre crop) and zooms as a replay
    operator does: it shows `framing(...)` m vertically, at most `view`, with the framing `offset` and
    the shake shrinking as it zooms in, never so high that less than 0.2 m of water shows at the
    bottom: the entry and splash stay in frame."""
    x = body_box(plan.pose(t - 0.03)).mean(axis=0)[0]
    y = body_box(plan.pose(t)).mean(axis=0)[1]
    shown = framing(plan, t, view)
    zoom = shown / view
    cy = max(y + zoom * offset[1], 0.5 * shown - 0.2)
    cx = 0.8 * x + 0.2 + zoom * offset[0]
    return Camera(pos=(cx + zoom * shake[0], cy + zoom * shake[1], dist), f=frame_h * dist / shown, yaw=yaw)


def framing(plan: DivePlan, t: float, widest: float) -> float:
    """Metres the camera shows top to bottom at time t: tight on a closed body (a tuck fills about
    two thirds of the frame), wide on an open one, at most `widest`.

    The body's extent is taken at most over t-0.25..t+0.25 s, so the zoom opens before the diver does
    (the operator knows the dive) and never cuts a limb off."""
    extent = max(np.ptp(body_box(plan.pose(t + dt)), axis=0).max() for dt in (-0.25, -0.125, 0.0, 0.125, 0.25))
    return float(np.clip(1.1 * extent + 0.3, ZOOM_TIGHTEST, widest))


def body_box(pose: Pose) -> np.ndarray:
    """Bounding box of the body in the diving plane: [[x_min, y_min], [x_max, y_max]] (m)."""
    a, b, r, _ = body_capsules(pose)
    pts = np.concatenate([a[:, :2] - r[:, :1], a[:, :2] + r[:, :1], b[:, :2] - r[:, 1:], b[:, :2] + r[:, 1:]])
    return np.stack([pts.min(axis=0), pts.max(axis=0)])


def _smooth(x: float) -> float:
    """Smoothstep on [0, 1], clamped."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def _bump(dt: float, centre: float, half: float) -> float:
    """A smooth 0→1→0 bump of half-width `half` around `centre` (s)."""
    return max(0.0, math.cos(min(abs(dt - centre) / half, 1.0) * math.pi / 2)) ** 2
