"""A small numpy MLP (features -> ReLU hidden layer -> softmax) trained with Adam; exported via ``onnx_io``."""

from __future__ import annotations

import numpy as np

from alarmcloud_detect_rain.onnx_io import MLPWeights


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    hidden: int = 32,
    epochs: int = 600,
    lr: float = 0.01,
    l2: float = 1e-3,
    seed: int = 0,
    sample_weight: np.ndarray | None = None,
) -> MLPWeights:
    """Fit the whole network full-batch with Adam (seeded, deterministic on one machine)."""
    rng = np.random.default_rng(seed)
    mean = x.mean(axis=0)
    scale = x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    n, f = z.shape
    sw = np.ones(n) if sample_weight is None else sample_weight.astype(np.float64)
    sw = sw / sw.sum()
    onehot = np.eye(n_classes)[y]
    params = [
        rng.normal(0, np.sqrt(2.0 / f), (f, hidden)),
        np.zeros(hidden),
        rng.normal(0, np.sqrt(1.0 / hidden), (hidden, n_classes)),
        np.zeros(n_classes),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for step in range(1, epochs + 1):
        w1, b1, w2, b2 = params
        pre = z @ w1 + b1
        h = np.maximum(pre, 0.0)
        p = _softmax(h @ w2 + b2)
        g_logits = (p - onehot) * sw[:, None]
        g_w2 = h.T @ g_logits + l2 * w2
        g_b2 = g_logits.sum(axis=0)
        g_h = (g_logits @ w2.T) * (pre > 0)
        g_w1 = z.T @ g_h + l2 * w1
        g_b1 = g_h.sum(axis=0)
        for i, g in enumerate((g_w1, g_b1, g_w2, g_b2)):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step)) + 1e-8)
    w1, b1, w2, b2 = params
    return MLPWeights(mean=mean, scale=scale, w1=w1, b1=b1, w2=w2, b2=b2)


def refit_head(
    base: MLPWeights,
    x: np.ndarray,
    is_weather: np.ndarray,
    epochs: int = 300,
    lr: float = 0.02,
    l2_to_base: float = 1.0,
) -> MLPWeights:
    """Recalibrate the output layer on binary feedback (weather = rain or snow) kept close to ``base``.

    The hidden features stay fixed, so a few dozen labelled clips move the decision boundary without
    forgetting what the synthetic training taught; the penalty pulls the new weights toward the old ones.
    """
    h = base.hidden(x)
    n = len(h)
    pos = is_weather.astype(bool)
    # balance the classes: owners usually report more of one kind
    sw = np.where(pos, 0.5 / max(pos.sum(), 1), 0.5 / max((~pos).sum(), 1))
    w2, b2 = base.w2.copy(), base.b2.copy()
    params = [w2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    reg = l2_to_base / max(n, 1)
    for step in range(1, epochs + 1):
        p = _softmax(h @ params[0] + params[1])
        pw = p[:, 1:].sum(axis=1)
        # d(-log p_target)/d logits for the marginal "weather" class and for "clear"
        target = np.where(pos[:, None], np.c_[np.zeros(n), p[:, 1:] / np.maximum(pw, 1e-9)[:, None]],
                          np.eye(p.shape[1])[0][None, :])
        g_logits = (p - target) * sw[:, None]
        g_w2 = h.T @ g_logits + reg * (params[0] - base.w2)
        g_b2 = g_logits.sum(axis=0) + reg * (params[1] - base.b2)
        for i, g in enumerate((g_w2, g_b2)):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.999 * v[i] + 0.001 * g * g
            params[i] = params[i] - lr * (m[i] / (1 - 0.9**step)) / (np.sqrt(v[i] / (1 - 0.999**step)) + 1e-8)
    return MLPWeights(base.mean, base.scale, base.w1, base.b1, params[0], params[1], dict(base.metadata))


def merge_ensemble(members: list[MLPWeights]) -> MLPWeights:
    """One MLP equal to the logit average of ``members`` (their hidden layers side by side).

    Each member's own standardisation is folded into its first layer so all share the first member's.
    """
    mean, scale = members[0].mean, members[0].scale
    w1s, b1s = [], []
    for m in members:
        # z_m = (x - m.mean) / m.scale = (z * scale + mean - m.mean) / m.scale
        a = scale / m.scale
        c = (mean - m.mean) / m.scale
        w1s.append(a[:, None] * m.w1)
        b1s.append(m.b1 + c @ m.w1)
    k = len(members)
    return MLPWeights(
        mean=mean,
        scale=scale,
        w1=np.concatenate(w1s, axis=1),
        b1=np.concatenate(b1s),
        w2=np.concatenate([m.w2 for m in members], axis=0) / k,
        b2=np.mean([m.b2 for m in members], axis=0),
        metadata=dict(members[0].metadata),
    )
