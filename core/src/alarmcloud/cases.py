"""Cases: the owner's collections of the clips of one incident (a break-in, a damaged car, a parcel gone).

A case has a name and notes; its clips are kept while they are in it (``Clip.kept_at``: retention and the quota's
eviction leave them alone, within the same share of the quota as other kept clips) and cannot be let go on the clip
until they are taken out of the case. A clip is in at most one case. ``GET /api/v1/cases/{id}/download`` streams the
case as one ZIP for the police or an insurer: the videos, ``case.json`` (the name, the notes, every clip with its
camera, time, verdict, findings and the SHA-256 of its video) and ``SHA256SUMS`` (``sha256sum -c`` checks them);
the case then says when it was last downloaded. Cases are the owner's (sub-users: 403): a case spans every camera.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import func, update
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from alarmcloud import clipaccess, crypto
from alarmcloud.auth import User, core, require_owner
from alarmcloud.download import counted, lay_out, rows_for, safe_name
from alarmcloud.errors import ApiError, field, json_body, only_fields
from alarmcloud.eventsapi import display_name, query_events, ranged
from alarmcloud.models import Account, Case, Clip, aware, iso, lock_account, utcnow
from alarmcloud.notify import queue_share_notice
from alarmcloud.storage import kept_bytes, kept_limit_bytes
from alarmcloud.units import human_bytes
from alarmcloud.zipstream import SizedMember, SizedZip

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

#: cases per account
MAX_CASES = 200
#: characters of a case's notes
MAX_NOTES = 5000


def _notes(data: dict[str, Any]) -> str:
    notes = field(data, "notes", str, required=False, default="", max_len=MAX_NOTES)
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in notes):
        raise ApiError(400, "invalid_field", "notes must not contain control characters other than line breaks "
                                             "and tabs")
    return notes.replace("\r\n", "\n").strip()


def _event_ids(data: dict[str, Any], required: bool) -> list[str]:
    ids = data.get("event_ids")
    if ids is None and not required:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids) or (
            required and not ids):
        raise ApiError(400, "invalid_field", "event_ids must be a list of event ids"
                       + (" (at least one)" if required else ""))
    return list(dict.fromkeys(ids))


def cases_json(s: Session, cases: list[Case]) -> list[dict[str, Any]]:
    """Cases with what their clips add up to (count, bytes, first and last recording, cameras): two queries for
    any number of cases."""
    ids = [c.id for c in cases]
    sums = {row[0]: row[1:] for row in s.exec(select(
        Clip.case_id, func.count(col(Clip.id)), func.coalesce(func.sum(Clip.size_bytes), 0),
        func.min(Clip.started_at), func.max(Clip.started_at)).where(col(Clip.case_id).in_(ids)).group_by(
        Clip.case_id)).all()} if ids else {}
    cameras: dict[str, list[str]] = {}
    for case_id, camera_id in (s.exec(select(Clip.case_id, Clip.camera_id).where(col(Clip.case_id).in_(ids))
                                      .distinct()).all() if ids else []):
        cameras.setdefault(str(case_id), []).append(camera_id)
    out = []
    for case in cases:
        count, size, first, last = sums.get(case.id, (0, 0, None, None))
        out.append({"id": case.id, "name": case.name, "notes": case.notes, "created_at": iso(case.created_at),
                    "updated_at": iso(case.updated_at),
                    "exported_at": iso(case.exported_at) if case.exported_at else None,
                    "event_count": int(count), "size_bytes": int(size),
                    "first_at": iso(aware(first)) if first else None, "last_at": iso(aware(last)) if last else None,
                    "camera_ids": sorted(cameras.get(case.id, [])), "share": share_json(case)})
    return out


def owner_cases(s: Session, user: User) -> list[dict[str, Any]]:
    """The caller's cases, newest first, as ``cases_json``."""
    return cases_json(s, list(s.exec(select(Case).where(Case.account_id == user.tenant_id).order_by(
        col(Case.created_at).desc(), col(Case.id))).all()))


def case_for(s: Session, user: User, case_id: str, lock: bool = False) -> Case:
    """The caller's case, or 404 (another account's too); ``lock``: locked until the transaction ends, after the
    account's row (``lock_account``: the order every change of a case and an erasure take them in)."""
    if len(case_id) > 32:
        case = None
    elif lock:
        lock_account(s, user.tenant_id)
        case = s.get(Case, case_id, with_for_update=True, populate_existing=True)
    else:
        case = s.get(Case, case_id)
    if case is None or case.account_id != user.tenant_id:
        raise ApiError(404, "not_found", "case not found")
    return case


