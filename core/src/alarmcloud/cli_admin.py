"""Administration commands of the ``alarmcloud`` CLI: accounts, encryption keys, OAuth clients, privacy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from alarmcloud.cli_common import config_option, console, data_dir_option, db_app, settings_from


@click.group()
def users() -> None:
    """Manage accounts: create an operator, reset a password or two-step verification, list accounts."""


@users.command("create-operator")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters.")
@data_dir_option
@config_option
def create_operator(email: str, password: str, data_dir: Path | None, config_file: Path | None) -> None:
    """Create an operator (deployment admin) account, or promote an existing one."""
    from sqlmodel import select

    from alarmcloud import crypto
    from alarmcloud.models import Account

    if len(password) < 10:
        raise click.BadParameter("passwords need at least 10 characters", param_hint="--password")
    database = db_app(config_file, data_dir)
    with database.session() as s:
        acc = s.exec(select(Account).where(Account.email == email.lower())).first()
        if acc is None:
            acc = Account(email=email.lower(), password_hash=crypto.hash_password(password))
        acc.role = "operator"
        s.add(acc)
        s.commit()
    console.print(f"operator {email.lower()} ready")


@users.command("reset-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (at least 10 characters).")
@click.option("--reset-2fa", "reset_2fa", is_flag=True,
              help="Also switch two-step verification off (the user lost the authenticator and recovery codes).")
@data_dir_option
@config_option
def reset_password(email: str, password: str, reset_2fa: bool, data_dir: Path | None,
                   config_file: Path | None) -> None:
    """Set a new password and end the account's sessions."""
    from sqlmodel import delete, select

    from alarmcloud import crypto, twofactor
    from alarmcloud.models import Account, SessionRow

    if len(password) < 10:
        raise click.BadParameter("passwords need at least 10 characters", param_hint="--password")
    database = db_app(config_file, data_dir)
    with database.session() as s:
        acc = s.exec(select(Account).where(Account.email == email.lower())).first()
        if acc is None:
            raise click.ClickException(f"no account {email}")
        acc.password_hash = crypto.hash_password(password)
        s.add(acc)
        s.exec(delete(SessionRow).where(SessionRow.account_id == acc.id))  # type: ignore[arg-type]
        s.commit()
        if reset_2fa:
            twofactor.remove(s, acc.id)
    console.print(f"password of {email.lower()} changed; sessions ended"
                  + ("; two-step verification switched off" if reset_2fa else ""))


@users.command("reset-2fa")
@click.argument("email")
@data_dir_option
@config_option
def reset_2fa(email: str, data_dir: Path | None, config_file: Path | None) -> None:
    """Switch two-step verification off for a locked-out user (the password stays; they log in with it alone)."""
    from sqlmodel import select

    from alarmcloud import twofactor
    from alarmcloud.models import Account

    database = db_app(config_file, data_dir)
    with database.session() as s:
        acc = s.exec(select(Account).where(Account.email == email.lower())).first()
        if acc is None:
            raise click.ClickException(f"no account {email}")
        was_on = twofactor.remove(s, acc.id)
    console.print(f"two-step verification of {email.lower()} switched off" if was_on
                  else f"{email.lower()} had no two-step verification; nothing changed")


@users.command("list")
@data_dir_option
@config_option
def list_users(data_dir: Path | None, config_file: Path | None) -> None:
    """List accounts (id, e-mail, role)."""
    from sqlmodel import select

    from alarmcloud.models import Account

    database = db_app(config_file, data_dir)
    with database.session() as s:
        for acc in s.exec(select(Account).order_by(Account.created_at)).all():
            click.echo(f"{acc.id}  {acc.role:8}  {acc.email}")


