"""Make the plate detector's int8 text detector: PP-OCRv6 small detection from the rapidocr wheel, quantised.

Usage (from the repository root; needs ``onnx``, see ``requirements.txt``):
    python -m venv /tmp/q && /tmp/q/bin/pip install -r plugins/detect_plates/train/requirements.txt
    /tmp/q/bin/python plugins/detect_plates/train/quantize.py [--data ../shared/data/plates]

The float model's weights are the rapidocr wheel's (``PP-OCRv6_det_small.onnx``, Apache-2.0, PaddleOCR); this
script changes only their number format. It converts the model to opset 17, and quantises it statically (QDQ,
int8 weights per output channel, uint8 activations), all but the head's two transposed convolutions, which draw
the probability map and stay float (they cost almost nothing, and the map's values decide the boxes). The weights
use 7 of the 8 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only: many servers, AMD before Zen 4)
onnxruntime multiplies uint8 by int8 in pairs summed into 16 bits, which overflow with full-range weights, so the
same file drew another map there than on a CPU with VNNI (a faint plate found on one and not the other). The
activations' ranges are calibrated on camera views of the *dev* photos of the labelled plate set (the held-out
third is never seen), as the detector takes them: 1280x720 and 1920x1080 views scaled to ``detect_side`` 960.
The result is written into the package (``models/PP-OCRv6_det_small_int8.onnx``): the second look's detections
run on it by default (``PlatesConfig.int8_second_look``), every detection with ``int8``. The run is
deterministic: the same data and package versions give the same file (onnx 1.23.2, onnxruntime 1.31.1, rapidocr
3.10.0: sha256 5245593f...45920a, 2.9 MB, in about 25 s; ``--full-range``: 1668ca1d...8d3d9b, the file shipped
before 2026-11-26).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "eval"))

from alarmcloud_detect_plates.detector import _bgr  # noqa: E402
from alarmcloud_detect_plates.ocr import (  # noqa: E402
    DET_MODEL,
    INT8_DET_MODEL,
    det_input,
    model_dir,
    package_models,
    sized,
)
from clips import box_of, default_data, load_rows, photo_scene, split_of  # noqa: E402

#: camera views the calibration sees: (width, height) of the frame, each scaled to the detector's 960 px
VIEWS = ((1280, 720), (1920, 1080))


class Views(CalibrationDataReader):
    """Detector inputs of camera views of the dev photos, one at a time."""

    def __init__(self, data: Path, count: int) -> None:
        rows = [r for r in load_rows(data) if split_of(r["file"]) == "dev"]
        self.data = data
        self.rows = rows[:: max(1, len(rows) // count)][:count]
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.rows):
            return None
        row, (w, h) = self.rows[self.i], VIEWS[self.i % len(VIEWS)]
        self.i += 1
        img = Image.open(self.data / row["file"]).convert("RGB")
        rgb = photo_scene(img, "still", 1.0, box_of(row))(0, 0.0, w, h)
        small = sized(_bgr(rgb), 960 / max(w, h))
        print(f"  {self.i:3d}/{len(self.rows)} {row['file']} {w}x{h}", flush=True)
        return {"x": det_input(small)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data(), help="the labelled plate photos (labels.csv)")
    ap.add_argument("--count", type=int, default=48, help="dev photos to calibrate on")
    ap.add_argument("--keep-first", type=int, default=0, help="first convolutions left float")
    ap.add_argument("--keep-last", type=int, default=2, help="last convolutions (the head) left float")
    ap.add_argument("--out", type=Path, default=package_models() / INT8_DET_MODEL)
    ap.add_argument("--full-range", action="store_true",
                    help="8-bit weights (7-bit by default: without VNNI, x86 CPUs saturate on full-range int8)")
    args = ap.parse_args()
    reader = Views(args.data, args.count)
    with tempfile.TemporaryDirectory() as tmp:
        opset17, pre = Path(tmp) / "opset17.onnx", Path(tmp) / "pre.onnx"
        # per-channel QDQ needs DequantizeLinear's axis (opset 13+); the wheel's model is opset 11
        onnx.save(version_converter.convert_version(onnx.load(str(model_dir() / DET_MODEL)), 17), str(opset17))
        quant_pre_process(str(opset17), str(pre), skip_symbolic_shape=True)
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type in ("Conv", "ConvTranspose")]
        # the head (the last two, transposed convolutions that draw the probability map) stays float: all int8
        # read 2 plates fewer of the 336 at the same cost; the first convolution (the raw pixels) may stay float
        # for experiments, at the price of most of the gain (see the README, "Cheaper text detection")
        keep = [*convs[: args.keep_first], *convs[len(convs) - args.keep_last :]]
        print(f"calibrating on {len(reader.rows)} dev photos; float: {', '.join(keep) or 'none'} ...", flush=True)
        quantize_static(
            str(pre),
            str(args.out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep,
            reduce_range=not args.full_range,
        )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
