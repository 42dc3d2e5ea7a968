"""Plate text helpers shared with the core and UI: normalisation, fuzzy distance, per-country formats.

Fitting a read to the formats is a small constrained decoding: every position of a layout says whether it must
be a letter, a digit or either; the recogniser's per-character probabilities say how much each replacement
costs (``-ln p(new) + ln p(read)``). Text without probabilities falls back to a table of look-alikes.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
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
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A", "7": "T", "3": "E"}
#: more look-alike swaps than this and a text-only read is more guess than reading
MAX_SWAPS = 2
#: cost (nats) of one table swap when the recogniser gave no probabilities
SWAP_COST = 1.0
#: pairs that many plate fonts draw the same: a swap costs at most TWIN_COST even when the model is sure
TWINS = {("O", "0"), ("0", "O"), ("I", "1"), ("1", "I"), ("Q", "0")}
TWIN_COST = 2.0
#: a generic layout (US: any 5-8 characters) fits nearly everything; among interpretations the recogniser
#: supports equally (see ``fit_read``), a fixed layout is preferred unless it needs a replacement the recogniser
#: finds less than ~1/4 as likely as what it read (e^-1.5)
GENERIC_COST = 1.5
#: costs of replacements against the recogniser (nats) closer than this are equal (float noise, not evidence)
EVIDENCE_TIE = 1e-3
#: Austrian plates start with their district's code (current ones, older ones still on the road, and the federal
#: services'). Taken generously: a code missing here only loses a tie-break (``UNKNOWN_DISTRICT_COST``), it never
#: makes an Austrian plate invalid
_AT_CODES = {
    "Vienna and the cities (one letter)": "W B E G I K L P S",
    "Lower Austria": "AM BL BN GD GF HL HO KO KR KS LF MD ME MI NK PL SB SW TU WB WN WT WU WY ZT",
    "Upper Austria": "BR EF FR GM GR KI LL PE RI RO SD SE SR UU VB WE WL",
    "Salzburg": "SL HA JO TA ZE",
    "Tyrol": "IL IM KB KU LA LZ RE SZ",
    "Vorarlberg": "BZ DO FK",
    "Carinthia": "KL FE HE SP SV VI VL VK WO",
    "Styria (with districts merged since)": "GU BM DL HB LB LE LI LN MT MU SO VO WZ BA BK FB FF GB JU KF MZ RA",
    "Burgenland": "EU GS JE MA ND OP OW RU",
    "federal services and diplomats": "A BB BD BH BP FV JW PT WD WK ZW",
}
AT_DISTRICTS = frozenset(code for codes in _AT_CODES.values() for code in codes.split())
#: with every country allowed, an "Austrian" reading whose first letters are no district code gives way to a
#: generic layout (the US) that takes the same characters: more than ``GENERIC_COST``
UNKNOWN_DISTRICT_COST = 2.0
#: a character read with less confidence than DROP_BELOW, where the recogniser puts at least DROP_REST of its
#: probability on symbols that are no plate characters, may be left out (state emblems, seals, a border stroke)
DROP_BELOW = 0.5
DROP_REST = 0.3
MAX_DROPS = 2
#: the serial patterns of standard US passenger plates (L letter, N digit), as the states issue them now or did in
#: the last decades: California 1ABC234; ABC1234 (New York, Texas, Pennsylvania, Ohio, Michigan, Georgia,
#: Virginia, Washington, ...); Maryland 1AB2345; Illinois and Connecticut AB12345; all digits (New Hampshire,
#: older issues); ABC123 and 123ABC (many states); Missouri AB1C2D; New Jersey A12BCD; Massachusetts 1ABC23;
#: Colorado and Florida ABCD12. Vanity and specialty plates follow none of them, and no standard serial is longer
#: than seven characters
US_SERIALS = (
    "NLLLNNN", "LLLNNNN", "NLLNNNN", "LLNNNNN", "NNNNNNN",
    "LLLNNN", "NNNLLL", "LLNLNL", "LNNLLL", "NLLLNN", "LLLLNN",
)
#: among the interpretations of a read as a US plate, one in no standard serial pattern costs this much more than
#: one in a pattern (a letter the recogniser took for its look-alike digit, ``LGLS168`` for California's
#: ``4GLS168``, is put right when the recogniser found the digit at least ~1/4 as likely, e^-1.5)
SERIAL_UNUSUAL_COST = 1.5
#: leaving out the first or last character of a US read one character longer than any standard serial (a
#: neighbouring sticker, bolt or frame letter read with the plate: ``4ASC7399`` around ``ASC7399``) costs this
SERIAL_EDGE_COST = 1.0

Dist = Mapping[str, float]


@dataclass(frozen=True)
class PlateFormat:
    """One country's plate formats: a regex over normalised text plus the class pattern of each layout.

    ``layouts`` use L (letter), N (digit) and ? (either); a read of the same length is corrected position by
    position (O->0 where a digit must be, 0->O where a letter must be). ``regex`` is the final validation.
    ``letters`` are the letters the country issues (NL, IT, ES and PL leave out vowels or look-alikes).
    """

    country: str
    name: str
    regex: str
    layouts: tuple[str, ...]
    example: str
    #: substitutions applied everywhere (the US: O is read as 0; California and other states do issue I and Q)
    always: tuple[tuple[str, str], ...] = ()
    letters: str = LETTERS
    #: for a generic format, the usual serial patterns (L/N) among everything it accepts: once a read is fitted
    #: to this country, an interpretation in one of them is preferred (``prefer_serials``)
    serials: tuple[str, ...] = ()

    @property
    def generic(self) -> bool:
        """Whether a layout of this format accepts any character in every position."""
        return all(set(layout) == {"?"} for layout in self.layouts)


@dataclass(frozen=True)
class PlateFit:
    """A read fitted to one country's layout."""

    text: str
    country: str
    #: look-alike replacements made
    swaps: int
    #: low-confidence characters left out
    drops: int
    #: cost in nats versus the raw read (replacements and drops), without the generic-layout penalty
    cost: float
    #: geometric mean probability per read character of this interpretation (1.0 for text-only fits)
    score: float
    #: positions of the read that the plate text is made of (all but the dropped ones)
    kept: tuple[int, ...] = ()
    #: the part of ``cost`` that goes against what the recogniser read: replacements of one character by another
    #: that does not merely look alike in plate fonts (8 -> B, not O -> 0); left-out characters are not counted
    #: (only characters the recogniser doubts are plate characters at all may be left out)
    against: float = 0.0


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
# Poland: district (2-3 letters, first one of the voivodeship letters) + individual part of fixed patterns
_PL_2 = ("NNNNN", "NNNNL", "NNNLL", "NLNNN", "NLLNN")
_PL_3 = ("LNNN", "NNLL", "NLNN", "NNLN", "NLLN", "LLNN", "LLNNN", *_PL_2)
_PL_IND = "ACEFGHJKLMNPRSTUVWXY"  # B, D, I, O and Z are not issued in the individual part
_NI = r"[A-Z]?([A-HJ-Y]Z|I[ABGJLW]|[JOUX]I)[1-9][0-9]{0,3}"
_CYRILLIC_BY = "ABEIKMHOPCTX"  # letters that look the same in Cyrillic and Latin script
_CYRILLIC_RU = "ABEKMHOPCTYX"
_CH_CANTONS = "AG|AI|AR|BE|BL|BS|FR|GE|GL|GR|JU|LU|NE|NW|OW|SG|SH|SO|SZ|TG|TI|UR|VD|VS|ZG|ZH"


