"""The IFTTT endpoint-test user: an account, a camera and ≥ 3 items per trigger, plus a token (test/setup)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

TEST_EMAIL = "ifttt-endpoint-test@alarmcloud.invalid"
PLUGIN = "ifttt"
INTEGRATION = "ifttt"
SCOPES = ("alarms:read", "cameras:control", "storage:read")


def setup_test_account(s: Session, redirect_uri: str) -> dict[str, Any]:
    """Create (once) the test account with a camera and sample events; issue a fresh token for it."""
    # test/setup runs inside the core's process; the fixtures need core tables the services facade cannot write
    from alarmcloud import crypto, oauth
    from alarmcloud.models import Account, Camera, Clip, FindingRow, PluginState, Series, utcnow
    from alarmcloud.oauth_models import OAuthClient

    acc = s.exec(select(Account).where(Account.email == TEST_EMAIL)).first()
    if acc is None:
        acc = Account(email=TEST_EMAIL, password_hash=crypto.hash_password(crypto.new_token(24)))
        s.add(acc)
        s.flush()
    cam = s.exec(select(Camera).where(Camera.account_id == acc.id)).first()
    if cam is None:
        cam = Camera(account_id=acc.id, name="IFTTT test camera", brand="instar", model="IN-9008 Full HD")
        s.add(cam)
        s.flush()
        now = utcnow()
        series = Series(account_id=acc.id, camera_id=cam.id, started_at=now - timedelta(minutes=10), ended_at=now,
                        clip_count=3)
        s.add(series)
        s.flush()
        for i in range(3):
            clip = Clip(account_id=acc.id, camera_id=cam.id, series_id=series.id, blob_key=f"ifttt-test/{i}.mp4",
                        started_at=now - timedelta(minutes=3 * (i + 1)), status="done", verdict="alarm",
                        duration=18.0, labels=["person", "plate", "rain"])
            s.add(clip)
            s.flush()
            s.add(FindingRow(clip_id=clip.id, account_id=acc.id, detector="rain", label="rain", score=0.9))
            s.add(FindingRow(clip_id=clip.id, account_id=acc.id, detector="plates", label="plate", score=0.9,
                             text=f"B-IF {100 + i}"))
        s.add(PluginState(plugin=PLUGIN, account_id=acc.id, key="storage_events", value=[
            {"id": f"test-storage-{i}", "timestamp": int((now - timedelta(hours=i + 1)).timestamp()),
             "used_ratio": 0.9 + i / 100} for i in range(3)]))
        s.add(PluginState(plugin=PLUGIN, account_id=acc.id, key="test_account", value=True))
    client = s.exec(select(OAuthClient).where(OAuthClient.integration == INTEGRATION)
                    .order_by(OAuthClient.created_at)).first()  # type: ignore[arg-type]
    if client is None:
        client, _ = oauth.add_client(s, "IFTTT endpoint tests", INTEGRATION, [redirect_uri], list(SCOPES),
                                     client_id="ifttt-endpoint-tests")
    token = oauth.issue_tokens(s, acc.id, client.id, [x for x in SCOPES if x in (client.scopes or SCOPES)])
    s.commit()
    return {"access_token": token["access_token"], "account_id": acc.id, "camera_id": cam.id}
