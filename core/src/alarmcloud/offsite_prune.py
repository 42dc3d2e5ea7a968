"""Deleting old off-site copies: an owner who sets ``offsite_keep_days`` keeps the copies of that many days in their
own storage (bucket, SFTP server, WebDAV folder), so a NAS or a metered bucket never fills up with years of clips.

Once a day per account (``run_due``, from the server's background loop; the first run soon after the setting
changes) and on the owner's demand (``POST /api/v1/me/offsite/prune``, also as a dry run), the day folders of the
copies' layout (``<folder>/<camera>/<YYYY>/<MM>/<DD>/``, ``offsite.object_key``) older than the kept days are
walked and the files alarmcloud wrote there are deleted: videos, their ``.json`` sidecars and the hidden part files
of interrupted uploads, recognised by their names (``<time>-<clip id>.mp4``); nothing else in the owner's storage is
touched, and the copies of clips the owner keeps here (``Clip.kept_at``: kept alarms and clips in a case) stay.
Emptied day, month and year folders are removed (a bucket has none). The day is the folder's (UTC), so a copy stays
at least ``keep_days`` and at most one day more. A destination that may not delete (the safer write-only key or
user) is reported as the run's error; nothing is deleted then. Copies of clips older than the kept days are not
made at all (``offsite.attempt``, ``offsite.backfill``), except of kept clips.
"""

from __future__ import annotations

import contextlib
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from sqlalchemy import or_, update
from sqlmodel import col, select

from alarmcloud.models import Account, Clip, aware, utcnow
from alarmcloud.offsite import SFTP, WEBDAV, BucketError, check_prefix, configured

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
#: the longest time an owner may keep copies for (about ten years); no value: every copy is kept
KEEP_DAYS_MAX = 3650
#: how often old copies are looked for per account
INTERVAL = timedelta(days=1)
#: a file alarmcloud wrote: ``<YYYYMMDD>T<HHMMSS>Z-<clip id>.mp4`` or ``.json`` (``.age`` after it when encrypted),
#: and the hidden part file of an interrupted upload (``.<name>.part`` on an SFTP server, ``.<name>.uploading`` in a
#: WebDAV folder)
NAME_RE = re.compile(r"\.?(?P<day>\d{8})T\d{6}Z-(?P<clip>[A-Za-z0-9_-]{1,64})\.(?P<ext>mp4|json)(?:\.age)?"
                     r"(?P<part>\.part|\.uploading)?")
#: the most a WebDAV folder listing may be (a day folder of many cameras' clips is far smaller)
LISTING_MAX_BYTES = 32 * 1024 * 1024
DAV = "{DAV:}"


@dataclass
class Pruned:
    """What a run deleted (or, as a dry run, would delete): clips (videos), files (with sidecars and part files) and
    their bytes; ``kept_clips``: copies of clips the owner keeps, left in place; ``before``: the first day kept."""

    before: str
    dry_run: bool
    deleted_clips: int = 0
    deleted_files: int = 0
    deleted_bytes: int = 0
    kept_clips: int = 0
    folders_removed: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Entry:
    name: str
    is_dir: bool
    size: int = 0


class Tree(Protocol):
    """The owner's storage below the copies' folder, as folders and files (paths relative to it, '/'-separated)."""

    def list(self, path: str) -> list[Entry]:
        """The folder's entries; none when it does not exist."""

    def delete(self, paths: list[str]) -> None:
        """Delete files; one already gone is fine."""

    def remove_folder(self, path: str) -> bool:
        """Remove the folder when it is empty (True: removed)."""


def first_kept_day(keep_days: int, now: datetime | None = None) -> date:
    """The oldest day (UTC) whose copies are kept: folders of earlier days are deleted."""
    return (aware(now or utcnow()).astimezone(UTC) - timedelta(days=keep_days)).date()


