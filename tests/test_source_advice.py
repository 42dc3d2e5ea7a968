"""A detector that needs wider clips than a camera sends says so: ``min_source_width`` on its spec, ``source`` and
``advice`` in ``GET/PUT .../detectors`` (over real HTTP, checked against the OpenAPI document)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from alarmcloud import ClipFrames, Detector, DetectorSpec, Finding, FrameRequest, hookimpl
from alarmcloud.contracts import CameraAdapter, ClipValidation, LiveStream
from alarmcloud.plugins import PluginHost
from alarmcloud.specs import CameraAdapterSpec
from alarmcloud.testing import LiveServer, test_settings

#: the probes detectors were given and cameras validated, in order
SEEN: dict[str, list[Any]] = {"detector": [], "camera": []}


class Quiet(Detector):
    name = "wide"
    labels = ("thing",)

    def frame_request(self) -> FrameRequest:
        return FrameRequest(keyframes=True, max_keyframes=1, width=64)

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        SEEN["detector"].append((frames.probe, [f.image.shape for f in frames.keyframes]))
        return []


class DoorBell(CameraAdapter):
    """A brand whose cameras send portrait pictures (no model list: any model name, any clip)."""

    brand = "bell"

    def models(self) -> list[Any]:
        return []

    def validate_clip(self, model: str, probe: Any) -> ClipValidation:
        SEEN["camera"].append(probe)
        return ClipValidation.ok()

    async def control(self, camera: Any, action: str, value: Any, area: int | None = None) -> None:
        return None

    def live_stream(self, camera: Any) -> LiveStream:
        return LiveStream(rtsp_main=f"rtsp://{camera.address}/live")


class SizePlugin:
    @hookimpl
    def register_camera_adapters(self) -> list[CameraAdapterSpec]:
        return [CameraAdapterSpec("bell", lambda cfg: DoorBell(), "door bells")]

    @hookimpl
    def register_detectors(self) -> list[DetectorSpec]:
        return [DetectorSpec("wide", lambda cfg: Quiet(), ("thing",), "needs main-stream clips", title="Wide eyes",
                             min_source_width=960),
                DetectorSpec("any", lambda cfg: Quiet(), ("thing",), "works on any size")]


def test_a_camera_sending_narrow_clips_is_told_to_use_its_main_stream(
        tmp_path: Path, make_test_clip: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from alarmcloud import cameras

    from tests.conftest import Api  # type: ignore[import-not-found]

    monkeypatch.setattr(cameras, "SOURCE_CLIPS", 2)  # the last 2 clips instead of 5: fewer uploads
    host = PluginHost({"cameras": ["instar"], "detectors": [], "integrations": []})
    host.register(SizePlugin(), "test:size", "size")
    with LiveServer(test_settings(tmp_path / "data"), plugins=host.load()) as srv:
        schema = httpx.get(srv.url + "/openapi.json").json()["paths"]["/api/v1/cameras/{camera_id}/detectors"]
        get_schema = schema["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        a = Api(srv.url).register("sizes@example.com")
        cam = a.camera("Gate")
        url = f"/api/v1/cameras/{cam['id']}/detectors"

        def state() -> dict[str, Any]:
            r = a.get(url)
            assert r.status_code == 200, r.text
            jsonschema.validate(r.json(), get_schema)
            return r.json()

        got = state()  # before the first clip nothing is known, so nothing is advised
        assert got["source"] is None and got["advice"] == []
        assert got["available"]["wide"]["min_source_width"] == 960 and got["available"]["any"]["min_source_width"] == 0
        creds = a.upload_credentials(cam["id"])
        a.upload_analysed(creds, make_test_clip("sub1", seconds=2, width=640, height=352))
        got = state()
        assert got["source"] == {"width": 640, "height": 352, "clips": 1}
        assert got["advice"] == []  # the detector is off: nothing to change for it

        r = a.put(url, json={"wide": True, "any": True})
        assert r.status_code == 200 and r.json()["source"] == {"width": 640, "height": 352, "clips": 1}
        (advice,) = r.json()["advice"]  # the PUT's answer already has it (the page switches it on and off)
        assert (advice["detector"], advice["code"], advice["min_source_width"]) == ("wide", "source_too_narrow", 960)
        assert advice["message"].startswith("Wide eyes is measured to work well on clips at least 960 px wide; "
                                            "this camera's last clip is 640 × 352")
        assert "main (full-resolution) stream" in advice["message"]
        assert state()["advice"] == [advice]
        # the camera list says it too, in one line, for the detectors that need more (not for "any")
        listing = a.get("/cameras").text
        assert (f'data-advice-camera="{cam["id"]}">Clips are 640 × 352, probably the sub-stream: Wide eyes needs '
                "the main stream.") in listing

        # the last clips are the last to arrive
        # one main-stream clip among the last ones: the camera sends wide clips, so no advice
        a.upload_analysed(creds, make_test_clip("main", seconds=2, width=1280, height=720))
        got = state()
        assert got["source"] == {"width": 1280, "height": 720, "clips": 2} and got["advice"] == []
        a.upload_analysed(creds, make_test_clip("sub2", seconds=2, fps=12, width=640, height=352))
        assert state()["advice"] == []  # the 1280 px clip is still one of the last 2
        assert "data-advice-camera" not in a.get("/cameras").text
        a.upload_analysed(creds, make_test_clip("sub3", seconds=2, fps=10, width=640, height=352))
        got = state()
        assert got["source"] == {"width": 640, "height": 352, "clips": 2}
        assert [x["detector"] for x in got["advice"]] == ["wide"] and "last 2 clips are 640 × 352" in \
            got["advice"][0]["message"]

        # the owner sets the camera to its main stream, and the camera's clock was reset on the way: its new clips
        # say 2001; they are still its last clips
        r = a.upload(creds, make_test_clip("main", seconds=2, width=1280, height=720),
                     **{"X-Recorded-At": "2001-01-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        a.wait_event(r.json()["event_id"])
        got = state()
        assert got["source"] == {"width": 1280, "height": 720, "clips": 2} and got["advice"] == []
        assert "data-advice-camera" not in a.get("/cameras").text
        a.upload_analysed(creds, make_test_clip("sub4", seconds=2, fps=11, width=640, height=352))
        a.upload_analysed(creds, make_test_clip("sub5", seconds=2, fps=9, width=640, height=352))
        assert [x["detector"] for x in state()["advice"]] == ["wide"]

        # switched off again: the advice goes with it
        assert a.put(url, json={"wide": False}).json()["advice"] == []
        assert "data-advice-camera" not in a.get("/cameras").text
        # a door bell's portrait picture that narrow may be its main stream: not called a sub-stream
        bell = a.post("/api/v1/cameras", json={"name": "Door", "brand": "bell", "model": "Bell"}).json()
        a.upload_analysed(a.upload_credentials(bell["id"]), make_test_clip("door", seconds=2, width=720, height=1280))
        (advice,) = a.put(f"/api/v1/cameras/{bell['id']}/detectors", json={"wide": True}).json()["advice"]
        assert advice["message"].startswith("Wide eyes is measured to work well on clips at least 960 px wide; this "
                                            "camera's last clip is 720 × 1280, a narrow portrait picture. If that is "
                                            "not the camera's main (full-resolution) stream")
        assert "sub-stream" not in advice["message"]
        assert (f'data-advice-camera="{bell["id"]}">Clips are 720 × 1280, a narrow portrait picture: Wide eyes needs '
                "wider clips.") in a.get("/cameras").text
        # another account never learns what this camera sends
        other = Api(srv.url).register("other@example.com")
        r = other.get(url)
        assert r.status_code == 404 and "source" not in r.text


def test_a_clip_stored_turned_counts_as_the_picture_players_show(tmp_path: Path) -> None:
    """A phone's portrait video (and a camera mounted on its side) stores landscape pictures with a display matrix
    that turns them: the event, the camera's source and its advice give the size as shown (720 wide, a narrow
    portrait picture), the detector is told it too, and the camera plugin validates the size its encoder made."""
    import numpy as np
    from alarmcloud.testing import write_frames

    from tests.conftest import Api  # type: ignore[import-not-found]

    coded = [np.full((720, 1280, 3), 40 + 8 * i, np.uint8) for i in range(10)]
    clip = write_frames(tmp_path / "phone.mp4", coded, fps=5, gop=5, rotation=(-90, False, False),
                        options={"preset": "ultrafast"})
    host = PluginHost({"cameras": [], "detectors": [], "integrations": []})
    host.register(SizePlugin(), "test:size", "size")
    SEEN["detector"].clear()
    SEEN["camera"].clear()
    with LiveServer(test_settings(tmp_path / "data"), plugins=host.load()) as srv:
        a = Api(srv.url).register("phone@example.com")
        cam = a.post("/api/v1/cameras", json={"name": "Door", "brand": "bell", "model": "Phone"}).json()
        assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"wide": True}).status_code == 200
        event = a.upload_analysed(a.upload_credentials(cam["id"]), clip)
        assert (event["width"], event["height"]) == (720, 1280)
        got = a.get(f"/api/v1/cameras/{cam['id']}/detectors").json()
        assert got["source"] == {"width": 720, "height": 1280, "clips": 1}
        (advice,) = got["advice"]
        assert "this camera's last clip is 720 × 1280, a narrow portrait picture" in advice["message"]
    (validated,) = SEEN["camera"]
    assert (validated.width, validated.height, validated.turned) == (1280, 720, True)
    (told, shapes) = SEEN["detector"][-1]
    assert (told.width, told.height, told.turned) == (720, 1280, False)
    assert shapes == [(114, 64, 3)]  # 64 wide as shown: the picture is served upright


def test_a_plugin_cannot_declare_a_negative_width() -> None:
    with pytest.raises(ValueError, match="min_source_width"):
        DetectorSpec("d", lambda cfg: Quiet(), ("d",), "d", min_source_width=-1)


def test_the_bundled_rain_and_plates_detectors_ask_for_960_px() -> None:
    host = PluginHost({"cameras": [], "detectors": ["rain", "plates"], "integrations": []}).load()
    assert {n: s.min_source_width for n, s in host.detector_specs.items()} == {"rain": 960, "insects": 0,
                                                                                "plates": 960}
