"""alarmcloud: a self-hostable camera alarm cloud. This module is the public API for plugins."""

from __future__ import annotations

from alarmcloud.bodies import read_body
from alarmcloud.contracts import (
    CAMERA_ACTIONS,
    CameraAccess,
    CameraAdapter,
    CameraError,
    CameraModel,
    ClipFrames,
    ClipProbe,
    ClipValidation,
    Detector,
    Finding,
    Frame,
    FrameRequest,
    Integration,
    LiveStream,
    UploadTarget,
)
from alarmcloud.events import Event
from alarmcloud.hookspecs import hookimpl
from alarmcloud.services import CameraSummary, CoreServices, Principal, ServiceError
from alarmcloud.specs import (
    CameraAdapterSpec,
    DetectorOption,
    DetectorSpec,
    HealthCheck,
    IntegrationSpec,
    ProcessingRecord,
)

__version__ = "0.1.0"

__all__ = [
    "CAMERA_ACTIONS",
    "CameraAccess",
    "CameraAdapter",
    "CameraAdapterSpec",
    "CameraError",
    "CameraModel",
    "CameraSummary",
    "ClipFrames",
    "ClipProbe",
    "ClipValidation",
    "CoreServices",
    "Detector",
    "DetectorOption",
    "DetectorSpec",
    "Event",
    "Finding",
    "Frame",
    "FrameRequest",
    "HealthCheck",
    "Integration",
    "IntegrationSpec",
    "LiveStream",
    "Principal",
    "ProcessingRecord",
    "ServiceError",
    "UploadTarget",
    "hookimpl",
    "read_body",
]
