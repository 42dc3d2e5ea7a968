"""Right of access / portability (Art. 15, 20): a streamed ZIP of everything stored about an account."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from alarmcloud import zipstream
from alarmcloud.jobs import local_process_gone
from alarmcloud.models import Account, Clip, PluginState, aware, iso, new_id, utcnow
from alarmcloud.zipstream import Member, file_pieces, text_pieces, zip_stream

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud

log = logging.getLogger(__name__)
#: the ZIP leaves in pieces of about this many bytes
CHUNK = zipstream.CHUNK
#: an export whose row was not updated for this long is taken to be orphaned by a process on another host
STALE_EXPORT_SECONDS = 900
#: never exported: secrets, password and token hashes, encrypted camera credentials
SECRET_COLUMNS = {"password_hash", "pending_email_token_hash", "token_hash", "id_hash", "csrf_token", "secret",
                  "upload_password_hash", "upload_password_pending_hash", "host_enc", "p2p_id_enc", "username_enc",
                  "password_enc",
                  "client_secret_hash", "code_hash", "access_hash", "refresh_hash"}
#: friendly section names for the tables of ``account.json``
SECTIONS = {"accounts": "profile", "cameras": "cameras", "clips": "events", "findings": "findings",
            "known_plates": "plates", "cases": "cases", "feedback": "feedback", "consents": "consents",
            "plugin_state": "plugin_state", "usage_hours": "usage"}


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso(v)
    return v


#: tables whose rows also appear under ``linked_services`` (with the consents of kind ``integration_grant``)
LINK_TABLES = ("oauth_grants", "oauth_tokens", "oauth_pseudonyms")


def _secret(column: str) -> bool:
    """Hashes, ciphertexts and secrets stay out of the export, in today's tables and in any added later."""
    return column in SECRET_COLUMNS or column.endswith(("_hash", "_enc", "_secret"))


def _row(r: Any) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in r.items() if not _secret(k)}


def account_json(s: Session, account_id: str) -> Iterator[str]:
    """``account.json`` piece by piece: every row stored about the account (secrets left out), by kind.

    Rows are read in batches and written as they come, so an account with very many events needs no more memory
    than one batch (only the primary keys of its rows are kept, to find the rows that refer to them).
    """
    from alarmcloud.privacy_erase import _load_all_tables, _ownership

    _load_all_tables()
    subs = list(s.exec(select(Account.id).where(Account.owner_id == account_id)).all())
    ids = [account_id, *subs]
    head = {"format": "alarmcloud-export/1", "exported_at": iso(utcnow()), "account_id": account_id}
    yield json.dumps(head)[:-1]
    doomed: dict[str, list[Any]] = {}
    conds: dict[str, Any] = {}
    for table in SQLModel.metadata.sorted_tables:
        cond = _ownership(table, ids, doomed)
        if cond is None:
            continue
        conds[table.name] = cond
        pk = list(table.primary_key.columns)
        keys: list[Any] = []
        yield f", {json.dumps(SECTIONS.get(table.name, table.name))}: ["
        rows = s.execute(sa.select(table).where(cond).execution_options(yield_per=500)).mappings()
        for n, r in enumerate(rows):
            if len(pk) == 1:
                keys.append(r[pk[0].name])
            yield ("" if n == 0 else ", ") + json.dumps(_row(r), default=str)
        yield "]"
        if len(pk) == 1:
            doomed[table.name] = keys
    tables = SQLModel.metadata.tables
    derived: list[tuple[str, list[tuple[str, Any]]]] = [
        ("plates_read", [("findings", tables["findings"].c.label == "plate")]),
        ("linked_services", [("consents", tables["consents"].c.kind == "integration_grant"),
                             *((name, sa.true()) for name in LINK_TABLES)]),
    ]
    for section, sources in derived:
        yield f", {json.dumps(section)}: ["
        first = True
        for name, extra in sources:
            if name not in conds:
                continue
            q = sa.select(tables[name]).where(conds[name], extra).execution_options(yield_per=500)
            for r in s.execute(q).mappings():
                yield ("" if first else ", ") + json.dumps(_row(r), default=str)
                first = False
        yield "]"
    yield "}"


def account_data(s: Session, account_id: str) -> dict[str, Any]:
    """``account.json`` as a dict (small accounts, tests)."""
    return json.loads("".join(account_json(s, account_id)))  # type: ignore[no-any-return]


