"""Screenshots of the main pages at phone (390×844) and desktop (1280×800) width into ``docs/img/``.

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
SIZES = {"phone": (390, 844), "desktop": (1280, 800)}


def demo_history(core: object) -> None:
    """Spread the clips over the last days with mixed verdicts and a plate, so the charts show something."""
    from datetime import timedelta

    from alarmcloud.models import Clip, FindingRow, utcnow
    from sqlmodel import select

    verdicts = ["alarm", "false_alarm:rain", "alarm", "false_alarm:no_motion", "false_alarm:rain"]
    with core.db.session() as s:  # type: ignore[attr-defined]
        clips = s.exec(select(Clip).order_by(Clip.received_at)).all()
        for i, clip in enumerate(clips):
            clip.verdict = verdicts[i % len(verdicts)]
            clip.status = "done"
            clip.started_at = utcnow() - timedelta(days=(len(clips) - 1 - i) * 2, minutes=i)
            s.add(clip)
        if clips:
            s.add(FindingRow(clip_id=clips[-1].id, account_id=clips[-1].account_id, detector="plates",
                             label="plate", score=0.93, text="B AC 1234", time=1.2))
            s.add(FindingRow(clip_id=clips[-2].id, account_id=clips[-2].account_id, detector="rain",
                             label="rain", score=0.88))
        s.commit()


def seed(base: str, tmp: Path) -> tuple[httpx.Client, str]:
    """An account with two cameras and a few analysed clips."""
    c = httpx.Client(base_url=base, timeout=60)
    c.post("/api/v1/auth/register", json={"email": "demo@example.org", "password": PASSWORD})
    c.post("/api/v1/auth/login", json={"email": "demo@example.org", "password": PASSWORD})
    c.headers["X-CSRF-Token"] = c.cookies["ac_csrf"]
    event_id = ""
    for name in ("Driveway", "Garden"):
        cam = c.post("/api/v1/cameras", json={"name": name, "brand": "instar", "model": MODEL}).json()
        c.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"rain": True})
        creds = c.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").json()
        for i in range(3 if name == "Driveway" else 2):
            clip = make_accepted_clip(tmp / f"{name}{i}.mp4", seconds=4 + i)
            r = httpx.post(base + "/api/v1/ingest/clips", content=clip.read_bytes(), timeout=60,
                           auth=(creds["username"], creds["password"]), headers={"Content-Type": "video/mp4"})
            r.raise_for_status()
            event_id = event_id or r.json()["event_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = c.get("/api/v1/events").json()["items"]
        if all(it["status"] != "pending" for it in items):
            break
        time.sleep(0.5)
    return c, event_id


def take(out: Path = OUT) -> list[Path]:
    from alarmcloud.testing import LiveServer, test_settings

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with LiveServer(test_settings(tmp / "data")) as srv, browser() as b:
            client, event_id = seed(srv.url, tmp)
            demo_history(srv.core)
            event_id = client.get("/api/v1/events").json()["items"][0]["id"]
            cam_id = client.get("/api/v1/cameras").json()["items"][0]["id"]
            pages = {"login": "/login", "timeline": "/", "clip": f"/events/{event_id}", "cameras": "/cameras",
                     "camera": f"/cameras/{cam_id}", "storage": "/storage", "privacy": "/privacy-center",
                     "links": "/links"}
            for size, (w, h) in SIZES.items():
                ctx = b.new_context(viewport={"width": w, "height": h}, device_scale_factor=1,
                                    color_scheme="light")
                page = ctx.new_page()
                for name, path in pages.items():
                    if name != "login" and not ctx.cookies():
                        page.goto(srv.url + "/login")
                        page.get_by_label("E-mail address").fill("demo@example.org")
                        page.get_by_label("Password").fill(PASSWORD)
                        page.get_by_role("button", name="Log in").click()
                        page.wait_for_url(srv.url + "/")
                    page.goto(srv.url + path)
                    page.wait_for_load_state("networkidle")
                    target = out / f"{name}-{size}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                ctx.close()
    return written


if __name__ == "__main__":
    for p in take():
        print(p)
