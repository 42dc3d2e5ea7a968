"""CPU cost of the rain detector per clip: decode of its frame windows and the analysis (process time, best of N).

Usage (from the repository root; nice on a shared machine):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src nice .venv/bin/python plugins/detect_rain/train/cost.py \\
        --frames /tmp/rain3-frames-eval --clips /tmp/acb/1080p_*.mp4

It prints
- the 18 s 1080p 15 fps test clip of ``alarmcloud.testing.make_clip`` (what ``evaluate.py`` times): decode of the
  3 windows and analysis;
- with ``--frames`` (an ``evaluate.py`` frame cache): the features of the heaviest-rain and noisiest-night clips
  (heavy rain, or night with sensor noise sigma > 10), the clips that cost most;
- with ``--clips``: decode and analysis of any clips, e.g. the camera-like 1080p clips of ``bench/pipeline``
  (a photo scene with sensor noise at 2-4 Mbit/s, which decode far slower than the flat test clip). "decode alone"
  is the detector's windows decoded by themselves; "in the pipeline" is what they add to the core's own single
  decode of the clip (motion and view-check requests), which is how the pipeline runs the detector.

``--features FILE`` times another version of ``features.py`` instead of the package's (e.g. one taken with
``git show REV:plugins/detect_rain/src/alarmcloud_detect_rain/features.py``) and ``--window-at`` other window
positions, for before/after comparisons.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain import detector as rain_detector  # noqa: E402
from alarmcloud_detect_rain.detector import RainConfig, RainDetector  # noqa: E402
from dataset import load_frames  # noqa: E402
from evaluate import time_1080p  # noqa: E402


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """The least process time of ``repeat`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def heavy_clips(folder: Path, analyse: Callable[[list[np.ndarray]], object], repeat: int) -> list[float]:
    """Analysis CPU-s (all windows of a clip) of the heavy-rain and noisiest-night clips of a frame cache."""
    mm, specs = load_frames(folder)
    out = []
    for i, s in enumerate(specs):
        if (s.kind == "rain" and s.intensity == "heavy") or (s.night and s.noise > 10):
            windows = [np.array(w) for w in mm[i]]
            out.append(best_of(lambda ws=windows: analyse(ws), repeat))
    return out


def main() -> None:
    """Print the measured CPU seconds."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=Path, default=None, help="an evaluate.py frame cache (held-out clips)")
    ap.add_argument("--clips", type=Path, nargs="*", default=[], help="video files to decode and analyse")
    ap.add_argument("--features", type=Path, default=None, help="another features.py to time instead")
    ap.add_argument("--window-at", type=float, nargs="+", default=None, help="other window positions (fractions)")
    ap.add_argument("--cnn-weight", type=float, default=None, help="0: time the MLP alone (default: as shipped)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the least time is kept")
    args = ap.parse_args()
    if args.features:
        spec = importlib.util.spec_from_file_location("rain_features_alt", args.features)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        # the detector computes features through window_analysis; the other features.py gives no CNN maps
        rain_detector.window_analysis = lambda frames, maps=False: (mod.window_features(frames), None)
    det = RainDetector(RainConfig(**({"window_at": tuple(args.window_at)} if args.window_at else {}),
                                  cnn_weight=args.cnn_weight))

    def analyse(windows: list[np.ndarray]) -> object:
        """What ``analyze`` computes for these windows: features (and maps), the MLP and the CNN if fused (with
        ``--features`` the other features.py gives no maps, so the MLP alone)."""
        out = [rain_detector.window_analysis(list(w), maps=det.cnn is not None) for w in windows]
        return det.combine(np.stack([f for f, _ in out]), [m for _, m in out if m is not None])

    dec, an = time_1080p(det)
    print(f"18 s 1080p 15 fps test clip: decode of the 3 windows {dec:.3f} CPU-s, analysis {an:.3f} CPU-s, "
          f"total {dec + an:.3f}")
    if args.frames:
        t = heavy_clips(args.frames, analyse, args.repeat)
        print(f"heavy-rain / noisiest-night clips of {args.frames}: n={len(t)}, analysis CPU-s median "
              f"{np.median(t):.3f}, 90th percentile {np.percentile(t, 90):.3f}, max {max(t):.3f}")
    if args.clips:
        from alarmcloud import motion, viewcheck
        from alarmcloud.video import decode, probe

        core = [motion.REQUEST, viewcheck.REQUEST]
        req = det.frame_request()
        for path in args.clips:
            clip = probe(path)
            frames = decode(path, [req], clip)[0]
            alone = best_of(lambda p=path, c=clip: decode(p, [req], c), args.repeat)
            base = best_of(lambda p=path, c=clip: decode(p, core, c), args.repeat)
            both = best_of(lambda p=path, c=clip: decode(p, [*core, req], c), args.repeat)
            a = best_of(lambda f=frames: det.analyze(f), args.repeat)
            rate = f"{clip.bit_rate / 1e6:.1f} Mbit/s" if clip.bit_rate else "?"
            print(f"{path.name} ({clip.width}x{clip.height}, {clip.fps:g} fps, {clip.duration:g} s, {rate}): "
                  f"analysis {a:.3f} CPU-s; decode alone {alone:.3f} (total {alone + a:.3f}); decode in the pipeline "
                  f"+{both - base:.3f} (core {base:.3f}, with rain {both:.3f}; total {both - base + a:.3f})")


if __name__ == "__main__":
    main()
