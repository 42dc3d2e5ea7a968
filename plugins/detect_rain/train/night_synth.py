"""Render whole night IR alarm clips: moths at the IR lamp, far small insects, spider silk in front of the lens, a
walking person or a car, rain.

Unlike ``synth.py`` (a few short windows for the rain model) these are full clips (18 s by default) that go
through the core pipeline as a camera sends them, so the motion analysis, the keyframes and the verdict are real.
Everything is driven by a seeded ``NightSpec``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from alarmcloud.testing import make_clip
from synth import ClipSpec, photo_background, photo_list, procedural_background, rain_alpha, silk_glow, to_night

#: new kinds go at the end: a clip's generator is seeded with its kind's index
KINDS = ("clear", "insects", "insects_person", "insects_car", "person", "car", "rain", "rain_insects", "lights",
         "insects_lights", "web", "web_person", "web_car", "web_lights", "web_insects", "web_rain")


@dataclass
class NightSpec:
    """One night clip: the scene, the insects, an optional real mover, rain."""

    seed: int
    kind: str
    photo: str | None = None
    size: tuple[int, int] = (640, 360)
    fps: int = 15
    seconds: float = 18.0
    gop: float = 2.0
    noise: float = 5.0
    near: int = 0  # moths close to the lens: big, soft, bright, erratic
    far: int = 0  # small insects farther away
    mover: str = ""  # person | car
    rain: int = 0  # rain streaks per 640x360 frame
    agc: bool = False  # the camera's gain jumps now and then
    webs: int = 0  # strands of spider silk in front of the lens, swaying in the wind
    extra: dict[str, float] = field(default_factory=dict)


def random_night_spec(rng: np.random.Generator, seed: int, photos: list[Path], kind: str | None = None) -> NightSpec:
    """A varied night clip of ``kind`` (drawn when None)."""
    kind = kind or str(rng.choice(KINDS))
    insects = "insects" in kind
    near = int(rng.integers(1, 5)) if insects and rng.random() < 0.85 else 0
    far = int(rng.integers(0, 16)) if insects else (int(rng.integers(0, 4)) if rng.random() < 0.2 else 0)
    if insects and not near and not far:
        far = int(rng.integers(5, 20))
    return NightSpec(
        seed=seed,
        kind=kind,
        photo=str(rng.choice(photos)) if photos and rng.random() < 0.6 else None,
        fps=int(rng.choice([10, 12, 15, 20])),
        gop=float(rng.choice([1.0, 2.0, 2.0, 4.0])),
        noise=float(rng.uniform(2, 10)),
        near=near,
        far=far,
        mover="person" if "person" in kind else ("car" if "car" in kind else ("lights" if "lights" in kind else "")),
        rain=int(rng.uniform(300, 1500)) if "rain" in kind else 0,
        agc=bool(rng.random() < 0.2),
        webs=int(rng.integers(1, 5)) if "web" in kind else 0,
    )


class _Moth:
    """A moth near the lens: an out-of-focus bright disc with a soft rim, flying erratically around the lamp."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, fps: int, seconds: float, near: bool) -> None:
        s = w / 640.0
        self.rng, self.w, self.h = rng, w, h
        self.near = near
        self.r = (rng.uniform(10, 55) if near else rng.uniform(1.0, 4.0)) * s
        self.soft = rng.uniform(0.15, 0.6) if near else 0.5  # rim width as a share of the radius
        self.amp = rng.uniform(60, 200) if near else rng.uniform(40, 160)
        speed = (rng.uniform(4, 30) if near else rng.uniform(6, 35)) * s * 15 / fps
        self.speed = speed
        self.x, self.y = rng.uniform(0.15, 0.85) * w, rng.uniform(0.1, 0.9) * h
        self.home = (rng.uniform(0.3, 0.7) * w, rng.uniform(0.2, 0.8) * h)  # the lamp it circles
        ang = rng.uniform(0, 2 * math.pi)
        self.vx, self.vy = speed * math.cos(ang), speed * math.sin(ang)
        n = int(seconds * fps)
        # a visit: some stay the whole clip, some come and go
        if rng.random() < 0.5:
            self.t0, self.t1 = 0, n
        else:
            a, b = sorted(rng.integers(0, n, 2).tolist())
            self.t0, self.t1 = a, max(b, a + int(fps))

    def step(self, i: int) -> None:
        rng = self.rng
        # erratic: the heading turns at random every frame, pulled back toward the lamp
        turn = rng.normal(0, 0.9)
        c, s = math.cos(turn), math.sin(turn)
        self.vx, self.vy = c * self.vx - s * self.vy, s * self.vx + c * self.vy
        v = math.hypot(self.vx, self.vy) or 1.0
        k = self.speed * rng.uniform(0.4, 1.6) / v
        self.vx, self.vy = self.vx * k, self.vy * k
        self.vx += 0.04 * (self.home[0] - self.x)
        self.vy += 0.04 * (self.home[1] - self.y)
        self.x += self.vx
        self.y += self.vy

    def draw(self, img: np.ndarray, i: int, xx: np.ndarray, yy: np.ndarray) -> None:
        if not self.t0 <= i < self.t1:
            return
        r, w, h = self.r, self.w, self.h
        reach = r * (1 + 2 * self.soft) + abs(self.vx) + abs(self.vy) + 3
        x0, x1 = int(max(0, self.x - reach)), int(min(w, self.x + reach))
        y0, y1 = int(max(0, self.y - reach)), int(min(h, self.y + reach))
        if x1 <= x0 or y1 <= y0:
            return
        gx, gy = xx[y0:y1, x0:x1], yy[y0:y1, x0:x1]
        acc = np.zeros(gx.shape, np.float32)
        # motion blur: the exposure sees the moth along a part of its path
        for f in (0.0, 0.33, 0.66):
            cx, cy = self.x - f * self.vx, self.y - f * self.vy
            d = np.sqrt((gx - cx) ** 2 + (gy - cy) ** 2)
            if self.near:
                acc += 1 / (1 + np.exp((d - r) / (self.soft * r)))
            else:
                acc += np.exp(-(d**2) / (r * r))
        flap = self.rng.uniform(0.7, 1.15)  # wing beats change what the lamp lights
        img[y0:y1, x0:x1] += (self.amp * flap * acc / 3)[..., None]


