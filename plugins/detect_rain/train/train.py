"""Train the rain/snow MLP on synthetic clips and export the shipped ONNX model (seeded, reproducible).

Usage (from the repository root):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src .venv/bin/python plugins/detect_rain/train/train.py \\
        --clips 1000 --seed 1 --members 4 --target-fpr 0.04 --frames /tmp/rain3-frames-train

Several training sets (other seeds, the same renderer and training photos) are joined by giving one value per set:
``--seed 1 4 --clips 1000 1000 --frames /tmp/rain3-frames-train /tmp/rain-frames-train-seed4``. With one set
the command writes the same file as before this option existed.

The training clips are decoded as sent (``dataset.build(as_sent=True)``): the renderer never sends a picture twice,
so the core's check for repeated pictures could only take frames away from them.

The threshold shipped as the detector default is chosen on clips no fit has seen: by default on out-of-fold
scores of the training set (``--folds`` clip-grouped folds, each scored by a fit without it), or with
``--calib-clips N`` on a separate calibration set rendered like production (3 windows per clip, training photos,
seed + 100). The held-out sets of ``evaluate.py`` are never used for a decision.
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
from alarmcloud_detect_rain.mlp import fit_mlp, merge_ensemble  # noqa: E402
from alarmcloud_detect_rain.onnx_io import MLPWeights, write_mlp  # noqa: E402
from dataset import CLASSES, EVAL_SEEDS, EVAL_SEEDS_ERROR, add_share_options, build, shares, shares_note  # noqa: E402
from synth import photo_list  # noqa: E402

log = logging.getLogger("train")


def fit(feats: np.ndarray, kinds: np.ndarray, hidden: int, l2: float, seed: int, epochs: int,
        members: int = 1) -> MLPWeights:
    """Class-balanced fit on clips (clips x windows x F); ``members`` > 1: a bagged ensemble merged into one MLP."""
    n, k, f = feats.shape
    rng = np.random.default_rng(seed)
    nets = []
    for i in range(members):
        pick = np.arange(n) if members == 1 else rng.integers(0, n, n)  # bootstrap resample of whole clips
        x, y = feats[pick].reshape(-1, f), np.repeat(kinds[pick], k)
        counts = np.bincount(y, minlength=len(CLASSES)).astype(float)
        nets.append(fit_mlp(x, y, len(CLASSES), hidden=hidden, epochs=epochs, lr=0.01, l2=l2, seed=seed + i,
                            sample_weight=(1.0 / np.maximum(counts, 1))[y]))
    return nets[0] if members == 1 else merge_ensemble(nets)


def clip_scores(w: MLPWeights, feats: np.ndarray) -> np.ndarray:
    """Clip weather score as in the detector: mean over windows of 1 - p(clear); feats is clips x windows x F."""
    n, k, f = feats.shape
    return 1.0 - w.predict(feats.reshape(n * k, f))[:, 0].reshape(n, k).mean(axis=1)


def threshold_for(scores: np.ndarray, is_weather: np.ndarray, fpr: float) -> float:
    """The lowest threshold (0.05 steps, 0.5..0.95) whose false-positive rate on clear clips is at most ``fpr``."""
    neg = scores[~is_weather]
    for t in np.arange(0.5, 0.951, 0.05):
        if (neg >= t).mean() <= fpr:
            return round(float(t), 2)
    return 0.95


def main() -> None:
    """Render the training set, validate, fit on everything, write the ONNX model."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, nargs="+", default=[1000], help="clips per training set")
    ap.add_argument("--seed", type=int, nargs="+", default=[1], help="one seed per training set (never 2, 3, 5)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=default_model_path())
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=1500)
    ap.add_argument("--members", type=int, default=1, help="bagged ensemble size (merged into one MLP)")
    ap.add_argument("--target-fpr", type=float, default=0.03, help="validation FPR the threshold is chosen for")
    ap.add_argument("--frames", type=Path, nargs="+", default=None,
                    help="cache folder for the decoded windows (resumable), one per training set")
    ap.add_argument("--folds", type=int, default=5, help="clip-grouped folds for the out-of-fold threshold")
    add_share_options(ap)
    ap.add_argument("--calib-clips", type=int, default=0,
                    help="choose the threshold on this many separate 3-window clips instead of out-of-fold scores")
    ap.add_argument("--calib-frames", type=Path, default=None, help="cache folder for the calibration windows")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.time()
    if len(args.clips) != len(args.seed) or (args.frames is not None and len(args.frames) != len(args.seed)):
        ap.error("give one --clips (and one --frames) value per --seed")
    if set(EVAL_SEEDS) & set(args.seed):
        ap.error(EVAL_SEEDS_ERROR)
    items = []
    for i, (seed, clips) in enumerate(zip(args.seed, args.clips, strict=True)):
        items += build(seed, clips, photo_list("train"), windows=2, workers=args.workers,
                       frames=None if args.frames is None else args.frames[i], as_sent=True,
                       **shares(args))
    feats = np.stack([f for f, _ in items])  # clips x windows x F
    kinds = np.array([CLASSES.index(s.kind) for _, s in items])
    log.info("%d clips ready in %.0f s (classes %s)", len(items), time.time() - t0, np.bincount(kinds).tolist())
    n, k, f = feats.shape
    fit_seed = args.seed[0]

    # clip-grouped cross-validation: every clip is scored by a fit that never saw it
    t1 = time.time()
    fold = np.arange(n) % args.folds
    s_oof = np.zeros(n)
    for j in range(args.folds):
        w_j = fit(feats[fold != j], kinds[fold != j], args.hidden, args.l2, fit_seed, args.epochs, args.members)
        s_oof[fold == j] = clip_scores(w_j, feats[fold == j])
    is_w = kinds > 0
    thr = threshold_for(s_oof, is_w, args.target_fpr)
    log.info("out-of-fold (%d clips, %d windows, %d folds, %.0f s): threshold %.2f -> recall %.3f, FPR %.3f; "
             "at 0.5: %.3f / %.3f", n, k, args.folds, time.time() - t1, thr, (s_oof[is_w] >= thr).mean(),
             (s_oof[~is_w] >= thr).mean(), (s_oof[is_w] >= 0.5).mean(), (s_oof[~is_w] >= 0.5).mean())

    w = fit(feats, kinds, args.hidden, args.l2, fit_seed, args.epochs, args.members)
    if args.calib_clips:
        cal = build(fit_seed + 100, args.calib_clips, photo_list("train"), windows=3, workers=args.workers,
                    frames=args.calib_frames)
        s_cal = clip_scores(w, np.stack([f for f, _ in cal]))
        k_cal = np.array([s.kind != "clear" for _, s in cal])
        thr = threshold_for(s_cal, k_cal, args.target_fpr)
        log.info("calibration (%d clips, 3 windows): threshold %.2f -> recall %.3f, FPR %.3f", len(cal), thr,
                 (s_cal[k_cal] >= thr).mean(), (s_cal[~k_cal] >= thr).mean())
    s_all = clip_scores(w, feats)
    log.info("training set: recall %.3f, FPR %.3f at %.2f", (s_all[kinds > 0] >= thr).mean(),
             (s_all[kinds == 0] >= thr).mean(), thr)
    w.metadata = {
        "feature_version": FEATURE_VERSION,
        "classes": ",".join(CLASSES),
        "trained_on": f"synthetic clips={'+'.join(map(str, args.clips))} seed={'+'.join(map(str, args.seed))} "
        f"hidden={args.hidden}x{args.members} "
        f"l2={args.l2}" + shares_note(args),
        "threshold": f"{thr:.2f}",
    }
    write_mlp(args.out, w)
    log.info("wrote %s (%d bytes) in %.0f s total", args.out, args.out.stat().st_size, time.time() - t0)


if __name__ == "__main__":
    main()
