"""Render synthetic camera clips with rain, snow or only distractors, encode them with real H.264 (PyAV).

Everything is driven by a seeded ``ClipSpec`` so the training and evaluation sets are reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageFilter
from scenes import drawn_background

PLATES = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "plates"
DISTRACTORS = ("movers", "vegetation", "headlights", "insects", "flicker", "shake", "lens_drops")
#: ``train``: the conditions the model is trained and calibrated on; ``stress``: a held-out set drawn with
#: renderer code paths and parameter values the training never uses (see ``random_spec``)
DOMAINS = ("train", "stress")
INTENSITY = {"light": (40, 150), "medium": (150, 600), "heavy": (600, 2500)}
SNOW_COUNT = {"light": (60, 250), "medium": (250, 900), "heavy": (900, 2500)}


@dataclass
class ClipSpec:
    """One synthetic clip: what weather, which scene, which distractors, which camera."""

    seed: int
    kind: str  # clear | rain | snow
    intensity: str = "medium"
    night: bool = False
    photo: str | None = None
    distractors: tuple[str, ...] = ()
    size: tuple[int, int] = (640, 360)
    fps: int = 15
    crf: int = 26
    noise: float = 2.0
    tnr: float = 0.0  # camera temporal noise reduction strength (0 = off), motion-adaptive like 3DNR
    windows: int = 2
    window_length: int = 6
    # renderer variants: "shutter", "splash" (artefacts.py), "steady" (a steady shower: one rate per clip, each
    # picture's streak count a Poisson draw of it; steady_eval.py)
    extra: dict[str, float] = field(default_factory=dict)
    domain: str = "train"
    bitrate: int = 0  # kbit/s with a VBV cap (starved hardware-like rate control); 0: constant quality (crf)
    preset: str = ""  # x264 preset; "" picks ultrafast / veryfast by seed
    noise_kind: str = "gauss"  # gauss | correlated (demosaiced / denoised blotches) | shot (+ row noise, stress)
    drop_model: str = "constant"  # constant drop radiance | refract (drops show the blurred, flipped scene; stress)
    speed: float = 1.0  # streak length factor (fall speed x exposure time)
    gust: float = 0.0  # std of the per-frame change of the rain angle (wind gusts), radians
    defocus: float = 0.0  # share of streaks that are out-of-focus drops right in front of the lens
    lamp_boost: float = 0.0  # night: drops in the IR lamp's cone shine up to (1 + lamp_boost) times brighter
    scene: str = ""  # "drawn": a drawn garden / drive / street view (scenes.py) replaces the photo or procedural one
    # (0, 0): the scene is rendered at ``size``. Else a camera's sub-stream: rendered (noise and 3DNR included) at
    # this sensor size and scaled down to ``size`` in the camera before encoding, as an ISP's scaler does
    sensor: tuple[int, int] = (0, 0)
    # degrees the camera looks down (0: level). Falling rain and snow then converge on the vanishing point of the
    # vertical below the picture (a lens of TILT_HFOV), as from every camera mounted high: streaks lean outwards
    # towards the picture's top corners instead of all falling the same way
    tilt: float = 0.0
    # the half-diagonal field of view (degrees) of a wide-angle or fisheye lens (0: a rectilinear lens): the scene is
    # drawn on a larger rectilinear canvas and mapped through an equidistant fisheye projection (``FisheyeWarp``)
    lens: float = 0.0
    # "" : encoded as a camera sends it (H.264, see ``encode``). A video site's codec (a key of ``SITE_CODECS``, e.g.
    # "av1"): the clip as footage downloaded from a site is, re-encoded at ``crf + SITE_CRF_OFFSET`` or ``bitrate``
    codec: str = ""
    # "" : x264's rate control as the renders always had it (CRF or a VBV cap, qcomp 0.6). A key of ``RATE_CONTROL``:
    # a camera encoder's, one quantiser per frame whatever it shows ("cbr"), keyframes much finer too ("pulse")
    rate_control: str = ""


#: x264 parameters of a camera encoder's rate control (``ClipSpec.rate_control``, artefacts.py's ``cbr`` and
#: ``pulse``): one quantiser per frame whatever it shows, no adaptive quantisation, no macroblock tree; ``pulse`` also
#: codes each keyframe much finer than the frames after it (about 9.5 quantiser steps against x264's 3)
RATE_CONTROL = {"pulse": "ipratio=3:qcomp=0:aq-mode=0:mbtree=0", "cbr": "qcomp=0:aq-mode=0:mbtree=0"}

#: the encoder of each video-site codec a clip can be sent as (``ClipSpec.codec``, artefacts.py's site artefacts)
SITE_CODECS = {"vp9": "libvpx-vp9", "av1": "libsvtav1"}
#: the CRF of those encoders (0-63) above a render's x264 CRF: about the same PSNR (measured, rain README)
SITE_CRF_OFFSET = 14

#: the horizontal field of view (degrees) of the lens a tilted view is drawn for (2.8-4 mm on a 1/2.8" sensor)
TILT_HFOV = 90.0


def vanishing_point(spec: ClipSpec, h: int, w: int, lean: float = 0.0) -> tuple[float, float] | None:
    """Where the streaks of a tilted camera's picture converge (x, y in pixels, below the picture), for rain that
    falls ``lean`` radians off the vertical in the picture plane (wind); None for a level camera. With a wide-angle
    lens, ``h`` x ``w`` is the lens's rectilinear canvas (``FisheyeWarp``), whose diagonal spans the lens's field of
    view; else the picture, drawn for a lens of ``TILT_HFOV`` across."""
    if not spec.tilt:
        return None
    if spec.lens:
        f = math.hypot(w, h) / 2 / math.tan(math.radians(spec.lens))
    else:
        f = w / 2 / math.tan(math.radians(TILT_HFOV / 2))
    phi = math.radians(spec.tilt)
    return w / 2 + f * math.tan(lean) / math.sin(phi), h / 2 + f / math.tan(phi)


def pixel_scale(spec: ClipSpec, w: int) -> float:
    """How many pixels something drawn for a 640 px wide picture spans in a ``w`` px wide one: ``w / 640``; on a
    lens's larger canvas (``FisheyeWarp``) the sensor's width / 640, since at the lens's centre a canvas pixel is a
    picture pixel (streaks, flakes and movers keep their size there and shrink towards the edges)."""
    return (spec.sensor if spec.sensor != (0, 0) else spec.size)[0] / 640.0 if spec.lens else w / 640.0


class FisheyeWarp:
    """An equidistant fisheye lens (image radius proportional to the angle off the axis) of ``half_diagonal``
    degrees: maps a rectilinear canvas (``canvas``, the scene as a pinhole camera of the same diagonal field of view
    sees it) onto a ``w`` x ``h`` picture. The canvas is as much larger as keeps the picture's centre at one canvas
    pixel per picture pixel; towards the edges the lens squeezes more of the scene into each pixel (barrel
    distortion), and each picture pixel averages the canvas pixels that land in it (bilinear splatting), as a lens
    integrates light rather than sampling it. Straight lines off the centre, falling rain among them, bend."""

    def __init__(self, w: int, h: int, half_diagonal: float) -> None:
        tmax = math.radians(half_diagonal)
        k = math.tan(tmax) / tmax
        cw, ch = round(w * k / 2) * 2, round(h * k / 2) * 2
        self.canvas, self.size = (cw, ch), (w, h)
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        xu, yu = xx + 0.5 - cw / 2, yy + 0.5 - ch / 2
        ru = np.hypot(xu, yu)
        theta = np.arctan(ru * (math.tan(tmax) / (math.hypot(cw, ch) / 2)))
        rd = theta * (math.hypot(w, h) / 2 / tmax)
        scale = rd / np.maximum(ru, 1e-6)
        xo, yo = xu * scale + w / 2 - 0.5, yu * scale + h / 2 - 0.5  # where each canvas pixel's centre lands
        x0, y0 = np.floor(xo), np.floor(yo)
        fx, fy = xo - x0, yo - y0
        src, dst, wts = [], [], []
        flat = np.arange(cw * ch, dtype=np.int32).reshape(ch, cw)
        for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            x, y = x0 + dx, y0 + dy
            ok = (x >= 0) & (x < w) & (y >= 0) & (y < h) & (wt > 0)
            src.append(flat[ok])
            dst.append((y[ok] * w + x[ok]).astype(np.int32))
            wts.append(wt[ok].astype(np.float32))
        self.src, self.dst, self.wts = np.concatenate(src), np.concatenate(dst), np.concatenate(wts)
        self.cover = np.bincount(self.dst, self.wts, minlength=w * h)
        if not (self.cover > 0).all():
            raise ValueError(f"a {half_diagonal} degree lens leaves pixels of the {w} x {h} picture uncovered")

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """The picture (h x w x 3 float32) the lens makes of a canvas (ch x cw x 3)."""
        w, h = self.size
        flat = img.reshape(-1, img.shape[2])
        out = np.stack([np.bincount(self.dst, self.wts * flat[self.src, c], minlength=w * h)
                        for c in range(flat.shape[1])], axis=1)
        return (out / self.cover[:, None]).astype(np.float32).reshape(h, w, -1)


def photo_list(split: str) -> list[Path]:
    """Real photos from ../shared/data/plates: even-indexed files train, odd-indexed files evaluate."""
    files = sorted(PLATES.resolve().glob("*/*.jpg"))
    return files[0::2] if split == "train" else files[1::2]


def random_spec(
    rng: np.random.Generator, seed: int, photos: list[Path], windows: int = 2, domain: str = "train"
) -> ClipSpec:
    """Draw a varied clip spec: a bit over a third clear, a bit under half rain, the rest snow.

    ``domain="stress"`` draws a held-out set the training never sees: other frame rates (5, 8, 24) and sizes
    (1600x900, 1920x1080), other x264 presets, mostly bitrate-starved encoding, signal-dependent shot noise with
    row noise, drops that refract the scene instead of a constant radiance, longer streaks.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}")
    stress = domain == "stress"
    u = rng.random()
    kind = "clear" if u < 0.42 else ("rain" if u < 0.77 else "snow")
    night = bool(rng.random() < 0.4)
    p_dis = 0.45 if kind == "clear" else 0.3
    distractors = tuple(
        d for d in DISTRACTORS
        if rng.random() < (p_dis if d != "lens_drops" else (0.15 if kind == "clear" else 0.3))
        and not (d == "insects" and not night)
    )
    if kind == "clear" and not distractors and rng.random() < 0.5:
        distractors = (str(rng.choice(DISTRACTORS[:3] + ("flicker",))),)
    if stress:
        r = rng.random()
        size = (640, 360) if r < 0.65 else ((1600, 900) if r < 0.85 else (1920, 1080))
        fps = int(rng.choice([5, 8, 24]))
        preset = str(rng.choice(["superfast", "faster", "medium"]))
    else:
        r = rng.random()
        size = (640, 360) if r < 0.55 else ((960, 540) if r < 0.8 else ((1280, 720) if r < 0.95 else (1920, 1080)))
        fps = int(rng.choice([10, 12, 15, 20, 25, 30]))
        preset = ""
    # many cameras run motion-adaptive temporal noise reduction (3DNR), strongest at night: it smears and
    # dims one-frame streaks, so part of the set goes through it
    tnr = float(rng.uniform(0.3, 0.8)) if rng.random() < (0.5 if night else 0.25) else 0.0
    # rate control: constant quality, or a bitrate cap as on most cameras (bits per pixel and frame
    # 0.015..0.15 = 1 to 10 Mbit/s for 1080p at 15 fps); starved streams block heavily in rain
    bitrate = 0
    if rng.random() < (0.6 if stress else 0.35):
        bpp = float(np.exp(rng.uniform(np.log(0.01 if stress else 0.015), np.log(0.1 if stress else 0.15))))
        bitrate = max(30, int(bpp * size[0] * size[1] * fps / 1000))
    noise_kind = "shot" if stress else ("correlated" if rng.random() < 0.4 else "gauss")
    return ClipSpec(
        seed=seed,
        kind=kind,
        intensity=str(rng.choice(["light", "medium", "heavy"], p=[0.35, 0.35, 0.3])),
        night=night,
        photo=str(rng.choice(photos)) if photos and rng.random() < 0.6 else None,
        distractors=distractors,
        size=size,
        fps=fps,
        crf=int(rng.integers(22, 39) if stress else rng.integers(19, 36)),
        noise=float(rng.uniform(2, 12) if night else rng.uniform(0.3, 5)),
        tnr=tnr,
        windows=windows,
        domain=domain,
        bitrate=bitrate,
        preset=preset,
        noise_kind=noise_kind,
        drop_model="refract" if stress else "constant",
        speed=float(rng.uniform(0.6, 2.6) if stress else rng.uniform(0.5, 2.0)),
        gust=float(rng.uniform(0.02, 0.15)) if rng.random() < 0.4 else 0.0,
        defocus=float(rng.uniform(0.01, 0.06)) if rng.random() < 0.4 else 0.0,
        lamp_boost=float(rng.uniform(0.3, 2.0)) if night and rng.random() < 0.5 else 0.0,
    )


