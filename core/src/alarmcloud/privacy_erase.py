"""Erasure (Art. 17), inactive accounts and retention schedules per data kind."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from alarmcloud import erasures, events
from alarmcloud.errors import database_race
from alarmcloud.models import (
    AccessLog,
    Account,
    Clip,
    ClipAccess,
    DownloadLink,
    FindingRow,
    Outbox,
    PluginState,
    SessionRow,
    aware,
    iso,
    utcnow,
)
from alarmcloud.storage import delete_clip_rows, expired_clips, kept_since_before, retention_days

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud, TrainingArea
    from alarmcloud.blobstore import BlobStore

log = logging.getLogger(__name__)

#: columns that tie a row to an account when they hold its id
ACCOUNT_COLUMNS = ("account_id", "owner_id", "user_id", "subject_account_id")


def _account_ids(s: Session, account_id: str) -> list[str]:
    """The account and its sub-users."""
    subs = s.exec(select(Account.id).where(Account.owner_id == account_id)).all()
    return [account_id, *subs]


def _clip_ids(s: Session, ids: list[str]) -> list[str]:
    return list(s.exec(select(Clip.id).where(col(Clip.account_id).in_(ids))).all())


def _load_all_tables() -> None:
    """Import optional model modules so ``SQLModel.metadata`` knows every table (OAuth grants included)."""
    import importlib
    import importlib.util

    for mod in ("alarmcloud.oauth_models",):
        if importlib.util.find_spec(mod):
            importlib.import_module(mod)


def delete_account_rows(s: Session, ids: list[str]) -> dict[str, int]:
    """Delete every row tied to ``ids`` in every table, children first; returns counts per table."""
    _load_all_tables()
    counts: dict[str, int] = {}
    # pass 1: primary keys of the rows that go, per table (for tables that only reference them)
    doomed: dict[str, list[Any]] = {}
    tables = list(SQLModel.metadata.sorted_tables)
    for table in tables:
        cond = _ownership(table, ids, doomed)
        if cond is None:
            continue
        pk = list(table.primary_key.columns)
        if len(pk) == 1:
            doomed[table.name] = [r[0] for r in s.execute(sa.select(pk[0]).where(cond)).all()]
    for table in reversed(tables):
        cond = _ownership(table, ids, doomed)
        if cond is None:
            continue
        n = s.execute(table.delete().where(cond)).rowcount
        if n:
            counts[table.name] = n
    return counts


def _ownership(table: sa.Table, ids: list[str], doomed: dict[str, list[Any]]) -> Any:
    """The condition selecting ``table``'s rows that belong to the accounts ``ids`` (or None)."""
    conds = []
    if table.name == Account.__tablename__:
        conds.append(table.c.id.in_(ids))
    for name in ACCOUNT_COLUMNS:
        if name in table.c:
            conds.append(table.c[name].in_(ids))
    for column in table.c:
        for fk in column.foreign_keys:
            target = fk.column.table.name
            if target == Account.__tablename__:
                conds.append(column.in_(ids))
            elif target in doomed and doomed[target]:
                conds.append(column.in_(doomed[target]))
    if not conds:
        return None
    return sa.or_(*conds)


def delete_account_data(s: Session, account_id: str) -> tuple[list[str], list[str], list[str], dict[str, int]]:
    """Delete the rows of an account and its sub-users (the caller commits): their ids, their clips' ids, the blob
    keys of those clips' videos and thumbnails (``erase_blobs`` after the commit) and the rows deleted per table."""
    ids = _account_ids(s, account_id)
    # lock the account rows first (PostgreSQL; SQLite transactions are serial): a writer that checks an account is
    # live under a key-share lock (the usage flush) waits for this erasure, then sees the account gone, and one
    # that got there first has committed its rows before this erasure reads what to delete
    s.exec(select(Account.id).where(col(Account.id).in_(ids)).with_for_update()).all()
    clips = s.exec(select(Clip).where(col(Clip.account_id).in_(ids))).all()
    keys = [k for c in clips for k in (c.blob_key, c.thumb_key) if k]
    clip_ids = [c.id for c in clips]
    return ids, clip_ids, keys, delete_account_rows(s, ids)


