"""Consent ledger: releases are recorded, withdrawing removes the training copy, operators need a release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alarmcloud import crypto
from alarmcloud.models import Account
from alarmcloud.testing import LiveServer


def _operator(core: Any, api: Any) -> Any:
    with core.db.session() as s:
        s.add(Account(email="op@example.com", password_hash=crypto.hash_password("operator password 1"),
                      role="operator"))
        s.commit()
    return api().login("op@example.com", "operator password 1")


def test_operator_reads_a_clip_only_with_a_release(api: Any, server: LiveServer, privacy: Any,
                                                   tmp_path: Path) -> None:
    core: Any = server.core
    a = privacy.populate(api, tmp_path, "owner@example.com", subuser="family@example.com")
    acc = a["api"]
    op = _operator(core, api)
    # the release is the owner's decision: a sub-user who may view the camera cannot release its clips
    kid = api().login("family@example.com")
    r = kid.post(f"/api/v1/events/{a['event_id']}/feedback", json={"detector": "rain", "label": "rain", "release": True})
    assert r.status_code == 403
    assert kid.post(f"/api/v1/events/{a['event_id']}/feedback", json={"detector": "rain", "label": "rain"}).status_code == 201
    # an unreleased clip of the same customer
    creds = acc.upload_credentials(a["camera"]["id"])
    r = acc.upload(creds, tmp_path / f"{acc.id}.mp4")
    unreleased = r.json()["event_id"]
    assert op.get(f"/api/v1/admin/clips/{unreleased}/video").status_code == 403
    # the customer API gives operators nothing of another account either
    for path in (f"/api/v1/events/{unreleased}", f"/api/v1/events/{unreleased}/video",
                 f"/api/v1/events/{unreleased}/thumbnail", f"/api/v1/events/{a['event_id']}/video"):
        assert op.get(path).status_code == 404, path
    assert acc.get(f"/api/v1/admin/clips/{a['event_id']}/video").status_code == 403  # customers are no operators
    r = op.get(f"/api/v1/admin/clips/{a['event_id']}/video")
    assert r.status_code == 200 and r.content == acc.get(f"/api/v1/events/{a['event_id']}/video").content
    # the ledger shows the release; withdrawing it removes the training copy and the operator's access
    items = acc.get("/api/v1/me/consents").json()["items"]
    assert [(c["kind"], c["subject"], c["withdrawn_at"]) for c in items] == [("clip_release", a["event_id"], None)]
    assert "rain" in items[0]["purpose"]
    copy = Path(core.settings.data_dir) / "training" / "rain" / "rain" / f"{a['event_id']}.mp4"
    assert copy.exists()
    other = api().register("other@example.com")
    assert other.delete(f"/api/v1/me/consents/{items[0]['id']}").status_code == 404
    r = acc.delete(f"/api/v1/me/consents/{items[0]['id']}")
    assert r.status_code == 200 and r.json()["training_copies_removed"] == 1
    assert not copy.exists()
    assert op.get(f"/api/v1/admin/clips/{a['event_id']}/video").status_code == 403
    # append-only: the row stays, marked withdrawn
    items = acc.get("/api/v1/me/consents").json()["items"]
    assert len(items) == 1 and items[0]["withdrawn_at"] is not None
