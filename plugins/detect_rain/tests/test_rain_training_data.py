"""The training renderer: reproducible clips, and held-out sets that really differ from the training set."""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from alarmcloud_detect_rain.features import FEATURE_NAMES

TRAIN = Path(__file__).resolve().parents[1] / "train"
sys.path.insert(0, str(TRAIN))

from alarmcloud.video import decode  # noqa: E402
from dataset import build, clip_request, specs_for  # noqa: E402
from synth import ClipSpec, photo_list, procedural_background, render_clip, render_frames  # noqa: E402


def test_held_out_sets_use_other_clips_photos_and_camera_conditions() -> None:
    photos_train, photos_eval = photo_list("train"), photo_list("eval")
    assert not set(photos_train) & set(photos_eval)
    train = specs_for(1, 300, photos_train, 2) + specs_for(4, 300, photos_train, 2)  # the two training sets
    calib = specs_for(101, 100, photos_train, 3)
    held_out = specs_for(2, 100, photos_eval, 3)
    stress = specs_for(3, 300, photos_eval, 3, domain="stress")
    drawn = specs_for(5, 100, photos_eval, 3, drawn=1.0)  # the drawn-scenes set (README)
    seeds = [{s.seed for s in group} for group in (train, calib, held_out, stress, drawn)]
    assert sum(len(s) for s in seeds) == len(set().union(*seeds))  # no clip is drawn twice
    assert not {s.photo for s in train if s.photo} & {s.photo for s in held_out + stress if s.photo}
    # the stress set draws from renderer paths and camera parameters the training never uses
    for attr in ("fps", "preset", "noise_kind", "drop_model"):
        seen = {getattr(s, attr) for s in train + calib}
        unseen = {getattr(s, attr) for s in stress}
        assert not seen & unseen, attr
    assert {s.size for s in stress} - {s.size for s in train}
    # and it still covers every weather, intensity, day and night
    assert {(s.kind, s.intensity, s.night) for s in stress if s.kind != "clear"} == {
        (k, i, n) for k in ("rain", "snow") for i in ("light", "medium", "heavy") for n in (False, True)
    }


@pytest.mark.parametrize("domain", ["train", "stress"])
def test_the_same_spec_renders_the_same_clip(domain: str) -> None:
    spec = next(s for s in specs_for(5, 50, photo_list("train"), 1, domain) if s.kind == "rain" and s.size[0] == 640)
    a = render_frames(ClipSpec(**asdict(spec)))
    b = render_frames(ClipSpec(**asdict(spec)))
    assert len(a) == spec.window_length
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other = render_frames(ClipSpec(**{**asdict(spec), "seed": spec.seed + 1}))
    assert not np.array_equal(a[0], other[0])


def test_drawn_scenes_change_only_the_background() -> None:
    """``--drawn-scenes``: a share of the clips gets a drawn garden / drive / street view; every other part of
    every clip (and which clips the seed draws) stays the same, so a run with and without them is an ablation."""
    plain = specs_for(1, 200, photo_list("train"), 2)
    mixed = specs_for(1, 200, photo_list("train"), 2, drawn=0.35)
    assert [replace(s, scene="") for s in mixed] == plain
    share = sum(s.scene == "drawn" for s in mixed) / len(mixed)
    assert 0.25 < share < 0.45
    spec = next(s for s in mixed if s.scene == "drawn" and s.kind == "clear" and s.size == (640, 360)
                and not s.distractors)
    a, b = render_frames(spec), render_frames(ClipSpec(**asdict(spec)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], render_frames(replace(spec, scene=""))[0])


def test_drawn_scenes_carry_the_fine_texture_the_procedural_ones_lack() -> None:
    """What the drawn views are for: lawns, gravel, leaves, tiles and fences give far more pixel-to-pixel
    contrast than the smooth procedural scenes (measured on the grey picture, as the detector sees it)."""
    from scenes import drawn_background

    def fine_contrast(rgb: np.ndarray) -> float:
        g = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return float(np.median(np.abs(np.diff(g, axis=1))))

    drawn = [drawn_background(np.random.default_rng(i), 640, 360) for i in range(6)]
    procedural = [procedural_background(np.random.default_rng(i), 640, 360) for i in range(6)]
    for bg in drawn:
        assert bg.shape == (360, 640, 3) and bg.min() >= 0 and bg.max() <= 255
    assert np.array_equal(drawn[0], drawn_background(np.random.default_rng(0), 640, 360))
    assert np.median([fine_contrast(b) for b in drawn]) > 2 * np.median([fine_contrast(b) for b in procedural])