def erase_blobs(blobs: BlobStore, training: TrainingArea, ids: list[str], clip_ids: list[str],
                blob_keys: list[str]) -> int:
    """Delete clips, thumbnails, exports and training-area copies of the accounts ``ids``."""
    n = 0
    for key in blob_keys:
        blobs.delete(key)
        n += 1
    for aid in ids:
        blobs.delete_prefix(aid)
        blobs.delete_prefix(f"exports/{aid}")
    n += training.withdraw_many(clip_ids)  # one listing of a shared store, not one per clip
    return n


def _emit_deleted(core: AlarmCloud, ids: list[str]) -> None:
    """Tell plugins (revoke platform links) and wait for them, before the rows go."""
    for aid in ids:
        ev = events.Event(events.ACCOUNT_DELETED, aid)
        loop = core.loop
        running = None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            pass
        try:
            if loop is not None and loop.is_running() and running is not loop:
                asyncio.run_coroutine_threadsafe(core.emit(ev), loop).result(timeout=120)
            else:
                asyncio.run(core.emit(ev))
        except Exception:
            log.exception("account.deleted hooks failed")


#: attempts of an erasure's transaction that PostgreSQL picked to break a deadlock
ERASE_ATTEMPTS = 4


def _erase_data(core: AlarmCloud, account_id: str) -> dict[str, Any]:
    for attempt in range(1, ERASE_ATTEMPTS + 1):
        try:
            with core.db.session() as s:
                ids, clip_ids, keys, counts = delete_account_data(s, account_id)
                # the ids go to the erasure register before the commit (a restore of an older backup erases them
                # again); a register that cannot be written stops the erasure here, before anything is deleted
                with erasures.recorded(core.settings, "account", ids):
                    s.commit()
            break
        except sa.exc.DBAPIError as exc:
            # a detection write-back of one of the account's clips holds the clip and waits for the account, which
            # this holds: the database rolls one of the two back; the erasure, which must happen, starts again
            race = database_race(exc)
            if race is None or race[1] != "busy" or attempt == ERASE_ATTEMPTS:
                raise
            log.warning("account erasure lost a deadlock (attempt %d of %d), trying again", attempt, ERASE_ATTEMPTS)
            time.sleep(0.1 * attempt)
    blobs = erase_blobs(core.blobs, core.training, ids, clip_ids, keys)
    for aid in ids:
        core.forget_upload_login(aid)
    log.info("account erased: %d rows, %d blobs", sum(counts.values()), blobs)
    return {"accounts": len(ids), "rows": counts, "blobs": blobs}


def erase_account(core: AlarmCloud, account_id: str) -> dict[str, Any]:
    """Remove every row and blob of the account and its sub-users; plugins hear ``account.deleted`` first."""
    with core.db.session() as s:
        ids = _account_ids(s, account_id)
    _emit_deleted(core, ids)
    return _erase_data(core, account_id)


async def erase_account_async(core: AlarmCloud, account_id: str) -> dict[str, Any]:
    """``erase_account`` from the event loop."""
    import anyio

    ids = await core.db.run(lambda s: _account_ids(s, account_id))
    for aid in ids:
        try:
            await core.emit(events.Event(events.ACCOUNT_DELETED, aid))
        except Exception:
            log.exception("account.deleted hooks failed")
    return await anyio.to_thread.run_sync(_erase_data, core, account_id)


# ---------------------------------------------------------------- inactive accounts


def _last_activity(s: Session, acc: Account) -> datetime:
    """When the account or one of its sub-users was last used: a request, or a login (a new session)."""
    ids = _account_ids(s, acc.id)
    times = [aware(t) for t in s.exec(select(Account.last_active_at).where(col(Account.id).in_(ids))).all()]
    for created, seen in s.exec(select(SessionRow.created_at, SessionRow.last_seen_at)
                                .where(col(SessionRow.account_id).in_(ids))).all():
        times += [aware(created), aware(seen)]
    return max(times)


