"""The rain/snow detector: a few short grey frame windows -> physical features -> shipped ONNX MLP, fused in log-odds
with a small CNN over the windows' brightening maps (shipped too)."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort
from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest
from numpy.typing import ArrayLike
from pydantic import BaseModel, Field

from alarmcloud_detect_rain.features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    MAP_FRAMES,
    WIDTH,
    WINDOW_LENGTH,
    window_analysis,
)
from alarmcloud_detect_rain.onnx_io import network_digest

log = logging.getLogger(__name__)

MODEL_FILE = "rain_mlp.onnx"
#: the spike-map CNN (train/train_cnn.py), fused with the shipped MLP
CNN_FILE = "rain_cnn.onnx"
#: a recalibrated MLP's metadata: the first 16 hex digits of ``network_digest`` of the CNN it was measured with
CNN_NETWORK_KEY = "cnn_network_sha256"
_SPIKE4 = FEATURE_NAMES.index("log_spike_4")
_SPIKE2 = FEATURE_NAMES.index("log_spike2_8")
#: log10 share of pixels below which a window has no transient brightening at all (< 1 in 30,000)
_QUIET = -4.5


def quiet_windows(x: np.ndarray) -> np.ndarray:
    """Windows (rows of features ``x``) in which no pixel brightened for one or two frames: neither rain nor snow
    can be present there, whatever a model extrapolates for such (out-of-distribution) input."""
    return (x[:, _SPIKE4] < _QUIET) & (x[:, _SPIKE2] < _QUIET)


#: where the frame windows start (fractions of the clip): the first two are those of the core's motion analysis
#: (``alarmcloud.motion.REQUEST``) and the third falls on the same keyframe as its 0.85 in an 18 s clip with a 2 s
#: or 4 s GOP, so the pipeline decodes these windows once for both; 0.8 rather than 0.85 keeps a third window in
#: short clips
WINDOW_AT = (0.25, 0.55, 0.8)


def parse_shifts(text: str) -> dict[str, float]:
    """``"hevc:1.5,vp9:0.8"`` (model metadata ``score_shift``) -> {codec: shift in log-odds}."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        codec, _, value = part.partition(":")
        try:
            out[codec.strip()] = float(value)
        except ValueError:
            raise ValueError(f"score_shift {text!r}: expected codec:number pairs such as 'hevc:1.05'") from None
    return out


#: the threshold of a model whose metadata names none
DEFAULT_THRESHOLD = 0.75


def metadata_fraction(meta: dict[str, str], key: str, source: object, default: float) -> float:
    """A number from 0 to 1 in a model's metadata (a threshold, a CNN weight); ``default`` without ``key``."""
    text = meta.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{source}: {key} {text!r} in its metadata is not a number from 0 to 1")
    return value


def model_threshold(metadata: dict[str, str], source: object = "the model") -> float:
    """The threshold a model was made for: ``threshold`` in its metadata (train.py writes the lowest with at most
    4 % false positives out of fold; recalibration keeps the base model's), else ``DEFAULT_THRESHOLD``."""
    return metadata_fraction(metadata, "threshold", source, DEFAULT_THRESHOLD)


def logit(p: float) -> float:
    """log(p / (1 - p)) for 0 < p < 1."""
    return float(np.log(p / (1.0 - p)))


def default_model_path(name: str = MODEL_FILE) -> Path:
    """A model shipped inside the package (default: the feature MLP)."""
    return Path(str(resources.files("alarmcloud_detect_rain") / "models" / name))


def fuse(mlp: ArrayLike, cnn: ArrayLike, weight: float) -> np.ndarray:
    """The clip's weather score from the MLP's and the CNN's: ``sigmoid((1 - weight) logit(mlp) + weight
    logit(cnn))`` (each clipped to 1e-6 .. 1 - 1e-6); element-wise for arrays of clip scores (train_cnn.py)."""
    a, b = (np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6) for p in (mlp, cnn))
    return 1.0 / (1.0 + np.exp(-((1 - weight) * np.log(a / (1 - a)) + weight * np.log(b / (1 - b)))))


