"""Normalisation, fuzzy distance and per-country validation of plate text."""

from __future__ import annotations

import pytest
from alarmcloud_detect_plates import (
    COUNTRY_FORMATS,
    expand_countries,
    fit_plate,
    normalize_plate,
    plate_distance,
    validate_plate,
)
from alarmcloud_detect_plates.formats import fit_read, looks_like_timestamp

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
        ("BE", "1-ABC-234", "A-123-BCD"),
        ("LU", "AB 1234", "ABC 123"),
        ("DK", "AB 12 345", "AB 1234"),
        ("SE", "ABC 12D", "ABC 12I"),
        ("NO", "EL 12345", "E 12345"),
        ("FI", "ABC-123", "ABC-1234"),
        ("IE", "161-D-12345", "D-161-12345"),
        ("PT", "AA-00-AA", "AA-AA-AA"),
        ("CZ", "1A2 3456", "AB2 3456"),
        ("SK", "BA-123AB", "BA-1234A"),
        ("HU", "AA AA-123", "AA-1234"),
        ("HR", "ZG 1234-AB", "ZG-AB-1234"),
        ("RO", "CJ 12 ABC", "CJ 12 AB"),
        ("BG", "CA 1234 AB", "CA 1234 AD"),
        ("GR", "ABK-1234", "ABC-1234"),
        ("LT", "ABC 123", "AB 1234"),
        ("LV", "AB-1234", "ABC-1234"),
        ("EE", "123 ABC", "ABC 123"),
        ("LI", "FL 12345", "FX 12345"),
        ("RS", "BG 123-AB", "BG-AB-123"),
        ("SI", "LJ A1-234", "XX A1-234"),
        ("BA", "A12-E-345", "B12-E-345"),
        ("ME", "PG AB123", "PG 12345"),
        ("MK", "SK 1234 AB", "SK 123 AB"),
        ("AL", "AA 123 AA", "AA 1234 AA"),
        ("UA", "AA 1234 BC", "AA 1234 BD"),
        ("TR", "34 ABC 123", "99 ABC 123"),
        ("MT", "ABC 123", "AB 1234"),
        ("CY", "KAA 123", "KA 1234"),
        ("IS", "AB C12", "ABC 123"),
        ("MD", "ABC 123", "AB 123"),
        ("XK", "01-123-AB", "09-123-AB"),
        ("BY", "1234 AB-7", "1234 AD-7"),
        ("RU", "A 123 BC 77", "A 123 BD 77"),
        ("UK", "ABZ 1234", "ABC 1234"),  # Northern Ireland: a county code with Z or I
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


def _dists(*chars: dict[str, float] | str) -> list[dict[str, float]]:
    """Per-character probabilities: a plain character is read with certainty 0.99."""
    return [{c: 0.99} if isinstance(c, str) else c for c in chars]


def test_confident_read_is_not_bent_into_another_countrys_format() -> None:
    # "6LKR481": a US plate; the German layout would need 6 -> G, which the recogniser found 700x less likely
    read = _dists({"6": 0.998, "G": 0.0014}, *"LKR481")
    fit = fit_read(read, list(COUNTRY_FORMATS))
    assert fit is not None and fit.text == "6LKR481"
    assert fit_read(read, ["DE", "US"]) == fit_read(read, ["US"])


def test_unsure_character_is_settled_by_the_layout() -> None:
    # the recogniser is torn between 0 and O; Brazil's LLLNNNN needs a letter first
    read = _dists({"0": 0.55, "O": 0.44}, *"KM2371")
    fit = fit_read(read, ["BR", "US"])
    assert fit is not None and (fit.text, fit.country, fit.swaps) == ("OKM2371", "BR", 1)
    assert fit.score > 0.6


def test_emblem_between_characters_is_dropped_but_unsure_plate_characters_are_kept() -> None:
    # a state emblem read as a faint "L": almost all probability on symbols that are no plate characters
    emblem = fit_read(_dists(*"UG9", {"L": 0.02}, *"L8U"), ["US"])
    assert emblem is not None and (emblem.text, emblem.drops) == ("UG9L8U", 1)
    # an unsure "9" whose alternatives are plate characters stays in
    unsure = fit_read(_dists(*"SK5K", {"9": 0.43, "S": 0.22, "8": 0.05}, "V"), ["US"])
    assert unsure is not None and (unsure.text, unsure.drops) == ("SK5K9V", 0)


def test_a_twin_the_layout_asks_for_ranks_but_does_not_lower_the_score() -> None:
    # Austria's "W 4736 I": the font's final I is read as a sure "1"; the layout needs a letter there
    read = _dists(*"W4736", {"1": 0.97, "I": 0.02})
    fit = fit_read(read, ["AT"])
    assert fit is not None and (fit.text, fit.swaps) == ("W4736I", 1)
    assert fit.score > 0.95  # as sure as the read itself: O/0 and I/1 are one glyph in many plate fonts
    assert fit.cost > 1.0  # while ranking still prefers a layout that needs no swap
    # a swap between characters that look different still costs score
    other = fit_read(_dists(*"W4736", {"7": 0.97, "T": 0.02}), ["AT"])
    assert other is not None and other.text == "W4736T" and other.score < 0.6