def _span(lo: int, hi: int, *cls: str) -> tuple[str, ...]:
    """All layouts of letter and digit runs with the given length ranges (cls like 'L1-3', 'N1-4')."""
    out = [""]
    for c in cls:
        kind, rng = c[0], c[1:]
        a, b = (int(v) for v in rng.split("-")) if "-" in rng else (int(rng), int(rng))
        out = [p + kind * k for p in out for k in range(a, b + 1)]
    return tuple(p for p in out if lo <= len(p) <= hi)


def _rx(layouts: Sequence[str], letters: str = "A-Z") -> str:
    """Regex alternatives for layouts of L (a letter of ``letters``) and N (a digit)."""
    cls = {"L": f"[{letters}]", "N": "[0-9]", "?": "[A-Z0-9]"}
    return "|".join("".join(cls[k] for k in p) for p in layouts)


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
        PlateFormat(
            "CH", "Switzerland", rf"^({_CH_CANTONS})[1-9][0-9]{{0,5}}$", _span(3, 8, "L2", "N1-6"), "ZH 123456"
        ),
        PlateFormat(
            "NL",
            "Netherlands",
            f"^({_rx(_NL, 'BDFGHJKLMNPRSTVXZ')})$",
            _NL,
            "12-BDF-3",
            letters="BDFGHJKLMNPRSTVXZ",
        ),
        PlateFormat(
            "FR",
            "France",
            r"^([A-HJ-NP-TV-Z]{2}[0-9]{3}[A-HJ-NP-TV-Z]{2}|[0-9]{1,4}[A-Z]{1,3}([0-9]{2}|2A|2B))$",
            ("LLNNNLL", *_span(5, 9, "N1-4", "L1-3", "N2")),
            "AB-123-CD",
        ),
        PlateFormat(
            "IT",
            "Italy",
            r"^[A-HJ-NPR-TV-Z]{2}[0-9]{3}[A-HJ-NPR-TV-Z]{2}$",
            ("LLNNNLL",),
            "AB 123 CD",
            letters="ABCDEFGHJKLMNPRSTVWXYZ",
        ),
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
            rf"^[BCDEFGKLNOPRSTWZ]([A-Z]({_rx(_PL_2, _PL_IND)})|[A-Z]{{2}}({_rx(_PL_3, _PL_IND)}))$",
            tuple("LL" + p for p in _PL_2) + tuple("LLL" + p for p in _PL_3),
            "WA 12345",
        ),
        PlateFormat(
            "UK",
            "United Kingdom",
            # current, prefix and suffix series; Northern Ireland: a county code with I or Z ("AZ", "IA", "JI"),
            # a third letter before it on newer plates, then up to four digits
            rf"^([A-Z]{{2}}[0-9]{{2}}[A-Z]{{3}}|[A-Z][0-9]{{1,3}}[A-Z]{{3}}|[A-Z]{{3}}[0-9]{{1,3}}[A-Z]|{_NI})$",
            (
                "LLNNLLL",
                *_span(5, 7, "L1", "N1-3", "L3"),
                *_span(5, 7, "L3", "N1-3", "L1"),
                *_span(3, 7, "L2-3", "N1-4"),
            ),
            "AB12 CDE",
        ),
        # the rest of Europe: current national schemes (older series that are still on the road where noted)
        PlateFormat(
            "BE",
            "Belgium",
            r"^([1-9][A-Z]{3}[0-9]{3}|[A-Z]{3}[0-9]{3}|[0-9]{3}[A-Z]{3})$",
            ("NLLLNNN", "LLLNNN", "NNNLLL"),
            "1-ABC-234",
        ),
        PlateFormat("LU", "Luxembourg", r"^[A-Z]{2}[0-9]{4}$", ("LLNNNN",), "AB 1234"),
        PlateFormat("DK", "Denmark", r"^[A-Z]{2}[0-9]{5}$", ("LLNNNNN",), "AB 12 345"),
        PlateFormat(
            "SE",
            "Sweden",
            r"^[A-HJ-PR-UW-Z]{3}[0-9]{2}[0-9A-HJ-PR-UW-Z]$",
            ("LLLNNN", "LLLNNL"),
            "ABC 12D",
            letters="ABCDEFGHJKLMNOPRSTUWXYZ",
        ),
        PlateFormat("NO", "Norway", r"^[A-Z]{2}[0-9]{4,5}$", ("LLNNNN", "LLNNNNN"), "AB 12345"),
        PlateFormat("FI", "Finland", r"^[A-Z]{2,3}[0-9]{1,3}$", _span(4, 6, "L2-3", "N1-3"), "ABC-123"),
        PlateFormat(
            "IE", "Ireland", r"^[0-9]{2,3}[A-Z]{1,2}[0-9]{1,6}$", _span(4, 10, "N2-3", "L1-2", "N1-6"), "161-D-12345"
        ),
        PlateFormat(
            "PT",
            "Portugal",
            r"^([A-Z]{2}[0-9]{2}[A-Z]{2}|[0-9]{2}[A-Z]{2}[0-9]{2}|[0-9]{4}[A-Z]{2}|[A-Z]{2}[0-9]{4})$",
            ("LLNNLL", "NNLLNN", "NNNNLL", "LLNNNN"),
            "AA-00-AA",
        ),
        PlateFormat("CZ", "Czechia", r"^[0-9][A-Z][A-Z0-9][0-9]{4}$", ("NLLNNNN", "NLNNNNN"), "1A2 3456"),
        PlateFormat("SK", "Slovakia", r"^[A-Z]{2}[0-9]{3}[A-Z]{2}$", ("LLNNNLL",), "BA-123AB"),
        PlateFormat("HU", "Hungary", r"^[A-Z]{3,4}[0-9]{3}$", ("LLLNNN", "LLLLNNN"), "AA AA-123"),
        PlateFormat(
            "HR", "Croatia", r"^[A-Z]{2}[0-9]{3,4}[A-Z]{1,2}$", _span(6, 8, "L2", "N3-4", "L1-2"), "ZG 1234-AB"
        ),
        PlateFormat(
            "RO", "Romania", r"^(B[0-9]{2,3}|[A-Z]{2}[0-9]{2})[A-Z]{3}$", ("LNNLLL", "LNNNLLL", "LLNNLLL"), "CJ 12 ABC"
        ),
        PlateFormat(
            "BG",
            "Bulgaria",
            r"^[ABCEHKMOPTXY]{1,2}[0-9]{4}[ABCEHKMOPTXY]{2}$",
            ("LNNNNLL", "LLNNNNLL"),
            "CA 1234 AB",
            letters="ABCEHKMOPTXY",
        ),
        PlateFormat(
            "GR", "Greece", r"^[ABEHIKMNOPTXYZ]{3}[0-9]{4}$", ("LLLNNNN",), "ABK-1234", letters="ABEHIKMNOPTXYZ"
        ),
        PlateFormat("LT", "Lithuania", r"^[A-Z]{3}[0-9]{3}$", ("LLLNNN",), "ABC 123"),
        PlateFormat("LV", "Latvia", r"^[A-Z]{2}[0-9]{1,4}$", _span(4, 6, "L2", "N2-4"), "AB-1234"),
        PlateFormat("EE", "Estonia", r"^[0-9]{3}[A-Z]{3}$", ("NNNLLL",), "123 ABC"),
        PlateFormat("LI", "Liechtenstein", r"^FL[0-9]{1,5}$", _span(3, 7, "L2", "N1-5"), "FL 12345"),
        PlateFormat("RS", "Serbia", r"^[A-Z]{2}[0-9]{3,5}[A-Z]{2}$", _span(7, 9, "L2", "N3-5", "L2"), "BG 123-AB"),
        PlateFormat(
            "SI",
            "Slovenia",
            r"^(CE|GO|KK|KP|KR|LJ|MB|MS|NM|PO|SG)[A-Z0-9]{3,6}$",
            tuple("LL" + "?" * k for k in range(3, 7)),
            "LJ A1-234",
        ),
        PlateFormat(
            "BA",
            "Bosnia and Herzegovina",
            r"^[AEJKMOT][0-9]{2}[AEJKMOT][0-9]{3}$",
            ("LNNLNNN",),
            "A12-E-345",
            letters="AEJKMOT",
        ),
        PlateFormat("ME", "Montenegro", r"^[A-Z]{4}[0-9]{3}$", ("LLLLNNN",), "PG AB123"),
        PlateFormat("MK", "North Macedonia", r"^[A-Z]{2}[0-9]{4}[A-Z]{2}$", ("LLNNNNLL",), "SK 1234 AB"),
        PlateFormat("AL", "Albania", r"^[A-Z]{2}[0-9]{3}[A-Z]{2}$", ("LLNNNLL",), "AA 123 AA"),
        PlateFormat(
            "UA",
            "Ukraine",
            r"^[ABCEHIKMOPTX]{2}[0-9]{4}[ABCEHIKMOPTX]{2}$",
            ("LLNNNNLL",),
            "AA 1234 BC",
            letters="ABCEHIKMOPTX",
        ),
        PlateFormat(
            "TR",
            "Turkey",
            r"^(0[1-9]|[1-7][0-9]|8[01])([A-Z][0-9]{4,5}|[A-Z]{2}[0-9]{3,4}|[A-Z]{3}[0-9]{2,3})$",
            ("NNLNNNN", "NNLNNNNN", "NNLLNNN", "NNLLNNNN", "NNLLLNN", "NNLLLNNN"),
            "34 ABC 123",
        ),
        PlateFormat("MT", "Malta", r"^[A-Z]{3}[0-9]{3}$", ("LLLNNN",), "ABC 123"),
        PlateFormat("CY", "Cyprus", r"^[A-Z]{3}[0-9]{3}$", ("LLLNNN",), "KAA 123"),
        PlateFormat("IS", "Iceland", r"^[A-Z]{2}[A-Z0-9][0-9]{2}$", ("LLNNN", "LLLNN"), "AB C12"),
        PlateFormat("MD", "Moldova", r"^[A-Z]{3}[0-9]{3}$", ("LLLNNN",), "ABC 123"),
        PlateFormat("XK", "Kosovo", r"^0[1-7][0-9]{3}[A-Z]{2}$", ("NNNNNLL",), "01-123-AB"),
        PlateFormat(
            "BY",
            "Belarus",
            rf"^[0-9]{{4}}[{_CYRILLIC_BY}]{{2}}[0-7]$",
            ("NNNNLLN",),
            "1234 AB-7",
            letters=_CYRILLIC_BY,
        ),
        PlateFormat(
            "RU",
            "Russia",
            rf"^[{_CYRILLIC_RU}][0-9]{{3}}[{_CYRILLIC_RU}]{{2}}[0-9]{{2,3}}$",
            ("LNNNLLNN", "LNNNLLNNN"),
            "A 123 BC 77",
            letters=_CYRILLIC_RU,
        ),
        PlateFormat(
            "US",
            "United States",
            r"^(?=[A-Z0-9]*[0-9])[A-Z0-9]{5,8}$",
            ("?????", "??????", "???????", "????????"),
            "7ABC123",
            always=(("O", "0"),),
            serials=US_SERIALS,
        ),
        PlateFormat("BR", "Brazil", r"^[A-Z]{3}[0-9][A-Z0-9][0-9]{2}$", ("LLLNNNN", "LLLNLNN"), "ABC1D23"),
    )
}

