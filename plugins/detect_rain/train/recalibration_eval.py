"""Does `alarmcloud rain recalibrate` help on footage unlike the training renders? Measured on the stress set.

The stress set (seed 3, ``--domain stress``) stands in for a deployment whose cameras the renderer never drew
(shot and row noise, refracting drops, 5 / 8 / 24 fps; see the README). Each split plays one deployment: ``N``
clips, drawn at random, are the owners' released feedback; the output layer is refit on them exactly as
``recalibrate()`` does (``refit_head`` on the windows' features, weather = rain or snow); the shipped model and the
recalibrated one are then scored on the **other** clips of the set, which the refit never saw. Clips are scored as
the detector runs: fused with the spike-map CNN's clip score at the detector's weight (``--cnn-weight 0``: the MLP
alone), which a refit of the MLP's output layer does not change.

Usage (from the repository root; the cache is the one ``evaluate.py`` fills):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src .venv/bin/python \
        plugins/detect_rain/train/recalibration_eval.py --clips 200 --seed 3 --domain stress \
        --frames /tmp/rain3-frames-stress --feedback 10 20 40 80 --splits 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain.detector import RainConfig, RainDetector  # noqa: E402
from alarmcloud_detect_rain.features import window_analysis  # noqa: E402
from alarmcloud_detect_rain.mlp import refit_head  # noqa: E402
from alarmcloud_detect_rain.onnx_io import MLPWeights, read_mlp  # noqa: E402
from alarmcloud_detect_rain.recalibrate import (  # noqa: E402
    MIN_AUC_GAIN,
    FeedbackClip,
    auc,
    choose_strength,
    clip_score,
)
from dataset import build, load_frames, specs_for  # noqa: E402
from synth import DOMAINS, photo_list  # noqa: E402


def clip_scores(model: MLPWeights, clips: list[FeedbackClip], cnn_weight: float) -> np.ndarray:
    """The detector's clip scores (mean weather probability over the clip's windows, fused with the CNN's at
    ``cnn_weight``; all renders are H.264)."""
    return np.array([clip_score(model, c, cnn_weight=cnn_weight) for c in clips])


def cnn_scores(det: RainDetector, frames: Path, feats: list[np.ndarray]) -> list[float | None]:
    """The CNN's weather score of every cached clip (None each when the detector runs the MLP alone)."""
    if det.cnn is None:
        return [None] * len(feats)
    windows = load_frames(frames)[0]
    return [det.cnn_weather(x, [window_analysis(list(w), maps=True)[1] for w in windows[i]])
            for i, x in enumerate(feats)]


def recall_at_fpr(pos: np.ndarray, neg: np.ndarray, fpr: float) -> float:
    """Weather recall at the lowest threshold whose clear-clip false-positive rate is at most ``fpr``."""
    allowed = int(np.floor(fpr * len(neg)))
    thr = np.sort(neg)[::-1][allowed] if allowed < len(neg) else -np.inf
    return float(np.mean(pos > thr))


def score(model: MLPWeights, clips: list[FeedbackClip], weather: np.ndarray, thr: float,
          cnn_weight: float) -> dict[str, float]:
    s = clip_scores(model, clips, cnn_weight)
    pos, neg = s[weather], s[~weather]
    return {
        "auc": auc(pos, neg),
        "recall": float(np.mean(pos >= thr)),
        "fpr": float(np.mean(neg >= thr)),
        "recall@5": recall_at_fpr(pos, neg, 0.05),
    }


