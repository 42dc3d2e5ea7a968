"""The ``alarmcloud`` command line: serving, workers, migrations, plugins and detection; administration commands
are in :mod:`alarmcloud.cli_admin`."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from alarmcloud.backup import backup_command
from alarmcloud.cli_admin import COMMANDS
from alarmcloud.cli_common import (
    config_option,
    console,
    data_dir_option,
    log,
    progress,
    settings_from,
    setup_logging,
)
from alarmcloud.config import Settings, load_settings
from alarmcloud.restore import restore_command
from alarmcloud.scaleout import scale_out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alarmcloud")
def main() -> None:
    """alarmcloud: a self-hostable camera alarm cloud.

    Cameras upload alarm clips over HTTP or FTP; alarmcloud validates and stores them, runs the detectors each
    customer switched on, and links accounts to IFTTT, Alexa and Google Home. Start with `alarmcloud serve`.
    """


@main.command()
@click.option("--host", default=None, help="Address HTTP and FTP listen on (default 127.0.0.1: this computer only; "
                                          "0.0.0.0: every network; ftp.host sets FTP's own).")
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

    from alarmcloud.app import KEEP_ALIVE_S, create_app

    setup_logging(log_level)
    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    st = settings_from(config_file, **overrides)
    if ftp_port is not None:
        st.ftp.port = ftp_port
    if workers is not None:
        st.workers.count = workers
    from alarmcloud.blobstore import BlobStoreUnavailable
    from alarmcloud.plugins import PluginLoadError

    try:
        app = create_app(st, ftp=True)  # the FTP server starts inside the lifespan, after the crash sweep
        app.state.alarmcloud.blobs.check()  # an unreachable or missing bucket stops here, not at the first clip
    except (PluginLoadError, BlobStoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"alarmcloud  data: {st.data_dir.resolve()}")
    console.print(f"storage: {app.state.alarmcloud.blobs.describe()}", markup=False, highlight=False)
    for line in listen_lines(st):  # printed, not logged: the log scrubber would cut the addresses short
        console.print(line, markup=False, highlight=False)
    for hint in (public_url_hint(st), ftp_reach_hint(st)):
        if hint:
            console.print(f"[yellow]{hint}[/]")
    # X-Forwarded-For/-Proto count only from the proxies the operator named (client networks, Secure cookies)
    uvicorn.run(app, host=st.host, port=st.port, log_level=log_level.lower(), access_log=False,
                proxy_headers=bool(st.forwarded_allow_ips), forwarded_allow_ips=st.forwarded_allow_ips or None,
                timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_S)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def listen_lines(st: Settings) -> list[str]:
    """Where HTTP and FTP listen and who can reach them, for serve's start-up output."""
    from alarmcloud.ftp import listen_scope

    lines = [f"HTTP (web UI, API, HTTP upload) listening on http://{_bracket(st.host)}:{st.port}"
             f"{listen_scope(st.host)}"]
    if not st.ftp.port:
        lines.append("FTP upload is off (ftp.port = 0): cameras upload over HTTP only")
    else:
        host = st.ftp_listen_host
        origin = "ftp.host" if st.ftp.host else "the HTTP address; set ftp.host to change it"
        ftps = "S" if st.ftp.tls_cert and st.ftp.tls_key else ""
        lines.append(f"FTP{ftps} upload listening on {_bracket(host)}:{st.ftp.port}{listen_scope(host)} ({origin})")
    return lines


def ftp_reach_hint(st: Settings) -> str | None:
    """A warning when cameras are told to upload over FTP to an address the FTP server does not listen on."""
    from urllib.parse import urlparse

    from alarmcloud.ftp import is_loopback

    if not st.ftp.port or not is_loopback(st.ftp_listen_host):
        return None
    told = st.ftp.public_host or urlparse(st.public_url).hostname
    if is_loopback(told):
        return None
    return (f"FTP listens on {st.ftp_listen_host} only, but cameras are told to upload to {told}: FTP uploads "
            "cannot arrive; set ftp.host (ALARMCLOUD_FTP__HOST=0.0.0.0) or start serve with --host 0.0.0.0")


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

    setup_logging()
    st = settings_from(config_file, data_dir=data_dir)
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
    from alarmcloud.blobstore import BlobStoreUnavailable, make_blob_store

    setup_logging()
    st = settings_from(config_file, data_dir=data_dir)
    db.migrate(st.db_url)
    blobs = make_blob_store(st)
    try:
        blobs.check()  # an unreachable or missing bucket stops here, not at the first clip
    except BlobStoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"storage: {blobs.describe()}", markup=False, highlight=False)
    if processes == 1:
        _worker_process(config_file, data_dir, 0)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker_process, args=(config_file, data_dir, i)) for i in range(processes)]
    stopping = threading.Event()

    def _stop_children(*_: Any) -> None:
        # each worker finishes or hands back its current job (SIGTERM sets its stop flag)
        stopping.set()
        for p in procs:
            if p.is_alive():
                p.terminate()

    # the handler is in place before the first worker starts: a SIGTERM while they start (systemd stopping the
    # service at once) stops those started and starts no more, instead of killing this process and orphaning them
    signal.signal(signal.SIGTERM, _stop_children)
    for p in procs:
        if stopping.is_set():
            break
        p.start()
    if stopping.is_set():
        _stop_children()  # one that was starting when the signal came
    try:
        for p in procs:
            if p.pid is not None:
                p.join()
    except KeyboardInterrupt:
        _stop_children()
        for p in procs:
            if p.pid is not None:
                p.join(timeout=30)


