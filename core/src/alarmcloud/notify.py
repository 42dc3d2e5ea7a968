"""Notifications after the verdict: HMAC-signed webhooks, e-mail, ntfy push and Telegram through a durable outbox
with retries (which also carries off-site copies of clips, ``offsite``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import re
import smtplib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from alarmcloud import crypto, offsite
from alarmcloud.events import (
    CAMERA_CHANGED,
    CAMERA_DELETED,
    CAMERA_FAIR_USE_CHANGED,
    CAMERA_SILENT,
    CAMERA_VIEW_OBSTRUCTED,
    CAMERA_VIEW_RESTORED,
    CLIP_STORED,
    DETECTIONS_READY,
    OFFSITE_FAILING,
    PLATE_RECOGNISED,
    STORAGE_ALMOST_FULL,
    Event,
)
from alarmcloud.models import (
    ACCOUNT_SECRETS,
    Account,
    Camera,
    CameraRight,
    Clip,
    Job,
    KnownPlate,
    Outbox,
    PluginState,
    Webhook,
    iso,
    utcnow,
)
from alarmcloud.snooze import snoozed

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Alarmcloud-Signature"
EVENT_HEADER = "X-Alarmcloud-Event"
DELIVERY_HEADER = "X-Alarmcloud-Delivery"
TEST_EVENT = "webhook.test"
#: event types a webhook can subscribe to; ``detections.ready`` honours cooldown and "only real alarms"
WEBHOOK_EVENTS = (DETECTIONS_READY, CLIP_STORED, PLATE_RECOGNISED, CAMERA_CHANGED, CAMERA_DELETED,
                  CAMERA_FAIR_USE_CHANGED, CAMERA_VIEW_OBSTRUCTED, CAMERA_VIEW_RESTORED, CAMERA_SILENT,
                  STORAGE_ALMOST_FULL, OFFSITE_FAILING)
DEFAULT_EVENTS = (DETECTIONS_READY,)
#: rows per target in one delivery round, so one slow receiver cannot hold up everyone else's alarms
PER_TARGET = 2
SCAN = 2000  # due rows looked at per round to find other targets' work behind one receiver's backlog
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def normalize_plate(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def one_character_off(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by at most one wrong, missing or extra character (Levenshtein <= 1)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def _one_left_out(text: str) -> set[str]:
    return {text[:i] + text[i + 1:] for i in range(len(text))}


#: a read one character off matches a known plate of at least this many characters (shorter ones only exactly:
#: one character of four is too much of the plate to guess)
CLOSE_MATCH_MIN_LENGTH = 5


class PlateBook:
    """An account's known plates, looked up by a read. The same text matches (spaces, dashes and case aside);
    otherwise a read one character off (one wrong, missing or extra character, as a reader gets a letter wrong
    in bad light) matches a known plate of 5 or more characters whose ``close_reads`` is on, if it is the only
    known plate that close. A read close to two known plates matches neither."""

    def __init__(self, rows: list[KnownPlate]) -> None:
        self._by_text = {r.text: r for r in rows}
        # every known plate under its text and each text with one character left out: a read one character off
        # shares one of these keys with it (a lookup costs a few dict probes, not a pass over 500 plates)
        self._near: dict[str, list[KnownPlate]] = {}
        for r in rows:
            if r.close_reads and len(r.text) >= CLOSE_MATCH_MIN_LENGTH:
                for key in {r.text, *_one_left_out(r.text)}:
                    self._near.setdefault(key, []).append(r)

    def match(self, text: str) -> tuple[KnownPlate | None, bool]:
        """The known plate a read belongs to, and whether the read is exact."""
        key = normalize_plate(text)
        row = self._by_text.get(key)
        if row is not None or not key:
            return row, row is not None
        close = {id(r): r for k in (key, *_one_left_out(key)) for r in self._near.get(k, ())
                 if one_character_off(r.text, key)}
        return (next(iter(close.values())) if len(close) == 1 else None), False

    def name(self, text: str) -> str | None:
        row, _ = self.match(text)
        return row.name if row is not None else None

    def describe(self, text: str) -> dict[str, Any]:
        """What an event or a finding says about a read: ``known``, ``name``, ``notify``, and for a known plate
        ``known_plate_id``, ``known_text`` and ``match`` (``exact`` or ``close``: one character off)."""
        row, exact = self.match(text)
        if row is None:
            return {"known": False, "name": None, "notify": True}
        return {"known": True, "name": row.name, "notify": row.notify, "known_plate_id": row.id,
                "known_text": row.text, "match": "exact" if exact else "close"}


def known_plates_of(s: Session, account_id: str) -> list[KnownPlate]:
    """The account's known plates, sorted by name (then text), as the API and the Plates page list them."""
    rows = s.exec(select(KnownPlate).where(KnownPlate.account_id == account_id)).all()
    return sorted(rows, key=lambda r: (r.name.casefold(), r.text))


def plate_book(s: Session, account_id: str) -> PlateBook:
    return PlateBook(known_plates_of(s, account_id))


# ---------------------------------------------------------------- webhook secrets and targets


def new_secret() -> str:
    return "whsec_" + crypto.new_token(24)


def seal_secret(app: AlarmCloud, hook_id: str, secret: str) -> str:
    """Encrypt a webhook's signing secret for the database (bound to the webhook's id)."""
    return app.secret_box.encrypt(secret, f"webhook:{hook_id}") or ""


def open_secret(app: AlarmCloud, hook: Webhook) -> str:
    if hook.secret.count("$") == 2:
        return app.secret_box.decrypt(hook.secret, f"webhook:{hook.id}") or ""
    return hook.secret  # stored before secrets were encrypted


def subscribed(hook: Webhook) -> list[str]:
    return list(hook.events) if hook.events else list(DEFAULT_EVENTS)


