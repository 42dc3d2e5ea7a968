"""The INSTAR model catalogue: which model belongs to which API generation and what it records."""

from __future__ import annotations

import re
from dataclasses import dataclass

from alarmcloud.contracts import CameraModel

HD = "hd"
FULL_HD = "fullhd"
WQHD = "wqhd"


@dataclass(frozen=True)
class Generation:
    """One INSTAR firmware/API generation; the facts come from ``reference/instar_cameras.md``."""

    key: str
    label: str
    #: "hi3510" = param.cgi with dash parameters (``-name=1``); "wqhd" = param.cgi without dashes (``area=1``)
    api: str
    cgi_path: str
    #: RTSP paths of the main, sub and third stream
    rtsp_paths: tuple[str, str, str]
    #: snapshot path of the main stream (credentials go in Basic auth, never in this path)
    snapshot_path: str
    #: frame sizes the camera encodes: main stream first, then the selectable sub/third stream sizes
    resolutions: tuple[tuple[int, int], ...]
    codecs: tuple[str, ...]
    #: the highest frame rates the encoder can be set to (50 Hz / 60 Hz power-line mode)
    frame_rates: tuple[float, ...]
    #: number of motion-detection areas the CGI accepts
    areas: int


GENERATIONS: dict[str, Generation] = {
    HD: Generation(
        key=HD,
        label="HD 720p",
        api="hi3510",
        cgi_path="/cgi-bin/hi3510/param.cgi",
        rtsp_paths=("/11", "/12", "/13"),
        snapshot_path="/tmpfs/snap.jpg",
        resolutions=((1280, 720), (640, 352), (320, 176)),
        codecs=("h264",),
        frame_rates=(25.0, 30.0),
        areas=4,
    ),
    FULL_HD: Generation(
        key=FULL_HD,
        label="Full HD 1080p",
        api="hi3510",
        cgi_path="/param.cgi",
        rtsp_paths=("/11", "/12", "/13"),
        snapshot_path="/tmpfs/snap.jpg",
        resolutions=((1920, 1080), (1280, 720), (640, 352), (320, 176)),
        codecs=("h264",),
        frame_rates=(25.0, 30.0),
        areas=4,
    ),
    WQHD: Generation(
        key=WQHD,
        label="WQHD 1440p (2K+)",
        api="wqhd",
        cgi_path="/param.cgi",
        rtsp_paths=("/livestream/11", "/livestream/12", "/livestream/13"),
        snapshot_path="/snap.cgi?chn=11",
        resolutions=((2560, 1440), (1920, 1080), (1280, 720), (640, 360)),
        codecs=("h264", "h265"),
        frame_rates=(25.0, 30.0),
        areas=8,
    ),
}

# (model, generation, pan-tilt, PIR sensor, indoor/outdoor)
_MODELS: tuple[tuple[str, str, bool, bool, str], ...] = (
    ("IN-5905 HD", HD, False, False, "outdoor"),
    ("IN-5907 HD", HD, False, False, "outdoor"),
    ("IN-6012 HD", HD, True, False, "indoor"),
    ("IN-6014 HD", HD, True, True, "indoor"),
    ("IN-7011 HD", HD, True, False, "outdoor"),
    ("IN-8003 Full HD", FULL_HD, False, True, "indoor"),
    ("IN-8015 Full HD", FULL_HD, True, True, "indoor"),
    ("IN-9008 Full HD", FULL_HD, False, True, "outdoor"),
    ("IN-9010 Full HD", FULL_HD, True, True, "outdoor"),
    ("IN-9020 Full HD", FULL_HD, True, True, "outdoor"),
    ("IN-8401 2K+", WQHD, False, True, "indoor"),
    ("IN-8403 2K+", WQHD, False, True, "indoor"),
    ("IN-8415 2K+", WQHD, True, True, "indoor"),
    ("IN-9408 2K+", WQHD, False, True, "outdoor"),
    ("IN-9420 2K+", WQHD, True, True, "outdoor"),
)


def _model(name: str, generation: str, ptz: bool, pir: bool, placement: str) -> CameraModel:
    gen = GENERATIONS[generation]
    return CameraModel(
        name=name,
        generation=generation,
        resolutions=gen.resolutions,
        codecs=gen.codecs,
        frame_rates=gen.frame_rates,
        ptz=ptz,
        pir=pir,
        extra={
            "generation_label": gen.label,
            "api": gen.api,
            "placement": placement,
            "alarm_areas": gen.areas,
        },
    )


#: every supported model, in catalogue order (the core exposes this through ``adapter.models()``)
MODELS: tuple[CameraModel, ...] = tuple(_model(*row) for row in _MODELS)

_NUMBER = re.compile(r"(\d{4})")
_BY_NUMBER = {_NUMBER.search(m.name).group(1): m for m in MODELS}  # type: ignore[union-attr]


def find_model(name: str | None) -> CameraModel | None:
    """The catalogue entry for a model name as customers type it ("IN-9008 Full HD", "in9008", "9008")."""
    if not name:
        return None
    match = _NUMBER.search(name)
    return _BY_NUMBER.get(match.group(1)) if match else None


def generation_of(model: CameraModel) -> Generation:
    """The API generation a catalogue model belongs to."""
    return GENERATIONS[model.generation]