def case_detail(s: Session, user: User, case: Case) -> dict[str, Any]:
    """The case and its events, oldest first (the order of what happened)."""
    (out,) = cases_json(s, [case])
    items, _ = query_events(s, user, {"case_id": case.id}, MAX_CASE_EVENTS_SHOWN, names=True)
    out["events"] = items[::-1]
    return out


def case_choices(s: Session, user: User) -> list[dict[str, str]] | None:
    """The owner's cases to put clips into (newest first); None for a sub-user (cases are the owner's)."""
    if user.account.owner_id is not None:
        return None
    rows = s.exec(select(Case.id, Case.name).where(Case.account_id == user.tenant_id).order_by(
        col(Case.created_at).desc(), col(Case.id))).all()
    return [{"id": i, "name": n} for i, n in rows]


#: events ``GET /cases/{id}`` lists (a case holds at most ``storage.download_max_clips``: one download)
MAX_CASE_EVENTS_SHOWN = 10_000


def add_events(s: Session, app: AlarmCloud, user: User, case: Case, ids: list[str]) -> None:
    """Put the clips ``ids`` into ``case`` and keep them: all or none. 404 for an id of no clip of the account;
    409 ``in_another_case``, ``case_full`` (more than one download's clips) or ``keep_limit`` (the kept share)."""
    lock_account(s, user.tenant_id)  # adds at once never pass the limits together
    clips = list(s.exec(select(Clip).where(col(Clip.id).in_(ids), Clip.account_id == user.tenant_id)
                        .with_for_update()).all())
    if len(clips) != len(ids):
        raise ApiError(404, "not_found", "event not found (one or more of the ids)")
    elsewhere = sorted({c.case_id for c in clips if c.case_id not in (None, case.id)})
    if elsewhere:
        names = ", ".join(f"“{other.name}”" for other in (s.get(Case, cid) for cid in elsewhere) if other)
        raise ApiError(409, "in_another_case", f"a clip is in another case already ({names}): take it out there "
                                               "first")
    new = [c for c in clips if c.case_id is None]
    most = app.settings.storage.download_max_clips
    has = s.exec(select(func.count(col(Clip.id))).where(Clip.case_id == case.id)).one()
    if has + len(new) > most:
        raise ApiError(409, "case_full", f"a case holds at most {most} clips (one download); it has {has}")
    to_keep = sum(c.size_bytes for c in new if c.kept_at is None)
    if to_keep:
        limit = kept_limit_bytes(app.settings, s.get(Account, user.tenant_id))
        already = kept_bytes(s, user.tenant_id)
        if already + to_keep > limit:
            raise ApiError(409, "keep_limit", f"clips in cases are kept, and kept clips may fill {human_bytes(limit)} "
                                              f"of your storage; {human_bytes(already)} are kept and these would "
                                              f"add {human_bytes(to_keep)}: stop keeping or delete some first")
    now = utcnow()
    for c in new:
        c.case_id = case.id
        c.kept_at = c.kept_at or now
        s.add(c)
    case.updated_at = now
    s.add(case)


# ---------------------------------------------------------------- endpoints


async def cases(request: Request) -> Response:
    """GET: the owner's cases, newest first. POST ``{"name", "notes"?, "event_ids"?}``: a new case (201), with
    those events in it (kept)."""
    user = await require_owner(request, "cases")
    app = core(request)
    if request.method == "GET":
        return JSONResponse({"items": await app.db.run(lambda s: owner_cases(s, user))})
    data = await json_body(request)
    only_fields(data, {"name", "notes", "event_ids"})
    name, notes, ids = display_name(data), _notes(data), _event_ids(data, required=False)

    def _add(s: Session) -> dict[str, Any]:
        lock_account(s, user.tenant_id)
        n = s.exec(select(func.count(col(Case.id))).where(Case.account_id == user.tenant_id)).one()
        if n >= MAX_CASES:
            raise ApiError(409, "case_limit", f"at most {MAX_CASES} cases per account: delete one you closed")
        case = Case(account_id=user.tenant_id, name=name, notes=notes)
        s.add(case)
        s.flush()
        if ids:
            add_events(s, app, user, case, ids)
        s.commit()
        return case_detail(s, user, case)

    return JSONResponse(await app.db.run(_add), status_code=201)


