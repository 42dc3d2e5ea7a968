"""The ``alarmcloud`` command line."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from alarmcloud.config import ConfigError, Settings, load_settings

console = Console(stderr=True)
log = logging.getLogger("alarmcloud")

config_option = click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             help="TOML settings file (env ALARMCLOUD_CONFIG). Environment ALARMCLOUD_* wins.")
data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                               help="Directory for the SQLite database, local blobs and keys.")


def _settings(config_file: Path | None, **overrides: Any) -> Settings:
    """The settings, or a short error naming the file/variable and the setting (no traceback)."""
    try:
        return load_settings(config_file, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()]
        raise click.ClickException("invalid settings (config file or ALARMCLOUD_* environment):\n"
                                   + "\n".join(lines)) from None


def _logging(level: str = "INFO") -> None:
    from alarmcloud.privacy_log import install_record_scrubber

    install_record_scrubber()  # workers too: no full IP, e-mail address or token in any log line
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alarmcloud")
def main() -> None:
    """alarmcloud: a self-hostable camera alarm cloud.

    Cameras upload alarm clips over HTTP or FTP; alarmcloud validates and stores them, runs the detectors each
    customer switched on, and links accounts to IFTTT, Alexa and Google Home. Start with `alarmcloud serve`.
    """


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="HTTP port (default 8000).")
@data_dir_option
@config_option
@click.option("--ftp-port", type=int, default=None, help="FTP ingest port (default 2121; 0 disables FTP).")
@click.option("--workers", type=int, default=None, help="In-process detection worker threads (default 1).")
@click.option("--log-level", default="INFO", show_default=True, help="Logging level.")
def serve(host: str | None, port: int | None, data_dir: Path | None, config_file: Path | None,
          ftp_port: int | None, workers: int | None, log_level: str) -> None:
    """Run the API, web UI, detection workers and FTP ingest (migrates the database first)."""
    import uvicorn

    from alarmcloud.app import create_app

    _logging(log_level)
    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    st = _settings(config_file, **overrides)
    if ftp_port is not None:
        st.ftp.port = ftp_port
    if workers is not None:
        st.workers.count = workers
    from alarmcloud.plugins import PluginLoadError

    try:
        app = create_app(st, ftp=True)  # the FTP server starts inside the lifespan, after the crash sweep
    except PluginLoadError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"alarmcloud on http://{st.host}:{st.port}  data: {st.data_dir.resolve()}"
                  + (f"  FTP: {st.ftp.port}" if st.ftp.port else ""))
    hint = public_url_hint(st)
    if hint:
        console.print(f"[yellow]{hint}[/]")
    # X-Forwarded-For/-Proto count only from the proxies the operator named (client networks, Secure cookies)
    uvicorn.run(app, host=st.host, port=st.port, log_level=log_level.lower(), access_log=False,
                proxy_headers=bool(st.forwarded_allow_ips), forwarded_allow_ips=st.forwarded_allow_ips or None,
                timeout_graceful_shutdown=5)


def public_url_hint(st: Settings) -> str | None:
    """A warning when cameras on the network would get upload URLs that point at this machine's loopback."""
    from urllib.parse import urlparse

    local = {"localhost", "127.0.0.1", "::1"}
    if st.host in local or urlparse(st.public_url).hostname not in local:
        return None
    return (f"public_url is {st.public_url}: cameras and e-mails get links to it, which other machines cannot "
            "reach; set public_url (ALARMCLOUD_PUBLIC_URL) to the address cameras use, e.g. http://192.168.1.10:"
            f"{st.port}")


def _worker_process(config_file: Path | None, data_dir: Path | None, index: int) -> None:
    from alarmcloud.app import AlarmCloud
    from alarmcloud.pipeline import Worker

    _logging()
    st = _settings(config_file, data_dir=data_dir)
    app = AlarmCloud(st)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Worker(app, name=f"worker-{os.getpid()}-{index}").run_forever(stop)


