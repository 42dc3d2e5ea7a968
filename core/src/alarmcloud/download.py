"""Bulk download: a streamed ZIP of chosen alarm clips (by id, or every clip matching the timeline's filters).

The ZIP holds ``events.json`` (what each file is) and the MP4s as ``<camera>/<UTC time>_<verdict>.mp4``. Every
check (the caller's rights on every clip, the limit) is made before the first byte is sent; the ZIP is then
written as the clips are read (never built in memory).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sqlalchemy import delete
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from alarmcloud import clipaccess
from alarmcloud.auth import User, check_csrf, core, require_user, signed_in_user, visible_camera_ids
from alarmcloud.errors import ApiError, json_body
from alarmcloud.eventsapi import query_events, ranged
from alarmcloud.models import Camera, Clip, DownloadLink, FindingRow, aware, iso, utcnow
from alarmcloud.zipstream import SizedMember, SizedZip

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

#: the filters of ``GET /api/v1/events`` a download accepts
FILTERS = ("camera_id", "site", "since", "until", "label", "verdict", "plate", "plates", "kept", "case_id")
#: every field a request body may have
FIELDS = {"ids", "all", "count_only", "link", *FILTERS}
#: a form post (the web UI's download button) may also carry the CSRF token as a field
FORM_FIELDS = FIELDS | {"csrf_token"}
MAX_BODY = 64 * 1024
_UNSAFE = re.compile(r"[^\w.\- ]+")
#: how long a download link serves
LINK_LIFETIME = timedelta(hours=24)
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_name(value: str, fallback: str, max_len: int = 80) -> str:
    """A file or folder name that is the same on every system: letters, digits, ``.-_`` and single spaces; no path
    separators, nothing at the ends that could make ``..`` or a hidden file, no control characters, never empty."""
    text = _UNSAFE.sub(" ", unicodedata.normalize("NFC", value))
    text = " ".join(text.split()).strip(" ._-")[:max_len].strip(" ._-")
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    return text or fallback


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3`` … when it is taken (case-insensitively: not every disk tells apart)."""
    stem, dot, ext = name.rpartition(".") if "." in name.rsplit("/", 1)[-1] else (name, "", "")
    out, n = name, 1
    while out.lower() in taken:
        n += 1
        out = f"{stem}-{n}{dot}{ext}"
    taken.add(out.lower())
    return out


def file_names(rows: list[dict[str, Any]]) -> list[str]:
    """``<camera>/<UTC time>_<verdict>.mp4`` for each row, unique in the archive (same-named cameras get their
    own folders, clips in the same second a suffix)."""
    folders: dict[str, str] = {}
    taken_folders: set[str] = set()
    taken: set[str] = set()
    out = []
    for r in rows:
        cam = r["camera_id"]
        if cam not in folders:
            folders[cam] = _unique(safe_name(r["camera"] or "", "camera"), taken_folders)
        when = datetime.fromisoformat(r["time"]).strftime("%Y-%m-%dT%H-%M-%SZ")
        verdict = safe_name((r["verdict"] or r["status"] or "pending").replace(":", "-"), "pending", 40)
        out.append(_unique(f"{folders[cam]}/{when}_{verdict}.mp4", taken))
    return out


# ---------------------------------------------------------------- the request


