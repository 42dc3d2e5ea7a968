"""The Google smart-home fulfillment: SYNC, QUERY, EXECUTE and DISCONNECT for the linked account's cameras."""

from __future__ import annotations

import logging
from typing import Any

from alarmcloud import CameraSummary, CoreServices, Principal, ServiceError

from alarmcloud_google_home.config import GoogleHomeConfig

log = logging.getLogger(__name__)
INTEGRATION = PLUGIN = "google_home"
AGENT_KEY = "agent_user_id"
SCOPES_KEY = "scopes"
SCOPE_STREAM = "cameras:stream"
SCOPE_CONTROL = "cameras:control"
CAMERA_STREAM = "action.devices.traits.CameraStream"
ON_OFF = "action.devices.traits.OnOff"


def device(cam: CameraSummary, scopes: frozenset[str], config: GoogleHomeConfig) -> dict[str, Any] | None:
    """A SYNC device for a camera the link may view live (``may_stream``), else none.

    Google's CAMERA type requires the CameraStream trait, so a camera that cannot stream (no ``cameras:stream``, or
    no ``stream`` capability: its brand has no adapter enabled) is left out rather than declared as another type with
    OnOff only: as a SWITCH or OUTLET it would show up as a plug named after the camera ("turn off the front door"),
    and a camera without an adapter cannot be switched anyway (the core lists ``control`` only next to ``stream``).
    """
    if not cam.may_stream(scopes):
        return None
    traits = [CAMERA_STREAM] + ([ON_OFF] if cam.may_control(scopes) else [])
    return {"id": cam.id, "type": "action.devices.types.CAMERA", "traits": traits,
            "name": {"name": cam.name, "defaultNames": [f"{cam.brand} {cam.model}"], "nicknames": []},
            "willReportState": True,
            "deviceInfo": {"manufacturer": cam.brand, "model": cam.model},
            "attributes": {"cameraStreamSupportedProtocols": [config.stream_protocol],
                           "cameraStreamNeedAuthToken": config.stream_need_auth_token}}


def state(cam: CameraSummary, scopes: frozenset[str]) -> dict[str, Any]:
    """The states of a camera (``online`` and, with control, ``on`` = motion detection)."""
    out: dict[str, Any] = {"online": cam.online}
    if cam.may_control(scopes) and cam.motion_detection is not None:
        out["on"] = cam.motion_detection
    return out


def auth_failure(request_id: str, intent: str) -> dict[str, Any]:
    """The body of the HTTP 401 answer, shaped so it still fits the intent's response schema."""
    payload: dict[str, Any] = {"errorCode": "authFailure"}
    if intent == "action.devices.SYNC":
        payload.update(agentUserId="", devices=[])
    elif intent == "action.devices.QUERY":
        payload["devices"] = {}
    elif intent == "action.devices.EXECUTE":
        payload["commands"] = []
    return {"requestId": request_id, "payload": payload}


def _camera_failure(exc: ServiceError) -> tuple[str, str]:
    if exc.status == 404:
        return "ERROR", "deviceNotFound"
    if exc.status in (409, 502, 503, 504) or exc.code.startswith("camera_"):
        return "OFFLINE", "deviceOffline"
    if exc.status == 400:
        return "ERROR", "notSupported"
    if exc.status == 403:  # the link or the person's right on the camera does not allow it (any more)
        return "ERROR", "functionNotSupported"
    return "ERROR", "hardError"


