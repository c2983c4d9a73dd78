"""SynDive's renderer: an articulated 3D diver, a board or platform, a hall and a pool, drawn in numpy.

World coordinates in metres: x points from the board tip (x = 0) out over the water, y up from the
water surface (y = 0), z toward the camera. The diver moves in the x-y plane; the camera is a pinhole
looking along -z that translates (a rail camera) to follow the diver, so the diver stays large in
frame while the wall bands, the board and the water show the height and travel.

The body is 16 capsules (head, chest, abdomen, upper arms, forearms, thighs, shins, feet); each is
drawn as a shaded capsule in screen space (the pinhole projects its axis and radius) with a z-buffer,
evaluated only over the diver's bounding box. The hall wall and the water are separable per row and
column, so one frame costs about a millisecond at 171x128.

`Pose` says where the body is and how it is bent; `Scene` holds what stays fixed for one dive
(colours, camera, lighting); `render_frame(scene, camera, pose, splash, t)` returns uint8 (H, W, 3).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Body dimensions of a 1.70 m diver (metres), scaled per dive by Scene.body_scale.
PELVIS_TO_NECK = 0.50
NECK_TO_HEAD = 0.17
HEAD_R = 0.105
SHOULDER_HALF = 0.17
HIP_HALF = 0.09
UPPER_ARM, FOREARM = 0.30, 0.30
THIGH, SHIN, FOOT = 0.43, 0.43, 0.17
COM_ABOVE_PELVIS = 0.10  # the centre of mass of a straight body sits ~10 cm above the hip joints


@dataclass
class Pose:
    """The body at one instant.

    `com` (x, y) centre of mass in world metres; `pitch` somersault angle in radians about the
    lateral axis (0 upright, pi upside down; positive = the head moves toward -x); `twist` radians
    about the body's long axis; `facing` +1 chest toward the water (+x) when upright, -1 toward the
    board. Joint angles in radians: `hip` flexion (thighs forward), `knee` flexion, `spread` leg
    abduction (each leg), `stride` extra hip flexion of the left leg (minus
    for the right, walking), `shoulder` arm elevation (0 arms down, pi overhead), `arm_spread` arm
    abduction, `elbow` flexion, `ankle` foot angle (0 pointed toes, pi/2 standing).
    """

    com: tuple[float, float]
    pitch: float = 0.0
    twist: float = 0.0
    facing: int = 1
    hip: float = 0.0
    stride: float = 0.0
    knee: float = 0.0
    spread: float = 0.0
    shoulder: float = 0.0
    arm_spread: float = 0.1
    elbow: float = 0.0
    ankle: float = 0.0


@dataclass
class Camera:
    """Pinhole camera at `pos` (x, y, z) looking along -z with focal length `f` in pixels; the diving
    plane (board, diver, splash) is turned by `yaw` radians about the vertical through the board tip,
    so the camera sees the dive a little from the front or the back."""

    pos: tuple[float, float, float]
    f: float
    yaw: float = 0.0


@dataclass
class Splash:
    """Spray column and foam at the entry point `x` (m): `height` and `width` of the column now (m),
    `foam` radius of the white water on the surface (m)."""

    x: float
    height: float
    width: float
    foam: float


@dataclass
class Scene:
    """What stays fixed during one dive: apparatus, colours (RGB 0-1), light and image size."""

    width: int
    height: int
    board_height: float  # metres above the water
    platform: bool
    suit: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    wall: np.ndarray
    wall_accent: np.ndarray
    water: np.ndarray
    board: np.ndarray
    light: np.ndarray  # unit vector toward the light, camera coordinates (x right, y up, z toward viewer)
    ambient: float
    wall_depth: float  # metres behind the diving plane
    body_scale: float = 1.0
    chest_suit: bool = True  # one-piece suit (else bare chest)
    noise: float = 2.0  # sensor noise, grey levels
    seed: int = 0  # seeds the splash's spray pattern


def _rot2(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def body_capsules(pose: Pose, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Capsules of the body in world coordinates.

    Returns a (K, 3) start points, b (K, 3) end points, r (K, 2) radii at each end (m), part (K,)
    ints (0 skin, 1 suit, 2 head, 3 chest) used for colouring.
    """
    up, fwd, lat = np.array([0.0, 1, 0]), np.array([float(pose.facing), 0, 0]), np.array([0.0, 0, 1])
    c, s = np.cos(pose.twist), np.sin(pose.twist)
    fwd, lat = c * fwd + s * lat, -s * fwd + c * lat

    def limb(angle: float, side: float, spread: float) -> np.ndarray:
        """Unit direction of a limb swung `angle` forward from hanging down, abducted by `spread`."""
        d = -np.cos(angle) * up + np.sin(angle) * fwd
        return np.cos(spread) * d + np.sin(spread) * side * lat

    neck = PELVIS_TO_NECK * up
    head = neck + NECK_TO_HEAD * up
    starts, ends, radii, parts = [], [], [], []

    def add(a, b, ra, rb, part):
        starts.append(a), ends.append(b), radii.append((ra, rb)), parts.append(part)

    add(0.02 * up, 0.28 * up, 0.115, 0.11, 1)
    add(0.26 * up, neck - 0.04 * up, 0.12, 0.13, 3)
    add(neck - 0.02 * up, head, 0.05, 0.05, 0)
    add(head, head + 0.01 * fwd, HEAD_R, HEAD_R, 2)
    for side in (-1.0, 1.0):
        shoulder = neck - 0.05 * up + side * SHOULDER_HALF * lat
        arm = pose.shoulder - 0.6 * side * pose.stride  # arms swing against the legs
        elbow = shoulder + UPPER_ARM * limb(arm, side, pose.arm_spread)
        d2 = limb(arm + pose.elbow, side, pose.arm_spread)
        add(shoulder, elbow, 0.048, 0.04, 0)
        add(elbow, elbow + FOREARM * d2, 0.038, 0.03, 0)
        hip = side * HIP_HALF * lat
        flex = pose.hip + side * pose.stride
        knee = hip + THIGH * limb(flex, side, pose.spread)
        ankle = knee + SHIN * limb(flex - pose.knee, side, pose.spread)
        d5 = limb(flex - pose.knee + pose.ankle, side, pose.spread)
        add(hip, knee, 0.08, 0.06, 0)
        add(knee, ankle, 0.055, 0.04, 0)
        add(ankle, ankle + FOOT * d5, 0.035, 0.025, 0)
    a, b = np.array(starts) * scale, np.array(ends) * scale
    rot = _rot2(pose.pitch)
    com = np.array([pose.com[0], pose.com[1], 0.0])
    origin = COM_ABOVE_PELVIS * scale * up
    a = (a - origin) @ rot.T + com
    b = (b - origin) @ rot.T + com
    return a, b, np.array(radii) * scale, np.array(parts)