async def one_case(request: Request) -> Response:
    """GET: the case and its events (oldest first). PATCH ``{"name"?, "notes"?}``. DELETE: the case goes; its
    clips leave it and stay kept (let them go on each clip, or delete them)."""
    user = await require_owner(request, "cases")
    app = core(request)
    cid = request.path_params["case_id"]
    if request.method == "GET":
        return JSONResponse(await app.db.run(lambda s: case_detail(s, user, case_for(s, user, cid))))
    if request.method == "DELETE":
        def _delete(s: Session) -> None:
            case = case_for(s, user, cid, lock=True)
            s.execute(update(Clip).where(col(Clip.case_id) == case.id).values(case_id=None))
            s.delete(case)
            s.commit()

        await app.db.run(_delete)
        return Response(status_code=204)
    data = await json_body(request)
    only_fields(data, {"name", "notes"})
    name = display_name(data) if "name" in data else None
    notes = _notes(data) if "notes" in data else None

    def _save(s: Session) -> dict[str, Any]:
        case = case_for(s, user, cid, lock=True)
        case.name = name if name is not None else case.name
        case.notes = notes if notes is not None else case.notes
        case.updated_at = utcnow()
        s.add(case)
        s.commit()
        return case_detail(s, user, case)

    return JSONResponse(await app.db.run(_save))


async def case_events(request: Request) -> Response:
    """POST ``{"event_ids": [...]}``: put events into the case (they are kept from then on; all or none)."""
    user = await require_owner(request, "cases")
    app = core(request)
    cid = request.path_params["case_id"]
    data = await json_body(request)
    only_fields(data, {"event_ids"})
    ids = _event_ids(data, required=True)

    def _add(s: Session) -> dict[str, Any]:
        case = case_for(s, user, cid, lock=True)
        add_events(s, app, user, case, ids)
        s.commit()
        return case_detail(s, user, case)

    return JSONResponse(await app.db.run(_add))


async def case_event(request: Request) -> Response:
    """DELETE: take the event out of the case; its clip stays kept (``PATCH /events/{id} {"kept": false}`` lets it
    go)."""
    user = await require_owner(request, "cases")
    app = core(request)
    cid, eid = request.path_params["case_id"], request.path_params["event_id"]

    def _remove(s: Session) -> dict[str, Any]:
        case = case_for(s, user, cid, lock=True)
        clip = s.get(Clip, eid, with_for_update=True, populate_existing=True) if len(eid) <= 32 else None
        if clip is None or clip.case_id != case.id:
            raise ApiError(404, "not_found", "the event is not in this case")
        clip.case_id = None
        case.updated_at = utcnow()
        s.add(clip)
        s.add(case)
        s.commit()
        return case_detail(s, user, case)

    return JSONResponse(await app.db.run(_remove))


def _manifest(case: dict[str, Any], rows: list[dict[str, Any]], events: dict[str, dict[str, Any]],
              exported_at: datetime) -> bytes:
    """``case.json``: the case and, per clip, what the server knows and the SHA-256 of the file (here still the
    row's ``sha256`` stand-in: ``_HashedTail`` puts the digest in its place)."""
    clips = [{**{k: events[r["id"]].get(k) for k in ("id", "camera_id", "camera_name", "started_at", "received_at",
                                                      "duration", "verdict", "findings", "original_name")},
              "file": r.get("file"), "sha256": r.get("sha256"), "size_bytes": r.get("size")} for r in rows]
    body = {"format": "alarmcloud-case/1", "exported_at": iso(exported_at),
            "case": {k: case[k] for k in ("id", "name", "notes", "created_at", "updated_at")}, "clips": clips}
    return json.dumps(body, indent=1, ensure_ascii=False).encode()


