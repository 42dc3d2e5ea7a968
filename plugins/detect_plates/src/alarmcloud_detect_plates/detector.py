"""The ``plates`` detector: find text lines that look like plates, read them, validate, vote across frames."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest
from pydantic import BaseModel, Field

from alarmcloud_detect_plates.formats import (
    BANDLESS,
    COUNTRY_FORMATS,
    Dist,
    PlateFit,
    expand_countries,
    fit_read,
    looks_like_timestamp,
    plate_distance,
    validate_plate,
)
from alarmcloud_detect_plates.ocr import REC_HEIGHT, OcrEngine, TextBox, TextMap, TextRead, crop_quad

log = logging.getLogger(__name__)

#: text taller than this share of the frame is no plate (or one too close to read as a whole)
MAX_TEXT_HEIGHT = 0.45
#: runs of more boxes than this are sentences, not plates (a plate splits into at most three or four parts)
MAX_RUN = 4
#: the zoom pass looks again where the first pass's text probability exceeds this (faint or small text)
ZOOM_THRESH = 0.1
#: ... in at most this many windows per frame, covering at most this share of the first pass's map
ZOOM_WINDOWS = 6
ZOOM_AREA = 0.06
#: doubtful candidates per frame read a second time from an equalised crop (those that fit a format first,
#: then the surest)
MAX_REREADS = 2
#: two-line plates (motorcycles, square rear plates): at most this many stacked line pairs per frame are read
MAX_STACKED = 6
#: the EU band is 40 mm of a plate 110 mm high (about 0.3-0.45 of a text crop's height); a stroke is < 0.15
BAND_MIN = 0.2
BAND_MAX = 0.9
#: share of a column that is blue in a band, in each column and on average (its sign, stars, year or region
#: number are not blue, and the crop is taller than the plate)
BAND_COVER = 0.3
BAND_MEAN = 0.4
#: car body, frame or bumper the crop may show outside the band
BAND_LEAD = 0.35
#: in a monochrome frame (night mode) the band is a dark field: each of its columns is at least GREY_COVER dark
#: (its country sign and stars are light), GREY_MEAN on average, and a light gap (the plate's field, under
#: GREY_GAP dark) follows it before the first character
GREY_COVER = 0.6
GREY_MEAN = 0.7
GREY_GAP = 0.45
#: a frame whose colour spread (max - min of the channels) stays under this at its 99th percentile is monochrome
GREY_SPREAD = 12
#: OpenCV hue ranges of the EU band's blue and the Portuguese band's yellow
BLUE = (95, 135)
YELLOW = (18, 35)


class PlatesConfig(BaseModel):
    """Deployment-wide settings of the plate detector (cameras may narrow ``countries``)."""

    countries: list[str] = Field(
        default_factory=lambda: list(COUNTRY_FORMATS),
        description="Country plate formats accepted by default (codes of COUNTRY_FORMATS, e.g. DE, AT, US); "
        "a camera's own 'countries' option replaces this list.",
    )
    threshold: float = Field(0.8, ge=0.0, le=1.0, description="Minimum clip-level score of a reported plate.")
    frames: int = Field(3, ge=1, le=10, description="Keyframes per clip searched for plates (cost grows with it).")
    detect_side: int = Field(
        960, ge=320, le=1920, description="Longer side, in pixels, of a frame given to the text detector."
    )
    min_char_height: int = Field(
        10,
        ge=4,
        description="Smallest plate text height in source pixels worth reading (smaller is unreadable).",
    )
    min_read_score: float = Field(
        0.75, ge=0.0, le=1.0, description="Minimum mean character confidence of a single-frame read."
    )
    second_look_below: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="Unless a plate was read at least this surely, doubtful reads are read again from "
        "contrast-equalised crops and faint or small text is magnified (zoom) and read again (0 turns it off).",
    )
    zoom: float = Field(
        2.0,
        ge=1.0,
        le=4.0,
        description="Magnification of the second look at faint or small text (1 turns the magnified detection "
        "pass off).",
    )
    faint: bool = Field(
        True,
        description="Part of the second look: search the middle keyframe again with its local contrast "
        "equalised, for faint plates (bleached by low sun, hazy, dirty) that the first pass barely sees. Costs "
        "one more text detection in every clip without a sure plate (about +0.2 CPU-s per 1080p clip).",
    )
    int8: bool = Field(
        False,
        description="Run the text detector quantised to int8 (shipped in this package, made from rapidocr's "
        "float model by train/quantize.py) for the first pass as well: about 40 % cheaper per detection, but it "
        "reads about 1.5 % fewer plates of the evaluation set. For hosts where CPU matters more.",
    )
    int8_second_look: bool = Field(
        True,
        description="Run the second look's text detections (the magnified places and the faint search) with the "
        "int8 detector and keep the float one for the first pass: cheaper where it costs most, in clips without "
        "a sure plate. Without effect where int8 is on.",
    )
    outer_detect_side: int = Field(
        736,
        ge=0,
        le=1920,
        description="Longer side, in pixels, of the keyframes other than the middle one when given to the text "
        "detector (the middle keyframe gets detect_side): 736 costs about half a detection at 960 and read as many "
        "plates of the evaluation set, as the middle keyframe still sees small plates at 960 and the vote fuses "
        "the frames. 0 gives every keyframe detect_side.",
    )
    widen_left: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Read each candidate whose read fits a format again from its crop widened at the left by this "
        "many text heights, for plates whose first character the text box cut: the wider read stands where it "
        "completes the first at that end (one character more before it, or another first character) at least as "
        "surely (0 turns it off).",
    )
    threads: int = Field(1, ge=1, le=16, description="onnxruntime intra-op threads per model.")

    def text_detectors(self) -> dict[str, bool]:
        """The ``OcrEngine`` arguments that choose its text detectors (engines built with the same ones are
        interchangeable)."""
        return {"int8": self.int8, "int8_second_look": self.int8_second_look}


#: a place in the view: (x0, y0, x1, y1) as fractions of the frame's width and height
Place = tuple[float, float, float, float]
#: a candidate crop worth a second read, its place (fractions of the frame) and whether it showed a band
Doubtful = tuple[np.ndarray, Place, bool]


@dataclass(frozen=True)
class PlateRead:
    """One validated read in one frame."""

    text: str
    country: str
    score: float
    time: float
    box: tuple[float, float, float, float]
    #: per-character probabilities of the characters the text was made of (for fusing frames)
    dists: tuple[Dist, ...] = ()
    #: a band (the EU band, the French, Italian or Portuguese right band) was cut off the crop or seen just left of
    #: the text: a European plate
    banded: bool = False

    def char_dists(self) -> tuple[Dist, ...]:
        """``dists``, or the text itself at the read's score when the recogniser gave none."""
        return self.dists or tuple({c: self.score} for c in self.text)


