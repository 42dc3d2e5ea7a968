"""European plates, rendered and pasted into the real car photos: does the reader handle EU layouts?

Usage (from the repository root):
    nice uv run python plugins/detect_plates/eval/synth_eu.py [--stride 3] [--seed 1]

No European plate photos are in the repository, so plates of the nine supported European countries are drawn
with PIL (white or yellow plate, thin black border, the blue EU band with the ring of twelve stars and the
country code, the country's usual spacing, German seals, the Austrian stripes and crest, the French and Italian
right bands, the Swiss shields) in a condensed sans-serif system font (DejaVu Sans Condensed Bold or Liberation
Sans Narrow Bold; not FE-Schrift, Charles Wright or the other real plate fonts). Each is tilted a little, gets
dirt and a shadow, and replaces the labelled plate of a real photo of ``../shared/data/plates`` (the old plate
is painted out, the new one matched to the place's brightness and blurred to the photo's sharpness). The photo
then becomes a camera clip exactly as in ``evaluate.py`` and runs through the real detector, once with the
camera's country set and once with all countries. Seeded: the same arguments draw the same plates.

This checks how the reader handles European layouts (bands, seals, separators, shields); the fonts, the
printing and the pasting are not real, so the numbers are no measurement of real-world accuracy.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from alarmcloud_detect_plates.detector import PlateDetector, _bgr, candidates
from alarmcloud_detect_plates.ocr import crop_quad
from clips import (
    MODES,
    MOTIONS,
    OUTCOMES,
    CachedEngine,
    analyse,
    box_of,
    camera_clip,
    changed_config,
    char_accuracy,
    decode,
    default_data,
    load_rows,
    outcome,
    photo_scene,
    view_window,
)
from PIL import Image, ImageDraw, ImageFilter, ImageFont

COUNTRIES = ("DE", "AT", "CH", "NL", "FR", "IT", "ES", "PL", "UK")
#: more European countries (``--countries`` picks them): Belgian red print, the Portuguese yellow year band, the
#: Croatian crest, the Swedish, Danish, Czech, Romanian and Finnish layouts
MORE_COUNTRIES = ("BE", "PT", "HR", "SE", "DK", "CZ", "RO", "FI")
FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
)
#: the EU distinguishing sign printed in the band
BAND_CODE = {"DE": "D", "AT": "A", "NL": "NL", "FR": "F", "IT": "I", "ES": "E", "PL": "PL", "UK": "UK"}
#: Belgian plates are printed in red
BE_RED = (170, 24, 38)
EU_BLUE = (0, 51, 153)
EU_YELLOW = (255, 204, 0)
PLATE_WHITE = (246, 246, 242)
PLATE_YELLOW = (247, 201, 20)
INK = (20, 20, 22)
#: plate size in mm (width, height): the EU standard 520 x 110
PLATE_MM = (520, 110)
#: render scale (pixels per mm) before the plate is shrunk to the photo's scale
PX_MM = 2

_DE_DISTRICTS = ("M", "B", "K", "F", "S", "D", "HH", "DO", "KA", "HD", "BN", "MZ", "LEV", "GAP", "RO", "WOB", "OF")
_AT_DISTRICTS = ("W", "G", "L", "S", "I", "K", "BN", "GU", "LL", "SL", "KU", "MD", "VB", "WU")
_CH_CANTONS = ("ZH", "BE", "LU", "AG", "SG", "VD", "GE", "TI", "BS", "ZG", "FR", "VS")
_PL_DISTRICTS = ("WA", "WX", "KR", "PO", "GD", "DW", "LU", "SK", "EL", "KRA", "WPI", "DWR", "GDA", "SZC")
_IT_PROVINCES = ("RM", "MI", "TO", "NA", "FI", "BO", "VE", "GE", "PA", "BA")
_NL_SIDECODES = ("NN-LLL-N", "N-LLL-NN", "LL-NNN-L", "L-NNN-LL", "LLL-NN-L", "N-LL-NNN", "NNN-LL-N", "LL-NN-LL")
_NL_LETTERS = "BDFGHJKLNPRSTXZ"
_FR_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"
_IT_LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"
_ES_LETTERS = "BCDFGHJKLMNPRSTVWXYZ"
_PL_LETTERS = "ACEFGHJKLMNPRSTUVWXY"
_UK_LETTERS = "ABCDEFGHJKLMNOPRSTUVWXY"
_UPPER = "ABCDEFGHIJKLMNOPRSTUVWXYZ"
_SE_LETTERS = "ABCDEFGHJKLMNOPRSTUWXYZ"
_CZ_REGIONS = "ABCEHJKLMPSTUZ"
_HR_DISTRICTS = ("ZG", "ST", "RI", "OS", "ZD", "PU", "SB", "KA", "VZ", "DU")
_RO_COUNTIES = ("B", "CJ", "TM", "IS", "BV", "CT", "PH", "AG", "SV", "DJ")


@dataclass(frozen=True)
class PlateSpec:
    """One plate to draw: the country, the text it reads (no separators) and the printed groups.

    ``groups`` are strings printed with a small gap between them; ``"|"`` marks where the country puts its
    emblem (German seals, the Austrian crest, the Polish sticker) and ``"-"`` a printed hyphen.
    """

    country: str
    text: str
    groups: tuple[str, ...]
    yellow: bool = False
    band: str | None = None


def _pick(rng: np.random.Generator, items: str | tuple[str, ...]) -> str:
    return str(items[int(rng.integers(len(items)))])


def _chars(rng: np.random.Generator, alphabet: str, n: int) -> str:
    return "".join(_pick(rng, alphabet) for _ in range(n))


def _digits(rng: np.random.Generator, lo: int, hi: int) -> str:
    """A number of lo..hi digits without a leading zero."""
    n = int(rng.integers(lo, hi + 1))
    return str(int(rng.integers(10 ** (n - 1), 10**n)))


def random_plate(country: str, rng: np.random.Generator) -> PlateSpec:
    """A valid random plate of ``country`` in its usual spacing."""
    if country == "DE":
        district = _pick(rng, _DE_DISTRICTS)
        letters = _chars(rng, _UPPER, int(rng.integers(1, 3)))
        # the reader leaves plates of fewer than four characters alone (too little to tell them from other text)
        number = _digits(rng, max(1, 4 - len(district) - len(letters)), min(4, 8 - len(district) - len(letters)))
        return PlateSpec("DE", district + letters + number, (district, "|", letters, number), band="D")
    if country == "AT":
        district = _pick(rng, _AT_DISTRICTS)
        number = _digits(rng, 2, 5 - len(district) + 1)
        letters = _chars(rng, _UPPER, int(rng.integers(1, 3)))
        return PlateSpec("AT", district + number + letters, (district, "|", number, letters), band="A")
    if country == "CH":
        canton = _pick(rng, _CH_CANTONS)
        number = _digits(rng, 3, 6)
        return PlateSpec("CH", canton + number, (canton, number))
    if country == "NL":
        code = _pick(rng, _NL_SIDECODES)
        text = "".join(
            _chars(rng, _NL_LETTERS, 1) if c == "L" else _chars(rng, "0123456789", 1) if c == "N" else c for c in code
        )
        parts = text.split("-")
        return PlateSpec("NL", "".join(parts), (parts[0], "-", parts[1], "-", parts[2]), yellow=True, band="NL")
    if country == "FR":
        a, n, b = _chars(rng, _FR_LETTERS, 2), f"{int(rng.integers(1, 1000)):03d}", _chars(rng, _FR_LETTERS, 2)
        return PlateSpec("FR", a + n + b, (a, "-", n, "-", b), band="F")
    if country == "IT":
        a, n, b = _chars(rng, _IT_LETTERS, 2), f"{int(rng.integers(0, 1000)):03d}", _chars(rng, _IT_LETTERS, 2)
        return PlateSpec("IT", a + n + b, (a, n, b), band="I")
    if country == "ES":
        n, b = f"{int(rng.integers(0, 10000)):04d}", _chars(rng, _ES_LETTERS, 3)
        return PlateSpec("ES", n + b, (n, b), band="E")
    if country == "PL":
        district = _pick(rng, _PL_DISTRICTS)
        if len(district) == 2:
            rest = _digits(rng, 5, 5) if rng.random() < 0.5 else _digits(rng, 3, 3) + _chars(rng, _PL_LETTERS, 2)
        else:  # three-letter districts: five digits, or two digits and two letters (never four digits)
            rest = _digits(rng, 5, 5) if rng.random() < 0.5 else _digits(rng, 2, 2) + _chars(rng, _PL_LETTERS, 2)
        sticker = ("|",) if rng.random() < 0.5 else ()
        return PlateSpec("PL", district + rest, (district, *sticker, rest), band="PL")
    if country == "UK":
        a, age, b = _chars(rng, _UK_LETTERS, 2), _pick(rng, ("51", "02", "57", "12", "62", "19", "69", "24")), ""
        b = _chars(rng, _UK_LETTERS, 3)
        band = _pick(rng, ("UK", "GB", "")) or None
        return PlateSpec("UK", a + age + b, (a + age, b), yellow=bool(rng.random() < 0.5), band=band)
    if country == "BE":
        a, b = _chars(rng, _UPPER, 3), f"{int(rng.integers(0, 1000)):03d}"
        first = _pick(rng, "12")
        return PlateSpec("BE", first + a + b, (first, "-", a, "-", b), band="B")
    if country == "PT":
        a, n, b = _chars(rng, _UPPER, 2), f"{int(rng.integers(0, 100)):02d}", _chars(rng, _UPPER, 2)
        return PlateSpec("PT", a + n + b, (a, "-", n, "-", b), band="P")
    if country == "HR":
        district, b = _pick(rng, _HR_DISTRICTS), _chars(rng, _UPPER, int(rng.integers(1, 3)))
        n = _digits(rng, 3, 4)
        return PlateSpec("HR", district + n + b, (district, "|", n, "-", b), band="HR")
    if country == "SE":
        a = _chars(rng, _SE_LETTERS, 3)
        b = f"{int(rng.integers(0, 100)):02d}" + (
            _chars(rng, _SE_LETTERS, 1) if rng.random() < 0.5 else _digits(rng, 1, 1)
        )
        return PlateSpec("SE", a + b, (a, b), band="S")
    if country == "DK":
        a, n = _chars(rng, _UPPER, 2), f"{int(rng.integers(10000, 100000))}"
        return PlateSpec("DK", a + n, (a, n[:2], n[2:]), band="DK")
    if country == "CZ":
        head = _digits(rng, 1, 1) + _pick(rng, _CZ_REGIONS) + (_chars(rng, "0123456789ABCEHJKLMPSTUZ", 1))
        n = f"{int(rng.integers(0, 10000)):04d}"
        return PlateSpec("CZ", head + n, (head, n), band="CZ")
    if country == "RO":
        county = _pick(rng, _RO_COUNTIES)
        n = f"{int(rng.integers(1, 1000 if county == 'B' and rng.random() < 0.3 else 100)):02d}"
        b = _chars(rng, "ABCDEFGHJKLMNPRSTUVWXYZ", 3)
        return PlateSpec("RO", county + n + b, (county, n, b), band="RO")
    if country == "FI":
        a, n = _chars(rng, "ABCDEFGHIJKLMNOPRSTUVXYZ", 3), _digits(rng, 1, 3)
        return PlateSpec("FI", a + n, (a, "-", n), band="FIN")
    raise ValueError(f"no synthetic plates for {country}")


# ------------------------------------------------------------------ drawing


def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _text_image(text: str, font_path: str, height: int, colour: tuple[int, ...]) -> Image.Image:
    """``text`` as an RGBA image whose capital letters are ``height`` pixels high (tight box)."""
    font = _font(font_path, int(height * 1.45))
    x0, y0, x1, y1 = font.getbbox(text)
    img = Image.new("RGBA", (x1 - x0 + 4, y1 - y0 + 4), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((2 - x0, 2 - y0), text, font=font, fill=colour)
    bbox = img.getbbox() or (0, 0, img.width, img.height)
    img = img.crop(bbox)
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: tuple[int, ...]) -> None:
    pts = []
    for k in range(10):
        rad = r if k % 2 == 0 else r * 0.4
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    draw.polygon(pts, fill=fill)


def _eu_band(plate: Image.Image, code: str, font_path: str, x0: int, width: int) -> None:
    """The blue band with the ring of twelve yellow stars and the distinguishing sign, down the plate's whole
    left edge; stars and sign as on a one-line plate (110 mm), at the band's foot on a taller plate."""
    h = plate.height
    unit = min(h, PLATE_MM[1] * PX_MM)
    draw = ImageDraw.Draw(plate)
    draw.rectangle((x0, 0, x0 + width, h), fill=EU_BLUE)
    cx, cy, ring = x0 + width / 2, h - unit * 0.7, width * 0.3
    for k in range(12):
        a = 2 * math.pi * k / 12
        _star(draw, cx + ring * math.cos(a), cy + ring * math.sin(a), width * 0.06, EU_YELLOW)
    if code:
        sign = _text_image(code, font_path, round(unit * 0.28), (255, 255, 255, 255))
        if sign.width > width * 0.85:
            sign = sign.resize((round(width * 0.85), sign.height), Image.LANCZOS)
        plate.alpha_composite(sign, (round(cx - sign.width / 2), round(h - unit * 0.38)))


