"""The camera page applies its privacy masks to clips stored before them: the offer, the progress, the result.

A small deployment of its own (no seeded history): each test makes a camera with two short clips.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import AUDIT_JS, MODEL, PASSWORD, browser, login, make_accepted_clip, opened_page, require_chromium  # noqa: E402

pytestmark = pytest.mark.browser

OWNER = "owner.apply@example.org"
VIEWER = "viewer.apply@example.org"
PENDING_TWO = "2 clips stored without the current masks"
# mean brightness of the picture's top-left quarter (the mask below), read back from the card's <img>
QUARTER_MEAN = """(img) => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(4, 4, Math.floor(c.width / 2) - 8, Math.floor(c.height / 2) - 8).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
  return sum / (d.length / 4) / 3;
}"""


class Deployment:
    def __init__(self, url: str, core: Any, tmp: Path) -> None:
        self.url, self.core, self.tmp = url, core, tmp
        self.owner = httpx.Client(base_url=url, timeout=60)
        self.owner.post("/api/v1/auth/register", json={"email": OWNER, "password": PASSWORD}).raise_for_status()
        self.owner.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).raise_for_status()
        self.owner.headers["X-CSRF-Token"] = self.owner.cookies["ac_csrf"]

    def camera_with_clips(self, name: str, clips: int = 2) -> tuple[str, list[str]]:
        """A camera without masks and ``clips`` short stored clips, analysed (their ids, oldest first)."""
        c = self.owner
        cam = c.post("/api/v1/cameras", json={"name": name, "brand": "instar", "model": MODEL}).json()
        creds = c.post(f"/api/v1/cameras/{cam['id']}/upload-credentials").json()
        ids = []
        for i in range(clips):
            clip = make_accepted_clip(self.tmp / f"{name}{i}.mp4", seconds=1.5)
            r = httpx.post(self.url + "/api/v1/ingest/clips", content=clip.read_bytes(), timeout=60,
                           auth=(creds["username"], creds["password"]), headers={"Content-Type": "video/mp4"})
            assert r.status_code in (200, 201, 202), r.text
            ids.append(r.json()["event_id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            items = c.get("/api/v1/events", params={"camera_id": cam["id"]}).json()["items"]
            if len(items) >= clips and all(it["status"] != "pending" for it in items):
                break
            time.sleep(0.2)
        return cam["id"], ids

    def progress(self, camera_id: str) -> dict[str, Any]:
        r = self.owner.get(f"/api/v1/cameras/{camera_id}/privacy-masks/apply")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    require_chromium()
    from alarmcloud.testing import LiveServer, test_settings

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        settings: Any = test_settings(tmp / "data", camera_networks=["127.0.0.0/8"])
        with LiveServer(settings) as srv:
            yield Deployment(srv.url, srv.core, tmp)


@pytest.fixture(scope="module")
def chromium(deployment: Deployment) -> Iterator[Any]:
    with browser() as b:
        yield b


def add_mask_top_left_quarter(card: Any) -> None:
    for name, value in (("Left", "0"), ("Top", "0"), ("Right", "50"), ("Bottom", "50")):
        card.get_by_label(name).fill(value)
    card.get_by_role("button", name="Add rectangle").click()
    card.get_by_role("button", name="Save masks").click()
    card.get_by_text("Saved: new clips are stored with these masks.").wait_for()


def test_owner_saves_a_mask_and_applies_it_to_the_two_stored_clips(chromium: Any, deployment: Deployment) -> None:
    cam_id, _ = deployment.camera_with_clips("Porch")
    with opened_page(chromium, 1280, 900) as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, deployment.url, OWNER)
        page.goto(f"{deployment.url}/cameras/{cam_id}")
        card = page.locator("#privacy-masks")
        assert "clips already stored are not changed until the masks are applied" in card.inner_text()
        img = card.locator("[data-mask-stage] img")
        page.wait_for_function("() => document.querySelector('[data-mask-stage] img').naturalWidth > 0")
        before = img.evaluate(QUARTER_MEAN)
        assert before > 60  # the clip shows something where the mask will go
        apply = card.get_by_role("button", name="Apply masks to stored clips")
        assert not apply.is_visible()  # no masks yet: nothing to apply

        add_mask_top_left_quarter(card)
        card.get_by_text(PENDING_TWO).wait_for()
        assert "cannot be undone" in card.locator("#mask-apply-help").inner_text()
        assert apply.is_visible()
        assert apply.get_attribute("aria-describedby") == "mask-apply-help"

        apply.click()
        bar = card.locator("progress")
        bar.wait_for()  # shown from the answer to the click until the job ends
        status = card.locator("[data-apply-state]")
        assert status.get_attribute("role") == "status"
        assert " of 2 clips." in status.inner_text()
        # the progress shows until the job ends; then the result, and the offer is gone
        card.get_by_text("2 clips masked.").wait_for(timeout=60_000)
        assert not bar.is_visible()
        assert not card.get_by_text(PENDING_TWO).is_visible()
        assert not apply.is_visible()
        assert not card.locator("[data-apply-error]").is_visible()
        info = deployment.progress(cam_id)
        assert (info["state"], info["total"], info["done"], info["failed"], info["pending_clips"]) == ("done", 2, 2, 0, 0)
        # the card's picture is loaded again past the day-long cache: the masked area is black now
        assert img.get_attribute("src").endswith(f"?v={info['job_id']}")
        page.wait_for_function("() => { const i = document.querySelector('[data-mask-stage] img');"
                               " return i.complete && i.naturalWidth > 0; }")
        assert img.evaluate(QUARTER_MEAN) < 20
        page.reload()
        page.wait_for_load_state("networkidle")
        assert not card.get_by_text("stored without the current masks").is_visible()
        assert not apply.is_visible()
        assert errors == []


def test_progress_is_shown_while_the_job_runs_and_failures_are_listed(chromium: Any,
                                                                       deployment: Deployment) -> None:
    from alarmcloud.models import Clip, MaskJob, utcnow

    cam_id, ids = deployment.camera_with_clips("Yard")
    core = deployment.core
    assert deployment.owner.patch(f"/api/v1/cameras/{cam_id}",
                                  json={"privacy_masks": [[0, 0, 0.5, 0.5]]}).status_code == 200
    # a job another server runs right now: the page shows its progress as soon as it opens
    with core.db.session() as s:
        cam_masks = [[0.0, 0.0, 0.5, 0.5]]
        from alarmcloud.masks import masks_hash

        job = MaskJob(account_id=s.get(Clip, ids[0]).account_id, camera_id=cam_id, masks=cam_masks,
                      masks_hash=masks_hash(cam_masks), total=2, done=1, state="running", worker="elsewhere:1:x",
                      lease_until=utcnow() + timedelta(hours=1))
        s.add(job)
        s.commit()
        job_id = job.id
    with opened_page(chromium, 1280, 900) as page:
        login(page, deployment.url, OWNER)
        page.goto(f"{deployment.url}/cameras/{cam_id}")
        card = page.locator("#privacy-masks")
        status = card.get_by_role("status").filter(has_text="Masking stored clips")
        status.wait_for()
        assert status.inner_text() == "Masking stored clips: 1 of 2 clips."
        bar = card.locator("progress")
        assert bar.is_visible()
        assert (bar.get_attribute("aria-label"), bar.evaluate("(b) => [b.value, b.max]")) == (
            "Stored clips masked", [1, 2])
        assert not card.get_by_role("button", name="Apply masks to stored clips").is_visible()
        # that server gives up: the page stops with the reason
        with core.db.session() as s:
            row = s.get(MaskJob, job_id)
            row.state, row.finished_at, row.last_error = "dead", utcnow(), "interrupted 3 times; stopped"
            s.add(row)
            s.commit()
        card.get_by_role("alert").filter(has_text="Interrupted 3 times; stopped").wait_for()
        assert card.get_by_text("Stopped: 1 of 2 clips masked.").is_visible()
        assert not bar.is_visible()
        card.get_by_text(PENDING_TWO).wait_for()

        # one stored video is damaged: it cannot be masked, the other is; the damaged one is listed with a link
        with core.db.session() as s:
            damaged = s.get(Clip, ids[1])
            core.blobs.path(damaged.blob_key).write_bytes(b"not a video at all" * 100)
        card.get_by_role("button", name="Apply masks to stored clips").click()
        card.get_by_text("1 clip masked, 1 failed.").wait_for(timeout=60_000)
        link = card.get_by_role("link", name=f"Clip {ids[1]}")
        assert link.get_attribute("href") == f"/events/{ids[1]}"
        assert not card.get_by_role("alert").is_visible()
        # the damaged clip still lacks the masks: applying again is offered
        card.get_by_text("1 clip stored without the current masks").wait_for()
        assert card.get_by_role("button", name="Apply masks to stored clips").is_visible()


def test_a_viewer_sees_no_apply_button(chromium: Any, deployment: Deployment) -> None:
    cam_id, _ = deployment.camera_with_clips("Gate")
    c = deployment.owner
    assert c.patch(f"/api/v1/cameras/{cam_id}", json={"privacy_masks": [[0, 0, 0.5, 0.5]]}).status_code == 200
    assert deployment.progress(cam_id)["pending_clips"] == 2
    r = c.post("/api/v1/subusers", json={"email": VIEWER, "password": PASSWORD, "rights": {cam_id: "view"}})
    assert r.status_code == 201, r.text
    with opened_page(chromium, 1280, 900) as page:
        login(page, deployment.url, VIEWER)
        page.goto(f"{deployment.url}/cameras/{cam_id}")
        page.wait_for_load_state("networkidle")
        card = page.locator("#privacy-masks")
        assert card.locator("[data-mask-list] li").count() == 1
        assert card.get_by_role("button").count() == 0
        assert "stored without the current masks" not in card.inner_text()
    # the owner, on the same camera and a phone in dark mode, is offered the button; the page passes the audit
    with opened_page(chromium, 375, 740, color_scheme="dark") as page:
        login(page, deployment.url, OWNER)
        page.goto(f"{deployment.url}/cameras/{cam_id}")
        card = page.locator("#privacy-masks")
        card.get_by_text(PENDING_TWO).wait_for()
        assert card.get_by_role("button", name="Apply masks to stored clips").is_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate(AUDIT_JS) == []
        # the masks were removed meanwhile (another tab): the server's reason is shown, nothing starts
        assert c.patch(f"/api/v1/cameras/{cam_id}", json={"privacy_masks": []}).status_code == 200
        card.get_by_role("button", name="Apply masks to stored clips").click()
        alert = card.get_by_role("alert").filter(has_text="no privacy masks to apply")
        alert.wait_for()
        assert alert.inner_text().startswith("This camera has no privacy masks")
        assert deployment.progress(cam_id)["state"] == "none"
