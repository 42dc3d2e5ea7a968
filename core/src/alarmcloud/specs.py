"""Typed spec objects that plugins return from the ``register_*`` hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from alarmcloud.contracts import CameraAdapter, Detector, Integration


@dataclass(frozen=True)
class ProcessingRecord:
    """What personal data a plugin receives, why, where it goes and how long it is kept (GDPR Art. 30)."""

    data: tuple[str, ...]
    purpose: str
    recipients: tuple[str, ...] = ()
    retention: str = "as long as the clip or account it belongs to"
    legal_basis: str = "contract (Art. 6(1)(b) GDPR)"


@dataclass(frozen=True)
class DetectorSpec:
    """A detector: ``factory(config)`` builds one instance that the core reuses for every clip."""

    name: str
    factory: Callable[[Any], Detector]
    labels: tuple[str, ...]
    description: str
    config_model: type[BaseModel] | None = None
    privacy: ProcessingRecord | None = None


@dataclass(frozen=True)
class CameraAdapterSpec:
    """A camera brand: ``factory(config)`` builds the adapter."""

    name: str
    factory: Callable[[Any], CameraAdapter]
    description: str
    config_model: type[BaseModel] | None = None
    privacy: ProcessingRecord | None = None


@dataclass(frozen=True)
class IntegrationSpec:
    """A smart-home or automation platform linked to customer accounts through OAuth."""

    name: str
    factory: Callable[[Any], Integration]
    description: str
    scopes: tuple[str, ...] = ()
    config_model: type[BaseModel] | None = None
    privacy: ProcessingRecord | None = None


@dataclass(frozen=True)
class HealthCheck:
    """A named readiness check; ``check`` returns True when healthy (it may be async)."""

    name: str
    check: Callable[[], bool | Awaitable[bool]]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
