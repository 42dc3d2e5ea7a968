"""Events the core emits to plugins through ``handle_event``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CLIP_STORED = "clip.stored"
DETECTIONS_READY = "detections.ready"
CAMERA_CHANGED = "camera.changed"
CAMERA_DELETED = "camera.deleted"
CAMERA_FAIR_USE_CHANGED = "camera.fair_use_changed"
CAMERA_VIEW_OBSTRUCTED = "camera.view_obstructed"
CAMERA_VIEW_RESTORED = "camera.view_restored"
CAMERA_SILENT = "camera.silent"
PLATE_RECOGNISED = "plate.recognised"
STORAGE_ALMOST_FULL = "storage.almost_full"
OFFSITE_FAILING = "offsite.failing"
ACCOUNT_DELETED = "account.deleted"
LINK_REVOKED = "link.revoked"


@dataclass(frozen=True)
class Event:
    """One thing that happened to an account; ``payload`` is JSON-serialisable."""

    type: str
    account_id: str
    camera_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