# ---------------------------------------------------------------- backgrounds


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    small = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((w + cell, h + cell), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32)[:h, :w] / 255.0


def procedural_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Sky, ground, buildings, texture: an RGB float image in 0..255."""
    horizon = int(h * rng.uniform(0.15, 0.6))
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky_top, sky_bot = rng.uniform(80, 230, 3), rng.uniform(120, 250, 3)
    ground = rng.uniform(30, 150, 3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = ground
    img[:horizon] = sky_top + (sky_bot - sky_top) * yy[:horizon] / max(yy[horizon, 0, 0], 1e-3)
    tex = sum(_smooth_noise(rng, h, w, c) * a for c, a in ((64, 60), (16, 30), (4, 18)))
    img[horizon:] += (tex[horizon:, :, None] - 54) * rng.uniform(0.3, 1.2)
    for _ in range(int(rng.integers(2, 10))):
        bw, bh = int(rng.integers(w // 12, w // 3)), int(rng.integers(h // 8, h // 2))
        x, y = int(rng.integers(0, w - bw)), int(rng.integers(max(1, horizon - bh), max(2, h - bh)))
        img[y : y + bh, x : x + bw] = rng.uniform(20, 220, 3)
        if rng.random() < 0.5:  # windows / facade texture: sharp edges that compress badly
            step = int(rng.integers(6, 20))
            img[y : y + bh : step, x : x + bw] *= rng.uniform(0.4, 0.9)
            img[y : y + bh, x : x + bw : step] *= rng.uniform(0.4, 0.9)
    return np.clip(img, 0, 255)


def photo_background(rng: np.random.Generator, path: str, w: int, h: int) -> np.ndarray:
    """A random crop of a real photo, resized to the clip size (RGB float)."""
    im = Image.open(path).convert("RGB")
    scale = rng.uniform(0.6, 1.0)
    cw, ch = int(im.width * scale), int(im.width * scale * h / w)
    if ch > im.height:
        ch, cw = im.height, int(im.height * w / h)
    x, y = int(rng.integers(0, im.width - cw + 1)), int(rng.integers(0, im.height - ch + 1))
    im = im.crop((x, y, x + cw, y + ch)).resize((w, h), Image.BILINEAR)
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    arr = np.asarray(im, dtype=np.float32)
    return np.clip((arr - 128) * rng.uniform(0.6, 1.2) + 128 + rng.uniform(-40, 30), 0, 255)


#: the grey a camera's night vision makes of an RGB picture
NIGHT_GREY = np.array([0.3, 0.59, 0.11], dtype=np.float32)


def lamp_map(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """How brightly the camera's IR lamp lights each pixel (1 at the centre of its cone, drawn somewhat below the
    picture's middle, falling off towards the edges)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.4, 0.8)
    return np.exp(-(((xx - cx) / (w * 0.6)) ** 2 + ((yy - cy) / (h * 0.7)) ** 2))