def lowest_point(pose: Pose, scale: float = 1.0) -> float:
    """World y (m) of the lowest body surface: used to stand the diver on the board."""
    a, b, r, _ = body_capsules(pose, scale)
    return float(min((a[:, 1] - r[:, 0]).min(), (b[:, 1] - r[:, 1]).min()))


def _project(cam: Camera, pts: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diving-plane points (K, 3) → pixel u (K,), v (K,), depth (K,) in metres along the view axis."""
    c, s = np.cos(cam.yaw), np.sin(cam.yaw)
    pts = np.stack([c * pts[:, 0] + s * pts[:, 2], pts[:, 1], -s * pts[:, 0] + c * pts[:, 2]], axis=1)
    depth = cam.pos[2] - pts[:, 2]
    u = w / 2 + cam.f * (pts[:, 0] - cam.pos[0]) / depth
    v = h / 2 - cam.f * (pts[:, 1] - cam.pos[1]) / depth
    return u, v, depth


def _background(scene: Scene, cam: Camera, t: float) -> np.ndarray:
    """Hall wall (horizontal tile lines every metre, panels, an accent band) and the pool: float (H, W, 3)."""
    w, h = scene.width, scene.height
    dist = cam.pos[2] + scene.wall_depth
    us = np.arange(w, dtype=np.float32) + 0.5
    vs = np.arange(h, dtype=np.float32) + 0.5
    xw = cam.pos[0] + (us - w / 2) * dist / cam.f
    yw = cam.pos[1] - (vs - h / 2) * dist / cam.f
    line = lambda x, period, width: (np.abs(((x / period) % 1.0) - 0.5) > 0.5 - width / period)
    # Faint joints: at the contrast of the limbs they were clutter a small video model confused with them.
    row = 1.0 - 0.12 * line(yw, 1.0, 0.06) - 0.05 * ((np.floor(yw) % 2) == 0)
    col = 1.0 - 0.1 * line(xw, 2.5, 0.08)
    img = scene.wall[None, None, :] * (row[:, None] * col[None, :]).astype(np.float32)[..., None]
    band = (yw > 5.2) & (yw < 6.0)  # a banner across the hall, 5.2-6.0 m up
    img[band] = scene.wall_accent * col[None, :, None]
    img[(yw < 0.0)] = scene.wall * 0.5  # wall below the water line (hidden by the pool anyway)
    # Pool surface: rows below the horizon whose ray meets y = 0 in front of the wall.
    below = vs > h / 2 + 1e-3
    if cam.pos[1] > 0 and below.any():
        rows = np.nonzero(below)[0]
        d = cam.pos[1] * cam.f / (vs[rows] - h / 2)  # distance to the water along the view axis
        water = d < dist
        rows, d = rows[water], d[water]
        if rows.size:
            x = cam.pos[0] + (us[None, :] - w / 2) * d[:, None] / cam.f
            ripple = 0.08 * np.sin(2.5 * x + 1.7 * d[:, None] + 3.0 * t) * np.sin(0.9 * d[:, None] - 2.0 * t)
            shade = (0.75 + 0.35 * np.exp(-d / 12.0))[:, None] + ripple
            img[rows] = scene.water[None, None, :] * shade[..., None]
    return img


def _fill_quad(img: np.ndarray, u: np.ndarray, v: np.ndarray, color: np.ndarray) -> None:
    """Fill the convex quad with corners (u[i], v[i]) in order, in place."""
    h, w = img.shape[:2]
    u0, u1 = max(int(np.floor(u.min())), 0), min(int(np.ceil(u.max())), w)
    v0, v1 = max(int(np.floor(v.min())), 0), min(int(np.ceil(v.max())), h)
    if u0 >= u1 or v0 >= v1:
        return
    px = np.arange(u0, u1, dtype=np.float32)[None, :] + 0.5
    py = np.arange(v0, v1, dtype=np.float32)[:, None] + 0.5
    sign = np.sign((u[1] - u[0]) * (v[2] - v[0]) - (v[1] - v[0]) * (u[2] - u[0])) or 1.0
    inside = np.ones((v1 - v0, u1 - u0), bool)
    for i in range(4):
        j = (i + 1) % 4
        inside &= sign * ((u[j] - u[i]) * (py - v[i]) - (v[j] - v[i]) * (px - u[i])) >= 0
    img[v0:v1, u0:u1][inside] = color


def _draw_box(img: np.ndarray, scene: Scene, cam: Camera, lo, hi, color: np.ndarray) -> None:
    """An axis-aligned box from corner `lo` to `hi` (world m): its faces that look at the camera."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    corners = np.array([[hi[0] if i & 1 else lo[0], hi[1] if i & 2 else lo[1], hi[2] if i & 4 else lo[2]]
                        for i in range(8)])
    u, v, d = _project(cam, corners, scene.width, scene.height)
    if (d <= 0.1).any():
        return
    faces = [  # (corner indices in order, outward normal axis, side, brightness)
        ((4, 5, 7, 6), 2, 1, 1.0),  # front (z = hi)
        ((2, 3, 7, 6), 1, 1, 1.15),  # top
        ((0, 1, 5, 4), 1, 0, 0.55),  # bottom
        ((1, 3, 7, 5), 0, 1, 0.8),  # end toward the water
        ((0, 2, 6, 4), 0, 0, 0.8),  # end toward the wall
    ]
    for idx, axis, side, shade in faces:
        plane = hi[axis] if side else lo[axis]
        if axis != 2 and (cam.pos[axis] > plane) != bool(side):
            continue  # back-facing
        idx = list(idx)
        _fill_quad(img, u[idx], v[idx], np.clip(color * shade, 0, 1))