@dataclass
class FrameLook:
    """What the first pass saw in one frame."""

    reads: list[PlateRead]
    #: the frame in BGR, as the models take it (made once per frame: the second look reuses it)
    bgr: np.ndarray
    tmap: TextMap
    doubtful: list[Doubtful]
    #: places (fractions of the frame) of every candidate read
    places: list[Place]


class PlateDetector(Detector):
    """Reads licence plates in alarm clips with PP-OCR det/rec (weights from the rapidocr wheel)."""

    name = "plates"
    labels = ("plate",)

    def __init__(self, config: PlatesConfig | None = None, engine: OcrEngine | None = None) -> None:
        self.config = config or PlatesConfig()
        self.threshold = self.config.threshold
        self._engine = engine
        self._lock = threading.Lock()
        if engine is None:
            self._engine = OcrEngine(threads=self.config.threads, **self.config.text_detectors())

    @property
    def engine(self) -> OcrEngine:
        """The shared OCR engine (sessions created once)."""
        assert self._engine is not None
        return self._engine

    def frame_request(self) -> FrameRequest:
        """Native-size RGB keyframes: plates are small, so no downscaling before the crop."""
        return FrameRequest(keyframes=True, max_keyframes=self.config.frames, color="rgb")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        """Read plates in every sampled keyframe and return one finding per vehicle above threshold.

        Unless a plate was read with at least ``second_look_below`` confidence, a second look follows: doubtful
        plate-like reads are read again from contrast-equalised crops, the places where the first pass saw
        faint or small text are magnified and read again, and (``faint``) the middle keyframe is searched again
        with its local contrast equalised (clips with an easy plate stay cheap).
        """
        countries = self._countries(frames.options)
        reads: list[PlateRead] = []
        looks: list[FrameLook] = []
        middle = len(frames.keyframes) // 2
        # (text, place) of reads whose left-widened crop read the same: a later keyframe need not widen them again
        widened: list[tuple[str, Place]] = []
        for i, frame in enumerate(frames.keyframes):
            side = self.config.outer_detect_side if i != middle and self.config.outer_detect_side else None
            look = self.read_frame(frame.image, frame.time, countries, side, widened)
            reads.extend(look.reads)
            looks.append(look)
        voted = votes(reads, countries)
        if not any(v.score >= self.config.second_look_below for v in voted):
            middle = len(looks) // 2
            for i, (frame, look) in enumerate(zip(frames.keyframes, looks, strict=True)):
                reads.extend(self.reread(look.doubtful, frame.time, countries))
                if self.config.zoom > 1.0:
                    reads.extend(self.zoom_frame(look, frame.time, countries))
                # one keyframe is enough: a faint plate, once found, reads surely (and each costs a detection)
                if self.config.faint and i == middle:
                    reads.extend(self.faint_frame(look, frame.time, countries))
            voted = surest(voted, votes(reads, countries))
        findings = []
        for text, score, best, _ in voted:
            if score >= self.threshold:
                findings.append(
                    Finding(
                        self.name,
                        "plate",
                        round(score, 4),
                        time=best.time,
                        box=best.box,
                        text=text,
                        extra=_plate_extra(
                            text,
                            band_countries(countries) if best.banded else countries,
                            sum(r.text == text for r in reads),
                        ),
                    )
                )
        return findings

    def _countries(self, options: dict[str, object]) -> list[str]:
        """The camera's countries (groups such as ``EU`` expanded), else the deployment's, else all."""
        wanted = options.get("countries") if options else None
        codes = expand_countries(wanted if isinstance(wanted, str | list | tuple) and wanted else None)
        return codes or expand_countries(self.config.countries) or list(COUNTRY_FORMATS)

    def read_frame(
        self,
        rgb: np.ndarray,
        time: float,
        countries: list[str],
        side: int | None = None,
        widened: list[tuple[str, Place]] | None = None,
    ) -> FrameLook:
        """All validated plate reads in one RGB frame, its text probability map (made at a longer side of
        ``side``, default ``detect_side``) and its doubtful candidates. ``widened`` (shared by a clip's keyframes)
        holds the reads whose left-widened crop read the same plate (see ``_complete_left``)."""
        bgr = _bgr(rgb)
        tmap = self.text_map(bgr, side=side)
        places: list[Place] = []
        reads, doubtful = self._read_boxes(bgr, self.engine.boxes(tmap), time, countries, places, widened)
        return FrameLook(reads, bgr, tmap, doubtful, places)

    def text_map(self, bgr: np.ndarray, second: bool = False, side: int | None = None) -> TextMap:
        """The text detector's map of a whole BGR frame scaled to ``side`` (default ``detect_side``; the second
        look's detector's where ``second``)."""
        h, w = bgr.shape[:2]
        return self.engine.text_map(bgr, min(1.0, (side or self.config.detect_side) / max(h, w)), second)

    def reread(self, doubtful: list[Doubtful], time: float, countries: list[str]) -> list[PlateRead]:
        """Validated reads of doubtful candidates from their contrast-equalised crops."""
        out = []
        crops = [equalize(c) for c, _, _ in doubtful]
        for (_, place, banded), read in zip(doubtful, self.engine.recognize(crops), strict=True):
            fit = self._fit(read, countries, banded)
            if fit is not None:
                out.append(PlateRead(fit.text, fit.country, fit.score, time, place, _kept(read, fit), banded))
        return suppress(out)

    def zoom_frame(self, look: FrameLook, time: float, countries: list[str]) -> list[PlateRead]:
        """Reads from a magnified look at the places of the first pass's map with faint or small text
        (``zoom_windows``), doubtful ones read again from equalised crops; candidates where the first pass already
        read are skipped (and the places read here are added to the look's)."""
        bgr, tmap = look.bgr, look.tmap
        scale = self.config.zoom / max(tmap.sx, tmap.sy)
        boxes: list[TextBox] = []
        for x0, y0, x1, y1 in zoom_windows(tmap):
            crop = bgr[y0:y1, x0:x1]
            for b in self.engine.boxes(self.engine.text_map(crop, scale, second=True)):
                boxes.append(TextBox(b.quad + np.array([x0, y0], np.float32), b.score))
        reads, doubtful = self._read_boxes(bgr, boxes, time, countries, look.places)
        return reads + self.reread(doubtful, time, countries)

    def faint_frame(self, look: FrameLook, time: float, countries: list[str]) -> list[PlateRead]:
        """Reads from the frame with its local contrast equalised (``equalize_frame``), each candidate read once;
        places already read in this frame are skipped. A plate bleached by low sun, seen through haze or dirty
        has strokes only a few grey levels darker than its field: the text detector's map barely shows it (no
        box, and too faint a mark for the zoom to pick), and its crop looks flat (``_contrast``)."""
        bgr = equalize_frame(look.bgr)
        boxes = self.engine.boxes(self.text_map(bgr, second=True))
        return self._read_boxes(bgr, boxes, time, countries, look.places)[0]

    def _read_boxes(
        self,
        bgr: np.ndarray,
        boxes: list[TextBox],
        time: float,
        countries: list[str],
        seen: list[Place],
        widened: list[tuple[str, Place]] | None = None,
    ) -> tuple[list[PlateRead], list[Doubtful]]:
        """Validated reads of the plate candidates among ``boxes`` (one per place), and the doubtful ones: a
        plate-like read (four or more characters with a digit, no clock or price mark) that fits no format or
        scores under ``second_look_below``. Candidates in a place of ``seen`` are skipped; the places read are
        added to it."""
        h, w = bgr.shape[:2]
        found = [(b, _place(b, w, h)) for b in candidates(boxes, self.config.min_char_height, h)]
        found = [(b, p) for b, p in found if _unseen(p, seen)]
        grey = monochrome(bgr)
        cut = [candidate_crop(bgr, b, grey) for b, _ in found]
        keep = [i for i, (c, _) in enumerate(cut) if _contrast(c) >= 20]
        # a place whose crop was too flat to read stays open to the faint search (it reads it equalised)
        seen.extend(found[i][1] for i in keep)
        cands, places, crops = [found[i][0] for i in keep], [found[i][1] for i in keep], [cut[i][0] for i in keep]
        # the text detector often leaves the EU band out of the plate's box: look beside it as well
        bands = [cut[i][1] or band_beside(bgr, b) for i, b in zip(keep, cands, strict=True)]
        out: list[PlateRead] = []
        doubtful: list[tuple[tuple[bool, float], Doubtful]] = []
        reads = self.engine.recognize(crops)
        fits = [self._fit(r, countries, b) for r, b in zip(reads, bands, strict=True)]
        if self.config.widen_left:
            self._complete_left(bgr, cands, places, bands, crops, reads, fits, countries, grey, widened)
        for place, crop, banded, read, fit in zip(places, crops, bands, reads, fits, strict=True):
            if fit is not None:
                out.append(PlateRead(fit.text, fit.country, fit.score, time, place, _kept(read, fit), banded))
                log.debug("read %s (%s) %.3f raw=%s at %.2fs", fit.text, fit.country, fit.score, read.text, time)
            if _plate_like(read) and (fit is None or fit.score < self.config.second_look_below):
                doubtful.append(((fit is not None, fit.score if fit else read.score), (crop, place, banded)))
        # the likeliest few only: a wall of text must not multiply the cost
        doubtful.sort(key=lambda d: d[0], reverse=True)
        return suppress(out), [d for _, d in doubtful[:MAX_REREADS]]

    def _complete_left(
        self,
        bgr: np.ndarray,
        cands: list[TextBox],
        places: list[Place],
        bands: list[bool],
        crops: list[np.ndarray],
        reads: list[TextRead],
        fits: list[PlateFit | None],
        countries: list[str],
        grey: bool = False,
        widened: list[tuple[str, Place]] | None = None,
    ) -> None:
        """Read the one-line candidates whose read fits a format again from their crops widened at the left
        (``widen_left``), and put the wider crop, read and fit in place where its fit completes the first at
        that end (``completes_left``) and scores at least as high.

        The text detector's box sometimes begins inside a plate's first character (its map barely responds to
        a character under a seal or a bolt): the read then lacks it (``JB7392`` for ``PJB7392``) or takes its
        remaining strokes for another character (the right half of a ``4`` read as ``L``). A crop reaching a
        little further left sees the whole character. Any other difference between the two reads is the
        recogniser's answer to a crop resized differently, not new evidence, and is ignored.

        A read in ``widened`` (the same text in about the same place, IoU 0.5 or more) had its widened crop read
        as the same plate in an earlier keyframe of the clip: its box cut nothing there, and a parked or slow
        vehicle's plate is not read twice more for that in every keyframe. Reads whose widened crop read the same
        here are added to it. A widened read that differed and lost (``LGLS168`` widened to a less sure
        ``4GLS168``) is tried again in the next keyframe, where it may win."""
        tried = widened if widened is not None else []
        again = [
            i
            for i, (c, f) in enumerate(zip(cands, fits, strict=True))
            if f
            and not isinstance(c, StackedBox)
            and not any(text == f.text and _iou(places[i], p) >= 0.5 for text, p in tried)
        ]
        if not again:
            return
        wide = [cut_bands(crop_quad(bgr, widened_left(cands[i].quad, self.config.widen_left)), grey)[0] for i in again]
        for i, crop, read in zip(again, wide, self.engine.recognize(wide), strict=True):
            fit, first = self._fit(read, countries, bands[i]), fits[i]
            if first is None:  # (``again`` holds fitted reads only)
                continue
            if fit and completes_left(first.text, fit.text) and fit.score >= first.score:
                crops[i], reads[i], fits[i] = crop, read, fit
            elif fit and fit.text == first.text:
                tried.append((first.text, places[i]))

    def _fit(self, read: TextRead, countries: list[str], banded: bool = False) -> PlateFit | None:
        """The read fitted to the formats, or None when it is too short, a clock or price, or too unsure. A read
        from a crop with a blue band is fitted to the countries whose plates have one."""
        if len(read.text) < 4 or read.clock:
            return None
        fit = fit_read(read.dists, band_countries(countries) if banded else countries)
        if fit is None or fit.score < self.config.min_read_score:
            return None
        # a date as read stays a date when a character of it is left out (20140522 as a US 0140522)
        if looks_like_timestamp(fit.text) or looks_like_timestamp(read.text):
            return None
        return fit


