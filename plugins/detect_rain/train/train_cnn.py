"""Train the spike-map CNN that the detector fuses with the feature MLP, and export it (seeded, reproducible).

Usage (from the repository root; PyTorch CPU and onnx for this script only: see requirements.txt):
    OMP_NUM_THREADS=2 PYTHONPATH=plugins/detect_rain/src python plugins/detect_rain/train/train_cnn.py \\
        --clips 1000 --seed 1 --frames /tmp/rain-frames-train-sent

The CNN reads each window's one-frame brightening maps (``features.window_analysis(maps=True)``: 4 maps in units
of the window's noise) through four small convolutions and a mean over the picture, so it learns the shape of
streaks and flakes that the 46 hand-made features only count. Trained on random crops (176 x 320 of 350 x 630, the
4 maps in random order, mirrored at random); the detector runs it on whole maps.

The fusion weight and the shipped threshold are chosen on clips no fit has seen, as train.py does: out-of-fold
scores of the feature MLP (train.py's fit, fit seed = the first seed) and of the CNN on the same 5 clip-grouped
folds are fused as ``sigmoid((1 - w) logit(mlp) + w logit(cnn))``, and the threshold is the lowest (0.05 steps) with
at most ``--target-fpr`` false positives. The held-out sets of ``evaluate.py`` are never used for a decision.
About 15 min for the folds and 3 min for the final fit on 2 cores; ``--skip-oof`` with ``--threshold`` and
``--weight`` fits only the final model. ``--extra SEED CLIPS FRAMES`` trains every fold's CNN and the final one on
more clips of another seed as well (the folds, the MLP and the threshold stay on ``--seed``'s clips); tried with
2,000 seed-4 clips, not shipped (rain README).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from alarmcloud_detect_rain.detector import CNN_FILE, fuse  # noqa: E402
from alarmcloud_detect_rain.features import FEATURE_NAMES, FEATURE_VERSION, MAP_FRAMES, window_analysis  # noqa: E402
from dataset import (  # noqa: E402
    CLASSES,
    EVAL_SEEDS,
    EVAL_SEEDS_ERROR,
    add_share_options,
    cache,
    load_frames,
    shares,
    shares_note,
    specs_for,
)
from synth import photo_list  # noqa: E402
from train import clip_scores, fit, threshold_for  # noqa: E402

log = logging.getLogger("train_cnn")
CHANNELS = (16, 32, 32, 32)


class SpikeMapNet(nn.Module):
    """Brightening maps (n x 4 x H x W) -> class logits (clear, rain, snow)."""

    def __init__(self, channels: tuple[int, int, int, int] = CHANNELS, hidden: int = 32) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.conv = nn.Sequential(
            nn.Conv2d(MAP_FRAMES, c1, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(c4, hidden), nn.ReLU(), nn.Linear(hidden, len(CLASSES)))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(maps * 0.25).mean((2, 3)))


class Exported(nn.Module):
    """What the ONNX file computes: class probabilities per window."""

    def __init__(self, net: SpikeMapNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(maps), 1)


def _analyse(args: tuple[str, int, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    path, i, shape = args
    clip = np.memmap(path, dtype=np.uint8, mode="r", shape=shape)[i]
    out = [window_analysis(list(w), maps=True) for w in clip]
    return np.stack([m for _, m in out]), np.stack([f for f, _ in out])


def maps_and_features(folders: list[Path], workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brightening maps (clips x windows x 4 x H x W, float16), features and class ids of frame caches (one array
    for all, filled in place: the maps of 3,000 clips take 10.6 GB)."""
    caches = [load_frames(folder) for folder in folders]
    _, k, _, h, w = caches[0][0].shape
    if any(mm.shape[1:] != caches[0][0].shape[1:] for mm, _ in caches):
        raise ValueError("the frame caches have windows of different sizes or counts")
    total = sum(len(specs) for _, specs in caches)
    maps = np.empty((total, k, MAP_FRAMES, h - 10, w - 10), np.float16)
    feats = np.empty((total, k, len(FEATURE_NAMES)), np.float32)
    jobs = [(str(folder / "frames.u8"), i, mm.shape) for folder, (mm, specs) in zip(folders, caches, strict=True)
            for i in range(len(specs))]
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for i, (m, f) in enumerate(pool.map(_analyse, jobs, chunksize=8)):
            maps[i], feats[i] = m, f
    return maps, feats, np.array([CLASSES.index(s.kind) for _, specs in caches for s in specs])


