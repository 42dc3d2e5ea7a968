"""Read API: events (clips) with findings, series, video with HTTP Range, thumbnails, feedback, deletion."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from sqlalchemy import and_, exists, func, or_
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from alarmcloud import clipaccess
from alarmcloud.auth import User, camera_for, core, require_owner, require_user, visible_camera_ids
from alarmcloud.errors import ApiError, field, int_id, json_body, only_fields
from alarmcloud.ingest import Rejected, parse_time
from alarmcloud.models import (
    Account,
    Camera,
    Case,
    Clip,
    Consent,
    Feedback,
    FindingRow,
    KnownPlate,
    Series,
    iso,
    lock_account,
    utcnow,
)
from alarmcloud.notify import PlateBook, known_plates_of, normalize_plate, one_character_off, plate_book
from alarmcloud.pipeline import shown_scores
from alarmcloud.storage import kept_bytes, kept_limit_bytes
from alarmcloud.tuning import threshold_suggestion
from alarmcloud.units import human_bytes

MAX_LIMIT = 200


def event_json(clip: Clip, findings: list[FindingRow], camera_name: str | None = None,
               book: PlateBook | None = None) -> dict[str, Any]:
    """An event as the API shows it; with ``book`` (the owner's known plates) a plate finding of a known plate
    says which: ``known_plate`` ``{"id", "name", "match"}``."""
    return {
        "id": clip.id, "camera_id": clip.camera_id, "camera_name": camera_name, "series_id": clip.series_id,
        "started_at": iso(clip.started_at), "received_at": iso(clip.received_at),
        "duration": clip.duration, "width": clip.width, "height": clip.height, "fps": clip.fps,
        "size_bytes": clip.size_bytes, "status": clip.status, "verdict": clip.verdict, "mover": clip.mover,
        "flags": clip.flags or [], "trigger": clip.trigger, "original_name": clip.original_name,
        "findings": [_finding(f, book) for f in findings], "scores": shown_scores(clip.scores),
        "kept": clip.kept_at is not None, "kept_at": iso(clip.kept_at) if clip.kept_at else None,
        "case_id": clip.case_id,
        "video_url": f"/api/v1/events/{clip.id}/video", "thumbnail_url": f"/api/v1/events/{clip.id}/thumbnail",
    }


def _finding(f: FindingRow, book: PlateBook | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"detector": f.detector, "label": f.label, "score": round(f.score, 4)}
    if f.text is not None:
        out["text"] = f.text
        if book is not None and f.label == "plate":
            row, exact = book.match(f.text)
            if row is not None:
                out["known_plate"] = {"id": row.id, "name": row.name, "match": "exact" if exact else "close"}
    if f.time is not None:
        out["time"] = f.time
    if f.box is not None:
        out["box"] = f.box
    return out


def _cursor(clip: Clip) -> str:
    return base64.urlsafe_b64encode(json.dumps([clip.started_at.isoformat(), clip.id]).encode()).decode()


def _uncursor(value: str) -> tuple[datetime, str]:
    try:
        ts, cid = json.loads(base64.urlsafe_b64decode(value.encode()))
        dt = datetime.fromisoformat(ts)
        return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt), str(cid)
    except (ValueError, TypeError):
        raise ApiError(400, "invalid_cursor", "the cursor is invalid") from None


#: a label/plate filter with at most this many matching findings reads those clips and sorts them; with more
#: matches, clips are read newest first and each is checked (matches are then dense enough to fill a page fast)
DRIVE_FROM_FINDINGS_MAX = 2000

_PLATE_TEXTS = sql_text(
    "WITH RECURSIVE t(text) AS ("
    " SELECT min(text) FROM findings WHERE account_id = :a AND label = 'plate'"
    " UNION ALL SELECT (SELECT min(f.text) FROM findings f WHERE f.account_id = :a AND f.label = 'plate'"
    " AND f.text > t.text) FROM t WHERE t.text IS NOT NULL"
    ") SELECT text FROM t WHERE text IS NOT NULL")


def _plate_texts(s: Session, account_id: str) -> list[str]:
    """The account's distinct plate texts: one index step per distinct text, not a pass over every finding."""
    return [r[0] for r in s.connection().execute(_PLATE_TEXTS, {"a": account_id})]


def _with_findings(s: Session, q: Any, account_id: str, *conds: Any) -> Any:
    """Keep clips that have a finding matching ``conds``; the plan depends on how many findings match."""
    matches = select(FindingRow.clip_id).where(FindingRow.account_id == account_id, *conds)
    n = s.exec(select(func.count()).select_from(matches.limit(DRIVE_FROM_FINDINGS_MAX + 1).subquery())).one()
    if n <= DRIVE_FROM_FINDINGS_MAX:
        few = matches.distinct().subquery()
        return q.join(few, few.c.clip_id == Clip.id)
    # per clip through ix_findings_clip_label; no account term here (the clips are the account's already, and
    # account_id + label would make SQLite probe the account's whole label range for every clip)
    return q.where(exists().where(FindingRow.clip_id == Clip.id, *conds))


def owner_book(s: Session, user: User) -> PlateBook | None:
    """The known plates, for the account's owner only: the list is the owner's, so sub-users see plates without
    names (the API refuses them the list, 403)."""
    return plate_book(s, user.tenant_id) if user.account.owner_id is None else None


#: the ``plates`` filter: clips with a read of a known plate, or of a plate the owner does not know
PLATES_FILTER = ("known", "unknown")


def _known_or_unknown(s: Session, user: User, which: str) -> tuple[Any, PlateBook]:
    """The condition on plate findings for reads that are (``known``) or are not (``unknown``) one of the owner's
    known plates, matched as everywhere else (one character off included), and the owner's known plates it was
    worked out from. The owner's list: 403 for sub-users. Both sides name the known reads only (a few per known
    plate), never the account's many unknown ones."""
    if which not in PLATES_FILTER:
        raise ApiError(400, "invalid_field", "plates must be known or unknown")
    book = owner_book(s, user)
    if book is None:
        raise ApiError(403, "forbidden", "only the account owner filters by known plates")
    known = list(_known_reads(s, user.tenant_id, book))
    text = col(FindingRow.text)
    return (text.in_(known) if which == "known" else and_(text.is_not(None), text.not_in(known))), book


def query_events(s: Session, user: User, params: dict[str, str], limit: int,
                 names: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """One page of events, newest first (indexes: see the clips and findings models and bench/events);
    ``names``: plate findings name the owner's known plates (for the owner)."""
    q = select(Clip).where(Clip.account_id == user.tenant_id)
    ids = visible_camera_ids(s, user)
    if ids is not None:
        q = q.where(col(Clip.camera_id).in_(ids))
    if params.get("camera_id"):
        q = q.where(Clip.camera_id == params["camera_id"])
    if params.get("series_id"):
        q = q.where(Clip.series_id == params["series_id"])
    if params.get("site"):  # the cameras of one site (the caller's own: a sub-user's stay within theirs, above)
        q = q.where(col(Clip.camera_id).in_(select(Camera.id).where(Camera.account_id == user.tenant_id,
                                                                    Camera.site == params["site"])))
    try:
        since, until = parse_time(params.get("since")), parse_time(params.get("until"))
    except Rejected as exc:
        raise ApiError(400, "invalid_time", "since/until must be ISO 8601 or Unix seconds") from exc
    if since:
        q = q.where(Clip.started_at >= since)
    if until:
        q = q.where(Clip.started_at < until)
    kept = params.get("kept")
    if kept not in (None, "", "true", "false"):
        raise ApiError(400, "invalid_kept", "kept must be true or false")
    if kept:
        q = q.where(col(Clip.kept_at).is_not(None) if kept == "true" else col(Clip.kept_at).is_(None))
    if params.get("case_id"):  # the clips of one of the owner's cases
        q = q.where(Clip.case_id == params["case_id"])
    verdict = params.get("verdict")
    if verdict == "false_alarm":
        q = q.where(col(Clip.verdict).like("false_alarm:%"))
    elif verdict:
        q = q.where(Clip.verdict == verdict)
    if params.get("label"):
        q = _with_findings(s, q, user.tenant_id, FindingRow.label == params["label"])
    if params.get("plate"):
        wanted = normalize_plate(params["plate"])
        matches = [t for t in _plate_texts(s, user.tenant_id) if one_character_off(normalize_plate(t), wanted)]
        q = _with_findings(s, q, user.tenant_id, FindingRow.label == "plate", col(FindingRow.text).in_(matches))
    book: PlateBook | None = None  # the owner's known plates, read once for the filter and the names
    if params.get("plates"):
        known_or_unknown, book = _known_or_unknown(s, user, params["plates"])
        q = _with_findings(s, q, user.tenant_id, FindingRow.label == "plate", known_or_unknown)
    if params.get("cursor"):
        ts, cid = _uncursor(params["cursor"])
        # the redundant ``started_at <= ts`` lets the database seek to the cursor instead of skipping earlier pages
        q = q.where(Clip.started_at <= ts, or_(Clip.started_at < ts, col(Clip.id) < cid))
    clips = s.exec(q.order_by(col(Clip.started_at).desc(), col(Clip.id).desc()).limit(limit + 1)).all()
    more = len(clips) > limit
    clips = clips[:limit]
    findings: dict[str, list[FindingRow]] = {}
    if clips:
        for f in s.exec(select(FindingRow).where(col(FindingRow.clip_id).in_([c.id for c in clips]))).all():
            findings.setdefault(f.clip_id, []).append(f)
    if names and findings and book is None:
        book = owner_book(s, user)
    cams = {c.id: c.name for c in s.exec(select(Camera).where(Camera.account_id == user.tenant_id)).all()}
    items = [event_json(c, findings.get(c.id, []), cams.get(c.camera_id), book if names else None) for c in clips]
    return items, (_cursor(clips[-1]) if more and clips else None)


def _limit(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid_limit", "limit must be a positive integer")
    return max(1, min(MAX_LIMIT, int(raw) if len(raw) <= 9 else MAX_LIMIT))


async def list_events(request: Request) -> Response:
    """Events newest first. Filters: camera_id, site, since, until, label, verdict, plate (fuzzy), plates (known or
    unknown, the owner's), series_id, kept, case_id."""
    user = await require_user(request)
    limit = _limit(request)
    params = dict(request.query_params)
    items, cursor = await core(request).db.run(lambda s: query_events(s, user, params, limit, names=True))
    return JSONResponse({"items": items, "next_cursor": cursor})


def clip_for(s: Session, user: User, clip_id: str) -> Clip:
    clip = s.get(Clip, clip_id)
    if clip is None or clip.account_id != user.tenant_id:
        raise ApiError(404, "not_found", "event not found")
    ids = visible_camera_ids(s, user)
    if ids is not None and clip.camera_id not in ids:
        raise ApiError(404, "not_found", "event not found")
    return clip


def load_event(s: Session, user: User, event_id: str) -> tuple[dict[str, Any], Camera | None]:
    """One event as the API shows it (404 for another tenant's id), and its camera; plate findings name the
    owner's known plates for the owner."""
    clip = clip_for(s, user, event_id)
    findings = list(s.exec(select(FindingRow).where(FindingRow.clip_id == clip.id)).all())
    cam = s.get(Camera, clip.camera_id)
    book = owner_book(s, user) if any(f.label == "plate" and f.text for f in findings) else None
    return event_json(clip, findings, cam.name if cam else None, book), cam


def offsite_of(app: Any, s: Session, user: User, event_id: str) -> dict[str, Any] | None:
    """For the account owner, where the clip's off-site copy stands (``offsite.clip_status``); None for sub-users
    (the copies are the owner's) and while the copies are not set up."""
    from alarmcloud import offsite

    if not app.settings.offsite.enabled or user.account.owner_id is not None:
        return None
    acc, clip = s.get(Account, user.id), s.get(Clip, event_id)
    return offsite.clip_status(s, acc, clip) if acc is not None and clip is not None else None


async def get_event(request: Request) -> Response:
    """One event with its findings; for the account owner ``offsite``: where its off-site copy stands."""
    user = await require_user(request)
    app = core(request)
    eid = request.path_params["event_id"]

    def _load(s: Session) -> dict[str, Any]:
        event, _ = load_event(s, user, eid)
        event["offsite"] = offsite_of(app, s, user, event["id"])
        return event

    return JSONResponse(await app.db.run(_load))


async def delete_event(request: Request) -> Response:
    """Delete an event: its clip, thumbnail and findings. Needs the ``admin`` right on the event's camera (``view``
    reads events, ``control`` runs actions; deleting a recording changes what the camera recorded); a clip in one of
    the owner's cases only the owner deletes (409 ``in_case`` for a sub-user)."""
    user = await require_user(request)
    app = core(request)
    eid = request.path_params["event_id"]

    def _check(s: Session) -> None:
        clip = clip_for(s, user, eid)  # 404 for an event of a camera the caller has no right on
        camera_for(s, user, clip.camera_id, "admin")
        if clip.case_id is not None and user.account.owner_id is not None:  # the owner's evidence: theirs to delete
            raise ApiError(409, "in_case", "this clip is in one of the account owner's cases: only the owner can "
                                           "delete it")

    await app.db.run(_check)
    await app.storage.delete_clip(eid)
    return Response(status_code=204)


async def update_event(request: Request) -> Response:
    """Keep an event (``{"kept": true}``): retention and the quota's eviction leave its clip alone until
    ``{"kept": false}``; deleting it, its camera or the account still deletes it. Needs the ``admin`` right on the
    event's camera (it decides what stays stored). Kept clips may fill ``storage.kept_max_ratio`` of the quota
    (default half), so new alarms always find room: 409 ``keep_limit`` beyond it. A clip in one of the owner's
    cases stays kept while it is there (409 ``in_case``)."""
    user = await require_user(request)
    app = core(request)
    eid = request.path_params["event_id"]
    data = await json_body(request)
    only_fields(data, {"kept"})
    keep = field(data, "kept", bool)

    def _save(s: Session) -> dict[str, Any]:
        clip = clip_for(s, user, eid)  # 404 for an event of a camera the caller has no right on
        camera_for(s, user, clip.camera_id, "admin")
        lock_account(s, user.tenant_id)  # keeps at once never pass the limit together
        clip = s.get(Clip, eid, with_for_update=True, populate_existing=True)
        if clip is None:  # deleted meanwhile
            raise ApiError(404, "not_found", "event not found")
        if keep and clip.kept_at is None:
            limit = kept_limit_bytes(app.settings, s.get(Account, user.tenant_id))
            already = kept_bytes(s, user.tenant_id)
            if already + clip.size_bytes > limit:
                raise ApiError(409, "keep_limit", f"kept clips may fill {human_bytes(limit)} of your storage and "
                                                  f"{human_bytes(already)} are kept; stop keeping or delete some "
                                                  "first")
            clip.kept_at = utcnow()
        elif not keep:
            if clip.case_id is not None:  # evidence of a case stays until the owner takes it out of the case
                case = s.get(Case, clip.case_id)
                which = (f"the case “{case.name}”" if case and user.account.owner_id is None  # a sub-user: no name
                         else "one of the account owner's cases")
                raise ApiError(409, "in_case", f"this clip is in {which}: it is kept while it is there; take it out "
                                               "of the case first")
            clip.kept_at = None
        s.add(clip)
        s.commit()
        return load_event(s, user, eid)[0]

    return JSONResponse(await app.db.run(_save))


_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")  # ASCII digits only


def _position(digits: str) -> int:
    """A byte position of a Range header; one of more digits than any file has bytes stands for "beyond the end"
    (``int`` refuses more than 4,300 digits)."""
    return int(digits) if len(digits) <= 18 else 10**18
#: the browser keeps clip media but asks again each time (answered 304 while unchanged): applying privacy masks
#: replaces a clip's video and thumbnail, and a cached copy must never show what the masks now hide
MEDIA_CACHE = "private, no-cache"


def media_etag(key: str) -> str:
    """A strong validator for one stored file: blob keys are never reused (masks write the clip under a new key)."""
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def _none_match(header: str | None, etag: str) -> bool:
    """``If-None-Match`` (weak comparison, RFC 9110 13.1.2) matches the current ``etag``."""
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


async def _media(request: Request, user: User, video: bool) -> tuple[str, Any]:
    """The blob key served (video or thumbnail) and the opened file. Applying masks deletes the old file
    right after the swap: when it went away between reading the row and opening it, the row is read again."""
    app = core(request)
    eid = request.path_params["event_id"]
    for attempt in range(3):
        clip = await app.db.run(lambda s: clip_for(s, user, eid))
        key = clip.blob_key if video else clip.thumb_key
        if not key:
            raise ApiError(404, "not_found", "this event has no thumbnail")
        try:
            return key, await anyio.to_thread.run_sync(app.blobs.open, key)  # a request when stored in S3
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def byte_range(request: Request, etag: str, size: int) -> tuple[int, int, int] | Response:
    """``(start, end, status)`` of the bytes a GET asks for (``end`` inclusive; 200 for all of them, 206 for a
    ``Range``), or the 416 answer to a range that cannot be served. A ``Range`` with an ``If-Range`` that is not
    ``etag`` (the resource changed since the client's first part) gets the whole new resource."""
    rng = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if rng and if_range is not None and if_range.strip() != etag:
        rng = None
    if not rng:
        return 0, size - 1, 200
    m = _RANGE.match(rng.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if m.group(1):
        start = _position(m.group(1))
        end = min(_position(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        start, end = max(0, size - _position(m.group(2))), size - 1
    if start > end or start >= size:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    return start, end, 206


def ranged(request: Request, etag: str, size: int, headers: dict[str, str]) -> tuple[int, int, int] | Response:
    """``byte_range``, with the answer's ``Content-Range`` (for a 206) and ``Content-Length`` put in ``headers``."""
    asked = byte_range(request, etag, size)
    if isinstance(asked, Response):
        return asked
    start, end, status = asked
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return asked


async def video(request: Request) -> Response:
    """The MP4, with HTTP Range support so browsers can seek; revalidated by its ETag (If-None-Match: 304)."""
    user = await require_user(request)
    app = core(request)
    key, fh = await _media(request, user, video=True)
    etag = media_etag(key)
    headers = {"Accept-Ranges": "bytes", "Content-Type": "video/mp4", "Cache-Control": MEDIA_CACHE, "ETag": etag}
    if _none_match(request.headers.get("if-none-match"), etag):
        fh.close()
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": MEDIA_CACHE})
    try:
        size = fh.seek(0, os.SEEK_END)
    except Exception:
        fh.close()
        raise
    asked = ranged(request, etag, size, headers)
    if isinstance(asked, Response):
        fh.close()
        return asked
    start, end, status = asked
    app.usage.add(account_id=user.tenant_id, subject=f"account:{user.tenant_id}", bytes_out=end - start + 1)
    if request.method == "HEAD":
        fh.close()
        return Response(status_code=status, headers=headers)
    try:  # the owner sees who played it (once per person and clip in a while: a player asks for many ranges)
        await clipaccess.record(app, request, user, "video", request.path_params["event_id"])
    except Exception:
        fh.close()
        raise

    def _chunks():  # type: ignore[no-untyped-def]
        with fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                data = fh.read(min(256 * 1024, left))
                if not data:
                    break
                left -= len(data)
                yield data

    return StreamingResponse(_chunks(), status_code=status, headers=headers)


async def thumbnail(request: Request) -> Response:
    """The clip's JPEG thumbnail; revalidated by its ETag (If-None-Match: 304)."""
    user = await require_user(request)
    key, fh = await _media(request, user, video=False)
    etag = media_etag(key)
    headers = {"Cache-Control": MEDIA_CACHE, "ETag": etag}
    with fh:
        if _none_match(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        data = await anyio.to_thread.run_sync(fh.read)
    return Response(data, media_type="image/jpeg", headers=headers)


#: labels every deployment takes (the rain detector's, and event-level marks); a detector's own labels come on top
FEEDBACK_LABELS = ("rain", "not_rain", "snow", "not_snow", "plate_wrong", "false_alarm", "real_alarm")


async def feedback(request: Request) -> Response:
    """Mark an event (e.g. ``{"detector": "rain", "label": "rain" | "not_rain", "release": true}``).

    With ``release`` the owner consents to the clip being used to improve the detector; the release is recorded
    in the consent ledger and the clip is copied to the training area. Labels: ``rain``, ``not_rain``, ``snow``,
    ``not_snow``, ``plate_wrong``, ``false_alarm``, ``real_alarm``, and any label of the named detector with or
    without ``not_``. The answer's ``suggestion`` (``tuning.threshold_suggestion``) proposes the camera's
    ``threshold`` that would have left an event marked ``not_*`` an alarm, or that would have flagged an event the
    detector missed and the owner marked with its label, or is null.
    """
    user = await require_user(request)
    app = core(request)
    eid = request.path_params["event_id"]
    data = await json_body(request)
    only_fields(data, {"detector", "label", "release"})
    detector = field(data, "detector", str, required=False, default="rain", max_len=50)
    label = field(data, "label", str, max_len=50)
    release = field(data, "release", bool, required=False, default=False)
    if release and user.account.owner_id is not None:
        raise ApiError(403, "forbidden", "only the account owner can release a recording")
    spec = app.plugins.detector_specs.get(detector)
    allowed = [*FEEDBACK_LABELS, *(f"{p}{lbl}" for lbl in (spec.labels if spec else ()) for p in ("", "not_")
                                  if f"{p}{lbl}" not in FEEDBACK_LABELS)]
    if label not in allowed:
        raise ApiError(400, "invalid_field", "label must be one of " + ", ".join(allowed))

    def _store(s: Session) -> tuple[Clip, dict[str, Any] | None]:
        clip = clip_for(s, user, eid)
        s.add(Feedback(account_id=user.tenant_id, clip_id=clip.id, detector=detector, label=label))
        if release:
            s.add(Consent(account_id=user.tenant_id, kind="clip_release", subject=clip.id,
                          purpose=f"improve the {detector} detector (label {label})"))
        s.commit()
        return clip, threshold_suggestion(app, s, user, clip, detector, label)

    clip, suggestion = await app.db.run(_store)
    if release:
        app.training.release(clip, detector, label)
    return JSONResponse({"ok": True, "released": release, "suggestion": suggestion}, status_code=201)


async def list_series(request: Request) -> Response:
    """Alarm series (clips of one camera close in time), newest first, with their clips' ids and verdicts."""
    user = await require_user(request)
    limit = _limit(request, 20)
    camera_id = request.query_params.get("camera_id")

    def _list(s: Session) -> list[dict[str, Any]]:
        q = select(Series).where(Series.account_id == user.tenant_id)
        ids = visible_camera_ids(s, user)
        if ids is not None:
            q = q.where(col(Series.camera_id).in_(ids))
        if camera_id:
            q = q.where(Series.camera_id == camera_id)
        out = []
        for ser in s.exec(q.order_by(col(Series.ended_at).desc()).limit(limit)).all():
            clips = s.exec(select(Clip).where(Clip.series_id == ser.id).order_by(col(Clip.started_at))).all()
            out.append({"id": ser.id, "camera_id": ser.camera_id, "started_at": iso(ser.started_at),
                        "ended_at": iso(ser.ended_at), "clip_count": ser.clip_count,
                        "clips": [{"id": c.id, "started_at": iso(c.started_at), "verdict": c.verdict,
                                   "duration": c.duration} for c in clips]})
        return out

    return JSONResponse({"items": await core(request).db.run(_list)})


async def _plates_owner(request: Request) -> User:
    """The account owner: known plates (people's cars by name, and who is told about them) are the owner's list,
    refused to sub-users like the other account settings (403)."""
    return await require_owner(request, "known plates")


#: known plates per account (a household's and a small business's cars and regular visitors fit many times over)
MAX_KNOWN_PLATES = 500


def _plate_json(row: KnownPlate) -> dict[str, Any]:
    return {"id": row.id, "text": row.text, "name": row.name, "notify": row.notify, "close_reads": row.close_reads}


def known_plates_listed(s: Session, account_id: str) -> list[dict[str, Any]]:
    """The account's known plates as ``GET /plates`` lists them: sorted by name, each with ``last_seen``."""
    rows = known_plates_of(s, account_id)
    seen = _plates_last_seen(s, account_id, PlateBook(rows)) if rows else {}
    return [{**_plate_json(r), "last_seen": seen.get(r.id or 0)} for r in rows]


def _known_reads(s: Session, account_id: str, book: PlateBook) -> dict[str, int]:
    """The account's distinct plate reads that are one of the known plates of ``book``: read -> known plate id."""
    return {t: row.id or 0 for t in _plate_texts(s, account_id) if (row := book.match(t)[0]) is not None}


def _plates_last_seen(s: Session, account_id: str, book: PlateBook) -> dict[int, dict[str, Any]]:
    """For each known plate read in a clip the account still keeps, its newest such clip: known plate id ->
    ``{"at", "event_id", "camera_id", "text"}`` (``text``: the read, which may be one character off). Nothing is
    stored for this: a deleted clip takes its reads along."""
    owner = _known_reads(s, account_id, book)
    if not owner:
        return {}
    # one query: per read text its newest clip (the higher clip id on a tie), numbered by a window function
    ranked = (select(FindingRow.text, Clip.id, Clip.started_at, Clip.camera_id,
                     func.row_number().over(partition_by=col(FindingRow.text),
                                            order_by=(col(Clip.started_at).desc(), col(Clip.id).desc())).label("n"))
              .join(Clip, col(Clip.id) == col(FindingRow.clip_id))
              .where(FindingRow.account_id == account_id, FindingRow.label == "plate",
                     col(FindingRow.text).in_(list(owner)))
              .subquery())
    newest = select(ranked.c.text, ranked.c.id, ranked.c.started_at, ranked.c.camera_id).where(ranked.c.n == 1)
    out: dict[int, dict[str, Any]] = {}
    best: dict[int, tuple[datetime, int]] = {}
    for text, clip_id, at, camera_id in s.exec(newest).all():
        pid = owner[text]
        if pid not in best or (at, clip_id) > best[pid]:
            best[pid] = (at, clip_id)
            out[pid] = {"at": iso(at), "event_id": clip_id, "camera_id": camera_id, "text": text}
    return out


async def known_plates(request: Request) -> Response:
    """GET: the account's known plates, sorted by name, each with when it was last seen; POST ``{"text", "name",
    "notify"?, "close_reads"?}`` adds one (or renames the plate of that text). The owner's list only."""
    user = await _plates_owner(request)
    app = core(request)
    if request.method == "POST":
        data = await json_body(request)
        only_fields(data, {"text", "name", "notify", "close_reads"})
        text = normalize_plate(field(data, "text", str, max_len=20))
        name = display_name(data)
        notify = field(data, "notify", bool, required=False, default=True)
        close_reads = field(data, "close_reads", bool, required=False, default=True)
        if not text:
            raise ApiError(400, "invalid_field", "text must contain letters or digits")

        def _add(s: Session) -> KnownPlate:
            row = s.exec(select(KnownPlate).where(KnownPlate.account_id == user.tenant_id,
                                                  KnownPlate.text == text)).first()
            if row is None:
                lock_account(s, user.tenant_id)  # adds of different new texts at once never pass the limit
                count = s.exec(select(func.count()).select_from(KnownPlate).where(
                    KnownPlate.account_id == user.tenant_id)).one()
                if count >= MAX_KNOWN_PLATES:
                    raise ApiError(409, "limit_reached", f"an account can keep at most {MAX_KNOWN_PLATES} "
                                                         "known plates; delete some first")
                row = KnownPlate(account_id=user.tenant_id, text=text, name=name)
            row.name, row.notify, row.close_reads = name, notify, close_reads
            s.add(row)
            s.commit()
            return row

        def _save(s: Session) -> KnownPlate:
            try:
                return _add(s)
            except IntegrityError:  # the same text saved at the same moment by another request: rename that one
                s.rollback()
                return _add(s)

        row = await app.db.run(_save)
        return JSONResponse(_plate_json(row), status_code=201)
    return JSONResponse({"items": await app.db.run(lambda s: known_plates_listed(s, user.tenant_id))})


def display_name(data: dict[str, Any], required: bool = True) -> str:
    """The ``name`` field: 1-100 characters that are not all blank, without control characters (``required``:
    a body without it is a missing field; otherwise a null name is an empty one)."""
    name = field(data, "name", str, max_len=100, required=required, default="")
    if not name.strip():
        raise ApiError(400, "invalid_field", "name must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ApiError(400, "invalid_field", "name must not contain control characters")
    return name.strip()


async def known_plate(request: Request) -> Response:
    """PATCH ``{"name"?, "notify"?, "close_reads"?}``: rename a known plate, change whether its reads are
    announced or whether a read one character off counts as it; DELETE: forget it."""
    user = await _plates_owner(request)
    pid = request.path_params["plate_id"]
    if request.method == "DELETE":
        def _del(s: Session) -> None:
            row = _plate_row(s, user, pid)
            s.delete(row)
            s.commit()

        await core(request).db.run(_del)
        return Response(status_code=204)
    data = await json_body(request)
    only_fields(data, {"name", "notify", "close_reads"})
    name = display_name(data, required=False) if "name" in data else None
    notify = field(data, "notify", bool, required=False, default=None)
    close_reads = field(data, "close_reads", bool, required=False, default=None)

    changes = {k: v for k, v in (("name", name), ("notify", notify), ("close_reads", close_reads)) if v is not None}

    def _patch(s: Session) -> KnownPlate:
        row = _plate_row(s, user, pid)
        for key, value in changes.items():
            setattr(row, key, value)
        s.add(row)
        s.commit()
        return row

    return JSONResponse(_plate_json(await core(request).db.run(_patch)))


def _plate_row(s: Session, user: User, pid: str) -> KnownPlate:
    """The account's known plate of id ``pid`` (404 for another account's or an unknown id)."""
    n = int_id(pid)
    row = s.get(KnownPlate, n) if n is not None else None
    if row is None or row.account_id != user.tenant_id:
        raise ApiError(404, "not_found", "known plate not found")
    return row


_ = os
