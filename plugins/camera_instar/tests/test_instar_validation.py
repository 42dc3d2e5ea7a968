"""Upload validation: real MP4 clips made with PyAV, probed by the core, judged per model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from alarmcloud.contracts import ClipProbe
from alarmcloud.testing import make_clip
from alarmcloud.video import probe
from alarmcloud_camera_instar.adapter import InstarAdapter
from alarmcloud_camera_instar.catalog import MODELS, find_model

BASE = ClipProbe(
    container="mov,mp4,m4a,3gp,3g2,mj2", video_codec="h264", width=1920, height=1080, fps=15.0, duration=18.0
)


@pytest.mark.parametrize(
    ("model", "changes", "accepted", "flags", "reason"),
    [
        ("IN-9008 Full HD", {}, True, (), ""),
        ("IN-9008 Full HD", {"height": 1088}, True, (), ""),  # macroblock padding
        ("IN-9008 Full HD", {"width": 640, "height": 352}, True, (), ""),  # sub stream
        ("IN-9008 Full HD", {"fps": 25.0, "duration": 15.2}, True, (), ""),  # chained 15 s clip
        ("IN-9008 Full HD", {"has_audio": True, "audio_codec": "pcm_alaw"}, True, (), ""),
        ("IN-9008 Full HD", {"duration": 60.0}, True, ("long_clip",), ""),
        ("IN-9008 Full HD", {"duration": 4000.0}, False, (), "18 s"),
        ("IN-9008 Full HD", {"duration": 0.4}, False, (), "too short"),
        ("IN-9008 Full HD", {"video_codec": "hevc"}, False, (), "h265"),
        ("IN-9008 Full HD", {"width": 2560, "height": 1440}, False, (), "2560x1440"),
        ("IN-9008 Full HD", {"fps": 60.0}, False, (), "60 fps"),
        ("IN-9008 Full HD", {"fps": 0.5}, False, (), "fps"),
        ("IN-9008 Full HD", {"container": "matroska,webm"}, False, (), "MP4"),
        ("IN-9008 Full HD", {"video_codec": "mpeg4"}, False, (), "mpeg4"),
        ("IN-9008 Full HD", {"has_audio": True, "audio_codec": "flac"}, False, (), "flac"),
        ("IN-9420 2K+", {"video_codec": "hevc", "width": 2560, "height": 1440}, True, (), ""),
        ("IN-9420 2K+", {"width": 640, "height": 360}, True, (), ""),
        ("IN-6014 HD", {"width": 1280, "height": 720, "fps": 25.0}, True, (), ""),
        ("IN-6014 HD", {}, False, (), "1920x1080"),  # a 720p camera never records Full HD
        ("IN-0000 Unknown", {}, False, (), "not a supported INSTAR model"),
    ],
)
def test_validation_table(
    model: str, changes: dict[str, object], accepted: bool, flags: tuple[str, ...], reason: str
) -> None:
    result = InstarAdapter().validate_clip(model, replace(BASE, **changes))  # type: ignore[arg-type]
    assert result.accepted is accepted, result.reason
    assert result.flags == flags
    assert reason in result.reason


def test_real_full_hd_clip_is_accepted(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "A_20240101.mp4", seconds=3, width=640, height=352, fps=15)
    result = InstarAdapter().validate_clip("IN-8015 Full HD", probe(clip))
    assert result.accepted, result.reason


def test_real_mkv_clip_is_rejected(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", seconds=3, width=640, height=352, fps=15)
    result = InstarAdapter().validate_clip("IN-8015 Full HD", probe(clip))
    assert not result.accepted
    assert "MP4" in result.reason


def test_real_clip_of_wrong_size_is_rejected(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=3, width=480, height=480, fps=15)
    result = InstarAdapter().validate_clip("IN-9408 2K+", probe(clip))
    assert not result.accepted
    assert "480x480" in result.reason


def test_catalogue_covers_three_generations() -> None:
    generations = {m.generation for m in MODELS}
    assert generations == {"hd", "fullhd", "wqhd"}
    assert find_model("in-9020") is find_model("IN-9020 Full HD")
    assert find_model("IN-9020 Full HD").ptz is True  # type: ignore[union-attr]
    assert find_model("IN-8401 2K+").ptz is False  # type: ignore[union-attr]
    assert "h265" in find_model("IN-9408 2K+").codecs  # type: ignore[union-attr]
    assert "h265" not in find_model("IN-9008 Full HD").codecs  # type: ignore[union-attr]
    assert list(InstarAdapter().models()) == list(MODELS)
