"""A tiny ONNX writer/reader for the rain MLP, so training and recalibration need only numpy.

The ONNX file is the single source of truth: weights are read back from it for recalibration. Only the
protobuf fields this model uses are implemented (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfo).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

INPUT = "features"
OUTPUT = "probs"
_FLOAT = 1  # TensorProto.FLOAT


# ---------------------------------------------------------------- protobuf wire format


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field_no: int, wire: int) -> bytes:
    return _varint((field_no << 3) | wire)


def _int(field_no: int, value: int) -> bytes:
    return _key(field_no, 0) + _varint(value)


def _bytes(field_no: int, value: bytes) -> bytes:
    return _key(field_no, 2) + _varint(len(value)) + value


def _str(field_no: int, value: str) -> bytes:
    return _bytes(field_no, value.encode())


def _float(field_no: int, value: float) -> bytes:
    return _key(field_no, 5) + struct.pack("<f", value)


def _parse(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Split one protobuf message into (field, wire type, value) triples."""
    out: list[tuple[int, int, int | bytes]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < len(buf):
        k = varint()
        fno, wire = k >> 3, k & 7
        if wire == 0:
            out.append((fno, wire, varint()))
        elif wire == 2:
            n = varint()
            out.append((fno, wire, buf[i : i + n]))
            i += n
        elif wire == 5:
            out.append((fno, wire, buf[i : i + 4]))
            i += 4
        elif wire == 1:
            out.append((fno, wire, buf[i : i + 8]))
            i += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


# ---------------------------------------------------------------- ONNX messages


def _tensor(name: str, arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype="<f4")
    body = b"".join(_int(1, d) for d in arr.shape) + _int(2, _FLOAT) + _str(8, name) + _bytes(9, arr.tobytes())
    return body


def _value_info(name: str, dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _str(2, d)) for d in dims)
    tensor_type = _int(1, _FLOAT) + _bytes(2, shape)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


def _node(op: str, inputs: list[str], outputs: list[str], **attrs: int | float) -> bytes:
    body = b"".join(_str(1, x) for x in inputs) + b"".join(_str(2, x) for x in outputs)
    body += _str(3, f"{op}_{outputs[0]}") + _str(4, op)
    for name, value in attrs.items():
        if isinstance(value, float):
            attr = _str(1, name) + _float(2, value) + _int(20, 1)  # AttributeProto.FLOAT
        else:
            attr = _str(1, name) + _int(3, value) + _int(20, 2)  # AttributeProto.INT
        body += _bytes(5, attr)
    return body


