"""Screenshots of the main pages at phone (375×812) and desktop (1280×800) width into ``docs/img/``.

Run: ``.venv/bin/python tests/e2e/screenshots.py`` (or the test below with ``ALARMCLOUD_SCREENSHOTS=1``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import MODEL, PASSWORD, browser, make_accepted_clip  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"
SIZES = {"phone": (375, 812), "desktop": (1280, 800)}
OPERATOR = "operator@example.org"
PAGES = ("login", "timeline", "clip", "case", "cameras", "camera", "storage", "plates", "notifications", "links",
         "consent", "privacy", "account", "operator")


def demo_history(core: object, written: bool = True) -> None:
    """Spread the clips over the last days so the charts show something; ``written``: also give the small test
    clips mixed verdicts and a plate (the demo scenes of ``take`` keep what the detectors said).

    The newest series stays a series of clips one after another, as a camera sends them while motion goes on; every
    older clip, moved to a day of its own, becomes an alarm of its own (a series never spans days)."""
    from datetime import timedelta

    from alarmcloud.models import Clip, FindingRow, Series, utcnow
    from sqlmodel import select

    verdicts = ["alarm", "false_alarm:rain", "alarm", "false_alarm:no_motion", "false_alarm:rain"]
    with core.db.session() as s:  # type: ignore[attr-defined]
        clips = s.exec(select(Clip).order_by(Clip.received_at)).all()
        newest = clips[-1].series_id if clips else ""
        kept = [c for c in clips if c.series_id == newest]
        moved = [c for c in clips if c.series_id != newest]
        now = utcnow()
        emptied = {c.series_id for c in moved}
        singles = []
        for i, clip in enumerate(moved):
            clip.started_at = now - timedelta(days=(len(moved) - i) * 2, minutes=i)
            singles.append(Series(account_id=clip.account_id, camera_id=clip.camera_id, started_at=clip.started_at,
                                  ended_at=clip.started_at + timedelta(seconds=clip.duration), clip_count=1))
        s.add_all(singles)
        s.flush()  # the new series exist before a clip points at one
        for clip, series in zip(moved, singles, strict=True):
            clip.series_id = series.id
            s.add(clip)
        s.flush()
        for sid in emptied:
            s.delete(s.get(Series, sid))
        for k, clip in enumerate(kept):
            clip.started_at = now - timedelta(minutes=30) + timedelta(seconds=20 * k)
        if kept:
            series = s.get(Series, newest)
            series.started_at = kept[0].started_at
            series.ended_at = kept[-1].started_at + timedelta(seconds=kept[-1].duration)
            series.clip_count = len(kept)
            s.add(series)
        for i, clip in enumerate(clips):
            if written:
                clip.verdict = verdicts[i % len(verdicts)]
                clip.status = "done"
            s.add(clip)
        if clips and written:
            s.add(FindingRow(clip_id=clips[-1].id, account_id=clips[-1].account_id, detector="plates",
                             label="plate", score=0.93, text="B AC 1234", time=1.2,
                             box=[0.40, 0.60, 0.62, 0.70]))
            s.add(FindingRow(clip_id=clips[-2].id, account_id=clips[-2].account_id, detector="rain",
                             label="rain", score=0.88))
        s.commit()


def seed(base: str, tmp: Path, scenes: bool = False) -> tuple[httpx.Client, dict[str, str]]:
    """An account with two cameras and a few analysed clips: small test clips, or with ``scenes`` the demo scenes
    (``demo_scenes``: the drive by day with the rain and plate detectors on, the garden at night with rain and
    insects). Returns the client and the event ids by clip name (``Driveway0``..., or the scenes' kinds)."""
    c = httpx.Client(base_url=base, timeout=60)
    c.post("/api/v1/auth/register", json={"email": "demo@example.org", "password": PASSWORD})
    c.post("/api/v1/auth/login", json={"email": "demo@example.org", "password": PASSWORD})
    c.headers["X-CSRF-Token"] = c.cookies["ac_csrf"]
    if scenes:
        import demo_scenes

        plan = {"Driveway": [(kind, lambda p, k=kind, n=n: demo_scenes.render(k, n, p, False))
                             for kind, n in demo_scenes.DAY],
                "Garden": [(kind, lambda p, k=kind, n=n: demo_scenes.render(k, n, p, True))
                           for kind, n in demo_scenes.NIGHT]}
        switches = {"Driveway": {"rain": True, "plates": True}, "Garden": {"rain": True, "insects": True}}
    else:
        plan = {name: [(f"{name}{i}", lambda p, i=i: make_accepted_clip(p, seconds=4 + i))
                       for i in range(3 if name == "Driveway" else 2)] for name in ("Driveway", "Garden")}
        switches = {"Driveway": {"rain": True}, "Garden": {"rain": True}}
    events: dict[str, str] = {}
    for name, clips in plan.items():
        cam = c.post("/api/v1/cameras", json={"name": name, "brand": "instar", "model": MODEL}).json()
        c.put(f"/api/v1/cameras/{cam['id']}/detectors", json=switches[name])
        creds = c.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").json()
        for clip_name, make in clips:
            clip = make(tmp / f"{clip_name}.mp4")
            r = httpx.post(base + "/api/v1/ingest/clips", content=clip.read_bytes(), timeout=60,
                           auth=(creds["username"], creds["password"]), headers={"Content-Type": "video/mp4"})
            r.raise_for_status()
            events[clip_name] = r.json()["event_id"]
    deadline = time.monotonic() + (300 if scenes else 60)
    while time.monotonic() < deadline:
        items = c.get("/api/v1/events").json()["items"]
        if all(it["status"] != "pending" for it in items):
            break
        time.sleep(0.5)
    return c, events


def extras(core: object, base: str) -> str:
    """An operator account, a linked service for the demo account, and a consent URL for a second service."""
    from urllib.parse import urlencode

    from alarmcloud import oauth
    from alarmcloud.models import Account
    from sqlmodel import select

    httpx.post(base + "/api/v1/auth/register", json={"email": OPERATOR, "password": PASSWORD})
    with core.db.session() as s:  # type: ignore[attr-defined]
        op = s.exec(select(Account).where(Account.email == OPERATOR)).one()
        op.role = "operator"
        s.add(op)
        from alarmcloud.models import Camera

        garden = s.exec(select(Camera).where(Camera.name == "Garden")).one()
        garden.fair_use_state = "low_priority"
        garden.fair_use_reason = "412 alarm clips in the last 24 hours (fair use: 300)"
        s.add(garden)
        s.commit()
        owner = s.exec(select(Account).where(Account.email == "demo@example.org")).one()
        from alarmcloud.models import KnownPlate

        driveway = s.exec(select(Camera).where(Camera.name == "Driveway")).first()
        if driveway is not None:  # a camera that reads plates, and two known plates (one is the demo clip's)
            driveway.detectors = {**(driveway.detectors or {}), "plates": True}
            s.add(driveway)
        s.add_all([KnownPlate(account_id=owner.id, text="BAC1234", name="Family car", notify=False),
                   KnownPlate(account_id=owner.id, text="MXY77", name="Postal van")])
        s.commit()
        ifttt, _ = oauth.add_client(s, "IFTTT", "ifttt", ["https://ifttt.com/channels/alarmcloud/authorize"],
                                    ["alarms:read", "cameras:control"])
        oauth.issue_tokens(s, owner.id, ifttt.id, ["alarms:read", "cameras:control"])
        alexa, _ = oauth.add_client(s, "Amazon Alexa", "alexa", ["https://layla.amazon.com/api/skill/link/demo"],
                                    ["alarms:read", "cameras:stream"])
    return "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": alexa.id, "state": "demo",
                                            "redirect_uri": "https://layla.amazon.com/api/skill/link/demo",
                                            "scope": "alarms:read cameras:stream"})


