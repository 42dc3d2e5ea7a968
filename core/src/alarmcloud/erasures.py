"""The erasure register: what customers deleted, kept apart from the database so that a restore can delete it again.

A backup made before an erasure still holds the account; restoring it would bring the account back. The register
is an append-only file of JSON lines, one per deletion, holding ids and times only (no e-mail address, name or
plate text)::

    {"v": 1, "at": "2026-11-21T10:00:00Z", "kind": "account", "id": "<account id>", "n": "<random>"}
    {"v": 1, "at": "2026-11-21T10:05:00Z", "kind": "clip", "id": "<clip id>", "n": "<random>"}
    {"v": 1, "at": "2026-11-21T10:06:00Z", "kind": "camera", "id": "<camera id>", "n": "<random>"}
    {"v": 1, "at": "2026-11-21T10:06:30Z", "kind": "consent", "id": "<consent row id>", "created": "<its time>", ...}
    {"v": 1, "at": "2026-11-21T10:06:40Z", "kind": "masks", "id": "<camera id>", "masks": [[x0, y0, x1, y1]], ...}
    {"v": 1, "at": "2026-11-21T10:07:00Z", "kind": "void", "ref": "<random of a line above>"}

Kinds: ``account`` (erased by the customer, for inactivity, or a sub-user removed by its owner; the account's
sub-users get a line each), ``clip`` (an event the owner deleted), ``camera`` (a camera the owner deleted with all
its clips), ``consent`` (a consent withdrawn: a clip released for training, or an integration link ended by the
customer, the platform or the operator; ``created`` is the consent row's creation time, so that a row of a restored
database that reuses the number is not taken for it), ``masks`` (a camera's privacy masks as the owner saved them:
rectangles, fractions of the frame; an empty list when they were removed). Deletions by retention and quota
eviction are not written: the restored data's own retention and quota delete those again.

A line is written and synced *before* the deletion's database commit (``recorded``); when the commit fails the line
is voided by a ``void`` line. A crash between the two leaves a line for a deletion that was asked for but perhaps
not committed: a replay then deletes it, as the customer asked (an id a replay does not find is a no-op). Lines are
appended with one ``write`` under an exclusive ``flock``; a line torn by a crash while appending is skipped with a
warning when read, and the next append starts on a fresh line.

``replay`` applies a register to a database and blob store (``alarmcloud restore``, ``alarmcloud privacy erasures
replay``) with the live code: ``privacy_erase.delete_account_data`` + ``erase_blobs``, ``storage.delete_clip_rows``,
``storage.delete_camera_rows``; a consent is marked withdrawn at the line's time, a link's grant and tokens are
revoked (``oauth.revoke_link``) with its plugin's state of the account, a release's training copy is removed; each
camera gets the masks of its latest ``masks`` line and the clips stored without them are queued for masking
(``masks_apply.start_job``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alarmcloud.blobstore import fsync_dir
from alarmcloud.models import iso_seconds

if TYPE_CHECKING:
    from alarmcloud.app import TrainingArea
    from alarmcloud.blobstore import BlobStore
    from alarmcloud.config import Settings
    from alarmcloud.db import Database
    from alarmcloud.models import Consent

log = logging.getLogger(__name__)

FILE_NAME = "erasures.jsonl"
VERSION = 1
KINDS = ("account", "clip", "camera", "consent", "masks")
VOID = "void"
#: ids are random hex (``models.new_id``); anything else (an e-mail address, a name) is refused
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class RegisterError(OSError):
    """The register cannot be written: the deletion is not committed (it would not survive a restore)."""


def register_path(settings: Settings) -> Path:
    """Where this deployment keeps its register: ``privacy.erasure_register`` or ``<data_dir>/erasures.jsonl``."""
    configured = settings.privacy.erasure_register
    return Path(configured) if configured is not None else Path(settings.data_dir) / FILE_NAME


def _now() -> str:
    return iso_seconds(datetime.now(UTC))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """The register opened for appending under an exclusive lock (the file ``prune`` has not replaced meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                if created:
                    fsync_dir(path.parent)
                yield fd
                return
        finally:
            os.close(fd)  # closing releases the lock


def append_lines(path: Path, lines: list[dict[str, Any]]) -> None:
    """Append ``lines`` in one write and sync them to disk (raises ``RegisterError``)."""
    if not lines:
        return
    data = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)
    try:
        with _locked(path) as fd:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # the last append was torn by a crash: start on a fresh line
            if os.write(fd, data) != len(data):
                raise OSError("short write")
            os.fsync(fd)
    except OSError as exc:
        raise RegisterError(f"cannot write the erasure register {path}: {exc}") from exc