def completes_left(text: str, wide: str) -> bool:
    """Whether ``wide`` is ``text`` with one character more before it or with another first character."""
    if len(wide) == len(text) + 1:
        return wide[1:] == text
    return len(wide) == len(text) and wide[1:] == text[1:] and wide != text


def widened_left(quad: np.ndarray, margin: float) -> np.ndarray:
    """``quad`` (clockwise from top-left) grown by ``margin`` times its height at its left end."""
    q = quad.astype(np.float32)
    across = q[1] - q[0]
    grow = margin * float(np.linalg.norm(q[3] - q[0])) * across / max(float(np.linalg.norm(across)), 1e-6)
    return np.array([q[0] - grow, q[1], q[2], q[3] - grow], np.float32)


def _plate_like(read: TextRead) -> bool:
    """A read worth a second look: four or more characters with a digit, no clock or price mark."""
    return not read.clock and len(read.text) >= 4 and any(c.isdigit() for c in read.text)


def _place(box: TextBox, w: int, h: int) -> Place:
    x1, y1 = box.quad.min(axis=0)
    x2, y2 = box.quad.max(axis=0)
    return (float(x1 / w), float(y1 / h), float(x2 / w), float(y2 / h))


def _unseen(place: Place, seen: list[Place]) -> bool:
    """Whether no place in ``seen`` overlaps ``place`` by half or more (intersection over union)."""
    return all(_iou(place, s) < 0.5 for s in seen)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (_area(a) + _area(b) - inter)


