"""European plates: the blue EU band (and the French and Italian right band) is no part of the plate text.

The plates are drawn by the synthetic EU evaluation (``eval/synth_eu.py``) in a system font and go through the
real clip path and detector.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from alarmcloud.contracts import Finding
from alarmcloud.testing import make_clip
from alarmcloud_detect_plates.detector import (
    StackedBox,
    _bgr,
    band_beside,
    candidate_crop,
    cut_bands,
    monochrome,
    stacked_pairs,
)
from alarmcloud_detect_plates.ocr import TextBox
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
import synth_eu  # noqa: E402
from clips import MOTIONS, load_rows  # noqa: E402

needs_fonts = pytest.mark.skipif(
    not all(Path(f).is_file() for f in synth_eu.FONTS), reason=f"plate fonts not installed: {synth_eu.FONTS}"
)

GERMAN = synth_eu.PlateSpec("DE", "MAB1234", ("M", "|", "AB", "1234"), band="D")
DUTCH = synth_eu.PlateSpec("NL", "12BDF3", ("12", "-", "BDF", "-", "3"), yellow=True, band="NL")
ITALIAN = synth_eu.PlateSpec("IT", "AB123CD", ("AB", "123", "CD"), band="I")
PORTUGUESE = synth_eu.PlateSpec("PT", "AB12CD", ("AB", "-", "12", "-", "CD"), band="P")
UK_YELLOW = synth_eu.PlateSpec("UK", "AB12CDE", ("AB12", "CDE"), yellow=True)


def _plate_crop(
    spec: synth_eu.PlateSpec, height: int = 48, body: tuple[int, int, int, int] = (70, 60, 55, 255)
) -> np.ndarray:
    """A flat rendered plate as a BGR crop of ``height`` pixels, with a margin of car body around it."""
    plate = synth_eu.render_plate(spec, np.random.default_rng(0), synth_eu.FONTS[0])
    bg = Image.new("RGBA", (plate.width + 40, plate.height + 40), body)
    bg.alpha_composite(plate, (20, 20))
    img = bg.convert("RGB").resize((round(bg.width * height / bg.height), height), Image.LANCZOS)
    return _bgr(np.asarray(img))


@needs_fonts
@pytest.mark.parametrize("spec", [GERMAN, DUTCH, ITALIAN, PORTUGUESE], ids=["DE", "NL", "IT", "PT"])
def test_eu_band_is_cut_off_the_crop(spec: synth_eu.PlateSpec) -> None:
    crop = _plate_crop(spec)
    out = cut_bands(crop)[0]
    h, w = crop.shape[:2]
    # the left band is about 0.36 plate heights wide; everything left of the text goes, the text stays
    assert 0.25 * h < (w - out.shape[1]) < (0.9 if spec.country in ("IT", "PT") else 0.6) * h
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
    blue = (hsv[..., 0] >= 95) & (hsv[..., 0] <= 135) & (hsv[..., 1] >= 90) & (hsv[..., 2] >= 40)
    blue_cols = blue.mean(axis=0) > 0.3
    assert not blue_cols.any()
    if spec.country == "PT":  # the yellow year band at the right goes too
        yellow = (hsv[..., 0] >= 18) & (hsv[..., 0] <= 35) & (hsv[..., 1] >= 90)
        assert not (yellow.mean(axis=0) > 0.3)[-out.shape[1] // 4 :].any()


def test_a_yellow_plate_keeps_its_field() -> None:
    crop = _plate_crop(UK_YELLOW)
    assert cut_bands(crop)[0].shape == crop.shape


def _lined_crop(ink: tuple[int, int, int], field: tuple[int, int, int] = (240, 240, 240)) -> np.ndarray:
    """A 40 x 200 BGR crop: a field with five character-like vertical strokes of ``ink``."""
    crop = np.full((40, 200, 3), field, np.uint8)
    for x in range(4, 200, 40):
        cv2.rectangle(crop, (x, 6), (x + 5, 34), ink, -1)
    return crop


def test_blue_characters_and_blue_plates_are_not_cut() -> None:
    # navy characters on white (many US plates): strokes are far narrower than a band
    navy = _lined_crop((120, 40, 20))
    assert cut_bands(navy)[0].shape == navy.shape
    # a plate whose whole field is blue with white characters: no band that ends
    blue = _lined_crop((250, 250, 250), field=(160, 60, 10))
    assert cut_bands(blue)[0].shape == blue.shape
    # the same field with a band: cut
    banded = _lined_crop((20, 20, 20))
    banded[:, :16] = (153, 51, 0)
    assert cut_bands(banded)[0].shape[1] <= 200 - 16


def _grey(crop: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def test_a_frame_without_colour_is_monochrome() -> None:
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, size=(720, 1280, 3), dtype=np.uint8)
    assert not monochrome(colour)
    grey = _grey(colour)
    assert monochrome(grey)
    # the little chroma noise a night-mode camera's encoder leaves is still monochrome
    assert monochrome(np.clip(grey.astype(np.int16) + rng.integers(-2, 3, size=grey.shape), 0, 255).astype(np.uint8))
    # a grey scene with one coloured car (a tenth of the frame) is not
    tinted = grey.copy()
    tinted[:200, :460] = (30, 30, 200)
    assert not monochrome(tinted)


@needs_fonts
@pytest.mark.parametrize("spec", [GERMAN, DUTCH, ITALIAN], ids=["DE", "NL", "IT"])
def test_in_a_monochrome_frame_the_band_is_cut_as_a_dark_field(spec: synth_eu.PlateSpec) -> None:
    """Night mode records grey: the band is no longer blue, only darker than the plate's field, with its sign
    light in it."""
    crop = _grey(_plate_crop(spec))
    h, w = crop.shape[:2]
    assert cut_bands(crop)[0].shape == crop.shape  # no blue: the colour rule finds no band
    out, cut = cut_bands(crop, grey=True)
    assert cut and 0.25 * h < (w - out.shape[1]) < 0.9 * h


@needs_fonts
@pytest.mark.parametrize(
    "spec",
    [
        UK_YELLOW,
        synth_eu.PlateSpec("UK", "MW12WMH", ("MW12", "WMH")),  # bold wide letters at both ends
        synth_eu.PlateSpec("US", "7ABC123", ("7ABC123",)),
    ],
    ids=["UK", "UK-MW", "US"],
)
def test_in_a_monochrome_frame_a_plate_without_band_keeps_its_characters(spec: synth_eu.PlateSpec) -> None:
    """The crop is the plate alone (as a text box that starts at its first character gives): a looser rule (a
    dark share of 0.3 per column, 0.4 on average) cuts the "A" of the small yellow plate here."""
    plate = synth_eu.render_plate(spec, np.random.default_rng(0), synth_eu.FONTS[0])
    grey = np.asarray(plate.convert("L"))
    for height in (48, 24, 16):  # a small plate's characters blur into dark blobs
        small = cv2.resize(grey, (round(plate.width * height / plate.height), height), interpolation=cv2.INTER_AREA)
        crop = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        assert not cut_bands(crop, grey=True)[1], height


@needs_fonts
@pytest.mark.parametrize(("n", "country"), [(106, "PL"), (68, "IT")])
def test_a_monochrome_clip_of_a_european_plate_reads_without_the_band_sign(
    n: int, country: str, tmp_path: Path, plates_data: Path, run_clip: Callable[..., list[Finding]]
) -> None:
    """Two clips of the grey synthetic EU evaluation (``synth_eu.py --grey --stride 3 --seed 1``): a Polish plate
    whose box was widened over the band ("PKRA30VU" before) and an Italian one whose right band's letter was
    read ("HWG961CY")."""
    rows = load_rows(plates_data, 3)
    spec, img, box = synth_eu.row_photo(plates_data, rows[n], n, 1, country, grey=True)
    scene = synth_eu.photo_scene(img, MOTIONS[n % len(MOTIONS)], 4, box)
    clip = synth_eu.camera_clip(tmp_path / "grey.mp4", scene, 4, 1280, 720)
    assert [f.text for f in run_clip(clip)] == [spec.text]
    assert [f.text for f in run_clip(clip, {"countries": [country]})] == [spec.text]


def _plate_clip(path: Path, plate: Image.Image, width: int, at: tuple[int, int]) -> Path:
    """A 3 s 720p clip of ``plate`` (``width`` pixels wide, top-left at ``at``) on a car-grey, lightly noisy view."""
    plate = plate.resize((width, round(width * plate.height / plate.width)), Image.LANCZOS)
    view = Image.new("RGB", (1280, 720), (85, 88, 92))
    view.paste(plate, at, plate)
    arr = np.asarray(view).astype(np.int16)

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        noise = np.random.default_rng(i).integers(-3, 4, size=arr.shape)
        return np.clip(arr + noise, 0, 255).astype(np.uint8)

    return make_clip(path, seconds=3, width=1280, height=720, gop_seconds=1.0, scene=scene)


@needs_fonts
def test_german_plate_with_band_and_seals_without_shared_data(
    tmp_path: Path, run_clip: Callable[..., list[Finding]]
) -> None:
    """A rendered German plate (band "D", seals) on a car-grey scene reads without the band's letter."""
    plate = synth_eu.weather(synth_eu.render_plate(GERMAN, np.random.default_rng(3)), np.random.default_rng(3))
    clip = _plate_clip(tmp_path / "de.mp4", plate, 300, (500, 420))
    assert [f.text for f in run_clip(clip, {"countries": ["DE"]})] == ["MAB1234"]
    # with every country allowed, the band leaves no US, Swiss or Brazilian format in play ("MAB1234" is a
    # valid US plate as written)
    (found,) = run_clip(clip)
    assert found.text == "MAB1234" and "DE" in found.extra["countries"]
    assert not {"US", "CH", "BR"} & set(found.extra["countries"])
    # a camera set to the group "EU" reads it as well
    assert [f.text for f in run_clip(clip, {"countries": ["EU"]})] == ["MAB1234"]