def _disc(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: tuple[int, ...], rng: np.random.Generator):
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=(60, 60, 60), width=1)
    # the printed details of a sticker: small sectors and a coat of arms
    for _ in range(int(rng.integers(3, 7))):
        a = rng.uniform(0, 2 * math.pi)
        rr = r * rng.uniform(0.45, 0.8)
        x, y = cx + rr * math.cos(a), cy + rr * math.sin(a)
        draw.ellipse((x - r * 0.12, y - r * 0.12, x + r * 0.12, y + r * 0.12), fill=(40, 40, 40))
    ink = tuple(int(v) for v in rng.integers(40, 200, 3))
    draw.rectangle((cx - r * 0.28, cy - r * 0.3, cx + r * 0.28, cy + r * 0.3), fill=ink)


def _shield(draw: ImageDraw.ImageDraw, x: float, y: float, w: float, h: float, colours: list[tuple[int, int, int]]):
    """A small coat-of-arms shield with horizontal stripes of ``colours``."""
    pts = [(x, y), (x + w, y), (x + w, y + h * 0.6), (x + w / 2, y + h), (x, y + h * 0.6)]
    mask = Image.new("L", draw.im.size, 0)
    ImageDraw.Draw(mask).polygon(pts, fill=255)
    n = len(colours)
    for k, colour in enumerate(colours):
        band = Image.new("L", draw.im.size, 0)
        ImageDraw.Draw(band).rectangle((x, y + h * k / n, x + w, y + h * (k + 1) / n), fill=255)
        draw.bitmap((0, 0), Image.fromarray(np.minimum(np.asarray(mask), np.asarray(band))), fill=colour)
    draw.polygon(pts, outline=(30, 30, 30))