def fit_cnn(maps: np.ndarray, kinds: np.ndarray, ids: np.ndarray, seed: int, epochs: int,
            crop: tuple[int, int] = (176, 320), batch: int = 32, lr: float = 3e-3) -> SpikeMapNet:
    """Class-balanced AdamW with a one-cycle schedule on random crops of the windows of clips ``ids``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    k, h, w = maps.shape[1], maps.shape[-2], maps.shape[-1]
    net = SpikeMapNet()
    pairs = np.array([(i, j) for i in ids for j in range(k)])
    y = np.repeat(kinds[ids], k)
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float32)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(counts.sum() / (len(CLASSES) * counts)))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    per_epoch = len(pairs) // batch
    if per_epoch == 0:
        raise ValueError(f"{len(pairs)} training windows do not fill one batch of {batch}: use more clips")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * per_epoch)
    net.train()
    for _ in range(epochs):
        order = rng.permutation(len(pairs))
        for b in range(per_epoch):
            sel = order[b * batch : (b + 1) * batch]
            x = np.empty((len(sel), MAP_FRAMES, *crop), np.float32)
            for n, (i, j) in enumerate(pairs[sel]):
                top, left = rng.integers(0, h - crop[0] + 1), rng.integers(0, w - crop[1] + 1)
                a = maps[i, j, :, top : top + crop[0], left : left + crop[1]][rng.permutation(MAP_FRAMES)]
                x[n] = a[:, :, ::-1] if rng.random() < 0.5 else a
            loss = loss_fn(net(torch.from_numpy(x)), torch.from_numpy(y[sel]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def cnn_clip_scores(net: SpikeMapNet, maps: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Clip weather score as in the detector: 1 - the mean p(clear) over the clip's whole windows."""
    return np.array([1.0 - float(torch.softmax(net(torch.from_numpy(maps[i].astype(np.float32))), 1)[:, 0].mean())
                     for i in ids])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1, help="training set seed (never 2, 3, 5); also the fit seed")
    ap.add_argument("--frames", type=Path, required=True, help="frame cache folder (rendered as sent if missing)")
    ap.add_argument("--extra", nargs=3, action="append", default=[], metavar=("SEED", "CLIPS", "FRAMES"),
                    help="more training clips of another seed (never 2, 3, 5), cached in FRAMES: the CNN trains on "
                    "them in every fold and in the final fit; the folds, the MLP and the threshold stay on --seed's "
                    "clips. Rendered with the same --drawn-scenes, --tilt and --av1 shares as --seed's")
    add_share_options(ap)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5], help="fusion weights tried out of fold")
    ap.add_argument("--target-fpr", type=float, default=0.04)
    ap.add_argument("--skip-oof", action="store_true", help="fit only the final model (needs --threshold)")
    ap.add_argument("--save-oof", type=Path, default=None, help="keep the out-of-fold MLP and CNN scores (.npz)")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--out", type=Path, default=HERE.parent / "src" / "alarmcloud_detect_rain" / "models" / CNN_FILE)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.seed in EVAL_SEEDS:
        ap.error(EVAL_SEEDS_ERROR)
    if args.skip_oof and (args.threshold is None or len(args.weights) != 1):
        ap.error("--skip-oof needs --threshold and one --weights value")
    extra = [(int(seed), int(clips), Path(folder)) for seed, clips, folder in args.extra]
    if any(seed in (*EVAL_SEEDS, args.seed) for seed, _, _ in extra):
        ap.error("--extra seeds must differ from --seed and from evaluate.py's sets (2, 3, 5)")
    torch.set_num_threads(max(1, args.workers))
    t0 = time.time()
    for seed, clips, folder in [(args.seed, args.clips, args.frames), *extra]:
        # rendered if missing; maps_and_features computes the features
        cache(specs_for(seed, clips, photo_list("train"), 2, **shares(args)), folder, args.workers, as_sent=True)
    maps, feats, kinds = maps_and_features([args.frames, *(f for _, _, f in extra)], args.workers)
    log.info("%d clips' maps ready in %.0f s", len(kinds), time.time() - t0)
    weight, thr = args.weights[0], args.threshold
    if not args.skip_oof:
        # the folds: --seed's clips; the --extra ones (after them) train every fold's CNN
        n = len(load_frames(args.frames)[1])
        more = np.arange(n, len(kinds))
        fold = np.arange(n) % args.folds
        s_mlp, s_cnn = np.zeros(n), np.zeros(n)
        for j in range(args.folds):
            tr, te = np.where(fold != j)[0], np.where(fold == j)[0]
            s_mlp[te] = clip_scores(fit(feats[tr], kinds[tr], 32, 1e-3, args.seed, 1500, 4), feats[te])
            net = fit_cnn(maps, kinds, np.concatenate([tr, more]), args.seed + j, args.epochs)
            s_cnn[te] = cnn_clip_scores(net, maps, te)
            log.info("fold %d of %d done (%.0f s)", j + 1, args.folds, time.time() - t0)
        is_w = kinds[:n] > 0
        if args.save_oof:
            np.savez(args.save_oof, mlp=s_mlp, cnn=s_cnn, kinds=kinds[:n])
        best = None
        for w in args.weights:
            s = fuse(s_mlp, s_cnn, w)
            t = threshold_for(s, is_w, args.target_fpr)
            rec = float((s[is_w] >= t).mean())
            log.info("out of fold, weight %.2f: threshold %.2f -> recall %.3f, FPR %.3f", w, t, rec,
                     (s[~is_w] >= t).mean())
            if best is None or rec > best[0]:
                best = (rec, w, t)
        assert best is not None
        _, weight, thr = best
    net = fit_cnn(maps, kinds, np.arange(len(kinds)), args.seed, args.epochs)
    import onnx  # training-only dependency

    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Exported(net).eval(), (torch.zeros(3, MAP_FRAMES, 350, 630),), str(args.out),
                      input_names=["maps"], output_names=["probs"],
                      dynamic_axes={"maps": {0: "windows", 2: "height", 3: "width"}}, dynamo=False)
    model = onnx.load(str(args.out))
    for key, value in {
        "feature_version": FEATURE_VERSION,
        "classes": ",".join(CLASSES),
        "input": "brightening maps",
        "fusion_weight": f"{weight:.2f}",
        "threshold": f"{thr:.2f}",
        "trained_on": f"synthetic clips={args.clips} seed={args.seed}"
        + "".join(f" + clips={c} seed={s}" for s, c, _ in extra)
        + f" channels={'-'.join(map(str, CHANNELS))} epochs={args.epochs}"
        + shares_note(args),
    }.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(args.out))
    log.info("wrote %s (%d bytes, weight %.2f, threshold %.2f) in %.0f s", args.out, args.out.stat().st_size,
             weight, thr, time.time() - t0)


if __name__ == "__main__":
    main()