def test_a_read_valid_in_several_formats_is_the_reading_the_recogniser_supports() -> None:
    # "FB5X8T" with its fifth character read 8 rather than B (60:35): a US plate as read, while Austria's
    # "FB 5 XBT" needs the B the recogniser ranked second. The fixed layout no longer overrules the recogniser.
    def read(fifth: dict[str, float]) -> list[dict[str, float]]:
        return _dists(*"FB5X", fifth, "T")

    us = fit_read(read({"8": 0.6, "B": 0.35}), list(COUNTRY_FORMATS))
    assert us is not None and (us.text, us.country, us.against) == ("FB5X8T", "US", 0.0)
    # the recogniser's preference reversed, the same characters are the Austrian plate (the fixed layout still
    # wins where the recogniser's own reading fits it)
    at = fit_read(read({"B": 0.6, "8": 0.35}), list(COUNTRY_FORMATS))
    assert at is not None and (at.text, at.country) == ("FB5XBT", "AT")
    # a camera set to Austria still gets the Austrian reading, at the cost of the replacement
    only_at = fit_read(read({"8": 0.6, "B": 0.35}), ["AT"])
    assert only_at is not None and only_at.text == "FB5XBT" and only_at.against > 0.5


def test_twins_are_still_settled_by_the_fixed_layout_with_every_country_allowed() -> None:
    # Austria's "K 69628 O" whose last O the recogniser takes for a 0 (60:40): O/0 look alike in many plate fonts,
    # so the recogniser's preference between them is no evidence against the letter the layout needs
    fit = fit_read(_dists(*"K69628", {"0": 0.6, "O": 0.4}), list(COUNTRY_FORMATS))
    assert fit is not None and (fit.text, fit.country, fit.against) == ("K69628O", "AT", 0.0)
    # ... unless the recogniser is sure: a twin still costs up to TWIN_COST, more than a generic layout's penalty
    sure = fit_read(_dists(*"K69628", {"0": 0.95, "O": 0.03}), list(COUNTRY_FORMATS))
    assert sure is not None and sure.text == "K696280"


def test_an_austrian_reading_needs_a_district_code_to_win_a_tie_with_every_country_allowed() -> None:
    # "UH1F0F" whose fifth character the recogniser takes for the letter O: valid as Austria's "UH 1 FOF" and as a
    # US plate; no Austrian district is called UH, so the US reading wins the tie
    def read(first: str) -> list[dict[str, float]]:
        return _dists(*first, "1", "F", {"O": 0.99, "0": 0.01}, "F")

    us = fit_read(read("UH"), list(COUNTRY_FORMATS))
    assert us is not None and (us.text, us.country) == ("UH1F0F", "US")
    # Graz-Umgebung's GU is a district: the same read is the Austrian plate
    at = fit_read(read("GU"), list(COUNTRY_FORMATS))
    assert at is not None and (at.text, at.country) == ("GU1FOF", "AT")
    # an Austrian camera still reads the plate as Austrian, district code or not
    only_at = fit_read(read("UH"), ["AT"])
    assert only_at is not None and (only_at.text, only_at.country) == ("UH1FOF", "AT")


def test_us_plates_keep_the_letters_i_and_q_and_take_o_as_zero() -> None:
    # California issues I and Q (7CID930, 5TQY867); the letter O is read as 0 (many states leave it out)
    assert fit_read(_dists(*"7CID930"), ["US"]).text == "7CID930"  # type: ignore[union-attr]
    assert fit_read(_dists(*"5TQY867"), ["US"]).text == "5TQY867"  # type: ignore[union-attr]
    assert fit_read(_dists(*"OSG719"), ["US"]).text == "0SG719"  # type: ignore[union-attr]
    # the recogniser still decides between I and 1: a sure 1 stays, even where California's 1ABC234 wants a letter
    sure = fit_read(_dists(*"7C", {"1": 0.9, "I": 0.1}, *"D930"), ["US"])
    assert sure is not None and sure.text == "7C1D930"
    # ... while a doubtful one takes the usual serial's letter
    doubt = fit_read(_dists(*"7C", {"1": 0.6, "I": 0.4}, *"D930"), ["US"])
    assert doubt is not None and doubt.text == "7CID930"


def test_a_us_read_prefers_the_usual_serials_where_the_recogniser_doubts() -> None:
    # California's "4GLS168" whose 4 the recogniser takes for an L (60:30): LGLS168 is in no usual pattern
    def read(first: dict[str, float]) -> list[dict[str, float]]:
        return _dists(first, *"GLS168")

    fit = fit_read(read({"L": 0.6, "4": 0.3}), ["US"])
    raw = fit_read(read({"L": 0.6, "4": 0.3}), ["US", "DE"])  # every country: Germany's L GS 168 as read
    assert fit is not None and (fit.text, fit.country) == ("4GLS168", "US")
    assert raw is not None and (raw.text, raw.country) == ("LGLS168", "DE")
    # the preference pays for the replacement: as sure as the reading itself, so it is not lost under the threshold
    assert fit.score == pytest.approx(raw.score)
    # a recogniser sure of its L (12:1) keeps it: the preference is worth about 1:4.5 (SERIAL_UNUSUAL_COST)
    sure = fit_read(read({"L": 0.6, "4": 0.05}), ["US"])
    assert sure is not None and sure.text == "LGLS168"
    # a read in a usual pattern is never bent into another one (Missouri's AB1C2D, New York's ABC1234)
    for text in ("FB5X8T", "KDB7364"):
        kept = fit_read(_dists(*text), ["US"])
        assert kept is not None and kept.text == text


