"""Hook implementations of this plugin (entry-point target ``alexa`` in ``alarmcloud.integrations``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from alarmcloud import CoreServices, Event, Integration, IntegrationSpec, ProcessingRecord, hookimpl, read_body
from alarmcloud.events import ACCOUNT_DELETED, CAMERA_CHANGED, CAMERA_DELETED, DETECTIONS_READY, LINK_REVOKED
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alarmcloud_alexa import messages as m
from alarmcloud_alexa.config import AlexaConfig
from alarmcloud_alexa.directives import ALARM_KEY, INTEGRATION, DirectiveHandler
from alarmcloud_alexa.gateway import GRANT_KEY, PLUGIN, EventGateway

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

log = logging.getLogger(__name__)

#: directives are a few kilobytes; a larger body is refused before it is held in memory
MAX_BODY = 256 * 1024
PRIVACY = ProcessingRecord(
    data=("pseudonymous account link (OAuth token)", "camera names, brands, models and ids",
          "motion-detection state and alarm times of the cameras",
          "live-stream and snapshot URLs (with the camera login only where the customer allowed it)",
          "Login with Amazon tokens for the Alexa event gateway"),
    purpose="show the customer's cameras in Alexa, switch motion detection and start live views on request, "
    "and report camera changes and alarms to Alexa",
    recipients=("Amazon (Alexa Smart Home)",),
    retention="until the customer unlinks the skill or deletes the account",
)
SCOPES = (m.SCOPE_STREAM, m.SCOPE_CONTROL, m.SCOPE_ALARMS)


class AlexaIntegration(Integration):
    """The Alexa skill backend: directives in, proactive events out."""

    name = INTEGRATION
    scopes = SCOPES

    def __init__(self, config: AlexaConfig | None = None, gateway: EventGateway | None = None) -> None:
        self.config = config or AlexaConfig()
        self.gateway = gateway or EventGateway(self.config)

    def handler(self, services: CoreServices) -> DirectiveHandler:
        """A directive handler bound to the core services."""
        return DirectiveHandler(services, self.config, self.gateway)

    async def on_event(self, services: CoreServices, event: Event) -> None:
        """Turn a core event into the proactive Alexa events it implies (accounts that accepted a grant only)."""
        if event.type == ACCOUNT_DELETED or (event.type == LINK_REVOKED
                                             and event.payload.get("integration") == INTEGRATION):
            # erased or unlinked on our side: the account's devices leave the customer's Alexa (a DeleteReport;
            # Amazon offers a skill no call to disable itself), and nothing more goes to Amazon
            if await self.gateway.grant(services, event.account_id) is not None:
                cams = await services.list_cameras(event.account_id)
                ids = [i for c in cams for i in (c.id, c.id + m.SENSOR_SUFFIX)]
                if ids:
                    await self.gateway.send(services, event.account_id, lambda t: m.delete_report(ids, t))
            await services.delete_state(PLUGIN, event.account_id, None)
            return
        if event.camera_id is None or event.type not in (CAMERA_CHANGED, CAMERA_DELETED, DETECTIONS_READY):
            return
        grant = await self.gateway.grant(services, event.account_id)
        if grant is None:
            return
        scopes = frozenset(grant.get("scopes", ()))
        cam_id = event.camera_id
        if event.type == CAMERA_DELETED:
            ids = [cam_id, cam_id + m.SENSOR_SUFFIX]
            await self.gateway.send(services, event.account_id, lambda t: m.delete_report(ids, t))
            await services.delete_state(PLUGIN, event.account_id, f"{ALARM_KEY}:{cam_id}")
            return
        cam = next((c for c in await services.list_cameras(event.account_id) if c.id == cam_id), None)
        if cam is None:
            return
        if event.type == DETECTIONS_READY:
            if m.SCOPE_ALARMS not in scopes or str(event.payload.get("verdict", "alarm")).startswith("false_alarm"):
                return
            await services.set_state(PLUGIN, event.account_id, f"{ALARM_KEY}:{cam_id}", time.time())
            await self.gateway.send(services, event.account_id, lambda t: m.change_report(
                cam_id + m.SENSOR_SUFFIX, t, [m.detection_state(True)], [m.connectivity(cam.online)],
                cause="PHYSICAL_INTERACTION"))
            return
        change = event.payload.get("change")
        if change == "action":
            if event.payload.get("action") == "motion_detection" and cam.may_control(scopes):
                on = bool(event.payload.get("value"))
                await self.gateway.send(services, event.account_id, lambda t: m.change_report(
                    cam_id, t, [m.power_state(on)], [m.connectivity(cam.online)]))
            return
        endpoints = m.camera_endpoints(cam, scopes, self.config.manufacturer_name, self.config.stream_width,
                                       self.config.stream_height)
        if endpoints:
            await self.gateway.send(services, event.account_id, lambda t: m.add_or_update_report(endpoints, t))

    async def forget_account(self, pseudonym: str) -> None:
        """Nothing kept per pseudonym: the LWA grant lives in per-account plugin state."""


def build(config: AlexaConfig | None) -> AlexaIntegration:
    """Factory the core calls with the validated ``[plugins.alexa]`` settings."""
    return AlexaIntegration(config)


@hookimpl
def register_integrations() -> Iterable[IntegrationSpec]:
    """The Alexa smart-home skill backend."""
    return [IntegrationSpec(name=INTEGRATION, factory=build, config_model=AlexaConfig, scopes=SCOPES,
                            title="Amazon Alexa",
                            description="Amazon Alexa smart-home skill: cameras (live view, motion detection "
                            "on/off) and per-camera alarm motion sensors",
                            privacy=PRIVACY)]


def _integration(app: Any) -> AlexaIntegration:
    integ = app.plugins.integration(INTEGRATION)
    return integ if isinstance(integ, AlexaIntegration) else AlexaIntegration()


async def directive(request: Request) -> Response:
    """``POST /plugins/alexa/directive``: the forwarding Lambda posts the raw directive here."""
    app = request.app.state.alarmcloud
    raw = await read_body(request, MAX_BODY)
    if raw is None:
        message = f"directives are under {MAX_BODY} bytes"
        return JSONResponse({"error": {"code": "payload_too_large", "message": message}}, status_code=413)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands of levels deep
        body = None
    return JSONResponse(await _integration(app).handler(app.services).handle(body))


@hookimpl
def register_routes(app: Any) -> list[BaseRoute]:
    """The directive endpoint."""
    return [Route("/directive", directive, methods=["POST"])]


@hookimpl
async def handle_event(app: Any, event: Event) -> None:
    """Proactive ChangeReport / AddOrUpdateReport / DeleteReport to the Alexa event gateway."""
    await _integration(app).on_event(app.services, event)


__all__ = ["GRANT_KEY", "AlexaIntegration", "build"]