@click.group()
def keys() -> None:
    """Encryption keys of camera credentials, webhook secrets and TOTP secrets: make a new key, re-encrypt under it.

    \b
    Rotation: 1. `alarmcloud keys generate` prints a new key.
    2. Configure it as secret_key with a new secret_key_id (e.g. k2) and keep the previous key in
       old_secret_keys under its id (the generated default is data_dir/secret.key, id k1):
       ALARMCLOUD_SECRET_KEY=<new> ALARMCLOUD_SECRET_KEY_ID=k2 ALARMCLOUD_OLD_SECRET_KEYS='{"k1": "<old>"}'
    3. `alarmcloud keys rotate` re-encrypts every stored secret under k2; then drop k1 from old_secret_keys.
    """


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random 256-bit key (base64) for secret_key."""
    from alarmcloud import crypto

    click.echo(crypto.generate_key())


@keys.command("rotate")
@data_dir_option
@config_option
@click.option("--dry-run", is_flag=True, help="Only count what would be re-encrypted.")
def keys_rotate(data_dir: Path | None, config_file: Path | None, dry_run: bool) -> None:
    """Re-encrypt every stored secret under the current key (secret_key_id), in one transaction."""
    from alarmcloud import crypto

    st = settings_from(config_file, data_dir=data_dir)
    database = db_app(config_file, data_dir)
    box = crypto.secret_box(st)
    try:
        counts = crypto.rotate_stored_secrets(database, box, dry_run=dry_run)
    except crypto.MissingKeys as exc:
        raise click.ClickException(f"stored secrets use key ids that are not configured: {exc}; add them to "
                                   "old_secret_keys (ALARMCLOUD_OLD_SECRET_KEYS) first. Nothing was changed.") from None
    total = sum(counts.values())
    detail = ", ".join(f"{n} from {kid}" for kid, n in sorted(counts.items())) or "all current already"
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    click.echo(f"{verb} {total} secrets under {box.current_id} ({detail})")


@click.group()
def oauth() -> None:
    """OAuth clients for account linking (IFTTT, Alexa, Google)."""


@oauth.command("add-client")
@click.option("--name", required=True, help="Name shown on the consent page, e.g. IFTTT.")
@click.option("--integration", required=True, help="Integration plugin the client belongs to: ifttt, alexa, ...")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True, help="Exact redirect URI (repeat).")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="Scope the client may get (repeat): alarms:read, cameras:control, cameras:stream, storage:read.")
@click.option("--public", is_flag=True, help="A public client: no secret, PKCE required.")
@click.option("--no-pkce", is_flag=True, help="Confidential clients only: allow the code flow without PKCE "
              "(IFTTT and Google send none); a challenge, when sent, is still enforced.")
@data_dir_option
@config_option
def oauth_add_client(name: str, integration: str, redirect_uris: tuple[str, ...], scopes: tuple[str, ...],
                     public: bool, no_pkce: bool, data_dir: Path | None, config_file: Path | None) -> None:
    """Register a client; prints the client id and the secret (shown once)."""
    from alarmcloud import oauth as oauth_server

    database = db_app(config_file, data_dir)
    with database.session() as s:
        try:
            row, secret = oauth_server.add_client(s, name, integration, list(redirect_uris), list(scopes),
                                                  public=public, require_pkce=not no_pkce)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--scope") from None
        client_id = row.id
    click.echo(f"client_id: {client_id}")
    click.echo(f"client_secret: {secret}" if secret else "client_secret: (none: public client)")


@oauth.command("list-clients")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@data_dir_option
@config_option
def oauth_list_clients(as_json: bool, data_dir: Path | None, config_file: Path | None) -> None:
    """List registered clients (id, integration, redirect URIs, scopes, live links); secrets are never shown."""
    from alarmcloud import oauth as oauth_server

    with db_app(config_file, data_dir).session() as s:
        rows = oauth_server.list_clients(s)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        kind = "public" if r["public"] else "confidential"
        pkce = "PKCE required" if r["require_pkce"] else "PKCE optional"
        click.echo(f"{r['client_id']}  {r['name']} ({r['integration']}, {kind}, {pkce}, {r['links']} links)")
        click.echo(f"    redirect: {' '.join(r['redirect_uris'])}")
        click.echo(f"    scopes:   {' '.join(r['scopes'])}")


@oauth.command("remove-client")
@click.argument("client_id")
@data_dir_option
@config_option
def oauth_remove_client(client_id: str, data_dir: Path | None, config_file: Path | None) -> None:
    """Delete a client: every customer's link to it ends at once (tokens revoked, consent marked withdrawn)."""
    from alarmcloud import oauth as oauth_server

    with db_app(config_file, data_dir).session() as s:
        ended = oauth_server.remove_client(s, client_id, settings_from(config_file, data_dir=data_dir))
    if ended is None:
        raise click.ClickException(f"no OAuth client {client_id!r}")
    click.echo(f"removed {client_id}; {ended} linked account(s) unlinked")


@click.group()
def privacy() -> None:
    """Privacy: record of processing, retention schedules, inactive accounts, privacy masks of stored clips."""


def _privacy_core(config_file: Path | None, data_dir: Path | None) -> Any:
    from alarmcloud import db
    from alarmcloud.app import AlarmCloud

    st = settings_from(config_file, data_dir=data_dir)
    db.migrate(st.db_url)
    return AlarmCloud(st)


@privacy.command("record")
@data_dir_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def privacy_record(data_dir: Path | None, config_file: Path | None, as_json: bool) -> None:
    """The record of processing activities (Art. 30 GDPR) of this deployment."""
    from alarmcloud.privacy import processing_record

    activities = processing_record(_privacy_core(config_file, data_dir))
    if as_json:
        click.echo(json.dumps({"activities": activities}, indent=2))
        return
    table = Table("Activity", "Data", "Purpose", "Recipients", "Retention", "Legal basis")
    for a in activities:
        table.add_row(a["name"], ", ".join(a["data"]), a["purpose"], ", ".join(a["recipients"]) or "none",
                      a["retention"], a["legal_basis"])
    Console().print(table)


@privacy.command("retention")
@data_dir_option
@config_option
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
def privacy_retention(data_dir: Path | None, config_file: Path | None, dry_run: bool) -> None:
    """Enforce the retention schedules (clips, events, plates, access logs, exports, inactive accounts)."""
    from alarmcloud.privacy import run_retention

    click.echo(json.dumps(run_retention(_privacy_core(config_file, data_dir), dry_run=dry_run), indent=2))