def test_a_character_joined_to_a_us_plate_is_left_out() -> None:
    # no standard US serial has eight characters: a sticker or frame letter beside the plate read with it
    fit = fit_read(_dists(*"4ASC7399"), ["US"])
    assert fit is not None and (fit.text, fit.drops, fit.kept) == ("ASC7399", 1, tuple(range(1, 8)))
    assert fit.score == pytest.approx(0.99)  # the score of the characters kept
    # either end; where both ends leave a usual serial (4ASC739: California), the less sure one goes
    assert fit_read(_dists(*"5VCF203", {"4": 0.7}), ["US"]).text == "5VCF203"  # type: ignore[union-attr]
    assert fit_read(_dists({"4": 0.7}, *"ASC7399"), ["US"]).text == "ASC7399"  # type: ignore[union-attr]
    # eight characters that leave no usual serial stay as read (a vanity plate)
    vanity = fit_read(_dists(*"GR8TDAY1"), ["US"])
    assert vanity is not None and vanity.text == "GR8TDAY1"
    # the country is chosen with the read as it is: eight characters Russia issues stay Russian with every country
    ru = fit_read(_dists(*"A123BC77"), ["US", "RU"])
    assert ru is not None and (ru.text, ru.country) == ("A123BC77", "RU")


def test_unlikely_reads_score_low() -> None:
    sure = fit_read(_dists(*"MAB1234"), ["DE"])
    shaky = fit_read(_dists(*"MAB", {"1": 0.4, "7": 0.3}, {"2": 0.5}, "3", "4"), ["DE"])
    assert sure is not None and shaky is not None
    assert sure.score > 0.95 > 0.8 > shaky.score


@pytest.mark.parametrize(
    ("text", "clock"),
    [
        ("20240517", True),  # YYYYMMDD
        ("17052024", True),  # DDMMYYYY
        ("084155", True),  # HHMMSS
        ("2024051", True),  # a date cut off
        ("1268205", False),  # a Californian plate
        ("78188", False),
        ("MAB1234", False),
        ("995577", False),  # no time of day
        ("20I40513", True),  # a date the Irish layout turned into a plate ("20 I 40513")
        ("2O24O517", True),
    ],
)
def test_dates_and_times_are_recognised(text: str, clock: bool) -> None:
    assert looks_like_timestamp(text) is clock


def test_tightened_formats_reject_what_the_country_never_issues() -> None:
    assert not validate_plate("AB 123 CD", "NL")  # six characters only, no vowels
    assert validate_plate("XX 123456", "US") and not validate_plate("XX 123456", "CH")  # no canton XX
    assert validate_plate("ZH 12345", "CH")
    assert not validate_plate("AI 123 CD", "IT")  # I, O, Q, U are not issued
    assert validate_plate("KR 1AC23", "PL") and not validate_plate("KR 1AB23", "PL")  # no B in the serial


def test_country_groups_and_aliases_expand_to_formats() -> None:
    europe = expand_countries(["EU"])
    assert "DE" in europe and "SE" in europe and "CH" in europe and "UK" in europe
    assert {"MT", "CY", "IS", "MD", "BY", "RU", "XK"} <= set(europe)  # every EU member and the rest of Europe
    assert "US" not in europe and "BR" not in europe
    assert expand_countries("gb, de ,XX") == ["UK", "DE"]  # a string, the ISO code of the UK, an unknown code
    assert expand_countries(["ALL"]) == list(COUNTRY_FORMATS)
    assert expand_countries(["DE", "EU"])[0] == "DE" and len(set(expand_countries(["DE", "EU"]))) == len(europe)
    assert expand_countries(None) == [] and expand_countries(["XX"]) == []


def test_northern_irish_and_cyrillic_letter_rules() -> None:
    assert validate_plate("IA 123", "UK") and validate_plate("KJI 12", "UK") and validate_plate("AZ 1", "UK")
    assert not validate_plate("IA 0123", "UK")  # numbers do not start with 0
    assert fit_plate("A123BC77", ["RU"]) == ("A123BC77", "RU", 0)
    assert not validate_plate("A 123 BD 77", "RU") and not validate_plate("D 123 BC 77", "RU")  # no Cyrillic look-alike
    assert not validate_plate("1234 AB-8", "BY")  # regions 0-7


def test_every_format_accepts_its_own_example() -> None:
    for code, fmt in COUNTRY_FORMATS.items():
        assert validate_plate(fmt.example, code), code