class _Strand:
    """A strand of spider silk hanging in front of the lens, lit by the IR lamp beside it: a curve from a point on
    the picture's edge (60 % the top, where the camera's housing is), 0.2-0.7 of the picture's height long, 1-3 px out
    of focus at 640 px wide, 60-200 grey levels at its core. Its free end sways on a damped spring (period 0.4-2 s)
    driven by the wind, calm for a while and then in gusts: swinging out to 4-28 px from its rest at 640 px wide
    (10th-90th percentile of the strands; 1-58 px)."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, fps: int) -> None:
        s = w / 640.0
        self.rng, self.w, self.h = rng, w, h
        top = rng.random() < 0.6
        self.anchor = np.array([rng.uniform(0, w), -rng.uniform(0, 10) * s] if top
                               else [rng.choice([0.0, w - 1.0]), rng.uniform(0, h * 0.6)])
        ang = rng.uniform(0.3, 2.8) if top else (rng.uniform(-0.8, 1.2) if self.anchor[0] == 0 else
                                                 math.pi - rng.uniform(-0.8, 1.2))
        length = rng.uniform(0.2, 0.7) * h
        self.rest = self.anchor + length * np.array([math.cos(ang), math.sin(ang)])
        self.bend = rng.normal(0, 0.12 * length, 2)
        self.end, self.v = self.rest.copy(), np.zeros(2)
        period = rng.uniform(0.4, 2.0) * fps  # frames
        self.k, self.damp = (2 * math.pi / period) ** 2, rng.uniform(0.05, 0.2)
        self.wind = rng.uniform(0.3, 2.5) * s  # px/frame^2 of push in a gust
        self.calm = rng.uniform(0.0, 0.6)  # share of the time the air is still
        self.sigma, self.amp = rng.uniform(1.0, 3.0) * s, rng.uniform(60, 200)
        self.gust = False

    def step(self) -> None:
        rng = self.rng
        if rng.random() < 0.03:  # the wind turns on or off now and then
            self.gust = rng.random() > self.calm
        push = rng.normal(0, self.wind if self.gust else 0.1 * self.wind, 2)
        self.v = (1 - self.damp) * self.v - self.k * (self.end - self.rest) + push
        self.end = self.end + self.v

    def draw(self, img: np.ndarray) -> None:
        mid = (self.anchor + self.end) / 2 + self.bend
        img += silk_glow(self.h, self.w, self.anchor, mid, self.end, self.sigma, self.amp)[..., None]


class _Walker:
    """A person lit by the IR lamp walking across, or a car with its headlights on (``lights``: a car whose body is
    as dark as the night behind it, so only its headlights show: two glows driving toward or away from the camera,
    one crossing)."""

    def __init__(self, rng: np.random.Generator, kind: str, w: int, h: int, fps: int, seconds: float) -> None:
        s = w / 640.0
        self.kind = kind
        n = int(seconds * fps)
        self.t0 = int(rng.integers(0, max(1, n // 3)))
        if kind == "person":
            self.ph = rng.uniform(50, 180) * s
            self.pw = self.ph * rng.uniform(0.22, 0.32)
            self.v = rng.uniform(1.0, 2.0) * self.ph / 1.75 / fps  # 1-2 m/s for a 1.75 m person
        else:
            self.pw = rng.uniform(120, 320) * s
            self.ph = self.pw * rng.uniform(0.3, 0.45)
            self.v = rng.uniform(2.0, 8.0) * self.pw / 4.5 / fps
        self.dir = 1 if rng.random() < 0.5 else -1
        self.x = -self.pw if self.dir > 0 else w
        self.y = rng.uniform(0.35, 0.95) * h - self.ph
        self.y = max(2.0, self.y)
        self.grey = rng.uniform(40, 230)
        self.tex = rng.uniform(0.7, 1.3, (8, 4))
        self.pair = bool(rng.random() < 0.5)
        self.glow, self.spread = rng.uniform(120, 240), rng.uniform(60, 600) * s * s

    def draw(self, img: np.ndarray, i: int, xx: np.ndarray, yy: np.ndarray) -> None:
        if i < self.t0:
            return
        x = self.x + self.dir * self.v * (i - self.t0)
        h, w = img.shape[:2]
        x0, x1 = int(max(0, x)), int(min(w, x + self.pw))
        y0, y1 = int(max(0, self.y)), int(min(h, self.y + self.ph))
        if x1 <= x0 or y1 <= y0:
            return
        if self.kind == "person":
            head = int(self.ph * 0.14)
            tex = np.kron(self.tex, np.ones((int(self.ph) // 8 + 1, int(self.pw) // 4 + 1)))
            body = self.grey * tex[: y1 - y0, : x1 - x0]
            # legs: the lower third split in two with a gap that opens and closes with the gait
            legs = int(self.ph * 0.4)
            gap = abs(math.sin(i * 0.6)) * self.pw * 0.5
            cx = (x0 + x1) / 2 - x0
            row = np.arange(y1 - y0)[:, None]
            col = np.arange(x1 - x0)[None, :]
            keep = ~((row > (y1 - y0) - legs) & (np.abs(col - cx) < gap / 2))
            shoulders = (row > head) | (np.abs(col - cx) < self.pw * 0.3)
            m = keep & shoulders
            patch = img[y0:y1, x0:x1]
            patch[m] = body[m][:, None]
        elif self.kind == "lights":
            hy = y0 + (y1 - y0) * 0.6
            lamps = ([x0 + (x1 - x0) * 0.15, x0 + (x1 - x0) * 0.85] if self.pair
                     else [x1 - 6 if self.dir > 0 else x0 + 6])
            for hx in lamps:
                ly0, ly1 = int(max(0, hy - 60)), int(min(h, hy + 60))
                lx0, lx1 = int(max(0, hx - 60)), int(min(w, hx + 60))
                d2 = (xx[ly0:ly1, lx0:lx1] - hx) ** 2 + (yy[ly0:ly1, lx0:lx1] - hy) ** 2
                img[ly0:ly1, lx0:lx1] += (self.glow * np.exp(-d2 / self.spread))[..., None]
        else:
            patch = img[y0:y1, x0:x1]
            patch[:] = self.grey * 0.6
            patch[: (y1 - y0) // 3] = self.grey * 0.45  # windows
            hx = x1 - 6 if self.dir > 0 else x0 + 6
            hy = y0 + (y1 - y0) * 0.6
            ly0, ly1 = int(max(0, hy - 60)), int(min(h, hy + 60))
            lx0, lx1 = int(max(0, hx - 90)), int(min(w, hx + 90))
            d2 = (xx[ly0:ly1, lx0:lx1] - hx) ** 2 + (yy[ly0:ly1, lx0:lx1] - hy) ** 2
            img[ly0:ly1, lx0:lx1] += (220 * np.exp(-d2 / 400.0))[..., None]


def night_scene(spec: NightSpec, background: np.ndarray | None = None):  # noqa: ANN201 - a make_clip scene
    """The ``make_clip`` scene of ``spec`` (stateful: frames must be drawn in order); ``background``: an RGB view
    (float 0..255, the clip's size) instead of the spec's photo or a procedural one."""
    rng = np.random.default_rng(spec.seed)
    w, h = spec.size
    if background is not None:
        bg = background
    else:
        bg = photo_background(rng, spec.photo, w, h) if spec.photo else procedural_background(rng, w, h)
    bg, lamp = to_night(rng, bg)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    moths = [_Moth(rng, w, h, spec.fps, spec.seconds, True) for _ in range(spec.near)]
    moths += [_Moth(rng, w, h, spec.fps, spec.seconds, False) for _ in range(spec.far)]
    walker = _Walker(rng, spec.mover, w, h, spec.fps, spec.seconds) if spec.mover else None
    rain_spec = ClipSpec(seed=spec.seed, kind="rain", night=True, fps=spec.fps,
                         intensity="light" if spec.rain < 600 else "medium")
    angle = math.pi / 2 + rng.normal(0, 0.3)
    drop = float(rng.uniform(120, 255))
    gains = np.where(rng.random(4096) < 0.1, rng.uniform(0.8, 1.25, 4096), 1.0) if spec.agc else np.ones(4096)
    silk_rng = np.random.default_rng([spec.seed, 43])  # its own generator: the other kinds render as before
    strands = [_Strand(silk_rng, w, h, spec.fps) for _ in range(spec.webs)]

    def draw(i: int, t: float, width: int, height: int) -> np.ndarray:
        img = bg.copy()
        if walker is not None:
            walker.draw(img, i, xx, yy)
        for m in moths:
            m.step(i)
            m.draw(img, i, xx, yy)
        for st in strands:
            st.step()
            st.draw(img)
        if spec.rain:
            a = np.clip(rain_alpha(rng, h, w, rain_spec, angle) * (0.25 + 0.75 * lamp), 0, 0.95)
            img = img * (1 - a[..., None]) + drop * a[..., None]
        img = img * gains[i % 4096] + rng.normal(0, spec.noise, (h, w, 1)).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)

    return draw


def render_night(spec: NightSpec, path: Path) -> Path:
    """Encode ``spec`` like a camera (H.264, fixed GOP, no B-frames)."""
    w, h = spec.size
    return make_clip(path, seconds=spec.seconds, width=w, height=h, fps=spec.fps, gop_seconds=spec.gop,
                     scene=night_scene(spec))


__all__ = ["KINDS", "NightSpec", "night_scene", "photo_list", "random_night_spec", "render_night"]
