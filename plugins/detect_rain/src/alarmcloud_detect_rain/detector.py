"""The rain/snow detector: a few short grey frame windows -> physical features -> shipped ONNX MLP."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort
from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest
from pydantic import BaseModel, Field

from alarmcloud_detect_rain.features import FEATURE_NAMES, FEATURE_VERSION, WIDTH, WINDOW_LENGTH, window_features

log = logging.getLogger(__name__)

MODEL_FILE = "rain_mlp.onnx"
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


def model_threshold(metadata: dict[str, str], source: object = "the model") -> float:
    """The threshold a model was made for: ``threshold`` in its metadata (train.py writes the lowest with at most
    4 % false positives out of fold; recalibration keeps the base model's), else ``DEFAULT_THRESHOLD``."""
    text = metadata.get("threshold")
    if text is None:
        return DEFAULT_THRESHOLD
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{source}: threshold {text!r} in its metadata is not a number from 0 to 1")
    return value


def logit(p: float) -> float:
    """log(p / (1 - p)) for 0 < p < 1."""
    return float(np.log(p / (1.0 - p)))


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("alarmcloud_detect_rain") / "models" / MODEL_FILE))


class RainConfig(BaseModel):
    """Settings of the rain detector (``[plugins.rain]`` in the config file)."""

    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Emit a rain/snow finding when the weather probability reaches this. "
        "Default: the model's own (`threshold` in its metadata, chosen by train.py; 0.75 for the shipped model)."
    )
    model_path: Path | None = Field(
        None,
        description="ONNX model to use instead of the shipped one, e.g. the output of `alarmcloud rain "
        "recalibrate`; read once when the detector is built.",
    )
    window_at: tuple[float, ...] = Field(
        WINDOW_AT, description="Where the frame windows start, as fractions of the clip duration."
    )
    threads: int = Field(1, ge=1, le=8, description="onnxruntime intra-op threads (the MLP is tiny: keep 1).")
    score_shift: dict[str, float] | None = Field(
        None,
        description="Per video codec (as the probe names it, e.g. hevc), log-odds added to a clip's weather score "
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
        self.threshold = (model_threshold(meta, self.model_path) if self.config.threshold is None
                          else self.config.threshold)
        self.score_shift = parse_shifts(meta.get("score_shift", ""))
        if self.config.score_shift is not None:
            self.score_shift = dict(self.config.score_shift)
        self._input = self.session.get_inputs()[0].name
        log.info("rain model %s loaded (classes %s)", self.model_path, ",".join(self.classes))

    @staticmethod
    def default_request(window_at: tuple[float, ...] = WINDOW_AT) -> FrameRequest:
        """Short windows of consecutive grey pictures at 640 px wide (copies of a picture skipped); no keyframes."""
        return FrameRequest(
            keyframes=False, window_at=window_at, window_length=WINDOW_LENGTH, width=WIDTH, color="gray", distinct=True
        )

    def frame_request(self) -> FrameRequest:
        """The frames this detector needs from every clip."""
        return self.default_request(tuple(self.config.window_at))

    def features(self, frames: ClipFrames) -> tuple[np.ndarray, list[float]]:
        """Feature rows (windows x F) and each window's start time; windows shorter than 5 frames are skipped."""
        rows, times = [], []
        for window in frames.windows:
            if len(window) < 5:
                continue
            rows.append(window_features([f.image for f in window]))
            times.append(window[0].time)
        return (np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)), np.float32)), times

    def window_probs(self, x: np.ndarray) -> np.ndarray:
        """Per-window class probabilities; windows without any transient brightening are clear by physics."""
        probs = self.session.run(None, {self._input: x.astype(np.float32)})[0]
        quiet = quiet_windows(x)
        if quiet.any() and "clear" in self.classes:
            probs[quiet] = np.eye(len(self.classes))[self.classes.index("clear")]
        return probs

    def weather(self, probs: np.ndarray) -> float:
        """The clip's weather probability from its windows' class probabilities (1 - their mean 'clear')."""
        clear = float(probs.mean(axis=0)[self.classes.index("clear")]) if "clear" in self.classes else 0.0
        return 1.0 - clear

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
        """Class probabilities for the clip: the mean over its windows (rain persists, distractors flicker)."""
        x, _ = self.features(frames)
        if not len(x):
            return {c: 1.0 if c == "clear" else 0.0 for c in self.classes}
        probs = self.window_probs(x).mean(axis=0)
        return {c: float(p) for c, p in zip(self.classes, probs, strict=True)}

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        """One finding (rain or snow, whichever is likelier) when the weather probability reaches the threshold."""
        threshold = float(frames.options.get("threshold", self.threshold))
        x, times = self.features(frames)
        if not len(x):
            return []
        probs = self.window_probs(x)
        mean = probs.mean(axis=0)
        by_class = dict(zip(self.classes, mean.tolist(), strict=True))
        weather = self.calibrated(self.weather(probs), frames.probe.video_codec, self.score_shift)
        frames.score = weather  # stored with the event also below the threshold (a missed rain's mark tunes it)
        if weather < threshold:
            return []
        label = "snow" if by_class.get("snow", 0.0) > by_class.get("rain", 0.0) else "rain"
        best = int(np.argmax(1.0 - probs[:, self.classes.index("clear")]))
        return [
            Finding(
                detector=self.name,
                label=label,
                score=weather,
                time=times[best],
                extra={k: round(v, 4) for k, v in by_class.items()} | {"windows": len(x)},
            )
        ]
