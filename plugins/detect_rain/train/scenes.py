"""Drawn camera views: the fine, high-contrast texture of real gardens, drives and streets.

The other backgrounds are smooth procedural scenes and close-ups of cars (the plate photos). Real cameras mostly
look at lawns, gravel, paving, hedges and trees of thousands of leaves, tiled roofs, fences, poles and overhead
wires: texture that sensor noise and compression turn into one-frame flicker, and thin static lines at the angle
of rain. ``drawn_background`` draws such a view from a seeded generator (PIL at twice the size, then downscaled,
so edges are anti-aliased like a lens's).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPER = 2  # drawn at twice the clip size, then downscaled

Color = tuple[int, int, int]


def _col(rng: np.random.Generator, base: np.ndarray, spread: float) -> Color:
    c = np.clip(base + rng.normal(0, spread, 3) + rng.normal(0, spread), 0, 255)
    return int(c[0]), int(c[1]), int(c[2])


def _noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth value noise in 0..1 with features about ``cell`` pixels wide."""
    small = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    im = Image.fromarray((small * 255).astype(np.uint8)).resize((w + cell, h + cell), Image.BICUBIC)
    return np.asarray(im, dtype=np.float32)[:h, :w] / 255.0


def _depth(y: np.ndarray | float, horizon: float, h: int) -> np.ndarray | float:
    """Perspective scale of the ground at row ``y``: 0 at the horizon, 1 at the bottom edge."""
    return np.clip((np.asarray(y, dtype=np.float32) - horizon) / max(h - horizon, 1.0), 0.02, 1.0)


# ---------------------------------------------------------------- ground


def _ground(rng: np.random.Generator, img: np.ndarray, horizon: int) -> None:
    """Fill the ground (below ``horizon``) with one to three surfaces: lawn, gravel, paving, asphalt, soil."""
    h, w = img.shape[:2]
    top = max(horizon, 0)
    kinds = rng.choice(["lawn", "gravel", "paving", "asphalt", "soil"], size=int(rng.integers(1, 4)),
                       p=[0.35, 0.2, 0.2, 0.15, 0.1])
    # the surfaces meet along straight edges that run toward the horizon (a drive next to a lawn)
    edges = np.sort(rng.uniform(0, w, len(kinds) - 1))
    yy, xx = np.mgrid[top:h, 0:w].astype(np.float32)
    slant = (xx - w / 2) * (1 - _depth(yy, horizon, h)) * rng.uniform(-0.8, 0.8)
    region = np.searchsorted(edges, xx + slant)
    for k, kind in enumerate(kinds):
        mask = region == k
        if mask.any():
            img[top:h][mask] = _surface(rng, str(kind), h - top, w, horizon - top)[mask]


