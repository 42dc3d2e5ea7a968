"""The Alexa directive handler: one directive in, one schema-valid event out (never an exception)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from alarmcloud import CameraSummary, CoreServices, Principal, ServiceError

from alarmcloud_alexa import messages as m
from alarmcloud_alexa.config import AlexaConfig
from alarmcloud_alexa.gateway import PLUGIN, EventGateway, GrantError

log = logging.getLogger(__name__)
INTEGRATION = "alexa"
ALARM_KEY = "last_alarm"


class AlexaError(Exception):
    """Becomes an Alexa ErrorResponse of ``type``."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.type = error_type
        self.message = message


def _auth_error(exc: ServiceError) -> AlexaError:
    if exc.status == 403:
        return AlexaError("INSUFFICIENT_PERMISSIONS", "the account link does not allow this")
    if exc.code == "expired_token":  # the link lives: Alexa refreshes instead of asking the customer to relink
        return AlexaError("EXPIRED_AUTHORIZATION_CREDENTIAL", "the access token has expired")
    return AlexaError("INVALID_AUTHORIZATION_CREDENTIAL", "the access token is invalid or revoked")


def _camera_error(exc: ServiceError) -> AlexaError:
    if exc.status == 404:
        return AlexaError("NO_SUCH_ENDPOINT", "no such camera")
    if exc.status in (409, 502, 503, 504) or exc.code.startswith("camera_"):
        return AlexaError("ENDPOINT_UNREACHABLE", "the camera cannot be reached right now")
    if exc.status == 400:
        return AlexaError("INVALID_VALUE", "the camera rejected the value")
    if exc.status in (401, 403):
        return _auth_error(exc)
    return AlexaError("INTERNAL_ERROR", "the camera cloud failed to handle the directive")


