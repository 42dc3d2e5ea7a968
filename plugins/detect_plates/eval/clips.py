"""What the plate evaluations share: the photo folder, the camera view of a photo, clip making and scoring."""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from alarmcloud import video
from alarmcloud.contracts import ClipFrames, Finding
from alarmcloud.testing import make_clip
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig
from alarmcloud_detect_plates.formats import normalize_plate, plate_distance
from alarmcloud_detect_plates.ocr import DET_MODEL, OcrEngine, TextMap, TextRead
from PIL import Image

Scene = Callable[[int, float, int, int], np.ndarray]
MODES = ("all countries", "camera country")
MOTIONS = ("still", "zoom", "pan")
OUTCOMES = ("exact", "miss", "characters", "length", "other text")


def default_data() -> Path:
    """``$ALARMCLOUD_SHARED/data/plates`` or ``../shared/data/plates`` next to the repository."""
    shared = os.environ.get("ALARMCLOUD_SHARED")
    base = Path(shared) if shared else Path(__file__).resolve().parents[3] / ".." / "shared"
    return (base / "data" / "plates").resolve()


#: labels of ``labels.csv`` that differ from what their photo plainly shows, found by looking at the labelled box
#: of every read that "failed" (plates README, "Label errata"): file -> (label, what the plate shows). A
#: correction applies only while the label is still the wrong one, so a fixed data set needs none.
LABEL_ERRATA: dict[str, tuple[str, str]] = {
    "br/FZB9581.jpg": ("FZB9581", "FBZ9581"),  # the letters are F B Z (the file name repeats the wrong label)
    "us/wts-lg-000085.jpg": ("5DJ0529", "BDJ0529"),  # a B with a straight back, not a 5
    "us/wts-lg-000159.jpg": ("59E21P1", "59321P1"),  # California plate 59321P1: a 3, not an E
}


def load_rows(data: Path, stride: int = 1, errata: bool = True) -> list[dict[str, str]]:
    """Every ``stride``-th row of ``labels.csv`` (file, plate, x, y, w, h, region), with the ``LABEL_ERRATA``
    corrected unless ``errata`` is false."""
    with open(data / "labels.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[::stride]
    for row in rows:  # labels written with separators or in lower case ("m-ab 1234") compare as the reader writes
        row["plate"] = normalize_plate(row["plate"])
        wrong, shown = LABEL_ERRATA.get(row["file"], ("", ""))
        if errata and row["plate"] == wrong:
            row["plate"] = shown
    return rows


def box_of(row: dict[str, str]) -> tuple[float, float, float, float]:
    """The labelled plate box (x, y, w, h in photo pixels)."""
    x, y, w, h = (float(row[k]) for k in "xywh")
    return x, y, w, h


def split_of(name: str) -> str:
    """'holdout' for a fixed third of the photos (by a hash of the file name), else 'dev'."""
    return "holdout" if zlib.crc32(name.encode()) % 3 == 0 else "dev"


def view_window(
    size: tuple[int, int], box: tuple[float, ...] | None, motion: str, f: float, w: int, h: int
) -> tuple[float, int, int, int, int]:
    """Where a ``w`` x ``h`` camera sees a photo of ``size`` at ``f`` (0-1) of the clip: the cover scale and the
    window (x0, y0, width, height) in scaled-photo pixels, centred on the plate as far as the photo allows."""
    iw, ih = size
    px, py, pw, ph = box or (iw / 2, ih / 2, 0, 0)
    s = max(w / iw, h / ih) * 1.05
    bw, bh = round(iw * s), round(ih * s)
    z = 1.0 + 0.08 * f if motion == "zoom" else 1.0
    cw, ch = round(w / z), round(h / z)
    # the camera looks at the driveway; a pan sweeps 30 % of the spare width
    cx = (px + pw / 2) * s + (0.3 * (f - 0.5) * (bw - cw) if motion == "pan" else 0.0)
    x0 = int(np.clip(cx - cw / 2, 0, bw - cw))
    y0 = int(np.clip((py + ph / 2) * s - ch / 2, 0, bh - ch))
    return s, x0, y0, cw, ch


def photo_scene(img: Image.Image, motion: str, seconds: float, box: tuple[float, ...] | None = None) -> Scene:
    """A camera view of a photo (cover-scaled, plate kept in view): still, slow zoom, or a slow pan."""
    cache: dict[tuple[int, int], np.ndarray] = {}

    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        s, x0, y0, cw, ch = view_window(img.size, box, motion, t / max(seconds, 1e-6), w, h)
        if (w, h) not in cache:
            cache[(w, h)] = np.asarray(img.resize((round(img.width * s), round(img.height * s)), Image.BILINEAR))
        crop = cache[(w, h)][y0 : y0 + ch, x0 : x0 + cw]
        if (cw, ch) != (w, h):
            crop = np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))
        return np.ascontiguousarray(crop)

    return scene


