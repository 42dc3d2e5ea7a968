"""End to end on real H.264 clips: probe, decode once, analyse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from alarmcloud.contracts import Finding
from alarmcloud.testing import make_clip, moving_box_scene, static_scene
from alarmcloud_detect_plates.detector import PlateDetector


@pytest.mark.parametrize(("photo", "plate"), [("br/HPM9362.jpg", "HPM9362"), ("us/wts-lg-000193.jpg", "RZN384")])
def test_clip_of_a_real_car_yields_its_plate(
    photo: str, plate: str, photo_clip: Callable[..., Path], run_clip: Callable[..., list[Finding]]
) -> None:
    findings = run_clip(photo_clip(photo))
    assert [f.text for f in findings] == [plate]
    found = findings[0]
    assert found.label == "plate" and found.detector == "plates"
    assert found.score >= PlateDetector.threshold
    assert found.time is not None and found.box is not None
    x1, y1, x2, y2 = found.box
    assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


@pytest.mark.parametrize(
    ("photo", "plate"),
    [
        ("us/car9-1.jpg", "ASC7399"),  # read 4ASC7399: a character beside the plate read with it
        ("us/wts-lg-000095.jpg", "4FCW533"),  # read LFCW533: California's 1ABC234 with its 4 taken for an L
    ],
)
def test_a_us_camera_reads_the_usual_serial(
    photo: str, plate: str, photo_clip: Callable[..., Path], run_clip: Callable[..., list[Finding]]
) -> None:
    """Real US photos the recogniser reads one character off: the states' usual serials put them right."""
    assert [f.text for f in run_clip(photo_clip(photo), {"countries": "US"})] == [plate]


def test_camera_countries_option_filters_foreign_formats(
    photo_clip: Callable[..., Path], run_clip: Callable[..., list[Finding]]
) -> None:
    clip = photo_clip("br/HPM9362.jpg")
    assert [f.text for f in run_clip(clip, {"countries": ["BR"]})] == ["HPM9362"]
    # a Brazilian plate is no valid Italian, French or Dutch plate
    assert run_clip(clip, {"countries": ["IT", "FR", "NL"]}) == []


def _plate_scene(text: str) -> Callable[[int, float, int, int], np.ndarray]:
    """A grey driveway with a white plate carrying ``text`` that drives slowly to the right."""

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        img = np.full((h, w, 3), 90, np.uint8)
        img[h // 2 :, :] = 60
        x = int(w * 0.3 + t * 20)
        y = int(h * 0.6)
        cv2.rectangle(img, (x - 10, y - 45), (x + 330, y + 12), (245, 245, 245), -1)
        cv2.rectangle(img, (x - 10, y - 45), (x + 330, y + 12), (20, 20, 20), 3)
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (15, 15, 15), 4, cv2.LINE_AA)
        noise = np.random.default_rng(i).integers(-4, 5, size=img.shape)
        return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    return scene


def test_synthetic_german_plate_is_read_without_shared_data(
    tmp_path: Path, run_clip: Callable[..., list[Finding]]
) -> None:
    clip = make_clip(
        tmp_path / "de.mp4", seconds=3, width=1280, height=720, gop_seconds=1.0, scene=_plate_scene("M AB 1234")
    )
    findings = run_clip(clip, {"countries": ["DE", "AT"]})
    # "M AB 1234" is also a valid Austrian plate as written: both formats are named, no single country
    assert [(f.text, f.extra["countries"], f.extra.get("country")) for f in findings] == [
        ("MAB1234", ["DE", "AT"], None)
    ]
    assert [(f.text, f.extra.get("country")) for f in run_clip(clip, {"countries": ["DE"]})] == [("MAB1234", "DE")]


