"""Recalibrate the rain model from clips that owners released with a rain/snow or not_rain/not_snow label.

The recalibrated MLP is measured, and its output layer refit, as the detector will run it: fused with the
spike-map CNN (which stays as shipped) unless the CNN is off. The CNN weight goes into the written model's metadata
(``cnn_weight``), so a deployment pointed at it fuses it the same way without further settings."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from alarmcloud.video import ProbeError, decode

from alarmcloud_detect_rain.detector import (
    CNN_NETWORK_KEY,
    WINDOW_AT,
    RainConfig,
    RainDetector,
    fuse,
    parse_shifts,
    quiet_windows,
)
from alarmcloud_detect_rain.mlp import refit_head
from alarmcloud_detect_rain.onnx_io import MLPWeights, network_digest, read_mlp, write_mlp

log = logging.getLogger(__name__)

#: training-area folders (``<data_dir>/training/rain/<label>/``) and whether they count as weather
LABELS = {"rain": True, "snow": True, "not_rain": False, "not_snow": False}


#: output-layer refits ``recalibrate(strength=None)`` tries, from the weakest pull toward the base model on
STRENGTHS = (1.0, 10.0, 100.0, 1000.0)
#: a refit is used only when, out of fold on the feedback, it ranks weather above clear clips better than the base
#: model by this much (AUC) without more false positives at the detector's threshold than the base (or 5 %)
MIN_AUC_GAIN = 0.02
MAX_FPR = 0.05
#: clips of each label (weather, clear) below which no refit is tried: with fewer, the out-of-fold check itself is
#: too noisy (measured with 10: 3 of 20 deployments of 40 feedback clips took a refit, one of them 0.93 AUC on the
#: clips it had not seen, against the base model's 0.95)
MIN_CLIPS_TO_REFIT = 20


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random ``pos`` score beats a random ``neg`` one (ties: half)."""
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


@dataclass(frozen=True)
class FeedbackClip:
    """One released clip: its windows' features, its video codec (the score shift depends on it) and the spike-map
    CNN's weather score of it (None: not fused; the CNN is not refit, so its score is fixed)."""

    x: np.ndarray
    codec: str | None = None
    cnn: float | None = None


def clip_score(model: MLPWeights, clip: FeedbackClip, shifts: dict[str, float] | None = None,
               cnn_weight: float = 0.0) -> float:
    """The detector's weather score of one clip from its windows' features (the mean weather probability, a window
    without any transient brightening clear, as in ``RainDetector.window_probs``), fused with the clip's CNN score
    at ``cnn_weight`` (0: the MLP alone) and moved by the score shift for the clip's codec as
    ``RainDetector.analyze`` does (``shifts``: the deployment's ``score_shift``, default the model's own)."""
    weather = 1 - model.predict(clip.x.astype(np.float64))[:, 0]
    weather[quiet_windows(clip.x)] = 0.0
    score = float(weather.mean())
    if cnn_weight > 0.0 and clip.cnn is not None:
        score = float(fuse(score, clip.cnn, cnn_weight))
    return RainDetector.calibrated(score, clip.codec, model_shifts(model) if shifts is None else shifts)


def model_shifts(model: MLPWeights) -> dict[str, float]:
    """The per-codec score shift in ``model``'s metadata (``score_shift``; none: {})."""
    return parse_shifts(model.metadata.get("score_shift", ""))


@dataclass(frozen=True)
class StrengthChoice:
    """What cross-validation on the feedback clips chose; ``strength`` None: keep the base model's output layer."""

    strength: float | None
    folds: int
    auc_base: float | None = None
    auc_chosen: float | None = None
    reason: str = ""


