"""Evaluate a rain model on a held-out synthetic set (other seed, other photos) and time a 1080p clip.

Usage (from the repository root):
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src .venv/bin/python plugins/detect_rain/train/evaluate.py \
        --clips 400 --seed 2 --frames /tmp/rain3-frames-eval
    # the stress set: renderer code paths and camera parameters the training never uses
    OMP_NUM_THREADS=1 PYTHONPATH=plugins/detect_rain/src .venv/bin/python plugins/detect_rain/train/evaluate.py \
        --clips 200 --seed 3 --domain stress --frames /tmp/rain3-frames-stress
    # the same sets with their 640 x 360 clips made as a camera makes a sub-stream (--substream, own --frames folder)
    # the same sets with 4:3 pictures (640 x 480 ... 1920 x 1440) instead of 16:9 (--aspect 4:3, own --frames folder)
    # the same sets as footage re-encoded by a video site (--av1, own --frames folder; scored with the AV1 shift)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain.detector import RainConfig, RainDetector  # noqa: E402
from alarmcloud_detect_rain.features import window_analysis  # noqa: E402
from dataset import ASPECT, LENS_RANGE, TILT_RANGE, build, cache, load_frames, specs_for  # noqa: E402
from synth import DISTRACTORS, DOMAINS, photo_list  # noqa: E402


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    scores = np.r_[pos, neg]
    ranks = scores.argsort().argsort() + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _rate(values: list[bool]) -> str:
    return f"{100 * np.mean(values):.1f} % (n={len(values)})" if values else "–"


def time_1080p(det: RainDetector) -> tuple[float, float]:
    """CPU seconds for (decode of the detector's windows, analysis) on an 18 s 1080p 15 fps clip."""
    from alarmcloud.testing import make_clip
    from alarmcloud.video import decode, probe

    with tempfile.TemporaryDirectory() as tmp:
        path = make_clip(Path(tmp) / "c.mp4", seconds=18, width=1920, height=1080, fps=15, gop_seconds=2.0)
        clip = probe(path)
        best_dec, best_an = 1e9, 1e9
        for _ in range(3):
            t0 = time.process_time()
            (frames,) = decode(path, [det.frame_request()], clip)
            t1 = time.process_time()
            det.analyze(frames)
            t2 = time.process_time()
            best_dec, best_an = min(best_dec, t1 - t0), min(best_an, t2 - t1)
    return best_dec, best_an


#: the ranges ``--tilt`` and ``--lens`` draw from, as printed (a lens's diagonal is twice its half-diagonal)
TILTED = f"{TILT_RANGE[0]:g}-{TILT_RANGE[1]:g}"
LENSES = f"{2 * LENS_RANGE[0]:g}-{2 * LENS_RANGE[1]:g}"


def _aspect(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give width:height, e.g. 4:3") from None
    if not (w > 0 and h > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: both sides must be positive")
    return w, h


_worker: dict[str, object] = {}


def _open(config: tuple[Path | None, Path | None, float | None], frames: Path) -> None:
    """A worker's detector and frame cache (``_scored``)."""
    model, cnn, weight = config
    _worker["det"] = RainDetector(RainConfig(model_path=model, cnn_path=cnn, cnn_weight=weight))
    _worker["windows"] = load_frames(frames)[0]


def _scored(i: int) -> tuple[np.ndarray, float, dict[str, float]]:
    """Clip ``i`` of the worker's cache: its feature rows, weather score (before the codec's shift) and class scores."""
    det, windows = _worker["det"], _worker["windows"]
    assert isinstance(det, RainDetector) and isinstance(windows, np.ndarray)
    analysed = [window_analysis(list(w), maps=True) for w in windows[i]]
    feats = np.stack([f for f, _ in analysed])
    weather, by_class, _ = det.combine(feats, [m for _, m in analysed if m is not None])
    return feats, weather, by_class


def main() -> None:
    """Print a markdown results table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--save", type=Path, default=None, help="also save the held-out features (.npz)")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--cnn-weight", type=float, default=None, help="0: the MLP alone (default: as the detector)")
    ap.add_argument("--cnn", type=Path, default=None, help="the spike-map CNN (default: the shipped one)")
    ap.add_argument("--frames", type=Path, default=None, help="cache folder for the decoded windows (resumable)")
    ap.add_argument("--domain", choices=DOMAINS, default="train", help="stress: conditions the training never sees")
    ap.add_argument("--drawn-scenes", type=float, default=0.0, metavar="SHARE",
                    help="share of clips on drawn garden / drive / street views (scenes.py); 1: all")
    ap.add_argument("--substream", action="store_true",
                    help="render the 640 x 360 clips as a camera's sub-stream: at 1920 x 1080, scaled down in the "
                         "camera before encoding (the other clips stay as they are)")
    ap.add_argument("--aspect", type=_aspect, default=ASPECT, metavar="W:H",
                    help="the pictures' shape at the drawn widths, e.g. 4:3 (default 16:9, as the training renders)")
    ap.add_argument("--tilt", type=float, nargs="?", const=1.0, default=0.0, metavar="SHARE",
                    help=f"every camera (or this share of them) looks down by {TILTED} degrees, so rain and snow "
                         "converge on the vanishing point of the vertical below the picture (the shipped model was "
                         "trained on level cameras)")
    ap.add_argument("--lens", action="store_true",
                    help=f"every camera has a wide-angle to fisheye lens, {LENSES} degrees across the diagonal "
                         "(the training renders rectilinear pictures)")
    ap.add_argument("--av1", type=float, nargs="?", const=1.0, default=0.0, metavar="SHARE",
                    help="send the clips as AV1, re-encoded as a video site does (alone: every clip; a share: that "
                    "many, drawn from each clip's own seed; own --frames folder), scored with the model's AV1 shift")
    ap.add_argument("--cbr", type=float, nargs="?", const=1.0, default=0.0, metavar="SHARE",
                    help="code the clips with a camera encoder's rate control, one quantiser per frame whatever it "
                    "shows (alone: every clip; a share: that many, drawn from each clip's own seed; own --frames "
                    "folder)")
    ap.add_argument("--no-timing", action="store_true", help="skip the 1080p CPU timing")
    args = ap.parse_args()
    det = RainDetector(RainConfig(model_path=args.model, cnn_path=args.cnn, cnn_weight=args.cnn_weight))
    if det.cnn is not None and args.frames is None:
        ap.error("the CNN reads the decoded windows: give --frames (or --cnn-weight 0 for the MLP alone)")
    thr = det.threshold if args.threshold is None else args.threshold
    t0 = time.time()
    variants = dict(domain=args.domain, drawn=args.drawn_scenes, substream=args.substream, aspect=args.aspect,
                    tilt=args.tilt, lens=args.lens, av1=args.av1, cbr=args.cbr)
    if det.cnn is None:
        items = build(args.seed, args.clips, photo_list("eval"), windows=3, workers=args.workers, frames=args.frames,
                      **variants)
        specs = [spec for _, spec in items]
        scored = [(feats, *det.combine(feats, [])[:2]) for feats, _ in items]
    else:  # the CNN reads each window's maps: one pass per window gives them and the features, clips in parallel
        assert args.frames is not None
        specs = cache(specs_for(args.seed, args.clips, photo_list("eval"), 3, **variants), args.frames, args.workers)
        config = (args.model, args.cnn, args.cnn_weight)
        with ProcessPoolExecutor(max(1, args.workers), initializer=_open, initargs=(config, args.frames)) as pool:
            scored = list(pool.map(_scored, range(len(specs)), chunksize=8))
    if args.save:
        np.savez(args.save, x=np.concatenate([feats for feats, _, _ in scored]))
    rows = []
    for spec, (_, weather, by_class) in zip(specs, scored, strict=True):
        weather = det.calibrated(weather, spec.codec, det.score_shift)  # the probe names an AV1 clip "av1"
        rows.append((spec, weather, float(by_class["snow"] > by_class["rain"])))
    av1_shift = det.score_shift.get("av1", 0.0)
    print(
        f"held-out set: {len(rows)} clips, seed {args.seed}, domain {args.domain}, eval photos"
        f"{f', drawn scenes {args.drawn_scenes:g}' if args.drawn_scenes else ''}"
        f"{', 640 x 360 as sub-streams of 1920 x 1080' if args.substream else ''}"
        f"{f', pictures {args.aspect[0]}:{args.aspect[1]}' if args.aspect != ASPECT else ''}"
        f"{f', cameras looking down {TILTED} degrees' if args.tilt >= 1 else ''}"
        f"{f', {args.tilt:.0%} of cameras looking down {TILTED} degrees' if 0 < args.tilt < 1 else ''}"
        f"{f', wide-angle to fisheye lenses ({LENSES} degrees diagonal)' if args.lens else ''}"
        f"{f', {args.av1:.0%} sent as AV1 (score shift {av1_shift:+g})' if args.av1 else ''}, threshold {thr}, "
        f"rendered in {time.time() - t0:.0f} s\n"
    )
    weather = [s for s, _, _ in rows if s.kind != "clear"]
    pos = np.array([p for s, p, _ in rows if s.kind != "clear"])
    neg = np.array([p for s, p, _ in rows if s.kind == "clear"])
    print(f"AUC weather vs clear: {_auc(pos, neg):.4f}; weather clips {len(weather)}, clear clips {len(neg)}\n")
    print("| weather | intensity | day recall | night recall |")
    print("|---|---|---|---|")
    for kind in ("rain", "snow"):
        for inten in ("light", "medium", "heavy"):
            cells = []
            for night in (False, True):
                hits = [p >= thr for s, p, _ in rows if s.kind == kind and s.intensity == inten and s.night == night]
                cells.append(_rate(hits))
            print(f"| {kind} | {inten} | {cells[0]} | {cells[1]} |")
    print("\n| weather clips (rain + snow) with | day recall | night recall |")
    print("|---|---|---|")
    wgroups: dict[str, dict[bool, list[bool]]] = defaultdict(lambda: {False: [], True: []})
    for s, p, _ in rows:
        if s.kind == "clear":
            continue
        wgroups["(all weather clips)"][s.night].append(p >= thr)
        wgroups["no distractor" if not s.distractors else "any distractor"][s.night].append(p >= thr)
        wgroups["camera noise reduction (3DNR)" if s.tnr else "no noise reduction"][s.night].append(p >= thr)
        if s.bitrate:
            wgroups["bitrate-capped encoding"][s.night].append(p >= thr)
        else:
            wgroups["strong compression (CRF >= 30)" if s.crf >= 30 else "CRF < 30"][s.night].append(p >= thr)
        wgroups[f"{s.noise_kind} noise"][s.night].append(p >= thr)
        wgroups["larger than 720p" if s.size[0] > 1280 else "720p or smaller"][s.night].append(p >= thr)
        wgroups[f"{s.fps} fps" if s.fps in (5, 8, 24, 30) else "10-25 fps"][s.night].append(p >= thr)
        if s.defocus:
            wgroups["out-of-focus drops"][s.night].append(p >= thr)
        if s.gust:
            wgroups["wind gusts"][s.night].append(p >= thr)
        if s.lamp_boost:
            wgroups["lamp-lit drops"][s.night].append(p >= thr)
        for d in s.distractors:
            wgroups[d][s.night].append(p >= thr)
    for name in ("(all weather clips)", "no distractor", "any distractor", *DISTRACTORS,
                 "no noise reduction", "camera noise reduction (3DNR)", "CRF < 30", "strong compression (CRF >= 30)",
                 "bitrate-capped encoding", "gauss noise", "correlated noise", "shot noise", "720p or smaller",
                 "larger than 720p", "5 fps", "8 fps", "10-25 fps", "24 fps", "30 fps", "out-of-focus drops",
                 "wind gusts", "lamp-lit drops"):
        if not wgroups[name][False] and not wgroups[name][True]:
            continue
        print(f"| {name} | {_rate(wgroups[name][False])} | {_rate(wgroups[name][True])} |")
    print("\n| clear clips with | day FPR | night FPR |")
    print("|---|---|---|")
    groups: dict[str, dict[bool, list[bool]]] = defaultdict(lambda: {False: [], True: []})
    for s, p, _ in rows:
        if s.kind != "clear":
            continue
        groups["(all clear clips)"][s.night].append(p >= thr)
        if not s.distractors:
            groups["nothing but noise"][s.night].append(p >= thr)
        for d in s.distractors:
            groups[d][s.night].append(p >= thr)
        if s.tnr:
            groups["camera noise reduction (3DNR)"][s.night].append(p >= thr)
        if s.bitrate:
            groups["bitrate-capped encoding"][s.night].append(p >= thr)
        groups["larger than 720p" if s.size[0] > 1280 else "720p or smaller"][s.night].append(p >= thr)
    for name in ("(all clear clips)", "nothing but noise", *DISTRACTORS, "camera noise reduction (3DNR)",
                 "bitrate-capped encoding", "720p or smaller", "larger than 720p"):
        if not groups[name][False] and not groups[name][True]:
            continue
        print(f"| {name} | {_rate(groups[name][False])} | {_rate(groups[name][True])} |")
    print("\n| source picture (analysed 640 px wide) | weather recall day | night | clear FPR day | night | AUC |")
    print("|---|---|---|---|---|---|")
    for size in sorted({s.size for s, _, _ in rows}):
        same = [(s, p) for s, p, _ in rows if s.size == size]
        cells = [_rate([p >= thr for s, p in same if (s.kind != "clear") == weather and s.night == night])
                 for weather in (True, False) for night in (False, True)]
        pos = np.array([p for s, p in same if s.kind != "clear"])
        neg = np.array([p for s, p in same if s.kind == "clear"])
        auc = f"{_auc(pos, neg):.3f}" if len(pos) and len(neg) else "–"
        print(f"| {size[0]} x {size[1]} | {' | '.join(cells)} | {auc} |")
    print("\n| threshold | weather recall (all) | rain medium+heavy recall | clear FPR (all) |")
    print("|---|---|---|---|")
    for t in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        rec = [p >= t for s, p, _ in rows if s.kind != "clear"]
        rmh = [p >= t for s, p, _ in rows if s.kind == "rain" and s.intensity != "light"]
        fpr = [p >= t for s, p, _ in rows if s.kind == "clear"]
        print(f"| {t} | {_rate(rec)} | {_rate(rmh)} | {_rate(fpr)} |")
    snow_ok = [lab == (s.kind == "snow") for s, p, lab in rows if s.kind != "clear" and p >= thr]
    print(f"\nrain-vs-snow label agreement on detected weather clips: {_rate(snow_ok)}")
    if args.no_timing:
        return
    dec, an = time_1080p(det)
    print(f"\n18 s 1080p 15 fps clip: decode of the 3 windows {dec:.3f} CPU-s, analysis {an:.3f} CPU-s")


if __name__ == "__main__":
    main()
