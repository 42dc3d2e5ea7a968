"""The ``plates`` detector: find text lines that look like plates, read them, validate, vote across frames."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from alarmcloud.contracts import ClipFrames, Detector, Finding, FrameRequest
from pydantic import BaseModel, Field

from alarmcloud_detect_plates.formats import COUNTRY_FORMATS, Dist, fit_read, looks_like_timestamp, plate_distance
from alarmcloud_detect_plates.ocr import OcrEngine, TextBox, crop_quad

log = logging.getLogger(__name__)

#: text taller than this share of the frame is no plate (or one too close to read as a whole)
MAX_TEXT_HEIGHT = 0.45
#: runs of more boxes than this are sentences, not plates (a plate splits into at most three or four parts)
MAX_RUN = 4


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
    threads: int = Field(1, ge=1, le=16, description="onnxruntime intra-op threads per model.")


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

    def char_dists(self) -> tuple[Dist, ...]:
        """``dists``, or the text itself at the read's score when the recogniser gave none."""
        return self.dists or tuple({c: self.score} for c in self.text)


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
            self._engine = OcrEngine(threads=self.config.threads)

    @property
    def engine(self) -> OcrEngine:
        """The shared OCR engine (sessions created once)."""
        assert self._engine is not None
        return self._engine

    def frame_request(self) -> FrameRequest:
        """Native-size RGB keyframes: plates are small, so no downscaling before the crop."""
        return FrameRequest(keyframes=True, max_keyframes=self.config.frames, color="rgb")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        """Read plates in every sampled keyframe and return one finding per vehicle above threshold."""
        countries = self._countries(frames.options)
        reads: list[PlateRead] = []
        for frame in frames.keyframes:
            reads.extend(self.read_frame(frame.image, frame.time, countries))
        findings = []
        for text, score, best in vote(reads, countries):
            if score >= self.threshold:
                findings.append(
                    Finding(
                        self.name,
                        "plate",
                        round(score, 4),
                        time=best.time,
                        box=best.box,
                        text=text,
                        extra={"country": best.country, "reads": sum(r.text == text for r in reads)},
                    )
                )
        return findings

    def _countries(self, options: dict[str, object]) -> list[str]:
        wanted = options.get("countries") if options else None
        if isinstance(wanted, str):
            wanted = [c.strip() for c in wanted.split(",")]
        codes = [str(c).upper() for c in (wanted or self.config.countries)]
        known = [c for c in codes if c in COUNTRY_FORMATS]
        return known or list(COUNTRY_FORMATS)

    def read_frame(self, rgb: np.ndarray, time: float, countries: list[str]) -> list[PlateRead]:
        """All validated plate reads in one RGB frame."""
        bgr = np.ascontiguousarray(rgb[..., ::-1]) if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
        h, w = bgr.shape[:2]
        boxes = self.engine.detect(bgr, self.config.detect_side)
        cands = [b for b in candidates(boxes, self.config.min_char_height, h)]
        crops = [crop_quad(bgr, b.quad) for b in cands]
        keep = [i for i, c in enumerate(crops) if _contrast(c) >= 20]
        cands, crops = [cands[i] for i in keep], [crops[i] for i in keep]
        out: list[PlateRead] = []
        for box, read in zip(cands, self.engine.recognize(crops), strict=True):
            if len(read.text) < 4 or read.clock:
                continue
            fit = fit_read(read.dists, countries)
            if fit is None or fit.score < self.config.min_read_score or looks_like_timestamp(fit.text):
                continue
            x1, y1 = box.quad.min(axis=0)
            x2, y2 = box.quad.max(axis=0)
            dists = tuple(read.dists[i] for i in fit.kept)
            out.append(PlateRead(fit.text, fit.country, fit.score, time, (x1 / w, y1 / h, x2 / w, y2 / h), dists))
            log.debug("read %s (%s) %.3f raw=%s at %.2fs", fit.text, fit.country, fit.score, read.text, time)
        return suppress(out)


def candidates(boxes: list[TextBox], min_height: int, frame_h: int) -> list[TextBox]:
    """Plate-sized text lines, same-line neighbour pairs and runs joined (plates split at seals or gaps)."""
    lines = [
        b for b in boxes if min_height <= b.height <= frame_h * MAX_TEXT_HEIGHT and 1.0 <= b.width / b.height <= 12
    ]
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
    return out


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


def vote(reads: list[PlateRead], countries: list[str] | None = None) -> list[tuple[str, float, PlateRead]]:
    """One (text, score, best read) per vehicle: reads one character apart or in the same place are fused.

    The reads of the length with the most evidence are averaged character by character and fitted to the
    formats once more, so a character misread in one frame is outvoted by the others; the score is the fused
    read's geometric mean probability, lowered by the share of reads of another length.
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
        by_len: dict[int, list[PlateRead]] = {}
        for r in cluster:
            by_len.setdefault(len(r.text), []).append(r)
        group = max(by_len.values(), key=lambda g: (sum(r.score for r in g), len(g[0].text)))
        share = sum(r.score for r in group) / sum(r.score for r in cluster)
        fused = [_mean_dist([r.char_dists()[i] for r in group]) for i in range(len(group[0].text))]
        fit = fit_read(fused, codes, drops=False)
        if fit is None:  # the fused read fits no format (frames disagree on a letter/digit): best single read
            text, score = group[0].text, group[0].score
        else:
            text, score = fit.text, fit.score
        score *= share ** (1 / max(1, len(text)))
        best = max(group, key=lambda r: (plate_distance(r.text, text) == 0, r.score))
        out.append((text, score, best))
    return sorted(out, key=lambda x: -x[1])


def _mean_dist(dists: list[Dist]) -> dict[str, float]:
    """Character probabilities averaged over frames."""
    out: dict[str, float] = {}
    for d in dists:
        for ch, p in d.items():
            out[ch] = out.get(ch, 0.0) + p / len(dists)
    return out
