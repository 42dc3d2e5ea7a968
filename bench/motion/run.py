"""Motion-analysis benchmark: which movers `alarmcloud.motion.mover_score` finds, and what weather it takes for one.

Renders camera-like clips (H.264 via ``alarmcloud.testing.make_clip``, 18 s, 15 fps, GOP 2 s) of

* a walking person (the night IR person of ``plugins/detect_rain/train/night_synth.py``: head, shoulders, legs with
  a gait, textured clothes) of 4-30 % of the frame height, at 1.4 m/s (walking) or 0.5 m/s (slow), by day (normal
  contrast), at night in the IR lamp (lit clothes) and at night as a dark figure on a dark background (low
  contrast, +-12 grey levels), 720p and 1080p;
* clips without a mover: rain and snow (light / medium / heavy, the rain plugin's renderer ``synth.py``), strong
  sensor noise at night, swaying vegetation, AGC flicker, small far insects at night;

decodes each once (``alarmcloud.video.decode``, the motion request at 160, 240 and 320 px, cached as ``.npz``) and
scores every cached clip with the current ``mover_score``. Frames that no request decodes (neither a keyframe nor
one of the 7 frames after one) are encoded as a copy of the frame before: the decoded frames are the same, the
render is 4x cheaper.

    nice .venv/bin/python bench/motion/run.py render --workers 2     # renders + decodes into /tmp/motion-bench
    nice .venv/bin/python bench/motion/run.py score                  # table of the current mover_score
    nice .venv/bin/python bench/motion/run.py score --rev cee7d5c     # ... of motion.py as of a git revision
    nice .venv/bin/python bench/motion/run.py cost --repeat 15 --rev cee7d5c   # CPU-s per 1080p clip, then and now
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "detect_rain" / "train"))

from alarmcloud import motion  # noqa: E402
from alarmcloud.contracts import ClipFrames, ClipProbe, Frame  # noqa: E402
from alarmcloud.pipeline import MOVER_THRESHOLD  # noqa: E402
from alarmcloud.testing import make_clip  # noqa: E402
from alarmcloud.video import decode, probe  # noqa: E402

CACHE = Path("/tmp/motion-bench")
WIDTHS = (160, 240, 320)
FPS, SECONDS, GOP = 15, 18.0, 2.0
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass(frozen=True)
class Case:
    name: str
    seed: int
    size: str = "720p"
    light: str = "day"  # day | night | night_low (dark figure on a dark background)
    height: float = 0.0  # person height as a share of the frame height; 0 = no person
    speed: float = 1.4  # m/s
    weather: str = ""  # rain | snow
    intensity: str = "medium"
    noise: float = 0.0  # 0: 2 by day, 6 at night
    distractor: str = ""  # vegetation | flicker | insects

    @property
    def mover(self) -> bool:
        return self.height > 0


def cases() -> list[Case]:
    out: list[Case] = []
    seed = 100
    for light in ("day", "night", "night_low"):
        for speed in (1.4, 0.5):
            for h in (0.04, 0.06, 0.08, 0.12, 0.20, 0.30):
                for _ in range(2):
                    seed += 1
                    out.append(Case(f"person {light}", seed, "720p", light, h, speed))
    for light in ("night", "night_low"):
        for h in (0.04, 0.06, 0.08, 0.12):
            seed += 1
            out.append(Case(f"person {light}", seed, "1080p", light, h, 1.4))
    for light in ("day", "night"):
        for weather in ("rain", "snow"):
            for inten in ("light", "medium", "heavy"):
                for k in range(2):
                    seed += 1
                    out.append(Case(f"{weather} {inten} {light}", seed, "1080p" if k else "720p", light,
                                    weather=weather, intensity=inten))
    for k in range(3):
        seed += 1
        out.append(Case("noise night", seed, "720p", "night", noise=(10.0, 14.0, 18.0)[k]))
    for light in ("day", "night"):
        for dis in ("vegetation", "flicker"):
            for _ in range(2):
                seed += 1
                out.append(Case(f"{dis} {light}", seed, "720p", light, distractor=dis))
    for _ in range(3):
        seed += 1
        out.append(Case("insects night", seed, "720p", "night", distractor="insects"))
    # a person walking in the rain (added later: the cases above keep their seeds)
    for light in ("day", "night"):
        for inten in ("light", "medium", "heavy"):
            for h in (0.08, 0.20):
                for _ in range(2):
                    seed += 1
                    out.append(Case(f"person {light} in rain", seed, "720p", light, h, 1.4, weather="rain",
                                    intensity=inten))
    # swaying plants and gain changes in the rain, without a mover
    for light in ("day", "night"):
        for dis in ("vegetation", "flicker"):
            for inten in ("medium", "heavy"):
                for _ in range(2):
                    seed += 1
                    out.append(Case(f"{dis} {light} in {inten} rain", seed, "720p", light, weather="rain",
                                    intensity=inten, distractor=dis))
    # light that changes and moves, without a mover: a cloud's shadow crossing, dusk falling (added last)
    for dis in ("shadow", "dusk"):
        for k in range(3):
            seed += 1
            out.append(Case(f"{dis} day", seed, "1080p" if k == 2 else "720p", "day", distractor=dis))
    # light at night without a mover: a car's headlights sweeping across the scene, a lamp coming on (added last)
    for dis in ("headlights", "lamp"):
        for k in range(3):
            seed += 1
            out.append(Case(f"{dis} night", seed, "1080p" if k == 2 else "720p", "night", distractor=dis))
    return out


def _scene(case: Case):  # noqa: ANN202 - a make_clip scene
    from night_synth import _Moth, _Walker
    from synth import ClipSpec, Distractors, Snow, procedural_background, rain_alpha, to_night

    rng = np.random.default_rng(case.seed)
    w, h = SIZES[case.size]
    rgb = procedural_background(rng, w, h)
    lamp = np.ones((h, w), np.float32)
    night = case.light != "day"
    if night:
        rgb, lamp = to_night(rng, rgb)
    spec = ClipSpec(seed=case.seed, kind=case.weather or "clear", intensity=case.intensity, night=night, size=(w, h),
                    fps=FPS, distractors=(case.distractor,) if case.distractor in ("vegetation", "flicker") else ())
    dis = Distractors(rng, h, w, spec, rgb) if spec.distractors else None
    # the camera's gain changes (AGC) scale all the light the sensor gets and its noise, rain included
    gains = np.ones(1)
    if dis is not None and case.distractor == "flicker":
        gains, dis.gains = dis.gains, np.ones_like(dis.gains)
    grey = rgb.mean(axis=2, keepdims=True).astype(np.float32)
    noise = case.noise or (6.0 if night else 2.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    walker = None
    if case.mover:
        walker = _Walker(rng, "person", w, h, FPS, SECONDS)
        walker.ph = case.height * h
        walker.pw = walker.ph * 0.27
        walker.v = case.speed * walker.ph / 1.75 / FPS
        walker.t0 = 0
        walker.dir = 1
        walker.y = float(rng.uniform(0.45, 0.95) * h - walker.ph)
        walker.y = max(2.0, walker.y)
        # in the middle of the frame at mid-clip (a big fast person crosses in a few seconds)
        walker.x = w / 2 - walker.pw / 2 - walker.v * FPS * SECONDS / 2
        y0, y1 = int(walker.y), int(walker.y + walker.ph)
        local = float(np.median(grey[y0:y1]))
        if case.light == "day":
            walker.grey = float(np.clip(local + rng.choice([-1, 1]) * rng.uniform(50, 80), 15, 240))
        elif case.light == "night":
            walker.grey = float(rng.uniform(110, 200))
        else:
            walker.grey = float(max(5.0, local - 12))
        walker.tex = rng.uniform(0.85, 1.15, (8, 4))
    moths = [_Moth(rng, w, h, FPS, SECONDS, False) for _ in range(12)] if case.distractor == "insects" else []
    light = _light_change(np.random.default_rng([case.seed, 3]), case.distractor, w, h)
    snow = Snow(rng, h, w, spec) if case.weather == "snow" else None
    angle = math.pi / 2 + rng.normal(0, 0.3)
    drop = float(rng.uniform(120, 255))
    lit = (0.25 + 0.75 * lamp) if night else 1.0
    gop = round(GOP * FPS)
    last: list[np.ndarray] = []

    def draw(i: int, t: float, width: int, height: int) -> np.ndarray:
        for m in moths:
            m.step(i)
        if last and i % gop > 7:  # no request decodes this frame
            if snow is not None:  # the flakes fly on (Snow.step without drawing)
                snow.x = (snow.x + snow.vx + 0.6 * np.sin(snow.phase + 0.5 * i) * snow.scale) % snow.w
                snow.y = (snow.y + snow.vy) % snow.h
            return last[0]
        a = snow.step(i) if snow is not None else None
        img = grey.copy() if dis is None else dis.apply(np.repeat(grey, 3, axis=2), i).mean(axis=2, keepdims=True)
        if walker is not None:
            walker.draw(img, i, xx, yy)
        for m in moths:
            m.draw(img, i, xx, yy)
        if light is not None:
            img = img * light(i / FPS)[..., None]
        if case.weather == "rain":
            a = rain_alpha(rng, h, w, spec, angle)
        if a is not None:
            a = np.clip(a * lit, 0, 0.95)[..., None]
            img = img * (1 - a) + drop * a
        img = (img + rng.normal(0, noise, (h, w, 1)).astype(np.float32)) * gains[i % len(gains)]
        out = np.repeat(np.clip(img, 0, 255).astype(np.uint8), 3, axis=2)
        last[:] = [out]
        return out

    return draw


def _light_change(rng: np.random.Generator, kind: str, w: int, h: int):  # noqa: ANN202 - t -> gain map
    """``shadow``: a cloud's soft shadow (25-45 % darker, its edge blurred over a fifth of the picture) crossing at
    3-8 % of the width per second; ``dusk``: the light falling by 20-35 % over the clip, the sky (top) twice as
    fast as the ground; ``headlights``: a soft pool of light (1.5-3 times as bright at its middle) sweeping across
    the picture in 2-4 s; ``lamp``: such a pool that appears, where a lamp comes on. None for other kinds."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "shadow":
        depth, soft = rng.uniform(0.25, 0.45), rng.uniform(0.15, 0.25) * w
        speed, angle = rng.uniform(0.03, 0.08) * w, rng.uniform(-0.5, 0.5)
        along = xx * math.cos(angle) + yy * math.sin(angle)
        start = float(rng.uniform(-0.3, 0.3) * w)
        return lambda t: 1 - depth / (1 + np.exp(-(along - start - speed * t) / (soft / 4)))
    if kind == "dusk":
        fall = rng.uniform(0.2, 0.35)
        sky = 1 + (yy < rng.uniform(0.2, 0.5) * h)
        return lambda t: 1 - fall * sky / 2 * t / SECONDS
    if kind in ("headlights", "lamp"):
        # a pool of light on the ground and walls, 1.5-3 times as bright at its middle, soft-edged
        boost, rx, ry = rng.uniform(0.5, 2.0), rng.uniform(0.15, 0.3) * w, rng.uniform(0.15, 0.3) * h
        cy, start = rng.uniform(0.4, 0.8) * h, rng.uniform(2, SECONDS - 6)

        def pool(cx: float) -> np.ndarray:
            return 1 + boost * np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))

        if kind == "headlights":  # a car turning in the street: the pool sweeps across the picture in 2-4 s
            sweep = rng.uniform(2, 4)
            direction = rng.choice([-1, 1])
            return lambda t: pool(w / 2 + direction * (w / 2 + rx) * np.clip(2 * (t - start) / sweep - 1, -1, 1))
        lit = pool(rng.uniform(0.2, 0.8) * w)  # a lamp by the door that comes on and stays on
        return lambda t: lit if t >= start else np.ones_like(lit)
    return None


