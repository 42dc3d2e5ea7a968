"""The view check: a blurred, covered or moved camera view is reported once per incident and clears by itself.

Real clips through the real server: sharp clips teach the camera's baseline, then blurred (a dirty lens or a
spider web), black (covered) or shifted (moved) clips make the view "obstructed" after three in a row, with one
event to webhooks and one e-mail through a real SMTP server; sharp clips restore it. Day and night (grey infrared)
clips have separate baselines.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from alarmcloud import viewcheck
from alarmcloud.models import Camera, Outbox
from alarmcloud.testing import settings_on, static_scene
from alarmcloud.video import decode
from PIL import Image, ImageFilter
from sqlmodel import select

from tests.test_notify import Mailbox  # type: ignore[import-not-found]

BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SUBJECT = "Check the view of camera Garage"
CLIP = {"seconds": 2, "fps": 10, "gop_seconds": 1, "width": 320, "height": 176}


def blurred(sigma: float) -> Callable[[int, float, int, int], np.ndarray]:
    """The static scene seen through a blurred lens."""
    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        return np.asarray(Image.fromarray(static_scene(i, t, w, h)).filter(ImageFilter.GaussianBlur(sigma)))
    return scene


def night(sigma: float) -> Callable[[int, float, int, int], np.ndarray]:
    """The scene in infrared at night: grey, darker, softer than by day, with sensor noise."""
    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        g = Image.fromarray(static_scene(i, t, w, h).mean(axis=2).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(sigma))
        img = np.asarray(g).astype(float) * 0.6 + np.random.default_rng(i).normal(0, 3, (h, w))
        return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return scene


def covered(i: int, t: float, w: int, h: int) -> np.ndarray:
    """Something over the lens: black with a little noise."""
    g = np.clip(np.random.default_rng(i).normal(6, 1.5, (h, w)), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def moved(i: int, t: float, w: int, h: int) -> np.ndarray:
    """The camera knocked askew: another part of the scene, upside down."""
    return np.ascontiguousarray(np.roll(static_scene(i, t, w, h), w // 3, axis=1)[::-1])



@pytest.fixture(params=["sqlite"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, mailbox: Mailbox) -> Iterator[Any]:
    with settings_on(request.param, tmp_path / "data", camera_networks=["127.0.0.0/8"]) as st:
        st.smtp.host, st.smtp.port, st.smtp.sender = "127.0.0.1", mailbox.port, "alarms@cloud.example"
        st.notify.webhook_networks = ["127.0.0.0/8"]
        yield st


@pytest.fixture
def clips(make_test_clip: Callable[..., Path]) -> dict[str, Path]:
    return {"sharp": make_test_clip("view-sharp", scene=static_scene, **CLIP),
            "blurred": make_test_clip("view-blurred", scene=blurred(3), **CLIP),
            "covered": make_test_clip("view-covered", scene=covered, **CLIP),
            "moved": make_test_clip("view-moved", scene=moved, **CLIP),
            "night": make_test_clip("view-night", scene=night(2.5), **CLIP),
            "night_blurred": make_test_clip("view-night-blurred", scene=night(6), **CLIP)}


def measures(path: Path) -> viewcheck.Measures:
    m = viewcheck.measure(decode(path, [viewcheck.REQUEST])[0])
    assert m is not None
    return m


class Cam:
    """One customer's camera and what it uploads."""

    def __init__(self, api: Callable[[], Any], email: str, mail: bool = True) -> None:
        self.a = api().register(email)
        if mail:
            assert self.a.patch("/api/v1/me", json={"notify_email": True}).status_code == 200
        self.cam = self.a.camera("Garage")
        self.id = self.cam["id"]
        self.creds = self.a.upload_credentials(self.id)

    def upload(self, path: Path, times: int = 1, at: datetime | None = None,
               every: timedelta = timedelta(minutes=5)) -> dict[str, Any]:
        """Upload ``path`` ``times`` times; with ``at``, as recorded then and ``every`` apart (as cameras report)."""
        for k in range(times):
            if at is None:
                self.a.upload_analysed(self.creds, path)
                continue
            r = self.a.upload(self.creds, path, **{"X-Recorded-At": (at + k * every).isoformat()})
            assert r.status_code == 201, r.text
            assert self.a.wait_event(r.json()["event_id"])["status"] == "done"
        return self.view()

    def view(self) -> dict[str, Any]:
        r = self.a.get(f"/api/v1/cameras/{self.id}")
        assert r.status_code == 200, r.text
        return r.json()["view"]  # type: ignore[no-any-return]


