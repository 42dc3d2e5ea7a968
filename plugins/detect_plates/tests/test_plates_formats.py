"""Normalisation, fuzzy distance and per-country validation of plate text."""

from __future__ import annotations

import pytest
from alarmcloud_detect_plates import COUNTRY_FORMATS, fit_plate, normalize_plate, plate_distance, validate_plate

REQUIRED = {"DE", "AT", "CH", "NL", "FR", "IT", "ES", "PL", "UK", "US", "BR"}


def test_normalize_strips_case_separators_and_accents() -> None:
    assert normalize_plate("m-ab 1234") == "MAB1234"
    assert normalize_plate(" ab·12:cd ") == "AB12CD"
    assert normalize_plate("Ö-XY 12") == "OXY12"
    assert normalize_plate("") == ""


def test_plate_distance_is_levenshtein_on_normalised_text() -> None:
    assert plate_distance("M-AB 1234", "mab1234") == 0
    assert plate_distance("MAB1234", "MAB1235") == 1
    assert plate_distance("MAB1234", "MAB123") == 1
    assert plate_distance("MAB1234", "XAB1254") == 2
    assert plate_distance("", "ABC") == 3


def test_all_required_countries_have_formats() -> None:
    assert set(COUNTRY_FORMATS) >= REQUIRED


@pytest.mark.parametrize(
    ("country", "good", "bad"),
    [
        ("DE", "M AB 1234", "AB 0123"),
        ("AT", "W 12345 A", "W"),
        ("CH", "ZH 123456", "Z 1234567"),
        ("NL", "12-BDF-3", "12-ABC-3"),
        ("FR", "AB-123-CD", "A-123-CDE"),
        ("IT", "AB 123 CD", "ABC 12 D"),
        ("ES", "1234 BCD", "1234 ABE"),
        ("PL", "WA 12345", "W 1"),
        ("UK", "AB12 CDE", "AB123 CD"),
        ("US", "7ABC123", "ABCDEFG"),
        ("BR", "ABC1D23", "AB12345"),
    ],
)
def test_country_formats_accept_real_layouts_and_reject_others(country: str, good: str, bad: str) -> None:
    assert validate_plate(good, country)
    assert not validate_plate(bad, country)


def test_fit_fixes_look_alikes_by_position() -> None:
    # O read where Germany expects digits, 0 where it expects letters
    assert fit_plate("M0B 12O4", ["DE"]) == ("MOB1204", "DE", 2)
    # Brazil: three letters then four digits (or Mercosul letter in 5th place)
    assert fit_plate("0KM2371", ["BR"]) == ("OKM2371", "BR", 1)
    assert fit_plate("ABC1D23", ["BR"]) == ("ABC1D23", "BR", 0)
    # UK AB12 CDE with I/1 and S/5 swapped
    assert fit_plate("AB1Z C0E", ["UK"]) == ("AB12COE", "UK", 2)


def test_fit_respects_the_camera_countries() -> None:
    assert fit_plate("1234BCD", ["ES"]) == ("1234BCD", "ES", 0)
    assert fit_plate("1234BCD", ["IT", "NL", "CH"]) is None
    assert fit_plate("0000000", ["UK"]) is None  # more than two look-alike swaps is a guess
    assert fit_plate("ABCDEF", list(COUNTRY_FORMATS)) is None  # words without digits are never plates
    assert fit_plate("TEXAS", ["US"]) is None
