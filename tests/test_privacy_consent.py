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


def test_a_withdrawal_that_cannot_be_registered_does_not_happen(api: Any, server: LiveServer, privacy: Any,
                                                                 tmp_path: Path) -> None:
    """A withdrawal is in the erasure register before it is committed (a restore of an older backup withdraws it
    again); when the line cannot be written, the release, the link and the masks stay as they were (500)."""
    from alarmcloud import erasures

    core: Any = server.core
    a = privacy.populate(api, tmp_path, "owner@example.com")
    acc = a["api"]
    client_id = privacy.link_ifttt(core, acc.id)
    ledger = {c["kind"]: c for c in acc.get("/api/v1/me/consents").json()["items"]}
    release, grant = ledger["clip_release"], ledger["integration_grant"]
    copy = Path(core.settings.data_dir) / "training" / "rain" / "rain" / f"{a['event_id']}.mp4"
    register = erasures.register_path(core.settings)
    register.mkdir()  # a folder where the file should be: every append fails
    cam = f"/api/v1/cameras/{a['camera']['id']}"
    # (the server closes the connection of a request that failed: not kept for the next one)
    close = {"Connection": "close"}
    assert acc.delete(f"/api/v1/me/consents/{release['id']}", headers=close).status_code == 500
    assert acc.delete(f"/api/v1/me/links/{client_id}", headers=close).status_code == 500
    assert acc.patch(cam, json={"privacy_masks": [[0.0, 0.0, 0.5, 0.5]]}, headers=close).status_code == 500
    items = {c["id"]: c for c in acc.get("/api/v1/me/consents").json()["items"]}
    assert all(c["withdrawn_at"] is None for c in items.values()) and len(items) == 2
    assert copy.exists()
    assert [i["client_id"] for i in acc.get("/api/v1/me/links").json()["items"]] == [client_id]
    assert acc.get(cam).json()["privacy_masks"] == []
    # once the register can be written, the same requests succeed and each leaves its line
    register.rmdir()
    assert acc.delete(f"/api/v1/me/consents/{release['id']}").status_code == 200 and not copy.exists()
    assert acc.delete(f"/api/v1/me/links/{client_id}").status_code == 204
    assert acc.patch(cam, json={"privacy_masks": [[0.0, 0.0, 0.5, 0.5]]}).status_code == 200
    assert acc.patch(cam, json={"name": "Garage 2"}).status_code == 200  # no masks change: no line
    lines = erasures.read([register]).entries
    assert [(e.kind, e.id) for e in lines] == [("consent", str(release["id"])), ("consent", str(grant["id"])),
                                               ("masks", a["camera"]["id"])]
