"""Plate text helpers shared with the core and UI: normalisation, fuzzy distance, per-country formats."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Look-alikes the recogniser confuses; used only where a country format says which kind a position must be.
TO_DIGIT = {
    "O": "0",
    "Q": "0",
    "D": "0",
    "U": "0",
    "I": "1",
    "L": "1",
    "J": "1",
    "T": "7",
    "Z": "2",
    "S": "5",
    "B": "8",
    "G": "6",
    "A": "4",
    "E": "3",
}
#: more look-alike swaps than this and the read is more guess than reading
MAX_SWAPS = 2
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A", "7": "T", "3": "E"}


@dataclass(frozen=True)
class PlateFormat:
    """One country's plate formats: a regex over normalised text plus the class pattern of each layout.

    ``layouts`` use L (letter), N (digit) and ? (either); a read of the same length is corrected position by
    position (O->0 where a digit must be, 0->O where a letter must be). ``regex`` is the final validation.
    """

    country: str
    name: str
    regex: str
    layouts: tuple[str, ...]
    example: str
    #: substitutions applied everywhere (US states mostly omit O, I and Q)
    always: tuple[tuple[str, str], ...] = ()


_NL = (
    "LLNNNN",
    "NNNNLL",
    "NNLLNN",
    "LLNNLL",
    "LLLLNN",
    "NNLLLL",
    "NNLLLN",
    "NLLLNN",
    "LLNNNL",
    "LNNNLL",
    "LLLNNL",
    "LNNLLL",
    "NLLNNN",
    "NNNLLN",
)


def _span(lo: int, hi: int, *cls: str) -> tuple[str, ...]:
    """All layouts of letter and digit runs with the given length ranges (cls like 'L1-3', 'N1-4')."""
    out = [""]
    for c in cls:
        kind, rng = c[0], c[1:]
        a, b = (int(v) for v in rng.split("-")) if "-" in rng else (int(rng), int(rng))
        out = [p + kind * k for p in out for k in range(a, b + 1)]
    return tuple(p for p in out if lo <= len(p) <= hi)


COUNTRY_FORMATS: dict[str, PlateFormat] = {
    f.country: f
    for f in (
        PlateFormat(
            "DE",
            "Germany",
            r"^[A-Z]{2,5}[1-9][0-9]{0,3}[EH]?$",
            _span(4, 8, "L2-5", "N1-4") + _span(5, 9, "L2-5", "N1-3", "L1"),
            "M AB 1234",
        ),
        PlateFormat(
            "AT",
            "Austria",
            r"^[A-Z]{1,2}([0-9]{1,5}[A-Z]{1,3}|[A-Z]{1,3}[0-9]{1,5})$",
            _span(4, 8, "L1-2", "N1-5", "L1-3") + _span(4, 8, "L1-2", "L1-3", "N1-5"),
            "W 12345 A",
        ),
        PlateFormat("CH", "Switzerland", r"^[A-Z]{2}[0-9]{1,6}$", _span(3, 8, "L2", "N1-6"), "ZH 123456"),
        PlateFormat(
            "NL",
            "Netherlands",
            "^(" + "|".join(p.replace("L", "[A-Z]").replace("N", "[0-9]") for p in _NL) + ")$",
            _NL,
            "12-ABC-3",
        ),
        PlateFormat(
            "FR",
            "France",
            r"^([A-Z]{2}[0-9]{3}[A-Z]{2}|[0-9]{1,4}[A-Z]{1,3}[0-9]{2})$",
            ("LLNNNLL", *_span(4, 9, "N1-4", "L1-3", "N2")),
            "AB-123-CD",
        ),
        PlateFormat("IT", "Italy", r"^[A-Z]{2}[0-9]{3}[A-Z]{2}$", ("LLNNNLL",), "AB 123 CD"),
        PlateFormat(
            "ES",
            "Spain",
            r"^([0-9]{4}[BCDFGHJKLMNPRSTVWXYZ]{3}|[A-Z]{1,2}[0-9]{4}[A-Z]{1,2})$",
            ("NNNNLLL", *_span(6, 8, "L1-2", "N4", "L1-2")),
            "1234 BCD",
        ),
        PlateFormat(
            "PL",
            "Poland",
            r"^[A-Z]{2,3}(?=[A-Z0-9]*[0-9])[A-Z0-9]{4,5}$",
            ("LL" + "?????", "LLL" + "????", "LLL" + "?????", "LL" + "????"),
            "WA 12345",
        ),
        PlateFormat(
            "UK",
            "United Kingdom",
            r"^([A-Z]{2}[0-9]{2}[A-Z]{3}|[A-Z][0-9]{1,3}[A-Z]{3}|[A-Z]{3}[0-9]{1,3}[A-Z])$",
            ("LLNNLLL", *_span(5, 7, "L1", "N1-3", "L3"), *_span(5, 7, "L3", "N1-3", "L1")),
            "AB12 CDE",
        ),
        PlateFormat(
            "US",
            "United States",
            r"^(?=[A-Z0-9]*[0-9])[A-Z0-9]{5,8}$",
            ("?????", "??????", "???????", "????????"),
            "7ABC123",
            always=(("O", "0"), ("Q", "0"), ("I", "1")),
        ),
        PlateFormat("BR", "Brazil", r"^[A-Z]{3}[0-9][A-Z0-9][0-9]{2}$", ("LLLNNNN", "LLLNLNN"), "ABC1D23"),
    )
}

_SEPARATORS = re.compile(r"[^A-Z0-9]")


def normalize_plate(text: str) -> str:
    """Upper-case plate text without separators or accents ("m-ab 123" -> "MAB123"), for storage/search."""
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    return _SEPARATORS.sub("", folded.upper())


def plate_distance(a: str, b: str) -> int:
    """Levenshtein distance between two normalised plates (one character off is 1)."""
    a, b = normalize_plate(a), normalize_plate(b)
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _fit_layout(text: str, layout: str) -> tuple[str, int] | None:
    """Coerce ``text`` to ``layout`` with look-alike swaps; returns (text, swaps) or None if impossible."""
    if len(text) != len(layout):
        return None
    out, swaps = [], 0
    for ch, kind in zip(text, layout, strict=True):
        if kind == "N" and not ch.isdigit():
            if ch not in TO_DIGIT:
                return None
            ch, swaps = TO_DIGIT[ch], swaps + 1
        elif kind == "L" and ch.isdigit():
            if ch not in TO_LETTER:
                return None
            ch, swaps = TO_LETTER[ch], swaps + 1
        out.append(ch)
    return "".join(out), swaps


def fit_plate(text: str, countries: list[str] | tuple[str, ...]) -> tuple[str, str, int] | None:
    """Best valid plate for ``text`` among ``countries``: (plate, country, swaps); None if no format fits."""
    text = normalize_plate(text)
    if not any(c.isdigit() for c in text):
        return None  # every supported format has a digit; words on signs and cars ("TEXAS") have none
    best: tuple[str, str, int] | None = None
    best_rank = 0.0
    for code in countries:
        fmt = COUNTRY_FORMATS.get(code.upper())
        if fmt is None:
            continue
        base = text
        for a, b in fmt.always:
            base = base.replace(a, b)
        for layout in fmt.layouts:
            fitted = _fit_layout(base, layout)
            if fitted is None or not re.match(fmt.regex, fitted[0]):
                continue
            swaps = fitted[1] + sum(x != y for x, y in zip(text, base, strict=True))
            if swaps > MAX_SWAPS:
                continue
            # a generic layout (US: any 5-8 characters) fits almost anything: rank it behind a fixed layout
            # that needs one swap, so "0KM2371" is the Brazilian OKM2371, not a US plate
            rank = swaps + (1.5 if set(layout) == {"?"} else 0.0)
            if best is None or rank < best_rank:
                best, best_rank = (fitted[0], fmt.country, swaps), rank
    return best


def validate_plate(text: str, country: str) -> bool:
    """Whether normalised ``text`` is a valid plate of ``country`` as written (no corrections)."""
    fmt = COUNTRY_FORMATS.get(country.upper())
    return fmt is not None and re.match(fmt.regex, normalize_plate(text)) is not None