def to_night(rng: np.random.Generator, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Infra-red night look: grey, dark, low contrast, lit by the camera's IR lamp (returns image, lamp map)."""
    h, w = rgb.shape[:2]
    g = rgb @ NIGHT_GREY
    lamp = lamp_map(rng, h, w)
    g = g * rng.uniform(0.25, 0.7) * (0.3 + 0.7 * lamp) + rng.uniform(5, 25)
    return np.repeat(g[:, :, None], 3, axis=2), lamp


# ---------------------------------------------------------------- weather layers


def _splat(h: int, w: int, xs: np.ndarray, ys: np.ndarray, wts: np.ndarray) -> np.ndarray:
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    idx = ys[ok].astype(np.int64) * w + xs[ok].astype(np.int64)
    return np.bincount(idx, weights=wts[ok], minlength=h * w).reshape(h, w).astype(np.float32)


def _blur(a: np.ndarray, sigma: float, points: bool = False) -> np.ndarray:
    """Gaussian blur that keeps a thin streak's peak (or, with ``points``, a flake's peak) near its alpha."""
    if sigma < 0.3:
        return a
    peak = float(a.max()) or 1.0
    im = Image.fromarray(np.clip(a / peak * 255, 0, 255).astype(np.uint8))
    out = np.asarray(im.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32) / 255 * peak
    # a line loses sqrt(2 pi) sigma of its peak to the blur, a point 2 pi sigma^2 (one pixel at most)
    gain = max(1.0, 2 * math.pi * sigma * sigma) if points else math.sqrt(2 * math.pi) * sigma
    return out * gain


def rain_alpha(rng: np.random.Generator, h: int, w: int, spec: ClipSpec, angle: float,
               count: float | None = None) -> np.ndarray:
    """One frame of rain streaks as an alpha map (three depth layers, independent per frame). The number of streaks
    (per 640 x 360) is drawn anew from the intensity's band, or ``count`` (the draw is made all the same, so the
    rest of the frame stays as it was)."""
    lo, hi = INTENSITY[spec.intensity]
    scale = pixel_scale(spec, w)
    vp = vanishing_point(spec, h, w, math.pi / 2 - angle)  # th = pi / 2 - lean: lean > 0 falls to the right
    drawn = rng.uniform(lo, hi)
    n_total = int((drawn if count is None else count) * (w * h) / (640 * 360))
    alpha = np.zeros((h, w), np.float32)
    layers = [
        # far: short, thin, faint; mid; near: long, wide, blurred
        (0.55, (4, 18), (0.05, 0.2), 0.5),
        (0.35, (12, 45), (0.06, 0.25), 0.9),
        (0.10, (30, 110), (0.04, 0.18), 2.2),
    ]
    if spec.defocus:  # drops right in front of the lens: huge, very faint, far out of focus
        layers.append((spec.defocus, (60, 220), (0.02, 0.08), float(rng.uniform(4, 9))))
    shutter = spec.extra.get("shutter", 1.0)
    for share, (l_lo, l_hi), (a_lo, a_hi), sigma in layers:
        n = max(1, int(n_total * share))
        length = rng.uniform(l_lo, l_hi, n) * scale * spec.speed * 15 / spec.fps
        a = rng.uniform(a_lo, a_hi, n)
        if shutter < 1:  # a shorter exposure: the drop's own extent plus a shorter way fallen, the same light
            size = np.minimum(length, 1 + 2 * sigma * scale)
            short = shutter * (length - size) + size
            length, a = short, np.minimum(0.9, a * length / short)
        th = angle + rng.normal(0, 0.05, n)
        x0, y0 = rng.uniform(-20, w + 20, n), rng.uniform(-40, h, n)
        if vp is not None:  # towards the vanishing point (the same draws: a level camera's clip stays the same)
            th = th - angle + np.arctan2(vp[1] - y0, vp[0] - x0)
        k = int(max(2, np.ceil(length.max())))
        s = np.arange(k, dtype=np.float32)[None, :]
        keep = s < length[:, None]
        xs = (x0[:, None] + np.cos(th)[:, None] * s)[keep]
        ys = (y0[:, None] + np.sin(th)[:, None] * s)[keep]
        wts = np.broadcast_to(a[:, None], keep.shape)[keep]
        alpha += _blur(_splat(h, w, np.round(xs), np.round(ys), wts), sigma * scale)
    return np.clip(alpha, 0, 0.85)


class Snow:
    """Flakes that persist across frames, drift with the wind and wobble (state carried frame to frame)."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, spec: ClipSpec) -> None:
        lo, hi = SNOW_COUNT[spec.intensity]
        n = int(rng.uniform(lo, hi) * (w * h) / (640 * 360))
        self.rng, self.h, self.w = rng, h, w
        self.scale = pixel_scale(spec, w)
        self.layer = rng.choice(3, n, p=[0.55, 0.35, 0.10])
        self.x, self.y = rng.uniform(0, w, n), rng.uniform(0, h, n)
        speed = np.array([0.8, 2.0, 5.0])[self.layer] * rng.uniform(0.5, 1.6, n) * self.scale * 15 / spec.fps
        self.vy = speed
        self.vx = rng.normal(0, 0.6, n) * speed + rng.uniform(-1.0, 1.0) * speed.mean()
        self.phase = rng.uniform(0, 2 * np.pi, n)
        self.a = rng.uniform(0.3, 0.9, n)
        self.size = rng.uniform(0.7, 1.5)  # wet snow: big flakes; powder: small
        self.vp = vanishing_point(spec, h, w)

    def step(self, i: int) -> np.ndarray:
        """Alpha map of frame ``i`` and advance the flakes."""
        alpha = np.zeros((self.h, self.w), np.float32)
        for layer, sigma in ((0, 0.5), (1, 1.1), (2, 2.6)):
            m = self.layer == layer
            # near flakes move several pixels during the exposure: a short vertical smear
            y0 = np.round(self.y[m])
            pts = _splat(self.h, self.w, np.round(self.x[m]), y0, self.a[m])
            if layer == 2:
                pts = 0.5 * (pts + _splat(self.h, self.w, np.round(self.x[m]), y0 + np.round(self.vy[m] / 2),
                                          self.a[m]))
            alpha += _blur(pts, sigma * self.scale * self.size, points=True) * (0.8 if layer else 1.0)
        vx, vy = self.vx, self.vy
        if self.vp is not None:  # a tilted camera: each flake falls towards the vanishing point of the vertical
            b = np.arctan2(self.vp[0] - self.x, self.vp[1] - self.y)
            vx, vy = vx * np.cos(b) + vy * np.sin(b), vy * np.cos(b) - vx * np.sin(b)
        self.x = (self.x + vx + 0.6 * np.sin(self.phase + 0.5 * i) * self.scale) % self.w
        self.y = (self.y + vy) % self.h
        return np.clip(alpha, 0, 0.9)


# ---------------------------------------------------------------- distractors


class Distractors:
    """Movers, swaying vegetation, headlight sweeps, insects at the IR lamp, AGC flicker, camera shake."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, spec: ClipSpec, bg: np.ndarray) -> None:
        self.rng, self.h, self.w, self.spec = rng, h, w, spec
        s = pixel_scale(spec, w)
        self.movers = []
        if "movers" in spec.distractors:
            for _ in range(int(rng.integers(1, 4))):
                mw, mh = rng.uniform(15, 120) * s, rng.uniform(40, 140) * s
                color = rng.uniform(10, 240, 3)
                tex = 1 + 0.25 * (_smooth_noise(rng, int(mh) + 1, int(mw) + 1, 4)[..., None] - 0.5)
                self.movers.append(
                    dict(x=rng.uniform(0, w), y=rng.uniform(h * 0.3, h - mh), vx=rng.uniform(-12, 12) * s,
                         vy=rng.uniform(-2, 2) * s, mw=int(mw), mh=int(mh), color=color, tex=tex)
                )
        self.veg = None
        if "vegetation" in spec.distractors:
            vw, vh = int(rng.uniform(0.2, 0.6) * w), int(rng.uniform(0.2, 0.6) * h)
            leaves = sum(_smooth_noise(rng, vh + 8, vw + 8, c) * a for c, a in ((2, 0.5), (6, 0.5)))
            self.veg = dict(x=int(rng.integers(0, w - vw)), y=int(rng.integers(0, h - vh)), vw=vw, vh=vh,
                            leaves=leaves, base=rng.uniform(20, 120, 3), amp=rng.uniform(0.5, 3.0) * s,
                            glint=rng.uniform(0.0, 0.04))
        self.lights = []
        if "headlights" in spec.distractors:
            self.lights.append(dict(x=rng.uniform(-0.3, 1.3) * w, y=rng.uniform(0.3, 0.9) * h,
                                    vx=rng.uniform(-40, 40) * s, r=rng.uniform(40, 200) * s,
                                    amp=rng.uniform(40, 160)))
        self.insects = []
        if "insects" in spec.distractors:
            # a few moths at the lamp, sometimes a swarm of small ones
            n_ins = int(rng.integers(1, 9)) if rng.random() < 0.75 else int(rng.integers(9, 25))
            for _ in range(n_ins):
                self.insects.append(dict(x=rng.uniform(0, w), y=rng.uniform(0, h), r=rng.uniform(2, 12) * s,
                                         v=rng.uniform(5, 40) * s, amp=rng.uniform(60, 200)))
        self.gains = np.ones(64)
        if "flicker" in spec.distractors:
            jumps = rng.random(64) < rng.uniform(0.15, 0.5)
            self.gains = np.where(jumps, rng.uniform(0.75, 1.3, 64), 1.0)
            # auto exposure hunting: a slow gain ramp under the jumps
            self.gains = self.gains * (1 + rng.uniform(0, 0.12) * np.sin(np.arange(64) * rng.uniform(0.1, 0.6)))
        self.shake = rng.uniform(0.5, 2.5) * s if "shake" in spec.distractors else 0.0
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def apply(self, img: np.ndarray, i: int) -> np.ndarray:
        """Draw every distractor of frame ``i`` onto ``img`` (RGB float)."""
        rng, h, w = self.rng, self.h, self.w
        if self.veg is not None:
            v = self.veg
            dx = v["amp"] * math.sin(0.9 * i + rng.uniform(-0.5, 0.5))
            dy = 0.4 * v["amp"] * math.sin(0.7 * i)
            ox, oy = int(np.clip(round(4 + dx), 0, 8)), int(np.clip(round(4 + dy), 0, 8))
            patch = v["leaves"][oy : oy + v["vh"], ox : ox + v["vw"]]
            patch = patch + (rng.random(patch.shape) < v["glint"]) * rng.uniform(0.3, 1.0)  # leaf glints
            img[v["y"] : v["y"] + v["vh"], v["x"] : v["x"] + v["vw"]] = v["base"] * (0.4 + patch[..., None])
        for m in self.movers:
            x, y = int(m["x"] + m["vx"] * i), int(m["y"] + m["vy"] * i)
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + m["mw"]), min(h, y + m["mh"])
            if x1 > x0 and y1 > y0:
                img[y0:y1, x0:x1] = (m["color"] * m["tex"])[y0 - y : y1 - y, x0 - x : x1 - x]
        for li in self.lights:
            cx = li["x"] + li["vx"] * i
            img += (li["amp"] * np.exp(-((self.xx - cx) ** 2 + (self.yy - li["y"]) ** 2) / li["r"] ** 2))[..., None]
        for ins in self.insects:
            ins["x"] += rng.normal(0, ins["v"])
            ins["y"] += rng.normal(0, ins["v"])
            ins["x"], ins["y"] = ins["x"] % w, ins["y"] % h
            x0, x1 = int(max(0, ins["x"] - 4 * ins["r"])), int(min(w, ins["x"] + 4 * ins["r"]))
            y0, y1 = int(max(0, ins["y"] - 4 * ins["r"])), int(min(h, ins["y"] + 4 * ins["r"]))
            blob = np.exp(-((self.xx[y0:y1, x0:x1] - ins["x"]) ** 2 + (self.yy[y0:y1, x0:x1] - ins["y"]) ** 2)
                          / ins["r"] ** 2)
            img[y0:y1, x0:x1] += (ins["amp"] * blob)[..., None]
        img *= self.gains[i % 64]
        if self.shake:
            img = np.roll(img, (int(round(rng.normal(0, self.shake))), int(round(rng.normal(0, self.shake)))), (0, 1))
        return img


