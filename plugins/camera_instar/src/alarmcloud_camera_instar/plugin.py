"""Hook implementations of this plugin (entry-point target ``instar`` in ``alarmcloud.cameras``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from alarmcloud.hookspecs import hookimpl
from alarmcloud.specs import CameraAdapterSpec, ProcessingRecord

from alarmcloud_camera_instar import alarm_server
from alarmcloud_camera_instar.adapter import build_adapter
from alarmcloud_camera_instar.config import InstarConfig

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

PRIVACY = ProcessingRecord(
    data=(
        "camera login (user name and password, stored encrypted by the core)",
        "camera network address and port",
        "camera upload credentials (checked on alarm-server calls)",
        "alarm triggers (alarm area, PIR, audio, detected object class) with their time",
    ),
    purpose="control the customer's INSTAR cameras, show their live view, configure their upload and attach "
    "the alarm trigger to the recording it belongs to",
    recipients=(),
    retention="camera login and address until the camera is removed; triggers as long as their clip",
)


@hookimpl
def register_camera_adapters() -> Iterable[CameraAdapterSpec]:
    """The INSTAR adapter (HD 720p, Full HD 1080p, WQHD 2K+)."""
    return [
        CameraAdapterSpec(
            name="instar",
            title="INSTAR",
            factory=build_adapter,
            description="INSTAR IP cameras: HD 720p, Full HD 1080p and WQHD 2K+ (clip validation, control, "
            "live view, alarm server, one-click upload setup)",
            config_model=InstarConfig,
            privacy=PRIVACY,
        )
    ]


@hookimpl
def register_routes(app: object) -> list[BaseRoute]:
    """The alarm server at ``/plugins/instar/alarm``."""
    return alarm_server.routes()