def _surface(rng: np.random.Generator, kind: str, h: int, w: int, horizon: int) -> np.ndarray:
    """One ground surface in perspective (RGB float, h x w)."""
    yy = np.arange(h, dtype=np.float32)[:, None]
    depth = _depth(yy, horizon, h)
    fine, mid, coarse = _noise(rng, h, w, 2), _noise(rng, h, w, 8), _noise(rng, h, w, 48)
    if kind == "lawn":
        base = np.array([rng.uniform(40, 110), rng.uniform(70, 150), rng.uniform(20, 70)])
        tex = 0.55 * fine * depth + 0.25 * mid + 0.2 * coarse  # blades are only resolved near the camera
        out = base * (0.55 + 0.9 * tex[..., None])
        im = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(im)
        n = int(h * w / rng.uniform(60, 200))
        ys = rng.uniform(0, h, n)
        xs = rng.uniform(0, w, n)
        dep = _depth(ys, horizon, h)
        lens = (2 + 10 * dep * rng.uniform(0.5, 1.5, n))
        tilt = rng.normal(0, 0.35, n)
        shade = rng.uniform(0.5, 1.5, n)
        for x, y, ln, t, s in zip(xs, ys, lens, tilt, shade, strict=True):
            c = np.clip(base * s, 0, 255).astype(int)
            d.line([(x, y), (x + t * ln, y - ln)], fill=(int(c[0]), int(c[1]), int(c[2])), width=1)
        return np.asarray(im, dtype=np.float32)
    if kind == "gravel":
        base = rng.uniform(90, 180) + rng.normal(0, 8, 3)
        # stones: a few pixels wide near the camera, sub-pixel (speckle) far away
        tex = np.where(depth > 0.5, _noise(rng, h, w, 4), fine)
        out = base * (0.45 + 1.1 * tex[..., None]) * (0.85 + 0.3 * coarse[..., None])
        return out
    if kind == "paving":
        base = rng.uniform(80, 190) + rng.normal(0, 10, 3)
        out = np.empty((h, w, 3), np.float32)
        out[:] = base
        out *= (0.8 + 0.25 * mid[..., None] + 0.15 * fine[..., None])
        # joints: rows closer together toward the horizon, columns converging on a vanishing point
        size = rng.uniform(20, 60)
        vx = w * rng.uniform(0.2, 0.8)
        row_phase = np.cumsum(1.0 / (size * np.maximum(depth[:, 0], 0.05)))
        joint = (np.abs((row_phase % 1.0) - 0.5) > 0.5 - 0.6 / size / np.maximum(depth[:, 0], 0.05))
        out[joint] *= rng.uniform(0.45, 0.75)
        xx = np.arange(w, dtype=np.float32)[None, :]
        u = (xx - vx) / np.maximum(depth, 0.05) / size
        col_joint = np.abs((u % 1.0) - 0.5) > 0.5 - 0.6 / size / np.maximum(depth, 0.05)
        out[col_joint] *= rng.uniform(0.45, 0.75)
        return out
    if kind == "asphalt":
        base = rng.uniform(45, 110) + rng.normal(0, 3, 3)
        out = base * (0.8 + 0.35 * fine[..., None] * depth[..., None] + 0.2 * coarse[..., None])
        if rng.random() < 0.6:  # a painted line
            x0, x1 = rng.uniform(0.2, 0.8) * w, rng.uniform(0.0, 1.0) * w
            xs = x1 + (x0 - x1) * depth[:, 0]
            half = 1.0 + 5.0 * depth[:, 0]
            xx = np.arange(w, dtype=np.float32)[None, :]
            paint = np.abs(xx - xs[:, None]) < half[:, None]
            if rng.random() < 0.5:  # dashed
                paint &= (np.cumsum(1.0 / np.maximum(depth[:, 0], 0.05)) % 80 < 40)[:, None]
            out[paint] = rng.uniform(180, 235)
        return out
    base = np.array([rng.uniform(60, 120), rng.uniform(45, 95), rng.uniform(30, 70)])  # soil / bark mulch
    return base * (0.5 + 0.7 * fine[..., None] * depth[..., None] + 0.4 * mid[..., None])


# ---------------------------------------------------------------- things on the ground


def _leaves(rng: np.random.Generator, d: ImageDraw.ImageDraw, cx: float, cy: float, rx: float, ry: float,
            leaf: float, base: np.ndarray, count: int) -> None:
    """A crown or hedge: ``count`` leaves in an ellipse, darker inside and below, lit from above."""
    r = np.sqrt(rng.random(count))
    a = rng.uniform(0, 2 * np.pi, count)
    xs, ys = cx + rx * r * np.cos(a), cy + ry * r * np.sin(a)
    light = 0.55 + 0.6 * (1 - (ys - (cy - ry)) / (2 * ry + 1e-6)) * rng.uniform(0.6, 1.0, count) + 0.25 * r
    _paint_leaves(rng, d, xs, ys, light, leaf, base)


def _paint_leaves(rng: np.random.Generator, d: ImageDraw.ImageDraw, xs: np.ndarray, ys: np.ndarray,
                  light: np.ndarray, leaf: float, base: np.ndarray) -> None:
    """One small ellipse per leaf, about ``leaf`` pixels wide, its colour ``base`` times its ``light``."""
    for x, y, s, lt in zip(xs, ys, leaf * rng.uniform(0.5, 1.5, len(xs)), light, strict=True):
        c = np.clip(base * lt * rng.uniform(0.8, 1.2), 0, 255).astype(int)
        d.ellipse([x - s, y - s * 0.6, x + s, y + s * 0.6], fill=(int(c[0]), int(c[1]), int(c[2])))