def choose_strength(base: MLPWeights, clips: list[FeedbackClip], weather: np.ndarray, threshold: float,
                    folds: int = 5, repeats: int = 3, seed: int = 0,
                    shifts: dict[str, float] | None = None, cnn_weight: float = 0.0,
                    min_auc_gain: float = MIN_AUC_GAIN) -> StrengthChoice:
    """Pick the refit strength by clip-grouped, stratified cross-validation on the feedback clips themselves.

    Each of ``STRENGTHS`` is refit on all folds but one and scores the clips of that fold (``repeats`` times with
    other folds, averaged); the base model scores every clip as it is. A refit that does not beat the base model out
    of fold is not used: measured on footage unlike the training renders, refitting every time made the detector
    worse (``train/recalibration_eval.py``). Clips are scored as ``clip_score`` does (fused at ``cnn_weight``).
    """
    if shifts is None:  # refits keep the base model's metadata, and with it its shift
        shifts = model_shifts(base)
    pos = np.flatnonzero(weather)
    neg = np.flatnonzero(~weather)
    if min(len(pos), len(neg)) < MIN_CLIPS_TO_REFIT:
        return StrengthChoice(None, 0, reason=f"fewer than {MIN_CLIPS_TO_REFIT} clips of each label (weather "
                                              f"{len(pos)}, clear {len(neg)}) to check a refit out of fold")
    k = min(folds, len(pos), len(neg))
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(repeats):
        fold = np.empty(len(clips), dtype=int)
        for idx in (pos, neg):
            fold[rng.permutation(idx)] = np.arange(len(idx)) % k
        splits.append(fold)

    def rate(scores: np.ndarray) -> tuple[float, float]:
        return auc(scores[weather], scores[~weather]), float(np.mean(scores[~weather] >= threshold))

    def out_of_fold(strength: float, fold: np.ndarray) -> tuple[float, float]:
        oof = np.empty(len(clips))
        for f in range(k):
            train = np.flatnonzero(fold != f)
            x = np.concatenate([clips[i].x for i in train]).astype(np.float64)
            y = np.concatenate([np.full(len(clips[i].x), weather[i]) for i in train])
            model = refit_head(base, x, y, l2_to_base=strength)
            for i in np.flatnonzero(fold == f):
                oof[i] = clip_score(model, clips[i], shifts, cnn_weight)
        return rate(oof)

    auc_base, fpr_base = rate(np.array([clip_score(base, c, shifts, cnn_weight) for c in clips]))
    best: tuple[float, float] | None = None
    for strength in STRENGTHS:
        auc_s, fpr_s = np.mean([out_of_fold(strength, fold) for fold in splits], axis=0)
        if auc_s >= auc_base + min_auc_gain and fpr_s <= max(fpr_base, MAX_FPR) and (best is None or auc_s > best[1]):
            best = (strength, float(auc_s))
    if best is None:
        return StrengthChoice(None, k, auc_base, None, "no refit beat the base model out of fold")
    return StrengthChoice(best[0], k, auc_base, best[1], "out of fold")


@dataclass(frozen=True)
class RecalibrationReport:
    """What a recalibration run used and how well the old and new model fit the feedback."""

    clips: int
    rain_clips: int
    not_rain_clips: int
    skipped: int
    accuracy_before: float
    accuracy_after: float
    out: Path
    choice: StrengthChoice
    #: (threshold, weather recall, clear false-positive rate) of the written model on the feedback clips
    by_threshold: tuple[tuple[float, float, float], ...] = ()
    #: the CNN weight the clips were scored with and the written model carries (0: the MLP alone)
    cnn_weight: float = 0.0
    #: the threshold the refit was checked at (the detector's)
    threshold: float = 0.75


def feedback_clips(samples_dir: str | Path) -> list[tuple[Path, bool]]:
    """``(clip, is_weather)`` for every ``<samples_dir>/{rain,snow,not_rain,not_snow}/*.mp4``, sorted."""
    root = Path(samples_dir)
    return [(p, is_rain) for label, is_rain in LABELS.items() for p in sorted((root / label).glob("*.mp4"))]


