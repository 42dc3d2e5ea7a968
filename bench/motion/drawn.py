"""Motion analysis on drawn day views: rain alone, and a dark-coated person walking through the rain.

``run.py`` draws its scenes procedurally; these clips use the rain plugin's drawn views (``scenes.drawn_background``:
a garden, the drive with its fence and cars, a street) with the person of the docs' demo clips
(``tests/e2e/demo_scenes._Person``: a coat, legs that swing) and the rain plugin's streaks (``synth.rain_alpha``), at
640 x 360 and 1280 x 720, 18 s, 15 fps. A check on views none of the motion analysis's thresholds were chosen on:
its rain-alone clips are where a lower threshold shows its false movers.

    nice .venv/bin/python bench/motion/drawn.py render --workers 2      # 48 clips into /tmp/motion-drawn, ~8 min
    nice .venv/bin/python bench/motion/drawn.py score --rev 0aa9b32     # mover decisions then and now, clip by clip
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for folder in (HERE, ROOT / "tests" / "e2e", ROOT / "plugins" / "detect_rain" / "train"):
    sys.path.insert(0, str(folder))

from alarmcloud import motion  # noqa: E402
from alarmcloud.pipeline import MOVER_THRESHOLD  # noqa: E402
from alarmcloud.testing import make_clip  # noqa: E402
from alarmcloud.video import decode  # noqa: E402
from run import motion_at  # noqa: E402

CACHE = Path("/tmp/motion-drawn")
FPS, SECONDS = 15, 18.0
#: (width, rain intensity or "", the person's height as a share of the picture's or 0, seed): rain alone at every
#: intensity over six seeds, a person of 15 % in medium and heavy rain over three
JOBS = ([(w, i, 0.0, s) for s in (3, 4, 5, 6, 7, 8) for w in (640, 1280) for i in ("light", "medium", "heavy")]
        + [(w, i, 0.15, s) for s in (3, 4, 5) for w in (640, 1280) for i in ("medium", "heavy")])


def _name(job: tuple[int, str, float, int]) -> str:
    w, intensity, height, seed = job
    return f"{w}-{intensity or 'none'}-{height}-{seed}"


def _scene(w: int, h: int, intensity: str, height: float, seed: int):  # noqa: ANN202 - a make_clip scene
    from demo_scenes import _Person
    from scenes import drawn_background
    from synth import ClipSpec, rain_alpha

    bg = drawn_background(np.random.default_rng((2, 5, 7)[seed % 3]), w, h)
    rng = np.random.default_rng(seed)
    person = None
    if height:
        person = _Person(rng, w, h)
        person.height = height * h
    spec = ClipSpec(seed=seed, kind="rain", intensity=intensity, fps=FPS, size=(w, h)) if intensity else None
    angle = math.pi / 2 + rng.normal(0, 0.15)
    light = float(rng.uniform(150, 230))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def draw(i: int, t: float, width: int, height_: int) -> np.ndarray:
        img = bg.copy()
        if person is not None:
            person.draw(img, i, xx, yy)
        if spec is not None:
            a = rain_alpha(rng, h, w, spec, angle)
            img = img * (1 - a[..., None]) + light * a[..., None]
        img += rng.normal(0, 2.5, (h, w, 1)).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.uint8)

    return draw


def render_one(job: tuple[int, str, float, int]) -> str:
    w, intensity, height, seed = job
    path = CACHE / f"{_name(job)}.mp4"
    if not path.exists():
        part = path.with_suffix(".part.mp4")
        make_clip(part, seconds=SECONDS, width=w, height=w * 9 // 16, fps=FPS,
                  scene=_scene(w, w * 9 // 16, intensity, height, seed))
        part.rename(path)
    return path.name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["render", "score"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rev", help="also score alarmcloud/motion.py as of this git revision, clip by clip")
    args = ap.parse_args()
    if args.what == "render":
        CACHE.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(args.workers) as pool:
            for i, name in enumerate(pool.map(render_one, JOBS)):
                print(f"{i + 1}/{len(JOBS)} {name}", flush=True)
        return
    versions = {"now": motion} | ({args.rev: motion_at(args.rev)} if args.rev else {})
    found: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    print("| clip | " + " | ".join(versions) + " |")
    print("|---|" + "---|" * len(versions))
    for job in JOBS:
        path = CACHE / f"{_name(job)}.mp4"
        if not path.exists():
            continue
        (frames,) = decode(path, [motion.REQUEST])
        scores = {v: float(mod.mover_score(frames)) for v, mod in versions.items()}
        group = "person in the rain" if job[2] else "rain alone"
        for v, s in scores.items():
            found[(group, v)][0] += s >= MOVER_THRESHOLD
            found[(group, v)][1] += 1
        print(f"| {_name(job)} | " + " | ".join(f"{s:.2f}" for s in scores.values()) + " |")
    print()
    for (group, v), (hit, n) in sorted(found.items()):
        print(f"{group}, {v}: {hit}/{n} movers")


if __name__ == "__main__":
    main()