class _Hashing:
    """A stored video opened for the ZIP: what is read from it goes into a SHA-256 too, which ``done`` gets when
    every one of its ``size`` bytes was read (a resumed download reads only a part of some videos)."""

    def __init__(self, fh: BinaryIO, size: int, done: Callable[[Any], None]) -> None:
        self.fh, self.size, self.done = fh, size, done
        self.digest, self.pos = hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        piece = self.fh.read(n)
        self.digest.update(piece)
        self.pos += len(piece)
        return piece

    def seek(self, offset: int, whence: int = 0) -> int:
        """Forward only (a resumed download starting inside this video): the bytes before are read and hashed."""
        if whence != 0 or offset < self.pos:
            raise io.UnsupportedOperation("a case's video is read from its start")  # its digest needs every byte
        while self.pos < offset and self.read(min(1024 * 1024, offset - self.pos)):
            pass
        return self.pos

    def __enter__(self) -> _Hashing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()
        if self.pos == self.size and exc[0] is None:
            self.done(self.digest)


_HEX64 = re.compile(rb"[0-9a-f]{64}")


class _HashedTail:
    """The videos' SHA-256 digests are taken as the ZIP streams them (each video is read once, and the first byte
    goes out at once, not after every video was read): ``case.json`` and ``SHA256SUMS`` come last, laid out with a
    64-character stand-in per video (their sizes are known up front) that is replaced by the digest when they are
    written."""

    def __init__(self, app: AlarmCloud, present: list[dict[str, Any]]) -> None:
        self.app = app
        self.stand_in = {r["file"]: secrets.token_hex(32) for r in present}  # as long as a hex SHA-256
        self.digests: dict[str, Any] = {}
        self.present = present
        for r in present:
            r["sha256"] = self.stand_in[r["file"]]

    def opener(self, r: dict[str, Any]) -> Callable[[], BinaryIO]:
        def _open() -> BinaryIO:
            return _Hashing(self.app.blobs.open(r["blob_key"]), r["size"],  # type: ignore[return-value]
                            lambda digest: self.digests.__setitem__(r["file"], digest))
        return _open

    def filled(self, laid_out: bytes) -> Callable[[], BinaryIO]:
        def _open() -> BinaryIO:
            for r in self.present:  # a resumed download that starts after a video: read it for its digest
                if r["file"] not in self.digests:
                    with self.opener(r)() as fh:
                        while fh.read(1024 * 1024):
                            pass
                if r["file"] not in self.digests:
                    raise ValueError(f"{r['file']}: its size changed since the archive was laid out")
            digest = {stand_in.encode(): self.digests[file].hexdigest().encode()
                      for file, stand_in in self.stand_in.items()}
            # one pass over the file; 64 hex digits that are no stand-in (in the notes) stay as they are
            return io.BytesIO(_HEX64.sub(lambda m: digest.get(m.group(), m.group()), laid_out))
        return _open


