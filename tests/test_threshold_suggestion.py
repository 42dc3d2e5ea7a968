"""Marking an event a detector got wrong suggests the camera's threshold that would have kept it an alarm, or that
would have caught it when the detector missed it, over real HTTP with a real pipeline; the owner applies it and the
next such clip stays an alarm, or is caught."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from alarmcloud import ClipFrames, Detector, DetectorOption, DetectorSpec, Finding, FrameRequest, hookimpl
from alarmcloud.openapi import SHAPES
from alarmcloud.plugins import PluginHost
from alarmcloud.testing import LiveServer, test_settings

SUB_PASSWORD = "another good pw"
FEEDBACK = SHAPES[("POST", "/api/v1/events/{event_id}/feedback")]


class LengthDetector(Detector):
    """Flags its first label with a score of the clip's length in tens of seconds (a 7 s clip scores 0.7), when the
    score reaches the camera's ``threshold`` option (default 0.5), as the rain detector does with its probability;
    reports the score also below it (``ClipFrames.score``)."""

    def __init__(self, name: str, labels: tuple[str, ...], offset: float = 0.0) -> None:
        self.name, self.labels, self.offset = name, labels, offset

    def frame_request(self) -> FrameRequest:
        return FrameRequest(max_keyframes=1, width=32, color="gray")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        score = min(1.0, round(frames.probe.duration) / 10) + self.offset
        frames.score = score
        if score < float(frames.options.get("threshold", 0.5)):
            return []
        return [Finding(self.name, self.labels[0], score)]


class LengthPlugin:
    """A detector ``name`` (a ``LengthDetector``) with a per-camera ``threshold`` from ``minimum`` to ``maximum``."""

    def __init__(self, name: str, labels: tuple[str, ...], maximum: float, minimum: float,
                 offset: float = 0.0) -> None:
        self.name, self.labels, self.maximum, self.minimum, self.offset = name, labels, maximum, minimum, offset

    @hookimpl
    def register_detectors(self) -> list[DetectorSpec]:
        return [DetectorSpec(self.name, lambda cfg: LengthDetector(self.name, self.labels, self.offset), self.labels,
                             "flags long clips", options=(
            DetectorOption("threshold", "Threshold", "number", minimum=self.minimum, maximum=self.maximum,
                           step=0.05, default=0.5),))]


def length_host(name: str, labels: tuple[str, ...], maximum: float = 0.95, minimum: float = 0.05,
                offset: float = 0.0) -> PluginHost:
    """A plugin host with the INSTAR adapter and only a ``LengthPlugin`` detector (scores moved by ``offset``)."""
    host = PluginHost({"cameras": ["instar"], "detectors": [], "integrations": []})
    host.register(LengthPlugin(name, labels, maximum, minimum, offset), f"test:{name}", name)
    return host.load()


@dataclass
class SkyCamera:
    """A live server with a ``LengthDetector`` named ``sky`` on one camera of one account."""

    srv: LiveServer
    api: Any
    cam: dict[str, Any]
    creds: dict[str, Any]
    clip: Callable[..., Path]

    def event(self, seconds: int) -> dict[str, Any]:
        """Upload a clip of ``seconds`` (it scores seconds / 10) and return its analysed event."""
        return self.api.upload_analysed(self.creds, self.clip(f"sky{seconds}", seconds=seconds))

    def mark(self, ev: dict[str, Any], label: str, user: Any = None) -> dict[str, Any]:
        """Mark ``ev`` (as the owner, or ``user``): the 201 answer, checked against the OpenAPI shape."""
        r = (user or self.api).post(f"/api/v1/events/{ev['id']}/feedback", json={"detector": "sky", "label": label})
        assert r.status_code == 201, r.text
        jsonschema.validate(r.json(), FEEDBACK["response"])  # as the OpenAPI document says
        return r.json()


@contextmanager
def sky_camera(tmp_path: Path, clip: Callable[..., Path], email: str, threshold: float | None = None,
               minimum: float = 0.05, offset: float = 0.0) -> Iterator[SkyCamera]:
    from tests.conftest import Api  # type: ignore[import-not-found]

    with LiveServer(test_settings(tmp_path / "data"), plugins=length_host("sky", ("sky",), minimum=minimum,
                                                                                 offset=offset)) as srv:
        a = Api(srv.url).register(email)
        cam = a.camera("Garden")
        body: dict[str, Any] = {"sky": True}
        if threshold is not None:
            body["options"] = {"sky": {"threshold": threshold}}
        r = a.put(f"/api/v1/cameras/{cam['id']}/detectors", json=body)
        assert r.status_code == 200, r.text
        yield SkyCamera(srv, a, cam, a.upload_credentials(cam["id"]), clip)


def test_a_wrong_finding_suggests_the_threshold_that_keeps_it_an_alarm(
    tmp_path: Path, make_test_clip: Callable[..., Path]
) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    with sky_camera(tmp_path, make_test_clip, "tune@example.com") as sky:
        srv, a, cam, creds, event, mark = sky.srv, sky.api, sky.cam, sky.creds, sky.event, sky.mark
        e6, e7, e8, e9, e10 = (event(n) for n in (6, 7, 8, 9, 10))
        assert [f["score"] for f in e8["findings"]] == [0.8]

        # a confirmation or an event-level mark suggests nothing
        assert mark(e9, "sky")["suggestion"] is None
        assert mark(e7, "sky")["suggestion"] is None
        assert mark(e6, "real_alarm")["suggestion"] is None

        got = mark(e6, "not_sky")["suggestion"]
        assert got == {"detector": "sky", "camera_id": cam["id"], "option": "threshold", "direction": "raise",
                       "score": 0.6, "current": 0.5, "value": 0.65, "reason": None, "marked_wrong": 1,
                       "would_clear": 1, "would_flag": 0, "marked_right": 2, "would_miss": 0, "would_catch": 0}

        # the next wrong finding scored higher: its threshold would also drop the 0.7 event the owner confirmed
        got = mark(e8, "not_sky")["suggestion"]
        assert (got["value"], got["marked_wrong"], got["would_clear"], got["marked_right"], got["would_miss"]) == (
            0.85, 2, 2, 2, 1)

        # a sure finding: no allowed threshold lies above it
        sure = mark(e10, "not_sky")["suggestion"]
        assert sure["value"] is None and sure["would_clear"] is None and "sure" in sure["reason"]

        # the owner changes their mind on the 0.7 event: only an event's latest mark counts
        again = mark(e7, "not_sky")["suggestion"]
        assert (again["value"], again["marked_wrong"], again["would_clear"], again["marked_right"],
                again["would_miss"]) == (0.75, 4, 2, 1, 0)

        # a sub-user who may not change the camera's detectors gets no suggestion (the mark is stored)
        owner_sub = a.post("/api/v1/subusers", json={"email": "tune-sub@example.com", "password": SUB_PASSWORD,
                                                     "rights": {cam["id"]: "view"}})
        assert owner_sub.status_code == 201, owner_sub.text
        helper = Api(srv.url).login("tune-sub@example.com", SUB_PASSWORD)
        assert mark(e9, "not_sky", helper)["suggestion"] is None

        # a label the detector does not have is refused, naming the ones it takes
        r = a.post(f"/api/v1/events/{e9['id']}/feedback", json={"detector": "sky", "label": "not_cloud"})
        assert r.status_code == 400 and "not_sky" in r.json()["error"]["message"]

        # the owner applies the suggestion; the next 8 s clip stays an alarm, a 9 s clip is still flagged
        r = a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"options": {"sky": {"threshold": got["value"]}}})
        assert r.status_code == 200, r.text
        assert a.upload_analysed(creds, make_test_clip("sky8", seconds=8))["findings"] == []
        assert [f["score"] for f in a.upload_analysed(creds, make_test_clip("sky9", seconds=9))["findings"]] == [0.9]
        # an event scored below the camera's threshold now needs no suggestion
        assert mark(e6, "not_sky")["suggestion"] is None
        # the document describes the endpoint
        doc = httpx.get(srv.url + "/openapi.json").json()
        op = doc["paths"]["/api/v1/events/{event_id}/feedback"]["post"]
        assert "suggestion" in op["responses"]["201"]["content"]["application/json"]["schema"]["properties"]


def test_a_missed_event_marked_with_the_label_suggests_the_threshold_that_catches_it(
    tmp_path: Path, make_test_clip: Callable[..., Path]
) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    with sky_camera(tmp_path, make_test_clip, "lower@example.com", threshold=0.85, minimum=0.15) as sky:
        srv, a, cam, creds, event, mark = sky.srv, sky.api, sky.cam, sky.creds, sky.event, sky.mark
        e1, e4, e6, e7, e8, e9 = (event(n) for n in (1, 4, 6, 7, 8, 9))
        # the score below the threshold is stored with the event and shown by the API
        assert (e8["findings"], e8["scores"]) == ([], {"sky": 0.8})
        assert [f["score"] for f in e9["findings"]] == [0.9] and e9["scores"] == {"sky": 0.9}
        jsonschema.validate(e8, SHAPES[("GET", "/api/v1/events/{event_id}")]["response"])

        # confirming a flagged event, or "not" on an event it did not flag, suggests nothing
        assert mark(e9, "sky")["suggestion"] is None
        assert mark(e6, "not_sky")["suggestion"] is None

        got = mark(e8, "sky")["suggestion"]
        assert got == {"detector": "sky", "camera_id": cam["id"], "option": "threshold", "direction": "lower",
                       "score": 0.8, "current": 0.85, "value": 0.8, "reason": None, "marked_wrong": 1,
                       "would_clear": 0, "would_flag": 0, "marked_right": 2, "would_miss": 0, "would_catch": 1}
        # a lower miss: its threshold catches both, and would also flag the 0.6 event marked "not"
        got = mark(e4, "sky")["suggestion"]
        assert (got["value"], got["marked_right"], got["would_catch"], got["marked_wrong"], got["would_flag"]) == (
            0.4, 3, 2, 1, 1)
        got7 = mark(e7, "sky")["suggestion"]
        assert (got7["value"], got7["would_catch"], got7["would_flag"]) == (0.7, 2, 0)  # 0.7 and 0.8, not the 0.6

        # the detector saw almost nothing: no allowed threshold (from 0.15) would have caught it
        faint = mark(e1, "sky")["suggestion"]
        assert faint["value"] is None and faint["would_catch"] is None and "almost none" in faint["reason"]

        # a sub-user who may only view the camera gets no suggestion
        r = a.post("/api/v1/subusers", json={"email": "lower-sub@example.com", "password": SUB_PASSWORD,
                                             "rights": {cam["id"]: "view"}})
        assert r.status_code == 201, r.text
        assert mark(e8, "sky", Api(srv.url).login("lower-sub@example.com", SUB_PASSWORD))["suggestion"] is None

        # applied: the camera's threshold (0.4) now lies below the detector's own (0.5), and a new 4 s clip is
        # flagged at 0.4 (the camera's threshold is the one that counts, both ways)
        r = a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"options": {"sky": {"threshold": got["value"]}}})
        assert r.status_code == 200, r.text
        again = a.upload_analysed(creds, make_test_clip("sky4", seconds=4))
        assert [f["score"] for f in again["findings"]] == [0.4]
        # the missed event is now below no threshold: marking it again suggests nothing
        assert mark(e4, "sky")["suggestion"] is None


def test_a_score_just_under_a_step_gets_the_offer_that_catches_it(
    tmp_path: Path, make_test_clip: Callable[..., Path]
) -> None:
    """The detector scored a missed clip 0.69996, shown as 0.7 (4 places, like findings). The offer is 0.65, not
    0.70, at which the next such clip would still be missed: applied, it catches that clip."""
    with sky_camera(tmp_path, make_test_clip, "hair@example.com", threshold=0.85, offset=-0.00004) as sky:
        a, cam = sky.api, sky.cam
        missed = sky.event(7)
        assert (missed["findings"], missed["scores"]) == ([], {"sky": 0.7})
        got = sky.mark(missed, "sky")["suggestion"]
        assert (got["direction"], got["score"], got["value"], got["would_catch"]) == ("lower", 0.7, 0.65, 1)
        # the preview counts it at 69%, not 70%
        levels = a.get(f"/api/v1/cameras/{cam['id']}/detectors/sky/scores").json()["levels"]
        assert [lv["score"] for lv in levels] == [0.69]
        r = a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"options": {"sky": {"threshold": got["value"]}}})
        assert r.status_code == 200, r.text
        caught = sky.event(7)
        assert [f["label"] for f in caught["findings"]] == ["sky"]


def test_score_levels_say_what_a_threshold_would_flag_on_the_camera(
    tmp_path: Path, make_test_clip: Callable[..., Path]
) -> None:
    from datetime import timedelta

    from alarmcloud.models import Clip, utcnow

    from tests.conftest import Api  # type: ignore[import-not-found]

    with sky_camera(tmp_path, make_test_clip, "levels@example.com") as sky:
        srv, a, cam = sky.srv, sky.api, sky.cam
        url = f"/api/v1/cameras/{cam['id']}/detectors/sky/scores"
        assert a.get(url).json()["levels"] == []  # nothing analysed yet
        e4, e6, _, e8, old = (sky.event(n) for n in (4, 6, 6, 8, 9))
        for ev, label in ((e6, "sky"), (e6, "not_sky"), (e8, "sky"), (e4, "sky")):  # e6: the latest mark counts
            sky.mark(ev, label)
        with srv.core.db.session() as s:  # the 9 s clip was recorded 40 days ago
            row = s.get(Clip, old["id"])
            row.started_at = utcnow() - timedelta(days=40)
            s.add(row)
            s.commit()

        r = a.get(url)
        assert r.status_code == 200, r.text
        got = r.json()
        jsonschema.validate(got, SHAPES[("GET", "/api/v1/cameras/{camera_id}/detectors/{detector}/scores")]["response"])
        assert got == {"detector": "sky", "camera_id": cam["id"], "option": "threshold", "current": 0.5, "days": 30,
                       "clips": 4, "scored": 4, "levels": [
                           {"score": 0.4, "clips": 1, "marked_right": 1, "marked_wrong": 0},  # below 0.5: missed
                           {"score": 0.6, "clips": 2, "marked_right": 0, "marked_wrong": 1},
                           {"score": 0.8, "clips": 1, "marked_right": 1, "marked_wrong": 0}]}
        longer = a.get(url + "?days=60").json()
        assert (longer["clips"], longer["levels"][-1]) == (5, {"score": 0.9, "clips": 1, "marked_right": 0,
                                                               "marked_wrong": 0})
        # the camera's own threshold is the one in use
        r = a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"options": {"sky": {"threshold": 0.7}}})
        assert r.status_code == 200, r.text
        assert a.get(url).json()["current"] == 0.7

        # bad input: a precise 400, another tenant's camera: 404
        for query, code in (("?days=0", "invalid_field"), ("?days=367", "invalid_field"), ("?days=x", "invalid_field"),
                            ("?days=99999999999", "invalid_field")):
            r = a.get(url + query)
            assert (r.status_code, r.json()["error"]["code"]) == (400, code), query
        r = a.get(f"/api/v1/cameras/{cam['id']}/detectors/clouds/scores")
        assert (r.status_code, r.json()["error"]["code"]) == (400, "unknown_detector")
        other = Api(srv.url).register("levels-other@example.com")
        assert other.get(url).status_code == 404
