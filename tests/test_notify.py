"""Notifications: e-mail through a real local SMTP server after the verdict, cooldown, "only real alarms",
retries with backoff, and an outbox that neither sends twice nor blocks the database while it waits."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from alarmcloud import db, notify
from alarmcloud.app import AlarmCloud
from alarmcloud.events import CLIP_STORED, Event
from alarmcloud.models import Account, Camera, Clip, Job, Outbox, PluginState, Series, Webhook, utcnow
from alarmcloud.testing import static_scene, test_settings
from sqlmodel import select


class Mailbox:
    """A real SMTP server (aiosmtpd) on loopback; ``on_arrival(message)`` runs when a message arrives."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, email.message.EmailMessage]] = []
        self.on_arrival: Callable[[email.message.EmailMessage], None] | None = None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        if self.on_arrival is not None:
            self.on_arrival(msg)  # type: ignore[arg-type]
        self.messages.append((envelope, msg))  # type: ignore[arg-type]
        return "250 OK"

    def wait(self, count: int, timeout: float = 60.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return [m for _, m in self.messages]



@pytest.fixture
def settings(tmp_path: Path, mailbox: Mailbox) -> Any:
    st = test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"])
    st.smtp.host, st.smtp.port, st.smtp.sender = "127.0.0.1", mailbox.port, "alarms@cloud.example"
    st.notify.webhook_networks = ["127.0.0.0/8"]
    return st


def _mail_on(a: Any, **extra: Any) -> None:
    r = a.patch("/api/v1/me", json={"notify_email": True, **extra})
    assert r.status_code == 200, r.text


def _email_rows(core: Any, account_id: str) -> list[Outbox]:
    with core.db.session() as s:
        return list(s.exec(select(Outbox).where(Outbox.account_id == account_id, Outbox.kind == "email")).all())


# ---------------------------------------------------------------- end to end, real SMTP


def test_alarm_email_arrives_after_the_verdict_with_links(api: Any, server: Any, mailbox: Mailbox,
                                                          clip: Path) -> None:
    a = api().register("mail1@example.com")
    _mail_on(a)
    cam = a.camera("Garage")
    seen: list[tuple[str, str | None]] = []

    def _state_at_arrival(msg: Any) -> None:
        with server.core.db.session() as s:
            for c in s.exec(select(Clip).where(Clip.camera_id == cam["id"])).all():
                seen.append((c.status, c.verdict))

    mailbox.on_arrival = _state_at_arrival
    r = a.upload(a.upload_credentials(cam["id"]), clip)
    assert r.status_code == 201, r.text
    event_id = r.json()["event_id"]
    (msg,) = mailbox.wait(1)
    assert seen == [("done", "alarm")]  # the clip had its verdict before the mail went out
    envelope = mailbox.messages[0][0]
    assert envelope.rcpt_tos == ["mail1@example.com"] and msg["From"] == "alarms@cloud.example"
    assert msg["Subject"] == "Alarm: Garage"
    text = msg.get_content()
    public = server.core.settings.public_url.rstrip("/")
    assert "Camera Garage recorded an alarm" in text and "Verdict: alarm" in text
    assert f"{public}/events/{event_id}" in text
    thumb_url = f"{public}/api/v1/events/{event_id}/thumbnail"
    assert thumb_url in text
    thumb = a.get(thumb_url.removeprefix(public))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    deadline = time.monotonic() + 30  # the mail arrives a moment before the worker writes down that it went out
    while (rows := _email_rows(server.core, a.id)) and rows[0].state == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    (row,) = rows
    assert row.state == "sent" and row.attempts == 1


def test_the_picture_goes_with_the_email_only_when_switched_on(api: Any, server: Any, mailbox: Mailbox,
                                                              clip: Path) -> None:
    a = api().register("picture@example.com")
    _mail_on(a, notify_cooldown_seconds=0)
    assert a.get("/api/v1/me").json()["notify_email_picture"] is False  # off by default
    cam = a.camera("Porch")
    creds = a.upload_credentials(cam["id"])
    assert a.upload(creds, clip).status_code == 201
    (plain,) = mailbox.wait(1)
    assert not plain.is_multipart() and plain.get_content_type() == "text/plain"

    r = a.patch("/api/v1/me", json={"notify_email_picture": True})
    assert r.status_code == 200 and r.json()["notify_email_picture"] is True
    r = a.upload(creds, clip)
    assert r.status_code == 201
    event_id = r.json()["event_id"]
    msgs = mailbox.wait(2)
    assert len(msgs) == 2
    rich = msgs[1]
    assert "Camera Porch recorded" in rich.get_body(("plain",)).get_content()  # the text part is unchanged
    html_part = rich.get_body(("html",))
    assert html_part is not None and "Camera Porch recorded" in html_part.get_content()
    (image,) = [p for p in rich.walk() if p.get_content_type() == "image/jpeg"]
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html_part.get_content()
    thumb = a.get(f"/api/v1/events/{event_id}/thumbnail")
    assert image.get_content() == thumb.content  # the stored picture of this very clip

    r = a.patch("/api/v1/me", json={"notify_email_picture": "yes"})
    assert r.status_code == 400  # a boolean, nothing else

    # the picture is read when the e-mail goes out: a clip deleted before that sends none
    core: Any = server.core
    with core.db.session() as s:
        row = Outbox(account_id=a.id, kind="email", target="picture@example.com",
                     payload={**notify.alarm_email(core, s.get(Clip, event_id), None), "picture": True})
        s.add(row)
        s.commit()
        s.refresh(row)
    assert a.delete(f"/api/v1/events/{event_id}").status_code == 204
    notify.deliver_row(core, row)
    late = mailbox.wait(3)[2]
    assert not late.is_multipart() and "recorded" in late.get_content()


def test_cooldown_per_camera(api: Any, server: Any, mailbox: Mailbox, clip: Path) -> None:
    a = api().register("mail2@example.com")
    _mail_on(a, notify_cooldown_seconds=3600)
    front, back = a.camera("Front"), a.camera("Back")
    front_creds, back_creds = a.upload_credentials(front["id"]), a.upload_credentials(back["id"])
    for _ in range(2):
        assert a.upload_analysed(front_creds, clip)["verdict"] == "alarm"
    assert a.upload_analysed(back_creds, clip)["verdict"] == "alarm"
    # e-mails are queued with the verdict: once the events are analysed the count is final
    assert len(_email_rows(server.core, a.id)) == 2
    msgs = mailbox.wait(2)
    assert sorted(m["Subject"] for m in msgs) == ["Alarm: Back", "Alarm: Front"]

    with server.core.db.session() as s:  # the hour is over for the front camera
        row = s.exec(select(PluginState).where(PluginState.key == f"notified:{front['id']}:email")).one()
        row.value = float(row.value) - 3601
        s.add(row)
        s.commit()
    assert a.upload_analysed(front_creds, clip)["verdict"] == "alarm"
    msgs = mailbox.wait(3)
    assert [m["Subject"] for m in msgs].count("Alarm: Front") == 2
    time.sleep(1.5)  # a few delivery rounds: nothing else comes
    assert len(mailbox.messages) == 3


def test_only_real_alarms_and_false_alarms(api: Any, server: Any, mailbox: Mailbox, clip: Path,
                                           make_test_clip: Any) -> None:
    a = api().register("mail3@example.com")
    _mail_on(a, notify_cooldown_seconds=0)  # "only real alarms" is on by default
    cam = a.camera("Garden")
    creds = a.upload_credentials(cam["id"])
    still = make_test_clip("still", seconds=18, fps=15, scene=static_scene)
    assert a.upload_analysed(creds, still)["verdict"] == "false_alarm:no_motion"
    assert _email_rows(server.core, a.id) == []  # a false alarm sends none
    assert a.upload_analysed(creds, clip)["verdict"] == "alarm"
    (msg,) = mailbox.wait(1)
    assert msg["Subject"] == "Alarm: Garden"

    _mail_on(a, notify_only_real=False)
    ev = a.upload_analysed(creds, still)
    msgs = mailbox.wait(2)
    assert msgs[1]["Subject"] == "False alarm (no motion): Garden"
    assert "Verdict: false_alarm:no_motion" in msgs[1].get_content() and ev["id"] in msgs[1].get_content()

    assert a.patch("/api/v1/me", json={"notify_email": False}).status_code == 200
    a.upload_analysed(creds, clip)
    assert len(_email_rows(server.core, a.id)) == 2
    time.sleep(1.5)
    assert len(mailbox.messages) == 2


def test_subusers_get_alarm_emails_for_their_cameras_by_their_own_settings(api: Any, server: Any, mailbox: Mailbox,
                                                                            clip: Path) -> None:
    owner = api().register("family@example.com")  # the owner has e-mails off
    garage, garden = owner.camera("Garage"), owner.camera("Garden")
    for email_, cam in (("kid@example.com", garage), ("neighbour@example.com", garden)):
        r = owner.post("/api/v1/subusers", json={"email": email_, "password": "another good pw",
                                                 "rights": {cam["id"]: "view"}})
        assert r.status_code == 201, r.text
        _mail_on(api().login(email_, "another good pw"), notify_cooldown_seconds=0)
    owner.upload_analysed(owner.upload_credentials(garage["id"]), clip)
    (msg,) = mailbox.wait(1)
    assert mailbox.messages[0][0].rcpt_tos == ["kid@example.com"] and msg["Subject"] == "Alarm: Garage"
    time.sleep(1.5)  # the neighbour has no right on the garage camera, the owner asked for none
    assert len(mailbox.messages) == 1


# ---------------------------------------------------------------- the outbox, without a server


def _app(tmp_path: Path, **smtp: Any) -> AlarmCloud:
    st = test_settings(tmp_path / "data")
    st.notify.webhook_networks = ["127.0.0.0/8"]
    st.notify.retry_base_seconds = 10.0
    st.notify.max_attempts = 3
    st.notify.timeout_seconds = 5.0
    for k, v in smtp.items():
        setattr(st.smtp, k, v)
    db.migrate(st.db_url)
    return AlarmCloud(st)


def _account(app: AlarmCloud, **kw: Any) -> tuple[str, list[str]]:
    with app.db.session() as s:
        acc = Account(email=f"o{time.monotonic_ns()}@example.com", password_hash="x", **kw)
        s.add(acc)
        s.flush()
        cams = [Camera(account_id=acc.id, name=n, brand="instar", model="IN-9008 Full HD") for n in ("A", "B")]
        s.add_all(cams)
        s.commit()
        return acc.id, [c.id for c in cams]


def _webhook(app: AlarmCloud, account_id: str, url: str, **kw: Any) -> str:
    with app.db.session() as s:
        hook = Webhook(account_id=account_id, url=url, secret="", **kw)
        hook.secret = notify.seal_secret(app, hook.id, "whsec_test")
        s.add(hook)
        s.commit()
        return hook.id


def _outbox(app: AlarmCloud, account_id: str, kind: str, target: str, n: int = 1, **payload: Any) -> list[int]:
    with app.db.session() as s:
        rows = [Outbox(account_id=account_id, kind=kind, target=target,
                       payload={"type": "webhook.test", "subject": "Hello", "text": "Body\n", **payload})
                for _ in range(n)]
        s.add_all(rows)
        s.commit()
        return [r.id for r in rows]  # type: ignore[misc]


def _row(app: AlarmCloud, row_id: int) -> Outbox:
    with app.db.session() as s:
        row = s.get(Outbox, row_id)
        assert row is not None
        return row


def _make_due(app: AlarmCloud, row_id: int) -> None:
    with app.db.session() as s:
        row = s.get(Outbox, row_id)
        assert row is not None
        row.available_at = utcnow() - timedelta(seconds=1)
        s.add(row)
        s.commit()


def test_smtp_failure_retries_with_backoff_then_delivers(tmp_path: Path, mailbox: Mailbox) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    app = _app(tmp_path, host="127.0.0.1", port=closed.getsockname()[1])  # nothing listens there
    closed.close()
    acc, _ = _account(app)
    (rid,) = _outbox(app, acc, "email", "someone@example.com")
    assert notify.deliver_once(app) == 0
    row = _row(app, rid)
    assert row.state == "queued" and row.attempts == 1 and "ConnectionRefused" in (row.last_error or "")
    assert row.available_at - row.last_attempt_at == timedelta(seconds=10)  # type: ignore[operator]
    assert notify.deliver_once(app) == 0 and _row(app, rid).attempts == 1  # not due yet: no attempt
    _make_due(app, rid)
    notify.deliver_once(app)
    row = _row(app, rid)
    assert row.attempts == 2 and row.available_at - row.last_attempt_at == timedelta(seconds=20)  # type: ignore[operator]

    app.settings.smtp.port = mailbox.port  # the mail server is back
    _make_due(app, rid)
    assert notify.deliver_once(app) == 1
    row = _row(app, rid)
    assert row.state == "sent" and row.attempts == 3
    (msg,) = mailbox.wait(1)
    assert msg["Subject"] == "Hello" and mailbox.messages[0][0].rcpt_tos == ["someone@example.com"]


def test_gives_up_after_max_attempts(tmp_path: Path, receiver: Any) -> None:
    app = _app(tmp_path)
    acc, _ = _account(app)
    receiver.script["/down"] = [500] * 10
    (rid,) = _outbox(app, acc, "webhook", _webhook(app, acc, receiver.url + "/down"))
    for _ in range(5):
        _make_due(app, rid)
        notify.deliver_once(app)
    row = _row(app, rid)
    assert row.state == "dead" and row.attempts == 3 and row.last_error == "HTTP 500"
    assert len(receiver.received("/down")) == 3


def test_no_smtp_host_marks_emails_skipped(tmp_path: Path) -> None:
    app = _app(tmp_path)
    acc, _ = _account(app)
    (rid,) = _outbox(app, acc, "email", "someone@example.com")
    assert notify.deliver_once(app) == 0
    row = _row(app, rid)
    assert row.state == "skipped" and row.last_error == "no SMTP host is configured"


def test_concurrent_senders_deliver_each_row_once(tmp_path: Path, receiver: Any) -> None:
    app = _app(tmp_path)
    acc, _ = _account(app)
    ids = _outbox(app, acc, "webhook", _webhook(app, acc, receiver.url + "/once"), n=6)
    receiver.gate = threading.Event()
    senders = [threading.Thread(target=notify.deliver_once, args=(app,)) for _ in range(3)]
    for t in senders:
        t.start()
    time.sleep(0.5)
    receiver.gate.set()
    for t in senders:
        t.join(30)
    for _ in range(5):  # the rest, one round after another
        notify.deliver_once(app)
    got = [r["headers"]["X-Alarmcloud-Delivery"] for r in receiver.received("/once")]
    assert sorted(got) == sorted(str(i) for i in ids)  # every row exactly once
    assert all(_row(app, i).state == "sent" for i in ids)


def test_slow_receiver_does_not_hold_the_database(tmp_path: Path, receiver: Any) -> None:
    app = _app(tmp_path)
    acc, _ = _account(app)
    _outbox(app, acc, "webhook", _webhook(app, acc, receiver.url + "/slow"))
    receiver.gate = threading.Event()
    sender = threading.Thread(target=notify.deliver_once, args=(app,))
    sender.start()
    deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
    while receiver.arrivals == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert receiver.arrivals == 1
    wrote = threading.Event()

    def _write() -> None:
        with app.db.session() as s:
            s.add(Account(email="writer@example.com", password_hash="x"))
            s.commit()
        wrote.set()

    threading.Thread(target=_write, daemon=True).start()
    assert wrote.wait(10), "a write waited for the webhook receiver"
    receiver.gate.set()
    sender.join(30)
    assert receiver.received("/slow")[0]["status"] == 200


def test_redirects_are_not_followed(tmp_path: Path, receiver: Any) -> None:
    app = _app(tmp_path)
    acc, _ = _account(app)
    receiver.script["/moved"] = [302]
    (rid,) = _outbox(app, acc, "webhook", _webhook(app, acc, receiver.url + "/moved"))
    notify.deliver_once(app)
    assert _row(app, rid).last_error == "HTTP 302 (redirects are not followed)"
    assert receiver.received("/redirected") == []


def _clip(app: AlarmCloud, acc: str, cam: str, verdict: str) -> Clip:
    with app.db.session() as s:
        now = utcnow()
        series = Series(account_id=acc, camera_id=cam, started_at=now, ended_at=now)
        s.add(series)
        s.flush()
        clip = Clip(account_id=acc, camera_id=cam, series_id=series.id, blob_key="x.mp4", status="done",
                    verdict=verdict)
        s.add(clip)
        s.commit()
        return clip


def _notify(app: AlarmCloud, clip: Clip) -> list[tuple[str, str]]:
    with app.db.session() as s:
        before = {r.id for r in s.exec(select(Outbox)).all()}
        notify.queue_notifications(app, s, clip, s.get(Camera, clip.camera_id), {"verdict": clip.verdict})
        s.commit()
        return [(r.kind, r.target) for r in s.exec(select(Outbox)).all() if r.id not in before]


def test_cooldown_is_per_camera_and_channel(tmp_path: Path) -> None:
    app = _app(tmp_path)
    acc, (cam_a, cam_b) = _account(app, notify_email=True, notify_cooldown_seconds=300)
    hook = _webhook(app, acc, "http://127.0.0.1:9/all", only_real_alarms=False)
    # a false alarm goes to the webhook that wants everything, and must not silence the alarm e-mail
    assert _notify(app, _clip(app, acc, cam_a, "false_alarm:rain")) == [("webhook", hook)]
    with app.db.session() as s:
        email_addr = s.get(Account, acc).email  # type: ignore[union-attr]
    assert _notify(app, _clip(app, acc, cam_a, "alarm")) == [("email", email_addr)]
    assert _notify(app, _clip(app, acc, cam_a, "alarm")) == []  # both channels are quiet for camera A now
    assert sorted(_notify(app, _clip(app, acc, cam_b, "alarm"))) == [("email", email_addr), ("webhook", hook)]


def test_reanalysis_of_a_stored_clip_notifies_nobody_again(tmp_path: Path) -> None:
    app = _app(tmp_path)
    acc, (cam_a, _) = _account(app, notify_email=True, notify_cooldown_seconds=0)
    clip = _clip(app, acc, cam_a, "alarm")
    with app.db.session() as s:
        s.add(Job(clip_id=clip.id, camera_id=cam_a, account_id=acc, state="done"))
        s.commit()
    assert [k for k, _ in _notify(app, clip)] == ["email"]  # the first analysis
    with app.db.session() as s:  # ``alarmcloud reprocess`` ran the detectors again
        s.add(Job(clip_id=clip.id, camera_id=cam_a, account_id=acc, state="done"))
        s.commit()
    assert _notify(app, clip) == []


def test_camera_names_cannot_inject_mail_headers(tmp_path: Path, mailbox: Mailbox) -> None:
    app = _app(tmp_path, host="127.0.0.1", port=mailbox.port)
    acc, (cam_id, _) = _account(app, notify_email=True)
    with app.db.session() as s:
        cam = s.get(Camera, cam_id)
        cam.name = "Gate\r\nBcc: thief@example.com"  # type: ignore[union-attr]
        s.add(cam)
        s.commit()
    _notify(app, _clip(app, acc, cam_id, "alarm"))
    assert notify.deliver_once(app) == 1
    (msg,) = mailbox.wait(1)
    assert msg["Subject"] == "Alarm: Gate Bcc: thief@example.com" and msg["Bcc"] is None
    assert len(mailbox.messages[0][0].rcpt_tos) == 1 and "thief" not in mailbox.messages[0][0].rcpt_tos[0]


def test_restricted_accounts_get_no_event_webhooks(tmp_path: Path) -> None:
    app = _app(tmp_path)
    acc, (cam_id, _) = _account(app)
    hook = _webhook(app, acc, "http://127.0.0.1:9/ev", events=["clip.stored"])
    asyncio.run(app.emit(Event(CLIP_STORED, acc, cam_id, {"clip_id": "c1"})))
    with app.db.session() as s:
        (row,) = s.exec(select(Outbox).where(Outbox.target == hook)).all()
        assert row.payload["type"] == "clip.stored" and row.payload["clip_id"] == "c1"
        acc_row = s.get(Account, acc)
        acc_row.restricted = True  # type: ignore[union-attr]
        s.add(acc_row)
        s.commit()
    asyncio.run(app.emit(Event(CLIP_STORED, acc, cam_id, {"clip_id": "c2"})))
    with app.db.session() as s:
        assert len(s.exec(select(Outbox).where(Outbox.target == hook)).all()) == 1


def test_webhook_networks_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from alarmcloud.config import Settings
    from pydantic import ValidationError

    monkeypatch.setenv("ALARMCLOUD_NOTIFY__WEBHOOK_NETWORKS", "10.0.0.0/8, 192.168.1.0/24")
    assert Settings().notify.webhook_networks == ["10.0.0.0/8", "192.168.1.0/24"]
    assert notify.address_allowed("10.9.8.7", Settings().notify.webhook_networks)
    assert not notify.address_allowed("192.168.2.1", Settings().notify.webhook_networks)
    monkeypatch.setenv("ALARMCLOUD_NOTIFY__WEBHOOK_NETWORKS", "10.0.0.0/33")
    with pytest.raises(ValidationError):
        Settings()


def test_finished_deliveries_are_pruned_after_keep_days(tmp_path: Path) -> None:
    app = _app(tmp_path)
    acc, _ = _account(app)
    ids = _outbox(app, acc, "email", "someone@example.com", n=4)
    old = utcnow() - timedelta(days=31)
    with app.db.session() as s:
        for rid, state, when in zip(ids, ("sent", "dead", "queued", "sent"), (old, old, old, utcnow()),
                                    strict=True):
            row = s.get(Outbox, rid)
            row.state, row.created_at, row.available_at = state, when, when  # type: ignore[union-attr]
            s.add(row)
        s.commit()
    assert notify.prune(app) == 2
    with app.db.session() as s:
        left = {r.id: r.state for r in s.exec(select(Outbox).where(Outbox.account_id == acc)).all()}
    assert left == {ids[2]: "queued", ids[3]: "sent"}  # pending work and recent history stay


def test_one_receivers_backlog_does_not_starve_the_others(tmp_path: Path, receiver: Any) -> None:
    app = _app(tmp_path)
    acc, _ = _account(app)
    _outbox(app, acc, "webhook", _webhook(app, acc, receiver.url + "/flood"), n=300)
    (other,) = _outbox(app, acc, "webhook", _webhook(app, acc, receiver.url + "/other"))
    notify.deliver_once(app)  # one round
    assert _row(app, other).state == "sent"
    assert len(receiver.received("/flood")) == notify.PER_TARGET
