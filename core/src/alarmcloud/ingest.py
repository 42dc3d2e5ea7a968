"""Clip ingest: one function for HTTP and FTP uploads — probe safely, validate, store atomically with its job."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from sqlmodel import Session, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alarmcloud import crypto, jobs
from alarmcloud.auth import core
from alarmcloud.errors import ApiError
from alarmcloud.events import CLIP_STORED, Event
from alarmcloud.masks import masks_hash, safe_mask
from alarmcloud.models import Account, Camera, Clip, Rejection, Series, new_id, utcnow
from alarmcloud.safeprobe import safe_probe
from alarmcloud.storage import almost_full_event, make_room, quota_bytes, retention_days, used_bytes
from alarmcloud.video import ProbeError

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
UPLOADS = Counter("alarmcloud_uploads_total", "Uploaded clips by outcome", ["outcome", "channel"])


class Rejected(Exception):
    """The upload is not a video this camera produces; the data was deleted."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class IngestResult:
    clip_id: str
    event_id: str
    series_id: str
    verdict: str | None = None


#: a clip said to be recorded later than this after it arrived comes from a camera whose clock runs ahead
CLOCK_AHEAD = timedelta(minutes=5)


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 or Unix seconds, to aware UTC (naive input counts as UTC)."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
            from datetime import UTC

            return datetime.fromtimestamp(float(value), UTC)
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        from datetime import UTC

        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise Rejected("invalid_recorded_at", "recorded_at must be ISO 8601 or Unix seconds", 400) from None


class UploadLogins:
    """Camera upload logins, verified with argon2 and cached briefly (uploads come every few seconds)."""

    def __init__(self, app: AlarmCloud) -> None:
        self.app = app
        self._cache: dict[str, tuple[str, str, float]] = {}

    def forget(self, username: str) -> None:
        self._cache.pop(username, None)

    def check(self, username: str, password: str) -> str | None:
        """The camera id for these upload credentials, or None."""
        digest = hashlib.sha256(password.encode()).hexdigest()
        hit = self._cache.get(username)
        if hit and hit[2] > time.monotonic() and crypto.constant_eq(hit[0], digest):
            return hit[1]
        with self.app.db.session() as s:
            cam = s.exec(select(Camera).where(Camera.upload_username == username)).first()
            stored = cam.upload_password_hash if cam else None
            pending = cam.upload_password_pending_hash if cam else None
            cam_id = cam.id if cam else None
        if stored is None or cam_id is None:
            return None  # user names are random ("cam-" + 48 bits): nothing to learn from timing here
        if not crypto.verify_generated_secret(stored, password):
            if pending is None or not crypto.verify_generated_secret(pending, password):
                return None
            self._take_pending(cam_id, pending)
        self._cache[username] = (digest, cam_id, time.monotonic() + 300)
        return cam_id

    def _take_pending(self, cam_id: str, pending: str) -> None:
        """The camera uploads with the password a one-click setup gave it: now its only one."""
        with self.app.db.session() as s:
            cam = s.get(Camera, cam_id)
            if cam is not None and cam.upload_password_pending_hash == pending:
                cam.upload_password_hash, cam.upload_password_pending_hash = pending, None
                s.add(cam)
                s.commit()
                log.info("camera %s uploads with the password its one-click setup gave it; the previous one no "
                         "longer works", cam_id)