def _plate_extra(text: str, countries: list[str], reads: int) -> dict[str, object]:
    """A finding's extra fields: the allowed countries whose format the text is (``country`` when only one
    is: many formats share a layout, "1ABC234" is Belgian and Californian) and the number of frames read."""
    matching = [c for c in countries if validate_plate(text, c)]
    extra: dict[str, object] = {"countries": matching, "reads": reads}
    if len(matching) == 1:
        extra["country"] = matching[0]
    return extra


def _kept(read: TextRead, fit: PlateFit) -> tuple[Dist, ...]:
    return tuple(read.dists[k] for k in fit.kept)


def band_countries(countries: list[str]) -> list[str]:
    """``countries`` whose plates carry a blue band (all of them if none does)."""
    return [c for c in countries if c not in BANDLESS] or countries


def cut_bands(crop: np.ndarray, grey: bool = False) -> tuple[np.ndarray, bool]:
    """The crop without a blue band at its left or right end: the EU band (stars and the country's sign, "D",
    "NL") left of a European plate's text, the French and Italian band with the region's number at the right,
    and the Portuguese yellow band with the year and month at the right. No plate character is printed on such a
    field, but the recogniser reads its sign as one ("DMAB1234", "JV40IF2012").

    A band is a run of columns at the crop's end that are saturated blue over at least ``BAND_COVER`` of the
    crop's height (``BAND_MEAN`` on average), at least ``BAND_MIN`` and at most ``BAND_MAX`` crop heights wide,
    with up to ``BAND_LEAD`` crop heights of other colour (the car around the plate) outside it. A character
    stroke, even a blue one, is far narrower than the band, and the band borders the plate's light field (a
    plate whose whole field is blue keeps its margins). The flag says whether a band was cut.

    In a ``grey`` (monochrome) frame the band has no colour left: it is a dark field with a light sign, as wide
    as above, followed by a light gap (``_grey_band_end``).
    """
    h, w = crop.shape[:2]
    if crop.ndim != 3 or h < 8 or w < 3 * h:
        return crop, False
    if grey:
        cover = _dark_cover(crop)
        left, right = _grey_band_end(cover, h), w - _grey_band_end(cover[::-1], h)
    else:
        hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
        cover = _cover(hsv, BLUE)
        left = _band_end(cover, h)
        right = w - _band_end(cover[::-1], h)
        if right == w:  # a yellow band at the right end (Portugal); a yellow plate's own field is no band
            right = w - _band_end(_cover(hsv, YELLOW)[::-1], h)
    if right - left < 2.5 * h:
        return crop, False  # too little would be left: no plate with bands on both ends
    return crop[:, left:right], (left, right) != (0, w)