@needs_fonts
@pytest.mark.parametrize(
    ("spec", "photo", "seed"),
    [(GERMAN, "br/HPM9362.jpg", 1), (GERMAN, "us/wts-lg-000066.jpg", 1), (DUTCH, "us/wts-lg-000193.jpg", 7)],
)
def test_rendered_eu_plate_in_a_real_photo_reads_right(
    spec: synth_eu.PlateSpec,
    photo: str,
    seed: int,
    tmp_path: Path,
    plates_data: Path,
    labels: dict[str, dict[str, str]],
    run_clip: Callable[..., list[Finding]],
) -> None:
    """The plate pasted over a real car's plate, through the evaluation's clip path: camera country and all.
    (The German ones were read "BMAB1234", the band's "D" as a B, before the band was cut off.)"""
    img, box = synth_eu.eu_photo(
        Image.open(plates_data / photo).convert("RGB"),
        synth_eu.box_of(labels[photo]),
        spec,
        np.random.default_rng(seed),
    )
    clip = synth_eu.camera_clip(tmp_path / "eu.mp4", synth_eu.photo_scene(img, "still", 3, box), 3, 1280, 720)
    assert [f.text for f in run_clip(clip, {"countries": [spec.country]})] == [spec.text]
    assert [f.text for f in run_clip(clip)] == [spec.text]


