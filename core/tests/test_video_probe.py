"""The probe names a clip's codecs as the codec, not as the decoder PyAV picked for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import make_clip
from alarmcloud.video import decode, probe


@pytest.mark.parametrize(("encoder", "suffix", "name"), [
    ("libx264", ".mp4", "h264"),
    ("libvpx-vp9", ".webm", "vp9"),
    ("libsvtav1", ".mp4", "av1"),  # decoded by dav1d: the decoder's own name was "libdav1d"
])
def test_the_probe_names_the_codec_and_the_clip_decodes(tmp_path: Path, encoder: str, suffix: str, name: str) -> None:
    """What a camera adapter checks (``validate_clip``), what an event shows and what a detector's score shift is
    keyed by (the rain detector's ``hevc``) is the codec: footage from a video site is VP9 or AV1."""
    path = make_clip(tmp_path / f"clip{suffix}", seconds=2, width=320, height=176, fps=10, gop_seconds=1.0,
                     codec=encoder)
    clip = probe(path)
    assert clip.video_codec == name and (clip.width, clip.height) == (320, 176)
    (frames,) = decode(path, [FrameRequest(keyframes=False, window_at=(0.5,), window_length=4, width=160,
                                           color="gray")], clip)
    assert [len(w) for w in frames.windows] == [4] and frames.windows[0][0].image.shape == (88, 160)


def test_the_audio_codec_is_named_alike(tmp_path: Path) -> None:
    clip = probe(make_clip(tmp_path / "a.mp4", seconds=1, width=160, height=96, audio=True))
    assert clip.has_audio and clip.audio_codec == "aac"