def band_beside(bgr: np.ndarray, box: TextBox) -> bool:
    """Whether a blue band stands just left of the text of ``box`` (of each line of a two-line plate): a run
    of blue columns as in ``cut_bands`` (0.2-0.9 box heights wide, starting within 0.35 heights of the text)
    with no blue beyond it, so a blue car body, blue on and on, is no band; and as bright and as saturated as
    the band's printed blue (at least 45 % of the text crop's light level, EU blue is about 60 %; saturation at
    least 140 of 255), so a navy car body seen past the plate's frame is no band either. Unsure is no band: the
    read is then fitted to all the camera's countries, as without this look."""
    for line in box.lines if isinstance(box, StackedBox) else (box,):
        q = line.quad.astype(np.float32)
        h = float(np.linalg.norm(q[3] - q[0]))
        across = q[1] - q[0]
        ux = across / max(float(np.linalg.norm(across)), 1e-6)
        reach = (BAND_LEAD + BAND_MAX + 0.5) * h * ux
        crop = crop_quad(bgr, np.array([q[0] - reach, q[0], q[3], q[3] - reach], np.float32))
        if crop.ndim != 3 or crop.shape[0] < 8:
            continue
        hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
        cover = _cover(hsv, BLUE)[::-1]  # from the text outwards
        end = _band_end(cover, crop.shape[0])
        if end == 0:
            continue
        start = int(np.argmax(cover >= BAND_COVER))
        field = float(np.percentile(cv2.cvtColor(crop_quad(bgr, q), cv2.COLOR_BGR2GRAY), 90))
        band = hsv[:, ::-1][:, start:end]
        if np.median(band[..., 2]) >= 0.45 * field and np.median(band[..., 1]) >= 140:
            return True
    return False


def _cover(hsv: np.ndarray, hues: tuple[int, int]) -> np.ndarray:
    """Each column's share of saturated colour of ``hues`` (OpenCV hue range), not black: in a dark scene the
    band is dark too, so brightness counts relative to the crop's."""
    value = hsv[..., 2].ravel()
    k = int(0.95 * (value.size - 1))
    dark = max(12, int(0.15 * int(np.partition(value, k)[k])))  # 15 % of the 95th percentile of brightness
    return cv2.inRange(hsv, (hues[0], 90, dark), (hues[1], 255, 255)).mean(axis=0) / 255.0


def _band_run(cover: np.ndarray, h: int, each: float, mean: float) -> int:
    """The end of a run of columns at least ``each`` covered (``mean`` on average) that begins within
    ``BAND_LEAD`` crop heights of the start of ``cover`` and is ``BAND_MIN`` to ``BAND_MAX`` heights wide, else 0."""
    lead = int(BAND_LEAD * h)
    start = next((i for i in range(min(len(cover), lead + 1)) if cover[i] >= each), None)
    if start is None:
        return 0
    end = start
    while end < len(cover) and cover[end] >= each:
        end += 1
    if not BAND_MIN * h <= end - start <= BAND_MAX * h or cover[start:end].mean() < mean:
        return 0
    return end


def _band_end(cover: np.ndarray, h: int) -> int:
    """Columns to cut at the start of ``cover`` (each column's blue share): up to the end of a band."""
    end = _band_run(cover, h, BAND_COVER, BAND_MEAN)
    if end == 0:
        return 0
    # a band borders the plate's light field (white, yellow), not more blue: a blue plate's margin is no band
    after = cover[end : end + max(1, int(0.5 * h))]
    if after.size == 0 or after.mean() >= 0.15:
        return 0
    # the band's edge is blurred (lens, compression): its last faintly blue columns go with it
    edge = end + int(0.1 * h)
    while end < min(len(cover), edge) and cover[end] > 0.05:
        end += 1
    return end