def test_training_clips_are_decoded_as_sent(tmp_path: Path) -> None:
    """The renderer never sends a picture twice, so train.py decodes its clips as sent: the core's check for
    repeated pictures takes this rain clip with camera shake for one and would leave frames out of its first window.
    A frame cache records how it was decoded, and one of the other kind is refused."""
    spec = specs_for(1, 40, [], 2)[39]
    path = render_clip(spec, tmp_path / "clip.mp4")
    (sent,) = decode(path, [clip_request(spec, as_sent=True)])
    (served,) = decode(path, [clip_request(spec)])

    def consecutive(window: list) -> bool:  # type: ignore[type-arg]
        return bool(np.allclose(np.diff([f.time for f in window]), 1 / spec.fps))

    assert len(sent.windows) == 2 and all(len(w) == 6 and consecutive(w) for w in sent.windows)
    assert not consecutive(served.windows[0])  # what training on the detector's request would have learnt from
    build(1, 1, [], windows=2, workers=1, frames=tmp_path / "cache", as_sent=True)
    with pytest.raises(ValueError, match="holds frames as sent, not the detector windows"):
        build(1, 1, [], windows=2, workers=1, frames=tmp_path / "cache")


def test_evaluate_scores_a_cached_set_with_and_without_the_cnn(tmp_path: Path) -> None:
    """``evaluate.py`` renders a held-out set into its ``--frames`` cache once and prints the results table; with the
    CNN on it analyses each window once for both the features and the CNN's maps, and those features are the ones
    the MLP alone is scored on (``--save``)."""
    import subprocess

    def run(*extra: str) -> str:
        cmd = [sys.executable, str(TRAIN / "evaluate.py"), "--clips", "6", "--seed", "2", "--workers", "2",
               "--frames", str(tmp_path / "frames"), "--no-timing", *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    fused = run("--save", str(tmp_path / "fused.npz"))
    alone = run("--cnn-weight", "0", "--save", str(tmp_path / "alone.npz"))
    assert "held-out set: 6 clips" in fused and "threshold 0.65" in fused and "threshold 0.75" in alone
    assert "AUC weather vs clear" in fused and "| rain | heavy |" in alone
    with np.load(tmp_path / "fused.npz") as a, np.load(tmp_path / "alone.npz") as b:
        assert a["x"].shape == (6 * 3, len(FEATURE_NAMES)) and np.array_equal(a["x"], b["x"])


def test_bitrate_capped_encoding_keeps_to_the_cap(tmp_path: Path) -> None:
    base = ClipSpec(seed=11, kind="rain", intensity="heavy", windows=2, fps=15)
    sizes = {}
    for kbit in (0, 60):
        spec = ClipSpec(**{**asdict(base), "bitrate": kbit, "crf": 19})
        sizes[kbit] = render_clip(spec, tmp_path / f"{kbit}.mp4").stat().st_size
    # 12 frames at 15 fps = 0.8 s; a one-second VBV buffer allows up to about twice the rate in so short a clip
    assert sizes[60] * 8 / 1000 < 2 * 60 * 0.8 * 2
    assert sizes[60] < sizes[0] / 2  # heavy rain at CRF 19 needs far more than 60 kbit/s


def test_artefact_renders_keep_the_clip_and_add_only_their_artefact() -> None:
    """``train/artefacts.py``: the OSD is burnt into the corners only and ticks once per second; a clip sent with
    every picture twice still gives the detector all its windows (distinct pictures); every artefact analyses, the
    spike-map CNN's clip score included."""
    from artefacts import ARTEFACTS, analysis_with, burn_osd

    spec = replace(specs_for(2, 1, photo_list("eval"), 3)[0], kind="rain", intensity="heavy", size=(640, 360), fps=10)
    blank = [np.zeros((360, 640, 3), np.uint8)] * 25
    osd = np.stack(burn_osd(blank, spec.fps, spec.seed))
    rows, cols = np.nonzero(osd.any(axis=(0, 3)))
    assert rows.size and all((r < 60 and c < 320) or (r > 300 and c > 320) for r, c in zip(rows, cols, strict=True))
    ticks = [i for i in range(1, len(osd)) if not np.array_equal(osd[i], osd[i - 1])]
    assert ticks and all(i % spec.fps == 0 for i in ticks)
    for artefact in ARTEFACTS:
        x, cnn = analysis_with(spec, artefact)
        assert x.shape == (3, len(FEATURE_NAMES)) and np.isfinite(x).all(), artefact
        assert 0.0 <= cnn <= 1.0, artefact


def test_sub_stream_renders_scale_the_sensor_picture_down_in_the_camera(tmp_path: Path) -> None:
    """``--substream``: only the 640 x 360 clips change, rendered at 1920 x 1080 and scaled down before encoding, so
    the sensor noise reaches the clip averaged, as a camera's own scaler averages it in a real sub-stream."""
    import json

    from dataset import SUBSTREAM_SENSOR, load_frames

    plain = specs_for(2, 60, photo_list("eval"), 1)
    sub = specs_for(2, 60, photo_list("eval"), 1, substream=True)
    assert [replace(s, sensor=(0, 0)) for s in sub] == plain
    assert all((s.sensor == SUBSTREAM_SENSOR) == (s.size == (640, 360)) for s in sub)
    spec = replace(next(s for s in sub if s.size == (640, 360)), kind="clear", distractors=(), night=True, noise=10.0,
                   noise_kind="gauss", tnr=0.0)
    native, scaled = render_frames(replace(spec, sensor=(0, 0))), render_frames(spec)
    assert scaled[0].shape == native[0].shape == (360, 640, 3)
    # frame-to-frame change of a still scene is the noise: the scaler averages about 3 x 3 sensor pixels
    flicker = [float(np.std(f[1].astype(np.float32) - f[0])) for f in (native, scaled)]
    assert flicker[1] < 0.5 * flicker[0]
    # a frame cache keeps the sensor size (its specs.json holds lists; the cache check compares tuples)
    (tmp_path / "specs.json").write_text(json.dumps([asdict(spec)]))
    np.zeros((1, 1, 6, 360, 640), np.uint8).tofile(tmp_path / "frames.u8")
    assert asdict(load_frames(tmp_path)[1][0]) == asdict(spec)


def test_other_picture_shapes_change_only_the_shape(tmp_path: Path) -> None:
    """``evaluate.py --aspect 4:3``: the same clips with 4:3 pictures at the same widths and, under a bitrate cap,
    the same bits per pixel; their frame cache holds the 640 x 480 pictures the detector is served."""
    from dataset import analysis_height, load_frames

    plain = specs_for(2, 60, photo_list("eval"), 1)
    shaped = specs_for(2, 60, photo_list("eval"), 1, aspect=(4, 3))
    assert [replace(s, size=p.size, bitrate=p.bitrate) for s, p in zip(shaped, plain, strict=True)] == plain
    assert all(s.size[0] == p.size[0] and 3 * s.size[0] == 4 * s.size[1] for s, p in zip(shaped, plain, strict=True))
    capped = [(s, p) for s, p in zip(shaped, plain, strict=True) if p.bitrate]
    assert capped and all(np.isclose(s.bitrate * p.size[1], p.bitrate * s.size[1], rtol=0.01) for s, p in capped)
    # portrait (3:4): 1280 x 1708, not 1706, so that every width is served 640 x 854 (one shape per frame cache)
    assert {analysis_height(s) for s in specs_for(3, 200, photo_list("eval"), 1, "stress", aspect=(3, 4))} == {854}
    build(2, 1, photo_list("eval"), windows=1, workers=1, frames=tmp_path / "cache", aspect=(4, 3))
    frames, specs = load_frames(tmp_path / "cache")
    assert frames.shape[-2:] == (480, 640) and frames[0].any()
    assert asdict(specs[0]) == asdict(shaped[0])


def _streak_lean(diff: np.ndarray) -> float:
    """The mean lean of the streaks of a one-frame difference picture off the vertical (degrees, positive: their
    lower end to the right), from its structure tensor."""
    gy, gx = np.gradient(np.clip(diff, 0, None))
    jxx, jyy, jxy = float((gx * gx).sum()), float((gy * gy).sum()), float((gx * gy).sum())
    # the dominant gradient is across the streaks, at this angle from the x axis (y down); the streaks are at right
    # angles to it, so a streak whose lower end is to the right has its gradient turned the other way
    return float(-np.degrees(0.5 * np.arctan2(2 * jxy, jxx - jyy)))


def test_tilted_cameras_see_rain_converge_below_the_picture() -> None:
    """``evaluate.py --tilt``: the same clips seen by cameras looking down 15-45 degrees; the streaks of the picture's
    left half lean the other way from those of its right half (towards the vanishing point of the vertical), where a
    level camera's streaks all fall the same way; a level camera's clips are drawn as before."""
    from dataset import TILT_RANGE

    plain = specs_for(2, 60, photo_list("eval"), 1)
    tilted = specs_for(2, 60, photo_list("eval"), 1, tilt=1)
    assert [replace(s, tilt=0.0) for s in tilted] == plain
    assert all(TILT_RANGE[0] <= s.tilt <= TILT_RANGE[1] for s in tilted) and len({s.tilt for s in tilted}) > 30
    # ``train.py --tilt SHARE``: that share of the cameras, each one looking down as far as in the set of all
    share = specs_for(2, 60, photo_list("eval"), 1, tilt=0.35)
    assert 12 <= sum(s.tilt > 0 for s in share) <= 30
    assert all(s == (t if s.tilt else p) for s, t, p in zip(share, tilted, plain, strict=True))
    spec = ClipSpec(seed=11, kind="rain", intensity="heavy", size=(640, 360), noise=0.0)
    leans = {}
    for tilt in (0.0, 30.0):
        frames = [f.astype(np.float32).mean(axis=2) for f in render_frames(replace(spec, tilt=tilt))]
        diffs = [b - a for a, b in zip(frames, frames[1:], strict=False)]
        leans[tilt] = [np.mean([_streak_lean(d[:, half]) for d in diffs])
                       for half in (slice(0, 320), slice(320, 640))]
    assert abs(leans[0.0][0] - leans[0.0][1]) < 3 and abs(np.mean(leans[0.0])) > 10  # this clip's wind
    assert leans[30.0][0] - leans[30.0][1] > 20  # the left half leans further right than the right half
    assert abs(np.mean(leans[30.0]) - np.mean(leans[0.0])) < 5  # and the wind still blows the same way
    # snow falls towards the same point: the same flakes, moved otherwise
    snow = replace(spec, kind="snow")
    level, looking_down = render_frames(snow), render_frames(replace(snow, tilt=30.0))
    assert np.array_equal(level[0], looking_down[0]) and not np.array_equal(level[-1], looking_down[-1])


def test_clips_sent_as_av1_are_the_same_pictures_re_encoded(tmp_path: Path) -> None:
    """``train.py --av1 SHARE`` / ``evaluate.py --av1``: that share of the clips (all, given alone) is sent as AV1 as a
    video site re-encodes footage; which clips is drawn from each clip's own seed, every other draw stays. The
    detector's windows still start at the clip's keyframes, and show the same pictures, smoothed by AV1's filters."""
    from alarmcloud.video import probe
    from dataset import clip_windows

    plain = specs_for(2, 60, photo_list("eval"), 1)
    av1 = specs_for(2, 60, photo_list("eval"), 1, av1=1)
    assert av1 == [replace(s, codec="av1") for s in plain]
    share = specs_for(2, 60, photo_list("eval"), 1, av1=0.3)
    assert 8 <= sum(s.codec == "av1" for s in share) <= 28
    assert all(s == (a if s.codec else p) for s, a, p in zip(share, av1, plain, strict=True))
    spec = ClipSpec(seed=12, kind="rain", intensity="heavy", size=(640, 360), windows=2)
    assert probe(render_clip(replace(spec, codec="av1"), tmp_path / "av1.mp4")).video_codec == "av1"
    h264, sent_as_av1 = clip_windows(spec, as_sent=True), clip_windows(replace(spec, codec="av1"), as_sent=True)
    assert h264.shape == sent_as_av1.shape
    diff = np.abs(h264.astype(np.float32) - sent_as_av1)
    assert 0.1 < diff.mean() < 6  # re-encoded, not another picture


def test_wide_angle_lenses_bend_straight_lines_and_keep_the_centre() -> None:
    """``evaluate.py --lens``: the same clips through wide-angle to fisheye lenses. ``FisheyeWarp`` keeps one canvas
    pixel per picture pixel at the centre, bends a straight line off the centre outwards (barrel distortion: its
    middle further out than its ends), squeezes the edges and leaves no pixel of the picture dark."""
    from dataset import LENS_RANGE
    from synth import FisheyeWarp

    plain = specs_for(2, 60, photo_list("eval"), 1)
    lensed = specs_for(2, 60, photo_list("eval"), 1, lens=True)
    assert [replace(s, lens=0.0) for s in lensed] == plain
    assert all(LENS_RANGE[0] <= s.lens <= LENS_RANGE[1] for s in lensed)
    warp = FisheyeWarp(640, 360, 65.0)
    cw, ch = warp.canvas
    assert cw > 640 * 1.5 and ch > 360 * 1.5
    canvas = np.zeros((ch, cw, 1), np.float32)
    canvas[:, cw // 2 + 200] = 255.0  # a vertical line 200 canvas pixels right of the centre
    canvas[ch // 2, cw // 2 + 20] = 255.0  # and a dot 20 pixels right of it (at the centre's scale)
    picture = warp(canvas)[..., 0]
    assert picture.shape == (360, 640) and np.isfinite(picture).all()
    row = picture[180, 330:400]
    assert abs(330 + int(np.argmax(row)) - (320 + 20)) <= 1  # the centre keeps its scale
    xs = [int(np.argmax(picture[y, 360:])) + 360 for y in (5, 180, 354)]  # right of the dot
    assert xs[1] > xs[0] + 10 and xs[1] > xs[2] + 10  # bowed outwards
    assert xs[1] < 320 + 200  # and pulled in: the lens squeezes the scene away from its centre
    assert (warp.cover > 0).all()
    # a clip through the lens: the camera's picture size, the same every time
    spec = ClipSpec(seed=4, kind="rain", intensity="medium", size=(640, 360), lens=60.0)
    a, b = render_frames(spec), render_frames(spec)
    assert a[0].shape == (360, 640, 3) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # a camera that also looks down: the rain converges on the vertical as the lens sees it, 90 - tilt degrees below
    # the axis (the canvas spans the lens's field of view, not the level pictures' TILT_HFOV)
    from synth import vanishing_point

    tmax = math.radians(65.0)
    x, y = vanishing_point(replace(spec, lens=65.0, tilt=30.0), ch, cw) or (0.0, 0.0)
    below = math.degrees(math.atan(math.hypot(x - cw / 2, y - ch / 2) * math.tan(tmax) / (math.hypot(cw, ch) / 2)))
    assert x == cw / 2 and below == pytest.approx(90.0 - 30.0, abs=0.01)


def test_a_steady_shower_keeps_one_rate_and_the_rest_of_the_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """``steady_eval.py``: a steady shower draws one rate per clip and each picture's number of streaks as a Poisson
    draw of it (as drawn, each picture draws its own from the intensity's whole band); nothing else of the clip
    changes, so the two renders are scored clip against clip."""
    import synth
    from steady_eval import steady

    spec = next(s for s in specs_for(2, 80, photo_list("eval"), 2)
                if s.kind == "rain" and s.intensity == "heavy" and s.size == (640, 360))
    counts: list[float | None] = []
    use_counts = True
    rain_alpha = synth.rain_alpha

    def spy(rng, h, w, spec, angle, count=None):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        counts.append(count)
        return rain_alpha(rng, h, w, spec, angle, count if use_counts else None)

    monkeypatch.setattr(synth, "rain_alpha", spy)
    drawn = render_frames(spec)
    assert counts == [None] * len(drawn)
    counts.clear()
    render_frames(steady(spec))
    rates = np.array(counts, dtype=float)
    lo, hi = synth.INTENSITY["heavy"]
    assert len(rates) == len(drawn) and lo <= rates.mean() <= hi
    assert rates.std() < 4 * np.sqrt(rates.mean())  # one rate: Poisson spread only, not the band's 600-2,500
    use_counts = False  # the steady render with the band's own draws is the clip as drawn, picture for picture
    assert all(np.array_equal(x, y) for x, y in zip(render_frames(steady(spec)), drawn, strict=True))