def demo_offsite(core: object) -> None:
    """The demo owner copies alarms into a bucket (set up, nothing copied yet), so the storage page shows the card
    in use. Stored directly: saving it through the API would look the endpoint's host up."""
    from alarmcloud import offsite
    from alarmcloud.models import Account
    from sqlmodel import select

    with core.db.session() as s:  # type: ignore[attr-defined]
        acc = s.exec(select(Account).where(Account.email == "demo@example.org")).one()
        acc.offsite_enabled, acc.offsite_scope = True, "alarms"
        acc.offsite_endpoint, acc.offsite_region = "https://s3.eu-central-1.amazonaws.com", "eu-central-1"
        acc.offsite_bucket, acc.offsite_prefix = "demo-camera-clips", "alarmcloud/home"
        acc.offsite_access_key_id = "AKIAIOSFODNN7EXAMPLE"
        acc.offsite_secret_key_enc = offsite.seal_secret(core, acc.id, "demo-secret-key")  # type: ignore[arg-type]
        s.add(acc)
        s.commit()


def _login(page: object, base: str, email: str) -> None:
    page.goto(base + "/login")  # type: ignore[attr-defined]
    page.get_by_label("E-mail address").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    page.wait_for_url(base + "/")  # type: ignore[attr-defined]


def take(out: Path = OUT) -> list[Path]:
    from alarmcloud.testing import LiveServer, test_settings

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with LiveServer(test_settings(tmp / "data")) as srv, browser() as b:
            client, events = seed(srv.url, tmp, scenes=True)
            demo_history(srv.core, written=False)
            consent = extras(srv.core, srv.url)
            demo_offsite(srv.core)
            event_id = events["car"]  # the clip page: a car pulling in, its plate read and known
            client.patch(f"/api/v1/events/{events['rain_person']}", json={"kept": True}).raise_for_status()
            case = client.post("/api/v1/cases", json={
                "name": "Parcel gone, 21 November", "event_ids": [events["person"], event_id],
                "notes": "The parcel left at the door at 10:40 was gone by noon.\nPolice reference 2026/48213."})
            case.raise_for_status()
            garden = next(c["id"] for c in client.get("/api/v1/cameras").json()["items"] if c["name"] == "Garden")
            client.put("/api/v1/me/snooze", json={"minutes": 90, "camera_id": garden}).raise_for_status()
            findings = client.get(f"/api/v1/events/{event_id}").json()["findings"]
            seek = next((f["time"] for f in findings if f["label"] == "plate" and f.get("time")), 1.2)
            cam_id = client.get("/api/v1/cameras").json()["items"][0]["id"]
            paths = {"login": "/login", "timeline": "/", "clip": f"/events/{event_id}",
                     "case": f"/cases/{case.json()['id']}", "cameras": "/cameras",
                     "camera": f"/cameras/{cam_id}", "storage": "/storage", "plates": "/plates",
                     "notifications": "/notifications",
                     "links": "/links", "consent": consent, "privacy": "/privacy-center", "account": "/account",
                     "operator": "/operator"}
            assert tuple(paths) == PAGES
            for size, (w, h) in SIZES.items():
                ctx = b.new_context(viewport={"width": w, "height": h}, device_scale_factor=1,
                                    color_scheme="light")
                page = ctx.new_page()
                for name, path in paths.items():
                    if name == "operator":
                        ctx.clear_cookies()
                        _login(page, srv.url, OPERATOR)
                    elif name != "login" and not ctx.cookies():
                        _login(page, srv.url, "demo@example.org")
                    page.goto(srv.url + path)
                    page.wait_for_load_state("networkidle")
                    if name == "clip":  # the first frame, not the buffering spinner
                        page.evaluate("""(at) => new Promise((ok) => { const v = document.querySelector('#player');
                            v.muted = true; v.addEventListener('seeked', () => { v.pause(); ok(); }, { once: true });
                            v.play().then(() => { v.pause(); v.currentTime = at; }); })""", seek)
                        page.wait_for_timeout(500)
                    target = out / f"{name}-{size}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                ctx.close()
    return written


if __name__ == "__main__":
    for p in take():
        print(p)