class RainConfig(BaseModel):
    """Settings of the rain detector (``[plugins.rain]`` in the config file)."""

    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Emit a rain/snow finding when the weather probability reaches this. "
        "Default: the model's own (`threshold` in its metadata: with the CNN fused, the CNN's, chosen by "
        "train_cnn.py, 0.65 for the shipped pair; without it the MLP's, chosen by train.py, 0.75 for the shipped "
        "MLP)."
    )
    model_path: Path | None = Field(
        None,
        description="ONNX model to use instead of the shipped one, e.g. the output of `alarmcloud rain "
        "recalibrate`; read once when the detector is built.",
    )
    window_at: tuple[float, ...] = Field(
        WINDOW_AT, description="Where the frame windows start, as fractions of the clip duration."
    )
    cnn_path: Path | None = Field(
        None, description="Spike-map CNN to fuse with the MLP instead of the shipped one (train/train_cnn.py)."
    )
    cnn_weight: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Weight of the CNN in the fused log-odds; 0 turns it off (the MLP alone, as before it "
        "shipped). Default: the CNN's own (`fusion_weight` in its metadata, 0.5 shipped) with the shipped MLP; "
        "with a `model_path` of your own the weight `alarmcloud rain recalibrate` measured it with (`cnn_weight` "
        "in its metadata), 0 for a model without one (a recalibration of an older release).",
    )
    threads: int = Field(1, ge=1, le=8, description="onnxruntime intra-op threads (the MLP is tiny: keep 1).")
    score_shift: dict[str, float] | None = Field(
        None,
        description="Per video codec (as the probe names it: hevc, av1), log-odds added to a clip's weather score "
        "before the threshold, instead of the model's own (`score_shift` in its metadata, measured by "
        "train/codec_calibration.py); {hevc = 0} turns the H.265 shift off.",
    )


