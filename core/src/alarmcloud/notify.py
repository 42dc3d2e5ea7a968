"""Notifications after the verdict: HMAC-signed webhooks and e-mail through a durable outbox with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import time
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import Session, select

from alarmcloud.models import Account, Camera, Clip, KnownPlate, Outbox, PluginState, Webhook, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Alarmcloud-Signature"


def normalize_plate(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def known_plate(s: Session, account_id: str, text: str) -> dict[str, Any]:
    row = s.exec(select(KnownPlate).where(KnownPlate.account_id == account_id,
                                          KnownPlate.text == normalize_plate(text))).first()
    return {"known": row is not None, "name": row.name if row else None, "notify": row.notify if row else True}


def _cooldown_ok(s: Session, account: Account, camera_id: str) -> bool:
    key = f"notified:{camera_id}"
    row = s.exec(select(PluginState).where(PluginState.plugin == "core", PluginState.account_id == account.id,
                                           PluginState.key == key)).first()
    now = utcnow()
    if row is not None and row.value and now.timestamp() - float(row.value) < account.notify_cooldown_seconds:
        return False
    if row is None:
        row = PluginState(plugin="core", account_id=account.id, key=key)
    row.value = now.timestamp()
    row.updated_at = now
    s.add(row)
    return True


def queue_notifications(app: AlarmCloud, s: Session, clip: Clip, cam: Camera | None,
                        payload: dict[str, Any]) -> None:
    """After the verdict: one outbox row per webhook (and e-mail), honouring cooldown and 'only real alarms'."""
    acc = s.get(Account, clip.account_id)
    if acc is None:
        return
    real = (clip.verdict or "").startswith("alarm")
    hooks = s.exec(select(Webhook).where(Webhook.account_id == acc.id)).all()
    wants_mail = acc.notify_email and (real or not acc.notify_only_real)
    targets = [h for h in hooks if real or not h.only_real_alarms]
    if not targets and not wants_mail:
        return
    if not _cooldown_ok(s, acc, clip.camera_id):
        return
    body = {"type": "detections.ready", "event_id": clip.id, "camera_id": clip.camera_id, **payload,
            "thumbnail_url": app.settings.public_url.rstrip("/") + f"/api/v1/events/{clip.id}/thumbnail"}
    for h in targets:
        s.add(Outbox(account_id=acc.id, kind="webhook", target=h.id, payload=body))
    if wants_mail:
        name = cam.name if cam else "camera"
        s.add(Outbox(account_id=acc.id, kind="email", target=acc.email, payload={
            "subject": f"Alarm: {name} ({clip.verdict})",
            "text": f"Camera {name} recorded an alarm at {clip.started_at:%Y-%m-%d %H:%M:%S} UTC.\n"
                    f"Verdict: {clip.verdict}\nOpen: {app.settings.public_url.rstrip('/')}/events/{clip.id}\n"}))


def queue_admin_notice(app: AlarmCloud, s: Session, cam: Camera) -> None:
    """Tell the account's administrator before the camera's priority is lowered (fair use)."""
    acc = s.get(Account, cam.account_id)
    if acc is None:
        return
    s.add(Outbox(account_id=acc.id, kind="email", target=acc.email, payload={
        "subject": f"Fair use notice for camera {cam.name}",
        "text": f"{cam.fair_use_reason}.\nCheck the camera's detection areas and sensitivity.\n"}))


def sign(secret: str, body: bytes, ts: str) -> str:
    return "t=" + ts + ",v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def deliver_once(app: AlarmCloud, limit: int = 20) -> int:
    """Send due outbox rows; failures retry with backoff, then go dead after 8 attempts."""
    sent = 0
    with app.db.session() as s:
        rows = s.exec(select(Outbox).where(Outbox.state == "queued", Outbox.available_at <= utcnow())
                      .order_by(Outbox.id).limit(limit)).all()
        for row in rows:
            try:
                if row.kind == "webhook":
                    hook = s.get(Webhook, row.target)
                    if hook is None:
                        row.state = "dead"
                        s.add(row)
                        continue
                    body = json.dumps(row.payload).encode()
                    ts = str(int(time.time()))
                    r = httpx.post(hook.url, content=body, timeout=10, headers={
                        "Content-Type": "application/json", SIGNATURE_HEADER: sign(hook.secret, body, ts)})
                    r.raise_for_status()
                else:
                    send_email(app, row.target, row.payload["subject"], row.payload["text"])
                row.state = "sent"
                sent += 1
            except Exception as exc:
                row.attempts += 1
                row.last_error = f"{type(exc).__name__}"[:300]
                row.state = "dead" if row.attempts >= 8 else "queued"
                row.available_at = utcnow() + timedelta(seconds=5 * 2 ** row.attempts)
            s.add(row)
        s.commit()
    return sent


def send_email(app: AlarmCloud, to: str, subject: str, text: str) -> None:
    cfg = app.settings.smtp
    if not cfg.host:
        log.info("e-mail not sent (no SMTP host configured): %s", subject)
        return
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg.sender, to, subject
    msg.set_content(text)
    with smtplib.SMTP(cfg.host, cfg.port, timeout=15) as smtp:
        if cfg.starttls:
            smtp.starttls()
        if cfg.username and cfg.password:
            smtp.login(cfg.username, cfg.password.get_secret_value())
        smtp.send_message(msg)