#: countries whose plates carry no blue band at the side (the EU's, Norway's, Serbia's, Kosovo's and most UK plates
#: have one; Iceland's, Moldova's, Belarus's and Russia's show a flag instead)
BANDLESS = frozenset({"CH", "LI", "IS", "MD", "BY", "RU", "US", "BR"})
#: every European format
EUROPE = tuple(c for c in COUNTRY_FORMATS if c not in ("US", "BR"))
#: names a camera or the deployment may use for several countries at once, and other common codes
COUNTRY_GROUPS: dict[str, tuple[str, ...]] = {
    "ALL": tuple(COUNTRY_FORMATS),
    "EU": EUROPE,
    "EUROPE": EUROPE,
    "GB": ("UK",),
    "EL": ("GR",),
}

_SEPARATORS = re.compile(r"[^A-Z0-9]")
_TWIN_DIGITS = str.maketrans("OI", "01")


def expand_countries(codes: Sequence[str] | str | None) -> list[str]:
    """Country codes of ``codes`` (a list or a comma-separated string) with groups expanded (``EU``: every
    European format, ``ALL``), upper case, in order, without duplicates and unknown codes."""
    if codes is None:
        return []
    if isinstance(codes, str):
        codes = codes.split(",")
    out: list[str] = []
    for raw in codes:
        code = str(raw).strip().upper()
        for c in COUNTRY_GROUPS.get(code, (code,)):
            if c in COUNTRY_FORMATS and c not in out:
                out.append(c)
    return out


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


