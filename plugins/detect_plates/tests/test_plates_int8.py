"""The int8 text detector (``int8 = true``; shipped in the package, made by ``train/quantize.py``): cheaper, and it
still finds and reads plates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from alarmcloud import video
from alarmcloud.contracts import Finding
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig, _bgr
from alarmcloud_detect_plates.ocr import DET_MODEL, INT8_DET_MODEL, model_dir, package_models


@pytest.fixture(scope="module")
def int8() -> PlateDetector:
    """One detector with the int8 text detector (its sessions built once for these tests)."""
    return PlateDetector(PlatesConfig(int8=True))


def test_the_int8_detector_ships_in_the_package_and_is_chosen_by_the_setting(
    detector: PlateDetector, int8: PlateDetector
) -> None:
    assert detector.engine.det_file == model_dir() / DET_MODEL  # the default: rapidocr's float model
    assert int8.engine.det_file == package_models() / INT8_DET_MODEL
    assert 1_000_000 < int8.engine.det_file.stat().st_size < 5_000_000  # small, and not a Git LFS pointer


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
