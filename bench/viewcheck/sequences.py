"""View-check accuracy on synthetic camera days: false ``obstructed`` verdicts on normal sequences, detections on
covered, blurred and moved ones.

Each simulated camera has its own scene (random texture, blocks and a sky gradient); its clips are real H.264 MP4s
(``alarmcloud.testing.make_clip``) decoded with the pipeline's frame request and measured by
``viewcheck.measure``. Clip kinds vary noise, softness (optics, a low-detail stream), passers-by, brightness, lamp
highlights and infrared grey. Sequences put a camera's clips on a time line of several days (recorded times as a
camera reports them) and replay them through ``viewcheck.step``, the state machine the server runs.

    nice .venv/bin/python bench/viewcheck/sequences.py                  # 24 cameras, the table for RESULTS.md
    nice .venv/bin/python bench/viewcheck/sequences.py --cameras 4      # a quick look
    nice .venv/bin/python bench/viewcheck/sequences.py --rule previous  # the rule before dark pictures needed
                                                                        # a baseline of their own light
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from alarmcloud import viewcheck
from alarmcloud.testing import make_clip
from alarmcloud.video import decode
from PIL import Image, ImageFilter

W, H = 640, 352
HOUR = 3600.0
Scene = Callable[[int, float, int, int], np.ndarray]


# ---------------------------------------------------------------- scenes


def texture(seed: int) -> np.ndarray:
    """A camera's view in daylight: coloured blocks of mixed sizes, a few large shapes, a sky gradient on some."""
    rng = np.random.default_rng(seed)
    cell = int(rng.choice([4, 8, 12, 16]))
    small = rng.integers(30, 210, size=(H // cell + 1, W // cell + 1, 3))
    img = np.repeat(np.repeat(small, cell, axis=0), cell, axis=1)[:H, :W].astype(np.float32)
    for _ in range(int(rng.integers(2, 6))):  # walls, a car, a door
        x0, y0 = int(rng.integers(0, W - 60)), int(rng.integers(0, H - 40))
        x1, y1 = x0 + int(rng.integers(40, 260)), y0 + int(rng.integers(30, 160))
        img[y0:y1, x0:x1] = rng.integers(20, 230, size=3)
    if rng.random() < 0.5:  # sky: a smooth band on top
        top = int(rng.integers(40, 140))
        img[:top] = np.linspace(170, 230, top)[:, None, None] * np.array([0.8, 0.9, 1.0])
    return img


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    u8 = np.clip(img, 0, 255).astype(np.uint8)
    if u8.shape[2] == 1:
        out = np.asarray(Image.fromarray(u8[..., 0]).filter(ImageFilter.GaussianBlur(sigma)))[..., None]
    else:
        out = np.asarray(Image.fromarray(u8).filter(ImageFilter.GaussianBlur(sigma)))
    return out.astype(np.float32)


def _spot(img: np.ndarray, rng: np.random.Generator, colour: tuple[float, float, float], radius: float) -> None:
    """A lamp: a saturated core with a glow around it."""
    cy, cx = float(rng.integers(20, H - 20)), float(rng.integers(20, W - 20))
    yy, xx = np.mgrid[0:H, 0:W]
    d = np.hypot(yy - cy, xx - cx)
    glow = np.clip(1.0 - d / (radius * 4), 0, 1) ** 2 * 0.6 + (d < radius)
    img += glow[..., None] * np.array(colour, dtype=np.float32)


def _out(img: np.ndarray, rng: np.random.Generator, noise: float, chroma_noise: bool) -> np.ndarray:
    shape = img.shape if chroma_noise else img.shape[:2] + (1,)
    return np.clip(img + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)


def day(tex: np.ndarray, *, light: float, noise: float, soft: float, low_detail: bool, mover: bool) -> Scene:
    base = _blur(tex, soft) * light
    if low_detail:  # a low-bitrate or upscaled stream: half the detail
        small = np.asarray(Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).resize((W // 2, H // 2)))
        base = np.asarray(Image.fromarray(small).resize((W, H), Image.BILINEAR)).astype(np.float32)

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        img = base.copy()
        if mover:  # a passer-by crossing the picture
            x = int((t * 120) % (W + 60)) - 60
            img[H // 3:H // 3 + 90, max(0, x):max(0, x + 40)] = (90, 60, 50)
        return _out(img, np.random.default_rng(i), noise, True)
    return scene


def infrared(tex: np.ndarray, *, light: float, noise: float, soft: float, lamp: bool, vignette: bool,
             seed: int) -> Scene:
    """An infrared night picture: grey, softer, noisier, often brighter in the middle (the camera's own light)."""
    grey = _blur(tex.mean(axis=2, keepdims=True), soft) * light
    if vignette:
        yy, xx = np.mgrid[0:H, 0:W]
        grey = grey * (1.15 - 0.6 * np.hypot((yy - H / 2) / H, (xx - W / 2) / W))[..., None]
    if lamp:
        _spot(grey, np.random.default_rng(seed), (255.0,), 6)
    grey = np.repeat(grey, 3, axis=2)

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        return _out(grey, np.random.default_rng(i), noise, False)
    return scene


def black_night(tex: np.ndarray, *, level: float, noise: float, lamp: bool, seed: int) -> Scene:
    """The night of a camera without infrared light: black with sensor noise, maybe a lamp and what it lights."""
    img = np.full((H, W, 3), level, dtype=np.float32)
    if lamp:
        rng = np.random.default_rng(seed)
        _spot(img, rng, (255.0, 170.0, 70.0), 5)
        img += tex * 0.05  # surfaces near the lamp show faintly

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        return _out(img, np.random.default_rng(i), noise, True)
    return scene


def lamp_lit(tex: np.ndarray, *, seed: int, strength: float) -> Scene:
    """The night of a camera without infrared light under a street lamp: orange, dark, lit in a pool around the
    lamp, black elsewhere."""
    rng = np.random.default_rng(seed)
    cy, cx = float(rng.integers(0, H // 2)), float(rng.integers(W // 4, 3 * W // 4))
    yy, xx = np.mgrid[0:H, 0:W]
    pool = np.clip(1.0 - np.hypot(yy - cy, xx - cx) / (W * 0.45), 0, 1)[..., None] * strength
    img = tex.mean(axis=2, keepdims=True) * pool * np.array([1.0, 0.7, 0.35], dtype=np.float32) + 3.0

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        return _out(img, np.random.default_rng(i), 3.0, True)
    return scene


def covered(kind: str, seed: int) -> Scene:
    rng = np.random.default_rng(seed)
    if kind == "black":  # tape, a cap, paint
        img = np.full((H, W, 3), float(rng.uniform(2, 14)), dtype=np.float32)
        noise = float(rng.uniform(1, 3))
    elif kind == "hand":  # a hand or a bag held over the lens by day: skin colour, evenly lit through it
        img = np.ones((H, W, 3), dtype=np.float32) * np.array([150, 100, 80]) * float(rng.uniform(0.5, 1.1))
        img *= np.linspace(0.8, 1.1, W)[None, :, None]
        noise = 2.0
    else:  # grey: cloth, paper
        img = np.full((H, W, 3), float(rng.uniform(60, 140)), dtype=np.float32)
        noise = 2.0

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        return _out(img, np.random.default_rng(i), noise, kind != "black")
    return scene


def blurred(tex: np.ndarray, *, sigma: float, light: float = 1.0, noise: float = 2.0) -> Scene:
    base = _blur(tex, sigma) * light

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        return _out(base, np.random.default_rng(i), noise, True)
    return scene


def spider_web(tex: np.ndarray, *, seed: int) -> Scene:
    """A web in front of an infrared lens: threads glow in the camera's light, the view behind is a blur."""
    rng = np.random.default_rng(seed)
    grey = _blur(tex.mean(axis=2, keepdims=True), 6) * 0.5
    web = np.zeros((H, W), dtype=np.float32)
    cy, cx = float(rng.integers(H // 4, 3 * H // 4)), float(rng.integers(W // 4, 3 * W // 4))
    for ang in np.linspace(0, np.pi * 2, 14, endpoint=False):  # radial threads
        r = np.arange(0, 400)
        ys, xs = (cy + r * np.sin(ang)).astype(int), (cx + r * np.cos(ang)).astype(int)
        ok = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)
        web[ys[ok], xs[ok]] = 255
    web = np.asarray(Image.fromarray(web.astype(np.uint8)).filter(ImageFilter.GaussianBlur(8))).astype(np.float32)
    img = np.repeat(grey + web[..., None] * 3.0, 3, axis=2)

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        return _out(img, np.random.default_rng(i), 4.0, False)
    return scene


def moved(tex: np.ndarray, *, seed: int, light: float) -> Scene:
    rng = np.random.default_rng(seed)
    view = np.roll(tex, (int(rng.integers(H // 4, H // 2)), int(rng.integers(W // 4, W // 2))), axis=(0, 1))
    if rng.random() < 0.5:
        view = view[::-1]
    return day(np.ascontiguousarray(view), light=light, noise=2.0, soft=0.0, low_detail=False, mover=False)


# ---------------------------------------------------------------- a camera's clips, measured


@dataclass
class CameraClips:
    infrared: bool
    pools: dict[str, list[viewcheck.Measures]]


def camera_clips(cam: int, clip_dir: Path) -> CameraClips:
    rng = random.Random(cam)
    tex = texture(1000 + cam)
    ir = cam % 2 == 0
    kinds: dict[str, list[Scene]] = defaultdict(list)
    for _ in range(6):
        kinds["day"].append(day(tex, light=rng.uniform(0.75, 1.2), noise=rng.uniform(1, 6), soft=rng.uniform(0, 1.2),
                                low_detail=rng.random() < 0.3, mover=rng.random() < 0.5))
    for _ in range(2):
        kinds["dusk"].append(day(tex, light=rng.uniform(0.25, 0.5), noise=rng.uniform(3, 7), soft=0.8,
                                 low_detail=False, mover=rng.random() < 0.5))
    for j in range(4):
        if ir:
            kinds["night"].append(infrared(tex, light=rng.uniform(0.4, 0.8), noise=rng.uniform(2, 6),
                                           soft=rng.uniform(1.5, 3), lamp=rng.random() < 0.4,
                                           vignette=rng.random() < 0.6, seed=cam * 10 + j))
        elif cam % 4 == 3 and j % 2:  # a street lamp lights part of the view on some of these cameras' nights
            kinds["night"].append(lamp_lit(tex, seed=cam * 10 + j, strength=rng.uniform(0.3, 0.8)))
        else:
            kinds["night"].append(black_night(tex, level=rng.uniform(3, 12), noise=rng.uniform(1, 4),
                                              lamp=rng.random() < 0.4, seed=cam * 10 + j))
    for j, kind in enumerate(("black", "hand", "grey")):
        kinds["covered"].append(covered(kind, cam * 10 + j))
    for sigma in (6.0, 9.0):  # at 640 px: as strong as sigma 3-4.5 in the 320 px pictures the check measures
        kinds["blurred"].append(blurred(tex, sigma=sigma, light=rng.uniform(0.8, 1.1)))
    kinds["haze"].append(blurred(tex, sigma=3.0, light=rng.uniform(0.8, 1.1)))  # a light haze: half as sharp
    for j in range(2):
        kinds["moved"].append(moved(tex, seed=cam * 10 + j, light=rng.uniform(0.8, 1.1)))
    kinds["covered_night"] = kinds["covered"][0::2]  # black or grey: nothing has colour at night
    if ir:
        kinds["web"].append(spider_web(tex, seed=cam))
        kinds["web_haze"].append(infrared(tex, light=0.6, noise=4, soft=6.5, lamp=False, vignette=True, seed=cam))
        kinds["moved_night"].append(infrared(np.ascontiguousarray(np.roll(tex, (H // 3, W // 3), axis=(0, 1))[::-1]),
                                             light=0.6, noise=3, soft=2, lamp=False, vignette=False, seed=cam))
    else:
        kinds["moved_night"] = kinds["night"]  # nothing to see at night either way
    pools: dict[str, list[viewcheck.Measures]] = {}
    for kind, scenes in kinds.items():
        pools[kind] = []
        for j, scene in enumerate(scenes):
            path = clip_dir / f"cam{cam}-{kind}-{j}.mp4"
            if not path.exists():
                make_clip(path, seconds=3, width=W, height=H, fps=5, gop_seconds=1, scene=scene)
            m = viewcheck.measure(decode(path, [viewcheck.REQUEST])[0])
            assert m is not None
            pools[kind].append(m)
    return CameraClips(ir, pools)


# ---------------------------------------------------------------- time lines


def normal_days(rng: random.Random, days: int, start: float = 0.0) -> list[tuple[float, str]]:
    """(recorded time, clip kind) of ``days`` ordinary days: clips by day, a few at dusk, some at night."""
    out: list[tuple[float, str]] = []
    for d in range(days):
        t0 = start + d * 24 * HOUR
        out += [(t0 + rng.uniform(7.5, 16.5) * HOUR, "day") for _ in range(rng.randint(4, 9))]
        out += [(t0 + rng.uniform(16.5, 17.4) * HOUR, "dusk") for _ in range(rng.randint(0, 2))]
        out += [(t0 + rng.uniform(18.0, 29.5) * HOUR, "night") for _ in range(rng.randint(2, 7))]
        if rng.random() < 0.3:  # a full-light clip late in the afternoon, then black soon after: a quick dusk
            last = t0 + 16.9 * HOUR
            out += [(last, "day")] + [(last + rng.uniform(35, 80) * 60 + k * 300, "night") for k in range(3)]
    return sorted(out)


def problem(rng: random.Random, kind: str, start: float) -> list[tuple[float, str]]:
    """The clips after the problem begins at ``start`` (a day clip just before it is part of ``normal_days``)."""
    if kind == "covered_day":  # covered by day: the next clips soon after
        return [(start + (k + 1) * rng.uniform(3, 9) * 60, "covered") for k in range(4)]
    if kind == "covered_night":
        return [(start + (k + 1) * rng.uniform(10, 40) * 60, "covered_night") for k in range(4)]
    if kind in ("blurred", "haze"):
        return [(start + k * HOUR * rng.uniform(0.5, 2), kind) for k in range(5)]
    if kind in ("web", "web_haze"):
        return [(start + k * HOUR * rng.uniform(0.5, 1.5), kind) for k in range(5)]
    if kind == "moved":  # moved by day: the rest of the day and the night after it
        return ([(start + k * HOUR * rng.uniform(0.3, 1), "moved") for k in range(4)]
                + [(start + (8 + k) * HOUR, "moved_night") for k in range(3)])
    raise ValueError(kind)


PROBLEM_HOURS = {"covered_day": 11.0, "blurred": 10.0, "haze": 10.0, "moved": 9.0, "covered_night": 22.0,
                 "web": 21.0, "web_haze": 21.0}
EXPECTED = {"covered_day": ("covered", "overexposed"), "covered_night": ("covered", "overexposed"),
            "blurred": ("blurred",), "haze": ("blurred",), "web": ("blurred", "overexposed"),
            "web_haze": ("blurred",), "moved": ("view_changed",)}


def replay(cam: CameraClips, line: list[tuple[float, str]], rng: random.Random,
           rule: Callable[..., str | None]) -> list[tuple[float, str]]:
    """The obstructions a time line produces: (time, reason)."""
    view = viewcheck.ViewState()
    got = []
    for at, kind in line:
        m = rng.choice(cam.pools[kind])
        if rule(view, m, at) == "obstructed":
            got.append((at, view.reason or ""))
    return got


def previous_step(view: viewcheck.ViewState, m: viewcheck.Measures, at: float | None) -> str | None:
    """The rule before this change: the light from the picture alone, and a blank picture judged against the other
    light's baseline when its own has none."""
    saved = viewcheck.light_of, viewcheck.judge

    def light_of(m: viewcheck.Measures, *_: Any) -> str:
        return "night" if m.night else "day"

    def old_judge(m: viewcheck.Measures, base: dict[str, Any] | None) -> str:
        other = viewcheck._baseline(list(view.data.get("day" if m.night else "night", [])))
        ref = base or other
        if ref is not None and viewcheck._blank(m) and ref["uniform"] < 0.5:
            return "overexposed" if m.brightness >= viewcheck.OVEREXPOSED else "covered"
        if base is None:
            return "learning"
        rel = viewcheck._relative_contrast(m.contrast, m.brightness)
        if m.sharpness < viewcheck.SHARPNESS_RATIO * base["sharpness"] or rel < (
                viewcheck.CONTRAST_RATIO * base["relative_contrast"]):
            return "blurred"
        if m.brightness >= 220 and base["brightness"] < 170:
            return "overexposed"
        value = int(m.hash, 16)
        if min(bin(value ^ h).count("1") for h in base["hashes"]) > viewcheck.HASH_BITS:
            return "view_changed"
        return "ok"

    viewcheck.light_of, viewcheck.judge = light_of, old_judge  # type: ignore[assignment]
    try:
        return viewcheck.step(view, m, at)
    finally:
        viewcheck.light_of, viewcheck.judge = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=24)
    ap.add_argument("--lines", type=int, default=3, help="normal time lines per camera")
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--rule", choices=("current", "previous"), default="current")
    ap.add_argument("--sharpness-ratio", type=float, default=viewcheck.SHARPNESS_RATIO,
                    help="blurred below this share of the baseline's sharpness (and contrast for the brightness)")
    ap.add_argument("--clip-dir", type=Path, default=Path(tempfile.gettempdir()) / "alarmcloud-bench-viewseq")
    args = ap.parse_args()
    args.clip_dir.mkdir(parents=True, exist_ok=True)
    rule = viewcheck.step if args.rule == "current" else previous_step
    viewcheck.SHARPNESS_RATIO = viewcheck.CONTRAST_RATIO = args.sharpness_ratio
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    for c in range(args.cameras):
        cam = camera_clips(c, args.clip_dir)
        kind = "infrared" if cam.infrared else "no infrared"
        for n in range(args.lines):
            rng = random.Random(c * 100 + n)
            got = replay(cam, normal_days(rng, args.days), rng, rule)
            row = rows[f"normal, {kind}"]
            row["sequences"] += 1
            row["false"] += bool(got)
            for _, reason in got:
                row[f"false {reason}"] += 1
            if got:
                examples[f"normal, {kind}"].append(f"camera {c} line {n}: {got}")
        problems = ["covered_day", "blurred", "haze", "moved"]
        problems += ["covered_night", "web", "web_haze"] if cam.infrared else []
        for p in problems:
            rng = random.Random(c * 100 + 50 + len(p))
            start = (args.days - 2) * 24 * HOUR + PROBLEM_HOURS[p] * HOUR  # both lights have had time to learn
            before = [x for x in normal_days(rng, args.days) if x[0] < start - 600]
            if p == "covered_day":  # the camera saw a normal picture a few minutes before it was covered
                before.append((start - rng.uniform(2, 10) * 60, "day"))
            line = before + problem(rng, p, start)
            got = replay(cam, line, rng, rule)
            row = rows[f"{p}, {kind}"]
            row["sequences"] += 1
            early = [g for g in got if g[0] < start]
            row["false"] += bool(early)
            hit = [g for g in got if g[0] >= start]
            row["detected"] += bool(hit)
            for _, reason in hit[:1]:
                row[f"as {reason}"] += 1
            if early or not hit or hit[0][1] not in EXPECTED[p]:
                examples[f"{p}, {kind}"].append(f"camera {c}: {got or 'nothing'}")
    print(f"rule: {args.rule}, sharpness ratio {args.sharpness_ratio}; {args.cameras} cameras, {args.lines} normal "
          f"time lines of {args.days} days each")
    print("| sequences | N | false `obstructed` (before any problem) | detected | reasons |")
    print("|---|---|---|---|---|")
    for name in sorted(rows, key=lambda k: (not k.startswith("normal"), k)):
        r = rows[name]
        reasons = ", ".join(f"{k[3:]} {v}" for k, v in sorted(r.items()) if k.startswith("as "))
        false_reasons = ", ".join(f"{k[6:]} {v}" for k, v in sorted(r.items()) if k.startswith("false "))
        det = "—" if name.startswith("normal") else f"{r['detected']}/{r['sequences']}"
        print(f"| {name} | {r['sequences']} | {r['false']}" + (f" ({false_reasons})" if false_reasons else "")
              + f" | {det} | {reasons or '—'} |")
    for name, lines in examples.items():
        for line in lines[:4]:
            print(f"  {name}: {line}")


if __name__ == "__main__":
    main()