def _lookalike(read: str, want: str) -> bool:
    return TO_DIGIT.get(read) == want or TO_LETTER.get(read) == want


def _choose(dist: Dist, allowed: str, always: dict[str, str], table: bool) -> tuple[str, float, bool, bool] | None:
    """Best character of ``allowed`` at one position: (char, cost in nats, whether it replaced the read, whether
    the replacement is a twin: a character many plate fonts draw like the one read, O for 0)."""
    top_char = max(dist, key=dist.__getitem__)
    top = dist[top_char]
    # a country's fixed substitutions (US: O is 0) merge the two characters' evidence at no cost
    merged: dict[str, float] = {}
    for ch, p in dist.items():
        merged[always.get(ch, ch)] = merged.get(always.get(ch, ch), 0.0) + p
    canon = always.get(top_char, top_char)
    best: tuple[str, float, bool, bool] | None = None
    for ch in allowed:
        p = merged.get(ch, 0.0)
        cost = math.log(top) - math.log(p) if p > 0 else math.inf
        if ch != canon and table and _lookalike(canon, ch):
            cost = min(cost, SWAP_COST)
        elif (canon, ch) in TWINS:
            cost = min(cost, TWIN_COST)
        cost = max(cost, 0.0)
        if best is None or cost < best[1]:
            best = (ch, cost, ch != canon, (canon, ch) in TWINS)
    return best if best is not None and best[1] < math.inf else None