class DirectiveHandler:
    """Answers Alexa directives for the cameras of the linked account."""

    def __init__(self, services: CoreServices, config: AlexaConfig, gateway: EventGateway) -> None:
        self.services = services
        self.config = config
        self.gateway = gateway

    async def handle(self, body: Any) -> dict[str, Any]:
        """Dispatch one directive; every failure becomes an ErrorResponse."""
        directive = body.get("directive") if isinstance(body, dict) else None
        hdr = directive.get("header") if isinstance(directive, dict) else None
        if not isinstance(hdr, dict):
            return m.error_response("INVALID_DIRECTIVE", "the request is not an Alexa directive")
        namespace, name = str(hdr.get("namespace", "")), str(hdr.get("name", ""))
        corr = hdr.get("correlationToken") if isinstance(hdr.get("correlationToken"), str) else None
        endpoint = directive.get("endpoint") if isinstance(directive.get("endpoint"), dict) else {}
        endpoint_id = endpoint.get("endpointId") if isinstance(endpoint.get("endpointId"), str) else None
        payload = directive.get("payload") if isinstance(directive.get("payload"), dict) else {}
        token = _token(endpoint) or _token(payload)
        try:
            if namespace == "Alexa.Discovery" and name == "Discover":
                return await self.discover(token)
            if namespace == "Alexa.Authorization" and name == "AcceptGrant":
                return await self.accept_grant(payload)
            if endpoint_id is None:
                raise AlexaError("INVALID_DIRECTIVE", f"{namespace}.{name} needs an endpoint")
            if token is None:
                raise AlexaError("INVALID_AUTHORIZATION_CREDENTIAL", "the directive carries no access token")
            principal = await self._principal(token)
            if namespace == "Alexa" and name == "ReportState":
                return await self.report_state(principal, endpoint_id, token, corr)
            if namespace == "Alexa.PowerController" and name in ("TurnOn", "TurnOff"):
                return await self.power(principal, endpoint_id, token, corr, name == "TurnOn")
            if namespace == "Alexa.CameraStreamController" and name == "InitializeCameraStreams":
                return await self.streams(principal, endpoint_id, token, corr, payload)
            raise AlexaError("INVALID_DIRECTIVE", f"unsupported directive {namespace}.{name}"[:200])
        except AlexaError as exc:
            return m.error_response(exc.type, exc.message, corr, endpoint_id, token)
        except Exception:
            log.exception("alexa: %s.%s failed", namespace, name)
            return m.error_response("INTERNAL_ERROR", "the camera cloud failed to handle the directive", corr,
                                    endpoint_id, token)

    async def _principal(self, token: str) -> Principal:
        try:
            return await self.services.principal_for_token(token, INTEGRATION)
        except ServiceError as exc:
            raise _auth_error(exc) from None

    async def endpoints_for(self, account_id: str, scopes: frozenset[str]) -> list[dict[str, Any]]:
        """Discovery endpoints of the account's cameras for these scopes."""
        cfg = self.config
        out: list[dict[str, Any]] = []
        for cam in await self.services.list_cameras(account_id):
            out.extend(m.camera_endpoints(cam, scopes, cfg.manufacturer_name, cfg.stream_width, cfg.stream_height))
        return out[:300]

    async def discover(self, token: str | None) -> dict[str, Any]:
        """Discover.Response; an empty list for a bad token (Amazon's rule, not an error)."""
        if token is None:
            return m.discover_response([])
        try:
            principal = await self.services.principal_for_token(token, INTEGRATION)
        except ServiceError:
            return m.discover_response([])
        return m.discover_response(await self.endpoints_for(principal.account_id, principal.scopes))

    async def accept_grant(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Exchange the grant code at LWA and keep the tokens for proactive events."""
        grant, grantee = payload.get("grant"), payload.get("grantee")
        code = grant.get("code") if isinstance(grant, dict) else None
        token = grantee.get("token") if isinstance(grantee, dict) else None
        if not isinstance(code, str) or not isinstance(token, str):
            return m.error_response("ACCEPT_GRANT_FAILED", "grant code or grantee token missing",
                                    namespace="Alexa.Authorization")
        try:
            principal = await self.services.principal_for_token(token, INTEGRATION)
            await self.gateway.accept_grant(self.services, principal.account_id, code, principal.scopes)
        except (ServiceError, GrantError) as exc:
            log.warning("alexa: AcceptGrant failed: %s", type(exc).__name__)
            return m.error_response("ACCEPT_GRANT_FAILED", "the grant could not be accepted",
                                    namespace="Alexa.Authorization")
        return m.accept_grant_response()

    async def _camera(self, principal: Principal, endpoint_id: str) -> tuple[CameraSummary, bool]:
        camera_id, sensor = endpoint_id, endpoint_id.endswith(m.SENSOR_SUFFIX)
        if sensor:
            camera_id = endpoint_id[: -len(m.SENSOR_SUFFIX)]
        for cam in await self.services.list_cameras(principal.account_id):
            if cam.id == camera_id:
                return cam, sensor
        raise AlexaError("NO_SUCH_ENDPOINT", "no such camera")

    def _need(self, principal: Principal, scope: str) -> None:
        if scope not in principal.scopes:
            raise AlexaError("INSUFFICIENT_PERMISSIONS", f"the account link does not grant {scope}")

    async def _alarm_active(self, account_id: str, camera_id: str) -> bool:
        last = await self.services.get_state(PLUGIN, account_id, f"{ALARM_KEY}:{camera_id}")
        return isinstance(last, int | float) and time.time() - last < self.config.alarm_hold_seconds

    async def report_state(self, principal: Principal, endpoint_id: str, token: str,
                           corr: str | None) -> dict[str, Any]:
        """StateReport with every retrievable property of the endpoint."""
        cam, sensor = await self._camera(principal, endpoint_id)
        props = [m.connectivity(cam.online)]
        if sensor:
            self._need(principal, m.SCOPE_ALARMS)
            props.append(m.detection_state(await self._alarm_active(principal.account_id, cam.id)))
        elif cam.may_control(principal.scopes) and cam.motion_detection is not None:
            props.append(m.power_state(cam.motion_detection))
        return m.response(endpoint_id, token, corr, props, name="StateReport")

    async def power(self, principal: Principal, endpoint_id: str, token: str, corr: str | None,
                    on: bool) -> dict[str, Any]:
        """Motion detection on/off through the camera adapter."""
        cam, sensor = await self._camera(principal, endpoint_id)
        if sensor:
            raise AlexaError("INVALID_DIRECTIVE", "a motion sensor cannot be switched")
        self._need(principal, m.SCOPE_CONTROL)
        # permission before reachability: an offline camera the person may only view is still not theirs to switch
        # (a camera without any capability has no adapter enabled: the core answers for it, as before)
        if not cam.may_control(principal.scopes) and "stream" in cam.capabilities:
            raise AlexaError("INSUFFICIENT_PERMISSIONS", "the person's right on this camera does not allow switching")
        if not cam.online:
            raise AlexaError("ENDPOINT_UNREACHABLE", "the camera is offline")
        try:
            await self.services.camera_action(principal.account_id, cam.id, "motion_detection", on,
                                              principal=principal)
        except ServiceError as exc:
            raise _camera_error(exc) from None
        return m.response(endpoint_id, token, corr, [m.power_state(on), m.connectivity(True)])

    async def streams(self, principal: Principal, endpoint_id: str, token: str, corr: str | None,
                      payload: dict[str, Any]) -> dict[str, Any]:
        """InitializeCameraStreams: an RTSP URL (the relay or the camera's own) and an image URI."""
        cam, sensor = await self._camera(principal, endpoint_id)
        if sensor:
            raise AlexaError("INVALID_DIRECTIVE", "a motion sensor has no stream")
        self._need(principal, m.SCOPE_STREAM)
        if not cam.may_stream(principal.scopes):  # no CameraStreamController in discovery for it (no adapter)
            raise AlexaError("INVALID_DIRECTIVE", "this camera offers no live view")
        if not cam.online:
            raise AlexaError("ENDPOINT_UNREACHABLE", "the camera is offline")
        cfg = self.config
        try:
            live = await self.services.live_stream(principal.account_id, cam.id,
                                                   with_credentials=cfg.use_camera_credentials, principal=principal)
        except ServiceError as exc:
            raise _camera_error(exc) from None
        creds = live.credentials_in_url or {}
        uri = (cfg.stream_url_template.format(camera_id=cam.id) if cfg.stream_url_template
               else creds.get("rtsp_main") or live.rtsp_main)
        image = (cfg.image_url_template.format(camera_id=cam.id) if cfg.image_url_template
                 else creds.get("snapshot") or live.snapshot)
        if not image:
            raise AlexaError("INTERNAL_ERROR", "no image URI is configured for this camera")
        wanted = [s for s in payload.get("cameraStreams", []) if isinstance(s, dict)]
        rtsp = [s for s in wanted if s.get("protocol") == "RTSP"] or [{}]
        res = rtsp[0].get("resolution") if isinstance(rtsp[0].get("resolution"), dict) else None
        resolution = {"width": cfg.stream_width, "height": cfg.stream_height}
        if res and isinstance(res.get("width"), int) and isinstance(res.get("height"), int):
            resolution = {"width": res["width"], "height": res["height"]}
        audio = rtsp[0].get("audioCodec") if rtsp[0].get("audioCodec") in ("G711", "AAC", "NONE") else "AAC"
        expires = datetime.now(UTC) + timedelta(hours=1)
        stream = {"uri": uri, "expirationTime": m.timestamp(expires), "idleTimeoutSeconds": cfg.idle_timeout_seconds,
                  "protocol": "RTSP", "resolution": resolution, "authorizationType": "NONE",
                  "videoCodec": "H264", "audioCodec": audio}
        log.info("alexa: stream initialised for camera %s", cam.id)  # never the URI: it may carry the login
        return m.response(endpoint_id, token, corr, [m.connectivity(True)], namespace="Alexa.CameraStreamController",
                          payload={"cameraStreams": [stream], "imageUri": image})


def _token(obj: dict[str, Any]) -> str | None:
    sc = obj.get("scope")
    token = sc.get("token") if isinstance(sc, dict) else None
    return token if isinstance(token, str) and token else None