def _tree(rng: np.random.Generator, d: ImageDraw.ImageDraw, x: float, ground: float, scale: float) -> None:
    trunk_h, trunk_w = 80 * scale * rng.uniform(0.6, 1.4), 10 * scale * rng.uniform(0.6, 1.5)
    bark = _col(rng, np.array([70.0, 55, 40]), 15)
    d.rectangle([x - trunk_w / 2, ground - trunk_h, x + trunk_w / 2, ground], fill=bark)
    rx, ry = 70 * scale * rng.uniform(0.6, 1.5), 90 * scale * rng.uniform(0.6, 1.4)
    base = np.array([rng.uniform(30, 110), rng.uniform(60, 140), rng.uniform(20, 70)])
    if rng.random() < 0.15:  # autumn or a copper beech
        base = np.array([rng.uniform(110, 170), rng.uniform(50, 110), rng.uniform(20, 50)])
    count = int(min(9000, 2.2 * rx * ry / max(scale, 0.2) * rng.uniform(0.6, 1.2)))
    _leaves(rng, d, x, ground - trunk_h - ry * 0.7, rx, ry, 2.5 * scale + 1.0, base, count)


def _hedge(rng: np.random.Generator, d: ImageDraw.ImageDraw, x0: float, x1: float, ground: float,
           scale: float) -> None:
    height = 60 * scale * rng.uniform(0.5, 1.5)
    base = np.array([rng.uniform(25, 80), rng.uniform(50, 120), rng.uniform(15, 60)])
    d.rounded_rectangle([x0, ground - height, x1, ground], radius=height * 0.2, fill=_col(rng, base * 0.5, 5))
    leaf = 2.0 * scale + 0.8
    count = int(min(20000, 0.8 * (x1 - x0) * height / leaf))
    xs, ys = rng.uniform(x0, x1, count), ground - height * rng.random(count) ** 0.8
    light = 0.6 + 0.6 * (ground - ys) / height * rng.uniform(0.6, 1.0, count)
    _paint_leaves(rng, d, xs, ys, light, leaf, base)


def _house(rng: np.random.Generator, d: ImageDraw.ImageDraw, x: float, ground: float, scale: float) -> None:
    ww, wh = 320 * scale * rng.uniform(0.6, 1.6), 180 * scale * rng.uniform(0.7, 1.3)
    wall = _col(rng, np.array([rng.uniform(120, 230)] * 3) * np.array([1.0, 0.95, 0.85]), 12)
    d.rectangle([x, ground - wh, x + ww, ground], fill=wall)
    if rng.random() < 0.4:  # brick or siding: fine horizontal lines
        step = max(2.0, 8 * scale * rng.uniform(0.6, 1.4))
        line = tuple(int(v * 0.8) for v in wall)
        y = ground - wh
        while y < ground:
            d.line([(x, y), (x + ww, y)], fill=line, width=1)
            y += step
    roof_h = wh * rng.uniform(0.3, 0.7)
    roof = _col(rng, np.array([rng.uniform(50, 150), 50.0, 40.0]) if rng.random() < 0.6 else np.array([60.0] * 3), 10)
    d.polygon([(x - 10 * scale, ground - wh), (x + ww / 2, ground - wh - roof_h), (x + ww + 10 * scale, ground - wh)],
              fill=roof)
    tile = max(2.0, 7 * scale * rng.uniform(0.7, 1.3))
    dark = tuple(int(v * 0.6) for v in roof)
    y = ground - wh - roof_h + tile
    while y < ground - wh:  # tile rows: the roof's fine horizontal texture
        f = (y - (ground - wh - roof_h)) / roof_h
        d.line([(x + ww / 2 - f * (ww / 2 + 10 * scale), y), (x + ww / 2 + f * (ww / 2 + 10 * scale), y)],
               fill=dark, width=1)
        y += tile
    cols, rows = int(rng.integers(2, 6)), int(rng.integers(1, 3))
    for i in range(cols):
        for j in range(rows):
            wx = x + ww * (i + 0.3) / cols
            wy = ground - wh + wh * (j + 0.2) / rows
            ow, oh = ww / cols * 0.45, wh / rows * 0.5
            glass = _col(rng, np.array([rng.uniform(20, 90)] * 3), 10)
            d.rectangle([wx, wy, wx + ow, wy + oh], fill=glass, outline=(235, 235, 230), width=max(1, int(2 * scale)))
            if rng.random() < 0.5:  # glazing bars
                d.line([(wx + ow / 2, wy), (wx + ow / 2, wy + oh)], fill=(235, 235, 230), width=1)