@main.command()
@data_dir_option
@config_option
@click.option("--processes", "-n", type=int, default=1, show_default=True, help="Worker processes to start.")
def worker(data_dir: Path | None, config_file: Path | None, processes: int) -> None:
    """Run detection workers only (scale out: many processes or machines sharing one PostgreSQL)."""
    from alarmcloud import db

    _logging()
    st = _settings(config_file, data_dir=data_dir)
    db.migrate(st.db_url)
    if processes == 1:
        _worker_process(config_file, data_dir, 0)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_process, args=(config_file, data_dir, i)) for i in range(processes)]
    for p in procs:
        p.start()

    def _stop_children(*_: Any) -> None:
        # each worker finishes or hands back its current job (SIGTERM sets its stop flag)
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, _stop_children)
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        _stop_children()
        for p in procs:
            p.join(timeout=30)


@main.command()
@data_dir_option
@config_option
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def migrate(data_dir: Path | None, config_file: Path | None, revision: str) -> None:
    """Create or upgrade the database schema."""
    from alarmcloud import db

    st = _settings(config_file, data_dir=data_dir)
    db.migrate(st.db_url, revision)
    console.print(f"database at {revision}: {st.db_url.split('@')[-1]}")


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(config_file: Path | None, as_json: bool) -> None:
    """Show installed, enabled, loaded and failed plugins."""
    from alarmcloud.plugins import PluginHost

    st = _settings(config_file)
    host = PluginHost({"cameras": st.plugins.cameras, "detectors": st.plugins.detectors,
                       "integrations": st.plugins.integrations}, disable=st.plugins.disable).load()
    rows = host.status_table()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("group", "name", "distribution", "version", "enabled", "loaded", "error")
    for r in rows:
        table.add_row(r["group"], r["name"], r["distribution"] or "-", r["version"] or "-",
                      "yes" if r["enabled"] else "no", "[green]yes[/]" if r["loaded"] else "[red]no[/]",
                      r["error"] or "")
    Console().print(table)


@main.group()
def users() -> None:
    """Manage accounts: create an operator, reset a password or two-step verification, list accounts."""


def _db_app(config_file: Path | None, data_dir: Path | None) -> Any:
    from alarmcloud import db

    st = _settings(config_file, data_dir=data_dir)
    db.migrate(st.db_url)
    return db.Database(st.db_url)


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
    database = _db_app(config_file, data_dir)
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
    database = _db_app(config_file, data_dir)
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

    database = _db_app(config_file, data_dir)
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

    database = _db_app(config_file, data_dir)
    with database.session() as s:
        for acc in s.exec(select(Account).order_by(Account.created_at)).all():
            click.echo(f"{acc.id}  {acc.role:8}  {acc.email}")


@main.group()
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

    st = _settings(config_file, data_dir=data_dir)
    database = _db_app(config_file, data_dir)
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


@main.command()
@click.option("--detector", "-d", "detectors", multiple=True, help="Detector to run (repeatable); default: all.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@click.option("--option", "options", multiple=True,
              help="Detector option NAME.KEY=JSON, e.g. plates.countries='[\"DE\"]'.")