def _apparatus(img: np.ndarray, scene: Scene, cam: Camera) -> None:
    """Springboard on its stand, or a concrete platform on its tower; the tip is at x = 0."""
    top = scene.board_height
    if scene.platform:
        _draw_box(img, scene, cam, (-4.0, 0.0, -2.5), (-1.2, top - 0.4, -0.5), scene.board * 0.7)
        _draw_box(img, scene, cam, (-6.0, top - 0.4, -1.2), (0.0, top, 1.2), scene.board)
    else:
        _draw_box(img, scene, cam, (-3.8, 0.0, -0.6), (-3.2, top - 0.08, 0.6), scene.board * 0.6)
        _draw_box(img, scene, cam, (-2.2, 0.0, -0.5), (-1.9, top - 0.08, 0.5), scene.board * 0.6)
        _draw_box(img, scene, cam, (-4.9, top - 0.08, -0.25), (0.0, top, 0.25), scene.board)


def _diver(img: np.ndarray, scene: Scene, cam: Camera, pose: Pose) -> None:
    """Draw the body's capsules, shaded, with a z-buffer, over the body's bounding box."""
    h, w = img.shape[:2]
    a, b, r, parts = body_capsules(pose, scene.body_scale)
    ua, va, da = _project(cam, a, w, h)
    ub, vb, db = _project(cam, b, w, h)
    ra, rb = cam.f * r[:, 0] / da, cam.f * r[:, 1] / db
    pad = max(ra.max(), rb.max()) + 1
    u0 = max(int(min(ua.min(), ub.min()) - pad), 0)
    u1 = min(int(max(ua.max(), ub.max()) + pad) + 1, w)
    v0 = max(int(min(va.min(), vb.min()) - pad), 0)
    v1 = min(int(max(va.max(), vb.max()) + pad) + 1, h)
    if u0 >= u1 or v0 >= v1:
        return
    px = (np.arange(u0, u1, dtype=np.float32) + 0.5)[None, None, :]
    py = (np.arange(v0, v1, dtype=np.float32) + 0.5)[None, :, None]
    col = lambda x: x.astype(np.float32)[:, None, None]
    abx, aby = col(ub - ua), col(vb - va)
    len2 = np.maximum(abx * abx + aby * aby, 1e-6)
    t = np.clip(((px - col(ua)) * abx + (py - col(va)) * aby) / len2, 0.0, 1.0)  # (K, h, w)
    dx = px - (col(ua) + t * abx)
    dy = py - (col(va) + t * aby)
    rad = col(ra) + t * col(rb - ra)
    d2 = (dx * dx + dy * dy) / (rad * rad)
    nz = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
    depth = col(da) + t * col(db - da) - nz * col(r[:, 0])
    depth = np.where(d2 < 1.0, depth, np.inf)
    k = depth.argmin(axis=0)
    hit = np.isfinite(np.take_along_axis(depth, k[None], 0)[0])
    if not hit.any():
        return
    pick = lambda x: np.take_along_axis(x, k[None], 0)[0]
    tk, nzk, radk = pick(t), pick(nz), pick(rad)
    nx, ny = pick(dx) / radk, -pick(dy) / radk
    lam = np.clip(nx * scene.light[0] + ny * scene.light[1] + nzk * scene.light[2], 0.0, 1.0)
    # Colour by part: skin, suit, head (face toward the body's front, hair behind), chest.
    albedo = np.empty((len(parts), 3), np.float32)
    albedo[parts == 0] = scene.skin
    albedo[parts == 1] = scene.suit
    albedo[parts == 3] = scene.suit if scene.chest_suit else scene.skin
    albedo[parts == 2] = scene.skin
    color = albedo[k]
    c, s = np.cos(pose.twist), np.sin(pose.twist)
    fwd = _rot2(pose.pitch) @ np.array([pose.facing * c, 0.0, s])  # the body's front, world = camera axes
    head = (k == 3) & ((nx * fwd[0] + ny * fwd[1] + nzk * fwd[2]) < 0.1)
    color[head] = scene.hair
    # Underwater parts fade into the pool: world y along the capsule axis.
    yk = (a[:, 1][k] + tk * (b[:, 1] - a[:, 1])[k])
    wet = np.clip(-yk / 0.15, 0.0, 0.9)[..., None]
    shaded = color * (scene.ambient + (1.0 - scene.ambient) * lam)[..., None]
    shaded += 0.25 * (lam ** 12)[..., None]  # wet-skin highlight
    region = img[v0:v1, u0:u1]
    out = shaded * (1 - wet) + region * wet
    region[hit] = out[hit]


