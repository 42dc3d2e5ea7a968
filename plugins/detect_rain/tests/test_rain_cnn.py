"""The spike-map CNN shipped with the MLP: its input, the fusion, and which model's threshold applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alarmcloud_detect_rain.detector import (
    CNN_FILE,
    RainConfig,
    RainDetector,
    default_model_path,
    fuse,
    model_threshold,
)
from alarmcloud_detect_rain.features import MAP_FRAMES, window_analysis, window_features
from alarmcloud_detect_rain.onnx_io import read_mlp, write_mlp


@pytest.fixture(scope="module")
def mlp_alone() -> RainDetector:
    return RainDetector(RainConfig(cnn_weight=0))


def test_the_shipped_pair_is_fused_at_its_own_threshold(detector: RainDetector, mlp_alone: RainDetector) -> None:
    assert default_model_path(CNN_FILE).is_file() and default_model_path(CNN_FILE).stat().st_size < 500_000
    meta = detector.cnn.get_modelmeta().custom_metadata_map  # type: ignore[union-attr]
    assert detector.cnn_weight == float(meta["fusion_weight"]) == 0.5
    assert detector.threshold == model_threshold(meta) == 0.65  # chosen out of fold for the fused score
    assert mlp_alone.cnn is None and mlp_alone.threshold == 0.75  # the MLP's own, as before the CNN shipped


def test_the_maps_come_from_the_features_own_pass(clips: dict[str, Path], frames_for, detector) -> None:  # type: ignore[no-untyped-def]
    window = [f.image for f in frames_for(detector, clips["rain"]).windows[0]]
    feats, maps = window_analysis(window, maps=True)
    assert np.array_equal(feats, window_features(window))  # asking for the maps changes no feature
    assert maps is not None and maps.dtype == np.float16 and maps.shape == (MAP_FRAMES, 350, 630)
    assert window_analysis(window)[1] is None
    # the shake correction crops a 5-pixel margin when it shifts: the maps have that size either way
    shaken = [np.roll(f, (2 * (i % 2), 3 * (i % 2)), axis=(0, 1)) for i, f in enumerate(window)]
    assert window_analysis(shaken, maps=True)[1].shape == maps.shape  # type: ignore[union-attr]
    # a drop brightens a pixel for one frame: many map pixels far above the noise in rain, hardly any when static
    static = [f.image for f in frames_for(detector, clips["static"]).windows[0]]
    rainy, still = (float((window_analysis(w, maps=True)[1] > 4).mean()) for w in (window, static))  # type: ignore[operator]
    assert rainy > 0.005 and still < rainy / 10


def test_the_cnn_alone_ranks_rain_above_every_clear_clip(clips: dict[str, Path], frames_for) -> None:  # type: ignore[no-untyped-def]
    cnn_only = RainDetector(RainConfig(cnn_weight=1.0))
    score = {name: 1.0 - cnn_only.scores(frames_for(cnn_only, path))["clear"] for name, path in clips.items()}
    rain = min(score["rain"], score["night_rain"])
    clear = max(score[n] for n in ("person", "vegetation", "static", "night_clear"))
    assert rain > 0.65 and rain - clear > 0.3, score


def test_the_clip_score_is_the_fusion_of_both_models(detector: RainDetector, mlp_alone: RainDetector,
                                                     clips: dict[str, Path], frames_for) -> None:  # type: ignore[no-untyped-def]
    frames = frames_for(detector, clips["night_rain"])
    cnn_only = RainDetector(RainConfig(cnn_weight=1.0))
    mlp, cnn = (1.0 - d.scores(frames)["clear"] for d in (mlp_alone, cnn_only))
    fused = detector.scores(frames)
    assert 1.0 - fused["clear"] == pytest.approx(fuse(mlp, cnn, 0.5), abs=1e-6)
    assert sum(fused.values()) == pytest.approx(1.0, abs=1e-6)
    (finding,) = detector.analyze(frames)
    assert finding.score == pytest.approx(1.0 - fused["clear"], abs=1e-6) and finding.extra["windows"] == 3
    assert fuse(0.9, 0.2, 0.0) == pytest.approx(0.9) and fuse(0.9, 0.2, 1.0) == pytest.approx(0.2)
    assert fuse(0.8, 0.8, 0.5) == pytest.approx(0.8) and fuse(1.0, 0.0, 0.5) == pytest.approx(0.5)


def test_an_operators_own_mlp_is_fused_as_its_metadata_says(tmp_path: Path) -> None:
    """A model of the operator's own (``model_path``) runs fused with the CNN weight `alarmcloud rain recalibrate`
    measured it with (``cnn_weight`` in its metadata), alone without one (a recalibration of an older release, at
    its own threshold); a configured CNN weight always wins."""
    w = read_mlp(default_model_path())
    w.metadata["threshold"] = "0.70"
    own = write_mlp(tmp_path / "own.onnx", w)
    alone = RainDetector(RainConfig(model_path=own))
    assert alone.cnn is None and alone.threshold == 0.7
    fused = RainDetector(RainConfig(model_path=own, cnn_weight=0.3))
    assert fused.cnn is not None and fused.cnn_weight == 0.3 and fused.threshold == 0.65
    assert RainDetector(RainConfig(model_path=own, cnn_weight=0.3, threshold=0.8)).threshold == 0.8
    w.metadata["cnn_weight"] = "0.4"
    recalibrated = RainDetector(RainConfig(model_path=write_mlp(tmp_path / "recal.onnx", w)))
    assert recalibrated.cnn is not None and recalibrated.cnn_weight == 0.4 and recalibrated.threshold == 0.65
    assert RainDetector(RainConfig(model_path=tmp_path / "recal.onnx", cnn_weight=0)).cnn is None
    w.metadata["cnn_weight"] = "0"
    assert RainDetector(RainConfig(model_path=write_mlp(tmp_path / "recal0.onnx", w))).cnn is None
    w.metadata["cnn_weight"] = "lots"
    with pytest.raises(ValueError, match="cnn_weight 'lots' in its metadata is not a number from 0 to 1"):
        RainDetector(RainConfig(model_path=write_mlp(tmp_path / "bad.onnx", w)))
    # the shipped MLP named by its path is the shipped MLP: fused by the CNN's own weight
    shipped = RainDetector(RainConfig(model_path=default_model_path()))
    assert shipped.cnn is not None and shipped.cnn_weight == 0.5


def test_a_file_that_is_not_a_spike_map_cnn_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a spike-map CNN of this plugin"):
        RainDetector(RainConfig(cnn_path=default_model_path()))
    missing = tmp_path / "missing.onnx"
    with pytest.raises(Exception, match="missing.onnx"):  # onnxruntime raises its own error types
        RainDetector(RainConfig(cnn_path=missing))
    assert RainDetector(RainConfig(cnn_path=missing, cnn_weight=0)).cnn is None  # off: never read


def test_the_fused_score_takes_the_cnns_codec_shift_where_it_has_one(tmp_path: Path) -> None:
    """``codec_calibration.py --write`` puts the shift measured for the fused score into the CNN's metadata
    (``onnx_io.set_metadata``, the network untouched); the detector uses it when fused, the MLP's alone."""
    from alarmcloud_detect_rain.onnx_io import read_metadata, set_metadata

    cnn = tmp_path / "cnn.onnx"
    cnn.write_bytes(default_model_path(CNN_FILE).read_bytes())
    assert read_metadata(cnn)["score_shift"] == "av1:0.51,hevc:0.75"  # the shipped CNN's, measured for the fused score
    set_metadata(cnn, {"score_shift": None})  # a CNN without a shift of its own: the MLP's for both
    before = read_metadata(cnn)
    assert "score_shift" not in before
    assert RainDetector(RainConfig(cnn_path=cnn)).score_shift == RainDetector(RainConfig(cnn_weight=0)).score_shift
    set_metadata(cnn, {"score_shift": "hevc:0.30", "threshold": "0.6"})
    assert read_metadata(cnn) == before | {"score_shift": "hevc:0.30", "threshold": "0.6"}
    fused = RainDetector(RainConfig(cnn_path=cnn))
    assert fused.score_shift == {"hevc": 0.3} and fused.threshold == 0.6
    assert RainDetector(RainConfig(cnn_path=cnn, cnn_weight=0)).score_shift["hevc"] > 0.3  # the MLP's own
    maps = np.random.default_rng(0).uniform(-2, 8, (2, MAP_FRAMES, 350, 630)).astype(np.float32)
    shipped = RainDetector()
    assert np.array_equal(fused.cnn.run(None, {"maps": maps})[0], shipped.cnn.run(None, {"maps": maps})[0])