async def _caller_and_body(request: Request) -> tuple[User, dict[str, Any]]:
    """The caller and the body: JSON for scripts; a form post (the web UI, which lets the browser save the ZIP
    as it comes) with repeated ``ids`` fields and the CSRF token as the field ``csrf_token``."""
    user = await signed_in_user(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    sent: str | None = None
    if ctype == "application/x-www-form-urlencoded":
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                raise ApiError(413, "payload_too_large", f"form body larger than {MAX_BODY} bytes")
        try:
            form = parse_qs(raw.decode(), keep_blank_values=False, strict_parsing=False)
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_body", "the form is not valid UTF-8") from None
        unknown = sorted(set(form) - FORM_FIELDS)
        if unknown:
            raise ApiError(400, "unknown_field", f"unknown field: {', '.join(unknown)}")
        sent = (form.get("csrf_token") or [""])[0]
        body: dict[str, Any] = {k: v[0] for k, v in form.items() if k not in ("ids", "csrf_token")}
        for flag in ("all", "count_only", "link"):
            if flag in body:
                body[flag] = body[flag].lower() in ("1", "true", "on", "yes")
        if "ids" in form:
            body["ids"] = [i for v in form["ids"] for i in v.split(",") if i.strip()]
    else:
        body = {}
    check_csrf(request, user, sent, reads=True)  # the body only chooses clips to read
    if ctype != "application/x-www-form-urlencoded":
        body = await json_body(request, MAX_BODY)
    return user, body


def _selection(body: dict[str, Any], max_clips: int) -> tuple[list[str] | None, dict[str, str]]:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field: {', '.join(unknown)}; allowed: "
                                             f"{', '.join(sorted(FIELDS))}")
    filters: dict[str, str] = {}
    for k in FILTERS:
        v = body.get(k)
        if v is None or v == "":
            continue
        if k == "kept" and isinstance(v, bool):
            v = "true" if v else "false"  # the query parameter's words
        if not isinstance(v, str) or len(v) > 200:
            raise ApiError(400, "invalid_field", f"{k} must be a string of at most 200 characters")
        filters[k] = v
    for flag in ("all", "count_only", "link"):
        if flag in body and not isinstance(body[flag], bool):
            raise ApiError(400, "invalid_field", f"{flag} must be true or false")
    ids = body.get("ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
            raise ApiError(400, "invalid_field", "ids must be a list of event ids")
        if filters or body.get("all"):
            raise ApiError(400, "ambiguous_selection", "send either ids or filters (or all), not both")
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise ApiError(400, "no_selection", "ids is empty: choose at least one event")
        if len(ids) > max_clips:
            raise ApiError(413, "too_many_clips", f"{len(ids)} events chosen; at most {max_clips} can be "
                                                  "downloaded at once (the data export has every clip)")
        return ids, filters
    if not filters and not body.get("all"):
        raise ApiError(400, "no_selection", "choose events: send ids, filters (camera_id, since, until, label, "
                                            "verdict, plate, plates, kept, site, case_id) or \"all\": true")
    return None, filters


def rows_for(s: Session, user: User, ids: list[str] | None, filters: dict[str, str],
          max_clips: int) -> list[dict[str, Any]]:
    """The chosen clips, oldest first, with what ``events.json`` says about them (404 for any id the caller may
    not see, 413 above the limit)."""
    if ids is None:
        items, more = query_events(s, user, filters, max_clips)
        if more:
            raise ApiError(413, "too_many_clips", f"more than {max_clips} events match; narrow the filters (for "
                                                  "example to one day) or use the data export for every clip")
        ids = [it["id"] for it in items]
        if not ids:
            raise ApiError(404, "no_events", "no events match these filters")
    q = select(Clip).where(col(Clip.id).in_(ids), Clip.account_id == user.tenant_id)
    visible = visible_camera_ids(s, user)
    if visible is not None:
        q = q.where(col(Clip.camera_id).in_(visible))
    clips = list(s.exec(q).all())
    if len(clips) != len(ids):
        raise ApiError(404, "not_found", "event not found (one or more of the ids)")
    clips.sort(key=lambda c: (aware(c.started_at), c.id))
    labels: dict[str, set[str]] = {}
    plates: dict[str, set[str]] = {}
    for f in s.exec(select(FindingRow).where(col(FindingRow.clip_id).in_(ids))).all():
        labels.setdefault(f.clip_id, set()).add(f.label)
        if f.label == "plate" and f.text:
            plates.setdefault(f.clip_id, set()).add(f.text)
    names = {c.id: c.name for c in s.exec(select(Camera).where(Camera.account_id == user.tenant_id)).all()}
    return [{"id": c.id, "camera_id": c.camera_id, "camera": names.get(c.camera_id), "time": iso(c.started_at),
             "verdict": c.verdict, "status": c.status, "labels": sorted(labels.get(c.id, ())),
             "plates": sorted(plates.get(c.id, ())), "duration": c.duration, "blob_key": c.blob_key}
            for c in clips]


def _index(rows: list[dict[str, Any]], exported_at: datetime) -> bytes:
    """``events.json``: what each file of the ZIP is (rows without a video too, with ``file`` null)."""
    events = [{"id": r["id"], "camera_id": r["camera_id"], "camera": r["camera"], "time": r["time"],
               "verdict": r["verdict"], "labels": r["labels"], "plates": r["plates"], "duration": r["duration"],
               "file": r.get("file")} for r in rows]
    return json.dumps({"format": "alarmcloud-events/1", "exported_at": iso(exported_at), "events": events},
                      indent=1, ensure_ascii=False).encode()


def lay_out(app: AlarmCloud, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each row (``rows_for``) with a stored video its ``file`` name in the archive and its ``size``; returns
    those rows (a row whose video is gone keeps ``size`` None)."""
    present = []
    sizes = app.blobs.sizes(r["blob_key"] for r in rows if r["blob_key"])  # one request each with S3, in parallel
    for r in rows:
        r["size"] = sizes.get(r["blob_key"]) if r["blob_key"] else None
        if r["size"] is not None:
            present.append(r)
    for r, name in zip(present, file_names(present), strict=True):
        r["file"] = name
    return present


def _archive(app: AlarmCloud, rows: list[dict[str, Any]], exported_at: datetime) -> tuple[SizedZip, bytes]:
    """The ZIP of ``rows`` laid out (each row with a stored video gets ``file`` and ``size``), and its index."""
    present = lay_out(app, rows)
    index = _index(rows, exported_at)
    members = [SizedMember("events.json", len(index), lambda: io.BytesIO(index))]
    members += [SizedMember(r["file"], r["size"], lambda key=r["blob_key"]: app.blobs.open(key)) for r in present]
    return SizedZip(members, exported_at), index


def counted(app: AlarmCloud, account_id: str, pieces: Iterator[bytes], total: int) -> Iterator[bytes]:
    """``pieces`` (``total`` bytes), with the bytes sent counted as the account's download traffic (also when the
    client leaves early). A full download is counted before its last piece goes out: the client may be done before
    this generator is closed."""
    sent, done = 0, False
    try:
        for piece in pieces:
            sent += len(piece)
            if sent >= total:
                app.usage.add(account_id=account_id, subject=f"account:{account_id}", bytes_out=sent)
                done = True
            yield piece
    finally:
        if not done:
            app.usage.add(account_id=account_id, subject=f"account:{account_id}", bytes_out=sent)


async def download_events(request: Request) -> Response:
    """Download chosen alarm clips as one ZIP, streamed; or make a resumable download link for them.

    Body: ``{"ids": [...]}`` or the filters of ``GET /api/v1/events`` (camera_id, since, until, label, verdict,
    plate) and/or ``"all": true``. The ZIP holds ``events.json`` and ``<camera>/<UTC time>_<verdict>.mp4`` per
    clip; its ``Content-Length`` is known before it is sent. An id of another account (or of a camera a sub-user has
    no right on) answers 404 for the whole request; more clips than ``storage.download_max_clips`` answer 413 (the
    data export has every clip). With ``"count_only": true`` the answer is ``{"count", "max_clips"}`` instead of
    the ZIP. With ``"link": true`` it is 201 ``{"id", "url", "count", "size", "expires_at"}``: ``GET url`` then
    serves the same ZIP with HTTP Range, so an interrupted download resumes where it stopped.
    """
    user, body = await _caller_and_body(request)
    app = core(request)
    max_clips = app.settings.storage.download_max_clips
    ids, filters = _selection(body, max_clips)
    rows = await app.db.run(lambda s: rows_for(s, user, ids, filters, max_clips))
    if body.get("count_only"):
        return JSONResponse({"count": len(rows), "max_clips": max_clips})
    now = utcnow().replace(microsecond=0)
    archive, index = await asyncio.to_thread(_archive, app, rows, now)
    count = len(archive.members) - 1
    if body.get("link"):
        link = DownloadLink(account_id=user.tenant_id, user_id=user.id, created_at=now,
                            expires_at=now + LINK_LIFETIME, index_size=len(index),
                            index_sha256=hashlib.sha256(index).hexdigest(),
                            files=[{"clip_id": r["id"], "file": r.get("file"), "blob_key": r["blob_key"],
                                    "size": r["size"]} for r in rows])

        def _save(s: Session) -> None:
            # links that ran out go as new ones are made (they name clips: kept no longer than they serve)
            s.execute(delete(DownloadLink).where(col(DownloadLink.expires_at) < now))  # type: ignore[arg-type]
            s.add(link)
            s.commit()

        await app.db.run(_save)
        return JSONResponse({"id": link.id, "url": f"/api/v1/downloads/{link.id}", "count": count,
                             "size": archive.size, "expires_at": iso(link.expires_at)}, status_code=201)
    name = f"alarmcloud-events-{now:%Y%m%d-%H%M%S}.zip"
    if rows:  # the owner sees who downloaded their clips
        await clipaccess.record(app, request, user, "clips", rows[0]["id"], clips=count)
    return StreamingResponse(counted(app, user.tenant_id, archive.pieces(), archive.size), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Content-Length": str(archive.size), "Cache-Control": "no-store",
                                      "X-Clip-Count": str(count)})


async def fetch_link(request: Request) -> Response:
    """A download link's ZIP (``POST /api/v1/events/download`` with ``"link": true``), with HTTP Range.

    Only the person who made the link may fetch it, until it expires (410 ``link_expired``). The ZIP is the one laid
    out when the link was made, byte for byte, so a download that broke off resumes with ``Range`` (and
    ``If-Range``: the ETag). When a clip was deleted, masked or re-analysed since, or a right on its camera was
    withdrawn, the answer is 410 ``link_outdated``: make a new link.
    """
    user = await require_user(request)
    app = core(request)
    link_id = request.path_params["link_id"]
    link = await app.db.run(lambda s: s.get(DownloadLink, link_id))
    if link is None or link.user_id != user.id or link.account_id != user.tenant_id:
        raise ApiError(404, "not_found", "download link not found")
    if aware(link.expires_at) <= utcnow():
        raise ApiError(410, "link_expired", "this download link has expired: choose the clips again")
    ids = [f["clip_id"] for f in link.files]

    def _current(s: Session) -> list[dict[str, Any]]:
        try:
            return rows_for(s, user, ids, {}, len(ids))
        except ApiError:
            return []

    rows = await app.db.run(_current)
    archive, index = await asyncio.to_thread(_archive, app, rows, aware(link.created_at))
    now_files = [{"clip_id": r["id"], "file": r.get("file"), "blob_key": r["blob_key"], "size": r["size"]}
                 for r in rows]
    if now_files != link.files or hashlib.sha256(index).hexdigest() != link.index_sha256:
        raise ApiError(410, "link_outdated", "the chosen clips changed since this link was made (deleted, masked, "
                                             "re-analysed or no longer shared with you): choose them again")
    etag = f'"{link.id}"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "no-store",
               "Content-Disposition": f'attachment; filename="alarmcloud-events-{aware(link.created_at):%Y%m%d-%H%M%S}'
                                      '.zip"', "X-Clip-Count": str(len(archive.members) - 1)}
    asked = ranged(request, etag, archive.size, headers)
    if isinstance(asked, Response):
        return asked
    start, end, status = asked
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/zip")
    if start == 0:  # a resumed part is the same download
        await clipaccess.record(app, request, user, "clips", link.id, clips=len(archive.members) - 1)
    return StreamingResponse(counted(app, user.tenant_id, archive.pieces(start, end + 1), end + 1 - start),
                             status_code=status, media_type="application/zip", headers=headers)
