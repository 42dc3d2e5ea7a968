"""The second look (equalised re-reads, magnified detection of faint text), only when no plate was read surely."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from alarmcloud import video
from alarmcloud.contracts import ClipFrames, ClipProbe, Frame
from alarmcloud_detect_plates.detector import PlateDetector, PlatesConfig, zoom_windows
from alarmcloud_detect_plates.ocr import DET_MODEL, INT8_DET_MODEL, OcrEngine, TextMap, TextRead


def _map(width: int = 480, height: int = 270) -> np.ndarray:
    return np.zeros((height, width), np.float32)


def test_zoom_windows_frame_faint_small_text_strongest_first() -> None:
    pred = _map()
    pred[200:204, 300:330] = 0.2  # faint, small: a far plate
    pred[50:54, 40:60] = 0.25  # a little stronger
    pred[10:200, 400:470] = 0.9  # taller than any plate line: a sign or a wall of text
    tmap = TextMap(pred, 4.0, 4.0, 1920, 1080)  # a 1080p frame seen at a quarter of its size
    wins = zoom_windows(tmap)
    assert len(wins) == 2
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = wins
    assert ax0 <= 40 * 4 and ax1 >= 60 * 4 and ay0 <= 50 * 4 and ay1 >= 54 * 4  # the stronger one first
    assert bx0 <= 300 * 4 and bx1 >= 330 * 4 and by0 <= 200 * 4 and by1 >= 204 * 4
    assert all(0 <= x0 < x1 <= 1920 and 0 <= y0 < y1 <= 1080 for x0, y0, x1, y1 in wins)


def test_zoom_windows_stay_within_their_count_and_area() -> None:
    pred = _map()
    rng = np.random.default_rng(1)
    for k in range(40):  # forty faint specks all over the frame (foliage, gravel)
        y, x = int(rng.integers(5, 260)), int(rng.integers(5, 470))
        pred[y : y + 3, x : x + 6] = 0.1 + k / 100
    tmap = TextMap(pred, 1.0, 1.0, 480, 270)
    wins = zoom_windows(tmap, limit=5, area=0.05)
    assert 1 <= len(wins) <= 5
    assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in wins) <= 0.05 * 480 * 270 + 4 * 5
    assert zoom_windows(TextMap(_map(), 1.0, 1.0, 480, 270)) == []  # nothing faint: nothing to zoom


class CountingEngine(OcrEngine):
    """The real engine, counting detector and recogniser runs (and which detector each detection asked for)."""

    def __init__(self, engine: OcrEngine) -> None:
        self.__dict__.update(engine.__dict__)
        self.maps = 0
        self.reads = 0
        self.second: list[bool] = []
        self.sides: list[int] = []

    def text_map(self, bgr: np.ndarray, scale: float, second: bool = False) -> TextMap:
        self.maps += 1
        self.second.append(second)
        tmap = super().text_map(bgr, scale, second)
        self.sides.append(max(tmap.pred.shape))  # the longer side the detector saw
        return tmap

    def recognize(self, crops: list[np.ndarray]) -> list[TextRead]:
        self.reads += 1
        return super().recognize(crops)


def _frames(det: PlateDetector, clip: Path, countries: list[str] | None = None) -> ClipFrames:
    frames = video.decode(clip, [det.frame_request()], video.probe(clip))[0]
    frames.options = {"countries": countries} if countries else {}
    return frames


def _far_plate_frames(text: str, height: float, contrast: int) -> ClipFrames:
    """Three 1080p keyframes of a far, soft plate: ``height`` sets the font scale, ``contrast`` the grey levels
    between the characters and the plate."""
    img = np.full((1080, 1920, 3), 90, np.uint8)
    img[540:] = 60
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, height, 1)
    x, y = 900, 700
    cv2.rectangle(img, (x - 5, y - th - 5), (x + tw + 5, y + 5), (160, 160, 160), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, height, (160 - contrast,) * 3, 1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    probe = ClipProbe("mp4", "h264", 1920, 1080, 15.0, 6.0)
    return ClipFrames(probe, [Frame(t, img.copy(), True) for t in (0.0, 2.0, 4.0)], options={"countries": ["DE"]})


def test_far_soft_plate_is_read_by_the_second_look(detector: PlateDetector) -> None:
    # characters 8 px tall in a 1080p frame, blurred, 40 grey levels darker than the plate
    first_only = PlateDetector(PlatesConfig(second_look_below=0.0), engine=detector.engine)
    assert first_only.analyze(_far_plate_frames("M AB 1234", 0.3, 40)) == []  # the first pass sees no line
    assert [f.text for f in detector.analyze(_far_plate_frames("M AB 1234", 0.3, 40))] == ["MAB1234"]


def test_doubtful_read_is_settled_by_the_second_look(detector: PlateDetector) -> None:
    first_only = PlateDetector(PlatesConfig(second_look_below=0.0), engine=detector.engine)
    # 9 px characters 30 grey levels from the plate: the first pass loses the "1", fairly sure of itself
    [wrong] = first_only.analyze(_far_plate_frames("M AB 1234", 0.35, 30))
    assert wrong.text != "MAB1234"
    careful = PlateDetector(PlatesConfig(second_look_below=0.99), engine=detector.engine)
    assert wrong.score < careful.config.second_look_below
    assert [f.text for f in careful.analyze(_far_plate_frames("M AB 1234", 0.35, 30))] == ["MAB1234"]


def test_easy_plate_gets_no_second_look(detector: PlateDetector, photo_clip: Callable[..., Path]) -> None:
    counting = CountingEngine(detector.engine)
    det = PlateDetector(PlatesConfig(), engine=counting)
    frames = _frames(det, photo_clip("br/HPM9362.jpg"))
    assert [f.text for f in det.analyze(frames)] == ["HPM9362"]
    # one detector run per frame (no zoom), one recogniser run per frame and one of the plate's crop widened at
    # the left, in the first frame only: it read the same plate there (no second reads)
    assert counting.maps == len(frames.keyframes)
    assert counting.reads == len(frames.keyframes) + 1


def test_the_outer_keyframes_are_detected_smaller_and_the_plate_still_read(
    detector: PlateDetector, photo_clip: Callable[..., Path]
) -> None:
    clip = photo_clip("br/HPM9362.jpg")
    for config, sides in ((PlatesConfig(), [736, 960, 736]), (PlatesConfig(outer_detect_side=0), [960] * 3)):
        counting = CountingEngine(detector.engine)
        det = PlateDetector(config, engine=counting)
        frames = _frames(det, clip)
        assert len(frames.keyframes) == 3
        assert [f.text for f in det.analyze(frames)] == ["HPM9362"]
        assert counting.sides == sides  # the middle keyframe at detect_side, the others at outer_detect_side


def test_the_second_look_runs_the_int8_detector_and_the_first_pass_the_float_one(detector: PlateDetector) -> None:
    # a plate-free 1080p scene with a sign gets the second look (zoom and faint search)
    img = np.full((1080, 1920, 3), 120, np.uint8)
    cv2.putText(img, "NO PARKING", (700, 500), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (30, 30, 30), 2)
    frames = ClipFrames(
        ClipProbe("mp4", "h264", 1920, 1080, 15.0, 6.0), [Frame(t, img.copy(), True) for t in (0.0, 2.0, 4.0)]
    )
    counting = CountingEngine(detector.engine)
    assert PlateDetector(engine=counting).analyze(frames) == []
    assert counting.second[:3] == [False] * 3  # the first pass: the float detector, once per keyframe
    assert len(counting.second) > 3 and all(counting.second[3:])  # the second look: the int8 one
    assert counting.det_second_file.name == INT8_DET_MODEL and counting.det_file.name == DET_MODEL


def test_equalize_lifts_a_faint_crop_to_recogniser_height() -> None:
    import cv2
    from alarmcloud_detect_plates.detector import _contrast, equalize
    from alarmcloud_detect_plates.ocr import REC_HEIGHT

    crop = np.full((24, 110, 3), 120, np.uint8)  # a hazy plate: grey text on a barely lighter grey
    cv2.putText(crop, "AB 123", (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (100, 100, 100), 2, cv2.LINE_AA)
    out = equalize(crop)
    assert out.shape[0] == REC_HEIGHT and out.shape[2] == 3
    assert abs(out.shape[1] / out.shape[0] - crop.shape[1] / crop.shape[0]) < 0.1  # aspect kept
    assert _contrast(out) > 2 * _contrast(crop)


def _line(text: str, height: int, width: int) -> np.ndarray:
    """A dark text line on a light field, ``height`` x ``width`` pixels (BGR)."""
    import cv2

    crop = np.full((height, width, 3), 225, np.uint8)
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, int(height * 0.6), 3)
    cv2.putText(crop, text, (6, int(height * 0.8)), cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 30, 30), 3, cv2.LINE_AA)
    return crop


def test_a_crops_read_does_not_depend_on_the_other_crops_of_the_call(detector: PlateDetector) -> None:
    """Each crop is padded to a width of its own: a plate read beside a truck's long lettering in the same frame
    reads exactly as when it is read alone (padded to that lettering's width, its probabilities shifted)."""
    from alarmcloud_detect_plates.ocr import REC_MIN_WIDTH, rec_width

    plate, other = _line("KA 4521", 40, 150), _line("HGE 308", 36, 120)
    long = _line("TRUCK RENTAL 1-800-555-0199", 40, 700)
    assert rec_width(150 / 40) == rec_width(120 / 36) == REC_MIN_WIDTH and rec_width(700 / 40) > 2 * REC_MIN_WIDTH
    alone = detector.engine.recognize([plate]) + detector.engine.recognize([other])
    together = detector.engine.recognize([long, plate, other])
    assert [r.text for r in alone] == ["KA4521", "HGE308"]
    for a, b in zip(alone, together[1:], strict=True):
        assert a.text == b.text
        assert np.allclose(a.char_scores, b.char_scores, atol=1e-4), (a, b)
        for da, db in zip(a.dists, b.dists, strict=True):
            assert da.keys() == db.keys() and all(abs(da[k] - db[k]) < 1e-4 for k in da), (da, db)
    assert together[0].text != together[1].text  # the long line was read too, as itself