@pytest.mark.parametrize("scene", [static_scene, moving_box_scene])
def test_clip_without_a_plate_yields_nothing(
    scene: Callable[[int, float, int, int], np.ndarray], tmp_path: Path, run_clip: Callable[..., list[Finding]]
) -> None:
    clip = make_clip(tmp_path / "empty.mp4", seconds=3, width=1280, height=720, gop_seconds=1.0, scene=scene)
    assert run_clip(clip) == []


def test_real_photo_without_its_plate_yields_nothing(
    tmp_path: Path, plates_data: Path, labels: dict[str, dict[str, str]], run_clip: Callable[..., list[Finding]]
) -> None:
    from PIL import Image

    row = labels["br/JRV1942.jpg"]
    photo = Image.open(plates_data / row["file"]).convert("RGB")
    top = photo.crop((0, 0, photo.width, int(float(row["y"])) - 5)).resize((1280, 720))
    view = np.asarray(top)
    clip = make_clip(
        tmp_path / "noplate.mp4", seconds=3, width=1280, height=720, gop_seconds=1.0, scene=lambda i, t, w, h: view
    )
    assert run_clip(clip) == []


def test_camera_clock_on_screen_is_no_plate(tmp_path: Path, run_clip: Callable[..., list[Finding]]) -> None:
    plate = _plate_scene("M AB 1234")

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        img = plate(i, t, w, h)
        # date and time in opposite corners, as many cameras draw them: each one plate-length on its own
        cv2.putText(img, "17/05/2024", (30, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (250, 250, 250), 3, cv2.LINE_AA)
        stamp = f"08:41:{int(t):02d}"
        cv2.putText(img, stamp, (w - 260, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (250, 250, 250), 3, cv2.LINE_AA)
        return img

    clip = make_clip(tmp_path / "osd.mp4", seconds=3, width=1280, height=720, gop_seconds=1.0, scene=scene)
    assert [f.text for f in run_clip(clip)] == ["MAB1234"]


def test_a_date_without_separators_is_no_plate_on_a_us_camera(
    tmp_path: Path, run_clip: Callable[..., list[Finding]]
) -> None:
    """A camera drawing its date as 20240517: eight digits, and no US serial is eight characters long; leaving
    out a character a neighbour may have added (``formats.prefer_serials``) must not turn the date into a plate."""
    plate = _plate_scene("M AB 1234")

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        img = plate(i, t, w, h)
        cv2.putText(img, "20240517", (30, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (250, 250, 250), 4, cv2.LINE_AA)
        return img

    clip = make_clip(tmp_path / "date.mp4", seconds=3, width=1280, height=720, gop_seconds=1.0, scene=scene)
    assert [f.text for f in run_clip(clip, {"countries": "US"})] == ["MAB1234"]


def _plate_beside(tmp_path: Path, name: str, left: str, right: str) -> Path:
    """A clip of the plate ``M AB 1234`` with two other texts painted at the top, left and right."""
    plate = _plate_scene("M AB 1234")

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        img = plate(i, t, w, h)
        cv2.putText(img, left, (30, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 5, cv2.LINE_AA)
        cv2.putText(img, right, (w - 360, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 5, cv2.LINE_AA)
        return img

    return make_clip(tmp_path / f"{name}.mp4", seconds=3, width=1280, height=720, gop_seconds=1.0, scene=scene)


def test_price_on_a_sign_is_no_plate(tmp_path: Path, run_clip: Callable[..., list[Finding]]) -> None:
    """A price painted on a van or a billboard ("$59990", "59990%") is digits of plate length, not a plate."""
    clip = _plate_beside(tmp_path, "price", "$59990", "34990%")
    assert [f.text for f in run_clip(clip)] == ["MAB1234"]


def test_number_with_a_decimal_or_thousands_mark_is_no_plate(
    tmp_path: Path, run_clip: Callable[..., list[Finding]]
) -> None:
    """Prices and distances written with separators ("59.990", "12,50") are numbers, not plates."""
    clip = _plate_beside(tmp_path, "number", "59.990", "12,504")
    assert [f.text for f in run_clip(clip)] == ["MAB1234"]
