"""Sample accounts for platforms' endpoint tests (IFTTT ``test/setup``): real clips, findings, a linked token."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from alarmcloud import crypto, oauth
from alarmcloud.contracts import Finding
from alarmcloud.ingest import _series_for
from alarmcloud.models import Account, Camera, Clip, FindingRow, new_id, utcnow
from alarmcloud.oauth_models import OAuthClient
from alarmcloud.video import probe, thumbnail_jpeg

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)

CAMERA_NAME = "Endpoint test camera"
CAMERA_BRAND, CAMERA_MODEL = "instar", "IN-9008 Full HD"
#: three alarms, 3, 6 and 9 minutes ago: a mover with rain and a read plate in each (every trigger gets ≥ 3 items)
ALARMS: tuple[tuple[int, tuple[Finding, ...]], ...] = tuple(
    (3 * (i + 1), (Finding("rain", "rain", 0.91), Finding("plates", "plate", 0.88, time=2.0,
                                                          box=(0.4, 0.6, 0.6, 0.7), text=f"B-AC {101 + i}")))
    for i in range(3))


def email_for(integration: str) -> str:
    """The endpoint-test account's address (an ``.invalid`` domain: it never receives mail)."""
    return f"{integration}-endpoint-test@alarmcloud.invalid"


def _store_sample_clip(app: AlarmCloud, s: Session, cam: Camera, minutes_ago: int, findings: Iterable[Finding],
                       workdir: Path) -> Clip:
    """One clip as ingest and the pipeline would leave it: a real MP4 and thumbnail in blob storage, rows, findings."""
    from alarmcloud.testing import make_clip  # PyAV writer; only needed here, so import it late

    findings = list(findings)
    path = make_clip(workdir / f"{new_id()}.mp4", seconds=4, width=320, height=176, fps=10)
    clip_probe = probe(path)
    thumb = thumbnail_jpeg(path, width=320)
    clip_id = new_id()
    blob_key = f"{cam.account_id}/{cam.id}/{clip_id}.mp4"
    thumb_key = f"{cam.account_id}/{cam.id}/{clip_id}.jpg"
    size = app.blobs.put_file(blob_key, path)
    app.blobs.put_bytes(thumb_key, thumb)
    started = utcnow() - timedelta(minutes=minutes_ago)
    series = _series_for(s, cam, started, started + timedelta(seconds=clip_probe.duration),
                         app.settings.ingest.series_gap_seconds)
    clip = Clip(id=clip_id, account_id=cam.account_id, camera_id=cam.id, series_id=series.id, blob_key=blob_key,
                thumb_key=thumb_key, size_bytes=size, started_at=started, received_at=started,
                duration=clip_probe.duration, width=clip_probe.width, height=clip_probe.height, fps=clip_probe.fps,
                codec=clip_probe.video_codec or "", status="done", verdict="alarm", mover=True,
                labels=sorted({f.label for f in findings}))
    s.add(clip)
    s.flush()
    for f in findings:
        s.add(FindingRow(clip_id=clip.id, account_id=cam.account_id, detector=f.detector, label=f.label,
                         score=f.score, time=f.time, box=list(f.box) if f.box else None, text=f.text))
    return clip


def ensure_sample_account(app: AlarmCloud, integration: str) -> tuple[str, str]:
    """Create (once) the integration's endpoint-test account with a camera and three alarms; (account, camera) ids.

    Blocking (encodes small MP4s with PyAV): call it in a thread. Blobs written for a transaction that then fails
    are removed again.
    """
    email = email_for(integration)
    with app.db.session() as s:
        acc = s.exec(select(Account).where(Account.email == email)).first()
        cam = s.exec(select(Camera).where(Camera.account_id == acc.id)).first() if acc is not None else None
        if acc is not None and cam is not None:
            return acc.id, cam.id
        if acc is None:
            acc = Account(email=email, password_hash=crypto.hash_password(crypto.new_token(24)))
            s.add(acc)
            s.flush()
        cam = Camera(account_id=acc.id, name=CAMERA_NAME, brand=CAMERA_BRAND, model=CAMERA_MODEL)
        s.add(cam)
        s.flush()
        keys: list[str] = []
        try:
            with tempfile.TemporaryDirectory(prefix="alarmcloud-samples-") as tmp:
                for minutes_ago, findings in ALARMS:
                    clip = _store_sample_clip(app, s, cam, minutes_ago, findings, Path(tmp))
                    keys += [clip.blob_key, clip.thumb_key or ""]
            s.commit()
        except Exception:
            s.rollback()
            for key in filter(None, keys):
                app.blobs.delete(key)
            raise
        log.info("created the %s endpoint-test account", integration)
        return acc.id, cam.id


def endpoint_test_token(s: Session, integration: str, account_id: str, scopes: Iterable[str]) -> str:
    """A fresh access token for the endpoint-test account, from the integration's internal test client."""
    client_id = f"{integration}-endpoint-tests"
    wanted = sorted(set(scopes))
    client = s.get(OAuthClient, client_id)
    if client is None:  # no redirect URI: this client can never take part in the code flow
        client, _ = oauth.add_client(s, f"{integration} endpoint tests", integration, [], wanted,
                                     client_id=client_id)
    elif sorted(client.scopes or []) != wanted:
        client.scopes = wanted
        s.add(client)
        s.commit()
    return str(oauth.issue_tokens(s, account_id, client_id, wanted)["access_token"])