# ---------------------------------------------------------------- clip


class LensDrops:
    """Water drops on the lens or dome: out of focus, they show a blurred and brighter patch of the scene; some
    slide down, and in the rain a new one may land during the clip."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, spec: ClipSpec) -> None:
        s = pixel_scale(spec, w)
        n = int(rng.integers(1, 9))
        self.h, self.w = h, w
        self.sigma = float(rng.uniform(3, 8)) * s
        self.drops = [
            dict(x=rng.uniform(0, w), y=rng.uniform(0, h), r=rng.uniform(8, 50) * s,
                 vy=rng.uniform(0.5, 3.0) * s if rng.random() < 0.3 else 0.0, gain=rng.uniform(0.9, 1.3),
                 lift=rng.uniform(0, 30), start=0)
            for _ in range(n)
        ]
        if spec.kind != "clear" and rng.random() < 0.5:
            self.drops[0]["start"] = int(rng.integers(1, spec.windows * spec.window_length))
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def apply(self, img: np.ndarray, i: int) -> np.ndarray:
        """Blend the drops of frame ``i`` into ``img`` (RGB float)."""
        live = [d for d in self.drops if i >= d["start"]]
        if not live:
            return img
        arr = np.clip(img, 0, 255).astype(np.uint8)
        blurred = np.asarray(Image.fromarray(arr).filter(ImageFilter.GaussianBlur(self.sigma)), dtype=np.float32)
        mask = np.zeros((self.h, self.w), np.float32)
        look = np.zeros((self.h, self.w), np.float32)
        for d in live:
            cy = d["y"] + d["vy"] * (i - d["start"])
            r = d["r"]
            y0, y1 = int(max(0, cy - 2 * r)), int(min(self.h, cy + 2 * r))
            x0, x1 = int(max(0, d["x"] - 2 * r)), int(min(self.w, d["x"] + 2 * r))
            if y1 <= y0 or x1 <= x0:
                continue
            rr = ((self.xx[y0:y1, x0:x1] - d["x"]) ** 2 + ((self.yy[y0:y1, x0:x1] - cy) * 0.8) ** 2) / r**2
            m = np.clip(1.5 - rr, 0, 1)  # soft-edged disc, a bit taller than wide
            mask[y0:y1, x0:x1] = np.maximum(mask[y0:y1, x0:x1], m)
            look[y0:y1, x0:x1] = np.where(m > 0, d["gain"], look[y0:y1, x0:x1])
            look[y0:y1, x0:x1] += m * d["lift"] / 255
        inner = blurred * np.maximum(look, 1e-3)[..., None]
        return img * (1 - mask[..., None]) + inner * mask[..., None]


class Splashes:
    """Drops hitting the ground below the horizon: each a small bright crown, flatter than high, seen for one frame
    (a third for two, fading), larger the nearer the camera; ``factor`` splashes per rain streak of the frame."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, spec: ClipSpec, factor: float) -> None:
        lo, hi = INTENSITY[spec.intensity]
        self.rng, self.h, self.w = rng, h, w
        self.n = int(rng.uniform(lo, hi) * factor * (w * h) / (640 * 360))
        self.horizon = float(rng.uniform(0.35, 0.7)) * h
        self.scale = pixel_scale(spec, w)
        self.left: np.ndarray = np.zeros((h, w), np.float32)  # the fading second frame of the last splashes

    def step(self, i: int) -> np.ndarray:
        """The alpha map of frame ``i``'s splashes (independent per frame, apart from the fading ones)."""
        rng, h, w = self.rng, self.h, self.w
        # more of the ground is near the bottom of the picture; nearer splashes are larger and fewer per pixel
        depth = rng.random(self.n) ** 0.7
        ys = self.horizon + depth * (h - self.horizon)
        xs = rng.uniform(0, w, self.n)
        r = (0.3 + 2.2 * depth) * self.scale
        a = rng.uniform(0.15, 0.6, self.n)
        fading = rng.random(self.n) < 1 / 3
        maps = []
        for wts in (a, a * fading * 0.4):
            alpha = np.zeros((h, w), np.float32)
            for dx in (-1.0, -0.5, 0.0, 0.5, 1.0):  # a crown twice as wide as high
                alpha += _splat(h, w, np.round(xs + dx * 1.6 * r), np.round(ys - 0.4 * r * (1 - abs(dx))), wts / 3)
            maps.append(_blur(alpha, 0.6 * self.scale, points=True))
        out = np.clip(maps[0] + self.left, 0, 0.85)
        self.left = maps[1]
        return out


