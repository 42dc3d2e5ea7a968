"""``alarmcloud detect --detector rain clip.mp4 --json`` after the install, offline: the same pipeline as the server,
one JSON object per clip with the verdict, the findings and the rain score (also below the threshold)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def detect(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alarmcloud.cli", "detect", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "ALARMCLOUD_CONFIG": ""})


def test_detect_json_gives_verdicts_findings_and_scores(clips: dict[str, Path], tmp_path: Path) -> None:
    out = detect("--detector", "rain", clips["rain"], clips["vegetation"], "--json")
    assert out.returncode == 0, out.stderr
    rain, plants = (json.loads(line) for line in out.stdout.splitlines())
    assert (rain["file"], rain["verdict"]) == (str(clips["rain"]), "false_alarm:rain")
    (finding,) = rain["findings"]
    assert finding["label"] == "rain" and finding["score"] >= 0.75
    assert rain["scores"] == {"rain": finding["score"]}
    # swaying plants: nothing found, and the score says how far below the threshold it stayed
    assert plants["findings"] == [] and 0 < plants["scores"]["rain"] < 0.75

    # a per-camera option works here too: with a threshold below the plants' score they count as rain
    low = f"{max(0.05, plants['scores']['rain'] - 0.01):.2f}"
    out = detect("-d", "rain", "--option", f"rain.threshold={low}", clips["vegetation"], "--json")
    assert out.returncode == 0, out.stderr
    got: dict[str, Any] = json.loads(out.stdout)
    assert [f["label"] for f in got["findings"]] in (["rain"], ["snow"])

    # the human form says the same
    out = detect("-d", "rain", clips["vegetation"])
    assert out.returncode == 0 and f"below the threshold: rain {plants['scores']['rain']:.2f}" in out.stdout

    # these are 640 x 360 clips: the detector's accuracy is measured on wider ones, and the output says so
    (advice,) = rain["advice"]
    assert (advice["detector"], advice["code"], advice["min_source_width"]) == ("rain", "source_too_narrow", 960)
    assert advice["message"] == ("Rain and snow is measured to work well on clips at least 960 px wide; this clip "
                                 "is 640 × 360")
    assert f"note: {advice['message']}" in out.stdout


def test_detect_has_no_advice_for_a_main_stream_clip(tmp_path: Path) -> None:
    from alarmcloud.testing import make_clip

    clip = make_clip(tmp_path / "main.mp4", seconds=2, width=960, height=540, fps=10)
    out = detect("-d", "rain", clip, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["advice"] == []
    out = detect("-d", "rain", clip)
    assert out.returncode == 0 and "note:" not in out.stdout


def _turned(src: Path, dst: Path) -> Path:
    """``src`` stored as a phone stores video: each picture turned a quarter clockwise, with a display matrix that
    turns it back for showing (players, and the core, show it as ``src`` is)."""
    import av
    import numpy as np

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ivs = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=ivs.average_rate)
        vs.width, vs.height, vs.pix_fmt = ivs.codec_context.height, ivs.codec_context.width, "yuv420p"
        vs.codec_context.gop_size = 30
        vs.codec_context.options = {"bf": "0", "crf": "18"}
        vs.set_display_rotation(90)
        for frame in inp.decode(ivs):
            turned = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), -1))
            for packet in vs.encode(av.VideoFrame.from_ndarray(turned, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return dst


def test_a_clip_stored_turned_is_analysed_and_described_as_shown(clips: dict[str, Path], tmp_path: Path) -> None:
    """Rain in a clip whose container turns its pictures for showing falls down the picture the detector sees, and
    the advice gives the size as shown (the coded pictures are 360 wide and 640 high)."""
    out = detect("--detector", "rain", _turned(clips["rain"], tmp_path / "turned.mp4"), "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["verdict"] == "false_alarm:rain" and got["findings"][0]["score"] >= 0.75
    assert got["advice"][0]["message"].endswith("this clip is 640 × 360")


def test_detect_names_what_is_wrong(clips: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = detect("-d", "rain", "--json", broken, clips["rain"])
    assert out.returncode == 1  # a clip that could not be read fails the run, the others are still analysed
    bad, good = (json.loads(line) for line in out.stdout.splitlines())
    assert bad["verdict"] is None and bad["error"] and good["verdict"] == "false_alarm:rain"
    out = detect("-d", "nope", clips["rain"])
    assert out.returncode == 2 and "unknown detector 'nope'" in out.stderr and "rain" in out.stderr
