"""Frame windows of streams that are not camera-like: keyframes far apart (exported or re-encoded footage), B-frames."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
from alarmcloud import clipprobe, video
from alarmcloud.contracts import FrameRequest
from alarmcloud.testing import make_clip, moving_box_scene
from alarmcloud.video import decode, keyframe_times, window_plan

FPS = 25


def _encode(path: Path, seconds: float, options: dict[str, str]) -> Path:
    """A clip as a desktop encoder writes it (x264 defaults: B-frames, a keyframe every 250 frames)."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
        vs.codec_context.options = options
        for i in range(int(seconds * FPS)):
            img = moving_box_scene(i, i / FPS, 320, 180).astype(np.int16)
            img = img + np.random.default_rng(i).integers(-8, 9, img.shape[:2])[..., None]  # every frame differs
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    return path


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The frame as FFmpeg's scaler makes a grey picture of it (full range: 0 black, 255 white)."""
    return frame.to_ndarray(format="gray")


def _all_frames(path: Path) -> dict[float, np.ndarray]:
    """Every frame's luma, decoded from the start without skipping anything."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        return {round(float(f.pts * vs.time_base), 4): _luma(f) for f in c.decode(vs)}


REQ = FrameRequest(keyframes=True, max_keyframes=3, window_at=(0.25, 0.55, 0.8), window_length=6, color="gray")


@pytest.mark.parametrize("options", [{"preset": "veryfast"}, {"preset": "veryfast", "bf": "0"},
                                     {"preset": "veryfast", "g": "50"}], ids=["bframes-keyint250", "keyint250",
                                                                             "bframes-gop2s"])
def test_windows_of_footage_with_keyframes_far_apart_or_b_frames(tmp_path: Path, options: dict[str, str]) -> None:
    path = _encode(tmp_path / "export.mp4", 12, options)
    keys = keyframe_times(path)
    (cf,) = decode(path, [REQ])
    full = _all_frames(path)
    starts = [w[0].time for w in cf.windows]
    assert len(set(starts)) == 3  # three different windows, not one keyframe three times
    for pos, window in zip(REQ.window_at, cf.windows, strict=True):
        assert len(window) == 6
        assert all(np.isclose(b.time - a.time, 1 / FPS) for a, b in pairwise(window))  # consecutive, in order
        # it begins at the first keyframe after its position if one comes soon, else at the position itself
        t = pos * 12
        soon = [k for k in keys if t - 1e-6 <= k <= t + 3.0]
        assert np.isclose(window[0].time, soon[0] if soon else t, atol=1 / FPS)
        # and every frame is the picture a full decode shows at that time
        for f in window:
            assert np.array_equal(f.image, full[round(f.time, 4)])
    assert [f.keyframe for f in cf.keyframes] == [True] * len(cf.keyframes) and cf.keyframes


def test_camera_streams_start_their_windows_at_keyframes(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "cam.mp4", seconds=18, width=320, height=180, fps=15, gop_seconds=2.0)
    (cf,) = decode(path, [REQ])
    assert [w[0].time for w in cf.windows] == [6.0, 10.0, 16.0]
    assert all(w[0].keyframe for w in cf.windows)


def test_a_clip_decoded_without_its_probe_reads_its_packets_once(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``alarmcloud detect`` and recalibration pass no probe: the probe's scan places the windows, with the same
    result as a stored probe plus a scan of its own."""
    path = make_clip(tmp_path / "cam.mp4", seconds=18, width=320, height=180, fps=15, gop_seconds=2.0)
    clip = video.probe(path)
    (with_probe,) = decode(path, [REQ], clip)
    scans: list[str] = []
    real_scan = clipprobe._scan_packets
    monkeypatch.setattr(clipprobe, "_scan_packets", lambda c, vs, **kw: scans.append("scan") or real_scan(c, vs, **kw))
    (alone,) = decode(path, [REQ])
    assert scans == ["scan"]
    assert [[f.time for f in w] for w in alone.windows] == [[f.time for f in w] for w in with_probe.windows]
    assert [w[0].time for w in alone.windows] == [6.0, 10.0, 16.0]
    scans.clear()
    decode(path, [REQ], clip)  # a stored probe holds no keyframe times: one scan for them
    assert scans == ["scan"]


def test_window_plan() -> None:
    every_2s = [float(k) for k in range(0, 18, 2)]
    assert window_plan([0.25, 0.55, 0.8], 18.0, every_2s) == [(6.0, 6.0), (10.0, 10.0), (16.0, 16.0)]
    # keyframes 10 s apart: decode from the keyframe before the position, begin at the position
    assert np.allclose(window_plan([0.25, 0.55, 0.8], 12.0, [0.0, 10.0]), [(0.0, 3.0), (0.0, 6.6), (10.0, 10.0)])
    # no keyframe left near the end of a short clip
    assert np.allclose(window_plan([0.8], 6.0, [0.0, 2.0, 4.0]), [(4.0, 4.8)])