def _fit_layout(
    dists: Sequence[Dist], layout: str, fmt: PlateFormat, table: bool
) -> tuple[str, float, int, float] | None:
    """Coerce the read to ``layout``: (text, cost, swaps, the part of the cost spent on twins) or None."""
    always = dict(fmt.always)
    letters = "".join(c for c in fmt.letters if c not in always)
    digits = DIGITS
    out, cost, swaps, twins = [], 0.0, 0, 0.0
    for dist, kind in zip(dists, layout, strict=True):
        allowed = digits if kind == "N" else letters if kind == "L" else letters + digits
        got = _choose(dist, allowed, always, table)
        if got is None:
            return None
        out.append(got[0])
        cost += got[1]
        swaps += got[2]
        twins += got[1] if got[3] else 0.0
    return "".join(out), cost, swaps, twins


def fit_read(
    dists: Sequence[Dist],
    countries: Sequence[str],
    *,
    table: bool = False,
    max_swaps: int | None = None,
    drops: bool = True,
) -> PlateFit | None:
    """Best plate of ``countries`` for one read given as per-character probabilities (plate characters only).

    Characters read with probability below ``DROP_BELOW`` may be left out (at ``-ln(1 - p)`` each). A read
    valid in several formats is the plate the recogniser supports most: interpretations are ranked first by the
    cost of what they change against the recogniser's reading (``PlateFit.against``: replacements other than
    twins), then by the whole cost plus ``GENERIC_COST`` for generic layouts. So a fixed layout (an
    Austrian ``FB 5 XBT``) no longer overrules a recogniser that read ``8`` rather than ``B`` when a generic
    layout (the US ``FB5X8T``) takes the read as it is; where the reads differ only in twins (O/0, I/1, which
    many plate fonts draw alike) or the recogniser's reading fits both, the fixed layout is still preferred while
    its twins cost less than ``GENERIC_COST`` (a sure 0 where it needs an O keeps the generic reading: ranking
    twins free turned 14 of the 336 evaluation plates, US ones with a sure 0 or 1, into European layouts).
    ``table`` allows look-alike swaps the probabilities do not support (text-only reads: no probabilities to
    weigh, so only the second ranking applies), ``max_swaps`` caps them.
    """
    n = len(dists)
    if n == 0:
        return None
    tops = [max(d.values()) if d else 0.0 for d in dists]
    if any(t <= 0 for t in tops):
        return None
    base = -sum(math.log(t) for t in tops)  # -ln p of the raw read
    low = [i for i, t in enumerate(tops) if t < DROP_BELOW and 1.0 - sum(dists[i].values()) >= DROP_REST]
    low = low if drops else []
    variants: list[tuple[tuple[int, ...], float]] = [(tuple(range(n)), 0.0)]
    for k in range(1, min(MAX_DROPS, len(low)) + 1):
        for drop in combinations(low, k):
            kept = tuple(i for i in range(n) if i not in drop)
            variants.append((kept, sum(_drop_cost(dists[i]) for i in drop)))
    best: PlateFit | None = None
    best_rank = (math.inf, math.inf)
    for kept, drop_cost in variants:
        sub = [dists[i] for i in kept]
        if not any(max(d, key=d.__getitem__).isdigit() for d in sub):
            continue  # every supported format has a digit; words on signs and cars ("TEXAS") have none
        for code in countries:
            fmt = COUNTRY_FORMATS.get(code.upper())
            if fmt is None:
                continue
            for layout in fmt.layouts:
                if len(layout) != len(sub):
                    continue
                fitted = _fit_layout(sub, layout, fmt, table)
                if fitted is None or not re.match(fmt.regex, fitted[0]):
                    continue
                text, cost, swaps, twin_cost = fitted
                if max_swaps is not None and swaps > max_swaps:
                    continue
                # what the recogniser's probabilities argue against, in steps of EVIDENCE_TIE (text-only: none)
                against = 0.0 if table else cost - twin_cost
                cost += drop_cost
                rank = (
                    round(against / EVIDENCE_TIE),
                    cost + (GENERIC_COST if set(layout) == {"?"} else 0.0) + 1e-6 * len(kept)
                    + (UNKNOWN_DISTRICT_COST if fmt.country == "AT" and not at_district_known(text) else 0.0),
                )
                if rank < best_rank:
                    # a twin the layout asks for (O where the font's 0 was read) is the format's choice between
                    # two glyphs drawn alike, not doubt about the plate: it ranks, it does not lower the score
                    score = 1.0 if table else math.exp(-(base + cost - twin_cost) / n)
                    best_rank = rank
                    best = PlateFit(text, fmt.country, swaps, n - len(kept), cost, score, kept, against)
    if best is not None and not table and COUNTRY_FORMATS[best.country].serials:
        best = prefer_serials(dists, tops, variants, COUNTRY_FORMATS[best.country], best)
    return best


