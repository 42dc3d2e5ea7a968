"""Off-site copies, the owner's settings: their S3-compatible bucket (endpoint, region, bucket, prefix, access key
id, secret key: stored encrypted, never returned) or their SFTP server (host, port, user, folder, the trusted host
key; the account's own SSH key, whose public line is shown), what to copy, on/off, a connection test and the
copies' status. Sub-users can neither see nor change them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from alarmcloud import agecrypt, notify, offsite, offsite_prune, offsite_sftp, offsite_webdav
from alarmcloud.auth import User, core, require_user
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.models import Account, iso

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

#: what each kind needs before the copies can be on (removing one switches them off)
NEEDED = {offsite.S3: ("offsite_endpoint", "offsite_bucket", "offsite_access_key_id", "offsite_secret_key_enc"),
          offsite.SFTP: ("offsite_sftp_host", "offsite_sftp_user", "offsite_sftp_host_key"),
          offsite.WEBDAV: ("offsite_webdav_url", "offsite_webdav_user", "offsite_webdav_password_enc")}
log = logging.getLogger(__name__)
FIELDS = {"enabled", "kind", "endpoint", "region", "bucket", "prefix", "access_key_id", "secret_key", "scope",
          "sftp_host", "sftp_port", "sftp_user", "sftp_host_key", "webdav_url", "webdav_user", "webdav_password",
          "keep_days", "encrypt_to"}


def offsite_json(s: Session, a: Account) -> dict[str, Any]:
    """The owner's settings (the secret key only as ``has_secret_key``) and the copies' status."""
    return {"enabled": a.offsite_enabled, "endpoint": a.offsite_endpoint, "region": a.offsite_region,
            "bucket": a.offsite_bucket, "prefix": a.offsite_prefix or "", "access_key_id": a.offsite_access_key_id,
            "has_secret_key": bool(a.offsite_secret_key_enc), "scope": a.offsite_scope, "kind": a.offsite_kind,
            "sftp_host": a.offsite_sftp_host, "sftp_port": a.offsite_sftp_port or offsite_sftp.DEFAULT_PORT,
            "sftp_user": a.offsite_sftp_user, "sftp_host_key": a.offsite_sftp_host_key,
            "sftp_public_key": a.offsite_sftp_public_key, "webdav_url": a.offsite_webdav_url,
            "webdav_user": a.offsite_webdav_user, "has_webdav_password": bool(a.offsite_webdav_password_enc),
            "keep_days": a.offsite_keep_days, "prune": _prune_json(a), "encrypt_to": a.offsite_age_recipient,
            **offsite.status(s, a)}


def _prune_json(a: Account) -> dict[str, Any] | None:
    """The last run that deleted old copies: when, how many files, its error; None before the first."""
    if not a.offsite_keep_days or a.offsite_pruned_at is None:
        return None
    return {"last_at": iso(a.offsite_pruned_at), "deleted_files": a.offsite_prune_deleted,
            "error": a.offsite_prune_error}


async def _owner(request: Request) -> tuple[User, AlarmCloud]:
    user = await require_user(request)
    app = core(request)
    if not app.settings.offsite.enabled:
        raise ApiError(404, "not_available", "off-site copies are switched off on this server")
    if user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "only the account owner manages off-site copies")
    return user, app


async def get_offsite(request: Request) -> Response:
    """The owner's off-site copy settings and status: last copy, last error, copies waiting and given up."""
    user, app = await _owner(request)

    def _get(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        return offsite_json(s, acc)

    return JSONResponse(await app.db.run(_get))


def _text(data: dict[str, Any], name: str, max_len: int) -> str | None:
    value = field(data, name, str, required=False, max_len=max_len)
    return value.strip() if value and value.strip() else None


async def _url(app: AlarmCloud, data: dict[str, Any], name: str, check: Any, strip: str = "") -> str | None:
    """A URL field checked by ``check(app, url)`` (the address rules; resolving blocks: in a thread); 400
    ``invalid_url`` with the reason."""
    url = _text(data, name, 500)
    if url is not None:
        url = url.rstrip(strip) if strip else url
        try:
            await anyio.to_thread.run_sync(check, app, url)
        except notify.TargetNotAllowed as exc:
            raise ApiError(400, "invalid_url", str(exc)) from None
    return url


def _choice(data: dict[str, Any], name: str, choices: tuple[str, ...], what: str) -> str:
    value = field(data, name, str, required=False)
    if value not in choices:
        raise ApiError(400, "invalid_field", f"field {name!r} {what}")
    return value


def _matching(data: dict[str, Any], name: str, max_len: int, pattern: Any, what: str) -> str | None:
    value = _text(data, name, max_len)
    if value is not None and not pattern.fullmatch(value):
        raise ApiError(400, "invalid_field", f"field {name!r}: {what}")
    return value


async def update_offsite(request: Request) -> Response:
    """Change ``enabled``, ``endpoint`` (the bucket server's https URL), ``region``, ``bucket``, ``prefix`` (a
    folder in the bucket), ``access_key_id``, ``secret_key`` (stored encrypted, never returned; empty or null
    removes it) or ``scope`` (``alarms``: clips whose verdict is an alarm, ``all``: every clip). Removing the
    endpoint, bucket, key id or secret switches the copies off; a new endpoint host needs the secret key again.
    Every field is checked before anything is stored."""
    user, app = await _owner(request)
    data = await json_body(request)
    only_fields(data, FIELDS)
    changes: dict[str, Any] = {}
    if "endpoint" in data:
        changes["offsite_endpoint"] = await _url(app, data, "endpoint", offsite.check_endpoint, strip="/")
    if "region" in data:
        changes["offsite_region"] = _matching(data, "region", 64, offsite.REGION_RE,
                                              "a region name like eu-central-1 (letters, digits, '-', '_')")
    if "bucket" in data:
        changes["offsite_bucket"] = _matching(data, "bucket", 63, offsite.BUCKET_RE,
                                              "a bucket name: 3 to 63 letters, digits, '.', '-' or '_'")
    if "prefix" in data:
        try:
            changes["offsite_prefix"] = offsite.check_prefix(field(data, "prefix", str, required=False,
                                                                   default="", max_len=200)) or None
        except ValueError as exc:
            raise ApiError(400, "invalid_field", f"field 'prefix': {exc}") from None
    if "access_key_id" in data:
        changes["offsite_access_key_id"] = _matching(data, "access_key_id", 128, offsite.ACCESS_KEY_RE,
                                                     "the access key id, without spaces")
    if "secret_key" in data:
        secret = _matching(data, "secret_key", 200, offsite.SECRET_RE, "the secret access key, without spaces")
        changes["offsite_secret_key_enc"] = offsite.seal_secret(app, user.id, secret) if secret else None
    if "scope" in data:
        changes["offsite_scope"] = _choice(data, "scope", offsite.SCOPES, "must be 'alarms' (clips whose verdict "
                                                                          "is an alarm) or 'all' (every clip)")
    changes.update(await _server_changes(app, user.id, data))
    if "keep_days" in data:
        try:
            changes["offsite_keep_days"] = offsite_prune.check_keep_days(field(data, "keep_days", int,
                                                                               required=False))
        except ValueError as exc:
            raise ApiError(400, "invalid_field", f"field 'keep_days': {exc}") from None
    if "encrypt_to" in data:
        key = _text(data, "encrypt_to", 100)
        try:
            changes["offsite_age_recipient"] = agecrypt.bech32_encode("age", agecrypt.parse_recipient(key)) \
                if key else None
        except ValueError as exc:
            raise ApiError(400, "invalid_field", f"field 'encrypt_to': {exc}") from None
    enabled = field(data, "enabled", bool, required=False)

    def _update(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        # removing what the chosen kind needs switches the copies off (an empty field that was empty removes nothing)
        off = any(k in changes and changes[k] is None and getattr(acc, k)
                  for k in NEEDED[changes.get("offsite_kind", acc.offsite_kind)])
        moved = notify.url_origin(changes.get("offsite_endpoint")) != notify.url_origin(acc.offsite_endpoint)
        if "offsite_endpoint" in changes and "offsite_secret_key_enc" not in changes and moved \
                and acc.offsite_endpoint:
            changes["offsite_secret_key_enc"] = None  # the key signs for the server it was given for only
            off = off or (enabled is not True and acc.offsite_kind == offsite.S3)  # until the key is entered again
        dav_moved = notify.url_origin(changes.get("offsite_webdav_url")) != notify.url_origin(acc.offsite_webdav_url)
        if "offsite_webdav_url" in changes and "offsite_webdav_password_enc" not in changes and dav_moved \
                and acc.offsite_webdav_url:
            changes["offsite_webdav_password_enc"] = None  # the password goes to the server it was given for only
            off = off or (enabled is not True and acc.offsite_kind == offsite.WEBDAV)
        server_moved = any(k in changes and changes[k] != getattr(acc, k)
                           for k in ("offsite_sftp_host", "offsite_sftp_port"))
        if server_moved and acc.offsite_sftp_host_key and \
                changes.get("offsite_sftp_host_key", acc.offsite_sftp_host_key) == acc.offsite_sftp_host_key:
            changes["offsite_sftp_host_key"] = None  # another server: its key is trusted anew
            off = off or enabled is not True  # until it is tested
        if changes.get("offsite_kind", acc.offsite_kind) != acc.offsite_kind and enabled is not True:
            off = True  # the other kind is switched on by itself
        if enabled is not None:
            changes["offsite_enabled"] = enabled and not off
        elif off:
            changes["offsite_enabled"] = False
        if changes.get("offsite_keep_days", acc.offsite_keep_days) != acc.offsite_keep_days:
            # the next look (within minutes) deletes what the new setting no longer keeps; the last run's result
            # was about the old one
            changes.update(offsite_pruned_at=None, offsite_prune_deleted=None, offsite_prune_error=None)
        for k, v in changes.items():
            setattr(acc, k, v)
        if acc.offsite_kind == offsite.SFTP and not acc.offsite_sftp_key_enc:
            acc.offsite_sftp_key_enc, acc.offsite_sftp_public_key = offsite_sftp.new_key(app, acc.id)
        if acc.offsite_enabled and not offsite.configured(acc):
            raise ApiError(400, "missing_field", _missing(acc, changes))
        s.add(acc)
        s.commit()
        return offsite_json(s, acc)

    return JSONResponse(await app.db.run(_update))


async def _server_changes(app: AlarmCloud, user_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of the kind, the SFTP and the WebDAV server, checked (hosts also resolved: only allowed
    addresses; the WebDAV password sealed)."""
    changes: dict[str, Any] = {}
    if "kind" in data:
        changes["offsite_kind"] = _choice(data, "kind", offsite.KINDS, "must be 's3' (an S3-compatible bucket) or "
                                                                       "'sftp' (an SFTP server)")
    if "sftp_host" in data:
        host = _text(data, "sftp_host", 255)
        if host is not None:
            try:
                host = offsite_sftp.check_host(host)
            except ValueError as exc:
                raise ApiError(400, "invalid_field", f"field 'sftp_host': {exc}") from None
            try:
                await anyio.to_thread.run_sync(offsite_sftp.resolve, app, host)  # resolving blocks
            except notify.TargetNotAllowed as exc:
                raise ApiError(400, "invalid_host", str(exc)) from None
        changes["offsite_sftp_host"] = host
    if "sftp_port" in data:
        port = field(data, "sftp_port", int, required=False)
        if port is not None and not 0 < port < 65536:
            raise ApiError(400, "invalid_field", "field 'sftp_port' must be between 1 and 65535 (SFTP: 22)")
        changes["offsite_sftp_port"] = None if port in (None, offsite_sftp.DEFAULT_PORT) else port
    if "sftp_user" in data:
        changes["offsite_sftp_user"] = _matching(data, "sftp_user", 64, offsite_sftp.USER_RE,
                                                 "the user name on the SFTP server (letters, digits, '.', '_', "
                                                 "'-', '@')")
    if "webdav_url" in data:
        changes["offsite_webdav_url"] = await _url(app, data, "webdav_url", offsite_webdav.check_url)
    if "webdav_user" in data:
        changes["offsite_webdav_user"] = _matching(data, "webdav_user", 128, offsite.ACCESS_KEY_RE,
                                                   "the user name on the WebDAV server, without spaces")
    if "webdav_password" in data:
        password = _matching(data, "webdav_password", 200, offsite.SECRET_RE,
                             "the (app) password, without spaces")
        changes["offsite_webdav_password_enc"] = notify.seal_account_secret(
            app, offsite_webdav.KIND, user_id, password) if password else None
    if "sftp_host_key" in data:
        text = _text(data, "sftp_host_key", 300)
        try:
            changes["offsite_sftp_host_key"] = offsite_sftp.check_host_key(text) if text else None
        except ValueError as exc:
            raise ApiError(400, "invalid_field", f"field 'sftp_host_key': {exc}") from None
    return changes


#: a kind whose secret goes only to the server it was given for: the field that moves it elsewhere, and the words
#: of ``_missing`` when the secret was dropped by such a move
MOVES_SECRET = {offsite.S3: ("offsite_endpoint", "a new endpoint needs the secret key again"),
                offsite.WEBDAV: ("offsite_webdav_url", "a new server needs the password again")}


def _missing(acc: Account, changes: dict[str, Any]) -> str:
    """What is still missing to switch the copies on, in words (``NEEDED``, named as the fields are)."""
    needed = NEEDED[acc.offsite_kind]
    missing = [attr for attr in needed if not getattr(acc, attr)]
    if missing == ["offsite_sftp_host_key"]:
        return ("test the connection first (POST /api/v1/me/offsite/test records the SFTP server's host key) or set "
                "'sftp_host_key' to its fingerprint, to switch off-site copies on")
    names = [attr.removeprefix("offsite_").removesuffix("_enc") for attr in missing if attr != "offsite_sftp_host_key"]
    moved, again = MOVES_SECRET.get(acc.offsite_kind, ("", ""))
    said = f" ({again})" if moved in changes and needed[-1] in missing else ""
    return f"set {', '.join(repr(n) for n in names)} to switch off-site copies on{said}"


async def test_offsite(request: Request) -> Response:
    """Write a small object into the saved bucket and delete it again: 200 when the write worked (``deleted``:
    false when the key may not delete, the object then stays), else 400 with the
    bucket's precise error (``no_such_bucket``, ``access_denied``, ``cannot_connect``, ``timeout``,
    ``bucket_error``; ``invalid_url`` for an endpoint this server may not reach)."""
    user, app = await _owner(request)
    acc = await app.db.run(lambda s: s.get(Account, user.id))
    if acc is not None and acc.offsite_kind == offsite.SFTP:
        return await _test_sftp(app, acc)
    if acc is not None and acc.offsite_kind == offsite.WEBDAV:
        return await _test_webdav(app, acc)
    if acc is None or not offsite.configured(acc):
        raise ApiError(409, "not_configured", "save the endpoint, bucket, access key id and secret key first")
    key, deleted = await _run_test("invalid_url", offsite.test_bucket, app, acc, offsite.open_secret(app, acc))
    return JSONResponse({"ok": True, "deleted": deleted,
                         "message": _wrote(key, f"in bucket {acc.offsite_bucket}", deleted, "key", "key",
                                                     acc.offsite_keep_days)})


async def _run_test(refused: str, test: Any, *args: Any) -> Any:
    """A destination's test in a thread (it connects and waits): a refused address as 400 ``refused``, the
    server's error as 400 with its code."""
    try:
        return await anyio.to_thread.run_sync(test, *args)
    except notify.TargetNotAllowed as exc:
        raise ApiError(400, refused, str(exc)) from None
    except offsite.BucketError as exc:
        raise ApiError(400, exc.code, str(exc)) from None


def _wrote(path: str, where: str, deleted: bool, who: str, secret: str, keep_days: int | None = None) -> str:
    """What a test wrote, and whether ``who`` (the key, the user) could delete it again (which "Keep copies for"
    needs)."""
    if deleted:
        return f"wrote and deleted {path} {where}"
    said = (f"wrote {path} {where}; this {who} may not delete it (good: whoever holds the {secret} cannot delete "
            "your copies either), remove it yourself")
    if keep_days:
        rules = " (or the bucket's lifecycle rules)" if who == "key" else ""
        said += (f"; but then copies older than {keep_days} days cannot be deleted here either: empty \"Keep copies "
                 f"for\" or use a {who} that may delete{rules}")
    return said


async def _test_sftp(app: AlarmCloud, acc: Account) -> Response:
    """Log in, write a small file into the folder and delete it; the first test trusts the host key it sees
    (``host_key_new``: compare it with the server's own, ``ssh-keygen -lf``)."""
    if not (acc.offsite_sftp_host and acc.offsite_sftp_user and acc.offsite_sftp_key_enc):
        raise ApiError(409, "not_configured", "save the SFTP server's host and user name first")
    path, deleted, seen = await _run_test("invalid_host", offsite_sftp.test_server, app, acc)
    new = not acc.offsite_sftp_host_key

    def _trust(s: Session) -> bool:
        fresh = s.get(Account, acc.id, with_for_update=True)
        assert fresh is not None
        same = (fresh.offsite_sftp_host, fresh.offsite_sftp_port) == (acc.offsite_sftp_host, acc.offsite_sftp_port)
        if not same or fresh.offsite_sftp_host_key:
            return False  # changed meanwhile: this test's key is not the one to trust
        fresh.offsite_sftp_host_key = seen
        s.add(fresh)
        s.commit()
        return True

    trusted = await app.db.run(_trust) if new else False
    said = _wrote(path, f"on {offsite_sftp.where(acc)}", deleted, "user", "key", acc.offsite_keep_days)
    if trusted:
        said += f". The server's host key {seen} is trusted from now on: compare it with the server's own " \
                "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)"
    return JSONResponse({"ok": True, "deleted": deleted, "message": said, "host_key": seen,
                         "host_key_new": trusted})


async def _test_webdav(app: AlarmCloud, acc: Account) -> Response:
    """Make the folder, write a small file into it and delete it again."""
    if not offsite_webdav.configured(acc):
        raise ApiError(409, "not_configured", "save the WebDAV URL, user name and password first")
    path, deleted = await _run_test("invalid_url", offsite_webdav.test_server, app, acc)
    return JSONResponse({"ok": True, "deleted": deleted,
                         "message": _wrote(path, f"in {acc.offsite_webdav_url}", deleted, "user", "password",
                                                 acc.offsite_keep_days)})


async def new_sftp_key(request: Request) -> Response:
    """Make a new SSH key for the SFTP copies (the old one stops working here at once): put its public line into
    ``~/.ssh/authorized_keys`` on the server instead of the old one. Answers with the settings."""
    user, app = await _owner(request)

    def _new(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        acc.offsite_sftp_key_enc, acc.offsite_sftp_public_key = offsite_sftp.new_key(app, acc.id)
        s.add(acc)
        s.commit()
        return offsite_json(s, acc)

    return JSONResponse(await app.db.run(_new))


async def retry_offsite(request: Request) -> Response:
    """Queue the copies that were given up (``given_up``) again, from their first attempt: after the bucket was
    away longer than the retries last, or after fixing the key. Answers with the settings and status."""
    user, app = await _owner(request)

    def _retry(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        if not acc.offsite_enabled or not offsite.configured(acc):
            raise ApiError(409, "not_enabled", "switch the off-site copies on first")
        offsite.retry_given_up(app, s, acc.id)
        s.commit()
        return offsite_json(s, acc)

    return JSONResponse(await app.db.run(_retry))


async def backfill_offsite(request: Request) -> Response:
    """Copy the clips already stored: queue one copy for each clip that matches ``scope`` and has none yet (queued,
    sent or given up), oldest first; optional ``since`` (ISO 8601: clips from then on) and ``camera_id``. Calling
    it again queues nothing new. Answers ``{"queued": n}`` with the settings and status (``waiting`` counts down).
    ``event_id`` alone: copy that one clip now, whatever ``scope`` says (once analysed)."""
    from alarmcloud.ingest import Rejected, parse_time
    from alarmcloud.models import Camera

    user, app = await _owner(request)
    data = await json_body(request, max_bytes=4096, optional=True)  # no body: every clip
    only_fields(data, {"since", "camera_id", "event_id"})
    if "event_id" in data:
        return await _copy_one(app, user, data)
    try:
        since = parse_time(field(data, "since", str, required=False, max_len=40))
    except Rejected:
        raise ApiError(400, "invalid_time", "field 'since' must be an ISO 8601 date or time, like 2026-11-01") from None
    camera_id = field(data, "camera_id", str, required=False, max_len=32)

    def _check(s: Session) -> None:
        acc = s.get(Account, user.id)
        assert acc is not None
        if not acc.offsite_enabled or not offsite.configured(acc):
            raise ApiError(409, "not_enabled", "switch the off-site copies on first")
        if camera_id is not None:
            cam = s.get(Camera, camera_id)
            if cam is None or cam.account_id != user.id:
                raise ApiError(404, "not_found", "no such camera")

    await app.db.run(_check)
    queued = await anyio.to_thread.run_sync(lambda: offsite.backfill(app, user.id, since, camera_id))

    def _state(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        return offsite_json(s, acc)

    return JSONResponse({"queued": queued, **await app.db.run(_state)})


async def prune_offsite(request: Request) -> Response:
    """Delete the copies older than ``keep_days`` now (``offsite_prune``: only the files alarmcloud wrote, never the
    copies of kept clips); ``{"dry_run": true}`` only counts them. Answers what was (or would be) deleted, with the
    settings and status; 409 ``not_configured`` without ``keep_days`` or a saved destination, 400 with the
    server's error (``access_denied`` for a key or user that may not delete)."""
    user, app = await _owner(request)
    data = await json_body(request, max_bytes=4096, optional=True)
    only_fields(data, {"dry_run"})
    dry_run = bool(field(data, "dry_run", bool, required=False, default=False))
    acc = await app.db.run(lambda s: s.get(Account, user.id))
    refused = "invalid_host" if acc is not None and acc.offsite_kind == offsite.SFTP else "invalid_url"
    try:
        result = await _run_test(refused, offsite_prune.run, app, user.id, dry_run)
    except ApiError as exc:
        if exc.code == "not_configured":
            raise ApiError(409, "not_configured", exc.message) from None
        raise

    def _state(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id)
        assert acc is not None
        return offsite_json(s, acc)

    return JSONResponse({"result": result.as_json(), **await app.db.run(_state)})


async def _copy_one(app: AlarmCloud, user: User, data: dict[str, Any]) -> Response:
    """``backfill`` of one clip: 404 for a clip that is not the owner's, 409 ``not_analysed`` while it is analysed,
    ``too_old`` when its copy would be deleted as an old one at once."""
    from alarmcloud.models import Clip

    if len(data) > 1:
        raise ApiError(400, "invalid_field", "'event_id' copies one clip: send it without 'since' and 'camera_id'")
    event_id = field(data, "event_id", str, max_len=32)

    def _queue(s: Session) -> dict[str, Any]:
        acc = s.get(Account, user.id, with_for_update=True)
        assert acc is not None
        if not acc.offsite_enabled or not offsite.configured(acc):
            raise ApiError(409, "not_enabled", "switch the off-site copies on first")
        clip = s.get(Clip, event_id)
        if clip is None or clip.account_id != user.id or not clip.blob_key:
            raise ApiError(404, "not_found", "no such event")
        if clip.status not in ("done", "failed"):  # pending, or skipped (stored while processing was restricted)
            raise ApiError(409, "not_analysed", "the clip is still being analysed: copy it when its verdict is in"
                           if clip.status == "pending" else "the clip was stored without analysis (processing was "
                           "restricted) and is not copied")
        if offsite_prune.too_old(acc, clip):
            raise ApiError(409, "too_old", f"the clip is older than the {acc.offsite_keep_days} days of copies kept "
                                           "(its copy would be deleted at once): keep the clip, or keep copies longer")
        queued = offsite.queue_one(app, s, acc, clip)
        s.commit()
        return {"queued": int(queued), **offsite_json(s, acc)}

    return JSONResponse(await app.db.run(_queue))


#: seconds between two looks for copies that do not arrive (``offsite.check_failing``) and for old copies to
#: delete (``offsite_prune.run_due``: once a day per account)
CHECK_INTERVAL = 600.0


async def background(app: AlarmCloud) -> None:
    """Tell owners whose copies do not arrive, and delete old copies where owners asked for it, every
    ``CHECK_INTERVAL`` seconds while the server runs."""
    if not app.settings.offsite.enabled:
        return
    while True:
        await anyio.sleep(CHECK_INTERVAL)
        for job, what in ((offsite.check_failing, "failure check"), (offsite_prune.run_due, "deletion of old copies")):
            try:
                await anyio.to_thread.run_sync(job, app)
            except Exception:
                log.exception("off-site %s failed", what)


def routes(app: AlarmCloud) -> list[BaseRoute]:
    """Mounted by ``create_app`` (a core feature module)."""
    return [
        Route("/api/v1/me/offsite", get_offsite, methods=["GET"]),
        Route("/api/v1/me/offsite", update_offsite, methods=["PATCH"]),
        Route("/api/v1/me/offsite/test", test_offsite, methods=["POST"]),
        Route("/api/v1/me/offsite/sftp-key", new_sftp_key, methods=["POST"]),
        Route("/api/v1/me/offsite/retry", retry_offsite, methods=["POST"]),
        Route("/api/v1/me/offsite/backfill", backfill_offsite, methods=["POST"]),
        Route("/api/v1/me/offsite/prune", prune_offsite, methods=["POST"]),
    ]