@privacy.command("erase-inactive")
@data_dir_option
@config_option
@click.option("--dry-run", is_flag=True, help="Only report which accounts would be noticed or erased.")
def privacy_erase_inactive(data_dir: Path | None, config_file: Path | None, dry_run: bool) -> None:
    """Send deletion notices to inactive accounts and erase those whose grace period has passed."""
    from alarmcloud.privacy import process_inactive

    click.echo(json.dumps(process_inactive(_privacy_core(config_file, data_dir), dry_run=dry_run), indent=2))


@privacy.command("apply-masks")
@click.argument("camera_id")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Run the job here with a progress bar, or only queue it for the running server.")
@data_dir_option
@config_option
def privacy_apply_masks(camera_id: str, wait: bool, data_dir: Path | None, config_file: Path | None) -> None:
    """Paint a camera's current privacy masks into the clips it stored without them (resumable job)."""
    import threading
    import time

    from rich.progress import Progress

    from alarmcloud.errors import ApiError
    from alarmcloud.masks_apply import ACTIVE, job_json, pending_clips, run_here, start_job, storage_report
    from alarmcloud.models import Camera, MaskJob
    from alarmcloud.units import human_bytes

    core = _privacy_core(config_file, data_dir)
    with core.db.session() as s:
        cam = s.get(Camera, camera_id)
        if cam is None:
            raise click.ClickException("camera not found")
        try:
            job, _ = start_job(s, cam)
        except ApiError as exc:
            raise click.ClickException(exc.message) from None
    if wait and job.state in ACTIVE:
        stop = threading.Event()
        worker = threading.Thread(target=run_here, args=(core, job.id, stop), daemon=True)
        worker.start()
        try:
            with Progress(console=console) as bar:
                task = bar.add_task(f"masking {job.total} clip(s)", total=job.total)
                while worker.is_alive():
                    with core.db.session() as s:
                        row = s.get(MaskJob, job.id)
                    if row is not None:
                        bar.update(task, completed=row.done + row.failed)
                    time.sleep(0.3)
        except KeyboardInterrupt:
            stop.set()  # the clip being masked is finished or dropped; the job goes back to the queue
            worker.join()
            raise
    with core.db.session() as s:
        cam = s.get(Camera, camera_id)
        report = storage_report(core, s, cam.account_id) if cam else None
        click.echo(json.dumps(job_json(s.get(MaskJob, job.id), pending_clips(s, cam) if cam else 0, report), indent=2))
    if report and report["over_quota_bytes"]:
        # masks are applied even over the quota (a privacy duty); the next clip stored evicts the oldest ones
        over = human_bytes(report["over_quota_bytes"])
        click.echo(f"note: the masked clips are larger; the account is now {over} over "
                   "its quota, and the next clip it stores will evict its oldest clips", err=True)


@privacy.group("erasures")
def privacy_erasures() -> None:
    """The erasure register: ids of erased accounts and deleted clips and cameras, replayed onto restored backups
    (docs/backup.md)."""


@privacy_erasures.command("replay")
@click.option("--erasures", "paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              metavar="PATH", help="Register to replay (repeatable). Default: the register of the settings.")
@data_dir_option
@config_option
def privacy_erasures_replay(paths: tuple[Path, ...], data_dir: Path | None, config_file: Path | None) -> None:
    """Delete again what the register lists from the configured database and blob store: after restoring a
    PostgreSQL dump and `restore --blobs-only` (`alarmcloud restore` replays by itself). Stop the server first."""
    from alarmcloud import erasures

    core = _privacy_core(config_file, data_dir)
    sources = list(paths) or [erasures.register_path(core.settings)]
    try:
        register = erasures.read(sources)
    except erasures.RegisterError as exc:
        raise click.ClickException(str(exc)) from None
    for w in register.warnings:
        console.print(f"[yellow]{w}[/]")
    report = erasures.replay(core.db, core.blobs, core.training, register.entries)
    click.echo(f"erasure register {', '.join(map(str, sources))}: {register.describe()}; "
               f"deleted again: {report.summary()}")


@privacy_erasures.command("prune")
@click.option("--before", required=True, type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Drop the lines written before this day (UTC): the day your oldest kept backup was made.")
@click.option("--dry-run", is_flag=True, help="Only count the lines that would be dropped.")
@data_dir_option
@config_option
def privacy_erasures_prune(before: Any, dry_run: bool, data_dir: Path | None, config_file: Path | None) -> None:
    """Drop register lines older than every backup kept: a backup made after an erasure does not hold what was
    erased, so its line is needed only while an older backup exists."""
    from datetime import UTC

    from alarmcloud import erasures

    path = erasures.register_path(settings_from(config_file, data_dir=data_dir))
    if not path.is_file():
        raise click.ClickException(f"no erasure register at {path}")
    kept, dropped = erasures.prune(path, before.replace(tzinfo=UTC), dry_run=dry_run)
    verb = "would drop" if dry_run else "dropped"
    click.echo(f"{path}: {verb} {dropped} line(s) written before {before:%Y-%m-%d %H:%M:%S} UTC, {kept} kept")


COMMANDS = (users, keys, oauth, privacy)
