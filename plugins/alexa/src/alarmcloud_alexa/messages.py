"""Builders for Alexa Smart Home v3 events (pure functions, validated against Amazon's schema in tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from alarmcloud import CameraSummary

#: suffix of the per-camera motion-sensor endpoint that reports alarms
SENSOR_SUFFIX = ":motion"
SCOPE_STREAM = "cameras:stream"
SCOPE_CONTROL = "cameras:control"
SCOPE_ALARMS = "alarms:read"


def timestamp(when: datetime | None = None) -> str:
    """UTC with milliseconds and ``Z`` (the schema rejects ``isoformat()``'s microseconds and ``+00:00``)."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def header(namespace: str, name: str, correlation_token: str | None = None) -> dict[str, Any]:
    """An event header with a fresh messageId; correlationToken echoed when the directive had one."""
    h = {"namespace": namespace, "name": name, "payloadVersion": "3", "messageId": str(uuid.uuid4())}
    if correlation_token:
        h["correlationToken"] = correlation_token
    return h


def prop(namespace: str, name: str, value: Any, uncertainty: int = 0, when: datetime | None = None) -> dict[str, Any]:
    """A context property."""
    return {"namespace": namespace, "name": name, "value": value, "timeOfSample": timestamp(when),
            "uncertaintyInMilliseconds": uncertainty}


def connectivity(online: bool) -> dict[str, Any]:
    """The EndpointHealth connectivity property."""
    return prop("Alexa.EndpointHealth", "connectivity", {"value": "OK" if online else "UNREACHABLE"})


def power_state(on: bool) -> dict[str, Any]:
    """PowerController powerState (motion detection on/off)."""
    return prop("Alexa.PowerController", "powerState", "ON" if on else "OFF", uncertainty=500)


def detection_state(detected: bool) -> dict[str, Any]:
    """MotionSensor detectionState (an alarm of the camera)."""
    return prop("Alexa.MotionSensor", "detectionState", "DETECTED" if detected else "NOT_DETECTED")


def scope(token: str) -> dict[str, Any]:
    """A BearerToken scope."""
    return {"type": "BearerToken", "token": token}


def endpoint_ref(endpoint_id: str, token: str | None = None) -> dict[str, Any]:
    """The endpoint object of an event."""
    ref: dict[str, Any] = {"endpointId": endpoint_id}
    if token:
        ref["scope"] = scope(token)
    return ref


def _iface(interface: str, supported: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    cap: dict[str, Any] = {"type": "AlexaInterface", "interface": interface, "version": "3"}
    if supported:
        cap["properties"] = {"supported": [{"name": n} for n in supported], "proactivelyReported": True,
                             "retrievable": True}
    cap.update(extra)
    return cap


def _text(value: str, limit: int = 128) -> str:
    return (value or "-")[:limit]


def camera_endpoints(cam: CameraSummary, scopes: frozenset[str], manufacturer: str, width: int = 1920,
                     height: int = 1080) -> list[dict[str, Any]]:
    """The endpoints one camera becomes for a client with ``scopes``: the camera with live view where the camera can
    stream (``may_stream``) and the switch where it may be controlled (none with neither), and its alarm sensor."""
    caps: list[dict[str, Any]] = [_iface("Alexa")]
    if cam.may_stream(scopes):
        caps.append(_iface("Alexa.CameraStreamController", cameraStreamConfigurations=[{
            "protocols": ["RTSP"], "resolutions": [{"width": width, "height": height}],
            "authorizationTypes": ["NONE"], "videoCodecs": ["H264"], "audioCodecs": ["AAC"]}]))
    if cam.may_control(scopes):
        caps.append(_iface("Alexa.PowerController", ["powerState"]))
    out: list[dict[str, Any]] = []
    attributes = {"manufacturer": _text(cam.brand, 256), "model": _text(cam.model, 256)}
    if len(caps) > 1:
        caps.append(_iface("Alexa.EndpointHealth", ["connectivity"]))
        out.append({"endpointId": cam.id, "manufacturerName": _text(manufacturer), "friendlyName": _text(cam.name),
                    "description": _text(f"{cam.brand} {cam.model} camera via {manufacturer}"),
                    "displayCategories": ["CAMERA"], "cookie": {}, "additionalAttributes": attributes,
                    "capabilities": caps})
    if SCOPE_ALARMS in scopes:
        out.append({"endpointId": cam.id + SENSOR_SUFFIX, "manufacturerName": _text(manufacturer),
                    "friendlyName": _text(f"{cam.name} alarm"),
                    "description": _text(f"Alarm (motion) of camera {cam.name} via {manufacturer}"),
                    "displayCategories": ["MOTION_SENSOR"], "cookie": {}, "additionalAttributes": attributes,
                    "capabilities": [_iface("Alexa"), _iface("Alexa.MotionSensor", ["detectionState"]),
                                     _iface("Alexa.EndpointHealth", ["connectivity"])]})
    return out


def discover_response(endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """Discover.Response (an empty list for bad tokens or no cameras)."""
    return {"event": {"header": header("Alexa.Discovery", "Discover.Response"), "payload": {"endpoints": endpoints}}}


def response(endpoint_id: str, token: str | None, correlation_token: str | None, properties: list[dict[str, Any]],
             namespace: str = "Alexa", name: str = "Response", payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """A synchronous response (``Alexa.Response``, ``StateReport``, CameraStreamController response)."""
    return {"context": {"properties": properties},
            "event": {"header": header(namespace, name, correlation_token),
                      "endpoint": endpoint_ref(endpoint_id, token), "payload": payload or {}}}


def error_response(error_type: str, message: str, correlation_token: str | None = None,
                   endpoint_id: str | None = None, token: str | None = None,
                   namespace: str = "Alexa") -> dict[str, Any]:
    """An ErrorResponse (``Alexa`` or ``Alexa.Authorization`` namespace)."""
    event: dict[str, Any] = {"header": header(namespace, "ErrorResponse", correlation_token),
                             "payload": {"type": error_type, "message": message[:1000] or error_type}}
    if endpoint_id:
        event["endpoint"] = endpoint_ref(endpoint_id, token)
    return {"event": event}


def accept_grant_response() -> dict[str, Any]:
    """AcceptGrant.Response (empty payload)."""
    return {"event": {"header": header("Alexa.Authorization", "AcceptGrant.Response"), "payload": {}}}


def change_report(endpoint_id: str, token: str, changed: list[dict[str, Any]], unchanged: list[dict[str, Any]],
                  cause: str = "APP_INTERACTION") -> dict[str, Any]:
    """A proactive ChangeReport for the event gateway."""
    return {"context": {"properties": unchanged},
            "event": {"header": header("Alexa", "ChangeReport"), "endpoint": endpoint_ref(endpoint_id, token),
                      "payload": {"change": {"cause": {"type": cause}, "properties": changed}}}}


def add_or_update_report(endpoints: list[dict[str, Any]], token: str) -> dict[str, Any]:
    """AddOrUpdateReport: add or replace these endpoints."""
    return {"event": {"header": header("Alexa.Discovery", "AddOrUpdateReport"),
                      "payload": {"endpoints": endpoints, "scope": scope(token)}}}


def delete_report(endpoint_ids: list[str], token: str) -> dict[str, Any]:
    """DeleteReport: these endpoints are gone (not covered by Amazon's schema)."""
    return {"event": {"header": header("Alexa.Discovery", "DeleteReport"),
                      "payload": {"endpoints": [{"endpointId": e} for e in endpoint_ids], "scope": scope(token)}}}