@config_option
def detect(detectors: tuple[str, ...], files: tuple[Path, ...], as_json: bool, options: tuple[str, ...],
           config_file: Path | None) -> None:
    """Run detectors on local clips with the same pipeline as the server (decode once, verdict)."""
    from alarmcloud.pipeline import analyze_file
    from alarmcloud.plugins import PluginHost
    from alarmcloud.video import ProbeError

    st = _settings(config_file)
    host = PluginHost({"cameras": st.plugins.cameras, "detectors": st.plugins.detectors,
                       "integrations": st.plugins.integrations}, disable=st.plugins.disable,
                      plugin_settings=st.plugin_settings).load()
    names = list(detectors) or list(host.detector_specs)
    unknown = [n for n in names if n not in host.detector_specs]
    if unknown:
        raise click.BadParameter(f"unknown detector {unknown[0]!r}; available: "
                                 f"{', '.join(host.detector_specs) or 'none'}", param_hint="--detector")
    opts: dict[str, dict[str, Any]] = {}
    for item in options:
        key, _, raw = item.partition("=")
        det, _, k = key.partition(".")
        try:
            opts.setdefault(det, {})[k] = json.loads(raw)
        except ValueError:
            opts.setdefault(det, {})[k] = raw
    failed = 0
    with progress() as bar:
        task = bar.add_task("analysing", total=len(files))
        for path in files:
            try:
                res = analyze_file(host, path, names, opts)
                out = {"file": str(path), "verdict": res.verdict, "findings": [f.to_dict() for f in res.findings]}
            except (ProbeError, OSError) as exc:
                failed += 1
                out = {"file": str(path), "verdict": None, "findings": [], "error": str(exc)}
            bar.advance(task)
            if as_json:
                click.echo(json.dumps(out))
            else:
                found = ", ".join(f"{f['label']}{'=' + f['text'] if 'text' in f else ''} ({f['score']:.2f})"
                                  for f in out["findings"]) or "nothing found"
                click.echo(f"{path}: {out['verdict'] or 'error: ' + out.get('error', '')}  [{found}]")
    if failed:
        sys.exit(1)


@main.command()
@data_dir_option
@config_option
@click.option("--camera", "camera_id", default=None, help="Only this camera's clips.")
@click.option("--since", default=None, help="Only clips since this ISO time.")
def reprocess(data_dir: Path | None, config_file: Path | None, camera_id: str | None, since: str | None) -> None:
    """Re-run the detectors over stored clips (queues jobs; workers pick them up)."""
    from sqlmodel import select

    from alarmcloud import jobs
    from alarmcloud.app import AlarmCloud
    from alarmcloud.ingest import parse_time
    from alarmcloud.models import Account, Clip, Job

    st = _settings(config_file, data_dir=data_dir)
    from alarmcloud import db

    db.migrate(st.db_url)
    app = AlarmCloud(st)
    with app.db.session() as s:
        q = select(Clip)
        if camera_id:
            q = q.where(Clip.camera_id == camera_id)
        if since:
            q = q.where(Clip.started_at >= parse_time(since))
        clips = list(s.exec(q).all())
    queued = 0
    with progress() as bar:
        task = bar.add_task("queueing", total=len(clips))
        for clip in clips:
            with app.db.session() as s:
                acc = s.get(Account, clip.account_id)
                busy = s.exec(select(Job).where(Job.clip_id == clip.id, Job.state.in_(  # type: ignore[attr-defined]
                    ("queued", "running")))).first()
                if acc is not None and not acc.restricted and busy is None:
                    jobs.enqueue(s, clip, jobs.LOW)
                    s.commit()
                    queued += 1
            bar.advance(task)
    console.print(f"{queued} clips queued for re-analysis")


def _register_plugin_commands() -> None:
    """Plugins add sub-commands through ``register_commands``."""
    try:
        from alarmcloud.plugins import PluginHost

        st = load_settings()
        host = PluginHost({"cameras": st.plugins.cameras, "detectors": st.plugins.detectors,
                           "integrations": st.plugins.integrations}, disable=st.plugins.disable).load()
        host.pm.hook.register_commands(cli=main)
    except Exception as exc:  # a broken plugin must not break the CLI
        log.debug("plugin commands unavailable: %s", exc)


_register_plugin_commands()


@main.group()
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

    database = _db_app(config_file, data_dir)
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

    with _db_app(config_file, data_dir).session() as s:
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

    with _db_app(config_file, data_dir).session() as s:
        ended = oauth_server.remove_client(s, client_id)
    if ended is None:
        raise click.ClickException(f"no OAuth client {client_id!r}")
    click.echo(f"removed {client_id}; {ended} linked account(s) unlinked")


@main.group()
def privacy() -> None:
    """Privacy: record of processing, retention schedules, inactive accounts."""


def _privacy_core(config_file: Path | None, data_dir: Path | None) -> Any:
    from alarmcloud import db
    from alarmcloud.app import AlarmCloud

    st = _settings(config_file, data_dir=data_dir)
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


if __name__ == "__main__":
    main()
