"""PP-OCR text detection and recognition on onnxruntime; the ONNX weights ship inside the rapidocr wheel."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

DET_MODEL = "PP-OCRv6_det_small.onnx"
#: the same detector quantised to int8 by ``train/quantize.py`` (shipped in this package): cheaper, a little worse
INT8_DET_MODEL = "PP-OCRv6_det_small_int8.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
#: characters a plate reader may output; every other symbol of the 18,710-symbol dictionary is masked out
PLATE_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REC_HEIGHT = 48
#: the recogniser's least input width (PaddleOCR pads every line to 320 at least; narrower reads worse here)
REC_MIN_WIDTH = 320
#: longer lines are padded to a multiple of this (few distinct widths, so few batches)
REC_WIDTH_STEP = 32
#: alternatives kept per character for the format fit
TOP_K = 6
#: symbols of on-screen clocks and dates that no plate carries
CLOCK_MARKS = ":/：／"
#: decimal and thousands separators: a digit, one of these and a digit is a number ("59.990", "1,5"), no plate
NUMBER_MARKS = ".,．，"
#: currency and percent signs: prices on signs and vans, never on a plate
PRICE_MARKS = "$€£¥%"


def model_dir() -> Path:
    """The folder inside the installed rapidocr wheel that holds the PP-OCR ONNX files (never downloaded)."""
    return Path(str(resources.files("rapidocr") / "models"))


def package_models() -> Path:
    """The folder inside this package that holds the int8 text detector."""
    return Path(str(resources.files("alarmcloud_detect_plates") / "models"))


@dataclass(frozen=True)
class TextBox:
    """A detected text region: ``quad`` is 4x2 float (clockwise from top-left) in input-image pixels."""

    quad: np.ndarray
    score: float

    @property
    def width(self) -> float:
        """Length of the top edge."""
        return float(np.linalg.norm(self.quad[1] - self.quad[0]))

    @property
    def height(self) -> float:
        """Length of the left edge."""
        return float(np.linalg.norm(self.quad[3] - self.quad[0]))


@dataclass(frozen=True)
class TextMap:
    """The text detector's probability map of one image: ``pred`` pixel (i, j) covers image pixels around
    (j * sx, i * sy); ``width`` x ``height`` is the size of the image it was made of."""

    pred: np.ndarray
    sx: float
    sy: float
    width: int
    height: int


@dataclass(frozen=True)
class TextRead:
    """A line read with plate characters only: text, mean and per-character confidence.

    ``dists`` holds, per character, the recogniser's most likely plate characters and their probabilities at
    the character's peak (what a format fit may swap it for, and at which cost).
    """

    text: str
    score: float
    char_scores: tuple[float, ...]
    dists: tuple[dict[str, float], ...] = ()
    #: the unrestricted recogniser saw a digit, ":", "/", "." or ",", and a digit (an on-screen clock, a date, a
    #: number) or a currency or percent sign (a price): text that is not a plate
    clock: bool = False


def sized(bgr: np.ndarray, scale: float) -> np.ndarray:
    """``bgr`` resized by about ``scale`` to sides that are multiples of 32 (what the text detector takes)."""
    h, w = bgr.shape[:2]
    rh, rw = max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)
    return cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA if rw < w else cv2.INTER_LINEAR)


def det_input(img: np.ndarray) -> np.ndarray:
    """The text detector's input tensor of a ``sized`` BGR image (1 x 3 x H x W, scaled to -1..1)."""
    return (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]


