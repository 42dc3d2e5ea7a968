"""Train the rain/snow MLP on synthetic clips and export the shipped ONNX model (seeded, reproducible).

Usage (from the repository root):
    .venv/bin/python plugins/detect_rain/train/train.py --clips 1200 --seed 1
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain.detector import default_model_path  # noqa: E402
from alarmcloud_detect_rain.features import FEATURE_VERSION  # noqa: E402
from alarmcloud_detect_rain.mlp import fit_mlp  # noqa: E402
from alarmcloud_detect_rain.onnx_io import write_mlp  # noqa: E402
from dataset import CLASSES, build  # noqa: E402
from synth import photo_list  # noqa: E402

log = logging.getLogger("train")


def main() -> None:
    """Render the training set, fit, report training accuracy and write the ONNX model."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=default_model_path())
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--cache", type=Path, default=None, help="save/load the rendered feature set (.npz)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.time()
    if args.cache and args.cache.exists():
        data = np.load(args.cache)
        x, y = data["x"], data["y"]
    else:
        items = build(args.seed, args.clips, photo_list("train"), windows=2, workers=args.workers)
        x = np.concatenate([f for f, _ in items])
        y = np.concatenate([np.full(len(f), CLASSES.index(s.kind)) for f, s in items])
        if args.cache:
            np.savez(args.cache, x=x, y=y)
    log.info("%d windows rendered in %.0f s (classes %s)", len(x), time.time() - t0, np.bincount(y).tolist())
    # balance classes so the clear/distractor population is not drowned by weather samples
    counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
    sw = (1.0 / counts)[y]
    t1 = time.time()
    w = fit_mlp(
        x, y, len(CLASSES), hidden=args.hidden, epochs=1500, lr=0.01, l2=args.l2, seed=args.seed, sample_weight=sw
    )
    pred = w.predict(x)
    weather = 1 - pred[:, 0]
    log.info(
        "fit in %.1f s; train recall %.3f, train FPR %.3f",
        time.time() - t1,
        float((weather[y > 0] >= 0.5).mean()),
        float((weather[y == 0] >= 0.5).mean()),
    )
    w.metadata = {
        "feature_version": FEATURE_VERSION,
        "classes": ",".join(CLASSES),
        "trained_on": f"synthetic clips={args.clips} seed={args.seed}",
    }
    write_mlp(args.out, w)
    log.info("wrote %s (%d bytes) in %.0f s total", args.out, args.out.stat().st_size, time.time() - t0)


if __name__ == "__main__":
    main()