def camera_clip(
    path: Path, scene: Scene, seconds: float, width: int, height: int, gop: float = 1.0, cache: Path | None = None
) -> Path:
    """An H.264 clip of ``scene`` at 15 fps, as a camera records it; with ``cache`` (a file name), the clip
    saved there before, else made and saved there."""
    if cache is not None:
        if cache.is_file():
            return cache
        cache.parent.mkdir(parents=True, exist_ok=True)
        made = make_clip(path, seconds=seconds, width=width, height=height, fps=15, gop_seconds=gop, scene=scene)
        cache.write_bytes(made.read_bytes())
        return cache
    return make_clip(path, seconds=seconds, width=width, height=height, fps=15, gop_seconds=gop, scene=scene)


class CachedEngine(OcrEngine):
    """An ``OcrEngine`` whose results are kept on disk by a hash of their input, for re-running an evaluation
    after a change to what follows the models (fitting, voting): with the same clips, the same calls get the
    same answers without running the models. A recognition is keyed by all the crops of the call (the batch's
    padding depends on them), so a re-run reproduces an uncached run exactly. CPU times of cached runs are no
    measurement."""

    def __init__(self, folder: Path, threads: int = 1, int8: bool = False, int8_second_look: bool = False) -> None:
        super().__init__(threads=threads, int8=int8, int8_second_look=int8_second_look)
        self.folder = folder
        # the float model's maps keep their old keys; another model's maps are keyed by its content
        self.model = {second: _model_key(f) for second, f in ((False, self.det_file), (True, self.det_second_file))}
        (folder / "map").mkdir(parents=True, exist_ok=True)
        (folder / "rec").mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    @classmethod
    def of(cls, folder: Path, config: PlatesConfig) -> CachedEngine:
        """The cached engine with the text detectors ``config`` asks for."""
        return cls(folder, **config.text_detectors())

    @staticmethod
    def _key(*parts: np.ndarray | str) -> str:
        h = hashlib.sha1()
        for part in parts:
            if isinstance(part, np.ndarray):
                h.update(str(part.shape).encode())
                h.update(np.ascontiguousarray(part).tobytes())
            else:
                h.update(part.encode())
        return h.hexdigest()

    def text_map(self, bgr: np.ndarray, scale: float, second: bool = False) -> TextMap:
        """The cached probability map of ``bgr`` at ``scale``, else the detector's (then cached)."""
        path = self.folder / "map" / f"{self._key(bgr, repr(scale) + self.model[second])}.npz"
        if path.is_file():
            self.hits += 1
            with np.load(path) as z:
                sx, sy, w, h = (float(v) for v in z["meta"])
                return TextMap(z["pred"], sx, sy, int(w), int(h))
        self.misses += 1
        tmap = super().text_map(bgr, scale, second)
        np.savez_compressed(path, pred=tmap.pred, meta=np.array([tmap.sx, tmap.sy, tmap.width, tmap.height]))
        return tmap

    def recognize(self, crops: list[np.ndarray]) -> list[TextRead]:
        """The cached reads of this exact list of crops, else the recogniser's (then cached)."""
        if not crops:
            return []
        path = self.folder / "rec" / f"{self._key(*crops)}.pkl"
        if path.is_file():
            self.hits += 1
            return pickle.loads(path.read_bytes())
        self.misses += 1
        reads = super().recognize(crops)
        path.write_bytes(pickle.dumps(reads))
        return reads


def _model_key(path: Path) -> str:
    """The part of a cached map's key that names the text detector: none for rapidocr's float model."""
    return "" if path.name == DET_MODEL else hashlib.sha1(path.read_bytes()).hexdigest()


def changed_config(items: list[str]) -> PlatesConfig:
    """The default ``PlatesConfig`` with the ``KEY=VALUE`` fields of ``--set`` changed (pydantic parses "false",
    "2.0", ...)."""
    return PlatesConfig(**dict(item.split("=", 1) for item in items))


def decode(det: PlateDetector, path: Path) -> ClipFrames:
    """Probe and decode once, as the worker does."""
    return video.decode(path, [det.frame_request()], video.probe(path))[0]


def analyse(det: PlateDetector, frames: ClipFrames, countries: list[str] | None) -> tuple[list[Finding], float]:
    """The detector's findings and CPU seconds (``analyze`` only, not the shared decode)."""
    frames.options = {"countries": countries} if countries else {}
    t0 = time.process_time()
    findings = det.analyze(frames)
    return findings, time.process_time() - t0


def outcome(truth: str, texts: list[str]) -> str:
    """exact, or the kind of failure: miss (nothing read), length (a character too many or too few),
    characters (right length, wrong characters), other text (something else in the picture was read)."""
    if truth in texts:
        return "exact"
    if not texts:
        return "miss"
    best = min(texts, key=lambda t: plate_distance(t, truth))
    if plate_distance(best, truth) > max(2, len(truth) // 2):
        return "other text"
    return "length" if len(best) != len(truth) else "characters"


def char_accuracy(truth: str, texts: list[str]) -> float:
    """1 - edit distance / length of the read closest to the truth (0 when nothing was read)."""
    if not texts:
        return 0.0
    best = min(texts, key=lambda t: plate_distance(t, truth))
    return max(0.0, 1 - plate_distance(best, truth) / len(truth))
