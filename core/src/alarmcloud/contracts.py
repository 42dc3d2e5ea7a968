"""Contract base classes the core calls directly: camera adapters, detectors and integrations.

Plugins subclass these; hooks (``alarmcloud.hookspecs``) only register them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from alarmcloud.events import Event

if TYPE_CHECKING:  # numpy only names a type here: the probe child (``clipprobe``) runs without it
    import numpy as np

# ---------------------------------------------------------------- clips and frames


@dataclass(frozen=True)
class ClipProbe:
    """What the core learned about an uploaded file by probing its container (never trusted blindly)."""

    container: str
    video_codec: str | None
    width: int
    height: int
    fps: float
    duration: float
    has_audio: bool = False
    audio_codec: str | None = None
    size_bytes: int = 0
    bit_rate: int | None = None
    keyframe_interval: float | None = None
    #: ``width`` and ``height`` are the coded picture's (what a camera's encoder makes), which players show turned a
    #: quarter (the container's display matrix: a phone's portrait video, a camera mounted on its side)
    turned: bool = False

    def as_shown(self) -> ClipProbe:
        """This probe with the picture's size as players show it (``turned`` False)."""
        if not self.turned:
            return self
        return replace(self, width=self.height, height=self.width, turned=False)


@dataclass(frozen=True)
class FrameRequest:
    """Which frames a detector needs; the core decodes each clip once and serves every request.

    ``keyframes``: up to ``max_keyframes`` keyframes spread over the clip (cheap: no inter frames decoded).
    ``windows``: for each position in ``window_at`` (fractions of the clip duration, 0..1) ``window_length``
    consecutive frames starting at the first keyframe at or after that position when one comes within a few seconds
    (camera streams: nothing before it is decoded), else at the first frame at or after the position (streams with
    keyframes far apart; see ``alarmcloud.video.window_plan``). Streams with B-frames are served in display order.
    ``width``/``height``: target size (give one to keep the aspect ratio; none for the native size).
    ``distinct``: serve each window as consecutive *pictures*. Some cameras send every picture two or three times
    (they keep the stream's frame rate while the sensor delivers less, e.g. with a longer exposure at night), and
    footage converted to a standard rate repeats some pictures (20 -> 25 fps: every fourth twice); a window of such
    a stream holds a picture and its copy side by side, so nothing there changes for one frame only. With
    ``distinct`` the core recognises the copies from the window's first frames (``alarmcloud.video.copy_threshold``)
    and leaves them out, decoding on, up to three times as many frames, for such streams only.
    ``one_field``: from an interlaced stream (each frame two fields taken half a frame apart and woven line by line:
    analogue cameras' recorders, 1080i cameras) serve each frame's top field alone, scaled to the frame's size.
    Scaling the woven frame mixes the two moments: a moving edge combs, and a rain streak of one field shows on
    every other line, at half strength once scaled. Progressive streams are served as they are.
    """

    keyframes: bool = True
    max_keyframes: int = 10
    window_at: tuple[float, ...] = ()
    window_length: int = 0
    width: int | None = None
    height: int | None = None
    color: Literal["rgb", "gray"] = "rgb"
    distinct: bool = False
    one_field: bool = False


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is uint8 HxW (gray) or HxWx3 (RGB); ``time`` in seconds from clip start."""

    time: float
    image: np.ndarray
    keyframe: bool = False


@dataclass
class ClipFrames:
    """The frames served to one detector for one clip."""

    probe: ClipProbe
    keyframes: list[Frame] = field(default_factory=list)
    windows: list[list[Frame]] = field(default_factory=list)
    #: per-camera settings of this detector chosen by the owner (e.g. {"countries": ["DE", "AT"]})
    options: dict[str, Any] = field(default_factory=dict)
    #: set by ``Detector.analyze`` (optional): the clip's score that it compared with its threshold, also when the
    #: score stayed below it and no finding came out. The core stores it with the event (``scores`` in the API), so
    #: that an owner's mark on an event the detector missed can suggest the camera's threshold that would have
    #: caught it (``alarmcloud.tuning``).
    score: float | None = None


@dataclass(frozen=True)
class Finding:
    """A positive detection. ``box`` is (x1, y1, x2, y2) as fractions of the frame size."""

    detector: str
    label: str
    score: float
    time: float | None = None
    box: tuple[float, float, float, float] | None = None
    text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape (DESIGN.md): optional keys only when set."""
        out: dict[str, Any] = {"detector": self.detector, "label": self.label, "score": round(self.score, 4)}
        if self.text is not None:
            out["text"] = self.text
        if self.time is not None:
            out["time"] = round(self.time, 3)
        if self.box is not None:
            out["box"] = [round(v, 4) for v in self.box]
        return out


