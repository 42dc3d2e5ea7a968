"""Alarm clips that look like a camera's, for the docs screenshots: a drawn drive by day (a person walking, rain, a
person in the rain, a car with a German plate pulling in) and a garden at night under the IR lamp (moths, spider
silk, someone walking among the moths), 18 s at 1280 x 720.

Drawn with the rain plugin's training renderer (``plugins/detect_rain/train``: drawn views, rain streaks, the night
look, moths and silk) and the plate reader's plate drawing (``plugins/detect_plates/eval/synth_eu.py``), so the
screenshots show what the detectors really say about such clips: no verdict or finding is written by hand. Only
``screenshots.py`` uses them; the browser tests keep their small test clips.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from alarmcloud.testing import make_clip

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "plugins" / "detect_rain" / "train"), str(ROOT / "plugins" / "detect_plates" / "eval")]
from night_synth import NightSpec, night_scene  # noqa: E402
from PIL import Image  # noqa: E402
from scenes import drawn_background  # noqa: E402
from synth import ClipSpec, rain_alpha  # noqa: E402
from synth_eu import FONTS, PlateSpec, render_plate  # noqa: E402

SIZE = (1280, 720)
FPS = 15
SECONDS = 18.0
#: the drawn views (scenes.drawn_background's seeds, drawn at the clips' size): the drive (a parked car, a hedge) and
#: the garden (a house, trees, a fence)
DRIVE, GARDEN = 7, 5
#: (kind, seed) of each demo clip, in upload order per camera: the day clips for "Driveway", the night ones for
#: "Garden"; each verdict is the pipeline's own
DAY = (("person", 11), ("rain", 12), ("rain_person", 13), ("car", 14))
#: the car's plate (Berlin; the screenshots' known plate "Family car")
PLATE = PlateSpec("DE", "BAC1234", ("B", "|", "AC", "1234"), band="D")
NIGHT = (("insects", 23), ("web", 22), ("insects_person", 24))


@functools.lru_cache(maxsize=2)
def _view(seed: int) -> np.ndarray:
    """The drawn view of ``seed`` at the clips' size (drawn once: each scene copies it or makes a new picture of it;
    read-only)."""
    view = drawn_background(np.random.default_rng(seed), *SIZE)
    view.flags.writeable = False
    return view


class _Person:
    """A person walking across the drive: head, coat, trousers, legs that swing with the gait."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        self.height = rng.uniform(0.38, 0.46) * h
        self.ground = rng.uniform(0.86, 0.94) * h
        self.dir = 1 if rng.random() < 0.5 else -1
        self.x0 = -0.1 * w if self.dir > 0 else 1.1 * w
        self.v = self.dir * w * 1.2 / (SECONDS * FPS * 0.8)  # across the picture in about 80 % of the clip
        self.coat = rng.uniform([20, 40, 80], [90, 110, 160])
        self.legs = rng.uniform([20, 20, 25], [60, 60, 70])
        self.skin = np.array([205.0, 160, 130])

    def draw(self, img: np.ndarray, i: int, xx: np.ndarray, yy: np.ndarray) -> None:
        x, u = self.x0 + self.v * i, self.height / 10  # u: a tenth of the person's height
        top = self.ground - self.height
        swing = math.sin(i * 0.55) * 1.4 * u
        parts = [  # (mask, colour), back to front
            ((np.abs(xx - (x - swing * (yy - top - 5.2 * u) / (4.8 * u))) < 0.55 * u) & (yy > top + 5.2 * u)
             & (yy < self.ground), self.legs * 0.8),
            ((np.abs(xx - (x + swing * (yy - top - 5.2 * u) / (4.8 * u))) < 0.55 * u) & (yy > top + 5.2 * u)
             & (yy < self.ground), self.legs),
            (((xx - x) / (1.25 * u)) ** 2 + ((yy - top - 3.6 * u) / (2.3 * u)) ** 4 < 1, self.coat),
            (((xx - x) / (0.75 * u)) ** 2 + ((yy - top - 0.8 * u) / (0.9 * u)) ** 2 < 1, self.skin),
        ]
        for mask, colour in parts:
            img[mask] = colour