def test_a_recalibrated_mlp_fused_with_another_cnn_is_flagged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`alarmcloud rain recalibrate` records the network of the CNN it measured the fusion with; a deployment that
    later fuses the model with another network (an upgrade shipped a new CNN) still runs, but says so and what to
    do. Metadata written into the CNN (a threshold, a codec shift) is not another network."""
    import logging

    from alarmcloud_detect_rain.detector import CNN_NETWORK_KEY
    from alarmcloud_detect_rain.onnx_io import network_digest, set_metadata

    cnn = tmp_path / "cnn.onnx"
    cnn.write_bytes(default_model_path(CNN_FILE).read_bytes())
    set_metadata(cnn, {"score_shift": "hevc:0.5", "threshold": "0.7"})
    assert network_digest(cnn) == network_digest(default_model_path(CNN_FILE))
    w = read_mlp(default_model_path())
    w.metadata |= {"cnn_weight": "0.5", CNN_NETWORK_KEY: network_digest(cnn)[:16]}
    own = write_mlp(tmp_path / "recal.onnx", w)
    caplog.set_level(logging.WARNING, logger="alarmcloud_detect_rain.detector")
    RainDetector(RainConfig(model_path=own))
    RainDetector(RainConfig(model_path=own, cnn_path=cnn))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # another network: one bit of one weight flipped (the middle of the file is the weights' raw float data, so
    # the file stays a valid model)
    other = tmp_path / "other.onnx"
    data = bytearray(cnn.read_bytes())
    data[len(data) // 2] ^= 1
    other.write_bytes(bytes(data))
    assert network_digest(other) != network_digest(cnn)
    det = RainDetector(RainConfig(model_path=own, cnn_path=other))
    assert det.cnn is not None and det.cnn_weight == 0.5  # it still runs
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "recalibrated fused with another spike-map CNN" in warning and "other.onnx" in warning
    assert "run `alarmcloud rain recalibrate` again" in warning