async def _send_case(app: AlarmCloud, owner: User, case_id: str,
                     fetched: Callable[[Session, Case, datetime], None], request: Request,
                     shared: bool = False) -> Response:
    """The case as one ZIP, streamed with its length known: the videos as ``<camera>/<UTC time>_<verdict>.mp4``,
    then ``case.json`` and ``SHA256SUMS`` (``_HashedTail``); ``fetched`` records the hand-over on the case. 409
    ``empty_case`` for a case without clips.

    The owner's own download (not ``shared``: through the case's link) serves HTTP ``Range``: a download that broke
    off resumes where it stopped. The ZIP is laid out again exactly as the last download's (its time is the case's
    ``exported_at``, which only a whole download sets) and its ETag names the case's content and that time, so a
    resume with ``If-Range`` after the case changed gets the whole new ZIP instead of a part that would not fit."""

    def _load(s: Session) -> tuple[dict[str, Any], list[dict[str, Any]], datetime | None]:
        case = case_for(s, owner, case_id)
        detail = case_detail(s, owner, case)
        ids = [e["id"] for e in detail["events"]]
        if not ids:
            raise ApiError(409, "empty_case", "the case has no clips yet: add some from their clip pages")
        return detail, rows_for(s, owner, ids, {}, len(ids)), aware(case.exported_at) if case.exported_at else None

    detail, rows, last = await app.db.run(_load)
    resume = not shared and bool(request.headers.get("range")) and last is not None
    now = last if resume and last is not None else utcnow().replace(microsecond=0)

    def _build(when: datetime) -> tuple[SizedZip, str]:
        present = lay_out(app, rows)
        tail = _HashedTail(app, present)
        manifest = _manifest(detail, rows, {e["id"]: e for e in detail["events"]}, when)
        sums = "".join(f"{r['sha256']}  {r['file']}\n" for r in present).encode()
        members = [SizedMember(r["file"], r["size"], tail.opener(r)) for r in present]
        members += [SizedMember("case.json", len(manifest), tail.filled(manifest)),
                    SizedMember("SHA256SUMS", len(sums), tail.filled(sums))]
        content = json.dumps([case_id, {k: detail[k] for k in ("name", "notes", "updated_at")}, iso(when),
                              [(r["id"], r["file"], r["blob_key"], r["size"]) for r in present]])
        return SizedZip(members, when), '"case-' + hashlib.sha256(content.encode()).hexdigest()[:40] + '"'

    archive, etag = await asyncio.to_thread(_build, now)
    headers = {"Cache-Control": "no-store", "X-Clip-Count": str(len(archive.members) - 2)}
    start, end, status = 0, archive.size - 1, 200
    if not shared:
        headers.update({"Accept-Ranges": "bytes", "ETag": etag})
        asked = ranged(request, etag, archive.size, headers) if resume else (0, archive.size - 1, 200)
        if isinstance(asked, Response):
            return asked
        start, end, status = asked
        if status == 200 and resume:  # the case changed since (If-Range): the whole ZIP as it is now
            now = utcnow().replace(microsecond=0)
            archive, etag = await asyncio.to_thread(_build, now)
            start, end, headers["ETag"] = 0, archive.size - 1, etag
    headers["Content-Length"] = str(end + 1 - start)

    if status == 200:  # a whole download is a hand-over; a resumed one is the same download
        def _mark(s: Session) -> None:
            case = s.get(Case, case_id, with_for_update=True)
            if case is not None:
                fetched(s, case, now)
                s.add(case)
                s.commit()

        await app.db.run(_mark)
        # the owner sees who fetched it (the owner, or someone with the link)
        await clipaccess.record(app, request, None if shared else owner, "case", case_id,
                                clips=len(archive.members) - 2, tenant_id=owner.tenant_id)
    stem = safe_name(detail["name"], "", 60).encode("ascii", "ignore").decode().replace(" ", "-") or "case"
    name = f"case-{stem}-{now:%Y%m%d}.zip"  # an ASCII header; the case's own name is in case.json
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return StreamingResponse(counted(app, owner.tenant_id, archive.pieces(start, end + 1), end + 1 - start),
                             status_code=status, media_type="application/zip", headers=headers)


async def download_case(request: Request) -> Response:
    """The case as one ZIP (``_send_case``); the case's ``exported_at`` says when (the owner sees what they handed
    over)."""
    user = await require_owner(request, "cases")

    def _fetched(s: Session, case: Case, now: datetime) -> None:
        case.exported_at = now

    return await _send_case(core(request), user, request.path_params["case_id"], _fetched, request)


# ---------------------------------------------------------------- sharing by link

#: the longest a case's link serves, and how long when the owner does not say
MAX_SHARE_DAYS = 30
DEFAULT_SHARE_DAYS = 7
#: the most downloads a link may allow, and how many when the owner does not say (a link that got out cannot cost
#: the owner's traffic without end)
MAX_SHARE_FETCHES = 100
DEFAULT_SHARE_FETCHES = 10


def share_json(case: Case, now: datetime | None = None) -> dict[str, Any] | None:
    """The case's link for someone without an account (never its token: shown once), or None."""
    if case.share_hash is None or case.share_expires_at is None:
        return None
    return {"created_at": iso(case.share_created_at) if case.share_created_at else None,
            "expires_at": iso(case.share_expires_at), "expired": aware(case.share_expires_at) <= (now or utcnow()),
            "fetches": case.share_fetches, "max_downloads": case.share_max_fetches,
            "used_up": case.share_max_fetches is not None and case.share_fetches >= case.share_max_fetches,
            "last_fetch_at": iso(case.share_last_fetch_at) if case.share_last_fetch_at else None}