class TargetNotAllowed(ValueError):
    """A webhook URL that is malformed or points where the operator does not allow (SSRF guard)."""


def parse_webhook_url(url: str, what: str = "webhook") -> httpx.URL:
    """Syntax checks: http(s), a host, no user info (``what`` names the URL in messages)."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise TargetNotAllowed(f"the {what} URL is not a valid URL") from None
    if u.scheme not in ("http", "https"):
        raise TargetNotAllowed(f"{what} URLs must start with http:// or https://")
    if not u.raw_host:
        raise TargetNotAllowed(f"the {what} URL has no host")
    if u.port is not None and not 0 < u.port < 65536:
        raise TargetNotAllowed(f"the {what} URL's port must be between 1 and 65535")
    if u.userinfo:
        raise TargetNotAllowed(f"user names or passwords in {what} URLs are not supported; "
                               + ("receivers check the signature instead" if what == "webhook"
                                  else "set the access token instead"))
    return u


def url_origin(url: str | None) -> tuple[str, str, int | None] | None:
    """Scheme, lower-case host and port of a URL (None for none): a saved credential (a push token, a bucket key)
    goes to the server it was given for only, so a change of origin drops it."""
    if not url:
        return None
    u = httpx.URL(url)
    return u.scheme, u.host.lower(), u.port


def address_allowed(ip: str, networks: list[str]) -> bool:
    """Public unicast addresses, plus the non-public networks the operator listed."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if any(addr in ipaddress.ip_network(n, strict=False) for n in networks):
        return True
    return addr.is_global and not addr.is_multicast