def check_keep_days(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= KEEP_DAYS_MAX:
        raise ValueError(f"a number of days from 1 to {KEEP_DAYS_MAX}, or null to keep every copy")
    return value


def too_old(acc: Account, clip: Clip, now: datetime | None = None) -> bool:
    """The clip's copy would be deleted by the next run at once: not copied (unless the owner keeps the clip)."""
    if not acc.offsite_keep_days or clip.kept_at is not None:
        return False
    return aware(clip.started_at).astimezone(UTC).date() < first_kept_day(acc.offsite_keep_days, now)


# ---------------------------------------------------------------- the three kinds of storage


class _Bucket:
    def __init__(self, store: Any, prefix: str, acc: Account) -> None:
        self.store, self.prefix, self.acc = store, prefix, acc

    def _key(self, path: str) -> str:
        return "/".join(p for p in (self.prefix, path) if p)

    def list(self, path: str) -> list[Entry]:
        import obstore

        key = self._key(path)
        with self._errors():
            found = obstore.list_with_delimiter(self.store, prefix=key or None)
        return [Entry(p.rstrip("/").rsplit("/", 1)[-1], True) for p in found["common_prefixes"]] + [
            Entry(str(o["path"]).rsplit("/", 1)[-1], False, int(o["size"])) for o in found["objects"]]

    def delete(self, paths: list[str]) -> None:
        import obstore

        with self._errors():  # S3's DeleteObjects, 1,000 keys a request; a missing key counts as deleted
            obstore.delete(self.store, [self._key(p) for p in paths])

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        from obstore.exceptions import BaseError

        from alarmcloud import offsite

        try:
            yield
        except (BaseError, OSError) as exc:
            error = offsite.bucket_error(exc, self.acc)
            if error.code == "access_denied":
                raise BucketError("access_denied", "the bucket's key may not list or delete the copies (a "
                                                   "write-only key, the safer one): delete old copies with the "
                                                   "bucket's lifecycle rules instead, or give a key that may "
                                                   "delete") from None
            raise error from None

    def remove_folder(self, path: str) -> bool:
        return False  # a bucket has no folders: the last key gone, the "folder" is too


class _Sftp:
    def __init__(self, sftp: Any, prefix: str, user: str) -> None:
        self.sftp, self.prefix, self.user = sftp, prefix, user

    def _path(self, path: str) -> str:
        return "/".join(p for p in (self.prefix, path) if p) or "."

    def list(self, path: str) -> list[Entry]:
        import stat

        try:
            attrs = self.sftp.listdir_attr(self._path(path))
        except FileNotFoundError:
            return []
        return [Entry(a.filename, a.st_mode is not None and stat.S_ISDIR(a.st_mode), int(a.st_size or 0))
                for a in attrs]

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            try:
                self.sftp.remove(self._path(path))
            except FileNotFoundError:
                pass
            except PermissionError as exc:
                raise BucketError("access_denied", f"the SFTP server does not let {self.user!r} delete "
                                                   f"{self._path(path)}: {exc.strerror or exc}") from None

    def remove_folder(self, path: str) -> bool:
        try:
            self.sftp.rmdir(self._path(path))
        except OSError:  # not empty (a file that is not ours), gone, or not allowed: it stays
            return False
        return True


class _Dav:
    def __init__(self, dav: Any, prefix: str) -> None:
        self.dav, self.prefix = dav, prefix

    def _path(self, path: str) -> str:
        return "/".join(p for p in (self.prefix, path) if p)

    def list(self, path: str) -> list[Entry]:
        folder = self._path(path)
        r = self.dav.request("PROPFIND", folder + "/" if folder else "", (207, 404), "list", headers={
            "Depth": "1", "Content-Type": "application/xml"}, content=(
            b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/></prop>'
            b'</propfind>'))
        if r.status_code == 404:
            return []
        if len(r.content) > LISTING_MAX_BYTES:
            raise BucketError("bucket_error", f"the WebDAV server's listing of {folder or 'the folder'} is larger "
                                              f"than {LISTING_MAX_BYTES // 2**20} MiB")
        own = unquote(self.dav.url(folder).path).rstrip("/")
        entries = []
        try:
            root = ET.fromstring(r.content)
        except ET.ParseError:
            raise BucketError("bucket_error", f"the WebDAV server's listing of {folder or 'the folder'} is not "
                                              "XML") from None
        for resp in root.iter(f"{DAV}response"):
            href = (resp.findtext(f"{DAV}href") or "").strip()
            where = unquote(urlsplit(href).path).rstrip("/")
            if not where or where == own:
                continue
            is_dir = resp.find(f".//{DAV}resourcetype/{DAV}collection") is not None
            size = (resp.findtext(f".//{DAV}getcontentlength") or "0").strip()
            entries.append(Entry(where.rsplit("/", 1)[-1], is_dir, int(size) if size.isdigit() else 0))
        return entries

    def delete(self, paths: list[str]) -> None:
        for path in paths:
            self.dav.request("DELETE", self._path(path), (200, 204, 404), "delete")

    def remove_folder(self, path: str) -> bool:
        if self.list(path):  # DELETE takes a folder with everything in it: only an empty one
            return False
        self.dav.request("DELETE", self._path(path) + "/", (200, 204, 404), "delete")
        return True


@contextlib.contextmanager
def open_tree(app: AlarmCloud, acc: Account) -> Iterator[Tree]:
    """The owner's storage, connected as the copies connect. Raises ``BucketError`` or
    ``notify.TargetNotAllowed``."""
    prefix = check_prefix(acc.offsite_prefix or "")
    if acc.offsite_kind == SFTP:
        from alarmcloud import offsite_sftp

        with offsite_sftp.connect(app, acc) as conn, offsite_sftp.server_errors(acc):
            yield _Sftp(conn.sftp, prefix, acc.offsite_sftp_user or "")
    elif acc.offsite_kind == WEBDAV:
        from alarmcloud import offsite_webdav

        with offsite_webdav.connect(app, acc) as dav:
            yield _Dav(dav, prefix)
    else:
        from alarmcloud import offsite

        offsite.check_endpoint(app, acc.offsite_endpoint or "")
        store = offsite._store(app, acc, offsite.open_secret(app, acc))
        yield _Bucket(store, prefix, acc)


# ---------------------------------------------------------------- the walk


def _numbered(entries: list[Entry], digits: int) -> list[str]:
    return sorted(e.name for e in entries if e.is_dir and len(e.name) == digits and e.name.isdigit())


def _kept(app: AlarmCloud, account_id: str, clip_ids: set[str]) -> set[str]:
    """Those of the clips the owner keeps (a kept alarm, a clip in a case)."""
    if not clip_ids:
        return set()
    with app.db.session() as s:
        return set(s.exec(select(Clip.id).where(Clip.account_id == account_id, col(Clip.id).in_(sorted(clip_ids)),
                                                col(Clip.kept_at).is_not(None))).all())


def prune(app: AlarmCloud, acc: Account, dry_run: bool = False, now: datetime | None = None,
          tree: Tree | None = None) -> Pruned:
    """Delete the copies of the days before ``first_kept_day`` (see the module); ``dry_run``: only count them.
    Raises ``BucketError`` (e.g. ``access_denied`` for a destination that may not delete) or
    ``notify.TargetNotAllowed``."""
    assert acc.offsite_keep_days
    before = first_kept_day(acc.offsite_keep_days, now)
    result = Pruned(before=before.isoformat(), dry_run=dry_run)
    if tree is None:
        with open_tree(app, acc) as opened:
            return _walk(app, acc, opened, before, result)
    return _walk(app, acc, tree, before, result)


def _walk(app: AlarmCloud, acc: Account, tree: Tree, before: date, result: Pruned) -> Pruned:
    for camera in sorted(e.name for e in tree.list("") if e.is_dir):
        for year in _numbered(tree.list(camera), 4):
            if int(year) > before.year:
                continue
            emptied_year = False
            for month in _numbered(tree.list(f"{camera}/{year}"), 2):
                if (int(year), int(month)) > (before.year, before.month):
                    continue
                emptied_month = False
                for day in _numbered(tree.list(f"{camera}/{year}/{month}"), 2):
                    try:
                        when = date(int(year), int(month), int(day))
                    except ValueError:
                        continue
                    if when < before and _day(app, acc, tree, f"{camera}/{year}/{month}/{day}", when, result):
                        emptied_month = True
                if emptied_month and not result.dry_run and tree.remove_folder(f"{camera}/{year}/{month}"):
                    result.folders_removed += 1
                    emptied_year = True
            if emptied_year and not result.dry_run and tree.remove_folder(f"{camera}/{year}"):
                result.folders_removed += 1
    return result


def _day(app: AlarmCloud, acc: Account, tree: Tree, folder: str, when: date, result: Pruned) -> bool:
    """One day folder: delete our files but a kept clip's; True when the folder was removed."""
    entries = tree.list(folder)
    ours = [(e, m) for e in entries if not e.is_dir and (m := NAME_RE.fullmatch(e.name)) is not None
            and m["day"] == f"{when:%Y%m%d}"]
    kept = _kept(app, acc.id, {m["clip"] for _, m in ours})
    result.kept_clips += len({m["clip"] for _, m in ours if m["clip"] in kept and m["ext"] == "mp4"
                              and not m["part"]})
    gone = [(entry, m) for entry, m in ours if m["clip"] not in kept]
    if gone and not result.dry_run:
        tree.delete([f"{folder}/{entry.name}" for entry, _ in gone])
    result.deleted_files += len(gone)
    result.deleted_bytes += sum(entry.size for entry, _ in gone)
    result.deleted_clips += sum(1 for _, m in gone if m["ext"] == "mp4" and not m["part"])
    if len(gone) == len(entries) and entries and not result.dry_run and tree.remove_folder(folder):
        result.folders_removed += 1
        return True
    return False


# ---------------------------------------------------------------- when it runs


def run(app: AlarmCloud, account_id: str, dry_run: bool = False, now: datetime | None = None) -> Pruned:
    """One run for the account with its settings now, its result recorded (not a dry run's); raises what
    ``prune`` raises (recorded as the run's error first)."""
    with app.db.session() as s:
        acc = s.get(Account, account_id)
    if acc is None or not acc.offsite_keep_days or not configured(acc):
        raise BucketError("not_configured", "set how many days of copies to keep, and the destination, first")
    try:
        result = prune(app, acc, dry_run=dry_run, now=now)
    except BucketError as exc:
        if not dry_run:
            _record(app, account_id, None, str(exc), now)
        raise
    if not dry_run:
        _record(app, account_id, result.deleted_files, None, now)
        if result.deleted_files:
            log.info("account %s: %d old off-site copies deleted (%d files, before %s)", account_id,
                     result.deleted_clips, result.deleted_files, result.before)
    return result


def _record(app: AlarmCloud, account_id: str, deleted: int | None, error: str | None,
            now: datetime | None = None) -> None:
    with app.db.session() as s:
        acc = s.get(Account, account_id)
        if acc is not None:
            acc.offsite_pruned_at = now or utcnow()
            acc.offsite_prune_deleted, acc.offsite_prune_error = deleted, error[:500] if error else None
            s.add(acc)
            s.commit()


def _claim(app: AlarmCloud, account_id: str, now: datetime) -> bool:
    """Take the account's daily run (one server of many gets it): its ``offsite_pruned_at`` is set to now when it
    is due."""
    with app.db.session() as s:
        claimed = s.execute(update(Account).where(
            col(Account.id) == account_id,
            or_(col(Account.offsite_pruned_at).is_(None), col(Account.offsite_pruned_at) <= now - INTERVAL))
            .values(offsite_pruned_at=now)).rowcount
        s.commit()
    return bool(claimed)


def run_due(app: AlarmCloud, now: datetime | None = None) -> list[str]:
    """The daily runs that are due: accounts with copies on, a number of days to keep and no run in the last
    ``INTERVAL`` (none after the setting changed), not restricted (Art. 18: nothing runs by itself). A run that
    fails is recorded and tried again the next day. The ids of the accounts whose run went through."""
    if not app.settings.offsite.enabled:
        return []
    now = now or utcnow()
    with app.db.session() as s:
        due = s.exec(select(Account.id).where(
            col(Account.offsite_enabled).is_(True), col(Account.offsite_keep_days).is_not(None),
            col(Account.restricted).is_(False),
            or_(col(Account.offsite_pruned_at).is_(None), col(Account.offsite_pruned_at) <= now - INTERVAL))).all()
    done = []
    for account_id in due:
        if not _claim(app, account_id, now):
            continue  # another server took it
        try:
            run(app, account_id, now=now)
        except BucketError as exc:
            log.warning("account %s: old off-site copies could not be deleted: %s", account_id, exc)
            continue
        except Exception as exc:  # an address refused meanwhile, a server's odd answer: recorded, not raised
            log.warning("account %s: old off-site copies could not be deleted: %s", account_id, exc)
            _record(app, account_id, None, str(exc) or type(exc).__name__, now)
            continue
        done.append(account_id)
    return done