def _swiss_shield(draw: ImageDraw.ImageDraw, x: float, y: float, w: float, h: float) -> None:
    _shield(draw, x, y, w, h, [(213, 43, 30)])
    cx, cy, a, b = x + w / 2, y + h * 0.42, w * 0.32, w * 0.1
    draw.rectangle((cx - a, cy - b, cx + a, cy + b), fill=(255, 255, 255))
    draw.rectangle((cx - b, cy - a, cx + b, cy + a), fill=(255, 255, 255))


def render_plate(spec: PlateSpec, rng: np.random.Generator, font_path: str | None = None) -> Image.Image:
    """The plate as an RGBA image at ``PX_MM`` pixels per mm, flat (no tilt, dirt or blur)."""
    font_path = font_path or _pick(rng, FONTS)
    w, h = PLATE_MM[0] * PX_MM, PLATE_MM[1] * PX_MM
    if spec.country == "CH":
        w = 500 * PX_MM
    bg = PLATE_YELLOW if spec.yellow else PLATE_WHITE
    plate = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(plate)
    radius = 5 * PX_MM
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius, fill=(*bg, 255), outline=(*INK, 255), width=PX_MM * 2)
    left, right = 6 * PX_MM, w - 6 * PX_MM
    band_w = 40 * PX_MM
    if spec.band:
        _eu_band(plate, spec.band, font_path, PX_MM * 2, band_w)
        left = PX_MM * 2 + band_w + 6 * PX_MM
    if spec.country in ("FR", "IT"):
        x0 = w - PX_MM * 2 - band_w
        draw.rectangle((x0, PX_MM * 2, w - PX_MM * 2, h - PX_MM * 2), fill=EU_BLUE)
        cx = x0 + band_w / 2
        if spec.country == "FR":
            # the region's logo (a coloured emblem) above, its number below
            logo = tuple(int(v) for v in rng.integers(80, 255, 3))
            draw.ellipse((cx - band_w * 0.3, h * 0.12, cx + band_w * 0.3, h * 0.45), fill=logo)
            number = _pick(rng, ("75", "13", "69", "33", "59", "2A", "06", "92", "31", "67"))
            label = _text_image(number, font_path, round(h * 0.26), (255, 255, 255, 255))
        else:
            year = _text_image(_pick(rng, ("19", "21", "23", "24")), font_path, round(h * 0.2), (*EU_YELLOW, 255))
            plate.alpha_composite(year, (round(cx - year.width / 2), round(h * 0.14)))
            label = _text_image(_pick(rng, _IT_PROVINCES), font_path, round(h * 0.24), (255, 255, 255, 255))
        if label.width > band_w * 0.85:
            label = label.resize((round(band_w * 0.85), label.height), Image.LANCZOS)
        plate.alpha_composite(label, (round(cx - label.width / 2), round(h * 0.58)))
        right = x0 - 5 * PX_MM
    if spec.country == "PT":
        # the yellow band at the right: year of registration above the month
        x0 = w - PX_MM * 2 - band_w
        draw.rectangle((x0, PX_MM * 2, w - PX_MM * 2, h - PX_MM * 2), fill=EU_YELLOW)
        cx = x0 + band_w / 2
        for text, top in (
            (_pick(rng, ("20", "21", "22", "23", "24")), 0.14),
            (f"{int(rng.integers(1, 13)):02d}", 0.56),
        ):
            label = _text_image(text, font_path, round(h * 0.28), (*INK, 255))
            plate.alpha_composite(label, (round(cx - label.width / 2), round(h * top)))
        right = x0 - 5 * PX_MM
    if spec.country == "AT":
        # red-white-red stripes along the top and bottom edge
        for y0 in (PX_MM * 2, h - PX_MM * 2 - 9 * PX_MM):
            draw.rectangle((left - 4 * PX_MM, y0, w - PX_MM * 3, y0 + 9 * PX_MM), fill=(200, 16, 46))
    if spec.country == "CH":
        _swiss_shield(draw, 8 * PX_MM, h * 0.22, 36 * PX_MM, h * 0.56)
        canton = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(int(rng.integers(1, 3)))]
        _shield(draw, w - 44 * PX_MM, h * 0.22, 36 * PX_MM, h * 0.56, [*canton, (255, 255, 255)][:2])
        left, right = 52 * PX_MM, w - 52 * PX_MM
    char_h = round(h * (0.62 if spec.country == "AT" else 0.68))
    _draw_groups(plate, spec, spec.groups, (left, right, 0.0, float(h)), char_h, font_path, rng)
    return plate