def reject(app: AlarmCloud, camera_id: str, path: Path, code: str, message: str, status: int = 422,
           channel: str = "http") -> Rejected:
    """Delete the data at once, count it on the camera, keep only the reason for the owner."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".thumb.jpg").unlink(missing_ok=True)
    path.with_name(path.name + ".masked.mp4").unlink(missing_ok=True)
    with app.db.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is not None:
            cam.rejected_count += 1
            s.add(cam)
            s.add(Rejection(account_id=cam.account_id, camera_id=cam.id, code=code, message=message[:300]))
            s.commit()
    UPLOADS.labels("rejected", channel).inc()
    log.info("upload rejected for camera %s: %s", camera_id, code)
    return Rejected(code, message, status)


def ingest_file(app: AlarmCloud, camera_id: str, path: Path, meta: dict[str, Any] | None = None,
                thumbnail: bytes | None = None, channel: str = "http") -> IngestResult:
    """Validate the staged file at ``path`` and store it as a clip of the camera (blocking; call in a thread).

    The file is consumed: moved into blob storage or deleted. Rows are written in one transaction. For a camera
    with privacy masks the stored clip is a masked copy (``masks.safe_mask``); the upload itself is deleted.
    """
    meta = meta or {}
    st = app.settings
    with app.db.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is None:
            path.unlink(missing_ok=True)
            raise Rejected("unknown_camera", "camera not found", 404)
        brand, model, account_id = cam.brand, cam.model, cam.account_id
        masks = list(cam.privacy_masks or [])
        retention = timedelta(days=retention_days(st, s.get(Account, account_id)))
    if masks:
        thumbnail = None  # a camera's own snapshot would show the masked areas: the thumbnail comes from the result
    try:
        recorded_at = parse_time(meta.get("recorded_at"))
    except Rejected as exc:
        raise reject(app, camera_id, path, exc.code, exc.message, 400, channel) from None
    try:
        thumb_file = path.with_name(path.name + ".thumb.jpg") if thumbnail is None else None
        probe = safe_probe(path, st.ingest.probe_timeout_seconds, st.ingest.probe_memory_mb,
                           None if masks else thumb_file)
    except ProbeError as exc:
        path.with_name(path.name + ".thumb.jpg").unlink(missing_ok=True)
        raise reject(app, camera_id, path, exc.code, exc.message, 422, channel) from None
    if probe.duration <= 0.0:
        raise reject(app, camera_id, path, "no_duration", "the video has no duration", 422, channel)
    if probe.duration > st.ingest.max_clip_seconds:
        raise reject(app, camera_id, path, "clip_too_long",
                     f"the clip is {probe.duration:.0f} s long; at most {st.ingest.max_clip_seconds:.0f} s are "
                     "accepted", 422, channel)
    adapter = app.plugins.camera_adapter(brand)
    if adapter is None:
        raise reject(app, camera_id, path, "adapter_unavailable", f"the {brand} adapter is not enabled", 422,
                     channel)
    verdict = adapter.validate_clip(model, probe)
    if not verdict.accepted:
        raise reject(app, camera_id, path, "unsupported_video", verdict.reason, 422, channel)
    flags = list(verdict.flags)
    if probe.duration > st.fair_use.long_clip_seconds and "long_clip" not in flags:
        flags.append("long_clip")
    if masks:
        # paint the masks before anything is stored: the unmasked upload is deleted, never moved into the blobs
        masked = path.with_name(path.name + ".masked.mp4")
        try:
            safe_mask(path, masked, masks, st.ingest.mask_timeout_seconds, st.ingest.mask_memory_mb, thumb_file,
                      st.ingest.mask_threads)
        except ProbeError as exc:
            raise reject(app, camera_id, path, exc.code, exc.message, 422, channel) from None
        path.unlink(missing_ok=True)
        path = masked
    if thumbnail is None and thumb_file is not None and thumb_file.exists():
        thumbnail = thumb_file.read_bytes()  # decoded in the limited child, never in the server process
    if thumb_file is not None:
        thumb_file.unlink(missing_ok=True)

    clip_id = new_id()
    blob_key = f"{account_id}/{camera_id}/{clip_id}.mp4"
    thumb_key = f"{account_id}/{camera_id}/{clip_id}.jpg" if thumbnail else None
    now = utcnow()
    started = now - timedelta(seconds=probe.duration)
    if recorded_at is not None and recorded_at > now + CLOCK_AHEAD:
        # a clip cannot end after it arrived: the camera's clock runs ahead (unset, a wrong time zone). Believed, its
        # clips would sit at the top of the timeline and outlive the retention period and the quota's eviction order
        log.warning("camera %s: the clip says it was recorded at %s, after it arrived (%s): its clock runs ahead, "
                    "the arrival time is used", camera_id, recorded_at.isoformat(), now.isoformat())
    elif recorded_at is not None and recorded_at < now - retention:
        # older than the account keeps clips: a clock reset to 1970 or 2000 (a camera that lost power and has no
        # time server). Believed, the new alarm would be deleted by the next retention run and never show on the
        # timeline's first page; the camera is sending what it just recorded
        log.warning("camera %s: the clip says it was recorded at %s, longer before it arrived (%s) than clips are "
                    "kept: its clock is wrong, the arrival time is used", camera_id, recorded_at.isoformat(),
                    now.isoformat())
    elif recorded_at is not None:
        started = recorded_at
    try:
        size = app.blobs.put_file(blob_key, path)  # the move is atomic; an orphan blob is swept at start-up
    finally:
        if masks:
            path.unlink(missing_ok=True)  # the masked copy is ours to remove (the caller removes the upload)
    if thumb_key and thumbnail:
        try:
            app.blobs.put_bytes(thumb_key, thumbnail)
        except Exception:  # e.g. the object store went away after the video: keep no clip without a row
            with contextlib.suppress(Exception):
                app.blobs.delete(blob_key)  # when this fails too, the start-up sweep removes it
            raise
    evicted: list[str] = []
    try:
        with app.db.session() as s:
            # key-share locks (PostgreSQL): an erasure or a camera deletion that began first is waited for and
            # then seen as gone; one that comes later waits for this clip and deletes it with the rest
            acc = s.exec(select(Account).where(Account.id == account_id)
                         .with_for_update(read=True, key_share=True)).first()
            cam = s.exec(select(Camera).where(Camera.id == camera_id)
                         .with_for_update(read=True, key_share=True)).first()
            if acc is None or cam is None:
                raise Rejected("unknown_camera", "the camera was deleted while its clip was being checked; "
                               "nothing was stored", 404)
            quota = quota_bytes(st, acc)
            if size > quota:
                raise Rejected("over_quota", "the clip is larger than the account's whole quota", 413)
            used_before = used_bytes(s, account_id)
            evicted = make_room(s, acc, size, quota)
            trigger = meta.get("trigger")
            if cam.last_trigger and cam.last_trigger_at and now - cam.last_trigger_at < timedelta(seconds=120):
                trigger = {**cam.last_trigger, **(trigger if isinstance(trigger, dict) else {})} if not isinstance(
                    trigger, str) else {**cam.last_trigger, "trigger": trigger}
                cam.last_trigger = None
                cam.last_trigger_at = None
            elif isinstance(trigger, str):
                trigger = {"trigger": trigger[:100]}
            series = _series_for(s, cam, started, started + timedelta(seconds=probe.duration),
                                 st.ingest.series_gap_seconds)
            shown = probe.as_shown()  # the owner sees (and the detectors get) a turned clip the other way round
            clip = Clip(id=clip_id, account_id=account_id, camera_id=camera_id, series_id=series.id,
                        blob_key=blob_key, thumb_key=thumb_key, size_bytes=size, started_at=started,
                        received_at=now, duration=probe.duration, width=shown.width, height=shown.height,
                        fps=probe.fps, codec="h264" if masks else probe.video_codec or "",  # masked: re-encoded
                        original_name=meta.get("original_name") or None,
                        trigger=trigger if isinstance(trigger, dict) else None, flags=flags,
                        privacy_masks_hash=masks_hash(masks))
            cam.silent_notified_at, cam.last_clip_at = None, now  # a camera told silent is back (``silence``)
            if acc.restricted:
                clip.status = "skipped"  # GDPR Art. 18: stored, never processed
            s.add(clip)
            s.add(cam)
            s.flush()
            if not acc.restricted:
                jobs.enqueue(s, clip, jobs.priority_for(app, cam, clip, series))
            s.flush()
            used_after = used_bytes(s, account_id)
            s.commit()
            series_id = series.id
    except Exception:
        app.blobs.delete(blob_key)
        if thumb_key:
            app.blobs.delete(thumb_key)
        raise
    for key in evicted:
        app.blobs.delete(key)
    UPLOADS.labels("stored", channel).inc()
    app.usage.add(account_id=account_id, subject=f"camera:{camera_id}", bytes_in=size)
    app.emit_sync(Event(CLIP_STORED, account_id, camera_id, {"clip_id": clip_id, "series_id": series_id,
                                                            "duration": probe.duration}))
    if (full := almost_full_event(st, account_id, used_before, used_after, quota)) is not None:
        app.emit_sync(full)
    app.wake_workers()
    return IngestResult(clip_id=clip_id, event_id=clip_id, series_id=series_id)


def _series_for(s: Session, cam: Camera, start: datetime, end: datetime, gap: float) -> Series:
    last = s.exec(select(Series).where(Series.camera_id == cam.id).order_by(
        Series.ended_at.desc()).limit(1)).first()  # type: ignore[attr-defined]
    if last is not None and start - last.ended_at <= timedelta(seconds=gap) and end >= last.started_at:
        last.ended_at = max(last.ended_at, end)
        last.started_at = min(last.started_at, start)
        last.clip_count += 1
        s.add(last)
        return last
    series = Series(account_id=cam.account_id, camera_id=cam.id, started_at=start, ended_at=end, clip_count=1)
    s.add(series)
    s.flush()
    return series


# ---------------------------------------------------------------- HTTP ingest


def _upload_login(request: Request) -> tuple[str, str]:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    try:
        if scheme.lower() == "basic":
            user, _, pw = base64.b64decode(value.strip()).decode().partition(":")
            return user, pw
        if scheme.lower() == "bearer":
            user, _, pw = value.strip().partition(":")
            return user, pw
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError(401, "unauthorized", "send the camera's upload credentials (HTTP Basic or Bearer user:password)",
                   {"WWW-Authenticate": 'Basic realm="alarmcloud-ingest"'})


async def _stream_to(request: Request, dest: Path, cap: int) -> int:
    """Write the body to ``dest``; 413 as soon as the cap is passed (the rest is never read)."""
    n = 0
    with open(dest, "wb") as fh:
        async for chunk in request.stream():
            n += len(chunk)
            if n > cap:
                fh.close()
                dest.unlink(missing_ok=True)
                raise ApiError(413, "payload_too_large", f"uploads are limited to {cap} bytes",
                               {"Connection": "close"})
            fh.write(chunk)
    return n


def _split_multipart(raw: Path, content_type: str, out_dir: Path) -> tuple[Path | None, bytes | None,
                                                                            dict[str, str]]:
    """Parse a multipart body from disk: the video part to a file, a JPEG part as snapshot, fields as meta."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "bad_multipart", "multipart body without boundary")
    fields: dict[str, str] = {}
    state: dict[str, Any] = {"headers": {}, "name": None, "fh": None, "buf": b"", "kind": None}
    video: list[Path] = []
    image: list[bytes] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hf"] = state.get("hf", b"") + data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hv"] = state.get("hv", b"") + data[start:end]

    def on_header_end() -> None:
        state["headers"][state.pop("hf", b"").lower()] = state.pop("hv", b"")

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode()
        ctype = state["headers"].get(b"content-type", b"").decode().lower()
        state["name"] = name
        if b"filename" in disp and (ctype.startswith("video/") or name in ("file", "clip", "video")):
            p = out_dir / f"{raw.name}.part{len(video)}"
            state["fh"] = open(p, "wb")  # noqa: SIM115 - closed in on_part_end (streaming parser callbacks)
            state["kind"] = "video"
            video.append(p)
        elif b"filename" in disp and ctype.startswith("image/"):
            state["kind"] = "image"
        else:
            state["kind"] = "field"
        state["buf"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["kind"] == "video":
            state["fh"].write(data[start:end])
        else:
            state["buf"] += data[start:end]
            if len(state["buf"]) > 2 * 1024 * 1024:
                raise ApiError(413, "payload_too_large", "form fields and snapshots are limited to 2 MB")

    def on_part_end() -> None:
        if state["kind"] == "video":
            state["fh"].close()
        elif state["kind"] == "image":
            image.append(state["buf"])
        elif state["name"]:
            fields[state["name"]] = state["buf"].decode(errors="replace")[:500]
        state["headers"] = {}

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        with open(raw, "rb") as fh:
            while chunk := fh.read(1024 * 1024):
                parser.write(chunk)
        parser.finalize()
    except ApiError:
        for p in video:
            p.unlink(missing_ok=True)
        raise
    except Exception:
        for p in video:
            p.unlink(missing_ok=True)
        raise ApiError(400, "bad_multipart", "the multipart body is malformed") from None
    for extra in video[1:]:
        extra.unlink(missing_ok=True)
    return (video[0] if video else None), (image[0] if image else None), fields


async def ingest_http(request: Request) -> Response:
    """Upload an alarm clip with the camera's upload credentials (raw video/mp4 or multipart)."""
    import anyio.to_thread

    app = core(request)
    user, pw = _upload_login(request)
    camera_id = await anyio.to_thread.run_sync(app.upload_logins.check, user, pw)
    if camera_id is None:
        raise ApiError(401, "invalid_credentials", "wrong camera upload credentials",
                       {"WWW-Authenticate": 'Basic realm="alarmcloud-ingest"'})
    cap = app.settings.ingest.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, "payload_too_large", f"uploads are limited to {cap} bytes", {"Connection": "close"})
    ctype = request.headers.get("content-type", "").lower()
    if not (ctype.startswith(("video/", "application/octet-stream", "multipart/form-data")) or not ctype):
        raise ApiError(415, "unsupported_media_type", "send video/mp4 or multipart/form-data")
    staged = app.blobs.tmp_path(f"http-{new_id()}")
    await _stream_to(request, staged, cap + (64 * 1024 if ctype.startswith("multipart/") else 0))
    meta: dict[str, Any] = {k: request.query_params.get(k) for k in ("recorded_at", "trigger", "original_name")
                            if request.query_params.get(k)}
    for header, key in (("x-recorded-at", "recorded_at"), ("x-trigger", "trigger"), ("x-file-name", "original_name")):
        if request.headers.get(header):
            meta[key] = request.headers[header][:255]
    snapshot = None
    if ctype.startswith("multipart/"):
        try:
            video, snapshot, fields = await anyio.to_thread.run_sync(_split_multipart, staged, ctype, staged.parent)
        finally:
            staged.unlink(missing_ok=True)
        if video is None:
            raise ApiError(400, "missing_file", "the multipart body has no video file part")
        staged = video
        meta.update({k: v for k, v in fields.items() if k in ("recorded_at", "trigger", "original_name")})
    try:
        result = await anyio.to_thread.run_sync(lambda: ingest_file(app, camera_id, staged, meta, snapshot))
    except Rejected as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    finally:
        staged.unlink(missing_ok=True)
    return JSONResponse({"clip_id": result.clip_id, "event_id": result.event_id, "series_id": result.series_id},
                        status_code=201)