def resolve_target(u: httpx.URL, networks: list[str], what: str = "webhook") -> str:
    """Resolve the URL's host once; every address must be allowed. The request then goes to this IP."""
    host = u.raw_host.decode("ascii")
    try:
        infos = socket.getaddrinfo(host, u.port or (443 if u.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise TargetNotAllowed(f"cannot resolve the {what} host {host!r}") from None
    ips = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not ips:
        raise TargetNotAllowed(f"cannot resolve the {what} host {host!r}")
    for ip in ips:
        if not address_allowed(ip, networks):
            raise TargetNotAllowed(f"the {what} host {host!r} is not a public address (loopback, private and "
                                   "link-local networks are refused unless the operator allows them)")
    return ips[0]


def check_webhook_url(app: AlarmCloud, url: str, what: str = "webhook") -> httpx.URL:
    """A URL the server will call (a webhook, an ntfy push topic): http(s), no user info, only allowed addresses."""
    u = parse_webhook_url(url, what)
    resolve_target(u, app.settings.notify.webhook_networks, what)
    return u


@contextmanager
def _pinned(app: AlarmCloud, url: str, what: str, method: str, body: bytes,
            headers: dict[str, str]) -> Iterator[httpx.Response]:
    """``method`` to the checked address of ``url`` (pinned: DNS cannot change it afterwards); the response."""
    u = parse_webhook_url(url, what)
    ip = resolve_target(u, app.settings.notify.webhook_networks, what)
    target, host_header, ext = pinned_request(u, ip)
    with direct_client(app.settings.notify.timeout_seconds) as client, client.stream(
            method, target, content=body, headers={**host_header, **headers}, extensions=ext) as r:
        yield r


def direct_client(timeout: float | httpx.Timeout, **kwargs: Any) -> httpx.Client:
    """A client without proxies from the environment and without redirects: for requests to checked addresses
    (``pinned_request``) both would bypass the check."""
    return httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout, **kwargs)


def pinned_request(u: httpx.URL, ip: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """``u`` sent to its checked address ``ip``: the URL with the address, its ``Host`` header, and the request
    extensions (https: the TLS name and the certificate check use the host name, not the address)."""
    host = u.raw_host.decode("ascii")
    ext = {"sni_hostname": host} if u.scheme == "https" and not _is_ip(host) else {}
    return u.copy_with(host=ip), {"Host": u.netloc.decode("ascii")}, ext


def seal_account_secret(app: AlarmCloud, channel: str, account_id: str, secret: str) -> str | None:
    """Encrypt a person's credential for a channel (``push``: the ntfy access token, ``telegram``: the bot token) for
    the database, bound to the channel and their account id."""
    return app.secret_box.encrypt(secret, f"{channel}:{account_id}")


def open_account_secret(app: AlarmCloud, account: Account, channel: str) -> str:
    """A person's credential for a channel in clear ("" when none is saved)."""
    return app.secret_box.decrypt(getattr(account, ACCOUNT_SECRETS[channel]), f"{channel}:{account.id}") or ""


def sign(secret: str, body: bytes, ts: str) -> str:
    return "t=" + ts + ",v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def post_signed(app: AlarmCloud, url: str, secret: str, body: bytes, event_type: str, delivery_id: str) -> int:
    """POST ``body`` to the checked address (pinned: DNS cannot change it afterwards); the HTTP status."""
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "alarmcloud-webhook/1",
               SIGNATURE_HEADER: sign(secret, body, ts), EVENT_HEADER: event_type, DELIVERY_HEADER: delivery_id}
    with _pinned(app, url, "webhook", "POST", body, headers) as r:
        return r.status_code  # the receiver's body is never read


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- queueing (inside the caller's transaction)


def _cooldown_ok(s: Session, account: Account, camera_id: str, channel: str) -> bool:
    """Per camera and channel (e-mail, each webhook): at most one alarm notification per cooldown."""
    return _quiet_ok(s, account, f"notified:{camera_id}:{channel}", account.notify_cooldown_seconds)


def _quiet_ok(s: Session, account: Account, key: str, seconds: float) -> bool:
    """Whether the account's last notification of kind ``key`` is at least ``seconds`` ago; if so, now is noted as
    the last one (in the caller's transaction; two workers at the same moment: only one gets True)."""
    if seconds <= 0:
        return True
    row = s.exec(select(PluginState).where(PluginState.plugin == "core", PluginState.account_id == account.id,
                                           PluginState.key == key).with_for_update()).first()
    now = utcnow()
    if row is not None and row.value and now.timestamp() - float(row.value) < seconds:
        return False
    if row is not None:
        row.value, row.updated_at = now.timestamp(), now
        s.add(row)
        return True
    s.flush()
    try:
        with s.begin_nested():
            s.add(PluginState(plugin="core", account_id=account.id, key=key, value=now.timestamp(), updated_at=now))
    except IntegrityError:
        return False  # another worker notified for this camera at the same moment
    return True


def _header_safe(text: str, limit: int = 100) -> str:
    """No line breaks or control characters in e-mail headers (names are chosen by customers)."""
    return _CONTROL.sub(" ", text).strip()[:limit]


def alarm_email(app: AlarmCloud, clip: Clip, cam: Camera | None) -> dict[str, Any]:
    """Subject and text of the e-mail for one analysed clip."""
    base = app.settings.public_url.rstrip("/")
    name = _header_safe(cam.name if cam else "") or "camera"
    when = f"{clip.started_at:%Y-%m-%d %H:%M:%S} UTC"
    verdict = clip.verdict or "unknown"
    if verdict.startswith("alarm"):
        subject, headline = f"Alarm: {name}", f"Camera {name} recorded an alarm at {when}."
    else:
        why = verdict.split(":", 1)[1].replace("_", " ") if ":" in verdict else verdict
        subject, headline = f"False alarm ({why}): {name}", f"Camera {name} recorded a false alarm ({why}) at {when}."
    lines = [headline, f"Verdict: {verdict}"]
    if clip.labels:
        lines.append("Detected: " + ", ".join(clip.labels))
    lines += [f"Open the clip: {base}/events/{clip.id}", f"Picture: {base}/api/v1/events/{clip.id}/thumbnail", "",
              f"Change your notifications: {base}/notifications"]
    return {"subject": subject, "text": "\n".join(lines) + "\n", "event_id": clip.id}


def alarm_push(app: AlarmCloud, clip: Clip, cam: Camera | None, findings: list[dict[str, Any]] | None = None,
               names: PlateBook | None = None) -> dict[str, Any]:
    """Title, text and link of the push for one analysed clip: camera name, verdict, time, plate (nothing more);
    ``names`` (the owner's known plates) adds the name to a known plate."""
    name = _header_safe(cam.name if cam else "") or "camera"
    when = f"{clip.started_at:%Y-%m-%d %H:%M:%S} UTC"
    verdict = clip.verdict or "unknown"
    if verdict.startswith("alarm"):
        title, lines, tags, priority = f"Alarm: {name}", [f"{name} recorded an alarm at {when}."], \
            ["rotating_light"], "high"
    else:
        why = verdict.split(":", 1)[1].replace("_", " ") if ":" in verdict else verdict
        title, lines, tags, priority = f"False alarm ({why}): {name}", \
            [f"{name} recorded a false alarm ({why}) at {when}."], ["information_source"], "low"
    plates = sorted({str(f["text"]) for f in findings or [] if f.get("label") == "plate" and f.get("text")})
    if plates:
        known = [names.name(p) if names else None for p in plates[:3]]
        lines.append("Plate: " + ", ".join(f"{p} ({_header_safe(n, 100)})" if n else p
                                           for p, n in zip(plates[:3], known, strict=True)))
    return {"title": title, "message": "\n".join(lines), "tags": tags, "priority": priority,
            "click": f"{app.settings.public_url.rstrip('/')}/events/{clip.id}", "event_id": clip.id}


def queue_notifications(app: AlarmCloud, s: Session, clip: Clip, cam: Camera | None,
                        payload: dict[str, Any]) -> None:
    """After the verdict: one outbox row per webhook (and e-mail), honouring cooldown and 'only real alarms'."""
    acc = s.get(Account, clip.account_id)
    if acc is None:
        return
    analyses = s.exec(select(func.count()).select_from(Job).where(Job.clip_id == clip.id, Job.state == "done")).one()
    if analyses > 1:
        return  # a re-analysis (alarmcloud reprocess): the owner heard about this clip when it arrived
    real = (clip.verdict or "").startswith("alarm")
    findings = list(payload.get("findings") or [])
    base = app.settings.public_url.rstrip("/")
    body = {"type": DETECTIONS_READY, "occurred_at": iso(utcnow()), "event_id": clip.id,
            "camera_id": clip.camera_id, **payload,
            "thumbnail_url": f"{base}/api/v1/events/{clip.id}/thumbnail", "event_url": f"{base}/events/{clip.id}"}
    hooks = s.exec(select(Webhook).where(Webhook.account_id == acc.id).order_by(col(Webhook.created_at))).all()
    # the owner's pushes name known plates ("Plate: MAB1234 (Family car)"); the list is the owner's, so a
    # sub-user's pushes show the plate only, as the API does not show them the list either
    names = plate_book(s, acc.id) if any(f.get("label") == "plate" for f in findings) else None
    for h in hooks:
        if (DETECTIONS_READY in subscribed(h) and (real or not h.only_real_alarms)
                and _cooldown_ok(s, acc, clip.camera_id, f"webhook:{h.id}")):
            s.add(Outbox(account_id=acc.id, kind="webhook", target=h.id, payload=body))
    for person in _people(s, acc, clip.camera_id):  # each by their own e-mail and push settings
        if snoozed(person, clip.camera_id):
            continue  # the person silenced this camera, or every camera, for a while (``snooze``)
        if (person.notify_email and (real or not person.notify_only_real)
                and _cooldown_ok(s, person, clip.camera_id, "email")):
            payload = alarm_email(app, clip, cam)
            if person.notify_email_picture and clip.thumb_key:
                payload["picture"] = True  # read at sending time: a clip deleted meanwhile sends no picture
            s.add(Outbox(account_id=person.id, kind="email", target=person.email, payload=payload))
        for channel, picture in _personal_channels(person):  # ntfy push, Telegram: the same message
            if (real or not person.notify_only_real) and _cooldown_ok(s, person, clip.camera_id, channel):
                push = alarm_push(app, clip, cam, findings, names if person.id == acc.id else None)
                if picture and clip.thumb_key:
                    push["picture"] = True  # read at sending time, like the e-mail's
                s.add(Outbox(account_id=person.id, kind=channel, target=person.id, payload=push))


def _personal_channels(person: Account) -> list[tuple[str, bool]]:
    """The person's message channels besides e-mail that are switched on and set up: (outbox kind, with picture)."""
    channels = []
    if person.notify_push and person.notify_push_url:
        channels.append(("push", person.notify_push_picture))
    if person.notify_telegram and person.notify_telegram_chat_id and person.notify_telegram_token_enc:
        channels.append(("telegram", person.notify_telegram_picture))
    return channels


def _people(s: Session, acc: Account, camera_id: str) -> list[Account]:
    """Who hears about a camera: the account's owner and every sub-user with a right on that camera."""
    subusers = s.exec(select(Account).join(CameraRight, col(CameraRight.account_id) == col(Account.id))
                      .where(CameraRight.camera_id == camera_id, Account.owner_id == acc.id)
                      .order_by(col(Account.email))).all()
    return [acc, *subusers]


def queue_admin_notice(app: AlarmCloud, s: Session, cam: Camera) -> None:
    """Tell the account's administrator before the camera's priority is lowered (fair use)."""
    acc = s.get(Account, cam.account_id)
    if acc is None:
        return
    s.add(Outbox(account_id=acc.id, kind="email", target=acc.email, payload={
        "subject": f"Fair use notice for camera {_header_safe(cam.name)}",
        "text": f"{cam.fair_use_reason}.\nCheck the camera's detection areas and sensitivity.\n"}))


def queue_share_notice(app: AlarmCloud, s: Session, account_id: str, case_id: str, case_name: str) -> None:
    """Tell the owner by e-mail that a case's link was used for the first time (necessary account information,
    like the fair-use notice: a link that got into the wrong hands shows here, and the case page stops it)."""
    acc = s.get(Account, account_id)
    if acc is None:
        return
    url = f"{app.settings.public_url.rstrip('/')}/cases/{case_id}"
    s.add(Outbox(account_id=acc.id, kind="email", target=acc.email, payload={
        "subject": f"Your case {_header_safe(case_name, 150)} was downloaded through its link",
        "text": f"The clips of your case \"{case_name}\" were downloaded through the link you made for it, for the "
                "first time. Further downloads through this link are counted on the case's page, without another "
                f"e-mail.\n\nIf you did not give the link to anyone, stop sharing on the case's page: {url}\n"}))


#: at most one view-check e-mail per camera in this time, however often its view comes and goes
VIEW_NOTICE_QUIET_SECONDS = 24 * 3600


def queue_view_notice(app: AlarmCloud, s: Session, cam: Camera, subject: str, text: str,
                      what: str = "view") -> bool:
    """Tell that the camera's view looks obstructed (``viewcheck``), or, ``what="silent"``, that it sent no clip for
    a while (``silence``): addressed like alarm notifications, to the owner and every sub-user with a right on this
    camera, by e-mail, push and Telegram as each of them chose, each person at most once per quiet period and kind
    (one notice, on every channel they use)."""
    acc = s.get(Account, cam.account_id)
    if acc is None:
        return False
    queued = False
    for person in _people(s, acc, cam.id):
        if not (person.notify_email or _personal_channels(person)) or not _quiet_ok(
                s, person, f"{what}_notified:{cam.id}", VIEW_NOTICE_QUIET_SECONDS):
            continue
        queued = queue_personal_message(app, s, person, subject, text, "/cameras", ["warning"]) or queued
    return queued


def queue_personal_message(app: AlarmCloud, s: Session, person: Account, subject: str, text: str, click: str,
                           tags: list[str] | None = None) -> bool:
    """One message to a person on every channel they chose (e-mail, push, Telegram): the whole ``text`` by e-mail,
    its first paragraph elsewhere, opening ``click`` (a path of the web UI); False when they chose none."""
    channels = [channel for channel, _ in _personal_channels(person)]
    if person.notify_email:
        s.add(Outbox(account_id=person.id, kind="email", target=person.email,
                     payload={"subject": _header_safe(subject, 200), "text": text}))
    base = app.settings.public_url.rstrip("/")
    for channel in channels:
        s.add(Outbox(account_id=person.id, kind=channel, target=person.id,
                     payload={"title": _header_safe(subject, 200), "message": text.split("\n\n")[0],
                              "tags": tags or [], "priority": "default", "click": f"{base}{click}"}))
    return bool(person.notify_email or channels)


async def queue_event(app: AlarmCloud, event: Event) -> None:
    """Other events (clip stored, camera changed, …) to the webhooks that subscribed to them."""
    if event.type == DETECTIONS_READY or event.type not in WEBHOOK_EVENTS or not event.account_id:
        return  # detections.ready is queued with the verdict, in the pipeline's transaction
    if event.type == PLATE_RECOGNISED and event.payload.get("notify") is False:
        return  # a known plate the owner asked not to be told about (their own car)

    def _queue(s: Session) -> None:
        body = {"type": event.type, "occurred_at": iso(event.occurred_at), "camera_id": event.camera_id,
                **event.payload}
        rows = [Outbox(account_id=event.account_id, kind="webhook", target=h.id, payload=body)
                for h in s.exec(select(Webhook).where(Webhook.account_id == event.account_id)).all()
                if event.type in subscribed(h)]
        if rows:
            s.add_all(rows)
            s.commit()

    try:
        await app.db.run(_queue)
    except Exception:
        log.exception("could not queue webhooks for %s", event.type)


# ---------------------------------------------------------------- delivery


class RetryAfter(Exception):
    """A failed attempt whose receiver said when to try again (seconds), instead of the usual backoff."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


#: a receiver's "retry after" is honoured up to this many seconds
RETRY_AFTER_MAX = 3600.0


def _lease(app: AlarmCloud) -> timedelta:
    return timedelta(seconds=app.settings.notify.timeout_seconds * 3 + 30)


def claim(app: AlarmCloud, limit: int, copies: bool = False) -> list[Outbox]:
    """Take due rows for this process: a conditional update moves each one's due time past the lease, so
    concurrent senders (several API nodes) never send a row twice and a crashed sender's rows come back.
    ``copies``: off-site copies only (``offsite``), else everything but them."""
    with app.db.session() as s:
        now = utcnow()
        kind = col(Outbox.kind) == offsite.KIND if copies else col(Outbox.kind) != offsite.KIND
        # ids and targets only, over a wide window: a backlog for one receiver must not starve the others
        due = s.exec(select(Outbox.id, Outbox.target, Outbox.kind).where(Outbox.state == "queued",
                                                                          Outbox.available_at <= now, kind)
                     .order_by(col(Outbox.id)).limit(SCAN)).all()
        picked: list[int] = []
        per_target: dict[str, int] = {}
        for row_id, target, kind in due:
            if per_target.get(target, 0) >= PER_TARGET:
                continue
            lease = offsite.lease(app) if kind == offsite.KIND else _lease(app)  # an upload takes longer
            res = s.exec(update(Outbox).where(col(Outbox.id) == row_id, col(Outbox.state) == "queued",  # type: ignore[call-overload]
                                              col(Outbox.available_at) <= now)
                         .values(available_at=now + lease))
            if res.rowcount == 1:
                picked.append(row_id)
                per_target[target] = per_target.get(target, 0) + 1
                if len(picked) >= limit:
                    break
        rows = list(s.exec(select(Outbox).where(col(Outbox.id).in_(picked)).order_by(col(Outbox.id))).all())
        s.commit()
    return rows


def _attempt(app: AlarmCloud, row: Outbox) -> tuple[str, str | None]:
    """One delivery attempt outside any transaction: (outcome, error) with outcome sent | failed | dead | skipped."""
    if row.kind == "push":
        return _attempt_push(app, row)
    if row.kind == "telegram":
        return _attempt_telegram(app, row)
    if row.kind == offsite.KIND:
        return offsite.attempt(app, row)
    if row.kind == "webhook":
        with app.db.session() as s:
            hook = s.get(Webhook, row.target)
        if hook is None:
            return "dead", "the webhook was deleted"
        body = json.dumps(row.payload, separators=(",", ":")).encode()
        status = post_signed(app, hook.url, open_secret(app, hook), body, str(row.payload.get("type", "")),
                             str(row.id))
        if 200 <= status < 300:
            return "sent", None
        return "failed", f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    picture = _email_picture(app, row.payload) if row.payload.get("picture") else None
    if not send_email(app, row.target, row.payload["subject"], row.payload["text"], picture):
        return "skipped", "no SMTP host is configured"
    return "sent", None


#: the kinds of outbox rows (the metrics' labels)
KINDS = ("webhook", "email", "push", "telegram", offsite.KIND)
#: every attempt of an outbox row: ``kind`` webhook | email | push | telegram | offsite, ``outcome`` sent | failed
#: (tried again later) | dead (given up) | skipped
DELIVERIES = Counter("alarmcloud_deliveries_total", "Delivery attempts (notifications, off-site copies) by outcome",
                     ["kind", "outcome"])
DELIVERY_SECONDS = Histogram("alarmcloud_delivery_seconds", "Seconds per delivery attempt", ["kind"],
                             buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))


def deliver_row(app: AlarmCloud, row: Outbox) -> Outbox | None:
    """Attempt one claimed row and record the outcome (retry with backoff, dead after max_attempts)."""
    delay: float | None = None
    started = time.monotonic()
    try:
        outcome, error = _attempt(app, row)
    except RetryAfter as exc:  # the receiver said when to come back (Telegram's 429 ``retry_after``)
        outcome, error, delay = "failed", str(exc), min(exc.seconds, RETRY_AFTER_MAX)
    except TargetNotAllowed as exc:
        outcome, error = "failed", str(exc)
    except Exception as exc:  # the receiver's or the mail server's failure, kept for the owner to see
        outcome, error = "failed", f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    cfg = app.settings.notify
    with app.db.session() as s:
        fresh = s.get(Outbox, row.id)
        if fresh is None:
            return None  # removed meanwhile (webhook deleted)
        now = utcnow()
        fresh.attempts = row.attempts + 1  # this attempt (an off-site copy may have recorded it already)
        fresh.last_attempt_at = now
        if error is not None:
            fresh.last_error = error[:300]
        if outcome == "failed":
            copy = row.kind == offsite.KIND  # a bucket may be away for hours: more attempts, capped backoff
            if fresh.attempts >= (app.settings.offsite.max_attempts if copy else cfg.max_attempts):
                fresh.state = "dead"
            else:
                fresh.state = "queued"
                backoff = offsite.backoff(app, fresh.attempts) if copy else \
                    cfg.retry_base_seconds * 2 ** (fresh.attempts - 1)
                fresh.available_at = now + timedelta(seconds=backoff if delay is None else delay)
            log.info("delivery %s (%s) failed on attempt %d: %s", row.id, row.kind, fresh.attempts, error)
        else:
            fresh.state = outcome
        s.add(fresh)
        s.commit()
    kind = row.kind if row.kind in KINDS else "other"  # bounded labels
    DELIVERY_SECONDS.labels(kind).observe(time.monotonic() - started)
    DELIVERIES.labels(kind, "failed" if fresh.state == "queued" else fresh.state).inc()
    return fresh


def prune(app: AlarmCloud) -> int:
    """Delete finished deliveries older than ``notify.keep_days`` (they hold e-mail addresses and event data)."""
    before = utcnow() - timedelta(days=app.settings.notify.keep_days)
    with app.db.session() as s:
        old = or_(col(Outbox.created_at).is_(None), col(Outbox.created_at) < before)
        res = s.exec(delete(Outbox).where(col(Outbox.state).in_(("sent", "dead", "skipped")),  # type: ignore[call-overload]
                                          col(Outbox.available_at) < before, old))
        s.commit()
    return int(res.rowcount or 0)


_pruned_at = 0.0


def deliver_once(app: AlarmCloud, limit: int = 20, copies: bool = False) -> int:
    """Send due outbox rows in parallel, outside any database transaction; the number delivered. Off-site copies
    (``copies``) run in a loop of their own, so a long upload never holds up a notification."""
    global _pruned_at
    if time.monotonic() - _pruned_at > 3600:
        _pruned_at = time.monotonic()
        prune(app)
    rows = claim(app, limit, copies)
    if not rows:
        return 0
    by_target: dict[str, list[Outbox]] = {}
    for row in rows:  # one target's rows in order, different targets in parallel
        by_target.setdefault(row.target, []).append(row)
    with ThreadPoolExecutor(max_workers=min(8, len(by_target)), thread_name_prefix="alarmcloud-outbox") as pool:
        done = [r for group in pool.map(lambda g: [deliver_row(app, r) for r in g], by_target.values()) for r in group]
    return sum(1 for r in done if r is not None and r.state == "sent")


def send_test(app: AlarmCloud, hook: Webhook) -> Outbox | None:
    """Queue a ``webhook.test`` delivery and attempt it at once; it retries like any other when it fails."""
    now = utcnow()
    row = Outbox(account_id=hook.account_id, kind="webhook", target=hook.id, available_at=now + _lease(app),
                 payload={"type": TEST_EVENT, "occurred_at": iso(now), "webhook_id": hook.id,
                          "message": "Test delivery from alarmcloud: your receiver works."})
    with app.db.session() as s:
        s.add(row)
        s.commit()
    return deliver_row(app, row)


#: a thumbnail larger than this is not attached (they are ~20-80 KB)
EMAIL_PICTURE_MAX = 2 * 1024 * 1024


def _email_picture(app: AlarmCloud, payload: dict[str, Any]) -> bytes | None:
    """The thumbnail of the e-mail's clip as it is stored now (None when the clip or its picture is gone)."""
    with app.db.session() as s:
        clip = s.get(Clip, str(payload.get("event_id", "")))
        key = clip.thumb_key if clip is not None else None
    if not key:
        return None
    try:
        with app.blobs.open(key) as f:
            return f.read(EMAIL_PICTURE_MAX + 1) or None  # one byte more: send_email refuses it as too large
    except (FileNotFoundError, OSError):
        return None


def send_email(app: AlarmCloud, to: str, subject: str, text: str, picture: bytes | None = None) -> bool:
    """Send one e-mail; False when no SMTP host is configured (then it is only logged).

    With ``picture`` (JPEG) the mail also has an HTML part showing it inline; the text part stays as it is.
    """
    cfg = app.settings.smtp
    if not cfg.host:
        log.info("e-mail not sent (no SMTP host configured): %s", subject)
        return False
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg.sender, to, _header_safe(subject, 200)
    msg.set_content(text)
    if picture is not None and len(picture) <= EMAIL_PICTURE_MAX:
        cid = make_msgid(domain="alarmcloud.invalid")
        body = "".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines() if line)
        msg.add_alternative(f'<!doctype html><html><body>{body}<p><img src="cid:{cid[1:-1]}" '
                            'alt="Picture of the alarm clip" style="max-width:100%"></p></body></html>', subtype="html")
        msg.get_payload()[1].add_related(picture, "image", "jpeg", cid=cid, filename="alarm.jpg")  # type: ignore[index]
    with smtplib.SMTP(cfg.host, cfg.port, timeout=app.settings.notify.timeout_seconds) as smtp:
        if cfg.starttls:
            smtp.starttls()
        if cfg.username and cfg.password:
            smtp.login(cfg.username, cfg.password.get_secret_value())
        smtp.send_message(msg)
    return True


# ---------------------------------------------------------------- push (ntfy)

PUSH_TEST_MESSAGE = "Test push from alarmcloud: your phone gets alarm notifications."
_ERROR_TEXT = re.compile(r"[^\x20-\x7e]+")


def _ntfy_header(text: str) -> str:
    """One header line; non-ASCII text (camera names) as an RFC 2047 encoded word, which ntfy decodes."""
    text = _CONTROL.sub(" ", text).strip()[:1000]
    if text.isascii():
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode("ascii") + "?="


def publish_push(app: AlarmCloud, url: str, token: str, payload: dict[str, Any],
                 picture: bytes | None) -> tuple[int, str]:
    """Publish one message to an ntfy topic (pinned address, as webhooks): the HTTP status and the server's error.

    With ``picture`` (JPEG) it is ``PUT`` as the body (an ntfy attachment) and the text goes in ``Message``;
    without, the text is the ``POST`` body.
    """
    headers = {"User-Agent": "alarmcloud-push/1",
               "Title": _ntfy_header(str(payload.get("title", "alarmcloud"))),
               "Tags": ",".join(str(t) for t in payload.get("tags") or []),
               "Priority": str(payload.get("priority", "default"))}
    if payload.get("click"):
        headers["Click"] = str(payload["click"])
    if token:
        headers["Authorization"] = f"Bearer {token}"
    message = str(payload.get("message", ""))
    if picture is not None:
        method, body = "PUT", picture
        headers.update({"Content-Type": "image/jpeg", "Filename": "alarm.jpg",
                        "Message": _ntfy_header(message.replace("\n", " "))})
    else:
        method, body = "POST", message.encode()
        headers["Content-Type"] = "text/plain; charset=utf-8"
    with _pinned(app, url, "push topic", method, body, headers) as r:
        if 200 <= r.status_code < 300:
            return r.status_code, ""
        raw = b""
        for chunk in r.iter_bytes():  # a short error answer only (ntfy: {"code", "http", "error"})
            raw += chunk
            if len(raw) >= 2048:
                break
    try:
        error = str(json.loads(raw[:2048]).get("error") or "")
    except (ValueError, AttributeError):
        error = raw[:200].decode("utf-8", "replace")
    return r.status_code, _ERROR_TEXT.sub(" ", error).strip()[:200]


def _attempt_push(app: AlarmCloud, row: Outbox) -> tuple[str, str | None]:
    """Read the person's push settings now (changed or switched off meanwhile) and publish."""
    with app.db.session() as s:
        person = s.get(Account, row.target)
    if person is None:
        return "dead", "the account was deleted"
    if not person.notify_push_url:
        return "skipped", "no push topic is set"
    if not person.notify_push and not row.payload.get("test"):
        return "skipped", "push notifications were switched off"
    picture = _email_picture(app, row.payload) if row.payload.get("picture") else None
    token = open_account_secret(app, person, "push")
    status, error = publish_push(app, person.notify_push_url, token, row.payload, picture)
    if 200 <= status < 300:
        return "sent", None
    text = f"HTTP {status}" + (f": {error}" if error else "")
    if status in (408, 429) or status >= 500:
        return "failed", text  # the server's trouble: retried with backoff
    if 300 <= status < 400:
        return "dead", text + " (redirects are not followed; use the topic's final URL)"
    return "dead", text  # refused (wrong token, no access to the topic, too large): retrying cannot help


def send_test_push(app: AlarmCloud, account_id: str) -> Outbox | None:
    """Queue a test push to the person's topic and attempt it at once; it retries like any other when it fails."""
    now = utcnow()
    base = app.settings.public_url.rstrip("/")
    row = Outbox(account_id=account_id, kind="push", target=account_id, available_at=now + _lease(app),
                 payload={"test": True, "title": "alarmcloud test", "message": PUSH_TEST_MESSAGE,
                          "tags": ["white_check_mark"], "priority": "default", "click": f"{base}/notifications"})
    with app.db.session() as s:
        s.add(row)
        s.commit()
    return deliver_row(app, row)


# ---------------------------------------------------------------- Telegram (the person's own bot)

TELEGRAM_TEST_MESSAGE = "Test message from alarmcloud: this chat gets alarm notifications."
#: a bot token as @BotFather gives it: the bot's number, a colon, the secret part
TELEGRAM_TOKEN = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{30,100}")
#: a chat: its number (negative for groups and channels) or a public channel's @username
TELEGRAM_CHAT = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
TELEGRAM_TEXT_MAX, TELEGRAM_CAPTION_MAX = 4096, 1024
#: the answer of a Bot API method is read up to this size (getUpdates lists at most 100 updates)
TELEGRAM_ANSWER_MAX = 1024 * 1024


class TelegramError(Exception):
    """A Bot API call that failed: ``status`` is the HTTP status (0: no answer), the text never holds the token."""

    def __init__(self, status: int, description: str, retry_after: float | None = None) -> None:
        self.status, self.description, self.retry_after = status, description, retry_after
        super().__init__(f"HTTP {status}: {description}" if status else description)


def telegram_call(app: AlarmCloud, token: str, method: str, data: dict[str, Any] | None = None,
                  files: dict[str, tuple[str, bytes, str]] | None = None) -> Any:
    """Call a Bot API method (JSON, or a multipart form with ``files``); its ``result`` or ``TelegramError``.

    The bot token is part of the URL path, so the URL is never put into an error; httpx's request log line carries
    it, and the log scrubber (``privacy_log``) replaces bot tokens in every record.
    """
    if not TELEGRAM_TOKEN.fullmatch(token):
        raise TelegramError(0, "the bot token is not valid")
    url = f"{app.settings.notify.telegram_api_url.rstrip('/')}/bot{token}/{method}"
    # the operator's Bot API address (not a customer's): no address check, but no proxies and no redirects either
    client = direct_client(app.settings.notify.timeout_seconds)
    try:
        with client:
            if files:
                form = {k: str(v) for k, v in (data or {}).items()}
                r = client.post(url, data=form, files=files)
            else:
                r = client.post(url, json=data or {})
            raw = r.content[:TELEGRAM_ANSWER_MAX]
    except httpx.HTTPError as exc:
        raise TelegramError(0, f"{type(exc).__name__}: {exc}".replace(token, "{token}").strip().rstrip(":")) from None
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TelegramError(r.status_code, "the answer is not from the Telegram Bot API")
    if answer.get("ok") is True and 200 <= r.status_code < 300:
        return answer.get("result")
    params = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
    retry = params.get("retry_after")
    text = _ERROR_TEXT.sub(" ", str(answer.get("description") or "")).replace(token, "{token}").strip()[:200]
    code = answer.get("error_code")
    status = code if isinstance(code, int) and code > 0 else r.status_code
    raise TelegramError(status, text or "refused",
                        float(retry) if isinstance(retry, int | float) and retry >= 0 else None)


def telegram_text(payload: dict[str, Any], limit: int = TELEGRAM_TEXT_MAX) -> str:
    """The message's text (plain, no markup): title, text and the clip's link, each on its own line."""
    lines = [str(payload.get("title") or "alarmcloud"), str(payload.get("message") or ""),
             str(payload.get("click") or "")]
    text = "\n".join(line for line in lines if line)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def send_telegram(app: AlarmCloud, token: str, chat_id: str, payload: dict[str, Any],
                  picture: bytes | None) -> None:
    """One message to the chat: ``sendPhoto`` (the JPEG with the text as caption) or ``sendMessage``."""
    if picture is not None and len(picture) <= EMAIL_PICTURE_MAX:
        try:
            telegram_call(app, token, "sendPhoto", {"chat_id": chat_id,
                                                    "caption": telegram_text(payload, TELEGRAM_CAPTION_MAX)},
                          files={"photo": ("alarm.jpg", picture, "image/jpeg")})
            return
        except TelegramError as exc:  # a picture Telegram will not take (its size, its format): the text still goes
            if exc.status != 400 or "chat not found" in exc.description.lower():
                raise
            log.info("Telegram refused the picture (%s): the message goes without it", exc.description)
    telegram_call(app, token, "sendMessage", {"chat_id": chat_id, "text": telegram_text(payload),
                                              "link_preview_options": {"is_disabled": True}})


def _attempt_telegram(app: AlarmCloud, row: Outbox) -> tuple[str, str | None]:
    """Read the person's Telegram settings now (changed or switched off meanwhile) and send."""
    with app.db.session() as s:
        person = s.get(Account, row.target)
    if person is None:
        return "dead", "the account was deleted"
    token = open_account_secret(app, person, "telegram")
    if not token or not person.notify_telegram_chat_id:
        return "skipped", "Telegram is not set up (bot token and chat id)"
    if not person.notify_telegram and not row.payload.get("test"):
        return "skipped", "Telegram notifications were switched off"
    picture = _email_picture(app, row.payload) if row.payload.get("picture") else None
    try:
        send_telegram(app, token, person.notify_telegram_chat_id, row.payload, picture)
    except TelegramError as exc:
        if exc.status == 429:
            if exc.retry_after is not None:
                raise RetryAfter(str(exc), exc.retry_after) from None
            return "failed", str(exc)
        if exc.status == 0 or exc.status == 408 or exc.status >= 500:
            return "failed", str(exc)  # no answer or Telegram's trouble: retried with backoff
        # 400 chat not found, 401 wrong token, 403 blocked by the user or not a member: retrying cannot help
        gone = exc.status in (401, 403) or "chat not found" in exc.description.lower()
        if row.payload.get("test") or not gone or not _telegram_off(app, person.id, token,
                                                                     person.notify_telegram_chat_id):
            return "dead", str(exc)
        return "dead", f"{exc} (Telegram messages were switched off; switch them on again once the bot may " \
                       "write to the chat)"
    return "sent", None


def _telegram_off(app: AlarmCloud, account_id: str, token: str, chat_id: str) -> bool:
    """Switch a person's Telegram messages off after Telegram refused their bot for good (blocked by the user, the
    chat gone, a revoked token): every later alarm would be refused the same way, and a bot that keeps writing to
    people who blocked it risks Telegram's limits. Only while the settings are those that were refused (not changed
    meanwhile); whether it was switched off now."""
    with app.db.session() as s:
        person = s.get(Account, account_id)
        if person is None or not person.notify_telegram or person.notify_telegram_chat_id != chat_id \
                or open_account_secret(app, person, "telegram") != token:
            return False
        person.notify_telegram = False
        s.add(person)
        s.commit()
    log.warning("Telegram refused account %s's bot for good: Telegram messages switched off", account_id)
    return True


def send_test_telegram(app: AlarmCloud, account_id: str) -> Outbox | None:
    """Queue a test message to the person's chat and attempt it at once; it retries like any other when it fails."""
    now = utcnow()
    base = app.settings.public_url.rstrip("/")
    row = Outbox(account_id=account_id, kind="telegram", target=account_id, available_at=now + _lease(app),
                 payload={"test": True, "title": "alarmcloud test", "message": TELEGRAM_TEST_MESSAGE,
                          "click": f"{base}/notifications"})
    with app.db.session() as s:
        s.add(row)
        s.commit()
    return deliver_row(app, row)


def telegram_chats(app: AlarmCloud, token: str) -> list[dict[str, Any]]:
    """The chats that wrote to the bot lately (``getUpdates`` once, nothing stored): ``{chat_id, type, title}``."""
    updates = telegram_call(app, token, "getUpdates", {"timeout": 0, "limit": 100})
    chats: dict[str, dict[str, Any]] = {}
    for item in updates if isinstance(updates, list) else []:
        if not isinstance(item, dict):
            continue
        for key in ("message", "edited_message", "channel_post", "edited_channel_post", "my_chat_member"):
            chat = item[key].get("chat") if isinstance(item.get(key), dict) else None
            if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
                continue
            name = chat.get("title") or " ".join(str(chat[k]) for k in ("first_name", "last_name") if chat.get(k)) \
                or (f"@{chat['username']}" if chat.get("username") else "")
            chats[str(chat["id"])] = {"chat_id": str(chat["id"]), "type": str(chat.get("type") or ""),
                                      "title": _CONTROL.sub(" ", str(name)).strip()[:100]}
    return list(chats.values())
