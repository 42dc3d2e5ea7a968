"""Put H.265 (or AV1) scores on the H.264 scale: the score shift per codec, measured on separate calibration clips.

The model was trained on H.264 clips only. x265 smooths faint streaks and sensor noise alike, so the model ranks
H.265 clips as well as H.264 ones but gives both classes lower weather scores: at the one threshold it calls fewer
H.265 clips weather and has fewer false positives. This script renders clips of train.py's calibration set (seed
101, the training photos, 3 windows, clips no fit has seen) once as H.264 and once as H.265 (``artefacts.py``'s
``hevc``: a camera's x265 settings), scores both with the model and finds, per codec, the weather score that
``--target-fpr`` of the clear clips reach (the same rate the shipped threshold was chosen for). The difference of
the two in log-odds is the shift the detector adds to an H.265 clip's weather score, so that the shipped threshold
(and an owner's per-camera one) lets through as many clear H.265 clips as clear H.264 ones. The score is the
detector's as configured: the MLP fused with the spike-map CNN (its shift then goes into the CNN's metadata, which
the detector reads when fused), or with ``--cnn-weight 0`` the MLP alone (into the MLP's). With ``--write`` the
shift goes into that model's metadata (``score_shift``); the weights stay as they are.

Usage (from the repository root):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src nice .venv/bin/python \
        plugins/detect_rain/train/codec_calibration.py --clips 600 --save /tmp/rain-codec-calib.npz --write
    # AV1 (``artefacts.py``'s ``av1``: SVT-AV1 as a video site encodes), written next to the H.265 shift
    ... codec_calibration.py --codec av1 --clips 600 --save /tmp/rain-codec-calib.npz --write
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain.detector import RainConfig, RainDetector, logit, parse_shifts  # noqa: E402
from alarmcloud_detect_rain.onnx_io import read_metadata, set_metadata  # noqa: E402
from artefacts import artefact_features, clip_weather  # noqa: E402
from dataset import specs_for  # noqa: E402
from evaluate import _rate  # noqa: E402
from synth import photo_list  # noqa: E402

#: the codecs a shift can be measured for, as the core's probe names them (``ClipProbe.video_codec``, also the name
#: of the ``artefacts.py`` artefact that renders them), and how the tables name them
CODECS = {"hevc": "H.265", "av1": "AV1"}


def _logit(p: float) -> float:
    return logit(min(max(p, 1e-6), 1 - 1e-6))


def clear_quantile(scores: np.ndarray, fpr: float) -> float:
    """The weather score that a share ``fpr`` of the clear clips reach (linear interpolation between clips)."""
    return float(np.quantile(scores, 1.0 - fpr))


def main() -> None:
    """Render, score, print per codec what the shipped threshold does with and without the shift."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--seed", type=int, default=101, help="train.py's calibration set (no fit has seen it)")
    ap.add_argument("--target-fpr", type=float, default=0.04, help="the FPR the shipped threshold was chosen for")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None, help="the MLP (default: the shipped one)")
    ap.add_argument("--cnn-weight", type=float, default=None,
                    help="the CNN's weight in the fused score (default: the detector's own; 0: the MLP alone)")
    ap.add_argument("--save", type=Path, default=None, help="keep the features (.npz); read back if it exists")
    ap.add_argument("--codec", choices=sorted(CODECS), default="hevc", help="the codec to put on the H.264 scale")
    ap.add_argument("--write", action="store_true",
                    help="write the shift into the model's metadata (the other codecs' shifts stay)")
    args = ap.parse_args()
    if args.seed in (1, 2, 3):
        ap.error("seeds 1, 2 and 3 are the training, held-out and stress sets")
    specs = specs_for(args.seed, args.clips, photo_list("train"), 3)
    t0 = time.time()
    codec, title = args.codec, CODECS[args.codec]
    feats = artefact_features(specs, ["plain", codec], args.save, args.workers)
    det = RainDetector(RainConfig(model_path=args.model, cnn_weight=args.cnn_weight))
    raw = {a: np.array([clip_weather(det, x, c) for x, c in zip(*f, strict=True)]) for a, f in feats.items()}
    weather = np.array([s.kind != "clear" for s in specs])
    q = {a: clear_quantile(raw[a][~weather], args.target_fpr) for a in raw}
    shift = round(_logit(q["plain"]) - _logit(q[codec]), 2)
    scored = f"fused with the CNN (weight {det.cnn_weight:g})" if det.cnn is not None else "the MLP alone"
    print(f"scored: {scored}, threshold {det.threshold}")
    print(f"{len(specs)} clips of seed {args.seed}: {weather.sum()} weather, {(~weather).sum()} clear "
          f"({time.time() - t0:.0f} s)")
    print(f"score reached by {args.target_fpr:.0%} of the clear clips: H.264 {q['plain']:.3f}, {title} "
          f"{q[codec]:.3f} -> {title} shift {shift:+.2f} in log-odds\n")
    thr = det.threshold
    print(f"| codec | weather recall at {thr} | clear FPR at {thr} |")
    print("|---|---|---|")
    shifted = np.array([det.calibrated(p, codec, {codec: shift}) for p in raw[codec]])
    current = np.array([det.calibrated(p, codec, det.score_shift) for p in raw[codec]])
    rows = [("H.264", raw["plain"]), (title, raw[codec]), (f"{title}, shifted {shift:+.2f}", shifted),
            (f"{title}, the detector's shift now ({det.score_shift.get(codec, 0):+.2f})", current)]
    for name, p in rows:
        print(f"| {name} | {_rate(list(p[weather] >= thr))} | {_rate(list(p[~weather] >= thr))} |")
    if args.write:
        target = det.cnn_path if det.cnn is not None else det.model_path
        # the target file's own shifts (not the detector's, which falls back to the MLP's when the CNN has none)
        shifts = {**parse_shifts(read_metadata(target).get("score_shift", "")), codec: shift}
        text = ",".join(f"{c}:{v:.2f}" for c, v in sorted(shifts.items()))
        set_metadata(target, {"score_shift": text})
        print(f"\nwrote score_shift {text} into {target}")


if __name__ == "__main__":
    main()