def render_two_line(spec: PlateSpec, rng: np.random.Generator, font_path: str | None = None) -> Image.Image:
    """A two-line plate (340 x 220 mm, square rear plates and motorcycles): the EU band down the left edge, the
    last groups of the text (at least three characters) on the second line and everything before them on the
    first (``M AB`` over ``1234``, ``AB12`` over ``CDE``, ``K`` over ``69628 O``)."""
    font_path = font_path or _pick(rng, FONTS)
    w, h = 340 * PX_MM, 220 * PX_MM
    bg = PLATE_YELLOW if spec.yellow else PLATE_WHITE
    plate = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(plate)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), 5 * PX_MM, fill=(*bg, 255), outline=(*INK, 255), width=PX_MM * 2)
    left, right = 8 * PX_MM, w - 8 * PX_MM
    if spec.band:
        band_w = 40 * PX_MM
        _eu_band(plate, spec.band, font_path, PX_MM * 2, band_w)
        left = PX_MM * 2 + band_w + 6 * PX_MM
    # the second line takes the last groups up to at least three characters (``1234``, ``69628 O``, ``90-J``)
    split = len(spec.groups)
    while split > 0 and sum(len(g) for g in spec.groups[split:] if g not in ("|", "-")) < 3:
        split -= 1
    top_groups, bottom_groups = list(spec.groups[:split]), list(spec.groups[split:])
    while top_groups and top_groups[-1] in ("|", "-"):
        top_groups.pop()
    while bottom_groups and bottom_groups[0] in ("|", "-"):
        bottom_groups.pop(0)
    char_h = round(h * 0.33)
    line_h = h * 0.46
    _draw_groups(plate, spec, tuple(top_groups), (left, right, h * 0.04, line_h), char_h, font_path, rng)
    _draw_groups(plate, spec, tuple(bottom_groups), (left, right, h * 0.5, line_h), char_h, font_path, rng)
    return plate


