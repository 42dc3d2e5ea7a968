"""The shipped model file and the numpy ONNX writer/reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from alarmcloud_detect_rain.detector import default_model_path
from alarmcloud_detect_rain.features import FEATURE_NAMES, FEATURE_VERSION
from alarmcloud_detect_rain.mlp import merge_ensemble
from alarmcloud_detect_rain.onnx_io import MLPWeights, read_mlp, write_mlp


def test_shipped_model_is_small_and_matches_features() -> None:
    path = default_model_path()
    assert path.exists() and path.stat().st_size < 5 * 1024 * 1024
    w = read_mlp(path)
    assert w.w1.shape[0] == len(FEATURE_NAMES)
    assert w.metadata["feature_version"] == FEATURE_VERSION
    assert w.metadata["classes"] == "clear,rain,snow"


def test_written_model_runs_in_onnxruntime_like_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = MLPWeights(
        rng.normal(size=4),
        rng.uniform(1, 2, 4),
        rng.normal(size=(4, 6)),
        rng.normal(size=6),
        rng.normal(size=(6, 3)),
        rng.normal(size=3),
        {"k": "v"},
    )
    path = write_mlp(tmp_path / "m.onnx", w)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(5, 4)).astype(np.float32)
    got = sess.run(None, {"features": x})[0]
    np.testing.assert_allclose(got, w.predict(x), atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    back = read_mlp(path)
    np.testing.assert_allclose(back.predict(x), w.predict(x), atol=1e-5)
    assert back.metadata == {"k": "v"}


def test_merged_ensemble_is_the_logit_average_of_its_members() -> None:
    rng = np.random.default_rng(1)
    members = [
        MLPWeights(rng.normal(size=5), rng.uniform(0.5, 2, 5), rng.normal(size=(5, 4)), rng.normal(size=4),
                   rng.normal(size=(4, 3)), rng.normal(size=3))
        for _ in range(3)
    ]
    x = rng.normal(size=(7, 5))
    logits = np.mean([m.hidden(x) @ m.w2 + m.b2 for m in members], axis=0)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    merged = merge_ensemble(members)
    assert merged.w1.shape == (5, 12)
    np.testing.assert_allclose(merged.predict(x), expected, atol=1e-9)