def recalibrate(
    samples_dir: str | Path,
    out_model_path: str | Path,
    base_model_path: str | Path | None = None,
    window_at: tuple[float, ...] = WINDOW_AT,
    min_per_class: int = 2,
    strength: float | None = None,
    on_clip: Callable[[Path], None] | None = None,
    threshold: float | None = None,
    score_shift: dict[str, float] | None = None,
    cnn_path: str | Path | None = None,
    cnn_weight: float | None = None,
) -> RecalibrationReport:
    """Refit the model's output layer on released clips and write a new ONNX model to ``out_model_path``.

    Clips are decoded through the core pipeline with the detector's own frame request, so the features are
    exactly those seen in production, and scored as the detector configured with ``base_model_path``,
    ``cnn_path`` and ``cnn_weight`` (``RainConfig``'s meaning: by default the shipped MLP fused with the shipped
    CNN) scores them; only the MLP's output layer is refit. ``strength`` scales how strongly the new weights are
    held near the base; None (the default) lets cross-validation on the feedback choose it, and keeps the base
    model's output layer when no refit does better than it out of fold (``choose_strength``; ``threshold``: the
    detector's, default its own; ``score_shift``: the detector's per-codec shift, default its own). The model is
    written either way, with what was done and the CNN weight in its metadata.
    """
    det = RainDetector(RainConfig(model_path=base_model_path, cnn_path=cnn_path, cnn_weight=cnn_weight,
                                  window_at=window_at))
    base_path = det.model_path
    base = read_mlp(base_path)
    request = det.frame_request()
    clips: list[FeedbackClip] = []
    labels: list[bool] = []
    skipped = 0
    for path, is_rain in feedback_clips(samples_dir):
        try:
            (frames,) = decode(path, [request])
            x, maps, _ = det.analysis(frames, maps=det.cnn is not None)
        except (ProbeError, OSError, ValueError) as exc:
            log.warning("skipping feedback clip %s: %s", path.name, exc)
            x, maps = np.zeros((0, 0)), []
        if len(x):
            clips.append(FeedbackClip(x, frames.probe.video_codec, det.cnn_weather(x, maps)))
            labels.append(is_rain)
        else:
            skipped += 1
        if on_clip is not None:
            on_clip(path)
    weather = np.array(labels, dtype=bool)
    counts = {True: int(weather.sum()), False: int((~weather).sum())}
    if counts[True] < min_per_class or counts[False] < min_per_class:
        raise ValueError(
            f"need at least {min_per_class} usable clips per label, got rain={counts[True]} "
            f"not_rain={counts[False]} in {samples_dir}"
        )
    if score_shift is None:  # the detector's: the written model keeps the base model's metadata, the CNN its own
        score_shift = det.score_shift
    if threshold is None:
        threshold = det.threshold
    weight = det.cnn_weight  # 0 when the CNN is off
    if strength is None:
        choice = choose_strength(base, clips, weather, threshold, shifts=score_shift, cnn_weight=weight)
    else:
        choice = StrengthChoice(strength, 0, reason="given")
    if choice.strength is None:
        new = MLPWeights(base.mean, base.scale, base.w1, base.b1, base.w2, base.b2, dict(base.metadata))
    else:
        x = np.concatenate([c.x for c in clips]).astype(np.float64)
        y = np.concatenate([np.full(len(c.x), w) for c, w in zip(clips, weather, strict=True)])
        new = refit_head(base, x, y, l2_to_base=choice.strength)

    def clip_accuracy(model: MLPWeights) -> float:
        return float(np.mean([(clip_score(model, c, score_shift, weight) >= 0.5) == w
                              for c, w in zip(clips, weather, strict=True)]))

    before, after = clip_accuracy(base), clip_accuracy(new)
    scores = np.array([clip_score(new, c, score_shift, weight) for c in clips])
    by_threshold = tuple((t, float(np.mean(scores[weather] >= t)), float(np.mean(scores[~weather] >= t)))
                         for t in np.round(np.arange(0.5, 0.951, 0.05), 2))
    new.metadata["recalibrated_from"] = f"{base_path.name} + {len(clips)} feedback clips"
    new.metadata["recalibration"] = ("base output layer kept: " + choice.reason if choice.strength is None
                                     else f"output layer refit, strength {choice.strength:g} ({choice.reason})")
    # the detector reads this back: a deployment pointed at the new model fuses it as it was measured here
    new.metadata["cnn_weight"] = f"{weight:g}"
    # and checks that it is fused with the same network (a later release may ship another CNN)
    if det.cnn is not None:
        digest = hashlib.sha256(det.cnn_path.read_bytes()).hexdigest()[:12]
        new.metadata["recalibrated_with_cnn"] = f"{det.cnn_path.name} sha256:{digest}"
        new.metadata[CNN_NETWORK_KEY] = network_digest(det.cnn_path)[:16]
    else:
        new.metadata.pop("recalibrated_with_cnn", None)
        new.metadata.pop(CNN_NETWORK_KEY, None)
    out = write_mlp(out_model_path, new)
    log.info("recalibrated on %d clips: %s; accuracy %.3f -> %.3f, wrote %s", len(clips),
             new.metadata["recalibration"], before, after, out)
    return RecalibrationReport(len(clips), counts[True], counts[False], skipped, before, after, out, choice,
                               by_threshold, weight, threshold)