class RainDetector(Detector):
    """Scores 'rain or snow present' per clip; both labels count as false alarm when nothing real moves."""

    name = "rain"
    labels = ("rain", "snow")
    false_alarm_labels = frozenset({"rain", "snow"})

    def __init__(self, config: RainConfig | None = None) -> None:
        self.config = config or RainConfig()
        self.model_path = Path(self.config.model_path or default_model_path())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.config.threads
        opts.inter_op_num_threads = 1
        # one session for the life of the detector; InferenceSession.run is thread-safe
        self.session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("feature_version", FEATURE_VERSION) != FEATURE_VERSION:
            raise ValueError(
                f"{self.model_path} was trained on feature version {meta.get('feature_version')}, "
                f"this plugin computes version {FEATURE_VERSION}: run `alarmcloud rain recalibrate` again (it starts "
                "from the shipped model) or remove [plugins.rain] model_path to use the shipped model"
            )
        n_in = self.session.get_inputs()[0].shape[1]
        if n_in != len(FEATURE_NAMES):
            raise ValueError(f"{self.model_path} expects {n_in} features, not {len(FEATURE_NAMES)}")
        self.classes = tuple(meta.get("classes", "clear,rain,snow").split(","))
        self.cnn, self.cnn_weight, cnn_meta = self._load_cnn(opts, meta)
        own = cnn_meta if self.cnn is not None else meta
        self.threshold = (model_threshold(own, self.cnn_path if self.cnn is not None else self.model_path)
                          if self.config.threshold is None else self.config.threshold)
        # the shift measured for the score the detector thresholds: the fused one's (in the CNN's metadata) when
        # the CNN is on and has one, else the MLP's
        self.score_shift = parse_shifts(own.get("score_shift", meta.get("score_shift", "")))
        if self.config.score_shift is not None:
            self.score_shift = dict(self.config.score_shift)
        self._input = self.session.get_inputs()[0].name
        log.info("rain model %s loaded (classes %s)%s", self.model_path, ",".join(self.classes),
                 f", fused with {self.cnn_path} (weight {self.cnn_weight:g})" if self.cnn is not None else "")

    def _load_cnn(self, opts: ort.SessionOptions,
                  mlp_meta: dict[str, str]) -> tuple[ort.InferenceSession | None, float, dict[str, str]]:
        """The spike-map CNN session, its weight and metadata; (None, 0, {}) when it is off (``mlp_meta``: the
        MLP's metadata)."""
        self.cnn_path = Path(self.config.cnn_path or default_model_path(CNN_FILE))
        weight = self.config.cnn_weight
        own_mlp = self.model_path.resolve() != default_model_path().resolve()
        if weight is None and self.config.cnn_path is None and own_mlp:
            # an MLP of the operator's own: fused as `alarmcloud rain recalibrate` measured it (the CNN weight in
            # its metadata), else (a recalibration of an older release, a model trained apart) alone
            weight = metadata_fraction(mlp_meta, "cnn_weight", self.model_path, 0.0)
        if weight == 0.0:
            return None, 0.0, {}
        session = ort.InferenceSession(str(self.cnn_path), opts, providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        inputs = session.get_inputs()
        if meta.get("input") != "brightening maps" or len(inputs) != 1 or inputs[0].shape[1] != MAP_FRAMES:
            raise ValueError(f"{self.cnn_path} is not a spike-map CNN of this plugin (train/train_cnn.py writes one)")
        if meta.get("feature_version", FEATURE_VERSION) != FEATURE_VERSION:
            raise ValueError(f"{self.cnn_path} was trained on feature version {meta.get('feature_version')}, this "
                             f"plugin computes version {FEATURE_VERSION}")
        if tuple(meta.get("classes", "clear,rain,snow").split(",")) != self.classes:
            raise ValueError(f"{self.cnn_path} has other classes than {self.model_path}")
        if weight is None:
            weight = metadata_fraction(meta, "fusion_weight", self.cnn_path, 0.5)
            if weight == 0.0:
                raise ValueError(f"{self.cnn_path}: fusion_weight 0 in its metadata turns the CNN off")
        measured_with = mlp_meta.get(CNN_NETWORK_KEY)
        if measured_with and not network_digest(self.cnn_path).startswith(measured_with):
            # still a valid model of this feature version, so it runs, but the refit and the threshold table
            # `alarmcloud rain recalibrate` printed were measured fused with another network (e.g. an upgrade
            # shipped a new CNN)
            log.warning("rain model %s was recalibrated fused with another spike-map CNN (network sha256:%s…) than "
                        "%s: its scores and threshold were measured with that one; run `alarmcloud rain recalibrate` "
                        "again", self.model_path, measured_with, self.cnn_path)
        return session, weight, meta

    @staticmethod
    def default_request(window_at: tuple[float, ...] = WINDOW_AT) -> FrameRequest:
        """Short windows of consecutive grey pictures at 640 px wide (copies of a picture skipped; of an interlaced
        stream, each frame's first field alone: a streak lasts one field); no keyframes."""
        return FrameRequest(keyframes=False, window_at=window_at, window_length=WINDOW_LENGTH, width=WIDTH,
                            color="gray", distinct=True, one_field=True)

    def frame_request(self) -> FrameRequest:
        """The frames this detector needs from every clip."""
        return self.default_request(tuple(self.config.window_at))

    def features(self, frames: ClipFrames) -> tuple[np.ndarray, list[float]]:
        """Feature rows (windows x F) and each window's start time; windows shorter than 5 frames are skipped."""
        x, _, times = self.analysis(frames, maps=False)
        return x, times

    def analysis(self, frames: ClipFrames, maps: bool = True) -> tuple[np.ndarray, list[np.ndarray], list[float]]:
        """Feature rows (windows x F), each window's brightening maps (with ``maps``) and start time; windows
        shorter than 5 frames are skipped."""
        rows, window_maps, times = [], [], []
        for window in frames.windows:
            if len(window) < 5:
                continue
            row, m = window_analysis([f.image for f in window], maps=maps)
            rows.append(row)
            if m is not None:
                window_maps.append(m)
            times.append(window[0].time)
        return (np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)), np.float32)), window_maps, times

    def _clear_when_quiet(self, probs: np.ndarray, x: np.ndarray) -> np.ndarray:
        quiet = quiet_windows(x)
        if quiet.any() and "clear" in self.classes:
            probs[quiet] = np.eye(len(self.classes))[self.classes.index("clear")]
        return probs

    def window_probs(self, x: np.ndarray) -> np.ndarray:
        """Per-window class probabilities of the MLP; windows without any transient brightening are clear by
        physics."""
        return self._clear_when_quiet(self.session.run(None, {self._input: x.astype(np.float32)})[0], x)

    def cnn_probs(self, x: np.ndarray, window_maps: list[np.ndarray]) -> np.ndarray | None:
        """Per-window class probabilities of the CNN (quiet windows clear, as for the MLP); None when it is off."""
        if self.cnn is None or not window_maps:
            return None
        probs = self.cnn.run(None, {"maps": np.stack(window_maps).astype(np.float32)})[0]
        return self._clear_when_quiet(probs, x)

    def cnn_weather(self, x: np.ndarray, window_maps: list[np.ndarray]) -> float | None:
        """The CNN's weather score of a clip from its windows' features and maps; None when the CNN is off."""
        probs = self.cnn_probs(x, window_maps)
        return None if probs is None else self.weather(probs)

    def weather(self, probs: np.ndarray) -> float:
        """The clip's weather probability from its windows' class probabilities (1 - their mean 'clear')."""
        clear = float(probs.mean(axis=0)[self.classes.index("clear")]) if "clear" in self.classes else 0.0
        return 1.0 - clear

    def _clip(self, frames: ClipFrames) -> tuple[float, dict[str, float], int, list[float]] | None:
        """``combine`` of the clip's usable windows and their start times; None without a usable window."""
        x, window_maps, times = self.analysis(frames, maps=self.cnn is not None)
        if not len(x):
            return None
        return (*self.combine(x, window_maps), times)

    def combine(self, x: np.ndarray, window_maps: list[np.ndarray]) -> tuple[float, dict[str, float], int]:
        """The clip's (uncalibrated) weather score, class probabilities and most weather-like window from its
        windows' features and maps. With the CNN fused, the weather score is ``fuse(mlp, cnn, weight)`` and the
        rain/snow split is the MLP's, scaled to it."""
        probs = self.window_probs(x)
        weather = self.weather(probs)
        per_window = 1.0 - probs[:, self.classes.index("clear")] if "clear" in self.classes else probs.sum(axis=1)
        by_class = dict(zip(self.classes, probs.mean(axis=0).tolist(), strict=True))
        cnn = self.cnn_probs(x, window_maps)
        if cnn is not None:
            weather = float(fuse(weather, self.weather(cnn), self.cnn_weight))
            per_window = per_window + 1.0 - cnn[:, self.classes.index("clear")]
            kinds = [c for c in self.classes if c != "clear"]
            total = sum(by_class[c] for c in kinds)
            by_class = {c: (1.0 - weather if c == "clear" else
                            weather * (by_class[c] / total if total > 0 else 1.0 / len(kinds)))
                        for c in self.classes}
        return weather, by_class, int(np.argmax(per_window))

    @staticmethod
    def calibrated(weather: float, codec: str | None, shifts: dict[str, float]) -> float:
        """``weather`` moved by the codec's shift in log-odds (``score_shift`` in the model metadata, measured by
        ``train/codec_calibration.py``): the model learnt from H.264, and H.265 gives weather and clear clips alike
        lower scores; shifted, a threshold lets through as many clear clips of either codec."""
        shift = shifts.get(codec or "", 0.0)
        if not shift or weather <= 0.0 or weather >= 1.0:
            return weather
        return float(1.0 / (1.0 + np.exp(-(logit(weather) + shift))))

    def scores(self, frames: ClipFrames) -> dict[str, float]:
        """Class probabilities for the clip: the mean over its windows (rain persists, distractors flicker), with
        the CNN fused as in ``analyze`` (before the codec's shift)."""
        clip = self._clip(frames)
        if clip is None:
            return {c: 1.0 if c == "clear" else 0.0 for c in self.classes}
        return clip[1]

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        """One finding (rain or snow, whichever is likelier) when the weather probability reaches the threshold."""
        threshold = float(frames.options.get("threshold", self.threshold))
        clip = self._clip(frames)
        if clip is None:
            return []
        raw, by_class, best, times = clip
        weather = self.calibrated(raw, frames.probe.video_codec, self.score_shift)
        frames.score = weather  # stored with the event also below the threshold (a missed rain's mark tunes it)
        if weather < threshold:
            return []
        label = "snow" if by_class.get("snow", 0.0) > by_class.get("rain", 0.0) else "rain"
        return [
            Finding(
                detector=self.name,
                label=label,
                score=weather,
                time=times[best],
                extra={k: round(v, 4) for k, v in by_class.items()} | {"windows": len(times)},
            )
        ]