def _fence(rng: np.random.Generator, d: ImageDraw.ImageDraw, w: int, ground: float, scale: float) -> None:
    height = 70 * scale * rng.uniform(0.6, 1.5)
    x0, x1 = rng.uniform(-0.2, 0.5) * w, rng.uniform(0.5, 1.2) * w
    col = _col(rng, np.array([rng.uniform(60, 200)] * 3), 20)
    if rng.random() < 0.5:  # boards or pickets
        pitch = max(3.0, 14 * scale * rng.uniform(0.6, 1.5))
        gap = pitch * rng.uniform(0.1, 0.5)
        x = x0
        while x < x1:
            d.rectangle([x, ground - height, x + pitch - gap, ground], fill=_col(rng, np.array(col, float), 6))
            x += pitch
    else:  # wire mesh: thin diagonal lines both ways, the angle of wind-blown rain
        pitch = max(3.0, 10 * scale * rng.uniform(0.6, 1.5))
        x = x0 - height
        while x < x1:
            d.line([(x, ground), (x + height, ground - height)], fill=col, width=1)
            d.line([(x + height, ground), (x, ground - height)], fill=col, width=1)
            x += pitch
        for px in np.arange(x0, x1, pitch * 8):
            d.line([(px, ground), (px, ground - height)], fill=col, width=max(1, int(3 * scale)))


def _car(rng: np.random.Generator, d: ImageDraw.ImageDraw, x: float, ground: float, scale: float) -> None:
    cw, ch = 200 * scale * rng.uniform(0.8, 1.2), 60 * scale * rng.uniform(0.8, 1.2)
    body = _col(rng, rng.uniform(20, 230, 3), 10)
    d.rounded_rectangle([x, ground - ch - 10 * scale, x + cw, ground - 10 * scale], radius=12 * scale, fill=body)
    d.polygon([(x + cw * 0.2, ground - ch - 10 * scale), (x + cw * 0.3, ground - ch * 1.7),
               (x + cw * 0.75, ground - ch * 1.7), (x + cw * 0.85, ground - ch - 10 * scale)], fill=body)
    d.polygon([(x + cw * 0.25, ground - ch - 12 * scale), (x + cw * 0.32, ground - ch * 1.6),
               (x + cw * 0.73, ground - ch * 1.6), (x + cw * 0.8, ground - ch - 12 * scale)],
              fill=_col(rng, np.array([50.0, 60, 70]), 10))
    for wx in (x + cw * 0.18, x + cw * 0.82):
        r = 16 * scale
        d.ellipse([wx - r, ground - 2 * r, wx + r, ground], fill=(20, 20, 20))
        d.ellipse([wx - r / 2, ground - 1.5 * r, wx + r / 2, ground - r / 2], fill=(150, 150, 150))


def _wires(rng: np.random.Generator, d: ImageDraw.ImageDraw, w: int, h: int, horizon: float) -> None:
    """Poles and sagging overhead wires across the sky: thin lines that never move."""
    px = rng.uniform(0.05, 0.95) * w
    top = rng.uniform(0.0, 0.3) * h
    d.rectangle([px - 3, top, px + 3, max(horizon, top + 10) + 0.2 * h], fill=_col(rng, np.array([70.0] * 3), 15))
    for _ in range(int(rng.integers(1, 5))):
        y0, y1 = top + rng.uniform(0, 30), rng.uniform(-0.1, 0.5) * h
        x_end = rng.choice([-0.05 * w, 1.05 * w])
        sag = rng.uniform(5, 40)
        ts = np.linspace(0, 1, 24)
        pts = [(px + (x_end - px) * t, y0 + (y1 - y0) * t + sag * 4 * t * (1 - t)) for t in ts]
        d.line(pts, fill=_col(rng, np.array([40.0] * 3), 10), width=int(rng.integers(1, 3)))