def process_inactive(core: AlarmCloud, dry_run: bool = False) -> dict[str, list[str]]:
    """Notice e-mail after ``inactive_days``; erasure ``inactive_grace_days`` after the notice."""
    cfg = core.settings.privacy
    now = utcnow()
    notify_before = now - timedelta(days=cfg.inactive_days)
    report: dict[str, list[str]] = {"noticed": [], "erased": [], "reactivated": []}
    to_erase: list[str] = []
    with core.db.session() as s:
        rows = s.exec(select(Account).where(Account.owner_id == None, Account.role != "operator")).all()  # noqa: E711
        for acc in rows:
            last = _last_activity(s, acc)
            notice = acc.deletion_notice_at
            if notice is not None and last > aware(notice):
                report["reactivated"].append(acc.id)
                if not dry_run:
                    acc.deletion_notice_at = None
                    s.add(acc)
                continue
            if notice is None and last < notify_before:
                report["noticed"].append(acc.id)
                if not dry_run:
                    acc.deletion_notice_at = now
                    s.add(acc)
                    erase_on = now + timedelta(days=cfg.inactive_grace_days)
                    s.add(Outbox(account_id=acc.id, kind="email", target=acc.email, payload={
                        "subject": "Your alarmcloud account will be deleted",
                        "text": f"Your account has not been used for {cfg.inactive_days} days. "
                                f"It and all its recordings will be deleted on {erase_on:%Y-%m-%d}.\n"
                                "Log in before then to keep it.\n"}))
            elif notice is not None and aware(notice) < now - timedelta(days=cfg.inactive_grace_days):
                report["erased"].append(acc.id)
                to_erase.append(acc.id)
        if not dry_run:
            s.commit()
    if not dry_run:
        for aid in to_erase:
            erase_account(core, aid)
    return report




# ---------------------------------------------------------------- retention per data kind


def run_retention(core: AlarmCloud, dry_run: bool = False) -> dict[str, Any]:
    """Enforce retention of clips, events, plates, access logs and exports (+ inactive accounts)."""
    st = core.settings
    cfg = st.privacy
    now = utcnow()
    report: dict[str, Any] = {"dry_run": dry_run, "at": iso(now)}
    keys: list[str] = []
    with core.db.session() as s:
        # clips = events: per account retention days or the default
        n_clips = 0
        for acc in s.exec(select(Account)).all():
            for clip in expired_clips(s, acc.id, retention_days(st, acc), now):
                n_clips += 1
                if not dry_run:
                    keys += delete_clip_rows(s, clip)
                    core.training.withdraw(clip.id)
        report["clips"] = n_clips
        report["events"] = n_clips
        # plate reads
        n_plates = 0
        if cfg.plates_days is not None:
            cutoff = now - timedelta(days=cfg.plates_days)
            q = (select(FindingRow.id).join(Clip, col(Clip.id) == FindingRow.clip_id)
                 .where(FindingRow.label == "plate", kept_since_before(cutoff)))
            plate_ids = list(s.exec(q).all())
            n_plates = len(plate_ids)
            if plate_ids and not dry_run:
                s.execute(sa.delete(FindingRow).where(col(FindingRow.id).in_(plate_ids)))
        report["plates"] = n_plates
        # access data: at most 90 days
        cutoff = now - timedelta(days=min(cfg.access_log_days, 90))
        cond = AccessLog.at < cutoff  # type: ignore[operator]
        report["access_log"] = s.execute(sa.select(sa.func.count()).select_from(AccessLog).where(cond)).scalar_one()
        if not dry_run:
            s.execute(sa.delete(AccessLog).where(cond))
        # who opened the clips (shown to the owner): as long as the access data
        cond = ClipAccess.at < cutoff  # type: ignore[operator]
        report["clip_access"] = s.execute(sa.select(sa.func.count()).select_from(ClipAccess).where(cond)).scalar_one()
        if not dry_run:
            s.execute(sa.delete(ClipAccess).where(cond))
        # download links that ran out (they name clips; a new link also removes them)
        cond = DownloadLink.expires_at < now  # type: ignore[operator]
        report["download_links"] = s.execute(
            sa.select(sa.func.count()).select_from(DownloadLink).where(cond)).scalar_one()
        if not dry_run:
            s.execute(sa.delete(DownloadLink).where(cond))
        # export jobs
        cutoff = now - timedelta(days=cfg.export_days)
        old = [r for r in s.exec(select(PluginState).where(PluginState.plugin == "privacy",
                                                           col(PluginState.key).startswith("export:"))).all()
               if aware(r.updated_at) < cutoff]
        report["exports"] = len(old)
        if not dry_run:
            for r in old:
                blob = (r.value or {}).get("blob_key")
                if blob:
                    keys.append(blob)
                s.delete(r)
            s.commit()
    if not dry_run:
        core.storage.delete_blobs(keys)
    report["inactive_accounts"] = process_inactive(core, dry_run=dry_run)
    return report
