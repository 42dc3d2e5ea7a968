"""Off-site copies: each new clip that matches the owner's choice (alarms only, or every clip) is copied into the
owner's own S3-compatible bucket through the durable outbox, after the verdict, with a small JSON sidecar.

The bucket's endpoint is a URL the owner supplies and the server connects to, so it is checked like a webhook URL
(``notify.check_webhook_url``: public addresses only unless the operator lists a network, no user info) and must be
https unless the operator allows http. The S3 client (obstore) is given the owner's key only (never the server's own
credentials from its environment) and follows no redirects. Copies are the owner's: deleting a clip here does not
delete its copy. Privacy masks applied to a stored clip later replace its copy with the masked clip
(``queue_masked``); a copy never uploads the unmasked video once the masked one is swapped in (``attempt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import anyio
import httpx
from sqlalchemy import and_, bindparam, event, or_, tuple_, update
from sqlmodel import Session, col, func, select

from alarmcloud import crypto, egress
from alarmcloud.events import OFFSITE_FAILING, Event
from alarmcloud.models import Account, Camera, Clip, FindingRow, Job, Outbox, aware, iso, utcnow

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
KIND = "offsite"
#: what the owner may choose to copy
SCOPES = ("alarms", "all")
#: where the copies go: an S3-compatible bucket, an SFTP server (``offsite_sftp``) or a WebDAV server
#: (``offsite_webdav``)
S3, SFTP, WEBDAV = "s3", "sftp", "webdav"
KINDS = (S3, SFTP, WEBDAV)
#: clips larger than this are uploaded in parts of this size (S3 parts are at least 5 MiB, except the last)
PART_SIZE = 8 * 1024 * 1024
WHAT = "bucket endpoint"
BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")
REGION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ACCESS_KEY_RE = re.compile(r"[\x21-\x7e]{1,128}")
SECRET_RE = re.compile(r"[\x21-\x7e]{1,200}")
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")
_STATUS = re.compile(r"non-2xx status code: (\d{3}[^:\n]{0,60})")
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "InvalidToken",
           "ExpiredToken", "AccountProblem", "InvalidSecurity", "AuthorizationHeaderMalformed"}


class BucketError(Exception):
    """A bucket request that failed: ``code`` is no_such_bucket | access_denied | cannot_connect | timeout |
    bucket_error; the message says what the bucket answered (it never holds the secret key)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_endpoint(app: AlarmCloud, url: str) -> httpx.URL:
    """The owner's endpoint URL: https (http only where the operator allows it), no user info, no path or query,
    and every address of its host allowed (``notify.webhook_networks``). Raises ``notify.TargetNotAllowed``."""
    from alarmcloud import notify

    u = notify.parse_webhook_url(url, WHAT)
    if u.scheme != "https" and not app.settings.offsite.allow_http:
        raise notify.TargetNotAllowed("the bucket endpoint must start with https:// (this server does not send "
                                      "clips and signed requests over plain http)")
    if u.path not in ("", "/") or u.query or u.fragment:
        raise notify.TargetNotAllowed("the bucket endpoint is the server's address only, like "
                                      "https://s3.eu-central-1.amazonaws.com (no path: the bucket is a field of "
                                      "its own)")
    notify.resolve_target(u, app.settings.notify.webhook_networks, WHAT)
    return u


def check_prefix(prefix: str) -> str:
    """A key prefix (folder) in the bucket: ``a/b`` without empty, ``.`` or ``..`` parts; "" for none."""
    prefix = prefix.strip().strip("/")
    if not prefix:
        return ""
    if len(prefix) > 200 or "\\" in prefix or any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in prefix) \
            or any(p in ("", ".", "..") for p in prefix.split("/")):
        raise ValueError("the prefix is a folder in the bucket like alarmcloud/home: parts separated by '/', none "
                         "empty, '.' or '..', no control characters, at most 200 characters")
    return prefix


def destination(acc: Account) -> str:
    """A fingerprint of where the account's copies go now (endpoint, bucket, prefix; for an SFTP server its user,
    host, port and folder), kept on each copied clip."""
    folder = (acc.offsite_prefix or "").strip("/")
    if acc.offsite_kind == SFTP:
        where = "\n".join((SFTP, acc.offsite_sftp_user or "", acc.offsite_sftp_host or "",
                           str(acc.offsite_sftp_port or 22), folder))
    elif acc.offsite_kind == WEBDAV:
        where = "\n".join((WEBDAV, acc.offsite_webdav_url or "", folder))
    else:  # as before SFTP came: copies made then still count as made
        where = "\n".join((acc.offsite_endpoint or "", acc.offsite_bucket or "", folder))
    if acc.offsite_age_recipient:  # encrypted copies are other files (.age) than plain ones
        where += "\nage:" + acc.offsite_age_recipient
    return hashlib.sha256(where.encode()).hexdigest()[:32]


def configured(acc: Account) -> bool:
    """Endpoint, bucket, access key id and secret key are all saved (an SFTP server: ``offsite_sftp.configured``)."""
    if acc.offsite_kind == SFTP:
        from alarmcloud import offsite_sftp

        return offsite_sftp.configured(acc)
    if acc.offsite_kind == WEBDAV:
        from alarmcloud import offsite_webdav

        return offsite_webdav.configured(acc)
    return bool(acc.offsite_endpoint and acc.offsite_bucket and acc.offsite_access_key_id
                and acc.offsite_secret_key_enc)


def seal_secret(app: AlarmCloud, account_id: str, secret: str) -> str | None:
    from alarmcloud import notify

    return notify.seal_account_secret(app, KIND, account_id, secret)


