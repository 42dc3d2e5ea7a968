"""The int8 text detector (``int8 = true``; shipped in the package, made by ``train/quantize.py``): cheaper, and it
still finds and reads plates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from alarmcloud import video
from alarmcloud.contracts import Finding
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig, _bgr
from alarmcloud_detect_plates.ocr import DET_MODEL, INT8_DET_MODEL, OcrEngine, model_dir, package_models


def test_the_int8_detector_ships_in_the_package_and_is_chosen_by_the_setting(detector: PlateDetector) -> None:
    assert detector.engine.det_file == model_dir() / DET_MODEL  # the default: rapidocr's float model
    int8 = PlateDetector(PlatesConfig(int8=True))
    assert int8.engine.det_file == package_models() / INT8_DET_MODEL
    assert 1_000_000 < int8.engine.det_file.stat().st_size < 5_000_000  # small, and not a Git LFS pointer


def test_the_int8_detector_reads_real_plates(photo_clip: Callable[..., Path]) -> None:
    int8 = PlateDetector(PlatesConfig(int8=True))
    for photo, plate, country in (("br/HPM9362.jpg", "HPM9362", "BR"), ("us/wts-lg-000113.jpg", "AG4V3U", "US")):
        clip = photo_clip(photo)
        frames = video.decode(clip, [int8.frame_request()], video.probe(clip))[0]
        frames.options = {"countries": [country]}
        findings: list[Finding] = int8.analyze(frames)
        assert [f.text for f in findings] == [plate]


def test_the_int8_map_agrees_with_the_float_map(detector: PlateDetector, photo_clip: Callable[..., Path]) -> None:
    clip = photo_clip("br/HPM9362.jpg")
    frame = video.decode(clip, [detector.frame_request()], video.probe(clip))[0].keyframes[0].image
    bgr = _bgr(frame)
    exact = detector.engine.text_map(bgr, 0.75).pred > 0.3
    cheap = OcrEngine(int8=True).text_map(bgr, 0.75).pred > 0.3
    assert exact.any()
    # text pixels of the two maps overlap almost wholly (a broken quantisation gives noise or nothing)
    assert np.logical_and(exact, cheap).sum() / np.logical_or(exact, cheap).sum() > 0.8