@main.command()
@data_dir_option
@config_option
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def migrate(data_dir: Path | None, config_file: Path | None, revision: str) -> None:
    """Create or upgrade the database schema."""
    from alarmcloud import db

    st = settings_from(config_file, data_dir=data_dir)
    db.migrate(st.db_url, revision)
    console.print(f"database at {revision}: {st.db_url.split('@')[-1]}")


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(config_file: Path | None, as_json: bool) -> None:
    """Show installed, enabled, loaded and failed plugins."""
    from alarmcloud.plugins import PluginHost

    st = settings_from(config_file)
    host = PluginHost({"cameras": st.plugins.cameras, "detectors": st.plugins.detectors,
                       "integrations": st.plugins.integrations}, disable=st.plugins.disable).load()
    rows = host.status_table()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("group", "name", "provides", "distribution", "version", "enabled", "loaded", "error")
    for r in rows:
        provides = "\n".join(f"{p['title']} ({p['name']})" if p["title"] != p["name"] else p["name"]
                              for p in r["provides"]) or "-"
        table.add_row(r["group"], r["name"], provides, r["distribution"] or "-", r["version"] or "-",
                      "yes" if r["enabled"] else "no", "[green]yes[/]" if r["loaded"] else "[red]no[/]",
                      r["error"] or "")
    Console().print(table)


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
    from alarmcloud.pipeline import analyze_file, shown_scores
    from alarmcloud.plugins import PluginHost
    from alarmcloud.video import ProbeError

    st = settings_from(config_file)
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
                out = {"file": str(path), "verdict": res.verdict, "findings": [f.to_dict() for f in res.findings],
                       "scores": shown_scores(res.scores),
                       "advice": narrow_clip_advice(host, names, res.probe.width, res.probe.height)}
            except (ProbeError, OSError) as exc:
                failed += 1
                out = {"file": str(path), "verdict": None, "findings": [], "scores": {}, "advice": [],
                       "error": str(exc)}
            bar.advance(task)
            if as_json:
                click.echo(json.dumps(out))
            else:
                found = ", ".join(f"{f['label']}{'=' + f['text'] if 'text' in f else ''} ({f['score']:.2f})"
                                  for f in out["findings"]) or "nothing found"
                flagged = {f["detector"] for f in out["findings"]}
                below = [f"{name} {score:.2f}" for name, score in out["scores"].items() if name not in flagged]
                found += f"; below the threshold: {', '.join(below)}" if below else ""
                click.echo(f"{path}: {out['verdict'] or 'error: ' + out.get('error', '')}  [{found}]")
                for item in out["advice"]:
                    click.echo(f"  note: {item['message']}")
    if failed:
        sys.exit(1)


def narrow_clip_advice(host: Any, names: list[str], width: int, height: int) -> list[dict[str, Any]]:
    """For each detector run whose measured accuracy needs wider pictures than this clip's: a note saying so."""
    from alarmcloud.specs import title_of

    out = []
    for name in names:
        spec = host.detector_specs[name]
        if spec.too_narrow(width):
            out.append(spec.source_advice(f"{title_of(spec, name)} is measured to work well on clips at least "
                                          f"{spec.min_source_width} px wide; this clip is {width} × {height}"))
    return out


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

    st = settings_from(config_file, data_dir=data_dir)
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


for _command in (*COMMANDS, backup_command, restore_command, scale_out):
    main.add_command(_command)


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


if __name__ == "__main__":
    main()
