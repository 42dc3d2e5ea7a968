"""Does the shipped detector depend on how the renderer draws the amount of rain? Render a set's rain clips twice
and score both with the shipped detector, clip against clip.

The renderer draws each picture's number of streaks anew from the whole band of its intensity (heavy: 600-2,500 per
640 x 360), so consecutive pictures of one clip differ by up to four times; a real shower keeps its rate for
seconds, each picture's count a Poisson draw of it. ``steady`` (``ClipSpec.extra``) renders the same clips so: one
rate per clip from the same band, every other draw of every clip as it was. A detector that had learnt the jumps
would lose steady rain.

Usage (from the repository root; the 137 rain clips of the held-out set twice take about 8 minutes on 2 cores):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src .venv/bin/python plugins/detect_rain/train/steady_eval.py \
        --clips 400 --seed 2 --frames /tmp/rain-frames-steady
    # the stress set: --clips 200 --seed 3 --domain stress --frames /tmp/rain-frames-steady-stress
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain.detector import RainDetector  # noqa: E402
from dataset import cache, specs_for  # noqa: E402
from evaluate import _open, _scored, _worker  # noqa: E402
from synth import DOMAINS, ClipSpec, photo_list  # noqa: E402


def steady(spec: ClipSpec) -> ClipSpec:
    """``spec`` as a steady shower (see the module's text)."""
    return replace(spec, extra={**spec.extra, "steady": 1.0})


def scores(specs: list[ClipSpec], frames: Path, workers: int) -> list[float]:
    """Each clip's weather score by the shipped detector (its codec's shift applied), the windows cached in
    ``frames``."""
    cache(specs, frames, workers)
    _open((None, None, None), frames)
    det = _worker["det"]
    assert isinstance(det, RainDetector)
    return [float(det.calibrated(_scored(i)[1], s.codec, det.score_shift)) for i, s in enumerate(specs)]


def main() -> None:
    """Print a markdown table: recall per intensity, day and night, as drawn and as a steady shower."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=400, help="the set's size (its rain clips are rendered)")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--domain", choices=DOMAINS, default="train")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=Path, required=True, help="cache folder (two subfolders, resumable)")
    args = ap.parse_args()
    drawn = [s for s in specs_for(args.seed, args.clips, photo_list("eval"), 3, args.domain) if s.kind == "rain"]
    a = np.array(scores(drawn, args.frames / "drawn", args.workers))
    b = np.array(scores([steady(s) for s in drawn], args.frames / "steady", args.workers))
    det = _worker["det"]
    assert isinstance(det, RainDetector)
    thr = det.threshold
    print(f"{len(drawn)} rain clips of seed {args.seed} ({args.domain}), threshold {thr}\n")
    print("| intensity | light | clips | recall, as drawn | recall, steady | median score, as drawn / steady |")
    print("|---|---|---|---|---|---|")
    for intensity in ("light", "medium", "heavy"):
        for night in (False, True):
            idx = [i for i, s in enumerate(drawn) if s.intensity == intensity and s.night == night]
            print(f"| {intensity} | {'night' if night else 'day'} | {len(idx)} | {np.mean(a[idx] >= thr):.1%} | "
                  f"{np.mean(b[idx] >= thr):.1%} | {np.median(a[idx]):.3f} / {np.median(b[idx]):.3f} |")
    lost, gained = int(np.sum((a >= thr) & (b < thr))), int(np.sum((a < thr) & (b >= thr)))
    print(f"| all | | {len(drawn)} | {np.mean(a >= thr):.1%} | {np.mean(b >= thr):.1%} | {lost} lost, {gained} "
          "gained |")


if __name__ == "__main__":
    main()
