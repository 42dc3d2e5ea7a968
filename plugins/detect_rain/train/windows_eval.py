"""Would more frame windows help small pictures? Render a held-out set with 6 windows per clip and score each clip
from three of them (two different choices) and from all six, with the shipped detector.

A 640 x 360 clip costs about a ninth of a 1080p clip to decode, so its analysis could afford twice the windows
within the CPU budget; this measures what the extra windows would buy before the core is asked to decode them.

Usage (from the repository root; rendering 400 clips with 6 windows takes about 8 minutes on 2 cores):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src .venv/bin/python plugins/detect_rain/train/windows_eval.py \
        --clips 400 --seed 2 --frames /tmp/rain-frames-eval-6w
    # the stress set: --clips 200 --seed 3 --domain stress --frames /tmp/rain-frames-stress-6w
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain.detector import RainConfig, RainDetector  # noqa: E402
from alarmcloud_detect_rain.features import window_analysis  # noqa: E402
from dataset import cache, specs_for  # noqa: E402
from evaluate import _auc, _open, _worker  # noqa: E402
from synth import DOMAINS, photo_list  # noqa: E402

#: the windows each clip score is made of (the six are 6-frame blocks back to back, each starting at a keyframe)
CHOICES = {"3 windows (1st, 3rd, 5th)": (0, 2, 4), "3 windows (2nd, 4th, 6th)": (1, 3, 5),
           "6 windows": (0, 1, 2, 3, 4, 5)}
#: pictures narrower than this are "small" (the sets' 640 x 360 clips)
SMALL = 960


def _scores(i: int) -> dict[str, float]:
    """Clip ``i``'s weather score (before the codec's shift) from each choice of windows."""
    det, windows = _worker["det"], _worker["windows"]
    assert isinstance(det, RainDetector) and isinstance(windows, np.ndarray)
    analysed = [window_analysis(list(w), maps=True) for w in windows[i]]
    out = {}
    for name, picked in CHOICES.items():
        feats = np.stack([analysed[j][0] for j in picked])
        maps = [m for j in picked if (m := analysed[j][1]) is not None]
        out[name] = float(det.combine(feats, maps)[0])
    return out


def _line(name: str, rows: list[tuple[bool, float]], thr: float) -> str:
    pos = np.array([p for weather, p in rows if weather])
    neg = np.array([p for weather, p in rows if not weather])
    return (f"| {name} | {_auc(pos, neg):.4f} | {100 * np.mean(pos >= thr):.1f} % | "
            f"{100 * np.mean(neg >= thr):.1f} % |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--domain", choices=DOMAINS, default="train")
    ap.add_argument("--frames", type=Path, required=True, help="cache folder for the decoded windows (resumable)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    specs = cache(specs_for(args.seed, args.clips, photo_list("eval"), 6, args.domain), args.frames, args.workers)
    shipped = (None, None, None)  # evaluate.py's worker set-up with the shipped models
    with ProcessPoolExecutor(max(1, args.workers), initializer=_open, initargs=(shipped, args.frames)) as pool:
        scored = list(pool.map(_scores, range(len(specs)), chunksize=8))
    det = RainDetector(RainConfig())
    thr = det.threshold
    rows = [(s, {k: det.calibrated(v, s.codec, det.score_shift) for k, v in sc.items()})
            for s, sc in zip(specs, scored, strict=True)]
    print(f"{len(rows)} clips, seed {args.seed}, domain {args.domain}, threshold {thr}\n")
    print("| clips scored from | AUC | weather recall | clear FPR |\n|---|---|---|---|")
    for name in CHOICES:
        print(_line(f"{name}, every clip", [(s.kind != "clear", sc[name]) for s, sc in rows], thr))
    for name in list(CHOICES)[:2]:
        mixed = [(s.kind != "clear", sc["6 windows"] if s.size[0] < SMALL else sc[name]) for s, sc in rows]
        print(_line(f"6 windows if < {SMALL} px wide, else {name}", mixed, thr))
    for name in CHOICES:
        print(_line(f"{name}, clips < {SMALL} px wide only",
                    [(s.kind != "clear", sc[name]) for s, sc in rows if s.size[0] < SMALL], thr))


if __name__ == "__main__":
    main()