def _key(case: Case) -> str:
    return f"{case.seed:04d}"


def render_one(case: Case) -> str:
    path = CACHE / f"{_key(case)}.npz"
    if path.exists():
        return path.name
    w, h = SIZES[case.size]
    with tempfile.TemporaryDirectory(prefix="motion-bench-") as tmp:
        clip = make_clip(Path(tmp) / "c.mp4", seconds=SECONDS, width=w, height=h, fps=FPS, gop_seconds=GOP,
                         scene=_scene(case))
        pr = probe(clip)
        reqs = [replace(motion.REQUEST, width=wd) for wd in WIDTHS]
        frames = decode(clip, reqs, pr)
    arrays: dict[str, np.ndarray] = {}
    for wd, cf in zip(WIDTHS, frames, strict=True):
        arrays[f"k{wd}"] = np.stack([f.image for f in cf.keyframes])
        arrays[f"kt{wd}"] = np.array([f.time for f in cf.keyframes])
        for j, win in enumerate(cf.windows):
            arrays[f"w{wd}_{j}"] = np.stack([f.image for f in win])
            arrays[f"wt{wd}_{j}"] = np.array([f.time for f in win])
    arrays["probe"] = np.frombuffer(json.dumps(asdict(pr)).encode(), np.uint8)
    part = path.with_suffix(".part.npz")
    np.savez_compressed(part, **arrays)
    part.rename(path)
    return path.name