def open_secret(app: AlarmCloud, acc: Account) -> str:
    from alarmcloud import notify

    return notify.open_account_secret(app, acc, KIND)


# ---------------------------------------------------------------- the bucket


def make_store(app: AlarmCloud, acc: Account, secret: str) -> Any:
    """An obstore ``S3Store`` for the owner's bucket (path-style requests to the checked endpoint)."""
    from obstore.store import S3Store

    endpoint = str(acc.offsite_endpoint or "").rstrip("/")
    key_id = str(acc.offsite_access_key_id or "")

    def credentials() -> dict[str, Any]:
        # a provider, not config values: the server's own AWS_* credentials (a session token, an instance role)
        # from its environment are never added to the owner's requests
        return {"access_key_id": key_id, "secret_access_key": secret, "token": None, "expires_at": None}

    timeout = timedelta(seconds=app.settings.offsite.timeout_seconds)
    # every connection goes through the process's egress proxy, which resolves the host, checks every address and
    # connects to the checked one (the client resolving by itself would open the door to DNS rebinding); it also
    # keeps proxies from the environment (HTTP(S)_PROXY) out, which would connect past the check
    proxy = {"proxy_url": egress.PROXY.url_for(httpx.URL(endpoint), app.settings.notify.webhook_networks)}
    return S3Store(
        acc.offsite_bucket, config={"endpoint": endpoint, "region": acc.offsite_region or "us-east-1",
                                    "virtual_hosted_style_request": False},
        credential_provider=credentials,  # type: ignore[arg-type]
        client_options={"allow_http": endpoint.startswith("http://"), "timeout": timeout, **proxy,  # type: ignore[typeddict-item]
                        "connect_timeout": timedelta(seconds=min(10.0, app.settings.offsite.timeout_seconds))},
        retry_config={"max_retries": 1, "retry_timeout": timeout,
                      "backoff": {"init_backoff": timedelta(milliseconds=200), "max_backoff": timedelta(seconds=2),
                                  "base": 2}},
    )


def bucket_error(exc: BaseException, acc: Account) -> BucketError:
    """What an S3 call's failure means for the owner, in words."""
    text = str(exc)
    code = m.group(1) if (m := _CODE.search(text)) else ""
    message = m.group(1).strip() if (m := _MESSAGE.search(text)) else ""
    where = acc.offsite_endpoint or "the endpoint"
    said = f" ({code}: {message})" if code and message else f" ({code})" if code else ""
    # the egress proxy's own answers (``egress``): the address is refused, or nothing answers there
    if code == "EndpointNotAllowed":
        return BucketError("cannot_connect", f"cannot connect to {where}: {message}")
    if code == "EndpointUnreachable":
        return BucketError("cannot_connect", f"cannot connect to {where}")
    if code == "EndpointTimeout":
        return BucketError("timeout", f"{where} did not answer within {_seconds(exc)}")
    if code == "NoSuchBucket":
        return BucketError("no_such_bucket", f"the bucket {acc.offsite_bucket!r} does not exist at {where}")
    if code in _DENIED:
        return BucketError("access_denied", f"access denied by the bucket{said}: check the access key id, the "
                                            "secret key and that the key may write to this bucket")
    if "kind: Connect" in text or "error sending request" in text or "dns error" in text.lower():
        return BucketError("cannot_connect", f"cannot connect to {where}")
    if "kind: Timeout" in text or "timed out" in text.lower():
        return BucketError("timeout", f"{where} did not answer within {_seconds(exc)}")
    status = m.group(1).strip() if (m := _STATUS.search(text)) else ""
    if status.startswith(("401", "403")):
        return BucketError("access_denied", f"access denied by the bucket (HTTP {status}){said}")
    if status:
        return BucketError("bucket_error", f"the bucket answered HTTP {status}{said}")
    first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
    return BucketError("bucket_error", f"the bucket request failed: {first}")


def _seconds(exc: BaseException) -> str:
    m = re.search(r"retry_timeout: (\S+)", str(exc))
    return m.group(1).rstrip(",") if m else "the time limit"


def _call(acc: Account, fn: Any, *args: Any, **kwargs: Any) -> Any:
    from obstore.exceptions import BaseError

    try:
        return fn(*args, **kwargs)
    except (BaseError, OSError) as exc:
        raise bucket_error(exc, acc) from None


def _store(app: AlarmCloud, acc: Account, secret: str) -> Any:
    try:
        return make_store(app, acc, secret)
    except Exception as exc:  # settings the client refuses; its text is not passed on (it may echo the settings)
        raise BucketError("bucket_error", f"the S3 client refused these settings ({type(exc).__name__})") from None


def _segment(name: str, fallback: str) -> str:
    """A camera name as one folder name of a key (letters, digits, space, '.', '-' and '_'; others become '_')."""
    clean = re.sub(r"[^\w .-]+", "_", name).strip(" ._")[:64].strip(" ._")
    return clean or fallback


def object_key(acc: Account, cam: Camera | None, clip: Clip) -> str:
    """``<prefix>/<camera name or id>/<YYYY>/<MM>/<DD>/<clip time>-<clip id>.mp4`` (times in UTC)."""
    t = aware(clip.started_at).astimezone(UTC)
    folder = _segment(cam.name, clip.camera_id) if cam is not None else clip.camera_id
    key = f"{folder}/{t:%Y}/{t:%m}/{t:%d}/{t:%Y%m%dT%H%M%SZ}-{clip.id}.mp4"
    prefix = (acc.offsite_prefix or "").strip("/")
    return f"{prefix}/{key}" if prefix else key