@dataclass
class MLPWeights:
    """Standardisation plus a one-hidden-layer MLP with a softmax over ``classes``."""

    mean: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    metadata: dict[str, str] = field(default_factory=dict)

    def hidden(self, x: np.ndarray) -> np.ndarray:
        """Hidden-layer activations for standardised-then-raw features ``x`` (N, F)."""
        z = (x - self.mean) / self.scale
        return np.maximum(z @ self.w1 + self.b1, 0.0)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) computed in numpy (mirrors the ONNX graph)."""
        logits = self.hidden(x) @ self.w2 + self.b2
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)


def write_mlp(path: str | Path, w: MLPWeights) -> Path:
    """Serialise ``w`` as an ONNX model (opset 13): features (N, F) float32 -> probs (N, C)."""
    n_feat, n_cls = w.w1.shape[0], w.w2.shape[1]
    inits = {
        "mean": w.mean.reshape(1, -1),
        "inv_scale": (1.0 / w.scale).reshape(1, -1),
        "w1": w.w1,
        "b1": w.b1.reshape(1, -1),
        "w2": w.w2,
        "b2": w.b2.reshape(1, -1),
    }
    nodes = [
        _node("Sub", [INPUT, "mean"], ["centred"]),
        _node("Mul", ["centred", "inv_scale"], ["z"]),
        _node("MatMul", ["z", "w1"], ["h0"]),
        _node("Add", ["h0", "b1"], ["h1"]),
        _node("Relu", ["h1"], ["h"]),
        _node("MatMul", ["h", "w2"], ["l0"]),
        _node("Add", ["l0", "b2"], ["logits"]),
        _node("Softmax", ["logits"], [OUTPUT], axis=1),
    ]
    graph = b"".join(_bytes(1, n) for n in nodes) + _str(2, "rain_mlp")
    graph += b"".join(_bytes(5, _tensor(k, v)) for k, v in inits.items())
    graph += _bytes(11, _value_info(INPUT, ["N", n_feat])) + _bytes(12, _value_info(OUTPUT, ["N", n_cls]))
    model = _int(1, 8) + _str(2, "alarmcloud-detect-rain") + _str(3, "0.1.0")
    model += _bytes(7, graph) + _bytes(8, _str(1, "") + _int(2, 13))
    for k, v in w.metadata.items():
        model += _bytes(14, _str(1, k) + _str(2, v))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(model)
    tmp.replace(path)  # atomic: a running detector never sees half a model
    return path


def read_mlp(path: str | Path) -> MLPWeights:
    """Read the weights and metadata of a model written by ``write_mlp``."""
    model = _parse(Path(path).read_bytes())
    tensors: dict[str, np.ndarray] = {}
    meta: dict[str, str] = {}
    for fno, _, val in model:
        if fno == 7 and isinstance(val, bytes):
            for gno, _, gval in _parse(val):
                if gno == 5 and isinstance(gval, bytes):
                    dims: list[int] = []
                    name, raw = "", b""
                    for tno, _, tval in _parse(gval):
                        if tno == 1 and isinstance(tval, int):
                            dims.append(tval)
                        elif tno == 8 and isinstance(tval, bytes):
                            name = tval.decode()
                        elif tno == 9 and isinstance(tval, bytes):
                            raw = tval
                    tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(dims).astype(np.float64)
        elif fno == 14 and (entry := _metadata_entry(val)):
            meta[entry[0]] = entry[1]
    missing = {"mean", "inv_scale", "w1", "b1", "w2", "b2"} - tensors.keys()
    if missing:
        raise ValueError(f"{path} is not a rain MLP model (missing {sorted(missing)})")
    return MLPWeights(
        mean=tensors["mean"].ravel(),
        scale=1.0 / tensors["inv_scale"].ravel(),
        w1=tensors["w1"],
        b1=tensors["b1"].ravel(),
        w2=tensors["w2"],
        b2=tensors["b2"].ravel(),
        metadata=meta,
    )


def _metadata_entry(val: int | bytes) -> tuple[str, str] | None:
    if not isinstance(val, bytes):
        return None
    entry = {k: v for k, _, v in _parse(val)}
    key, value = entry.get(1, b""), entry.get(2, b"")
    return (key.decode(), value.decode()) if isinstance(key, bytes) and isinstance(value, bytes) else None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata (``metadata_props``) of any ONNX model file."""
    return dict(e for fno, _, val in _parse(Path(path).read_bytes()) if fno == 14 and (e := _metadata_entry(val)))


def network_digest(path: str | Path) -> str:
    """SHA-256 (hex) of the model's network alone: its graph (structure and weights), not its metadata, so a
    threshold or score shift written into the file (``set_metadata``) keeps the digest."""
    graphs = [val for fno, wire, val in _parse(Path(path).read_bytes()) if fno == 7 and wire == 2]
    if len(graphs) != 1:
        raise ValueError(f"{path} is not an ONNX model with one graph")
    assert isinstance(graphs[0], bytes)
    return hashlib.sha256(graphs[0]).hexdigest()


def set_metadata(path: str | Path, updates: dict[str, str | None]) -> Path:
    """Set (a value) or remove (None) metadata keys of any ONNX model file (the spike-map CNN too), keeping every
    other field byte for byte; written atomically like ``write_mlp``."""
    path = Path(path)
    out = b""
    for fno, wire, val in _parse(path.read_bytes()):
        entry = _metadata_entry(val) if fno == 14 else None
        if entry is not None and entry[0] in updates:
            continue  # replaced below
        if wire == 0:
            assert isinstance(val, int)
            out += _int(fno, val)
        elif wire == 2:
            assert isinstance(val, bytes)
            out += _bytes(fno, val)
        else:
            assert isinstance(val, bytes)
            out += _key(fno, wire) + val
    for k, v in updates.items():
        if v is not None:
            out += _bytes(14, _str(1, k) + _str(2, v))
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(out)
    tmp.replace(path)
    return path
