"""The probe names a clip's codecs as the codec, not as the decoder PyAV picked for it; the limited child that probes
every upload starts without numpy or Pillow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from alarmcloud.contracts import ClipProbe, FrameRequest
from alarmcloud.safeprobe import child_args, safe_probe
from alarmcloud.testing import make_clip
from alarmcloud.video import decode, probe
from PIL import Image


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


def test_the_upload_probe_child_imports_no_numpy(tmp_path: Path) -> None:
    """Every upload starts a new Python process to probe the clip and make its thumbnail (``safeprobe``): importing
    numpy there cost some 0.3 CPU-s an upload and Pillow 0.1, more than the probe's own work
    (``bench/ingest/RESULTS.md``)."""
    path = make_clip(tmp_path / "clip.mp4", seconds=2, width=320, height=176, fps=10, gop_seconds=1.0)
    thumb = tmp_path / "thumb.jpg"
    args = child_args("alarmcloud.safeprobe", str(path), str(thumb))
    run = subprocess.run([args[0], "-X", "importtime", *args[1:]], capture_output=True, text=True, check=True)
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "alarmcloud.clipprobe" in imported and "av" in imported
    assert not {name for name in imported if name.split(".")[0] in ("numpy", "PIL")}  # FFmpeg makes the JPEG
    assert ClipProbe(**json.loads(run.stdout)) == safe_probe(path) == probe(path)  # the child's answer is the probe's
    with Image.open(thumb) as img:
        assert img.format == "JPEG" and img.size == (480, 264) and img.info["jfif_density"] == (1, 1)
    assert b"Lavc" not in thumb.read_bytes()  # no comment naming the server's FFmpeg version