def classes(text: str) -> str:
    """The letter/digit pattern of a text (``7ABC123`` -> ``NLLLNNN``)."""
    return "".join("N" if c.isdigit() else "L" for c in text)


def prefer_serials(
    dists: Sequence[Dist],
    tops: Sequence[float],
    variants: Sequence[tuple[tuple[int, ...], float]],
    fmt: PlateFormat,
    fit: PlateFit,
) -> PlateFit:
    """Once a read is fitted to a country with usual serial patterns (the US, whose format accepts any 5-8
    characters), its interpretation among that country's, with the usual patterns preferred.

    Interpretations are ranked by what they change against the recogniser's reading plus
    ``SERIAL_UNUSUAL_COST`` for a text in no usual pattern, then by their whole cost; a read one character longer
    than any usual serial may also lose its first or last character (``SERIAL_EDGE_COST``; the score is then that
    of the characters kept). The country was chosen before, with the read as it is, so the preference never
    makes a European plate American or the reverse.
    """
    n = len(dists)
    base = -sum(map(math.log, tops))  # -ln p of the raw read (``tops``: each character's best probability)
    options: list[tuple[tuple[int, ...], float, bool]] = [(kept, cost, False) for kept, cost in variants]
    if n == max(map(len, fmt.serials)) + 1:
        options += [(tuple(range(1, n)), 0.0, True), (tuple(range(n - 1)), 0.0, True)]
    # the reading as fitted, if in no usual pattern, is that much less likely: a replacement the preference pays
    # for lowers the score no further than to that of the reading
    credit = 0.0 if classes(fit.text) in fmt.serials else SERIAL_UNUSUAL_COST
    best, best_rank = fit, (math.inf, math.inf)
    for kept, drop_cost, edge in options:
        sub = [dists[i] for i in kept]
        layouts = [lay for lay in fmt.serials if len(lay) == len(sub)]
        if not edge:
            layouts += [lay for lay in fmt.layouts if len(lay) == len(sub)]
        for layout in layouts:
            fitted = _fit_layout(sub, layout, fmt, False)
            if fitted is None or not re.match(fmt.regex, fitted[0]):
                continue
            text, cost, swaps, twin_cost = fitted
            penalty = (SERIAL_EDGE_COST if edge else 0.0) + (
                0.0 if classes(text) in fmt.serials else SERIAL_UNUSUAL_COST
            )
            against = cost - twin_cost
            # of the two ends, the one read less surely goes (a tie-break only)
            left = [tops[i] for i in range(n) if i not in kept] if edge else []
            # ranked by the whole cost: here twins count too, as within one country I and 1 or O and 0 are different
            # plates
            rank = (
                round((cost + penalty) / EVIDENCE_TIE),
                cost + drop_cost + penalty + sum(map(math.log, left)) * 1e-3 + 1e-6 * len(kept),
            )
            if rank < best_rank:
                paid = max(0.0, cost - twin_cost - credit)
                if edge:
                    kept_base = -sum(math.log(tops[i]) for i in kept)
                    score = math.exp(-(kept_base + paid) / len(sub))
                else:
                    score = math.exp(-(base + paid + drop_cost) / n)
                best_rank = rank
                best = PlateFit(text, fmt.country, swaps, n - len(kept), cost + drop_cost, score, kept, against)
    return best