def zip_chunks(core: AlarmCloud, account_id: str,
               progress: Callable[[int, int], None] | None = None) -> Iterator[bytes]:
    """Yield the export ZIP piece by piece (each about ``CHUNK``): ``account.json``, then every clip and
    thumbnail (ZIP64, data descriptors: ``zipfile`` never seeks back)."""

    def _account() -> Iterator[bytes]:
        with core.db.session() as s:
            yield from text_pieces(account_json(s, account_id), chunk)

    def _members() -> Iterator[Member]:
        yield "account.json", _account
        with core.db.session() as s:
            clips = list(s.execute(sa.select(Clip.id, Clip.blob_key, Clip.thumb_key)  # type: ignore[call-overload]
                                   .where(col(Clip.account_id) == account_id)
                                   .order_by(col(Clip.started_at))).all())
        total = len(clips)
        for i, (clip_id, blob_key, thumb_key) in enumerate(clips):
            for key, name in ((blob_key, f"clips/{clip_id}.mp4"), (thumb_key, f"clips/{clip_id}.jpg")):
                if key and core.blobs.exists(key):
                    yield name, file_pieces(lambda key=key: core.blobs.open(key), chunk)
            if progress:
                progress(i + 1, total)

    chunk = CHUNK
    return zip_stream(_members(), chunk)


# ---------------------------------------------------------------- background export jobs


def _state_key(export_id: str) -> str:
    return f"export:{export_id}"


def _save(core: AlarmCloud, account_id: str, export_id: str, value: dict[str, Any]) -> None:
    with core.db.session() as s:
        row = s.exec(select(PluginState).where(PluginState.plugin == "privacy",
                                               PluginState.account_id == account_id,
                                               PluginState.key == _state_key(export_id))).first()
        if row is None:
            row = PluginState(plugin="privacy", account_id=account_id, key=_state_key(export_id))
        row.value = {**(row.value or {}), **value}
        row.updated_at = utcnow()
        s.add(row)
        s.commit()


def get_export(core: AlarmCloud, account_id: str, export_id: str) -> dict[str, Any] | None:
    with core.db.session() as s:
        row = s.exec(select(PluginState).where(PluginState.plugin == "privacy",
                                               PluginState.account_id == account_id,
                                               PluginState.key == _state_key(export_id))).first()
        return dict(row.value or {}) if row else None


def run_export(core: AlarmCloud, account_id: str, export_id: str) -> None:
    """Write the ZIP to a temp file on the blob store's disk, then move it to ``exports/<account>/<id>.zip``."""
    key = f"exports/{account_id}/{export_id}.zip"
    tmp = core.blobs.tmp_path(f"export-{export_id}.zip")

    def _progress(done: int, total: int) -> None:
        _save(core, account_id, export_id, {"progress": round(done / total, 3) if total else 1.0,
                                            "clips_done": done, "clips_total": total})

    try:
        with open(tmp, "wb") as out:
            for chunk in zip_chunks(core, account_id, _progress):
                out.write(chunk)
        size = core.blobs.put_file(key, tmp)
        if not _account_exists(core, account_id):
            core.blobs.delete_prefix(f"exports/{account_id}")  # erased while its export ran: keep no copy
            return
        _save(core, account_id, export_id, {"state": "done", "progress": 1.0, "blob_key": key, "size": size,
                                            "finished_at": iso(utcnow())})
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if not _account_exists(core, account_id):
            core.blobs.delete_prefix(f"exports/{account_id}")
            return
        log.exception("export failed")
        _save(core, account_id, export_id, {"state": "failed", "error": type(exc).__name__})


def _account_exists(core: AlarmCloud, account_id: str) -> bool:
    with core.db.session() as s:
        return s.get(Account, account_id) is not None


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _runner_gone(runner: str | None) -> bool:
    """True when the process that ran an export on this host no longer exists."""
    host, _, pid = (runner or "").rpartition(":")
    return local_process_gone(host, pid)


def _spawn(core: AlarmCloud, account_id: str, export_id: str) -> None:
    threading.Thread(target=run_export, args=(core, account_id, export_id), name="alarmcloud-export",
                     daemon=True).start()


def start_export(core: AlarmCloud, account_id: str) -> str:
    """Record a queued export and run it in a thread; returns its id."""
    export_id = new_id()
    _save(core, account_id, export_id, {"id": export_id, "state": "running", "progress": 0.0,
                                        "created_at": iso(utcnow()), "runner": _runner()})
    _spawn(core, account_id, export_id)
    return export_id


def resume_exports(core: AlarmCloud) -> int:
    """Start again the exports whose process died (crash, restart): on this host by pid, elsewhere when stale."""
    stale_before = utcnow() - timedelta(seconds=STALE_EXPORT_SECONDS)
    with core.db.session() as s:
        rows = s.exec(select(PluginState).where(PluginState.plugin == "privacy",
                                                col(PluginState.key).startswith("export:"))).all()
        todo = [(r.account_id, r.key.split(":", 1)[1]) for r in rows
                if (r.value or {}).get("state") == "running"
                and (_runner_gone((r.value or {}).get("runner")) or aware(r.updated_at) < stale_before)]
    for account_id, export_id in todo:
        if account_id is None:
            continue
        _save(core, account_id, export_id, {"progress": 0.0, "runner": _runner(), "resumed": True})
        _spawn(core, account_id, export_id)
    return len(todo)