def draw_feedback(rng: np.random.Generator, weather: np.ndarray, n: int, min_per_class: int = 2) -> np.ndarray:
    """``n`` clip indices at random, redrawn until both sides have ``min_per_class`` (as recalibrate needs)."""
    while True:
        idx = rng.choice(len(weather), size=n, replace=False)
        if weather[idx].sum() >= min_per_class and (~weather[idx]).sum() >= min_per_class:
            return idx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--domain", choices=DOMAINS, default="stress")
    ap.add_argument("--frames", type=Path, help="cache folder of the decoded windows (evaluate.py)")
    ap.add_argument("--artefact", nargs=2, metavar=("NPZ", "NAME"),
                    help="instead of --frames: one artefact's features saved by artefacts.py --save")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None, help="base model (default: the shipped one)")
    ap.add_argument("--feedback", type=int, nargs="+", default=[10, 20, 40, 80], help="feedback clips per split")
    ap.add_argument("--splits", type=int, default=20, help="random deployments per feedback size")
    ap.add_argument("--method", nargs="+", default=["auto", "head:1"],
                    help="auto (recalibrate's default), auto:GAIN (the same with another least out-of-fold AUC gain) "
                    "or head:STRENGTH (recalibrate --strength STRENGTH)")
    ap.add_argument("--threshold", type=float, default=None, help="default: the detector's own")
    ap.add_argument("--cnn-weight", type=float, default=None,
                    help="the CNN's weight in the fused score (default: the detector's own; 0: the MLP alone)")
    args = ap.parse_args()

    det = RainDetector(RainConfig(model_path=args.model, cnn_weight=args.cnn_weight))
    base = read_mlp(det.model_path)
    weight = det.cnn_weight  # 0 when the CNN is off
    if args.threshold is None:
        args.threshold = det.threshold
    if args.artefact:
        specs = specs_for(args.seed, args.clips, photo_list("eval"), 3, args.domain)
        name = args.artefact[1]
        with np.load(args.artefact[0]) as z:
            feats = np.split(z[name], np.cumsum(z[f"{name}_n"])[:-1])
            if weight and f"{name}_cnn" not in z.files:
                raise SystemExit(f"{args.artefact[0]} has no CNN scores for {name}: save it again with artefacts.py")
            cnn = [float(c) for c in z[f"{name}_cnn"]] if weight else [None] * len(feats)
        if len(feats) != len(specs):
            raise SystemExit(f"{args.artefact[0]} holds {len(feats)} clips, not --clips {args.clips}")
    else:
        if args.frames is None:
            raise SystemExit("give --frames or --artefact")
        items = build(args.seed, args.clips, photo_list("eval"), windows=3, workers=args.workers,
                      frames=args.frames, domain=args.domain)
        feats, specs = [f for f, _ in items], [spec for _, spec in items]
        cnn = cnn_scores(det, args.frames, feats)
    clips = [FeedbackClip(f, cnn=c) for f, c in zip(feats, cnn, strict=True)]
    weather = np.array([spec.kind != "clear" for spec in specs])
    whole = score(base, clips, weather, args.threshold, weight)
    how = f"fused with the spike-map CNN (weight {weight:g})" if weight else "with the MLP alone"
    print(f"scored {how}; threshold {args.threshold}")
    print(f"{len(feats)} clips (seed {args.seed}, domain {args.domain}), {weather.sum()} weather, "
          f"{(~weather).sum()} clear; base model on all of them: AUC {whole['auc']:.3f}, recall "
          f"{100 * whole['recall']:.1f} %, FPR {100 * whole['fpr']:.1f} % at {args.threshold}, recall at 5 % FPR "
          f"{100 * whole['recall@5']:.1f} %\n")
    print(f"Means over {args.splits} random splits (min–max in brackets); scored on the clips not used as feedback; "
          f"threshold {args.threshold}.\n")
    print("| feedback clips | model | AUC | weather recall | clear FPR | recall at 5 % FPR |")
    print("|---|---|---|---|---|---|")
    for n in args.feedback:
        rng = np.random.default_rng(1000 + n)
        splits = [draw_feedback(rng, weather, n) for _ in range(args.splits)]
        rows: dict[str, list[dict[str, float]]] = {}
        chosen: dict[str, list[float | None]] = {}
        for idx in splits:
            rest = np.setdiff1d(np.arange(len(feats)), idx)
            test_clips = [clips[i] for i in rest]
            rows.setdefault("shipped", []).append(score(base, test_clips, weather[rest], args.threshold, weight))
            x = np.concatenate([feats[i] for i in idx]).astype(np.float64)
            y = np.concatenate([np.full(len(feats[i]), weather[i]) for i in idx])
            for method in args.method:
                auto = method.startswith("auto")
                strength: float | None = None if auto else float(method.split(":")[1])
                if auto:
                    gain = float(method.split(":")[1]) if ":" in method else MIN_AUC_GAIN
                    strength = choose_strength(base, [clips[i] for i in idx], weather[idx], args.threshold,
                                               cnn_weight=weight, min_auc_gain=gain).strength
                    chosen.setdefault(method, []).append(strength)
                new = base if strength is None else refit_head(base, x, y, l2_to_base=strength)
                rows.setdefault(method, []).append(score(new, test_clips, weather[rest], args.threshold, weight))
        for name, results in rows.items():
            cells = []
            for key, pct in (("auc", False), ("recall", True), ("fpr", True), ("recall@5", True)):
                vals = np.array([r[key] for r in results]) * (100 if pct else 1)
                fmt = "{:.1f}" if pct else "{:.3f}"
                unit = " %" if pct else ""
                cells.append(f"{fmt.format(vals.mean())}{unit} ({fmt.format(vals.min())}–{fmt.format(vals.max())})")
            label = name
            if name.startswith("auto"):
                label += f" (refit in {sum(c is not None for c in chosen[name])} of {len(chosen[name])})"
            print(f"| {n} | {label} | " + " | ".join(cells) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
