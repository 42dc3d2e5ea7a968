"""Hook implementations of this plugin (entry-point target ``google_home`` in ``alarmcloud.integrations``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from alarmcloud import (
    CoreServices,
    Event,
    Integration,
    IntegrationSpec,
    ProcessingRecord,
    ServiceError,
    hookimpl,
    read_body,
)
from alarmcloud.events import ACCOUNT_DELETED, CAMERA_CHANGED, CAMERA_DELETED, DETECTIONS_READY, LINK_REVOKED
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alarmcloud_google_home.config import GoogleHomeConfig
from alarmcloud_google_home.fulfillment import (
    AGENT_KEY,
    INTEGRATION,
    PLUGIN,
    SCOPE_CONTROL,
    SCOPE_STREAM,
    SCOPES_KEY,
    Fulfillment,
    auth_failure,
    state,
)
from alarmcloud_google_home.homegraph import HomeGraph

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

log = logging.getLogger(__name__)
SCOPES = (SCOPE_STREAM, SCOPE_CONTROL)
#: an EXECUTE for many devices is tens of kilobytes; a larger body is refused before it is held in memory
MAX_BODY = 1024 * 1024
PRIVACY = ProcessingRecord(
    data=("pseudonymous agent user id", "camera names, brands, models and ids",
          "motion-detection state and online state of the cameras", "live-stream relay URLs"),
    purpose="show the customer's cameras in Google Home, switch motion detection and start live views on request, "
    "and keep Google's device states current",
    recipients=("Google (Google Home / HomeGraph)",),
    retention="until the customer unlinks Google Home or deletes the account",
)


class GoogleHomeIntegration(Integration):
    """Google cloud-to-cloud fulfillment plus HomeGraph reports."""

    name = INTEGRATION
    scopes = SCOPES

    def __init__(self, config: GoogleHomeConfig | None = None, homegraph: HomeGraph | None = None) -> None:
        self.config = config or GoogleHomeConfig()
        self.homegraph = homegraph or HomeGraph(self.config)

    def fulfillment(self, services: CoreServices) -> Fulfillment:
        """A fulfillment bound to the core services."""
        return Fulfillment(services, self.config)

    async def on_event(self, services: CoreServices, event: Event) -> None:
        """Request Sync on camera list changes; Report State on motion-detection changes and alarms.

        Only for users whose Google account is linked (a SYNC happened since the last DISCONNECT).
        """
        if event.type == ACCOUNT_DELETED or (event.type == LINK_REVOKED
                                             and event.payload.get("integration") == INTEGRATION):
            # erased or unlinked on our side: Google unlinks the user too, and no more reports go out
            agent = await services.get_state(PLUGIN, event.account_id, AGENT_KEY)
            if isinstance(agent, str):
                await self.homegraph.delete_agent_user(agent)
            await services.delete_state(PLUGIN, event.account_id, None)
            return
        if event.type not in (CAMERA_CHANGED, CAMERA_DELETED, DETECTIONS_READY) or event.camera_id is None:
            return
        agent = await services.get_state(PLUGIN, event.account_id, AGENT_KEY)
        if not isinstance(agent, str):
            return
        scopes = frozenset(await services.get_state(PLUGIN, event.account_id, SCOPES_KEY) or ())
        if event.type == DETECTIONS_READY or event.payload.get("change") == "action":
            if SCOPE_STREAM not in scopes:
                return  # no device in Google for any camera
            if event.type == DETECTIONS_READY and str(event.payload.get("verdict", "")).startswith("false_alarm"):
                return
            if event.type == CAMERA_CHANGED and event.payload.get("action") != "motion_detection":
                return
            cam = next((c for c in await services.list_cameras(event.account_id) if c.id == event.camera_id), None)
            if cam is None or not cam.may_stream(scopes):
                return  # no device in Google for this camera (SYNC leaves a camera that cannot stream out)
            # an alarm clip proves the camera is online; Google has no alarm state for a cloud camera
            states = state(cam, scopes) | {"online": cam.online or event.type == DETECTIONS_READY}
            if event.type == CAMERA_CHANGED and cam.may_control(scopes):
                states["on"] = bool(event.payload.get("value"))
            await self.homegraph.report_state(agent, {cam.id: states}, event_id=_event_id(event))
            return
        await self.homegraph.request_sync(agent)


def _event_id(event: Event) -> str | None:
    clip = event.payload.get("clip_id")
    return f"alarm-{clip}" if event.type == DETECTIONS_READY and isinstance(clip, str) else None


def build(config: GoogleHomeConfig | None) -> GoogleHomeIntegration:
    """Factory the core calls with the validated ``[plugins.google_home]`` settings."""
    return GoogleHomeIntegration(config)


@hookimpl
def register_integrations() -> Iterable[IntegrationSpec]:
    """The Google Home cloud-to-cloud integration."""
    return [IntegrationSpec(name=INTEGRATION, factory=build, config_model=GoogleHomeConfig, scopes=SCOPES,
                            title="Google Home",
                            description="Google Home: cameras (live view through your relay, motion detection "
                            "on/off), Report State and Request Sync", privacy=PRIVACY)]


def _integration(app: Any) -> GoogleHomeIntegration:
    integ = app.plugins.integration(INTEGRATION)
    return integ if isinstance(integ, GoogleHomeIntegration) else GoogleHomeIntegration()


async def fulfillment(request: Request) -> Response:
    """``POST /plugins/google_home/fulfillment``: SYNC, QUERY, EXECUTE, DISCONNECT."""
    app = request.app.state.alarmcloud
    raw = await read_body(request, MAX_BODY)
    if raw is None:
        message = f"requests are under {MAX_BODY} bytes"
        return JSONResponse({"error": {"code": "payload_too_large", "message": message}}, status_code=413)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands of levels deep
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": {"code": "invalid_request", "message": "a JSON object is required"}},
                            status_code=400)
    inputs = body.get("inputs") if isinstance(body.get("inputs"), list) else [{}]
    intent = str(inputs[0].get("intent", "")) if inputs and isinstance(inputs[0], dict) else ""
    try:
        principal = await app.services.authenticate(request, INTEGRATION)
    except ServiceError as exc:
        if exc.status not in (401, 403):
            raise
        return JSONResponse(auth_failure(str(body.get("requestId", "")), intent), status_code=401)
    return JSONResponse(await _integration(app).fulfillment(app.services).handle(principal, body))


@hookimpl
def register_routes(app: Any) -> list[BaseRoute]:
    """The fulfillment endpoint."""
    return [Route("/fulfillment", fulfillment, methods=["POST"])]


@hookimpl
async def handle_event(app: Any, event: Event) -> None:
    """Report State / Request Sync to HomeGraph."""
    await _integration(app).on_event(app.services, event)