def _draw_groups(
    plate: Image.Image,
    spec: PlateSpec,
    groups: tuple[str, ...],
    area: tuple[float, float, float, float],
    char_h: int,
    font_path: str,
    rng: np.random.Generator,
) -> None:
    """Print ``groups`` centred in ``area`` (left, right, top, height) of the plate: text, hyphens, emblems."""
    draw = ImageDraw.Draw(plate)
    left, right, top, lh = area
    ink = BE_RED if spec.country == "BE" else INK
    # the printed groups: text, a hyphen, or the place of an emblem
    pieces: list[tuple[str, Image.Image | None, float]] = []
    for g in groups:
        if g == "|":
            pieces.append(("|", None, 46 * PX_MM if spec.country == "DE" else 30 * PX_MM))
        elif g == "-":
            pieces.append(("-", None, 14 * PX_MM))
        else:
            pieces.append(("t", _text_image(g, font_path, char_h, (*ink, 255)), 0.0))
    gap = 9 * PX_MM
    natural = sum(p[1].width if p[1] is not None else p[2] for p in pieces) + gap * (len(pieces) - 1)
    squeeze = min(1.0, (right - left) / natural)
    x = left + max(0.0, (right - left - natural * squeeze) / 2)
    y = top + (lh - char_h) / 2
    for kind, img, width in pieces:
        if kind == "t" and img is not None:
            img = img.resize((max(1, round(img.width * squeeze)), img.height), Image.LANCZOS)
            plate.alpha_composite(img, (round(x), round(y)))
            x += img.width
        else:
            width *= squeeze
            cx = x + width / 2
            if kind == "-":
                draw.rectangle((cx - width * 0.35, top + lh * 0.46, cx + width * 0.35, top + lh * 0.54), fill=ink)
            elif spec.country == "DE":
                sticker = _pick(rng, ("pink", "green", "orange", "blue", "yellow", "brown"))
                colour = {
                    "pink": (236, 140, 170),
                    "green": (60, 160, 80),
                    "orange": (240, 140, 30),
                    "blue": (70, 130, 210),
                    "yellow": (240, 210, 40),
                    "brown": (150, 95, 50),
                }[sticker]
                r = width * 0.36
                if rng.random() < 0.7:  # rear plate: inspection sticker above the registration seal
                    _disc(draw, cx, top + lh * 0.3, r, colour, rng)
                    _disc(draw, cx, top + lh * 0.7, r, (205, 205, 200), rng)
                else:  # front plate: the registration seal only
                    _disc(draw, cx, top + lh * 0.62, r, (205, 205, 200), rng)
            elif spec.country in ("AT", "HR"):  # the red-white-red crest, the Croatian one chequered
                stripes = [(200, 16, 46), (255, 255, 255)] * (2 if spec.country == "HR" else 1)
                _shield(draw, cx - width * 0.35, top + lh * 0.28, width * 0.7, lh * 0.44, stripes)
            else:  # the Polish legalisation sticker
                draw.rounded_rectangle(
                    (cx - width * 0.4, top + lh * 0.3, cx + width * 0.4, top + lh * 0.7),
                    3,
                    fill=(225, 225, 230),
                    outline=INK,
                )
                draw.rectangle(
                    (cx - width * 0.3, top + lh * 0.35, cx + width * 0.3, top + lh * 0.45),
                    fill=(210, 30, 45),
                )
            x += width
        x += gap * squeeze