def load(case: Case, width: int) -> ClipFrames:
    z = np.load(CACHE / f"{_key(case)}.npz")
    pr = ClipProbe(**json.loads(bytes(z["probe"]).decode()))
    keys = [Frame(float(t), im, keyframe=True) for t, im in zip(z[f"kt{width}"], z[f"k{width}"], strict=True)]
    wins = []
    j = 0
    while f"w{width}_{j}" in z:
        wins.append([Frame(float(t), im) for t, im in zip(z[f"wt{width}_{j}"], z[f"w{width}_{j}"], strict=True)])
        j += 1
    return ClipFrames(probe=pr, keyframes=keys, windows=wins)


def motion_at(rev: str | None):  # noqa: ANN201 - a module
    """``alarmcloud.motion`` as it is, or as it was at git revision ``rev`` (to compare with an earlier version)."""
    if not rev:
        return motion
    import subprocess
    import types

    src = subprocess.run(["git", "show", f"{rev}:core/src/alarmcloud/motion.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType(f"motion_{rev}")
    exec(compile(src, f"motion@{rev}", "exec"), mod.__dict__)  # noqa: S102 - our own file from git
    return mod


def score_all(all_cases: list[Case], mod=motion) -> dict[Case, float]:  # noqa: ANN001
    width = mod.REQUEST.width or 160
    if width not in WIDTHS:
        raise SystemExit(f"frames at {width} px are not cached: add the width to WIDTHS and render again")
    return {c: float(mod.mover_score(load(c, width))) for c in all_cases if (CACHE / f"{_key(c)}.npz").exists()}


def table(scores: dict[Case, float], width: int | None) -> str:
    lines = [f"mover_score >= {MOVER_THRESHOLD} (REQUEST width {width} px)", ""]
    lines += ["**Movers: detected / clips (scores)**", ""]
    heights = (0.04, 0.06, 0.08, 0.12, 0.20, 0.30)
    lines.append("| light | size | speed | " + " | ".join(f"{h:.0%}" for h in heights) + " |")
    lines.append("|---|---|---|" + "---|" * len(heights))
    rows: dict[tuple[str, str, float], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for c, s in scores.items():
        if c.mover:
            light = f"{c.light}, {c.intensity} rain" if c.weather else c.light
            rows[(light, c.size, c.speed)][c.height].append(s)
    for (light, size, speed), by_h in sorted(rows.items(), key=lambda kv: (kv[0][1] != "720p", "rain" in kv[0][0],
                                                                            kv[0])):
        cells = []
        for h in heights:
            v = by_h.get(h)
            if not v:
                cells.append("")
                continue
            hit = sum(s >= MOVER_THRESHOLD for s in v)
            cells.append(f"{hit}/{len(v)} ({', '.join(f'{s:.2f}' for s in v)})")
        lines.append(f"| {light} | {size} | {speed} m/s | " + " | ".join(cells) + " |")
    lines += ["", "**Without a mover: false movers / clips (scores)**", "", "| clips | false movers | scores |",
              "|---|---|---|"]
    groups: dict[str, list[float]] = defaultdict(list)
    for c, s in scores.items():
        if not c.mover:
            groups[c.name].append(s)
    for name, v in groups.items():
        hit = sum(s >= MOVER_THRESHOLD for s in v)
        lines.append(f"| {name} | {hit}/{len(v)} | {', '.join(f'{s:.2f}' for s in v)} |")
    movers = [s for c, s in scores.items() if c.mover]
    rest = [s for c, s in scores.items() if not c.mover]
    lines += ["", f"movers found: {sum(s >= MOVER_THRESHOLD for s in movers)}/{len(movers)}; "
              f"false movers: {sum(s >= MOVER_THRESHOLD for s in rest)}/{len(rest)}"]
    return "\n".join(lines)


def cost(repeat: int, mods: list) -> str:  # noqa: ANN001
    """CPU-s of the decode (motion request alone) and of ``mover_score`` for an 18 s 1080p night clip; the versions
    given take turns, so a busy machine slows them alike."""
    case = Case("person night", 9001, "1080p", "night", 0.08)
    times: dict[int, tuple[list[float], list[float]]] = {i: ([], []) for i in range(len(mods))}
    with tempfile.TemporaryDirectory(prefix="motion-cost-") as tmp:
        w, h = SIZES[case.size]
        clip = make_clip(Path(tmp) / "c.mp4", seconds=SECONDS, width=w, height=h, fps=FPS, gop_seconds=GOP,
                         scene=_scene(case))
        pr = probe(clip)
        for _ in range(repeat):
            for i, mod in enumerate(mods):
                t = time.process_time()
                (cf,) = decode(clip, [mod.REQUEST], pr)
                times[i][0].append(time.process_time() - t)
                t = time.process_time()
                mod.mover_score(cf)
                times[i][1].append(time.process_time() - t)
    lines = []
    for i, mod in enumerate(mods):
        dec, ana = times[i]
        lines.append(f"{mod.__name__} (REQUEST width {mod.REQUEST.width}): decode {min(dec):.3f} CPU-s (median "
                     f"{np.median(dec):.3f}), mover_score {min(ana):.4f} CPU-s, total {min(dec) + min(ana):.3f} "
                     f"(best of {repeat}, 1080p 18 s night clip)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["render", "score", "cost"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rev", help="score alarmcloud/motion.py as of this git revision instead of as it is (cost: "
                    "time both)")
    ap.add_argument("--match", default="", help="only the cases whose name holds this text (e.g. 'in rain')")
    ap.add_argument("--no-movers", action="store_true", help="only the cases without a mover")
    args = ap.parse_args()
    all_cases = [c for c in cases() if args.match in c.name and not (args.no_movers and c.mover)]
    if args.what == "render":
        CACHE.mkdir(parents=True, exist_ok=True)
        todo = [c for c in all_cases if not (CACHE / f"{_key(c)}.npz").exists()]
        todo.sort(key=lambda c: c.mover)  # the clips without a mover first: they are fewer
        with ProcessPoolExecutor(args.workers) as pool:
            for i, name in enumerate(pool.map(render_one, todo)):
                print(f"{i + 1}/{len(todo)} {name}", flush=True)
    elif args.what == "score":
        mod = motion_at(args.rev)
        print(table(score_all(all_cases, mod), mod.REQUEST.width))
    else:
        print(cost(args.repeat, [motion_at(args.rev)] if not args.rev else [motion_at(args.rev), motion]))


if __name__ == "__main__":
    main()
