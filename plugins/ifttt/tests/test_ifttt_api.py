"""The IFTTT service API against a live server (core + ifttt only) and a fake Realtime endpoint."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from alarmcloud.events import DETECTIONS_READY, Event
from alarmcloud.testing import LiveServer, test_settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEY = "service-key-for-tests-0123456789"
BASE = "/plugins/ifttt/ifttt/v1"


class FakeRealtime:
    """A tiny IFTTT Realtime endpoint on loopback that records what it receives."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

        async def notifications(request: Request) -> JSONResponse:
            self.calls.append({"headers": dict(request.headers), "body": await request.json()})
            return JSONResponse({})

        app = Starlette(routes=[Route("/v1/notifications", notifications, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/notifications"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture
def fake_realtime() -> Iterator[FakeRealtime]:
    fake = FakeRealtime()
    yield fake
    fake.stop()


@pytest.fixture
def srv(tmp_path: Path, fake_realtime: FakeRealtime) -> Iterator[LiveServer]:
    st = test_settings(tmp_path / "data", plugin={"ifttt": {"service_key": KEY, "realtime_url": fake_realtime.url}})
    with LiveServer(st) as s:
        yield s


def setup(srv: LiveServer) -> dict[str, Any]:
    r = httpx.post(srv.url + BASE + "/test/setup", headers={"IFTTT-Service-Key": KEY})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def call(srv: LiveServer, token: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(srv.url + BASE + path, json=body if body is not None else {},
                      headers={"Authorization": f"Bearer {token}"})


def test_status_and_keys(srv: LiveServer) -> None:
    assert httpx.get(srv.url + BASE + "/status", headers={"IFTTT-Service-Key": KEY}).status_code == 200
    assert httpx.get(srv.url + BASE + "/status", headers={"IFTTT-Channel-Key": KEY}).status_code == 200
    for headers in ({}, {"IFTTT-Service-Key": "wrong"}):
        r = httpx.get(srv.url + BASE + "/status", headers=headers)
        assert r.status_code == 401 and r.json()["errors"][0]["message"]
    assert httpx.post(srv.url + BASE + "/test/setup", headers={"IFTTT-Service-Key": "x"}).status_code == 401


def test_endpoint_tests_as_ifttt_runs_them(srv: LiveServer) -> None:
    data = setup(srv)
    token, samples = data["accessToken"], data["samples"]
    info = httpx.get(srv.url + BASE + "/user/info", headers={"Authorization": f"Bearer {token}"}).json()["data"]
    assert info["id"] and "@" not in info["id"]
    for slug in ("new_alarm", "alarm_with_detection", "plate_recognised", "storage_almost_full"):
        fields = samples["triggers"].get(slug, {})
        r = call(srv, token, f"/triggers/{slug}", {"trigger_identity": f"ti-{slug}", "triggerFields": fields,
                                                    "user": {"timezone": "UTC"}, "extra_key": "ignored"})
        assert r.status_code == 200, (slug, r.text)
        items = r.json()["data"]
        assert len(items) >= 3, slug
        stamps = [i["meta"]["timestamp"] for i in items]
        assert stamps == sorted(stamps, reverse=True) and all(isinstance(t, int) for t in stamps)
        assert len({i["meta"]["id"] for i in items}) == len(items)
        one = call(srv, token, f"/triggers/{slug}", {"triggerFields": fields, "limit": 1}).json()["data"]
        assert len(one) == 1 and one[0]["meta"]["id"] == items[0]["meta"]["id"]
        assert call(srv, token, f"/triggers/{slug}", {"triggerFields": fields, "limit": 0}).json() == {"data": []}
        r = call(srv, token, f"/triggers/{slug}", {})
        assert r.status_code == 400 and r.json()["errors"]
    for slug, fields in samples["actions"].items():
        r = call(srv, token, f"/actions/{slug}", {"actionFields": fields, "user": {}})
        assert r.status_code == 200, (slug, r.text)
        assert len(r.json()["data"]) == 1 and r.json()["data"][0]["id"]
    for slug, fields in samples["actionRecordSkipping"].items():
        r = call(srv, token, f"/actions/{slug}", {"actionFields": fields, "user": {}})
        assert r.status_code == 400 and r.json()["errors"][0]["status"] == "SKIP", slug
    for slug, fields in samples["queries"].items():
        r = call(srv, token, f"/queries/{slug}", {"queryFields": fields})
        assert r.status_code == 200 and r.json()["data"], slug
    cam = samples["triggers"]["new_alarm"]["camera"]
    opts = call(srv, token, "/triggers/new_alarm/fields/camera/options").json()["data"]
    assert [o["value"] for o in opts] == [cam]
    opts = call(srv, token, "/actions/motion_detection/fields/camera/options").json()["data"]
    assert [o["value"] for o in opts] == [cam]  # its actions are answered without a device
    v = samples["triggerFieldValidations"]["new_alarm"]["camera"]
    assert call(srv, token, "/triggers/new_alarm/fields/camera/validate", {"value": v["valid"]}).json() == {
        "data": {"valid": True}}
    assert call(srv, token, "/triggers/new_alarm/fields/camera/validate",
                {"value": v["invalid"]}).json()["data"]["valid"] is False
    r = httpx.delete(srv.url + BASE + "/triggers/new_alarm/trigger_identity/ti-new_alarm",
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_bad_tokens_get_401(srv: LiveServer) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        r = httpx.post(srv.url + BASE + "/triggers/new_alarm", json={"triggerFields": {}}, headers=headers)
        assert r.status_code == 401 and r.json()["errors"][0]["message"]
        r = httpx.get(srv.url + BASE + "/user/info", headers=headers)
        assert r.status_code == 401


def test_realtime_notification_for_known_trigger_identities(srv: LiveServer, fake_realtime: FakeRealtime) -> None:
    data = setup(srv)
    token = data["accessToken"]
    cam = data["samples"]["triggers"]["new_alarm"]["camera"]
    call(srv, token, "/triggers/new_alarm", {"trigger_identity": "ti-cam", "triggerFields": {"camera": cam}})
    call(srv, token, "/triggers/alarm_with_detection", {"trigger_identity": "ti-plate",
                                                        "triggerFields": {"label": "plate"}})
    call(srv, token, "/triggers/storage_almost_full", {"trigger_identity": "ti-storage", "triggerFields": {}})
    core: Any = srv.core
    from alarmcloud.models import Camera

    with core.db.session() as s:
        account_id = s.get(Camera, cam).account_id
    event = Event(DETECTIONS_READY, account_id, cam, {"verdict": "alarm", "findings": [{"label": "rain"}]})
    core.emit_sync(event)
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    while not fake_realtime.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_realtime.calls, "no realtime notification"
    sent = fake_realtime.calls[0]
    assert sent["headers"]["ifttt-service-key"] == KEY
    assert sent["body"] == {"data": [{"trigger_identity": "ti-cam"}]}  # not the plate or storage identities


def test_setup_sample_data_is_complete_and_made_once(srv: LiveServer) -> None:
    """test/setup's alarms are stored like real ones: a playable MP4 and a thumbnail per event, findings, series."""
    import av
    from alarmcloud.models import Clip, FindingRow
    from sqlmodel import select

    first = setup(srv)
    second = setup(srv)
    assert first["accessToken"] != second["accessToken"]
    cam = first["samples"]["triggers"]["new_alarm"]["camera"]
    assert second["samples"]["triggers"]["new_alarm"]["camera"] == cam  # same user and camera, no duplicates
    for token in (first["accessToken"], second["accessToken"]):
        assert call(srv, token, "/triggers/new_alarm", {"triggerFields": {"camera": cam}}).status_code == 200
    plates = call(srv, second["accessToken"], "/triggers/plate_recognised", {"triggerFields": {}}).json()["data"]
    assert len({p["plate"] for p in plates}) == len(plates) >= 3
    core: Any = srv.core
    with core.db.session() as s:
        clips = s.exec(select(Clip).where(Clip.camera_id == cam)).all()
        assert len(clips) == 3
        for c in clips:
            assert c.status == "done" and c.verdict == "alarm" and c.series_id and c.thumb_key
            assert core.blobs.size(c.blob_key) == c.size_bytes > 0
            assert core.blobs.size(c.thumb_key) > 0
            with av.open(str(core.blobs.path(c.blob_key))) as container:
                assert container.streams.video[0].codec_context.name == "h264"
                assert sum(1 for _ in container.decode(video=0)) >= 10
            labels = {f.label for f in s.exec(select(FindingRow).where(FindingRow.clip_id == c.id)).all()}
            assert labels == set(c.labels) == {"plate", "rain"}


def test_trigger_identity_delete_stops_realtime(srv: LiveServer, fake_realtime: FakeRealtime) -> None:
    data = setup(srv)
    token = data["accessToken"]
    cam = data["samples"]["triggers"]["new_alarm"]["camera"]
    for ti in ("ti-a", "ti-b"):
        call(srv, token, "/triggers/new_alarm", {"trigger_identity": ti, "triggerFields": {"camera": cam}})
    r = httpx.delete(srv.url + BASE + "/triggers/new_alarm/trigger_identity/ti-a",
                     headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json() == {}
    core: Any = srv.core
    from alarmcloud.models import Camera

    with core.db.session() as s:
        account_id = s.get(Camera, cam).account_id
    core.emit_sync(Event(DETECTIONS_READY, account_id, cam, {"verdict": "alarm", "findings": []}))
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    while not fake_realtime.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c["body"] for c in fake_realtime.calls] == [{"data": [{"trigger_identity": "ti-b"}]}]
    # a false alarm fires no new_alarm trigger
    core.emit_sync(Event(DETECTIONS_READY, account_id, cam, {"verdict": "false_alarm:rain", "findings": []}))
    time.sleep(0.5)
    assert len(fake_realtime.calls) == 1


class FlakyRealtime:
    """A Realtime endpoint that answers the given statuses in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.bodies: list[dict[str, Any]] = []

        async def notifications(request: Request) -> JSONResponse:
            self.bodies.append(await request.json())
            return JSONResponse({}, status_code=self.statuses.pop(0) if self.statuses else 200)

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/notifications"
        self.server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/notifications", notifications,
                                                                            methods=["POST"])]), log_level="warning"))
        threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        while not self.server.started:
            time.sleep(0.02)


@pytest.mark.anyio
async def test_realtime_retries_5xx_and_429_but_not_4xx() -> None:
    from alarmcloud_ifttt import realtime

    entries = [{"trigger_identity": "ti-1"}]
    flaky = FlakyRealtime([503, 429])
    assert await realtime.notify(flaky.url, KEY, entries, backoff=0.01)
    assert flaky.bodies == [{"data": entries}] * 3
    rejected = FlakyRealtime([400])
    assert not await realtime.notify(rejected.url, KEY, entries, backoff=0.01)
    assert len(rejected.bodies) == 1  # a bad request is not repeated
    down = FlakyRealtime([500, 500, 500, 500])
    assert not await realtime.notify(down.url, KEY, entries, attempts=3, backoff=0.01)
    assert len(down.bodies) == 3
    many = FlakyRealtime([])
    assert await realtime.notify(many.url, KEY, [{"trigger_identity": f"ti-{i}"} for i in range(1500)], backoff=0.01)
    assert [len(b["data"]) for b in many.bodies] == [1000, 500]  # IFTTT takes at most 1000 per call
    for f in (flaky, rejected, down, many):
        f.server.should_exit = True
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/notifications"
    sock.close()  # nothing listens: connection refused on every attempt
    assert not await realtime.notify(closed, KEY, entries, backoff=0.01)


def test_realtime_does_not_hold_up_the_event_fan_out(tmp_path: Path) -> None:
    """handle_event returns while IFTTT has not answered yet; the notification still arrives afterwards."""
    import asyncio

    from alarmcloud_ifttt import plugin

    release = threading.Event()
    got: list[dict[str, Any]] = []

    async def notifications(request: Request) -> JSONResponse:
        got.append(await request.json())
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 20)
        return JSONResponse({})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    hanging = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/v1/notifications", notifications,
                                                                    methods=["POST"])]), log_level="warning"))
    threading.Thread(target=hanging.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not hanging.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/notifications"
    st = test_settings(tmp_path / "data", plugin={"ifttt": {"service_key": KEY, "realtime_url": url}})
    with LiveServer(st) as srv:
        data = setup(srv)
        cam = data["samples"]["triggers"]["new_alarm"]["camera"]
        call(srv, data["accessToken"], "/triggers/new_alarm", {"trigger_identity": "ti-x", "triggerFields": {}})
        core: Any = srv.core
        from alarmcloud.models import Camera

        with core.db.session() as s:
            account_id = s.get(Camera, cam).account_id
        event = Event(DETECTIONS_READY, account_id, cam, {"verdict": "alarm", "findings": []})
        done = asyncio.run_coroutine_threadsafe(plugin.handle_event(core, event), core.loop)
        done.result(timeout=10)  # returned although IFTTT has not answered
        deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [{"data": [{"trigger_identity": "ti-x"}]}] and not release.is_set()
        release.set()
    hanging.should_exit = True


def test_status_is_503_while_the_core_cannot_answer(srv: LiveServer) -> None:
    core: Any = srv.core

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("database is unavailable")

    real = core.services.get_state
    core.services.get_state = broken
    try:
        r = httpx.get(srv.url + BASE + "/status", headers={"IFTTT-Service-Key": KEY})
        assert r.status_code == 503 and r.json()["errors"][0]["message"]
        assert httpx.get(srv.url + BASE + "/status", headers={"IFTTT-Service-Key": "x"}).status_code == 401
    finally:
        core.services.get_state = real
    assert httpx.get(srv.url + BASE + "/status", headers={"IFTTT-Service-Key": KEY}).status_code == 200


def test_a_malformed_body_is_a_400(srv: LiveServer) -> None:
    """A body that is no JSON object (JSON nested 100,000 levels deep included) is a 400 with IFTTT's error shape,
    and the service keeps answering."""
    token = setup(srv)["accessToken"]
    for raw in (b"[" * 100_000 + b"]" * 100_000, b"{not json", b"[1]"):
        r = httpx.post(srv.url + BASE + "/triggers/new_alarm", content=raw,
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["message"]
    assert call(srv, token, "/triggers/new_alarm", {"triggerFields": {}}).status_code == 200


def test_an_oversized_body_is_a_413(srv: LiveServer) -> None:
    """A body over 256 KiB is refused with 413, also when it comes chunked without a declared length."""
    token = setup(srv)["accessToken"]

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 8192

    r = httpx.post(srv.url + BASE + "/triggers/new_alarm", content=chunks(),
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["errors"][0]["message"]
    assert call(srv, token, "/triggers/new_alarm", {"triggerFields": {}}).status_code == 200


def test_plates_the_owner_is_not_told_about_stay_out_of_the_plate_trigger(srv: LiveServer,
                                                                          fake_realtime: FakeRealtime) -> None:
    """A known plate saved with ``notify`` off (the owner's own car) fires no plate trigger: neither in the trigger's
    list nor as a Realtime hint; other plates, and the alarms the clip raised, still do."""
    from alarmcloud.events import PLATE_RECOGNISED
    from alarmcloud.models import Camera, KnownPlate

    data = setup(srv)
    token, cam = data["accessToken"], data["samples"]["triggers"]["new_alarm"]["camera"]
    call(srv, token, "/triggers/plate_recognised", {"trigger_identity": "ti-plates", "triggerFields": {}})
    before = call(srv, token, "/triggers/plate_recognised", {"triggerFields": {}}).json()["data"]
    own = before[0]["plate"]
    core: Any = srv.core
    with core.db.session() as s:
        account_id = s.get(Camera, cam).account_id
        # the samples are a fleet (B-AC 101, 102, 103): reads one character off must not count as this car
        s.add(KnownPlate(account_id=account_id, text="".join(c for c in own if c.isalnum()).upper(),
                         name="Our car", notify=False, close_reads=False))
        s.commit()
    after = call(srv, token, "/triggers/plate_recognised", {"triggerFields": {}}).json()["data"]
    assert [p["plate"] for p in after] == [p["plate"] for p in before if p["plate"] != own] and after
    assert len(call(srv, token, "/triggers/new_alarm", {"triggerFields": {"camera": cam}}).json()["data"]) == 3

    core.emit_sync(Event(PLATE_RECOGNISED, account_id, None, {"text": own, "known": True, "notify": False}))
    time.sleep(0.5)
    assert fake_realtime.calls == []  # the owner's own car: no hint either
    core.emit_sync(Event(PLATE_RECOGNISED, account_id, None, {"text": "KXY987", "known": False, "notify": True}))
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    while not fake_realtime.calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_realtime.calls[0]["body"] == {"data": [{"trigger_identity": "ti-plates"}]}