def weather(plate: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Dirt spots and a soft shadow over part of the plate, then a small rotation and perspective tilt."""
    rgba = np.asarray(plate).astype(np.float32)
    h, w = rgba.shape[:2]
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    dirt = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(dirt)
    for _ in range(int(rng.integers(3, 12))):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(3, 18) * PX_MM
        draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(20, 70)))
    d = np.asarray(dirt.filter(ImageFilter.GaussianBlur(6 * PX_MM))).astype(np.float32)[..., None] / 255
    rgb = rgb * (1 - d) + np.array([95, 80, 60], np.float32) * d
    # a shadow edge (the bumper, the car's own body) darkening one side
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * math.pi)
    edge = (xx - w * rng.uniform(0.2, 0.8)) * math.cos(a) + (yy - h * rng.uniform(0.2, 0.8)) * math.sin(a)
    depth = rng.uniform(0.0, 0.45)
    rgb = rgb * (1 - depth / (1 + np.exp(-edge / (8 * PX_MM))))[..., None]
    out = np.concatenate([np.clip(rgb, 0, 255), alpha], axis=2).astype(np.uint8)
    # small tilt: corners moved by up to 3 % of the height / 1.5 % of the width, rotation up to 3 degrees
    pad = int(0.3 * h)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-1, 1, (4, 2)) * np.float32([0.015 * w, 0.04 * h])
    rot = math.radians(rng.uniform(-3, 3))
    c = np.float32([w / 2, h / 2])
    r = np.float32([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    dst = (src - c) @ r.T + c + jitter + pad
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(out, m, (w + 2 * pad, h + 2 * pad), flags=cv2.INTER_LINEAR)
    img = Image.fromarray(warped, "RGBA")
    return img.crop(img.getbbox())


def paste_plate(
    photo: Image.Image,
    box: tuple[float, float, float, float],
    plate: Image.Image,
    rng: np.random.Generator,
    height_mm: float = PLATE_MM[1],
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """``photo`` with its labelled plate painted out and ``plate`` in its place: sized to 0.55-0.7 of the box
    height (EU plates are ~4.7:1, the labelled ones 2:1 to 3:1), centred, matched to the place's brightness and
    blurred to the photo's scale; a plate taller than 110 mm (``height_mm``) in proportion. Returns the new photo
    and the new plate's box (x, y, w, h)."""
    x, y, bw, bh = box
    arr = np.asarray(photo.convert("RGB")).copy()
    region = arr[int(y) : int(y + bh), int(x) : int(x + bw)]
    white = float(np.percentile(region.mean(axis=2), 90)) if region.size else 200.0
    # paint the old plate out (its frame, state name and stickers would be other text)
    mask = np.zeros(arr.shape[:2], np.uint8)
    cv2.rectangle(mask, (int(x) - 2, int(y) - 2), (int(x + bw) + 2, int(y + bh) + 2), 255, -1)
    arr = cv2.inpaint(arr, mask, 5, cv2.INPAINT_TELEA)
    ph = (
        bh * rng.uniform(0.55, 0.7) * height_mm / PLATE_MM[1] * plate.height / (plate.height - 2)
    )  # the tilt adds a little margin
    pw = ph * plate.width / plate.height
    small = plate.resize((max(2, round(pw)), max(2, round(ph))), Image.LANCZOS)
    small = small.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    rgba = np.asarray(small).astype(np.float32)
    gain = float(np.clip(white / 245.0 * rng.uniform(0.9, 1.05), 0.35, 1.1))
    rgb = np.clip(rgba[..., :3] * gain + rng.normal(0, 2.0, rgba[..., :3].shape), 0, 255)
    a = rgba[..., 3:] / 255
    px, py = round(x + bw / 2 - pw / 2), round(y + bh / 2 - ph / 2)
    hh, ww = rgb.shape[:2]
    x0, y0 = max(0, px), max(0, py)
    x1, y1 = min(arr.shape[1], px + ww), min(arr.shape[0], py + hh)
    sub = arr[y0:y1, x0:x1].astype(np.float32)
    src, al = rgb[y0 - py : y1 - py, x0 - px : x1 - px], a[y0 - py : y1 - py, x0 - px : x1 - px]
    arr[y0:y1, x0:x1] = np.clip(sub * (1 - al) + src * al, 0, 255).astype(np.uint8)
    return Image.fromarray(arr), (float(px), float(py), float(ww), float(hh))


def eu_photo(
    photo: Image.Image,
    box: tuple[float, float, float, float],
    spec: PlateSpec,
    rng: np.random.Generator,
    two_line: bool = False,
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The photo with ``spec`` drawn (on two lines if asked), weathered and pasted over its labelled plate."""
    plate = render_two_line(spec, rng) if two_line else render_plate(spec, rng)
    return paste_plate(photo, box, weather(plate, rng), rng, 220 if two_line else PLATE_MM[1])


# ------------------------------------------------------------------ evaluation


def raw_reads(det: PlateDetector, rgb: np.ndarray, place: tuple[float, float, float, float]) -> list[str]:
    """What the recogniser reads (plate characters, no format fit) in the candidates over ``place`` (fractions
    of the frame), for the list of misreads."""
    bgr = _bgr(rgb)
    h, w = bgr.shape[:2]
    out = []
    for b in candidates(det.engine.boxes(det.text_map(bgr)), det.config.min_char_height, h):
        (x1, y1), (x2, y2) = b.quad.min(axis=0), b.quad.max(axis=0)
        if x2 / w < place[0] or x1 / w > place[2] or y2 / h < place[1] or y1 / h > place[3]:
            continue
        out.append(det.engine.recognize([crop_quad(bgr, b.quad)])[0].text)
    return sorted(set(out), key=len, reverse=True)[:4]


def row_photo(
    data: Path, row: dict[str, str], n: int, seed: int, country: str, grey: bool = False, two_line: bool = False
) -> tuple[PlateSpec, Image.Image, tuple[float, float, float, float]]:
    """The ``n``-th evaluation photo with a random plate of ``country`` pasted in (seeded by ``seed`` and ``n``),
    monochrome where ``grey``: the plate drawn, the photo and the plate's box in it."""
    rng = np.random.default_rng([seed, n])
    spec = random_plate(country, rng)
    img, box = eu_photo(Image.open(data / row["file"]).convert("RGB"), box_of(row), spec, rng, two_line)
    return spec, img.convert("L").convert("RGB") if grey else img, box


def main() -> None:
    """Render, paste, clip, read, and print the results tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--stride", type=int, default=3, help="use every n-th photo")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument(
        "--countries",
        default=",".join(COUNTRIES),
        help="comma-separated, of " + ",".join(COUNTRIES + MORE_COUNTRIES) + " (default: the first nine)",
    )
    ap.add_argument(
        "--grey", action="store_true", help="monochrome clips (night mode records grey: the band loses its colour)"
    )
    ap.add_argument("--two-line", action="store_true", help="two-line plates (340 x 220 mm, square rear plates)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a changed PlatesConfig field")
    ap.add_argument("--save", type=Path, help="folder to save the pasted photos in (for looking at them)")
    ap.add_argument(
        "--cache",
        type=Path,
        help="folder keeping the rendered clips and the models' outputs (as in evaluate.py; CPU-s are then no "
        "measurement)",
    )
    args = ap.parse_args()

    countries = [c.strip().upper() for c in args.countries.split(",")]
    rows = load_rows(args.data, args.stride)
    config = changed_config(args.set)
    det = PlateDetector(config, engine=CachedEngine.of(args.cache / "ocr", config) if args.cache else None)
    results: dict[str, dict[str, list[str]]] = {m: {} for m in MODES}
    chars: dict[str, dict[str, list[float]]] = {m: {} for m in MODES}
    misreads: list[str] = []
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, row in enumerate(rows):
            country = countries[n % len(countries)]
            spec, img, box = row_photo(args.data, row, n, args.seed, country, args.grey, args.two_line)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                img.crop((box[0] - box[2], box[1] - 2 * box[3], box[0] + 2 * box[2], box[1] + 3 * box[3])).save(
                    args.save / f"{n:03d}-{country}-{spec.text}.png"
                )
            motion = MOTIONS[n % len(MOTIONS)]
            kind = ("-grey" if args.grey else "") + ("-two" if args.two_line else "")
            clip = camera_clip(
                Path(tmp) / "c.mp4",
                photo_scene(img, motion, args.seconds, box),
                args.seconds,
                args.width,
                args.height,
                cache=args.cache / "clips" / f"eu-{args.seed}-{n:03d}-{country}-{spec.text}{kind}-{args.width}x"
                f"{args.height}-{args.seconds:g}s.mp4"
                if args.cache
                else None,
            )
            frames = decode(det, clip)
            line = []
            for mode, allowed in zip(MODES, (None, [country]), strict=True):
                findings, used = analyse(det, frames, allowed)
                cpu.append(used)
                texts = [f.text or "" for f in findings]
                got = outcome(spec.text, texts)
                results[mode].setdefault(country, []).append(got)
                chars[mode].setdefault(country, []).append(char_accuracy(spec.text, texts))
                line.append(f"{mode}: {got} {[(f.text, round(f.score, 2)) for f in findings]}")
            if any(" exact " not in x for x in line):
                frame = frames.keyframes[0]
                s, x0, y0, cw, ch = view_window(
                    img.size, box, motion, frame.time / args.seconds, args.width, args.height
                )
                place = (
                    (box[0] * s - x0) / cw,
                    (box[1] * s - y0) / ch,
                    ((box[0] + box[2]) * s - x0) / cw,
                    ((box[1] + box[3]) * s - y0) / ch,
                )
                raw = raw_reads(det, frame.image, place)
                misreads.append(
                    f"{country} {row['file']:<44} {motion:<5} truth={spec.text:<9} "
                    + " | ".join(line)
                    + f" | raw={raw}"
                )
                print(misreads[-1], flush=True)

    print()
    grey = ", monochrome" if args.grey else ""
    print(f"photos: {len(rows)} ({args.width}x{args.height}{grey}, {args.seconds:g} s, 15 fps, seed {args.seed})")
    print()
    print(f"| exact plate reads | {' | '.join(MODES)} |")
    print("|---|" + "---|" * len(MODES))
    for label, keys in [*[(c, [c]) for c in countries], ("**all**", countries)]:
        cells = []
        for m in MODES:
            got = [o for k in keys for o in results[m].get(k, [])]
            ok = got.count("exact")
            cells.append(f"{100 * ok / max(1, len(got)):.1f} % ({ok}/{len(got)})")
        print(f"| {label} | {' | '.join(cells)} |")
    print()
    print(f"| outcome | {' | '.join(MODES)} |")
    print("|---|" + "---|" * len(MODES))
    counts = {m: Counter(o for v in results[m].values() for o in v) for m in MODES}
    for kind in OUTCOMES:
        print(f"| {kind} | {' | '.join(str(counts[m][kind]) for m in MODES)} |")
    acc = {m: [a for v in chars[m].values() for a in v] for m in MODES}
    print(f"| character accuracy | {' | '.join(f'{100 * np.mean(acc[m]):.1f} %' for m in MODES)} |")
    print()
    print(f"detector CPU-s per {args.seconds:g} s clip (median): {np.median(cpu):.3f}")


if __name__ == "__main__":
    main()