def _box(x0: float, y0: float, x1: float, y1: float) -> TextBox:
    return TextBox(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32), 0.9)


def test_two_stacked_lines_pair_up_as_a_two_line_plate() -> None:
    top, bottom = _box(100, 100, 180, 130), _box(105, 136, 175, 166)
    (pair,) = stacked_pairs([top, bottom])
    assert isinstance(pair, StackedBox) and pair.lines == (top, bottom)
    # the pair's crop is one line: the top line, a gap, the bottom line, at the bottom line's height
    frame = np.full((300, 300, 3), 200, np.uint8)
    crop, banded = candidate_crop(frame, pair)
    assert crop.shape[0] == 30 and crop.shape[1] > 80 + 70 and not banded
    # a first line of one letter ("L" over "20234I") pairs too
    (single,) = stacked_pairs([_box(130, 100, 150, 130), bottom])
    assert single.lines[1] is bottom
    # side by side, far apart, of very different size, or a wall of text far wider than tall: no pair
    assert stacked_pairs([top, _box(200, 100, 280, 130)]) == []
    assert stacked_pairs([top, _box(105, 200, 175, 230)]) == []
    assert stacked_pairs([top, _box(105, 136, 175, 148)]) == []
    assert stacked_pairs([_box(0, 0, 400, 20), _box(0, 24, 400, 44)]) == []


@needs_fonts
def test_two_line_plate_is_read_as_one_plate(tmp_path: Path, run_clip: Callable[..., list[Finding]]) -> None:
    """A square German rear plate: "M AB" with the seals above "1234"."""
    plate = synth_eu.weather(synth_eu.render_two_line(GERMAN, np.random.default_rng(4)), np.random.default_rng(4))
    clip = _plate_clip(tmp_path / "de2.mp4", plate, 190, (520, 380))
    assert [f.text for f in run_clip(clip, {"countries": ["DE"]})] == ["MAB1234"]
    assert [f.text for f in run_clip(clip)] == ["MAB1234"]


@needs_fonts
def test_a_band_left_of_the_text_box_is_seen() -> None:
    """The text detector's box often starts after the band; the band beside it still says "European"."""
    scale = 48 / (synth_eu.PLATE_MM[1] * synth_eu.PX_MM + 40)
    text = _box(*(v * scale for v in (20 + 100, 20 + 35, 20 + 1000, 20 + 185)))  # right of the 80 px band
    assert band_beside(_plate_crop(GERMAN), text)
    assert not band_beside(_plate_crop(UK_YELLOW), text)  # no band
    white = synth_eu.PlateSpec("US", "7ABC123", ("7ABC123",))
    assert not band_beside(_plate_crop(white), text)
    # a blue car: blue on and on left of the text is no band
    assert not band_beside(_plate_crop(white, body=(*synth_eu.EU_BLUE, 255)), text)
    assert not band_beside(_plate_crop(GERMAN, body=(*synth_eu.EU_BLUE, 255)), text)