class Detector(ABC):
    """A detector: declares the frames it needs and analyses them purely (no I/O, no file access).

    Instances are built once per process and shared across threads: keep ``analyze`` free of mutable state
    (onnxruntime sessions are thread-safe for ``run``).
    """

    name: ClassVar[str]
    labels: ClassVar[tuple[str, ...]]
    #: labels that mean "false alarm" when the core's motion analysis sees no real mover (e.g. rain)
    false_alarm_labels: ClassVar[frozenset[str]] = frozenset()
    #: labels whose finding says that every mover the core's motion analysis may have seen in the clip is this
    #: cause (e.g. moths at the IR lamp): with such a finding and no object finding the clip is a false alarm even
    #: though something moved. Emit one only when the analysis found nothing else that moves: a missed burglar is
    #: far worse than a false alarm. Each of these labels should also be in ``false_alarm_labels``.
    mover_explaining_labels: ClassVar[frozenset[str]] = frozenset()
    #: a finding is only emitted at or above this score; a camera's number option ``threshold`` (when the detector
    #: declares one) replaces it for that camera's clips, lower or higher
    threshold: float = 0.5

    @abstractmethod
    def frame_request(self) -> FrameRequest:
        """The frames this detector needs from every clip."""

    @abstractmethod
    def analyze(self, frames: ClipFrames) -> list[Finding]:
        """Return positive findings only (score >= ``self.threshold``)."""


# ---------------------------------------------------------------- cameras


@dataclass(frozen=True)
class CameraModel:
    """One camera model an adapter supports."""

    name: str
    generation: str
    resolutions: tuple[tuple[int, int], ...]
    codecs: tuple[str, ...] = ("h264",)
    frame_rates: tuple[float, ...] = (15.0,)
    ptz: bool = False
    pir: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipValidation:
    """An adapter's answer: ``accepted`` or a human ``reason``; ``flags`` (e.g. ``long_clip``) feed fair use."""

    accepted: bool
    reason: str = ""
    flags: tuple[str, ...] = ()

    @classmethod
    def ok(cls, *flags: str) -> ClipValidation:
        return cls(True, "", tuple(flags))

    @classmethod
    def reject(cls, reason: str) -> ClipValidation:
        return cls(False, reason)


@dataclass(frozen=True)
class CameraAccess:
    """What an adapter needs to reach one camera; ``password`` is decrypted only for this call.

    ``address`` is the host already checked against the operator's ``camera_networks``.
    """

    id: str
    model: str
    address: str | None
    port: int = 80
    username: str | None = None
    password: str | None = None
    p2p_id: str | None = None
    https: bool = False

    def __repr__(self) -> str:  # never print the password
        return f"CameraAccess(id={self.id!r}, model={self.model!r}, address={self.address!r})"


@dataclass(frozen=True)
class LiveStream:
    """Stream and snapshot URLs; ``*_with_credentials`` variants are only for integrations allowed to use them."""

    rtsp_main: str
    rtsp_sub: str | None = None
    rtsp_third: str | None = None
    snapshot: str | None = None
    credentials_in_url: dict[str, str] = field(default_factory=dict)


CAMERA_ACTIONS = ("motion_detection", "alarm_email", "go_to_preset", "alarm_area", "area_sensitivity")


class CameraError(Exception):
    """A camera could not do what was asked; ``code`` is one of unreachable, refused, unsupported, invalid."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UploadTarget:
    """Where a camera should push its alarm clips (for one-click setup)."""

    ftp_host: str
    ftp_port: int
    username: str
    password: str
    http_url: str
    alarm_server_url: str | None = None
    ftps: bool = False


class CameraAdapter(ABC):
    """One camera brand: validation of its clips, control, live view."""

    brand: ClassVar[str]

    @abstractmethod
    def models(self) -> Sequence[CameraModel]:
        """The models this adapter supports."""

    @abstractmethod
    def validate_clip(self, model: str, probe: ClipProbe) -> ClipValidation:
        """Is this a video this camera model produces?"""

    @abstractmethod
    async def control(self, camera: CameraAccess, action: str, value: Any, area: int | None = None) -> None:
        """Run one of ``CAMERA_ACTIONS``; raise ``CameraError`` on failure."""

    @abstractmethod
    def live_stream(self, camera: CameraAccess) -> LiveStream:
        """Stream and snapshot URLs (without credentials; see ``LiveStream.credentials_in_url``)."""

    async def snapshot(self, camera: CameraAccess) -> bytes:
        """A JPEG from the camera (the core proxies it so browsers never see the password)."""
        raise CameraError("unsupported", f"{self.brand} cameras do not support snapshots")

    async def setup_upload(self, camera: CameraAccess, target: UploadTarget) -> list[str]:
        """Configure the camera to push alarm clips here; returns what was set (one-click setup)."""
        raise CameraError("unsupported", f"{self.brand} cameras do not support one-click setup")


# ---------------------------------------------------------------- integrations


class Integration(ABC):
    """A platform linked to customer accounts (IFTTT, Alexa, Google Home)."""

    name: ClassVar[str]
    #: OAuth scopes this platform may request
    scopes: ClassVar[tuple[str, ...]] = ()

    async def handle_event(self, event: Event) -> None:  # noqa: B027 - optional override
        """React to a core event (notify the platform); default: ignore."""

    async def forget_account(self, pseudonym: str) -> None:  # noqa: B027 - optional override
        """The account was deleted or unlinked: drop everything kept for this pseudonymous user."""