async def case_share(request: Request) -> Response:
    """POST ``{"days"?, "max_downloads"?}``: a link that serves the case's ZIP to whoever has it, without an
    account, for ``days`` (1-30, default 7) and ``max_downloads`` downloads (1-100, default 10): 201 ``{"url",
    "page_url", "expires_at", "max_downloads"}``, shown once (only its hash is stored); a new link replaces the
    case's earlier one. DELETE: the link stops serving (204)."""
    user = await require_owner(request, "cases")
    app = core(request)
    cid = request.path_params["case_id"]
    if request.method == "POST" and not app.settings.privacy.case_links:
        raise ApiError(404, "not_available", "links to cases are switched off on this server")
    if request.method == "DELETE":
        def _stop(s: Session) -> None:
            case = case_for(s, user, cid, lock=True)
            case.share_hash = case.share_created_at = case.share_expires_at = case.share_last_fetch_at = None
            case.share_fetches, case.share_max_fetches = 0, None
            s.add(case)
            s.commit()

        await app.db.run(_stop)
        return Response(status_code=204)
    data = await json_body(request)  # {} for the default
    only_fields(data, {"days", "max_downloads"})
    days = field(data, "days", int, required=False, default=DEFAULT_SHARE_DAYS)
    if not 1 <= days <= MAX_SHARE_DAYS:
        raise ApiError(400, "invalid_field", f"days must be 1 to {MAX_SHARE_DAYS}")
    downloads = field(data, "max_downloads", int, required=False, default=DEFAULT_SHARE_FETCHES)
    if not 1 <= downloads <= MAX_SHARE_FETCHES:
        raise ApiError(400, "invalid_field", f"max_downloads must be 1 to {MAX_SHARE_FETCHES}")
    token = secrets.token_urlsafe(32)

    def _share(s: Session) -> dict[str, Any]:
        case = case_for(s, user, cid, lock=True)
        now = utcnow().replace(microsecond=0)
        case.share_hash, case.share_created_at = crypto.token_hash(token), now
        case.share_expires_at, case.share_fetches, case.share_last_fetch_at = now + timedelta(days=days), 0, None
        case.share_max_fetches = downloads
        s.add(case)
        s.commit()
        return {"expires_at": iso(case.share_expires_at), "max_downloads": downloads}

    out = await app.db.run(_share)
    base = app.settings.public_url.rstrip("/")
    return JSONResponse({"url": f"{base}/api/v1/shared-cases/{token}", "page_url": f"{base}/shared/{token}", **out},
                        status_code=201)


def shared_case(s: Session, app: AlarmCloud, token: str) -> tuple[Case, User]:
    """The case a link's token names and its owner (as the caller its clips are read for): 404 for a token that
    names none (stopped, replaced, the case deleted, links switched off), 410 ``link_expired`` after its time."""
    if not app.settings.privacy.case_links:
        raise ApiError(404, "not_found", "links to cases are switched off on this server")
    case = s.exec(select(Case).where(Case.share_hash == crypto.token_hash(token))).first() if (
        0 < len(token) <= 64) else None
    owner = s.get(Account, case.account_id) if case is not None else None
    if case is None or owner is None or case.share_expires_at is None:
        raise ApiError(404, "not_found", "no case is shared with this link (it was stopped or replaced)")
    if aware(case.share_expires_at) <= utcnow():
        raise ApiError(410, "link_expired", "this link has expired: ask for a new one")
    used_up(case)
    return case, User(owner, "share")


def used_up(case: Case) -> None:
    """410 ``link_used_up`` once the link was downloaded as often as it allows."""
    if case.share_max_fetches is not None and case.share_fetches >= case.share_max_fetches:
        raise ApiError(410, "link_used_up", f"this link was downloaded {case.share_fetches} times, as often as it "
                                            "allows: ask for a new one")


async def download_shared(request: Request) -> Response:
    """``GET /api/v1/shared-cases/{token}``: the case's ZIP for whoever has the link (no account): counted as the
    owner's download traffic; the case counts the fetch."""
    app = core(request)
    case, owner = await app.db.run(lambda s: shared_case(s, app, request.path_params["token"]))

    def _fetched(s: Session, row: Case, now: datetime) -> None:
        if row.share_hash != case.share_hash:
            raise ApiError(404, "not_found", "no case is shared with this link (it was stopped or replaced)")
        used_up(row)  # again with the case locked: downloads at once never pass the limit together
        row.share_fetches += 1
        row.share_last_fetch_at = row.exported_at = now
        if row.share_fetches == 1:  # the first use of this link: the owner hears of it
            queue_share_notice(app, s, row.account_id, row.id, row.name)

    return await _send_case(app, owner, case.id, _fetched, request, shared=True)
