"""Hook implementations of this plugin (entry-point target ``ifttt`` in ``alarmcloud.integrations``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from typing import Any

from alarmcloud import Event, Integration, IntegrationSpec, ProcessingRecord, hookimpl
from alarmcloud.events import DETECTIONS_READY, PLATE_RECOGNISED, STORAGE_ALMOST_FULL
from starlette.routing import BaseRoute

from alarmcloud_ifttt import api, realtime

log = logging.getLogger(__name__)

SCOPES = ("alarms:read", "cameras:control", "storage:read")
PRIVACY = ProcessingRecord(
    data=("pseudonymous user id", "camera names and ids", "alarm times, detection labels and plate texts",
          "storage usage"),
    purpose="run the customer's IFTTT Applets: alarm triggers, camera actions and queries",
    recipients=("IFTTT Inc.",),
    retention="until the customer unlinks IFTTT or deletes the account",
)
#: which triggers an event type feeds
EVENT_TRIGGERS = {DETECTIONS_READY: ("new_alarm", "alarm_with_detection"), PLATE_RECOGNISED: ("plate_recognised",),
                  STORAGE_ALMOST_FULL: ("storage_almost_full",)}


class IftttIntegration(Integration):
    """IFTTT service: IFTTT polls our triggers; we push Realtime hints (in the ``handle_event`` hook)."""

    name = "ifttt"
    scopes = SCOPES


@hookimpl
def register_integrations() -> Iterable[IntegrationSpec]:
    """IFTTT triggers, actions and queries."""
    return [IntegrationSpec(name="ifttt", title="IFTTT", factory=lambda config: IftttIntegration(), scopes=SCOPES,
                            description="IFTTT service: alarm, detection, plate and storage triggers; camera "
                            "actions; alarm and storage queries", privacy=PRIVACY)]


@hookimpl
def register_routes(app: Any) -> list[BaseRoute]:
    """The IFTTT service API at ``/plugins/ifttt/ifttt/v1``."""
    return api.routes()


def _matches(trigger: str, fields: dict[str, Any], event: Event) -> bool:
    if trigger == "new_alarm":
        verdict = str(event.payload.get("verdict") or "alarm")
        cam = fields.get("camera")
        return not verdict.startswith("false_alarm") and (not cam or cam == event.camera_id)
    if trigger == "alarm_with_detection":
        labels = {f.get("label") for f in event.payload.get("findings", []) if isinstance(f, dict)}
        return fields.get("label") in labels
    if trigger == "plate_recognised":
        return event.payload.get("notify") is not False  # a known plate the owner is not told about
    return True


@hookimpl
async def handle_event(app: Any, event: Event) -> None:
    """Record storage warnings on the timeline and send Realtime notifications for affected trigger identities."""
    triggers = EVENT_TRIGGERS.get(event.type)
    if not triggers:
        return
    services = app.services
    if event.account_id not in set((await services.pseudonyms("ifttt")).values()):
        return  # not linked to IFTTT
    if event.type == STORAGE_ALMOST_FULL:
        rows = await services.get_state(api.PLUGIN, event.account_id, "storage_events") or []
        now = int(event.occurred_at.timestamp())
        rows = [{"id": f"storage-{now}-{len(rows)}", "timestamp": now,
                 "used_ratio": float(event.payload.get("used_ratio", 0.0))}, *rows][:50]
        await services.set_state(api.PLUGIN, event.account_id, "storage_events", rows)
    identities = await services.get_state(api.PLUGIN, event.account_id, "identities") or {}
    entries = [{"trigger_identity": ti} for ti, v in identities.items()
               if v.get("trigger") in triggers and _matches(v["trigger"], v.get("fields") or {}, event)]
    if not entries:
        return
    conf = api.settings(app)
    if not conf.get("service_key"):
        log.warning("IFTTT realtime: no service key configured")
        return
    _in_background(_notify(conf["realtime_url"], conf["service_key"], entries))


async def _notify(url: str, key: str, entries: list[dict[str, str]]) -> None:
    started = time.monotonic()
    await realtime.notify(url, key, entries)
    log.debug("IFTTT realtime: %d identities in %.2fs", len(entries), time.monotonic() - started)


#: Realtime calls in flight (a reference keeps each task alive until it is done)
_pending: set[asyncio.Task[None]] = set()


def _in_background(coro: Coroutine[Any, Any, None]) -> None:
    """Realtime is only a hint to poll: its retries must not hold up the event fan-out to the other plugins."""
    task = asyncio.get_running_loop().create_task(coro)
    _pending.add(task)
    task.add_done_callback(_pending.discard)


@hookimpl
async def shutdown(app: Any) -> None:
    """Give Realtime calls in flight a moment to finish, then drop them (IFTTT polls anyway)."""
    if _pending:
        await asyncio.wait(set(_pending), timeout=2)
    for task in list(_pending):
        task.cancel()
