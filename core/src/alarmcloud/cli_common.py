"""Pieces shared by the ``alarmcloud`` command modules: options, settings loading, logging, progress bars."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from alarmcloud.config import ConfigError, Settings, load_settings

# messages are not broken at the console's width: paths and commands in them stay whole for copy and paste (a
# terminal wraps long lines itself; a log file keeps them as one line)
console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("alarmcloud")

config_option = click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                             help="TOML settings file (env ALARMCLOUD_CONFIG). Environment ALARMCLOUD_* wins.")
data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                               help="Directory for the SQLite database, local blobs and keys.")


def settings_from(config_file: Path | None, **overrides: Any) -> Settings:
    """The settings, or a short error naming the file/variable and the setting (no traceback)."""
    try:
        return load_settings(config_file, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()]
        raise click.ClickException("invalid settings (config file or ALARMCLOUD_* environment):\n"
                                   + "\n".join(lines)) from None


def setup_logging(level: str = "INFO") -> None:
    from alarmcloud.privacy_log import install_record_scrubber

    install_record_scrubber()  # workers too: no full IP, e-mail address or token in any log line
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the SSH client of the SFTP copies says "Connected", "Authentication successful" for every copy: its warnings
    # and errors only (a copy's outcome is logged by alarmcloud.offsite)
    logging.getLogger("paramiko").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))


def progress() -> Progress:
    """A progress bar on stderr: description, bar, done/total, time left."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console)


def db_app(config_file: Path | None, data_dir: Path | None) -> Any:
    from alarmcloud import db

    st = settings_from(config_file, data_dir=data_dir)
    db.migrate(st.db_url)
    return db.Database(st.db_url)