def at_district_known(text: str) -> bool:
    """Whether an Austrian plate's first one or two letters are a district code (``AT_DISTRICTS``)."""
    return text[:1] in AT_DISTRICTS or text[:2] in AT_DISTRICTS


def _drop_cost(dist: Dist) -> float:
    """Cost of leaving a character out, relative to reading it: -ln P(no plate character) + ln P(read)."""
    rest = 1.0 - sum(dist.values())
    return -math.log(min(1.0, max(rest, 1e-6))) + math.log(max(dist.values()))


def looks_like_timestamp(text: str) -> bool:
    """Whether all-digit text reads as a date or time of day (camera clocks on screen, receipts, signs); a
    letter O or I counts as the digit it looks like (a layout may have turned the date's 1 into an I)."""
    text = text.translate(_TWIN_DIGITS)
    if not text.isdigit() or len(text) not in (6, 7, 8):
        return False

    def ymd(y: str, m: str, d: str = "01") -> bool:
        return 1990 <= int(y) <= 2099 and 1 <= int(m) <= 12 and 1 <= int(d) <= 31

    if len(text) == 8:
        return (
            ymd(text[:4], text[4:6], text[6:])
            or ymd(text[4:], text[2:4], text[:2])
            or ymd(text[4:], text[:2], text[2:4])
        )
    if ymd(text[:4], text[4:6]):
        return True  # a date cut after the month
    return len(text) == 6 and int(text[:2]) < 24 and int(text[2:4]) < 60 and int(text[4:]) < 60


def fit_plate(text: str, countries: list[str] | tuple[str, ...]) -> tuple[str, str, int] | None:
    """Best valid plate for ``text`` among ``countries``: (plate, country, swaps); None if no format fits."""
    text = normalize_plate(text)
    if not any(c.isdigit() for c in text):
        return None  # every supported format has a digit; words on signs and cars ("TEXAS") have none
    fit = fit_read([{c: 1.0} for c in text], countries, table=True, max_swaps=MAX_SWAPS)
    return (fit.text, fit.country, fit.swaps) if fit else None


def validate_plate(text: str, country: str) -> bool:
    """Whether normalised ``text`` is a valid plate of ``country`` as written (no corrections)."""
    fmt = COUNTRY_FORMATS.get(country.upper())
    return fmt is not None and re.match(fmt.regex, normalize_plate(text)) is not None