class OcrEngine:
    """One onnxruntime session per model, created once; ``run`` is thread-safe so instances are shared."""

    def __init__(
        self, threads: int = 1, models: Path | None = None, int8: bool = False, int8_second_look: bool = False
    ) -> None:
        folder = models or model_dir()
        det_path = package_models() / INT8_DET_MODEL if int8 else folder / DET_MODEL
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.det = ort.InferenceSession(str(det_path), sess_options=opts, providers=providers)
        #: the text detector's file (its maps differ a little between the float and the int8 model)
        self.det_file = det_path
        #: the second look's text detector (``text_map(..., second=True)``): the int8 one where asked
        self.det_second, self.det_second_file = self.det, det_path
        if int8_second_look and not int8:
            self.det_second_file = package_models() / INT8_DET_MODEL
            self.det_second = ort.InferenceSession(str(self.det_second_file), sess_options=opts, providers=providers)
        self.rec = ort.InferenceSession(str(folder / REC_MODEL), sess_options=opts, providers=providers)
        meta = self.rec.get_modelmeta().custom_metadata_map["character"].splitlines()
        charset = ["<blank>", *meta, " "]
        self._keep = np.array([i for i, c in enumerate(charset) if c in PLATE_CHARS], dtype=np.int64)
        self._keep_chars = [charset[i] for i in self._keep]
        self._clock_set = {i for i, c in enumerate(charset) if c in CLOCK_MARKS + NUMBER_MARKS}
        self._digit_set = {i for i, c in enumerate(charset) if c in "0123456789"}
        self._price_set = {i for i, c in enumerate(charset) if c in PRICE_MARKS}
        log.debug("PP-OCR sessions ready from %s (%d symbols)", folder, len(charset))

    # ------------------------------------------------------------ detection

    def detect(
        self, bgr: np.ndarray, max_side: int = 640, thresh: float = 0.3, box_thresh: float = 0.5
    ) -> list[TextBox]:
        """Text boxes in ``bgr`` (resized so its longer side is at most ``max_side``, multiple of 32)."""
        h, w = bgr.shape[:2]
        return self.boxes(self.text_map(bgr, min(1.0, max_side / max(h, w))), thresh, box_thresh)

    def text_map(self, bgr: np.ndarray, scale: float, second: bool = False) -> TextMap:
        """The detector's text probability map of ``bgr`` resized by about ``scale`` (sides multiples of 32), made
        by the second look's detector where ``second``."""
        h, w = bgr.shape[:2]
        img = sized(bgr, scale)
        rh, rw = img.shape[:2]
        x = det_input(img)
        pred = (self.det_second if second else self.det).run(None, {"x": x})[0][0, 0]
        return TextMap(pred, w / rw, h / rh, w, h)

    def boxes(self, tmap: TextMap, thresh: float = 0.3, box_thresh: float = 0.5) -> list[TextBox]:
        """Text boxes of a probability map, in the pixels of the image the map was made of."""
        pred, sx, sy, w, h = tmap.pred, tmap.sx, tmap.sy, tmap.width, tmap.height
        mask = cv2.dilate((pred > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[TextBox] = []
        for contour in contours[:1000]:
            if len(contour) < 3:
                continue
            (cx, cy), (bw, bh), angle = cv2.minAreaRect(contour)
            if min(bw, bh) < 3:
                continue
            x0, y0, cw, ch = cv2.boundingRect(contour)
            cmask = np.zeros((ch, cw), np.uint8)
            cv2.fillPoly(cmask, [contour - (x0, y0)], 1)
            score = float(cv2.mean(pred[y0 : y0 + ch, x0 : x0 + cw], cmask)[0])
            if score < box_thresh:
                continue
            # DB "unclip": the probability map covers a shrunk text kernel; grow it back by area*1.6/perimeter
            dist = bw * bh * 1.6 / (2 * (bw + bh))
            quad = cv2.boxPoints(((cx, cy), (bw + 2 * dist, bh + 2 * dist), angle))
            quad[:, 0] = np.clip(quad[:, 0] * sx, 0, w)
            quad[:, 1] = np.clip(quad[:, 1] * sy, 0, h)
            boxes.append(TextBox(_order(quad), score))
        return boxes

    # ------------------------------------------------------------ recognition

    def recognize(self, crops: list[np.ndarray]) -> list[TextRead]:
        """Read one text line per BGR crop.

        Each crop is scaled to ``REC_HEIGHT`` and padded to a width of its own (``rec_width``), so its read never
        depends on the other crops of the call; crops of one width share a batch."""
        if not crops:
            return []
        out: list[TextRead | None] = [None] * len(crops)
        ratios = [c.shape[1] / max(1, c.shape[0]) for c in crops]
        widths = [rec_width(r) for r in ratios]
        order = sorted(range(len(crops)), key=lambda i: (widths[i], ratios[i]))
        groups = [[i for i in order if widths[i] == w] for w in dict.fromkeys(widths[i] for i in order)]
        for idx in (g[start : start + 8] for g in groups for start in range(0, len(g), 8)):
            width = widths[idx[0]]
            batch = np.zeros((len(idx), 3, REC_HEIGHT, width), np.float32)
            for j, i in enumerate(idx):
                rw = min(width, math.ceil(REC_HEIGHT * ratios[i]))
                img = cv2.resize(crops[i], (max(1, rw), REC_HEIGHT)).astype(np.float32)
                batch[j, :, :, :rw] = (img / 127.5 - 1.0).transpose(2, 0, 1)
            probs = self.rec.run(None, {"x": batch})[0]
            for j, i in enumerate(idx):
                out[i] = self._decode(probs[j])
        return [r for r in out if r is not None]

    def _has_clock(self, path: np.ndarray) -> bool:
        """Whether the best path over all symbols has a clock, date or number mark between two digits ("08:41",
        "17/05", "59.990"), or a currency or percent sign anywhere ("R$59990")."""
        seq = _collapse(path)
        if any(c in self._price_set for c in seq):
            return True
        return any(
            seq[i] in self._clock_set and seq[i - 1] in self._digit_set and seq[i + 1] in self._digit_set
            for i in range(1, len(seq) - 1)
        )

    def _decode(self, probs: np.ndarray) -> TextRead:
        """Greedy CTC decoding over blank + plate characters only."""
        blank = probs[:, 0]
        kept = probs[:, self._keep]
        best = kept.argmax(axis=1)
        best_p = kept[np.arange(len(best)), best]
        chars: list[str] = []
        scores: list[float] = []
        peaks: list[int] = []
        prev = -1
        for t in range(len(best)):
            if blank[t] >= best_p[t]:
                prev = -1
                continue
            if best[t] != prev:
                chars.append(self._keep_chars[best[t]])
                scores.append(float(best_p[t]))
                peaks.append(t)
            elif best_p[t] > scores[-1]:
                scores[-1] = float(best_p[t])
                peaks[-1] = t
            prev = int(best[t])
        dists = []
        for t in peaks:
            top = np.argsort(-kept[t])[:TOP_K]
            dists.append({self._keep_chars[j]: float(kept[t, j]) for j in top if kept[t, j] > 1e-6})
        text = "".join(chars)
        clock = self._has_clock(probs.argmax(axis=1))
        return TextRead(text, float(np.mean(scores)) if scores else 0.0, tuple(scores), tuple(dists), clock)


def rec_width(ratio: float) -> int:
    """The recogniser's input width for a crop of aspect ``ratio``: ``REC_MIN_WIDTH`` (what PaddleOCR pads to),
    or for a longer line its width at ``REC_HEIGHT`` rounded up to a multiple of ``REC_WIDTH_STEP``."""
    if ratio * REC_HEIGHT <= REC_MIN_WIDTH:
        return REC_MIN_WIDTH
    return math.ceil(ratio * REC_HEIGHT / REC_WIDTH_STEP) * REC_WIDTH_STEP


def _collapse(path: np.ndarray) -> list[int]:
    """CTC best path without repeats and blanks."""
    return [int(c) for i, c in enumerate(path) if c != 0 and (i == 0 or path[i - 1] != c)]


def _order(quad: np.ndarray) -> np.ndarray:
    """Order 4 points clockwise starting top-left."""
    s = quad.sum(axis=1)
    d = np.diff(quad, axis=1).ravel()
    return np.array([quad[s.argmin()], quad[d.argmin()], quad[s.argmax()], quad[d.argmax()]], np.float32)


def crop_quad(bgr: np.ndarray, quad: np.ndarray, pad: float = 0.0) -> np.ndarray:
    """Perspective-rectified crop of ``quad``, grown by ``pad`` times its height on each side."""
    q = quad.astype(np.float32).copy()
    w = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    h = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    if pad:
        c = q.mean(axis=0)
        ux = (q[1] - q[0]) / max(w, 1e-6)
        uy = (q[3] - q[0]) / max(h, 1e-6)
        g = pad * h
        q = np.array(
            [
                c + (-w / 2 - g) * ux + (-h / 2 - g) * uy,
                c + (w / 2 + g) * ux + (-h / 2 - g) * uy,
                c + (w / 2 + g) * ux + (h / 2 + g) * uy,
                c + (-w / 2 - g) * ux + (h / 2 + g) * uy,
            ],
            np.float32,
        )
        w, h = w + 2 * g, h + 2 * g
    wi, hi = max(2, round(w)), max(2, round(h))
    dst = np.array([[0, 0], [wi, 0], [wi, hi], [0, hi]], np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(bgr, m, (wi, hi), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
