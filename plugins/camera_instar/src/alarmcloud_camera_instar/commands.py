"""The exact CGI requests of the five camera controls, per API generation (pure functions, no I/O).

Sources: ``reference/instar_cameras.md`` §2.1 and §6.4. Each function returns the query parameters of one
request, in order; repeated ``cmd=`` blocks are several commands in one request (hi3510 accepts that).
"""

from __future__ import annotations

from typing import Any

from alarmcloud.contracts import CameraError, CameraModel

from alarmcloud_camera_instar.catalog import HD, Generation

Params = list[tuple[str, str]]

#: hi3510 cameras have four motion-detection areas; the global switch sets all of them
HI3510_AREAS = (1, 2, 3, 4)
#: presets as the web UI numbers them (positions 1-8); hi3510 CGI numbers them 0-7
PRESETS = range(1, 9)


def to_switch(value: Any) -> bool:
    """Read an on/off value (bool, 0/1, "on"/"off", "true"/"false")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "on", "true", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "off", "false", "no"):
        return False
    raise CameraError("invalid", f"expected on/off, got {value!r}")


def to_int(value: Any, low: int, high: int, what: str) -> int:
    """Read an integer in ``low..high`` (numeric strings accepted)."""
    if isinstance(value, bool):
        raise CameraError("invalid", f"{what} must be a number from {low} to {high}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise CameraError("invalid", f"{what} must be a number from {low} to {high}, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise CameraError("invalid", f"{what} must be a whole number, got {value!r}")
    if not low <= number <= high:
        raise CameraError("invalid", f"{what} must be from {low} to {high}, got {number}")
    return number


def motion_detection(gen: Generation, on: bool) -> Params:
    """hi3510: switch all four areas (no single armed flag); WQHD: the master ``armed`` switch."""
    flag = "1" if on else "0"
    if gen.api == "wqhd":
        return [("cmd", "setalarmattr"), ("armed", flag)]
    params: Params = []
    for area in HI3510_AREAS:
        params += [("cmd", "setmdattr"), ("-enable", flag), ("-name", str(area))]
    return params


def alarm_email(gen: Generation, on: bool) -> Params:
    """720p: ``email`` and ``emailsnap``; Full HD: ``emailsnap``; WQHD: the web UI's mail action ``setmaaction``.

    WQHD: the 1440p CGI list names only the getter ``getmaaction``; the setter and its ``enable`` key come from a
    command map of the 2K+ web UI. The documented route is MQTT (``mqtt_alarm_email``), used when the camera
    does not know ``setmaaction``.
    """
    if gen.api == "wqhd":
        return [("cmd", "setmaaction"), ("enable", "1" if on else "0")]
    switch = "on" if on else "off"
    names = ("email", "emailsnap") if gen.key == HD else ("emailsnap",)
    params: Params = []
    for name in names:
        params += [("cmd", "setmdalarm"), ("-aname", name), ("-switch", switch)]
    return params


def go_to_preset(gen: Generation, model: CameraModel, position: int) -> Params:
    """hi3510: ``preset&-act=goto&-number=<0-based>``; WQHD has no documented CGI for it (see ``mqtt_preset``)."""
    check_presets(model)
    if gen.api == "wqhd":
        raise CameraError("unsupported", "WQHD cameras move to presets over MQTT (features/ptz/preset/goto)")
    return [("cmd", "preset"), ("-act", "goto"), ("-number", str(position - 1))]


def check_presets(model: CameraModel) -> None:
    """Fixed cameras have no presets: refuse before anything is sent."""
    if not model.ptz:
        raise CameraError("unsupported", f"the {model.name} cannot pan or tilt, so it has no presets")


# ---------------------------------------------------------------- WQHD MQTT (reference §3.2)

#: MQTT v5 API paths (under ``<prefix><client id>``); payload ``{"val":"..."}``
MQTT_PRESET_GOTO = "features/ptz/preset/goto"
MQTT_ALARM_EMAIL = "alarm/actions/email/enable"


def mqtt_preset(position: int) -> tuple[str, str]:
    """WQHD preset: path ``features/ptz/preset/goto`` with the web-UI position 1-8 (not 0-based)."""
    return MQTT_PRESET_GOTO, str(position)


def mqtt_alarm_email(on: bool) -> tuple[str, str]:
    """WQHD alarm e-mail: path ``alarm/actions/email/enable`` with ``1`` / ``0``."""
    return MQTT_ALARM_EMAIL, "1" if on else "0"


def read_mqtt_settings() -> Params:
    """WQHD: the camera's MQTT settings (``mq_enable``, ``mq_port``, ``mq_portssl``, ``mq_prefix``, ...)."""
    return [("cmd", "getmqttattr")]


def alarm_area(gen: Generation, area: int, on: bool) -> Params:
    """Switch one motion-detection area: ``-name=N&-enable=`` (hi3510) or ``area=N&enable=`` (WQHD)."""
    flag = "1" if on else "0"
    if gen.api == "wqhd":
        return [("cmd", "setmdattr"), ("area", str(area)), ("enable", flag)]
    return [("cmd", "setmdattr"), ("-name", str(area)), ("-enable", flag)]


def area_sensitivity(gen: Generation, area: int, percent: int, area_enabled: bool = True) -> Params:
    """hi3510: ``-name=N&-enable=<current>&-s=0..100``; WQHD: ``area=N&s=1..100``."""
    if gen.api == "wqhd":
        return [("cmd", "setmdattr"), ("area", str(area)), ("s", str(percent))]
    return [
        ("cmd", "setmdattr"),
        ("-name", str(area)),
        ("-enable", "1" if area_enabled else "0"),
        ("-s", str(percent)),
    ]


def read_areas(gen: Generation) -> Params:
    """Read the motion-detection areas (``var m1_enable="1";`` / ``enable[1]="1";``)."""
    return [("cmd", "getmdattr")]


def area_enabled(gen: Generation, reply: dict[str, str], area: int) -> bool | None:
    """Whether ``area`` is switched on in a ``getmdattr`` reply; None when the reply does not say."""
    key = f"enable[{area}]" if gen.api == "wqhd" else f"m{area}_enable"
    value = reply.get(key)
    return None if value is None else value == "1"


def sensitivity_range(gen: Generation) -> tuple[int, int]:
    """hi3510 takes 0-100 %, WQHD 1-100 %."""
    return (1, 100) if gen.api == "wqhd" else (0, 100)
