"""The int8 text detector (shipped in the package, made by ``train/quantize.py``): cheaper, and it still finds and
reads plates. By default it runs the second look's detections (``int8_second_look``); ``int8 = true`` runs it for
the first pass as well."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from alarmcloud import video
from alarmcloud.contracts import Finding
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig, _bgr
from alarmcloud_detect_plates.ocr import DET_MODEL, INT8_DET_MODEL, OcrEngine, model_dir, package_models


@pytest.fixture(scope="module")
def int8() -> PlateDetector:
    """One detector with the int8 text detector (its sessions built once for these tests)."""
    return PlateDetector(PlatesConfig(int8=True))


def test_the_int8_detector_ships_in_the_package_and_is_chosen_by_the_setting(
    detector: PlateDetector, int8: PlateDetector
) -> None:
    floats, cheap = model_dir() / DET_MODEL, package_models() / INT8_DET_MODEL
    # the default: rapidocr's float model for the first pass, the int8 one for the second look
    assert (detector.engine.det_file, detector.engine.det_second_file) == (floats, cheap)
    assert (int8.engine.det_file, int8.engine.det_second_file) == (cheap, cheap)
    assert int8.engine.det_second is int8.engine.det  # one session, not two of the same model
    assert 1_000_000 < cheap.stat().st_size < 5_000_000  # small, and not a Git LFS pointer
    exact = OcrEngine(int8_second_look=False)
    assert (exact.det_file, exact.det_second_file) == (floats, floats)


def test_the_second_look_detector_is_the_int8_model(detector: PlateDetector, int8: PlateDetector) -> None:
    img = np.full((544, 960, 3), 120, np.uint8)
    cv2.putText(img, "NO PARKING", (300, 250), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (30, 30, 30), 2)
    second = detector.engine.text_map(img, 1.0, second=True).pred
    assert np.array_equal(second, int8.engine.text_map(img, 1.0).pred)
    assert not np.array_equal(second, detector.engine.text_map(img, 1.0).pred)


def test_the_int8_detector_reads_real_plates(
    int8: PlateDetector, photo_clip: Callable[..., Path], run_clip: Callable[..., list[Finding]]
) -> None:
    for photo, plate, country in (("br/HPM9362.jpg", "HPM9362", "BR"), ("us/wts-lg-000113.jpg", "AG4V3U", "US")):
        assert [f.text for f in run_clip(photo_clip(photo), {"countries": [country]}, int8)] == [plate]


def test_the_int8_map_agrees_with_the_float_map(
    detector: PlateDetector, int8: PlateDetector, photo_clip: Callable[..., Path]
) -> None:
    clip = photo_clip("br/HPM9362.jpg")
    frame = video.decode(clip, [detector.frame_request()], video.probe(clip))[0].keyframes[0].image
    bgr = _bgr(frame)
    exact = detector.engine.text_map(bgr, 0.75).pred > 0.3
    cheap = int8.engine.text_map(bgr, 0.75).pred > 0.3
    assert exact.any()
    # text pixels of the two maps overlap almost wholly (a broken quantisation gives noise or nothing)
    assert np.logical_and(exact, cheap).sum() / np.logical_or(exact, cheap).sum() > 0.8