class _Car:
    """A car seen from the front pulling into the drive: it comes nearer (grows) for about 5 s, then stands; its
    plate is ``PLATE``, drawn as the plate reader's European plates are."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.paint = rng.uniform([90, 10, 10], [160, 40, 40])  # a red car
        plate = render_plate(PLATE, np.random.default_rng(1), FONTS[0])  # DejaVu Sans Condensed Bold
        self.plate = plate.convert("RGB")

    def draw(self, img: np.ndarray, i: int, xx: np.ndarray, yy: np.ndarray) -> None:
        t = min(1.0, max(0.0, (i - 15) / (5 * FPS)))
        width = self.w * (0.12 + 0.26 * t)  # far away to a third of the picture
        cx, bottom = self.w * (0.42 + 0.1 * t), self.h * (0.55 + 0.4 * t)
        top = bottom - width * 0.72
        body = (np.abs(xx - cx) < width / 2) & (yy > top + width * 0.25) & (yy < bottom - width * 0.06)
        cabin = (np.abs(xx - cx) < width * (0.32 + 0.1 * (yy - top) / (width * 0.25))) & (yy > top) \
            & (yy <= top + width * 0.25)
        glass = cabin & (np.abs(xx - cx) < width * (0.27 + 0.1 * (yy - top) / (width * 0.25))) \
            & (yy > top + width * 0.04)
        wheels = (np.abs(np.abs(xx - cx) - width * 0.36) < width * 0.08) & (yy >= bottom - width * 0.08) \
            & (yy < bottom)
        lamps = ((np.abs(xx - cx) - width * 0.36) / (width * 0.08)) ** 2 + \
            ((yy - top - width * 0.33) / (width * 0.035)) ** 2 < 1
        for mask, colour in ((wheels, (25, 25, 25)), (body | cabin, self.paint), (glass, (60, 75, 90)),
                             (lamps, (235, 235, 220))):
            img[mask] = colour
        pw = max(2, int(width * 0.29))
        ph = max(1, int(pw * 110 / 520))
        px, py = int(cx - pw / 2), int(top + width * 0.47)
        if min(px, py) >= 0 and px + pw <= self.w and py + ph <= self.h:
            img[py:py + ph, px:px + pw] = np.asarray(self.plate.resize((pw, ph), Image.LANCZOS), np.float32)


def day_scene(kind: str, seed: int) -> Callable[[int, float, int, int], np.ndarray]:
    """A ``make_clip`` scene of the drive by day: ``person``, ``rain``, ``rain_person`` or ``car``."""
    w, h = SIZE
    bg = _view(DRIVE)
    rng = np.random.default_rng(seed)
    mover = _Person(rng, w, h) if "person" in kind else _Car(rng, w, h) if kind == "car" else None
    rain = ClipSpec(seed=seed, kind="rain", intensity="medium", fps=FPS) if "rain" in kind else None
    angle = math.pi / 2 + rng.normal(0, 0.15)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def draw(i: int, t: float, width: int, height: int) -> np.ndarray:
        img = bg.copy()
        if rain is not None:
            img *= 0.8  # an overcast, rainy day
        if mover is not None:
            mover.draw(img, i, xx, yy)
        if rain is not None:
            a = np.clip(rain_alpha(rng, h, w, rain, angle), 0, 0.9)
            img = img * (1 - a[..., None]) + 200 * a[..., None]
        img += rng.normal(0, 2.5, (h, w, 1)).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)

    return draw


def night_spec(kind: str, seed: int) -> NightSpec:
    """The garden at night: ``insects`` (two moths at the IR lamp), ``web`` (silk swaying in front of the lens) or
    ``insects_person`` (someone walking across among the moths)."""
    return NightSpec(seed=seed, kind=kind, size=SIZE, fps=FPS, seconds=SECONDS, noise=3.0,
                     near=2 if "insects" in kind else 0, webs=3 if kind == "web" else 0,
                     mover="person" if "person" in kind else "")


def render(kind: str, seed: int, path: Path, night: bool) -> Path:
    """One demo clip, encoded as a camera sends it (H.264, 2 s GOP, no B-frames)."""
    scene = night_scene(night_spec(kind, seed), _view(GARDEN)) if night else day_scene(kind, seed)
    return make_clip(path, seconds=SECONDS, width=SIZE[0], height=SIZE[1], fps=FPS, scene=scene)
