"""View-check benchmark: what the per-clip view measures add to a clip's analysis (CPU-seconds).

For each resolution, a camera-like clip (18 s, 15 fps, GOP 2 s, H.264) is decoded the way the pipeline does:
``decode`` with the motion analysis' frame request alone (before the view check) and with the view check's request
added, then ``viewcheck.measure`` on its frames. Process CPU time, best of ``--repeat`` runs.

    nice .venv/bin/python bench/viewcheck/run.py                 # 1080p and 720p, 5 repeats
    nice .venv/bin/python bench/viewcheck/run.py --resolutions 720p --repeat 3
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from alarmcloud import motion, viewcheck
from alarmcloud.testing import make_clip, moving_box_scene
from alarmcloud.video import decode, probe

SIZES = {"1080p": (1920, 1080), "720p": (1280, 720), "360p": (640, 352)}


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.process_time()
        out = fn()
        times.append(time.process_time() - t)
    return min(times), out


def noisy(i: int, t: float, w: int, h: int) -> np.ndarray:
    img = moving_box_scene(i, t, w, h).astype(np.int16)
    return np.clip(img + np.random.default_rng(i).integers(-6, 7, img.shape), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolutions", default="1080p,720p")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--clip-dir", type=Path, default=Path(tempfile.gettempdir()) / "alarmcloud-bench-viewcheck")
    args = ap.parse_args()
    args.clip_dir.mkdir(parents=True, exist_ok=True)
    print(f"python {platform.python_version()}, PyAV {av.__version__}, numpy {np.__version__}, "
          f"repeat {args.repeat} (best)")
    print("| clip | decode, motion only | decode, motion + view | 3 keyframes to 320 px RGB | view measures | "
          "view total | share of decode |")
    print("|---|---|---|---|---|---|---|")
    for name in args.resolutions.split(","):
        w, h = SIZES[name]
        path = args.clip_dir / f"{name}.mp4"
        if not path.exists():
            make_clip(path, seconds=18, width=w, height=h, fps=15, scene=noisy)
        clip = probe(path)
        base, _ = best(lambda: decode(path, [motion.REQUEST], clip), args.repeat)  # noqa: B023
        both, frames = best(lambda: decode(path, [motion.REQUEST, viewcheck.REQUEST], clip), args.repeat)  # noqa: B023
        # the added work on its own (the difference of two decodes drowns in the noise of a shared machine):
        # scaling three keyframes to 320 px RGB, as ``decode`` does for the view request, then the measures
        keys = _keyframes(path)
        conv, _ = best(lambda: [f.reformat(width=320, height=round(h * 320 / w / 2) * 2, format="rgb24",  # noqa: B023
                                           interpolation="FAST_BILINEAR").to_ndarray() for f in keys],  # noqa: B023
                       args.repeat * 4)
        meas, _ = best(lambda: viewcheck.measure(frames[1]), args.repeat * 4)  # noqa: B023
        added = conv + meas
        print(f"| {name} ({w}x{h}) | {base * 1000:.0f} ms | {both * 1000:.0f} ms | {conv * 1000:.1f} ms | "
              f"{meas * 1000:.1f} ms | {added * 1000:.1f} ms | {added / base:.1%} |")


def _keyframes(path: Path) -> list[av.VideoFrame]:
    """Three keyframes spread over the clip (what the view request gets)."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        vs.codec_context.skip_frame = "NONKEY"
        frames = list(container.decode(vs))
    return [frames[i] for i in sorted({0, len(frames) // 2, len(frames) - 1})]


if __name__ == "__main__":
    main()