def _extra(kind: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The fields a kind carries besides its id, checked (ValueError): ``created`` of a consent, ``masks``."""
    if kind == "consent":
        created = extra.get("created")
        if set(extra) != {"created"} or not isinstance(created, str) or not _TIME.match(created):
            raise ValueError("a consent line holds the consent's creation time")
        return {"created": created}
    if kind == "masks":
        from alarmcloud.errors import ApiError
        from alarmcloud.masks import validate_masks

        if set(extra) != {"masks"}:
            raise ValueError("a masks line holds the masks only")
        try:
            return {"masks": validate_masks(extra["masks"]) if extra["masks"] != [] else []}
        except ApiError as exc:
            raise ValueError(exc.message) from None
    if extra:
        raise ValueError("the erasure register holds ids and times only")
    return {}


def new_line(kind: str, id_: str, **extra: Any) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown register kind {kind!r}")
    if not _ID.match(id_):
        raise ValueError("the erasure register holds ids only")
    return {"v": VERSION, "at": _now(), "kind": kind, "id": id_, **_extra(kind, extra), "n": secrets.token_hex(8)}


def consent_line(consent: Consent) -> dict[str, Any]:
    """The line of a withdrawn consent (a clip release or an integration link)."""
    assert consent.id is not None
    return new_line("consent", str(consent.id), created=iso_seconds(consent.created_at))


def masks_line(camera_id: str, masks: list[list[float]]) -> dict[str, Any]:
    """The line of a camera's privacy masks as saved (geometry only)."""
    return new_line("masks", camera_id, masks=masks)


def append(path: Path, kind: str, ids: Iterable[str]) -> list[str]:
    """Write one line per id; returns the lines' nonces (for ``void``)."""
    lines = [new_line(kind, i) for i in dict.fromkeys(ids)]
    append_lines(path, lines)
    return [line["n"] for line in lines]


def recorded(settings: Settings, kind: str, ids: Iterable[str]) -> contextlib.AbstractContextManager[None]:
    """Around a deletion's commit: the lines are on disk before it, voided when it fails."""
    return recorded_lines(settings, [new_line(kind, i) for i in dict.fromkeys(ids)])


@contextlib.contextmanager
def recorded_lines(settings: Settings, lines: list[dict[str, Any]]) -> Iterator[None]:
    """``recorded`` for lines made with ``new_line`` (``consent_line``, ``masks_line``); no lines: nothing written."""
    path = register_path(settings)
    append_lines(path, lines)
    nonces = [line["n"] for line in lines]
    try:
        yield
    except BaseException:
        try:
            append_lines(path, [{"v": VERSION, "at": _now(), "kind": VOID, "ref": n} for n in nonces])
        except RegisterError:
            log.exception("could not void the register lines of a failed deletion")
        raise


# ---------------------------------------------------------------- reading


@dataclass
class Entry:
    kind: str
    id: str
    at: str
    line: str  # the line as read (copied into a restored folder's register)
    extra: dict[str, Any] = field(default_factory=dict)  # ``created`` of a consent, ``masks`` of a camera


@dataclass
class Register:
    entries: list[Entry] = field(default_factory=list)
    lines: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def last_at(self) -> str | None:
        return max((e.at for e in self.entries), default=None)

    def describe(self) -> str:
        """What the entries record, by kind: ``3 lines (1 account erased, 2 clips deleted)``."""
        counts = {k: 0 for k in KINDS}
        for e in self.entries:
            counts[e.kind] += 1
        parts = [f"{n} {_KIND_WORDS[k][n != 1]}" for k, n in counts.items() if n]
        lines = f"{len(self.entries)} line{'' if len(self.entries) == 1 else 's'}"
        return f"{lines} ({', '.join(parts)})" if parts else lines


_KIND_WORDS = {  # kind -> (one, many)
    "account": ("account erased", "accounts erased"),
    "clip": ("clip deleted", "clips deleted"),
    "camera": ("camera deleted", "cameras deleted"),
    "consent": ("consent withdrawn", "consents withdrawn"),
    "masks": ("privacy mask change", "privacy mask changes"),
}


def read(paths: Iterable[Path]) -> Register:
    """The valid, not voided entries of the registers ``paths``, in order; unreadable lines are skipped with a
    warning (the last line of a file torn by a crash while appending, or a damaged one)."""
    out = Register()
    voided: set[str] = set()
    raw: list[tuple[Entry, str | None]] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise RegisterError(f"cannot read the erasure register {path}: {exc}") from exc
        lines = data.split(b"\n")
        torn_tail = lines[-1] != b""
        if not torn_tail:
            lines.pop()
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            out.lines += 1
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
                if obj.get("kind") == VOID and isinstance(obj.get("ref"), str):
                    voided.add(obj["ref"])
                    continue
                if obj.get("kind") not in KINDS or not isinstance(obj.get("id"), str) or not _ID.match(obj["id"]):
                    raise ValueError("no kind and id")
                extra = _extra(obj["kind"], {k: v for k, v in obj.items() if k in ("created", "masks")})
                at = obj.get("at") if isinstance(obj.get("at"), str) else ""
                raw.append((Entry(obj["kind"], obj["id"], at, line.decode(), extra), obj.get("n")))
            except (ValueError, UnicodeDecodeError):
                out.skipped += 1
                if torn_tail and i == len(lines):
                    out.warnings.append(f"{path}: the last line is cut short (a crash while appending): skipped")
                else:
                    out.warnings.append(f"{path}: line {i} is not a register line: skipped")
    seen: set[str] = set()
    for entry, nonce in raw:
        if (isinstance(nonce, str) and nonce in voided) or entry.line in seen:
            continue
        seen.add(entry.line)
        out.entries.append(entry)
    return out


# ---------------------------------------------------------------- replay


@dataclass
class ReplayReport:
    accounts: list[str] = field(default_factory=list)  # ids erased (sub-users included)
    clips: list[str] = field(default_factory=list)  # clips deleted one by one
    cameras: list[str] = field(default_factory=list)  # cameras deleted with their clips
    camera_clips: int = 0  # clips that went with those cameras
    absent: int = 0  # entries whose id the data does not hold (deleted before the backup, or never there)
    consents: list[str] = field(default_factory=list)  # consents withdrawn again (releases and links)
    links: int = 0  # integration links (grants and tokens) that ended again with them
    training_copies: int = 0  # training copies of clips whose release was withdrawn again
    masks: list[str] = field(default_factory=list)  # cameras whose privacy masks were set again
    mask_jobs: dict[str, int] = field(default_factory=dict)  # camera id -> clips queued for masking

    @property
    def applied(self) -> int:
        return len(self.accounts) + len(self.clips) + len(self.cameras) + len(self.consents) + len(self.masks)

    def summary(self) -> str:
        out = (f"{len(self.accounts)} account(s), {len(self.clips)} clip(s), {len(self.cameras)} camera(s) "
               f"with {self.camera_clips} clip(s); {self.absent} already absent")
        if self.consents:
            out += (f"; withdrawn again: {len(self.consents)} consent(s), {self.links} integration link(s) ended, "
                    f"{self.training_copies} training copy(ies) removed")
        if self.masks:
            out += (f"; privacy masks set again on {len(self.masks)} camera(s), "
                    f"{sum(self.mask_jobs.values())} clip(s) queued for masking")
        return out


def _withdraw_consent(s: Any, e: Entry, report: ReplayReport) -> str | None:
    """Withdraw again the consent of a ``consent`` entry; the clip whose training copy goes, if any."""
    from alarmcloud.models import Consent
    from alarmcloud.oauth import revoke_link
    from alarmcloud.privacy import _released

    c = s.get(Consent, int(e.id)) if e.id.isdigit() and len(e.id) <= 18 else None  # a row number (bigint)
    if c is None or iso_seconds(c.created_at) != e.extra.get("created"):
        report.absent += 1  # not in this data, or another consent that got the same number later
        return None
    if c.withdrawn_at is not None:
        return None  # withdrawn in this data already
    # a link: its grant and tokens end as well (``revoke_link`` marks the consent withdrawn, at the time set below)
    if c.kind == "integration_grant" and revoke_link(s, c.account_id, c.subject):
        report.links += 1
        _drop_link_state(s, c.account_id, c.subject)
    at = _time(e.at)
    c.withdrawn_at = at if at is not None else c.withdrawn_at or datetime.now(UTC)
    s.add(c)
    s.flush()
    report.consents.append(e.id)
    return c.subject if c.kind == "clip_release" and not _released(s, c.subject) else None


def _drop_link_state(s: Any, account_id: str, client_id: str) -> None:
    """Delete what the integration's plugin keeps for the account (its platform grant, the platform's user id) when
    no other link of the account to that integration is left: the plugins delete it when a link ends, and a
    restored copy of it would go on reporting to the platform (Alexa event gateway, Google HomeGraph)."""
    from sqlmodel import select

    from alarmcloud.models import PluginState
    from alarmcloud.oauth_models import OAuthClient, OAuthGrant

    client = s.get(OAuthClient, client_id)
    if client is None or s.exec(select(OAuthGrant.id).where(
            OAuthGrant.account_id == account_id, OAuthGrant.integration == client.integration,
            OAuthGrant.revoked_at == None)).first() is not None:  # noqa: E711
        return
    for row in s.exec(select(PluginState).where(PluginState.plugin == client.integration,
                                                PluginState.account_id == account_id)).all():
        s.delete(row)


def _time(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None


def _set_masks(database: Database, camera_id: str, masks: list[list[float]], report: ReplayReport) -> None:
    """Give a camera the masks its owner saved last and queue its clips stored without them for masking."""
    from alarmcloud.masks_apply import pending_clips, start_job
    from alarmcloud.models import Camera

    with database.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is None:
            if camera_id not in report.cameras:  # not counted twice when this replay deleted the camera
                report.absent += 1
            return
        if list(cam.privacy_masks or []) != masks:
            cam.privacy_masks = masks or None
            s.add(cam)
            s.commit()
            report.masks.append(camera_id)
            if masks and pending_clips(s, cam):
                job, _ = start_job(s, cam)
                report.mask_jobs[camera_id] = job.total


def erase_account(s: Any, blobs: BlobStore, training: TrainingArea, account_id: str,
                  key_ok: Callable[[str], bool] = lambda key: True) -> list[str]:
    """Erase an account with its sub-users from this data, rows (committed) then files, with the live erasure's code
    and without telling plugins (their links ended at the first erasure); the ids erased."""
    from alarmcloud.privacy_erase import delete_account_data, erase_blobs

    ids, clip_ids, keys, _ = delete_account_data(s, account_id)
    s.commit()
    erase_blobs(blobs, training, ids, clip_ids, [k for k in keys if key_ok(k)])
    return ids


def replay(database: Database, blobs: BlobStore, training: TrainingArea, entries: Iterable[Entry],
           key_ok: Callable[[str], bool] = lambda key: True) -> ReplayReport:
    """Delete again what ``entries`` name, withdraw again the consents they name, with the live code; ids not
    found are no-ops. Then each camera gets the masks of its last ``masks`` entry (when it still exists).
    ``key_ok`` filters the blob keys deleted (a restore skips keys outside its store: never copied)."""
    from sqlmodel import col, select

    from alarmcloud.models import Account, Camera, Clip
    from alarmcloud.storage import delete_camera_rows, delete_clip_rows

    report = ReplayReport()
    masks: dict[str, tuple[str, list[list[float]]]] = {}

    def _delete(keys: list[str]) -> None:  # the files of clips whose rows are gone
        for key in keys:
            if key_ok(key):
                blobs.delete(key)

    for e in entries:
        with database.session() as s:
            if e.kind == "account":
                if s.get(Account, e.id) is None:
                    report.absent += 1
                    continue
                report.accounts += erase_account(s, blobs, training, e.id, key_ok)
            elif e.kind == "clip":
                clip = s.get(Clip, e.id)
                if clip is None:
                    report.absent += 1
                    continue
                keys = delete_clip_rows(s, clip)
                s.commit()
                _delete(keys)
                report.clips.append(e.id)
            elif e.kind == "camera":
                if s.get(Camera, e.id) is None:
                    report.absent += 1
                    continue
                n = len(s.exec(select(Clip.id).where(col(Clip.camera_id) == e.id)).all())
                keys = delete_camera_rows(s, e.id)
                s.commit()
                _delete(keys)
                report.cameras.append(e.id)
                report.camera_clips += n
            elif e.kind == "consent":
                clip_id = _withdraw_consent(s, e, report)
                s.commit()
                if clip_id is not None:
                    report.training_copies += training.withdraw(clip_id)
            elif e.kind == "masks" and (e.id not in masks or e.at >= masks[e.id][0]):
                masks[e.id] = (e.at, e.extra["masks"])  # a camera's latest line: what its owner saved last
    for camera_id, (_, rects) in masks.items():
        _set_masks(database, camera_id, rects, report)
    return report


def prune(path: Path, before: datetime, dry_run: bool = False) -> tuple[int, int]:
    """Drop the lines written before ``before`` (and unreadable ones); returns (lines kept, lines dropped).
    The file is replaced atomically under the appenders' lock."""
    cutoff = iso_seconds(before)
    with _locked(path):
        data = path.read_bytes()
        keep: list[bytes] = []
        dropped = 0
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                at = obj.get("at") if isinstance(obj, dict) else None
            except (ValueError, UnicodeDecodeError):
                at = None
            if isinstance(at, str) and at >= cutoff:
                keep.append(line)
            else:
                dropped += 1
        if not dry_run and dropped:
            tmp = path.with_name(path.name + ".prune")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(b"".join(line + b"\n" for line in keep))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            fsync_dir(path.parent)
    return len(keep), dropped