def silk_glow(h: int, w: int, anchor: np.ndarray, mid: np.ndarray, end: np.ndarray, sigma: float,
              amp: float) -> np.ndarray:
    """The light of one strand of spider silk lit by the IR lamp: a quadratic curve from ``anchor`` through
    (toward) ``mid`` to ``end``, blurred by ``sigma`` pixels (out of focus), ``amp`` grey levels at its core."""
    t = np.linspace(0, 1, 2 * h)[:, None]
    pts = (1 - t) ** 2 * anchor + 2 * t * (1 - t) * mid + t**2 * end
    xs, ys = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    line = np.zeros((h, w), np.uint8)
    line[ys[ok], xs[ok]] = 255
    blurred = np.asarray(Image.fromarray(line).filter(ImageFilter.GaussianBlur(sigma)), np.float32)
    return blurred / 255 * amp * np.sqrt(2 * np.pi) * sigma  # a line's peak kept after the blur


def drop_radiance(rng: np.random.Generator, spec: ClipSpec, bg: np.ndarray) -> np.ndarray | float:
    """What a drop shows: a constant radiance, or (``refract``) the scene above it, blurred, flipped and lifted."""
    if spec.drop_model != "refract":
        return float(rng.uniform(110, 255) if not spec.night else rng.uniform(120, 255))
    h, w = bg.shape[:2]
    small = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8)).resize((max(8, w // 16), max(8, h // 16)))
    env = np.asarray(small.filter(ImageFilter.GaussianBlur(2)).transpose(Image.FLIP_TOP_BOTTOM).resize((w, h)),
                     dtype=np.float32)
    return np.clip(env * rng.uniform(0.7, 1.0) + rng.uniform(30, 90), 0, 255)


def add_noise(rng: np.random.Generator, img: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """Camera noise of one frame (RGB float in, RGB float out)."""
    h, w = img.shape[:2]
    n = rng.normal(0, 1, (h, w, 1)).astype(np.float32)
    if spec.noise_kind == "correlated":  # demosaicing / spatial denoising: 2x2 blotches of the same std
        n = (n + np.roll(n, 1, 0) + np.roll(n, 1, 1) + np.roll(n, (1, 1), (0, 1))) * 0.5
    if spec.noise_kind == "shot":  # signal-dependent (photon shot noise), plus row noise of CMOS sensors at night
        luma = np.clip(img.mean(axis=2, keepdims=True), 1, 255)
        img = img + n * spec.noise * np.sqrt(luma / 100.0)
        if spec.night:
            img = img + rng.normal(0, 0.4 * spec.noise, (h, 1, 1)).astype(np.float32)
    else:
        img = img + n * spec.noise
    if not spec.night:
        img = img + rng.normal(0, spec.noise * 0.5, (h, w, 3)).astype(np.float32)  # chroma noise
    return img


def render_frames(spec: ClipSpec) -> list[np.ndarray]:
    """All frames of the clip as RGB uint8 arrays."""
    rng = np.random.default_rng(spec.seed)
    w, h = spec.sensor if spec.sensor != (0, 0) else spec.size
    warp = FisheyeWarp(w, h, spec.lens) if spec.lens else None
    if warp is not None:  # everything in front of the lens is drawn on its larger canvas; the sensor is w x h
        w, h = warp.canvas
    bg = photo_background(rng, spec.photo, w, h) if spec.photo else procedural_background(rng, w, h)
    if spec.scene == "drawn":  # drawn from its own generator: everything else in the clip stays the same
        bg = drawn_background(np.random.default_rng([spec.seed, 5]), w, h)
    lamp = np.ones((h, w), np.float32)
    if spec.night:
        bg, lamp = to_night(rng, bg)
    dis = Distractors(rng, h, w, spec, bg)
    lens = LensDrops(rng, h, w, spec) if "lens_drops" in spec.distractors else None
    angle = math.pi / 2 + rng.normal(0, 0.3)  # rain falls down, tilted by wind
    snow = Snow(rng, h, w, spec) if spec.kind == "snow" else None
    drop_light = drop_radiance(rng, spec, bg)
    # its own generator: a clip without splashes draws the same as before they existed
    splashes = (Splashes(np.random.default_rng([spec.seed, 11]), h, w, spec, spec.extra["splash"])
                if spec.kind == "rain" and spec.extra.get("splash") else None)
    # a steady shower: one rate for the clip, each frame's count a Poisson draw of it (own generator, as above)
    steady = (np.random.default_rng([spec.seed, 29]) if spec.kind == "rain" and spec.extra.get("steady") else None)
    rate = float(steady.uniform(*INTENSITY[spec.intensity])) if steady is not None else 0.0
    if isinstance(drop_light, np.ndarray):
        drop_light = drop_light[..., None] if drop_light.ndim == 2 else drop_light
    lit = (0.25 + 0.75 * lamp) * (1 + spec.lamp_boost * lamp**2)  # drops are only lit near the IR lamp
    n = spec.windows * spec.window_length
    frames = []
    prev: np.ndarray | None = None
    for i in range(n):
        img = dis.apply(bg.copy(), i)
        if spec.kind != "clear":
            if spec.gust:
                angle += rng.normal(0, spec.gust)
            count = float(steady.poisson(rate)) if steady is not None else None
            a = rain_alpha(rng, h, w, spec, angle, count) if snow is None else snow.step(i)
            if spec.night:
                a = np.clip(a * lit, 0, 0.95)
            img = img * (1 - a[..., None]) + drop_light * a[..., None]
        if splashes is not None:
            a = splashes.step(i) * (lit if spec.night else 1.0)
            img = img * (1 - a[..., None]) + drop_light * a[..., None]
        if lens is not None:
            img = lens.apply(img, i)
        if warp is not None:
            img = warp(img)
        img = add_noise(rng, img, spec)
        if spec.tnr and prev is not None:
            # motion-adaptive temporal noise reduction: small changes (noise, faint streaks) are blended
            # toward the previous output, large ones pass
            d = img - prev
            k = spec.tnr * np.exp(-((d / (3.0 * spec.noise + 6.0)) ** 2))
            img = img - k * d
        prev = img
        out = np.clip(img, 0, 255).astype(np.uint8)
        if out.shape[1::-1] != spec.size:  # the camera's scaler (antialiased: it averages neighbouring sensor pixels)
            out = np.asarray(Image.fromarray(out).resize(spec.size, Image.BILINEAR))
        frames.append(out)
    return frames


def encode(
    frames: list[np.ndarray], path: Path, fps: int, gop: int, crf: int, preset: str = "veryfast", bitrate: int = 0,
    codec: str = "libx264",
    bframes: int = 0,
    interlaced: bool = False,
    rotation: int = 0,
    x264_params: str = "",
) -> Path:
    """Encode like a camera: H.264 (or ``codec="libx265"``: H.265), no B-frames, one slice, fixed GOP, given CRF or
    capped bitrate (kbit/s). ``bframes``: up to that many B-frames in a row, as desktop encoders and video sites
    (not cameras) use. ``codec="libvpx-vp9"`` / ``"libsvtav1"``: VP9 / AV1 as a video site encodes them (hidden
    reference frames, pictures coded out of order), at ``crf`` on the encoder's own 0-63 scale or ``bitrate``, with
    the same GOP. ``interlaced``: x264 codes each frame as two fields, top first (an interlaced camera or an
    analogue camera's recorder; the decoder then flags every frame interlaced). ``rotation``: the container's
    display matrix turns the pictures that many degrees counter-clockwise to show them (a phone's portrait video).
    ``x264_params``: more of x264's own parameters (``key=value:...``), appended to the camera's."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if rotation:
            vs.set_display_rotation(rotation)
        if codec in ("libvpx-vp9", "libsvtav1"):
            vs.codec_context.gop_size = gop
            if codec == "libvpx-vp9":
                vs.codec_context.options = {"deadline": "good", "cpu-used": "5", "row-mt": "1", "lag-in-frames": "16",
                                            "auto-alt-ref": "1", "keyint_min": str(gop)}
            else:
                vs.codec_context.options = {"preset": "10", "svtav1-params": f"keyint={gop}:scd=0:lp=1"}
            if bitrate:
                vs.codec_context.bit_rate = bitrate * 1000
            else:
                vs.codec_context.options |= {"crf": str(min(63, crf))} | ({"b": "0"} if codec == "libvpx-vp9" else {})
        elif codec == "libx265":  # the same camera settings in x265's own parameter string
            params = (f"bframes={bframes}:keyint={gop}:min-keyint={gop}:scenecut=0:frame-threads=1:pools=none"
                      ":log-level=error")
            rate = f":bitrate={bitrate}:vbv-maxrate={bitrate}:vbv-bufsize={bitrate}" if bitrate else f":crf={crf}"
            vs.codec_context.options = {"preset": preset, "x265-params": params + rate}
        else:
            vs.codec_context.gop_size = gop
            vs.codec_context.options = {
                "preset": preset,
                "bf": str(bframes),
                "sc_threshold": "0",
                "keyint_min": str(gop),
                "x264-params": "sliced-threads=0:slices=1" + (":interlaced=1:tff=1" if interlaced else "")
                + (f":{x264_params}" if x264_params else ""),
            }
            if not bframes:  # a camera's low-latency stream (which has no B-frames)
                vs.codec_context.options |= {"tune": "zerolatency"}
            if bitrate:  # a camera's rate control: average bitrate with a one-second VBV buffer
                vs.codec_context.bit_rate = bitrate * 1000
                vs.codec_context.options |= {"maxrate": f"{bitrate}k", "bufsize": f"{bitrate}k"}
            else:
                vs.codec_context.options |= {"crf": str(crf)}
            vs.codec_context.thread_count = 1
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


def site_encode(frames: list[np.ndarray], path: Path, fps: int, gop: int, crf: int, bitrate: int, site: str) -> Path:
    """``frames`` re-encoded as a video site serves footage (``site``: a key of ``SITE_CODECS``), at the quality of the
    render's x264 ``crf`` (``crf + SITE_CRF_OFFSET`` on the encoder's scale) or the same capped ``bitrate``."""
    return encode(frames, path, fps, gop, crf + SITE_CRF_OFFSET, bitrate=bitrate, codec=SITE_CODECS[site])


def preset_of(spec: ClipSpec) -> str:
    """The clip's x264 preset: its own, or ultrafast / veryfast by seed."""
    return spec.preset or ("ultrafast" if spec.seed % 3 == 0 else "veryfast")


def render_clip(spec: ClipSpec, path: Path) -> Path:
    """Render and encode ``spec``; every window starts at a keyframe (GOP = window length)."""
    if spec.codec:
        return site_encode(render_frames(spec), path, spec.fps, spec.window_length, spec.crf, spec.bitrate, spec.codec)
    return encode(render_frames(spec), path, spec.fps, spec.window_length, spec.crf, preset_of(spec), spec.bitrate,
                  x264_params=RATE_CONTROL.get(spec.rate_control, ""))