def monochrome(bgr: np.ndarray) -> bool:
    """Whether a frame has no colour (a camera in night mode records grey): the spread of its channels stays
    under ``GREY_SPREAD`` in 99 % of a sparse grid of its pixels."""
    if bgr.ndim != 3:
        return True
    grid = bgr[::16, ::16].astype(np.int16)
    return float(np.percentile(grid.max(axis=2) - grid.min(axis=2), 99)) < GREY_SPREAD


def _dark_cover(crop: np.ndarray) -> np.ndarray:
    """Each column's share of dark pixels: darker than midway between the crop's ink and its plate field (the
    5th and 95th percentiles of its grey levels)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    ink, field = np.percentile(grey, (5, 95))
    if field - ink < 20:
        return np.zeros(grey.shape[1])
    return (grey < (ink + field) / 2).mean(axis=0)


def _grey_band_end(cover: np.ndarray, h: int) -> int:
    """Columns to cut at the start of ``cover`` (each column's dark share, ``_dark_cover``) in a monochrome
    crop: up to the end of a dark band at least ``GREY_COVER`` dark in each column (``GREY_MEAN`` on average),
    ``BAND_MIN`` to ``BAND_MAX`` crop heights wide, beginning within ``BAND_LEAD`` heights of the crop's end,
    that a light gap follows (the plate's field before its first character). A character is dark over less of
    the crop's height than the band, which spans the plate, and has light columns between its strokes; where the
    blur merges the band with the first letter, the run ends inside the letter, no light gap follows, and
    nothing is cut."""
    end = _band_run(cover, h, GREY_COVER, GREY_MEAN)
    if end == 0:
        return 0
    gap = cover[end : end + max(1, int(0.04 * h))]
    if gap.size == 0 or gap.max() >= GREY_GAP:
        return 0
    return end


def equalize(crop: np.ndarray) -> np.ndarray:
    """Grey crop with local contrast equalised (CLAHE), at least recogniser-high: faint, hazy or half-shaded
    plates get the dark-on-light strokes the recogniser expects."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    if grey.shape[0] < REC_HEIGHT:
        size = (max(1, round(grey.shape[1] * REC_HEIGHT / grey.shape[0])), REC_HEIGHT)
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_CUBIC)
    # a grid of 2 columns x 8 rows (OpenCV's tile grid is columns, rows): what the evaluation measured
    return cv2.cvtColor(_clahe(columns=2, rows=8).apply(grey), cv2.COLOR_GRAY2BGR)


def _clahe(columns: int, rows: int) -> cv2.CLAHE:
    """A CLAHE over a grid of ``columns`` x ``rows`` tiles; one per call, as OpenCV's keeps buffers between
    calls and detectors run in several threads."""
    return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(columns, rows))


def equalize_frame(bgr: np.ndarray) -> np.ndarray:
    """The frame with the local contrast of its lightness equalised (CLAHE on L of L*a*b*, colours kept: the
    EU band stays blue)."""
    lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
    # tiles of an 8 x 8 grid: a plate is a small part of one tile or two
    lab[..., 0] = _clahe(columns=8, rows=8).apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def _bgr(rgb: np.ndarray) -> np.ndarray:
    """The BGR copy of an RGB (or grey) frame; OpenCV swaps the channels about 20x faster than a reversed view's
    copy (0.4 against 10 ms for 1080p), with the same bytes."""
    if rgb.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)


