"""Faint plates (bleached by low sun, hazy, dirty): the second look searches the middle keyframe again with its
local contrast equalised (``faint``, on by default)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from alarmcloud.contracts import ClipFrames, ClipProbe, Finding, Frame
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig, equalize_frame


def _bright_scene_with_faint_plate(text: str, contrast: int) -> ClipFrames:
    """Three 1080p keyframes of a sunlit scene whose plate's characters are only ``contrast`` grey levels darker
    than its field (characters about 30 px tall: close enough to read)."""
    img = np.full((1080, 1920, 3), 215, np.uint8)
    img[600:] = 190
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)
    x, y = 900, 700
    cv2.rectangle(img, (x - 8, y - th - 8), (x + tw + 8, y + 8), (200, 200, 200), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (200 - contrast,) * 3, 2, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    probe = ClipProbe("mp4", "h264", 1920, 1080, 15.0, 6.0)
    return ClipFrames(probe, [Frame(t, img.copy(), True) for t in (0.0, 2.0, 4.0)], options={"countries": ["DE"]})


def test_a_plate_bleached_by_the_sun_is_read(detector: PlateDetector) -> None:
    [finding] = detector.analyze(_bright_scene_with_faint_plate("M AB 1234", 15))
    assert finding.text == "MAB1234"
    x0, y0, x1, y1 = finding.box
    assert x0 < 900 / 1920 < x1 and y0 < 690 / 1080 < y1  # where the plate is
    # the text detector does not see it as it is (nor does the zoom): without the faint search nothing is read
    without = PlateDetector(PlatesConfig(faint=False), engine=detector.engine)
    assert without.analyze(_bright_scene_with_faint_plate("M AB 1234", 15)) == []



def test_a_faint_plate_the_first_pass_boxed_but_found_too_flat_is_read(detector: PlateDetector) -> None:
    """The first pass may box a faint plate and drop its crop as too flat to read; that place stays open to the
    faint search, which reads it equalised (it was skipped as a place already read)."""
    frames = _bright_scene_with_faint_plate("M AB 1234", 18)
    middle = frames.keyframes[1]
    look = detector.read_frame(middle.image, middle.time, ["DE"])
    assert look.reads == [] and look.doubtful == []  # boxed (below), but nothing read there
    boxed = detector.engine.boxes(look.tmap)
    assert any(b.quad[:, 0].min() < 900 < b.quad[:, 0].max() and b.quad[:, 1].min() < 690 < b.quad[:, 1].max()
               for b in boxed)
    [finding] = detector.analyze(frames)
    assert finding.text == "MAB1234"

def test_a_flat_frame_stays_without_a_read(detector: PlateDetector) -> None:
    # equalising lifts noise as well as faint text: a featureless wall with sensor noise must give no plate
    rng = np.random.default_rng(3)
    img = np.clip(200 + rng.normal(0, 3, (1080, 1920, 3)), 0, 255).astype(np.uint8)
    probe = ClipProbe("mp4", "h264", 1920, 1080, 15.0, 6.0)
    frames = ClipFrames(probe, [Frame(t, img.copy(), True) for t in (0.0, 2.0, 4.0)], options={})
    assert detector.analyze(frames) == []


def test_equalize_frame_keeps_size_and_colour() -> None:
    img = np.zeros((64, 96, 3), np.uint8)
    img[:, :48] = (180, 60, 20)  # the EU band's blue (BGR)
    img[:, 48:] = (205, 205, 205)
    cv2.putText(img, "AB", (55, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (190, 190, 190), 2)
    out = equalize_frame(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    hsv = cv2.cvtColor(out[:, :40], cv2.COLOR_BGR2HSV)
    assert 95 <= np.median(hsv[..., 0]) <= 135 and np.median(hsv[..., 1]) > 140  # still saturated blue
    grey = cv2.cvtColor(out[:, 50:], cv2.COLOR_BGR2GRAY).astype(int)
    before = cv2.cvtColor(img[:, 50:], cv2.COLOR_BGR2GRAY).astype(int)
    assert grey.max() - grey.min() > before.max() - before.min()  # the faint letters stand out more


def test_a_sunlit_missouri_plate_is_read(
    detector: PlateDetector, photo_clip: Callable[..., Path], run_clip: Callable[..., list[Finding]]
) -> None:
    # a real photo: a pale plate in bright sun that the text detector's map barely shows
    clip = photo_clip("us/wts-lg-000113.jpg")
    assert [f.text for f in run_clip(clip, {"countries": ["US"]})] == ["AG4V3U"]
    without = PlateDetector(PlatesConfig(faint=False), engine=detector.engine)
    assert run_clip(clip, {"countries": ["US"]}, without) == []