def recipient(acc: Account) -> bytes | None:
    """The owner's age public key the copies are encrypted to (``agecrypt``), or None: plain copies."""
    from alarmcloud import agecrypt

    return agecrypt.parse_recipient(acc.offsite_age_recipient) if acc.offsite_age_recipient else None


def copy_names(acc: Account, cam: Camera | None, clip: Clip) -> tuple[str, str]:
    """The keys (paths) of the clip's video and sidecar: ``object_key`` and its ``.json``, each ending in ``.age``
    when the owner's copies are encrypted."""
    video = object_key(acc, cam, clip)
    end = ".age" if acc.offsite_age_recipient else ""
    return video + end, video[:-len(".mp4")] + ".json" + end


def copy_size(acc: Account, size: int) -> int:
    """The size of a copied file of ``size`` bytes: encrypted, or as it is."""
    from alarmcloud import agecrypt

    return agecrypt.encrypted_size(size) if acc.offsite_age_recipient else size


def sealed_sidecar(acc: Account, doc: bytes) -> bytes:
    """The sidecar as written: encrypted to the owner's key, or as it is."""
    from alarmcloud import agecrypt

    key = recipient(acc)
    return agecrypt.encrypt(doc, key) if key else doc


@contextlib.contextmanager
def video_source(acc: Account, path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """The stored video opened for a copy, and the size of what is read from it: encrypted to the owner's key
    (``agecrypt.Encrypting``, streamed), or the file as it is."""
    from alarmcloud import agecrypt

    size = path.stat().st_size
    key = recipient(acc)
    with path.open("rb") as f:
        if key is None:
            yield f, size
        else:
            stream = agecrypt.Encrypting(f, size, key)
            yield stream, stream.length  # type: ignore[misc]


class Files(Protocol):
    """A file server's connection as ``copy_files`` uses it (an SFTP server, a WebDAV folder)."""

    def there(self, path: str, side: str, size: int) -> bool:
        """The video at ``path`` has ``size`` bytes and its sidecar ``side`` is there: a complete copy."""

    def makedirs(self, folder: str) -> None:
        """Every folder of ``folder`` exists."""

    def put(self, source: BinaryIO, path: str, length: int) -> None:
        """``length`` bytes of ``source`` written to ``path``, never seen half-written there."""


def copy_files(app: AlarmCloud, acc: Account, clip: Clip, cam: Camera | None, findings: list[FindingRow],
               files: Files, unless_there: bool = False) -> str:
    """The copy to a file server: the video (encrypted when the owner gave an age key), then its sidecar, into the
    layout's folder; the video's path (``unless_there``: nothing when the complete copy is there). A local video
    gone meanwhile raises ``FileNotFoundError`` (``attempt`` decides)."""
    path, side = copy_names(acc, cam, clip)
    if unless_there and files.there(path, side, copy_size(acc, app.blobs.size(clip.blob_key))):
        return path
    files.makedirs(path.rpartition("/")[0])
    with app.blobs.local_file(clip.blob_key) as local, video_source(acc, Path(local)) as (source, length):
        size = local.stat().st_size
        files.put(source, path, length)
    doc = sealed_sidecar(acc, sidecar(clip, cam, findings, path, size))
    files.put(io.BytesIO(doc), side, len(doc))
    return path


def sidecar(clip: Clip, cam: Camera | None, findings: list[FindingRow], video_key: str, size: int) -> bytes:
    """The JSON written beside the video: camera, time, verdict, findings. ``analysis``: ``done``, or ``failed``
    (no verdict: ``verdict`` is null)."""
    failed = unanalysed(clip)
    doc = {"format": "alarmcloud-offsite/1", "clip_id": clip.id, "camera_id": clip.camera_id,
           "camera_name": cam.name if cam is not None else None, "started_at": iso(clip.started_at),
           "duration_seconds": clip.duration, "analysis": "failed" if failed else "done",
           "verdict": None if failed else clip.verdict, "labels": list(clip.labels or []),
           "findings": [{"detector": f.detector, "label": f.label, "score": f.score, "time": f.time,
                         "box": f.box, "text": f.text} for f in findings],
           "video": video_key.rsplit("/", 1)[-1], "size_bytes": size, "copied_at": iso(utcnow())}
    return json.dumps(doc, indent=1).encode()


def _already_there(store: Any, key: str, side: str, size: int) -> bool:
    """The bucket holds this video at its size (``copy_size``) and its sidecar (written after it): a complete copy.
    False when either is missing or the key may not read (a key that may only write: then the copy is simply made
    again)."""
    import obstore
    from obstore.exceptions import BaseError

    try:
        return int(obstore.head(store, key)["size"]) == size and bool(obstore.head(store, side))
    except (BaseError, OSError, KeyError, TypeError, ValueError):
        return False


def copy_clip(app: AlarmCloud, acc: Account, secret: str, clip: Clip, cam: Camera | None,
              findings: list[FindingRow], unless_there: bool = False) -> str:
    """Upload the stored video as it is (in parts when large), then its sidecar; the video's key (to an SFTP
    server: ``offsite_sftp.copy_clip``, to a WebDAV server ``offsite_webdav.copy_clip``, ``secret`` unused). The
    same clip always goes to the same key, so a retried copy replaces, never duplicates. ``unless_there``: nothing
    is uploaded when the bucket already holds the complete copy (a clip copied before, queued again by a
    backfill)."""
    import obstore

    if acc.offsite_kind == SFTP:
        from alarmcloud import offsite_sftp

        return offsite_sftp.copy_clip(app, acc, clip, cam, findings, unless_there=unless_there)
    if acc.offsite_kind == WEBDAV:
        from alarmcloud import offsite_webdav

        return offsite_webdav.copy_clip(app, acc, clip, cam, findings, unless_there=unless_there)
    check_endpoint(app, acc.offsite_endpoint or "")
    store = _store(app, acc, secret)
    key, side = copy_names(acc, cam, clip)
    if unless_there and _already_there(store, key, side, copy_size(acc, app.blobs.size(clip.blob_key))):
        return key  # before reading the blob
    sealed = bool(acc.offsite_age_recipient)
    kind = {"Content-Type": "application/octet-stream" if sealed else "video/mp4"}
    with app.blobs.local_file(clip.blob_key) as path:
        size = path.stat().st_size
        if not sealed:
            _call(acc, obstore.put, store, key, path, use_multipart=size > PART_SIZE, chunk_size=PART_SIZE,
                  max_concurrency=2, attributes=kind)
        else:
            with video_source(acc, path) as (stream, length):  # encrypted as it is sent
                body = stream.read() if length <= PART_SIZE else iter(stream)
                _call(acc, obstore.put, store, key, body, use_multipart=length > PART_SIZE, chunk_size=PART_SIZE,
                      max_concurrency=2, attributes=kind)
    _call(acc, obstore.put, store, side, sealed_sidecar(acc, sidecar(clip, cam, findings, key, size)),
          use_multipart=False, attributes={"Content-Type": "application/octet-stream" if sealed
                                           else "application/json"})
    return key


def test_bucket(app: AlarmCloud, acc: Account, secret: str) -> tuple[str, bool]:
    """Write a small object under the prefix and delete it again: its key, and whether the key could delete it (a
    key that may only write is the safer one: a thief holding it cannot delete the copies either). Raises
    ``BucketError`` or ``notify.TargetNotAllowed``."""
    import obstore

    check_endpoint(app, acc.offsite_endpoint or "")
    store = _store(app, acc, secret)
    prefix = (acc.offsite_prefix or "").strip("/")
    key = (f"{prefix}/" if prefix else "") + f".alarmcloud-test-{crypto.new_token(6)}"
    _call(acc, obstore.put, store, key, b"alarmcloud bucket test: this object is deleted again at once\n",
          use_multipart=False)
    try:
        _call(acc, obstore.delete, store, key)
    except BucketError as exc:
        if exc.code != "access_denied":
            raise
        return key, False
    return key, True


# ---------------------------------------------------------------- queueing and copying (the outbox)


def target(account_id: str) -> str:
    """The outbox target of an owner's copies (apart from their messages, so an upload never holds up an alarm)."""
    return f"{KIND}:{account_id}"


def unanalysed(clip: Clip) -> bool:
    """Processing gave up on the clip (``jobs``: every attempt failed): it has no verdict, so it cannot be shown to
    be a false alarm."""
    return clip.status == "failed"


def wanted(acc: Account, clip: Clip) -> bool:
    """The owner copies this clip: every clip (``all``), an alarm, or a clip without a verdict (its analysis failed:
    a burglar who also takes the recorder must not cost the owner that clip)."""
    return acc.offsite_scope == "all" or unanalysed(clip) or (clip.verdict or "").startswith("alarm")


def queue_copy(app: AlarmCloud, s: Session, clip: Clip) -> bool:
    """When the clip's processing ends for the first time, in that transaction: with the verdict (the pipeline) or
    given up (``jobs``: no verdict). One outbox row when the owner copies this kind of clip."""
    if not app.settings.offsite.enabled:
        return False
    acc = s.get(Account, clip.account_id)
    if acc is None or not acc.offsite_enabled or not configured(acc) or not wanted(acc, clip):
        return False
    ended = s.exec(select(func.count()).select_from(Job).where(
        Job.clip_id == clip.id, col(Job.state).in_(("done", "dead")))).one()
    if ended > 1:
        return False  # analysed again (alarmcloud reprocess, also after a failed analysis): decided the first time
    if waiting(s, [clip.id]):
        return False  # its copy waits already (queued by a backfill meanwhile)
    s.add(Outbox(account_id=acc.id, kind=KIND, target=target(acc.id), clip_id=clip.id, payload={"clip_id": clip.id}))
    wake_after_commit(app, s)
    return True


def queue_masked(app: AlarmCloud, s: Session, clip: Clip) -> bool:
    """In the transaction that swaps a re-encoded video with new privacy masks in (``masks_apply``; the clip row
    locked, ``clip`` already pointing at the masked video): the owner's copy is to follow. A copy waiting already
    reads the masked video when it runs (a backfill's copy then uploads even when the bucket holds an object of the
    same size: the unmasked one); a copy made to the bucket and folder set now gets one new copy, which replaces the
    video and its sidecar under the same key. Nothing for a clip never copied there, out of the owner's scope now,
    or with the copies off; a given-up copy uploads the masked video when retried. True when a copy was queued."""
    if not app.settings.offsite.enabled:
        return False
    acc = s.get(Account, clip.account_id)
    if acc is None or not acc.offsite_enabled or not configured(acc) or not wanted(acc, clip):
        return False
    rows = s.exec(select(Outbox).where(col(Outbox.clip_id) == clip.id)).all()
    waiting_now = [r for r in rows if r.kind == KIND and r.state == "queued"]
    for r in waiting_now:
        if r.payload.get("backfill"):
            r.payload = {"clip_id": clip.id, "masked": True}
            s.add(r)
    if waiting_now:
        # one in flight now (claimed) re-reads the clip when its upload ends and copies the masked video again
        # (``attempt``); the others read it when they run
        return False
    if clip.offsite_copy != destination(acc):
        return False
    s.add(Outbox(account_id=acc.id, kind=KIND, target=target(acc.id), clip_id=clip.id,
                 payload={"clip_id": clip.id, "masked": True}))
    wake_after_commit(app, s)
    return True


#: times one attempt copies a clip whose video was swapped (privacy masks applied) while it was uploaded
SWAPPED_TRIES = 3


def attempt(app: AlarmCloud, row: Outbox) -> tuple[str, str | None]:
    """One copy (``notify._attempt``): the owner's settings and the clip are read now (changed meanwhile).

    The copy counts only when the clip still has the video that was uploaded: when privacy masks were applied
    meanwhile (``masks_apply`` swapped a re-encoded video in and deleted the old one), the masked video is copied
    again over it. The check and the row's ``sent`` are one transaction that locks the clip row, as the swap does:
    a swap after it finds the copy made and queues a new one (``queue_masked``), a swap before it is seen here."""
    if not app.settings.offsite.enabled:
        return "skipped", "off-site copies are switched off on this server"
    clip_id = str(row.payload.get("clip_id", ""))
    unless_there = bool(row.payload.get("backfill"))
    for _ in range(SWAPPED_TRIES):
        with app.db.session() as s:
            acc = s.get(Account, row.account_id)
            clip = s.get(Clip, clip_id)
            cam = s.get(Camera, clip.camera_id) if clip is not None else None
            findings = list(s.exec(select(FindingRow).where(FindingRow.clip_id == clip_id)
                                   .order_by(col(FindingRow.id))).all())
        if acc is None:
            return "dead", "the account was deleted"
        if not acc.offsite_enabled or not configured(acc):
            return "skipped", "off-site copies were switched off"
        if clip is None or clip.account_id != acc.id or not clip.blob_key:
            return "skipped", "the clip was deleted before it was copied"
        from alarmcloud import offsite_prune

        if offsite_prune.too_old(acc, clip):  # its copy would be deleted as an old one at once
            return "skipped", f"the clip is older than the {acc.offsite_keep_days} days of copies kept"
        try:
            key = copy_clip(app, acc, open_secret(app, acc), clip, cam, findings, unless_there=unless_there)
        except BucketError as exc:
            if exc.code == "host_key_changed":
                tell_host_key_changed(app, acc.id, str(exc))
            return "failed", str(exc)
        except FileNotFoundError:
            if _swapped(app, clip):
                unless_there = False
                continue  # the video was replaced under the copy (masks applied): copy the new one
            return "skipped", "the clip was deleted before it was copied"
        with app.db.session() as s:
            copied = s.get(Clip, clip.id, with_for_update=True)  # first: the lock the masks' swap takes too
            if copied is not None and copied.blob_key != clip.blob_key:
                s.rollback()
                unless_there = False  # the bucket holds the unmasked video just uploaded
                continue
            if copied is not None:
                copied.offsite_copy = destination(acc)  # the settings this copy was made with
                s.add(copied)
            fresh = s.get(Account, acc.id)
            if fresh is not None:
                fresh.offsite_last_copy_at = utcnow()
                s.add(fresh)
            done = s.get(Outbox, row.id)
            if done is not None:
                done.state = "sent"  # with the check: a swap from now on queues a new copy
                # counted here as well, so nobody sees a sent copy without its attempt (``deliver_row`` then
                # writes the same count)
                done.attempts, done.last_attempt_at = row.attempts + 1, utcnow()
                s.add(done)
            s.commit()
        log.info("clip %s copied off-site (%s)", clip.id, key.rsplit("/", 1)[-1])
        return "sent", None
    return "failed", "the clip's video changed while it was copied (privacy masks applied); it is copied again"


def _swapped(app: AlarmCloud, clip: Clip) -> bool:
    """The clip is still stored, under another video than ``clip`` read (masks applied meanwhile)."""
    with app.db.session() as s:
        now = s.get(Clip, clip.id)
    return now is not None and bool(now.blob_key) and now.blob_key != clip.blob_key


#: clips looked at (and copies queued) per transaction by ``backfill``
BACKFILL_BATCH = 500
#: the copies of existing clips are spread out in time (``offsite.backfill_spacing_seconds`` and
#: ``backfill_mib_per_second``): at most a few of them are due at any moment, so a new alarm's copy (due at once) and
#: other accounts' copies never wait behind a backlog of old clips
#: copy rows that count as "this clip's copy is under way" for ``backfill`` (waiting or given up; a made copy is
#: recorded on the clip, ``Clip.offsite_copy``, and a skipped one may be queued again)
COPY_STATES = ("queued", "dead")


def waiting(s: Session, clip_ids: list[str]) -> set[str]:
    """Those of the clips whose copy is waiting or given up (``COPY_STATES``): an index lookup per clip
    (``outbox.clip_id``), however long the outbox."""
    if not clip_ids:
        return set()
    # on the clip id alone (kind and state are checked here): PostgreSQL then never prefers another index on the
    # strength of statistics taken while the outbox was small (a backfill that queues 50,000 copies grows it); the
    # ids as literals: a prepared statement's generic plan would compare each row with every id in turn
    ids = bindparam("clip_ids", list(clip_ids), expanding=True, literal_execute=True)
    rows = s.exec(select(Outbox.clip_id, Outbox.kind, Outbox.state).where(col(Outbox.clip_id).in_(ids))).all()
    return {str(c) for c, kind, state in rows if kind == KIND and state in COPY_STATES}


def backfill(app: AlarmCloud, account_id: str, since: datetime | None = None, camera_id: str | None = None,
             batch: int | None = None) -> int:
    """Queue one copy for every stored clip of the account that matches its scope (analysed, or its analysis
    failed; from ``since``, of ``camera_id``) whose copy is neither made to the bucket and prefix set now
    (``Clip.offsite_copy``) nor waiting or given up; how many were queued. Oldest clips first, ``batch`` (default
    ``BACKFILL_BATCH``) clips per short transaction (never every clip at once); stops when the copies are switched
    off meanwhile. Calling it again queues nothing new. A clip deleted before its copy runs is skipped then."""
    batch = batch or BACKFILL_BATCH
    spacing = app.settings.offsite.backfill_spacing_seconds
    rate = app.settings.offsite.backfill_mib_per_second * 1024 * 1024
    queued = 0
    after: tuple[datetime, str] | None = None
    due = utcnow()
    with app.db.session() as s:  # after the copies an earlier backfill spread out, never beside them
        last = s.exec(select(func.max(Outbox.available_at)).where(
            Outbox.kind == KIND, Outbox.target == target(account_id), Outbox.state == "queued",
            Outbox.attempts == 0)).one()
    if last is not None and aware(last) > due:
        due = aware(last) + timedelta(seconds=spacing)
    while True:
        with app.db.session() as s:
            # the account row is locked while a batch is checked and queued (PostgreSQL; SQLite's transactions
            # are serial anyway), so two backfills at once never queue the same clip twice
            acc = s.exec(select(Account).where(Account.id == account_id).with_for_update()).first()
            if acc is None or not acc.offsite_enabled or not configured(acc):
                break
            failed = col(Clip.status) == "failed"  # processing gave up: no verdict, copied in every scope
            q = select(Clip.id, Clip.started_at, Clip.size_bytes).where(
                Clip.account_id == account_id, Clip.blob_key != "",
                or_(and_(col(Clip.status) == "done", col(Clip.verdict).is_not(None)), failed))
            if acc.offsite_scope != "all":
                q = q.where(or_(col(Clip.verdict).startswith("alarm"), failed))
            if since is not None:
                q = q.where(Clip.started_at >= since)
            if acc.offsite_keep_days:  # not the clips whose copies would be deleted as old ones (but kept clips)
                from alarmcloud import offsite_prune

                first = offsite_prune.first_kept_day(acc.offsite_keep_days)
                q = q.where(or_(Clip.started_at >= datetime(first.year, first.month, first.day, tzinfo=UTC),
                                col(Clip.kept_at).is_not(None)))
            if camera_id is not None:
                q = q.where(Clip.camera_id == camera_id)
            # not copied to the bucket set now (never, or to another bucket or prefix before)
            q = q.where(or_(col(Clip.offsite_copy).is_(None), col(Clip.offsite_copy) != destination(acc)))
            if after is not None:
                q = q.where(tuple_(col(Clip.started_at), col(Clip.id)) > tuple_(after[0], after[1]))  # on the index
            rows = s.exec(q.order_by(col(Clip.started_at), col(Clip.id)).limit(batch)).all()
            if not rows:
                break
            after = (rows[-1][1], rows[-1][0])
            have = waiting(s, [r[0] for r in rows])
            for clip_id, _, size in rows:
                if clip_id in have:
                    continue
                s.add(Outbox(account_id=account_id, kind=KIND, target=target(account_id), clip_id=clip_id,
                             payload={"clip_id": clip_id, "backfill": True}, available_at=due))
                due += timedelta(seconds=spacing + (size or 0) / rate)
                queued += 1
            s.commit()
        if len(rows) < batch:
            break
    if queued:
        log.info("account %s: %d existing clips queued for off-site copies", account_id, queued)
        waker(app).set()  # the first one is due at once
    return queued


def queue_one(app: AlarmCloud, s: Session, acc: Account, clip: Clip) -> bool:
    """Queue a copy of this one clip now, whatever "What to copy" says (the owner asked for it): False when it is
    copied to the destination set now already, or its copy is waiting (the caller commits)."""
    if clip.offsite_copy == destination(acc) or clip.id in waiting(s, [clip.id]):
        return False
    s.add(Outbox(account_id=acc.id, kind=KIND, target=target(acc.id), clip_id=clip.id,
                 payload={"clip_id": clip.id, "backfill": True}, available_at=utcnow()))
    wake_after_commit(app, s)
    return True


def retry_given_up(app: AlarmCloud, s: Session, account_id: str) -> int:
    """Queue the account's given-up copies again from their first attempt (the caller commits); how many."""
    rows = s.exec(select(Outbox).where(Outbox.account_id == account_id, Outbox.kind == KIND,
                                       Outbox.state == "dead")).all()
    now = utcnow()
    for row in rows:
        row.state, row.attempts, row.available_at = "queued", 0, now
        s.add(row)
    if rows:
        wake_after_commit(app, s)
    return len(rows)


def status(s: Session, acc: Account) -> dict[str, Any]:
    """Last copy, last error (when newer than the last copy), copies waiting and given up, the latest copies."""
    mine = (Outbox.account_id == acc.id, Outbox.kind == KIND)
    waiting = s.exec(select(func.count()).select_from(Outbox).where(*mine, Outbox.state == "queued")).one()
    given_up = s.exec(select(func.count()).select_from(Outbox).where(*mine, Outbox.state == "dead")).one()
    failed = s.exec(select(Outbox).where(*mine, col(Outbox.last_error).is_not(None),
                                         col(Outbox.state).in_(("queued", "dead")))
                    .order_by(col(Outbox.last_attempt_at).desc()).limit(1)).first()
    last = aware(acc.offsite_last_copy_at) if acc.offsite_last_copy_at else None
    error = None
    if failed is not None and failed.last_attempt_at is not None and (last is None or
                                                                      aware(failed.last_attempt_at) > last):
        error = failed.last_error
    recent = s.exec(select(Outbox).where(*mine).order_by(col(Outbox.id).desc()).limit(10)).all()
    return {"last_copy_at": iso(last) if last else None, "last_error": error, "waiting": int(waiting),
            "given_up": int(given_up),
            "copies": [{"clip_id": r.payload.get("clip_id"), "state": r.state, "attempts": r.attempts,
                        "last_error": r.last_error, "created_at": iso(r.created_at) if r.created_at else None,
                        "last_attempt_at": iso(r.last_attempt_at) if r.last_attempt_at else None,
                        "next_attempt_at": iso(r.available_at) if r.state == "queued" else None}
                       for r in recent]}


def clip_status(s: Session, acc: Account, clip: Clip) -> dict[str, Any] | None:
    """Where this clip's off-site copy stands, for its owner: ``state`` ``copied`` (to the destination set now),
    ``waiting`` (queued, with its attempts, last error and next attempt), ``given_up``, ``skipped`` (why in
    ``last_error``), or ``none`` (no copy: outside "What to copy", or copied only to an earlier destination,
    ``copied_elsewhere``); ``where`` names the destination, ``encrypted``: copies go encrypted to the owner's age
    key. None while the copies are not set up."""
    if not configured(acc):
        return None
    out: dict[str, Any] = {"state": "none", "where": _where(acc), "attempts": 0, "last_error": None,
                           "next_attempt_at": None, "copied_elsewhere": False,
                           "encrypted": bool(acc.offsite_age_recipient)}
    row = s.exec(select(Outbox).where(Outbox.clip_id == clip.id, Outbox.kind == KIND)
                 .order_by(col(Outbox.id).desc()).limit(1)).first()
    if row is not None and row.state in ("queued", "dead", "skipped"):
        out.update(state={"queued": "waiting", "dead": "given_up"}.get(row.state, row.state),
                   attempts=row.attempts, last_error=row.last_error,
                   next_attempt_at=iso(row.available_at) if row.state == "queued" else None)
    if clip.offsite_copy and clip.offsite_copy == destination(acc) and out["state"] != "waiting":
        out.update(state="copied", last_error=None)  # a re-copy (masks) waiting says so instead
    out["copied_elsewhere"] = bool(clip.offsite_copy) and clip.offsite_copy != destination(acc)
    return out


#: the owner is told when copies have failed this long with no copy arriving (``check_failing``)
FAILING_NOTICE_SECONDS = 3600.0
#: failed attempts of a copy before it counts as failing (a short hiccup is retried without a word)
FAILING_ATTEMPTS = 3
#: at most one such notice per account in this time (a single broken clip among arriving copies)
FAILING_NOTICE_QUIET = timedelta(days=1)


def _where(acc: Account) -> str:
    if acc.offsite_kind == SFTP:
        from alarmcloud import offsite_sftp

        return f"your SFTP server {offsite_sftp.where(acc)}"
    if acc.offsite_kind == WEBDAV:
        return f"your WebDAV folder {acc.offsite_webdav_url}"
    return f"your bucket {acc.offsite_bucket} at {acc.offsite_endpoint}"


def check_failing(app: AlarmCloud, now: datetime | None = None) -> list[str]:
    """Tell each owner whose copies do not arrive: a copy failed ``FAILING_ATTEMPTS`` times or more, none arrived
    for ``FAILING_NOTICE_SECONDS`` and the failing copy is at least that old. Once per outage (again only after a
    copy arrived meanwhile) and at most once per ``FAILING_NOTICE_QUIET``; by e-mail, push and Telegram as the
    owner chose. The ids of the accounts told."""
    if not app.settings.offsite.enabled:
        return []
    now = now or utcnow()
    since = now - timedelta(seconds=FAILING_NOTICE_SECONDS)
    with app.db.session() as s:
        candidates = s.exec(select(Outbox.account_id).where(
            Outbox.kind == KIND, col(Outbox.state).in_(COPY_STATES), col(Outbox.last_error).is_not(None),
            Outbox.attempts >= FAILING_ATTEMPTS, col(Outbox.created_at) <= since).distinct()).all()
    return [account_id for account_id in candidates if _tell(app, account_id, now)]


def tell_host_key_changed(app: AlarmCloud, account_id: str, error: str) -> bool:
    """A copy met another host key than the trusted one (someone in between, or the server set up again): the owner
    is told at once, not after an hour of failures; once per outage."""
    return _tell(app, account_id, utcnow(), error=error,
                 subject="Off-site copies stopped: the server showed another host key")


def _tell(app: AlarmCloud, account_id: str, now: datetime, error: str | None = None,
          subject: str = "Off-site copies are not arriving") -> bool:
    """The notice of ``check_failing`` (``error``: at once, about this error: ``tell_host_key_changed``); True
    when the owner was told now."""
    from alarmcloud import notify

    since = now - timedelta(seconds=FAILING_NOTICE_SECONDS)
    with app.db.session() as s:
        # locked: two servers looking at once tell the owner once
        acc = s.get(Account, account_id, with_for_update=True, populate_existing=True)
        if acc is None or not acc.offsite_enabled or not configured(acc):
            return False
        last = aware(acc.offsite_last_copy_at) if acc.offsite_last_copy_at else None
        told_at = aware(acc.offsite_failing_notified_at) if acc.offsite_failing_notified_at else None
        if told_at is not None and (last is None or told_at > last):
            return False  # told of this outage already
        if error is None and ((last is not None and last > since) or (
                told_at is not None and now - told_at < FAILING_NOTICE_QUIET)):
            return False
        mine = (Outbox.account_id == acc.id, Outbox.kind == KIND)
        if error is None:
            failing = s.exec(select(Outbox.last_error).where(*mine, col(Outbox.state).in_(COPY_STATES),
                                                             col(Outbox.last_error).is_not(None))
                             .order_by(col(Outbox.last_attempt_at).desc()).limit(1)).first()
            if failing is None:
                return False
            error = str(failing)
        waiting = s.exec(select(func.count()).select_from(Outbox).where(*mine, Outbox.state == "queued")).one()
        given_up = s.exec(select(func.count()).select_from(Outbox).where(*mine, Outbox.state == "dead")).one()
        base = app.settings.public_url.rstrip("/")
        arrived = f"The last copy arrived {last:%Y-%m-%d %H:%M} UTC." if last else "No copy has arrived yet."
        counts = f"{waiting} cop{'y is' if waiting == 1 else 'ies are'} waiting" + (
            f" and {given_up} {'was' if given_up == 1 else 'were'} given up" if given_up else "")
        text = (f"The off-site copies of your clips to {_where(acc)} are not arriving: {error}\n\n"
                f"{arrived} {counts}; waiting copies are tried again by themselves, given-up ones with "
                f"\"Retry given-up copies\". Check the settings and test the connection on the Storage page: "
                f"{base}/storage#offsite\n")
        notify.queue_personal_message(app, s, acc, subject, text, "/storage", ["warning"])
        acc.offsite_failing_notified_at = now
        s.add(acc)
        s.commit()
        event = Event(OFFSITE_FAILING, acc.id, None, {
            "kind": acc.offsite_kind, "last_error": error, "waiting": int(waiting), "given_up": int(given_up),
            "last_copy_at": iso(last) if last else None})
    log.warning("account %s told that its off-site copies are not arriving", account_id)
    app.emit_sync(event)  # webhooks subscribed to offsite.failing
    return True


def lease(app: AlarmCloud) -> timedelta:
    """How long a claimed copy is this sender's: a large clip takes several requests."""
    return timedelta(seconds=app.settings.offsite.timeout_seconds * 4 + 60)


def backoff(app: AlarmCloud, attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: doubling, at most ``retry_max_seconds``."""
    return min(app.settings.notify.retry_base_seconds * 2 ** min(attempts - 1, 30),
               app.settings.offsite.retry_max_seconds)


# ---------------------------------------------------------------- the copy loop's timing

#: the copy loop waits at least this long after a round that copied nothing (failed or skipped copies) and at first
#: when nothing is due; the wait doubles while nothing is due, up to ``IDLE_MAX_SECONDS``
IDLE_MIN_SECONDS = 1.0
#: the longest wait of an idle copy loop: a copy queued by another process (an ``alarmcloud worker`` on PostgreSQL)
#: is found within this time; one queued by this process wakes the loop at once (``Waker``)
IDLE_MAX_SECONDS = 30.0


class Waker:
    """Wakes this process's copy loop at once when a copy is queued here (from any thread; after the commit).
    Without a running loop (``alarmcloud worker`` processes, commands) waking does nothing."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self) -> None:
        """Called by the copy loop on its event loop."""
        self._loop, self._event = asyncio.get_running_loop(), asyncio.Event()

    def set(self) -> None:
        loop, ev = self._loop, self._event
        if loop is None or ev is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(ev.set)
        except RuntimeError:  # the loop closed meanwhile
            pass

    async def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when woken."""
        assert self._event is not None, "bind() first"
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woken = self._event.is_set()
        self._event.clear()
        return woken


_wakers: weakref.WeakKeyDictionary[Any, Waker] = weakref.WeakKeyDictionary()


def waker(app: AlarmCloud) -> Waker:
    """The copy loop's waker of this application object."""
    w = _wakers.get(app)
    if w is None:
        w = _wakers[app] = Waker()
    return w


def wake_after_commit(app: AlarmCloud, s: Session) -> None:
    """Wake the copy loop once the caller's transaction has committed (before, it could not see the copy)."""
    if s.info.get("offsite_wake"):
        return
    s.info["offsite_wake"] = True

    def _committed(session: Session) -> None:
        session.info.pop("offsite_wake", None)
        waker(app).set()

    event.listen(s, "after_commit", _committed, once=True)


def due_in(app: AlarmCloud) -> float | None:
    """Seconds until the next waiting copy is due (0 or less: now), None when no copy waits."""
    with app.db.session() as s:
        first = s.exec(select(func.min(Outbox.available_at)).where(Outbox.kind == KIND,
                                                                     Outbox.state == "queued")).one()
    return None if first is None else (aware(first) - utcnow()).total_seconds()


def skip_waiting(app: AlarmCloud) -> int:
    """The operator switched the copies off: every copy still waiting is ``skipped`` (once, at start); how many."""
    with app.db.session() as s:
        res = s.exec(update(Outbox).where(col(Outbox.kind) == KIND, col(Outbox.state) == "queued")  # type: ignore[call-overload]
                     .values(state="skipped", last_error="off-site copies are switched off on this server"))
        s.commit()
    return int(res.rowcount or 0)
