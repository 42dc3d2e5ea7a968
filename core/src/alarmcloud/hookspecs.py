"""Every hook a plugin can implement. Documented one by one in ``docs/plugin_hooks.md``.

Hooks register typed things and react to lifecycle and events; per-camera behaviour lives in the contract
objects of ``alarmcloud.contracts``. Hooks marked "may be async" can be ``async def``: the core awaits them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from alarmcloud.app import AlarmCloud
    from alarmcloud.events import Event
    from alarmcloud.specs import CameraAdapterSpec, DetectorSpec, HealthCheck, IntegrationSpec

PROJECT = "alarmcloud"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# ---------------------------------------------------------------- lifecycle


@hookspec
def startup(app: AlarmCloud) -> None:
    """Called once after config, database and registries are ready, before serving. May be async."""


@hookspec
def shutdown(app: AlarmCloud) -> None:
    """Called once when the server stops, after workers stopped. May be async."""


# ---------------------------------------------------------------- registration


@hookspec
def register_routes(app: AlarmCloud) -> list[BaseRoute]:
    """Return Starlette routes; the core mounts them under ``/plugins/<entry name>/``."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``alarmcloud`` CLI (``cli.add_command(...)``)."""


@hookspec
def register_camera_adapters() -> Iterable[CameraAdapterSpec]:
    """Return camera adapter specs (unique names)."""


@hookspec
def register_detectors() -> Iterable[DetectorSpec]:
    """Return detector specs (unique names)."""


@hookspec
def register_integrations() -> Iterable[IntegrationSpec]:
    """Return integration specs (unique names)."""


# ---------------------------------------------------------------- events and health


@hookspec
def handle_event(app: AlarmCloud, event: Event) -> None:
    """React to a core event. May be async. Each plugin is isolated: an exception is logged and counted."""


@hookspec
def health_checks(app: AlarmCloud) -> Iterable[HealthCheck]:
    """Return readiness checks shown at ``/-/health``."""
