"""Is an upload a recording this INSTAR model makes? (container, codec, size, frame rate, length)"""

from __future__ import annotations

from alarmcloud.contracts import ClipProbe, ClipValidation

from alarmcloud_camera_instar.catalog import find_model
from alarmcloud_camera_instar.config import InstarConfig

#: encoders pad or crop to macroblocks (1080 → 1088, 360 → 352): accept this much difference per side
SIZE_TOLERANCE_PX = 16
#: measured frame rates drift a little from the configured one (variable frame timing on Wi-Fi cameras)
FPS_TOLERANCE = 1.1
MIN_FPS = 1.0
#: audio the cameras can record next to the video (G.711 or AAC, depending on the audio setting)
AUDIO_CODECS = frozenset({"aac", "pcm_alaw", "pcm_mulaw", "adpcm_g726", "adpcm_g726le"})
_CODEC_ALIASES = {"hevc": "h265", "avc": "h264", "avc1": "h264"}


def validate_clip(model_name: str, probe: ClipProbe, config: InstarConfig | None = None) -> ClipValidation:
    """Accept only MP4 H.264/H.265 clips at a size, rate and length the camera records; flag long clips."""
    config = config or InstarConfig()
    model = find_model(model_name)
    if model is None:
        return ClipValidation.reject(f"'{model_name}' is not a supported INSTAR model")
    containers = {c.strip() for c in (probe.container or "").split(",")}
    if "mp4" not in containers:
        return ClipValidation.reject(f"container '{probe.container}' is not MP4, which INSTAR cameras upload")
    codec = _CODEC_ALIASES.get(probe.video_codec or "", probe.video_codec or "none")
    if codec not in model.codecs:
        return ClipValidation.reject(
            f"video codec {codec} is not recorded by the {model.name} (it records {', '.join(model.codecs)})"
        )
    if not _size_ok(probe.width, probe.height, model.resolutions):
        sizes = ", ".join(f"{w}x{h}" for w, h in model.resolutions)
        return ClipValidation.reject(
            f"frame size {probe.width}x{probe.height} is not one the {model.name} records ({sizes})"
        )
    max_fps = max(model.frame_rates) * FPS_TOLERANCE
    if not MIN_FPS <= probe.fps <= max_fps:
        return ClipValidation.reject(
            f"frame rate {probe.fps:g} fps is outside what the {model.name} records "
            f"({MIN_FPS:g}-{max(model.frame_rates):g} fps)"
        )
    if probe.has_audio and (probe.audio_codec or "") not in AUDIO_CODECS:
        return ClipValidation.reject(f"audio codec {probe.audio_codec} is not one INSTAR cameras record")
    if probe.duration < config.min_clip_s:
        return ClipValidation.reject(f"clip is {probe.duration:g} s long, too short for an alarm recording")
    if probe.duration > config.max_clip_s:
        return ClipValidation.reject(
            f"clip is {probe.duration:g} s long; INSTAR alarm clips are about 18 s "
            f"(at most {config.max_clip_s:g} s accepted)"
        )
    if probe.duration > config.standard_clip_max_s:
        return ClipValidation.ok("long_clip")
    return ClipValidation.ok()


def _size_ok(width: int, height: int, sizes: tuple[tuple[int, int], ...]) -> bool:
    return any(abs(width - w) <= SIZE_TOLERANCE_PX and abs(height - h) <= SIZE_TOLERANCE_PX for w, h in sizes)