def zoom_windows(
    tmap: TextMap, thresh: float = ZOOM_THRESH, limit: int = ZOOM_WINDOWS, area: float = ZOOM_AREA
) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1 in image pixels) around faint or small text of a probability map, strongest
    first: at most ``limit`` of them, together at most ``area`` of the image."""
    pred = tmap.pred
    mh, mw = pred.shape
    # characters of one line join into one region; regions taller than a plate line are signs or walls
    mask = cv2.dilate((pred > thresh).astype(np.uint8), np.ones((3, 7), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    regions = []
    for i in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[i])
        if h > 0.15 * mh or w > 0.4 * mw:
            continue
        peak = float(pred[y : y + h, x : x + w][labels[y : y + h, x : x + w] == i].max())
        pad_x, pad_y = max(w / 2, 2 * h, 8), max(h, 8)
        regions.append((peak, (max(0, x - pad_x), max(0, y - pad_y), min(mw, x + w + pad_x), min(mh, y + h + pad_y))))
    regions.sort(key=lambda r: -r[0])
    chosen: list[tuple[float, float, float, float]] = []
    budget = area * mh * mw
    for _, win in regions:
        if len(chosen) >= limit:
            break
        # a window overlapping a chosen one is merged with it (one detector run)
        near = [c for c in chosen if _overlap(win, c) > 0]
        for c in near:
            win = (min(win[0], c[0]), min(win[1], c[1]), max(win[2], c[2]), max(win[3], c[3]))
        rest = [c for c in chosen if c not in near]
        if sum(_area(c) for c in rest) + _area(win) <= budget:
            chosen = [*rest, win]
    return [
        (int(c[0] * tmap.sx), int(c[1] * tmap.sy), int(np.ceil(c[2] * tmap.sx)), int(np.ceil(c[3] * tmap.sy)))
        for c in chosen
    ]


@dataclass(frozen=True)
class StackedBox(TextBox):
    """The two lines of a two-line plate (motorcycles, square rear plates), read as one line: top, then bottom.
    ``quad`` covers both."""

    lines: tuple[TextBox, ...] = ()


def candidate_crop(bgr: np.ndarray, box: TextBox, grey: bool = False) -> tuple[np.ndarray, bool]:
    """The rectified crop of a candidate without its bands (``cut_bands``), and whether one was cut; a two-line
    plate's lines side by side at the bottom line's height, a gap of the plate's own colour between them (each
    line's band cut first: the band runs down the plate's whole left edge, its sign next to the second line)."""
    if not isinstance(box, StackedBox):
        return cut_bands(crop_quad(bgr, box.quad), grey)
    (top, top_band), (bottom, bottom_band) = (cut_bands(crop_quad(bgr, line.quad), grey) for line in box.lines)
    h = bottom.shape[0]
    top = cv2.resize(top, (max(1, round(top.shape[1] * h / top.shape[0])), h), interpolation=cv2.INTER_CUBIC)
    field = np.median(np.concatenate([top[:, :2], top[:, -2:], bottom[:, :2], bottom[:, -2:]], axis=1), axis=(0, 1))
    gap = np.broadcast_to(field.astype(np.uint8), (h, max(2, round(0.5 * h)), 3))
    return np.ascontiguousarray(np.concatenate([top, gap, bottom], axis=1)), top_band or bottom_band


def _stacked(top: TextBox, bottom: TextBox) -> bool:
    """Two text lines of similar height and width, one right below the other, overlapping across: a two-line
    plate. The detector's boxes are grown around the text, so a plate's tightly spaced lines may overlap by up
    to a third of a line."""
    ht, hb = top.height, bottom.height
    tx0, tx1 = float(top.quad[:, 0].min()), float(top.quad[:, 0].max())
    bx0, bx1 = float(bottom.quad[:, 0].min()), float(bottom.quad[:, 0].max())
    wt, wb = tx1 - tx0, bx1 - bx0
    gap = float(bottom.quad[:, 1].min() - top.quad[:, 1].max())
    overlap = min(tx1, bx1) - max(tx0, bx0)
    return (
        0.6 <= ht / hb <= 1.7
        and 0.2 <= wt / wb <= 2.5
        and overlap >= 0.6 * min(wt, wb)
        and -0.35 * hb < gap < 0.6 * max(ht, hb)
    )


def stacked_pairs(lines: list[TextBox]) -> list[StackedBox]:
    """Each text line paired with the nearest line right below it when the two look like a two-line plate
    (``_stacked``); at most ``MAX_STACKED``, the most square first (a plate's two lines are about as wide as
    they are tall together)."""
    out: list[tuple[float, StackedBox]] = []
    for top in lines:
        below = [b for b in lines if b is not top and _stacked(top, b)]
        if not below:
            continue
        bottom = min(below, key=lambda b: float(b.quad[:, 1].min()))
        x0 = min(float(top.quad[:, 0].min()), float(bottom.quad[:, 0].min()))
        x1 = max(float(top.quad[:, 0].max()), float(bottom.quad[:, 0].max()))
        y0, y1 = float(top.quad[:, 1].min()), float(bottom.quad[:, 1].max())
        aspect = (x1 - x0) / max(1.0, y1 - y0)
        if not 0.7 <= aspect <= 3.5:
            continue
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        out.append((abs(math.log(aspect / 1.5)), StackedBox(quad, min(top.score, bottom.score), (top, bottom))))
    out.sort(key=lambda t: t[0])
    return [box for _, box in out[:MAX_STACKED]]


def candidates(boxes: list[TextBox], min_height: int, frame_h: int) -> list[TextBox]:
    """Plate-sized text lines, same-line neighbour pairs and runs joined (plates split at seals or gaps), and
    pairs of lines stacked like a two-line plate (whose first line may be a single letter)."""
    sized = [b for b in boxes if min_height <= b.height <= frame_h * MAX_TEXT_HEIGHT]
    lines = [b for b in sized if 1.0 <= b.width / b.height <= 12]
    lines.sort(key=lambda b: float(b.quad[0, 0]))
    out = [b for b in lines if b.width / b.height >= 1.5]
    n = len(lines)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if _neighbours(lines[i], lines[j]):
                out.append(_join([lines[i], lines[j]]))
                parent[root(j)] = root(i)
    runs: dict[int, list[TextBox]] = {}
    for i in range(n):
        runs.setdefault(root(i), []).append(lines[i])
    # three or four parts: "M | AB | 1234" with seals between; longer runs are sentences, not plates
    out += [_join(run) for run in runs.values() if 3 <= len(run) <= MAX_RUN]
    short = [b for b in sized if 0.4 <= b.width / b.height < 1]
    return out + stacked_pairs(lines + short)


def _join(run: list[TextBox]) -> TextBox:
    """One box over text boxes of one line (sorted left to right)."""
    left, right = run[0], max(run, key=lambda b: float(b.quad[1, 0]))
    quad = np.array([left.quad[0], right.quad[1], right.quad[2], left.quad[3]], np.float32)
    return TextBox(quad, min(b.score for b in run))


def _neighbours(a: TextBox, b: TextBox) -> bool:
    """Two text boxes of similar height next to each other on one line."""
    left, right = (a, b) if a.quad[0, 0] <= b.quad[0, 0] else (b, a)
    hmax = max(a.height, b.height)
    gap = right.quad[0, 0] - left.quad[1, 0]
    same_line = abs(left.quad[:, 1].mean() - right.quad[:, 1].mean()) < 0.3 * hmax
    return bool(same_line and -0.2 * hmax < gap < 1.2 * hmax and min(a.height, b.height) > 0.7 * hmax)


def _area(box: tuple[float, ...]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _contrast(crop: np.ndarray) -> float:
    """Grey-level spread of a crop (plates are dark on light or light on dark)."""
    grey = crop.mean(axis=2)
    lo, hi = np.percentile(grey, (5, 95))
    return float(hi - lo)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(small, 1e-9)


def suppress(reads: list[PlateRead]) -> list[PlateRead]:
    """Within one frame keep one read per place: the one with the most character evidence (length x score)."""
    kept: list[PlateRead] = []
    for read in sorted(reads, key=lambda r: -len(r.text) * r.score):
        if all(_overlap(read.box, k.box) < 0.5 for k in kept):
            kept.append(read)
    return kept


def _same_place(a: PlateRead, b: PlateRead) -> bool:
    """Two reads in about the same place of the view (a parked or slow vehicle)."""
    return _overlap(a.box, b.box) >= 0.5


class Vote(NamedTuple):
    """One vehicle's result of ``votes``."""

    text: str
    #: the fused read's score, lowered by the share of reads of another length
    score: float
    #: the read of the best frame
    best: PlateRead
    #: the fused read's score before that share: how sure the characters of the text are
    certainty: float