def _splash(img: np.ndarray, scene: Scene, cam: Camera, splash: Splash, t: float) -> None:
    """White spray column (ragged, seeded per dive) and foam at the entry point."""
    h, w = img.shape[:2]
    if splash.height <= 0.01 and splash.foam <= 0.01:
        return
    dist = cam.pos[2]
    us = np.arange(w, dtype=np.float32) + 0.5
    vs = np.arange(h, dtype=np.float32) + 0.5
    x = cam.pos[0] + (us - w / 2) * dist / cam.f - splash.x * np.cos(cam.yaw)
    y = cam.pos[1] - (vs - h / 2) * dist / cam.f
    rng = np.random.default_rng(scene.seed + int(t * 1000))
    if splash.height > 0.01:
        jag = 1.0 + 0.35 * np.sin(x * 23.0 + 7 * t) * np.cos(x * 11.0)  # ragged spray edge
        top = splash.height * jag * np.exp(-(x / max(splash.width, 0.05)) ** 2)
        mask = (y[:, None] > -0.05) & (y[:, None] < top[None, :])
        mask &= rng.random(mask.shape) < 0.9
        img[mask] = img[mask] * 0.15 + 0.85 * np.array([0.95, 0.97, 1.0], np.float32)
    if splash.foam > 0.01:  # a flat, speckled ellipse of white water on the surface
        ry = 0.06 + 0.05 * splash.foam
        inside = (x[None, :] / splash.foam) ** 2 + ((y[:, None] + 0.02) / ry) ** 2 < 1.0
        foam = inside & (rng.random(inside.shape) < 0.7)
        img[foam] = img[foam] * 0.35 + 0.65 * np.array([0.9, 0.95, 1.0], np.float32)


def render_frame(scene: Scene, cam: Camera, pose: Pose | None, splash: Splash | None, t: float,
                 rng: np.random.Generator) -> np.ndarray:
    """One frame: uint8 (H, W, 3). `pose` None draws the hall, apparatus and water without a diver
    (the empty scenes of generated sessions, session.py)."""
    img = _background(scene, cam, t)
    _apparatus(img, scene, cam)
    if pose is not None:
        _diver(img, scene, cam, pose)
    if splash is not None:
        _splash(img, scene, cam, splash, t)
    img *= 255.0
    img += scene.noise * rng.standard_normal(img.shape[:2] + (1,), dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 (H, W, 3) RGB as a PNG with the standard library only (zlib + struct)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape[:2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = image.reshape(h, w * 3)
    up = np.diff(rows, axis=0, prepend=np.zeros((1, w * 3), np.uint8))  # PNG filter 2 ("Up"), mod 256
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1).tobytes()
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)
