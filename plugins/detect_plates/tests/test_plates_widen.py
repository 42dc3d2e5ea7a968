"""Plates whose first character the text detector's box cut: read again from a crop widened at the left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from alarmcloud.contracts import Finding
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig, completes_left, widened_left


@pytest.mark.parametrize(
    ("first", "wide"),
    [
        ("JB7392", "PJB7392"),  # the cut character read whole
        ("LFCW533", "4FCW533"),  # the strokes left of the cut taken for another character
    ],
)
def test_a_wider_read_completes_the_first_at_its_left_end(first: str, wide: str) -> None:
    assert completes_left(first, wide)


@pytest.mark.parametrize(
    ("first", "wide"),
    [
        ("2DA044", "M20A044"),  # a character more, but another one changed inside as well
        ("CJ1P5G", "CJIP5G"),  # a change inside: the recogniser's answer to another resize, no new evidence
        ("5L0D951", "5L0D95"),  # shorter
        ("UJ5E1A", "UJ5E1AX"),  # a character more at the right: the crop grew at the left only
        ("HPM9362", "HPM9362"),  # nothing new
        ("AB123", "XYAB123"),  # two characters more
    ],
)
def test_any_other_difference_does_not_complete(first: str, wide: str) -> None:
    assert not completes_left(first, wide)


def test_widened_left_grows_the_quad_along_its_own_left_edge() -> None:
    quad = np.array([[100, 50], [300, 50], [300, 90], [100, 90]], np.float32)  # 40 px tall
    np.testing.assert_allclose(widened_left(quad, 0.3), [[88, 50], [300, 50], [300, 90], [88, 90]])
    # a tilted line grows along its own direction, not the image's
    tilted = np.array([[0, 0], [80, 60], [74, 68], [-6, 8]], np.float32)  # 100 px long, 10 px tall
    np.testing.assert_allclose(widened_left(tilted, 0.5)[0], [-4, -3], atol=1e-4)
    np.testing.assert_allclose(widened_left(tilted, 0.5)[1], [80, 60])


def test_a_plate_whose_first_character_the_box_cut_is_read_whole(
    detector: PlateDetector, photo_clip: Callable[..., Path], run_clip: Callable[..., list[Finding]]
) -> None:
    # in this photo the text detector's map barely responds to the "P" under the seal: the box begins at the "J"
    clip = photo_clip("br/PJB7392.jpg")
    # (on the middle keyframe at 960 px; the outer ones, at 736, begin at the "P" here)
    narrow = PlateDetector(PlatesConfig(widen_left=0.0, outer_detect_side=0), engine=detector.engine)
    assert [f.text for f in run_clip(clip, det=narrow)] == ["JB7392"]  # a valid plate of another country
    [plate] = run_clip(clip)
    assert plate.text == "PJB7392"
    assert "BR" in plate.extra["countries"]


def test_a_parked_cars_plate_is_widened_once_per_clip_not_in_every_keyframe(
    detector: PlateDetector,
    photo_clip: Callable[..., Path],
    run_clip: Callable[..., list[Finding]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a parked car: every keyframe reads the same plate in the same place; its widened crop (one recognition per
    # keyframe) reads the same plate in the first, so the later keyframes do not try it again
    clip = photo_clip("br/JSP7678.jpg")
    widened: list[np.ndarray] = []

    def counted(quad: np.ndarray, margin: float) -> np.ndarray:
        widened.append(quad)
        return widened_left(quad, margin)

    monkeypatch.setattr("alarmcloud_detect_plates.detector.widened_left", counted)
    [plate] = run_clip(clip)
    assert plate.text == "JSP7678"
    assert plate.extra["reads"] == 3  # read in all three keyframes
    assert len(widened) == 1