def vote(reads: list[PlateRead], countries: list[str] | None = None) -> list[tuple[str, float, PlateRead]]:
    """One (text, score, best read) per vehicle: ``votes`` without the certainty."""
    return [(v.text, v.score, v.best) for v in votes(reads, countries)]


def votes(reads: list[PlateRead], countries: list[str] | None = None) -> list[Vote]:
    """One vote per vehicle, surest first: reads one character apart or in the same place are fused.

    The reads are grouped by text: one length, and at most half the characters different from the group's surest
    read (a read shifted by a character, its box begun a character late, differs everywhere and is another
    text). The group with the most evidence is averaged character by character and fitted to the formats once
    more, so a character misread in one frame is outvoted by the others; the score is the fused read's geometric
    mean probability, lowered by the share of the vehicle's other reads (another length or another text).
    """
    codes = countries or list(COUNTRY_FORMATS)
    clusters: list[list[PlateRead]] = []
    for read in sorted(reads, key=lambda r: -r.score):
        for cluster in clusters:
            if plate_distance(cluster[0].text, read.text) <= 1 or _same_place(cluster[0], read):
                cluster.append(read)
                break
        else:
            clusters.append([read])
    out = []
    for cluster in clusters:
        groups: list[list[PlateRead]] = []
        for r in cluster:  # surest first: each group's first read is its surest
            for g in groups:
                if len(g[0].text) == len(r.text) and _hamming(g[0].text, r.text) <= len(r.text) // 2:
                    g.append(r)
                    break
            else:
                groups.append([r])
        group = max(groups, key=lambda g: (sum(r.score for r in g), len(g[0].text)))
        share = sum(r.score for r in group) / sum(r.score for r in cluster)
        fused = [_mean_dist([r.char_dists()[i] for r in group]) for i in range(len(group[0].text))]
        banded = 2 * sum(r.score for r in group if r.banded) > sum(r.score for r in group)
        fit = fit_read(fused, band_countries(codes) if banded else codes, drops=False)
        if fit is None:  # the fused read fits no format (frames disagree on a letter/digit): best single read
            text, score = group[0].text, group[0].score
        else:
            text, score = fit.text, fit.score
        best = max(group, key=lambda r: (plate_distance(r.text, text) == 0, r.score))
        out.append(Vote(text, score * share ** (1 / max(1, len(text))), best, score))
    return sorted(out, key=lambda v: -v.score)


def surest(first: list[Vote], second: list[Vote]) -> list[Vote]:
    """The votes after the second look, except where they only added doubt to a vehicle the first look read.

    The second look re-reads doubtful crops equalised and reads magnified ones. Per vehicle (one character
    apart or the same place, as in ``votes``) of the second votes, with the first look's vote of it:

    - the same text: the surer score counts (the second look's partial re-reads only lower the share of the
      text's length);
    - another text of the same length: the second look's text stands (a character settled by more evidence,
      its purpose);
    - another length: the text whose characters are surer (``Vote.certainty``, before the share of other
      lengths) stands. A crop that took in a neighbouring emblem or line (``HUHICN2A`` around ``UH1N2A``) reads
      its extra characters unsurely, an equalised re-read that leaves out a canton's shield read as a ``1``
      reads surely.
    """
    out: list[Vote] = []
    for v in second:
        same = [f for f in first if plate_distance(f.text, v.text) <= 1 or _same_place(f.best, v.best)]
        prior = max(same, key=lambda f: f.score, default=None)
        if prior is not None and (
            (prior.text == v.text and prior.score > v.score)
            or (len(prior.text) != len(v.text) and prior.certainty > v.certainty)
        ):
            v = prior
        if all(o.text != v.text for o in out):
            out.append(v)
    return sorted(out, key=lambda v: -v.score)


def _hamming(a: str, b: str) -> int:
    """Positions at which two texts of one length differ."""
    return sum(x != y for x, y in zip(a, b, strict=True))


def _mean_dist(dists: list[Dist]) -> dict[str, float]:
    """Character probabilities averaged over frames."""
    out: dict[str, float] = {}
    for d in dists:
        for ch, p in d.items():
            out[ch] = out.get(ch, 0.0) + p / len(dists)
    return out
