"""Every ``alarmcloud`` command, bundled plugin commands included, explains itself and each of its options."""

from __future__ import annotations

from collections.abc import Iterator

import click
from alarmcloud.cli import main
from click.testing import CliRunner


def _commands(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))


def test_every_command_and_option_has_help() -> None:
    found = dict(_commands(main))
    # the fixed CLI surface (DESIGN.md), and the bundled plugins' commands are registered
    for name in ("serve", "worker", "migrate", "plugins", "users", "detect", "keys", "rain"):
        assert (name,) in found, name
    for path, cmd in found.items():
        assert (cmd.help or "").strip(), f"alarmcloud {' '.join(path)} has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"alarmcloud {' '.join(path)} {param.opts[0]} has no help"
        result = CliRunner().invoke(main, [*path, "--help"], prog_name="alarmcloud")
        assert result.exit_code == 0 and "Usage: alarmcloud" in result.output, (path, result.output)
