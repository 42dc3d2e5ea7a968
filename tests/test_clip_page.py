"""The clip page (``/events/{id}``) as people with different rights see it, and with findings of every shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alarmcloud.models import Clip, FindingRow
from alarmcloud.testing import LiveServer


def test_findings_without_a_time_or_box_show_as_whole_clip(server: LiveServer, api: Any, clip: Path) -> None:
    """A detector may report a finding for the whole clip (no time, no box): the page shows it as such instead of
    failing with a server error."""
    owner = api().register("page@example.com")
    cam = owner.camera()
    ev = owner.upload_analysed(owner.upload_credentials(cam["id"]), clip)
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        account_id = s.get(Clip, ev["id"]).account_id
        s.add(FindingRow(clip_id=ev["id"], account_id=account_id, detector="rain", label="rain", score=0.9,
                         time=None, box=None))
        s.commit()
    assert any(f.get("time") is None for f in owner.get(f"/api/v1/events/{ev['id']}").json()["findings"])
    page = owner.get(f"/events/{ev['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text[:500]
    assert "whole clip" in page.text


def test_the_delete_and_keep_buttons_are_shown_only_to_those_who_may_use_them(api: Any, clip: Path) -> None:
    """Deleting or keeping a clip needs the admin right on its camera: the owner and an admin sub-user see the
    buttons, view and control sub-users do not (the API refuses them with 403)."""
    owner = api().register("rights@example.com")
    cam = owner.camera()
    ev = owner.upload_analysed(owner.upload_credentials(cam["id"]), clip)

    def shown(page: str) -> bool:
        delete, keep = "Delete this clip" in page, "Keep this clip" in page
        assert delete == keep, (delete, keep)
        return delete

    seen: dict[str, bool] = {"owner": shown(owner.get(f"/events/{ev['id']}").text)}
    for right in ("view", "control", "admin"):
        email = f"{right}@example.com"
        r = owner.post("/api/v1/subusers", json={"email": email, "password": "another good pw",
                                                 "rights": {cam["id"]: right}})
        assert r.status_code == 201, r.text
        sub = api().login(email, "another good pw")
        page = sub.get(f"/events/{ev['id']}")
        assert page.status_code == 200, page.text[:300]
        seen[right] = shown(page.text)
    assert seen == {"owner": True, "view": False, "control": False, "admin": True}