def view_mails(mailbox: Mailbox) -> list[Any]:
    return [m for _, m in mailbox.messages if m["Subject"] == SUBJECT]


def wait_view_mails(mailbox: Mailbox, count: int, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(view_mails(mailbox)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return view_mails(mailbox)


def hook_events(receiver: Any) -> list[dict[str, Any]]:
    return [json.loads(r["body"]) for r in receiver.received("/view")]


@pytest.mark.parametrize("settings", BOTH_DATABASES, indirect=True)
def test_blurred_lens_is_reported_once_and_clears_when_sharp_again(api: Any, server: Any, clips: dict[str, Path],
                                                                  mailbox: Mailbox, receiver: Any) -> None:
    c = Cam(api, "lens@example.com")
    r = c.a.post("/api/v1/webhooks", json={"url": receiver.url + "/view", "only_real_alarms": False,
                                           "events": ["camera.view_obstructed", "camera.view_restored"]})
    assert r.status_code == 201, r.text
    assert c.view()["state"] == "learning"
    view = c.upload(clips["sharp"], 10)
    assert view["state"] == "ok" and view["baseline"]["day"] == 10 and view["reason"] is None
    assert c.upload(clips["blurred"], 2)["state"] == "ok"  # two clips in a row are not enough
    view = c.upload(clips["blurred"])
    assert view["state"] == "obstructed" and view["reason"] == "blurred" and view["light"] == "day"
    assert view["since"] and "blurred in the last 3 day clips" in view["message"]
    listed = c.a.get("/api/v1/cameras").json()["items"]
    assert [v["view"]["state"] for v in listed] == ["obstructed"]
    (mail,) = wait_view_mails(mailbox, 1)
    assert "spider web or dirt on the lens" in mail.get_content() and "/cameras" in mail.get_content()
    assert c.upload(clips["blurred"])["state"] == "obstructed"  # still blurred: no second notice
    assert c.upload(clips["sharp"])["state"] == "obstructed"  # one sharp clip is not enough yet
    view = c.upload(clips["sharp"])
    assert view["state"] == "ok" and view["reason"] is None and view["message"] is None
    got = receiver.wait(2, "/view")
    assert [e["type"] for e in hook_events(receiver)] == ["camera.view_obstructed", "camera.view_restored"], got
    obstructed, restored = hook_events(receiver)
    assert obstructed["camera_id"] == c.id and obstructed["reason"] == "blurred" and obstructed["light"] == "day"
    assert restored["reason"] == "blurred" and restored["state"] == "ok" and restored["dismissed"] is False
    assert len(view_mails(mailbox)) == 1  # one e-mail for the incident, none for the clips after it
    with server.core.db.session() as s:
        rows = s.exec(select(Outbox).where(Outbox.account_id == c.a.id, Outbox.kind == "email")).all()
    assert [r.payload["subject"] for r in rows if r.payload["subject"] == SUBJECT] == [SUBJECT]


def test_covered_camera_is_reported_without_mail_when_mails_are_off(api: Any, server: Any, clips: dict[str, Path],
                                                                   mailbox: Mailbox) -> None:
    c = Cam(api, "covered@example.com", mail=False)
    c.upload(clips["sharp"], 8)
    view = c.upload(clips["covered"], 3)
    assert view["state"] == "obstructed" and view["reason"] == "covered", view
    assert "is the camera covered" in view["message"]
    view = c.upload(clips["sharp"], 2)
    assert view["state"] == "ok"
    assert view_mails(mailbox) == []  # e-mail notifications are off for this account
    with server.core.db.session() as s:
        stored = s.get(Camera, c.id).view_data  # type: ignore[union-attr]
    # numbers only: per light the baseline clips' measures and a layout hash, the last verdicts, a counter, the
    # latest normal clip's time and light
    assert set(stored) == {"day", "night", "recent", "good", "last"} and len(stored["day"]) == 10
    assert set(stored["last"]) == {"at", "light", "full"} and isinstance(stored["last"]["at"], float)
    for sample in stored["day"] + stored["night"]:
        assert set(sample) == {"sharpness", "contrast", "brightness", "uniform", "hash"}
        assert all(isinstance(sample[k], float) for k in ("sharpness", "contrast", "brightness", "uniform"))
        assert re.fullmatch(r"[0-9a-f]{16}", sample["hash"])
    assert set(stored["recent"]) <= {"day", "night"} and isinstance(stored["good"], int)


def test_no_verdict_before_the_baseline_is_learned(api: Any, clips: dict[str, Path], mailbox: Mailbox) -> None:
    c = Cam(api, "learning@example.com")
    view = c.upload(clips["sharp"], viewcheck.MIN_BASELINE - 4)
    view = c.upload(clips["blurred"], 3)
    assert view["state"] == "learning" and view["reason"] is None
    assert view["baseline"] == {"day": viewcheck.MIN_BASELINE - 1, "night": 0}
    assert view["baseline_min"] == viewcheck.MIN_BASELINE
    assert view_mails(mailbox) == []


def test_night_clips_have_their_own_baseline(api: Any, clips: dict[str, Path], mailbox: Mailbox) -> None:
    day, soft = measures(clips["sharp"]), measures(clips["night"])
    assert not day.night and soft.night
    # compared with the day, the infrared picture is soft enough to count as blurred
    assert soft.sharpness < viewcheck.SHARPNESS_RATIO * day.sharpness
    c = Cam(api, "night@example.com")
    c.upload(clips["sharp"], 8)
    view = c.upload(clips["night"], 3)
    assert view["state"] == "ok" and view["baseline"] == {"day": 8, "night": 3}
    c.upload(clips["night"], 5)
    view = c.upload(clips["night_blurred"], 3)
    assert view["state"] == "obstructed" and view["reason"] == "blurred" and view["light"] == "night", view
    assert "blurred in the last 3 night clips" in view["message"]
    assert c.upload(clips["sharp"], 2)["state"] == "obstructed"  # clear days do not clear a night problem
    assert c.upload(clips["night"], 2)["state"] == "ok"
    assert len(wait_view_mails(mailbox, 1)) == 1


def test_a_moved_camera_is_reported(api: Any, clips: dict[str, Path]) -> None:
    c = Cam(api, "moved@example.com", mail=False)
    c.upload(clips["sharp"], 8)
    view = c.upload(clips["moved"], 3)
    assert view["state"] == "obstructed" and view["reason"] == "view_changed", view


def test_cameras_page_shows_the_notice_and_dismiss_needs_the_admin_right(api: Any, clips: dict[str, Path],
                                                                         receiver: Any) -> None:
    c = Cam(api, "dismiss@example.com", mail=False)
    assert c.a.post("/api/v1/webhooks", json={"url": receiver.url + "/view",
                                              "events": ["camera.view_restored"]}).status_code == 201
    c.upload(clips["sharp"], 8)
    assert c.upload(clips["covered"], 3)["state"] == "obstructed"
    page = c.a.get("/cameras").text
    assert "Check the camera's view" in page and "is the camera covered?" in page
    url = f"/api/v1/cameras/{c.id}/view/dismiss"
    assert f'data-api="{url}"' in page

    for right in ("view", "control"):
        email = f"{right}-sub@example.com"
        r = c.a.post("/api/v1/subusers", json={"email": email, "password": "correct horse battery staple",
                                               "rights": {c.id: right}})
        assert r.status_code == 201, r.text
        sub = api().login(email)
        assert sub.get(f"/api/v1/cameras/{c.id}").json()["view"]["state"] == "obstructed"
        r = sub.post(url)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    stranger = api().register("stranger@example.com")
    r = stranger.post(url)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert c.view()["state"] == "obstructed"

    paths = c.a.get("/openapi.json").json()["paths"]
    camera_schema = paths["/api/v1/cameras/{camera_id}"]["get"]["responses"]["200"]["content"]
    jsonschema.validate(c.a.get(f"/api/v1/cameras/{c.id}").json(), camera_schema["application/json"]["schema"])
    r = c.a.post(url)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "learning" and r.json()["baseline"] == {"day": 0, "night": 0}
    dismiss_schema = paths["/api/v1/cameras/{camera_id}/view/dismiss"]["post"]["responses"]["200"]["content"]
    jsonschema.validate(r.json(), dismiss_schema["application/json"]["schema"])
    assert c.view()["state"] == "learning"
    assert "Check the camera's view" not in c.a.get("/cameras").text
    (event,) = [json.loads(x["body"]) for x in receiver.wait(1, "/view")]
    assert event["type"] == "camera.view_restored" and event["dismissed"] is True
    # learning anew: the covered clips that follow are no verdict until the view is known again
    assert c.upload(clips["covered"], 3)["state"] == "learning"


def test_a_reanalysed_clip_is_not_counted_again(api: Any, server: Any, clips: dict[str, Path]) -> None:
    from alarmcloud import jobs
    from alarmcloud.models import Clip, Job

    c = Cam(api, "again@example.com", mail=False)
    assert c.upload(clips["sharp"], 3)["baseline"] == {"day": 3, "night": 0}
    core = server.core
    with core.db.session() as s:  # what ``alarmcloud reprocess`` queues
        for clip in s.exec(select(Clip).where(Clip.camera_id == c.id)).all():
            jobs.enqueue(s, clip)
        s.commit()
    core.wake_workers()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with core.db.session() as s:
            states = [j.state for j in s.exec(select(Job).where(Job.camera_id == c.id)).all()]
        if states.count("done") == 6:
            break
        time.sleep(0.1)
    assert states == ["done"] * 6
    assert c.view()["baseline"] == {"day": 3, "night": 0}


def dusk(i: int, t: float, w: int, h: int) -> np.ndarray:
    """The scene in colour at dusk: much darker and flatter, but as sharp."""
    return (static_scene(i, t, w, h).astype(np.float32) * 0.25).astype(np.uint8)


def test_a_darker_picture_at_dusk_is_not_taken_for_a_blurred_one(api: Any, clips: dict[str, Path],
                                                                  make_test_clip: Callable[..., Path]) -> None:
    dim = make_test_clip("view-dusk", scene=dusk, **CLIP)
    day, evening = measures(clips["sharp"]), measures(dim)
    assert not evening.night and evening.contrast < viewcheck.CONTRAST_RATIO * day.contrast
    c = Cam(api, "dusk@example.com", mail=False)
    c.upload(clips["sharp"], 8)
    view = c.upload(dim, 3)
    assert view["state"] == "ok", view


# the camera's recorded times (X-Recorded-At), in its own clock: days before now (the clips are kept 30 days)
DAY1 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)


def test_a_camera_without_infrared_is_not_reported_covered_in_its_black_nights(
        api: Any, clips: dict[str, Path], mailbox: Mailbox) -> None:
    """Its night picture is black like a covered lens; the first nights teach the night baseline, no verdict."""
    black = measures(clips["covered"])  # what the camera sees at night looks exactly like this
    assert viewcheck._blank(black) and black.night and black.brightness < viewcheck.DARK
    c = Cam(api, "no-infrared@example.com")
    c.upload(clips["sharp"], 8, at=DAY1 + timedelta(hours=8), every=timedelta(hours=1))
    view = c.upload(clips["covered"], 4, at=DAY1 + timedelta(hours=20), every=timedelta(hours=2))
    assert view["state"] == "ok" and view["baseline"] == {"day": 8, "night": 4}, view
    c.upload(clips["sharp"], 2, at=DAY1 + timedelta(days=1, hours=9), every=timedelta(hours=3))
    view = c.upload(clips["covered"], 6, at=DAY1 + timedelta(days=1, hours=19), every=timedelta(hours=1))
    assert view["state"] == "ok" and view["baseline"] == {"day": 10, "night": 10}, view
    # dusk: a full-light clip, then black more than SUDDEN_SECONDS later, night after night: still the night
    last_day = DAY1 + timedelta(days=2, hours=17)
    c.upload(clips["sharp"], at=last_day)
    view = c.upload(clips["covered"], 3, at=last_day + timedelta(seconds=viewcheck.SUDDEN_SECONDS + 60))
    assert view["state"] == "ok", view
    assert wait_view_mails(mailbox, 1, timeout=2) == []
    # a lens covered by day: black a few minutes after a full-light clip is judged against the day baseline
    morning = DAY1 + timedelta(days=3, hours=10)
    c.upload(clips["sharp"], at=morning)
    view = c.upload(clips["covered"], 3, at=morning + timedelta(minutes=5))
    assert view["state"] == "obstructed" and view["reason"] == "covered" and view["light"] == "day", view
    assert len(wait_view_mails(mailbox, 1)) == 1


def test_an_infrared_camera_covered_at_night_is_reported_against_its_night_baseline(
        api: Any, clips: dict[str, Path]) -> None:
    c = Cam(api, "infrared@example.com", mail=False)
    c.upload(clips["sharp"], 8, at=DAY1 + timedelta(hours=8), every=timedelta(hours=1))
    c.upload(clips["night"], 8, at=DAY1 + timedelta(hours=20), every=timedelta(hours=1))
    # hours after the last day clip: no sign of daylight, but the night baseline is a grey infrared picture
    view = c.upload(clips["covered"], 3, at=DAY1 + timedelta(days=1, hours=4))
    assert view["state"] == "obstructed" and view["reason"] == "covered" and view["light"] == "night", view


def test_sub_users_with_a_right_on_the_camera_get_the_view_mail_like_alarm_mails(
        api: Any, clips: dict[str, Path], mailbox: Mailbox) -> None:
    c = Cam(api, "house@example.com")
    other = c.a.camera("Garden")
    people = {"kid@example.com": {c.id: "view"}, "quiet@example.com": {c.id: "admin"},
              "neighbour@example.com": {other["id"]: "admin"}}
    for email, rights in people.items():
        r = c.a.post("/api/v1/subusers", json={"email": email, "password": "another good pw", "rights": rights})
        assert r.status_code == 201, r.text
        if email != "quiet@example.com":  # this one asked for no e-mails
            sub = api().login(email, "another good pw")
            assert sub.patch("/api/v1/me", json={"notify_email": True}).status_code == 200
    c.upload(clips["sharp"], 8)
    assert c.upload(clips["covered"], 3)["state"] == "obstructed"
    mails = wait_view_mails(mailbox, 2)
    time.sleep(1.0)  # nobody else: the neighbour has no right on this camera, the other one wants no e-mails
    got = sorted(env.rcpt_tos[0] for env, m in mailbox.messages if m["Subject"] == SUBJECT)
    assert got == ["house@example.com", "kid@example.com"] and len(mails) == 2
    assert all("is the camera covered" in m.get_content() for m in view_mails(mailbox))


def lamp_night(gain: float) -> Callable[[int, float, int, int], np.ndarray]:
    """A camera without infrared light at night under a street lamp: orange light in a pool, black elsewhere; a
    higher ``gain`` is a camera that turns its exposure up."""
    def scene(i: int, t: float, w: int, h: int) -> np.ndarray:
        grey = static_scene(i, t, w, h).mean(axis=2, keepdims=True)
        yy, xx = np.mgrid[0:h, 0:w]
        pool = np.clip(1.0 - np.hypot(yy - h * 0.2, xx - w * 0.5) / (w * 0.45), 0, 1)[..., None]
        img = grey * pool * gain * np.array([1.0, 0.7, 0.35]) + 3 + np.random.default_rng(i).normal(0, 3, (h, w, 3))
        return np.clip(img, 0, 255).astype(np.uint8)
    return scene


def test_street_lamp_nights_in_colour_are_not_taken_for_a_moved_camera(
        api: Any, clips: dict[str, Path], make_test_clip: Callable[..., Path]) -> None:
    dim = make_test_clip("view-lamp-dim", scene=lamp_night(0.6), **CLIP)
    bright = make_test_clip("view-lamp-bright", scene=lamp_night(1.5), **CLIP)
    for path in (dim, bright):  # colour, not blank, and another coarse layout than by day
        m = measures(path)
        assert not m.night and not viewcheck._blank(m) and m.hash != measures(clips["sharp"]).hash
    c = Cam(api, "street-lamp@example.com", mail=False)
    c.upload(clips["sharp"], 8, at=DAY1 + timedelta(hours=8), every=timedelta(hours=1))
    view = c.upload(dim, 3, at=DAY1 + timedelta(hours=21), every=timedelta(hours=1))
    assert view["state"] == "ok" and view["baseline"]["night"] == 3, view  # a dark colour picture is night
    view = c.upload(bright, 3, at=DAY1 + timedelta(days=1, hours=1), every=timedelta(hours=1))
    assert view["state"] == "ok", view  # brighter: a day picture, but its layout is not compared in other light


def test_the_view_notice_is_pushed_to_those_who_chose_push(api: Any, clips: dict[str, Path], mailbox: Mailbox,
                                                           receiver: Any) -> None:
    """A phone push for a covered camera, to whoever switched push on (here without e-mail), once per incident."""
    ntfy = receiver  # a stand-in ntfy server
    c = Cam(api, "view-push@example.com", mail=False)
    r = c.a.patch("/api/v1/me/push", json={"enabled": True, "url": f"{ntfy.url}/garage-view"})
    assert r.status_code == 200, r.text
    c.upload(clips["sharp"], 8)
    before = len(ntfy.received("/garage-view"))  # alarm pushes of the learning clips, if any
    view = c.upload(clips["covered"], 4)
    assert view["state"] == "obstructed" and view["reason"] == "covered", view
    pushes = [p for p in ntfy.wait(before + 1, "/garage-view")[before:] if "view" in p["headers"].get("Title", "")]
    assert len(pushes) == 1  # one notice for the incident, not one per covered clip
    (push,) = pushes
    assert push["headers"]["Title"] == "Check the view of camera Garage"
    assert "is the camera covered" in push["body"].decode() and push["headers"]["Tags"] == "warning"
    assert push["headers"]["Click"].endswith("/cameras")
    assert view_mails(mailbox) == []  # e-mail stays off