def _shrubs(rng: np.random.Generator, d: ImageDraw.ImageDraw, w: int, h: int, horizon: float) -> None:
    """Small bushes and flower beds scattered over the ground."""
    for _ in range(int(rng.integers(0, 6))):
        y = rng.uniform(max(horizon, 0) + 0.1 * h, h)
        s = float(_depth(y, horizon, h))
        base = np.array([rng.uniform(30, 120), rng.uniform(60, 150), rng.uniform(20, 80)])
        if rng.random() < 0.3:  # flowers
            base = rng.uniform(80, 250, 3)
        rx, ry = 40 * s * rng.uniform(0.5, 2), 25 * s * rng.uniform(0.5, 2)
        _leaves(rng, d, rng.uniform(0, w), y - ry, rx, ry, 2 * s + 0.6, base, int(min(4000, 3 * rx * ry / s)))


# ---------------------------------------------------------------- the view


def drawn_background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A drawn garden, drive or street view (RGB float 0..255, ``h`` x ``w``)."""
    W, H = w * SUPER, h * SUPER
    px = W / 1280.0  # drawing sizes are given for a 1280-pixel-wide picture (at SUPER)
    horizon = int(H * rng.uniform(-0.15, 0.5))  # at or above the top: the camera looks down at the ground
    img = np.empty((H, W, 3), np.float32)
    if horizon > 0:
        grey = rng.uniform(120, 235)
        sky = rng.choice(["overcast", "blue", "dusk"], p=[0.5, 0.35, 0.15])
        tint = {"overcast": (0.0, 0.0, 0.03), "blue": (-0.35, -0.15, 0.1), "dusk": (0.1, -0.05, -0.2)}[str(sky)]
        top = grey * (1 + np.array(tint)) + rng.normal(0, 4, 3)
        bot = np.minimum(255, top * rng.uniform(1.0, 1.25)) + rng.normal(0, 4, 3)
        t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
        clouds = _noise(rng, horizon, W, int(rng.integers(40, 200)))[..., None]
        img[:horizon] = top + (bot - top) * t + (clouds - 0.5) * rng.uniform(0, 60)
    _ground(rng, img, horizon)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    # back to front: what stands at the horizon line, then nearer things lower in the picture
    back = max(horizon, 0) + rng.uniform(0.02, 0.2) * H

    def size_at(y: float) -> float:  # 1 for a thing at the bottom edge, a quarter of that far away
        return px * 3.0 * max(float(_depth(y, horizon, H)), 0.25)

    scale = size_at(back)
    if rng.random() < 0.3:
        _wires(rng, d, W, H, horizon)
    things = rng.choice(["house", "tree", "hedge", "fence", "car"], size=int(rng.integers(2, 7)),
                        p=[0.2, 0.3, 0.2, 0.15, 0.15])
    placed = []
    for kind in things:
        x = rng.uniform(-0.1, 0.9) * W
        g = back + (0.0 if kind == "house" else rng.uniform(0, 0.6) * (H - back))
        placed.append((str(kind), x, g))
    for kind, x, g in sorted(placed, key=lambda t: (t[0] != "house", t[2])):  # far to near
        s = size_at(g) if kind != "house" else scale
        if kind == "house":
            _house(rng, d, x, g, s)
        elif kind == "tree":
            _tree(rng, d, x, g, s)
        elif kind == "hedge":
            _hedge(rng, d, x, x + rng.uniform(0.1, 0.6) * W, g, s)
        elif kind == "fence":
            _fence(rng, d, W, g, s)
        else:
            _car(rng, d, x, g, s)
    _shrubs(rng, d, W, H, horizon)
    im = im.resize((w, h), Image.BOX)
    if rng.random() < 0.5:  # lens softness
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    out = np.asarray(im, dtype=np.float32)
    # light: overcast flatness or sun with a soft shadow band; exposure
    if rng.random() < 0.4:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, np.pi)
        band = np.cos(a) * xx + np.sin(a) * yy
        lo = rng.uniform(band.min(), band.max())
        shadow = 1 - rng.uniform(0.25, 0.55) * (1 / (1 + np.exp(-(band - lo) / (0.02 * w))))
        out = out * shadow[..., None]
    return np.clip((out - 128) * rng.uniform(0.7, 1.15) + 128 + rng.uniform(-30, 20), 0, 255)