class Fulfillment:
    """Answers one fulfillment request for an authenticated principal."""

    def __init__(self, services: CoreServices, config: GoogleHomeConfig) -> None:
        self.services = services
        self.config = config

    async def handle(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        """Dispatch on ``inputs[0].intent``; an unknown intent is a global ``notSupported``."""
        request_id = str(body.get("requestId", ""))
        inputs = body.get("inputs") if isinstance(body.get("inputs"), list) else []
        first = inputs[0] if inputs and isinstance(inputs[0], dict) else {}
        intent = first.get("intent")
        payload = first.get("payload") if isinstance(first.get("payload"), dict) else {}
        if intent == "action.devices.SYNC":
            return {"requestId": request_id, "payload": await self.sync(principal)}
        if intent == "action.devices.QUERY":
            return {"requestId": request_id, "payload": await self.query(principal, payload)}
        if intent == "action.devices.EXECUTE":
            return {"requestId": request_id, "payload": await self.execute(principal, payload)}
        if intent == "action.devices.DISCONNECT":
            await self.disconnect(principal)
            return {}
        return {"requestId": request_id, "payload": {"errorCode": "notSupported", "devices": {}}}

    async def _cameras(self, principal: Principal) -> dict[str, CameraSummary]:
        return {c.id: c for c in await self.services.list_cameras(principal.account_id)}

    async def sync(self, principal: Principal) -> dict[str, Any]:
        """The account's cameras; remembers the agent user so Report State knows it is linked."""
        await self.services.set_state(PLUGIN, principal.account_id, AGENT_KEY, principal.pseudonym)
        # Report State may only carry states of the traits SYNC declared, and those follow the scopes
        await self.services.set_state(PLUGIN, principal.account_id, SCOPES_KEY, sorted(principal.scopes))
        devices = [d for c in (await self._cameras(principal)).values()
                   if (d := device(c, principal.scopes, self.config))]
        return {"agentUserId": principal.pseudonym, "devices": devices}

    async def query(self, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
        """States per requested device; unknown ones answer ``deviceNotFound``."""
        cams = await self._cameras(principal)
        out: dict[str, Any] = {}
        for dev in payload.get("devices", []):
            dev_id = str(dev.get("id")) if isinstance(dev, dict) else ""
            cam = cams.get(dev_id)
            if cam is None or SCOPE_STREAM not in principal.scopes:
                out[dev_id] = {"online": False, "status": "ERROR", "errorCode": "deviceNotFound"}
            elif not cam.online:
                out[dev_id] = {"online": False, "status": "OFFLINE", "errorCode": "deviceOffline"}
            else:
                out[dev_id] = {**state(cam, principal.scopes), "status": "SUCCESS"}
        return {"devices": out}

    async def execute(self, principal: Principal, payload: dict[str, Any]) -> dict[str, Any]:
        """Run each execution on each device: OnOff (motion detection) and GetCameraStream."""
        cams = await self._cameras(principal)
        results: list[dict[str, Any]] = []
        for command in payload.get("commands", []):
            if not isinstance(command, dict):
                continue
            for dev in command.get("devices", []):
                dev_id = str(dev.get("id")) if isinstance(dev, dict) else ""
                for execution in command.get("execution", []):
                    results.append(await self._execute_one(principal, cams.get(dev_id), dev_id, execution))
        return {"commands": results}

    async def _execute_one(self, principal: Principal, cam: CameraSummary | None, dev_id: str,
                           execution: Any) -> dict[str, Any]:
        def fail(status: str, code: str) -> dict[str, Any]:
            return {"ids": [dev_id], "status": status, "errorCode": code}

        if cam is None or SCOPE_STREAM not in principal.scopes:
            return fail("ERROR", "deviceNotFound")
        command = execution.get("command") if isinstance(execution, dict) else None
        params = execution.get("params") if isinstance(execution, dict) else None
        params = params if isinstance(params, dict) else {}
        if command == "action.devices.commands.OnOff":
            if not cam.may_control(principal.scopes):  # no OnOff in SYNC for this camera
                return fail("ERROR", "functionNotSupported")
            if not isinstance(params.get("on"), bool):
                return fail("ERROR", "notSupported")
            if not cam.online:
                return fail("OFFLINE", "deviceOffline")
            try:
                await self.services.camera_action(principal.account_id, cam.id, "motion_detection", params["on"],
                                                  principal=principal)
            except ServiceError as exc:
                return fail(*_camera_failure(exc))
            return {"ids": [dev_id], "status": "SUCCESS", "states": {"online": True, "on": params["on"]}}
        if command == "action.devices.commands.GetCameraStream":
            if not cam.may_stream(principal.scopes):  # no CameraStream in SYNC for this camera (any more)
                return fail("ERROR", "functionNotSupported")
            if not cam.online:
                return fail("OFFLINE", "deviceOffline")
            cfg = self.config
            if not cfg.stream_url_template:
                return fail("ERROR", "streamUnavailable")
            wanted = params.get("SupportedStreamProtocols")
            if not isinstance(wanted, list) or cfg.stream_protocol not in wanted:
                return fail("ERROR", "streamUnplayable")
            states: dict[str, Any] = {"online": True,
                                      "cameraStreamAccessUrl": cfg.stream_url_template.format(camera_id=cam.id),
                                      "cameraStreamProtocol": cfg.stream_protocol}
            if cfg.cast_receiver_app_id:
                states["cameraStreamReceiverAppId"] = cfg.cast_receiver_app_id
            log.info("google_home: stream handed out for camera %s", cam.id)
            return {"ids": [dev_id], "status": "SUCCESS", "states": states}
        return fail("ERROR", "functionNotSupported")

    async def disconnect(self, principal: Principal) -> None:
        """Google unlinked: revoke our grant and forget the agent user (no more Report State)."""
        await self.services.delete_state(PLUGIN, principal.account_id, None)
        await self.services.unlink(principal.account_id, INTEGRATION)
