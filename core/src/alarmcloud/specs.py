"""Typed spec objects that plugins return from the ``register_*`` hooks."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

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
class DetectorOption:
    """One per-camera setting of a detector that camera owners may change (camera page, ``PUT .../detectors``).

    ``kind="choices"``: a non-empty list of string codes, each one of ``choices`` ((value, label) pairs);
    ``groups`` names the choices that stand for several others (the plates detector's ``EU``: every European
    country), which the camera page lists first and leaves out when it says "all" of the choices.
    ``kind="number"``: a number from ``minimum`` to ``maximum``; ``step`` is the UI's granularity.
    The value reaches the detector as ``ClipFrames.options[key]``; unset, the deployment default applies:
    ``default`` if given, else the operator's value of the ``config_model`` field named ``key`` (if any).
    """

    key: str
    label: str
    kind: Literal["choices", "number"]
    choices: tuple[tuple[str, str], ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    help: str = ""
    default: Any = None
    groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("choices", "number"):
            raise ValueError(f"option {self.key!r}: kind must be 'choices' or 'number', not {self.kind!r}")
        pairs = tuple((str(v), str(lbl)) for v, lbl in self.choices)
        object.__setattr__(self, "choices", pairs)  # lists from a plugin become the frozen tuples the type says
        if self.kind == "choices" and not pairs:
            raise ValueError(f"option {self.key!r}: a 'choices' option needs at least one choice")
        if len({v for v, _ in pairs}) != len(pairs):
            raise ValueError(f"option {self.key!r}: choice values must be unique")
        object.__setattr__(self, "groups", tuple(str(g) for g in self.groups))
        if set(self.groups) - {v for v, _ in pairs}:
            raise ValueError(f"option {self.key!r}: every group must be one of the choices")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"option {self.key!r}: minimum is above maximum")

    def validate(self, value: Any) -> Any:
        """The value to store, or ``ValueError`` saying precisely what is wrong with ``value``."""
        if self.kind == "choices":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{self.key} must be a list of codes, e.g. [{self.choices[0][0]!r}]")
            if not value:
                raise ValueError(f"{self.key} needs at least one choice (null falls back to the deployment default)")
            known = {v for v, _ in self.choices}
            unknown = [v for v in value if v not in known]
            if unknown:
                raise ValueError(f"{self.key}: unknown choice {unknown[0]!r}; one of " + ", ".join(sorted(known)))
            return list(dict.fromkeys(value))  # duplicates once, in the given order
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{self.key} must be a number")
        lo, hi = self.minimum, self.maximum
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            wanted = (f"from {lo:g} to {hi:g}" if lo is not None and hi is not None
                      else f"at least {lo:g}" if lo is not None else f"at most {hi:g}")
            raise ValueError(f"{self.key} must be {wanted}, not {value:g}")
        return value

    def to_json(self, default: Any = None) -> dict[str, Any]:
        """The JSON shape of ``GET .../detectors``; ``default`` is the deployment default to show (None: unknown)."""
        out: dict[str, Any] = {"key": self.key, "label": self.label, "kind": self.kind, "help": self.help,
                               "default": default}
        if self.kind == "choices":
            out["choices"] = [{"value": v, "label": lbl, **({"group": True} if v in self.groups else {})}
                              for v, lbl in self.choices]
        else:
            out.update(minimum=self.minimum, maximum=self.maximum, step=self.step)
        return out


@dataclass(frozen=True)
class DetectorSpec:
    """A detector: ``factory(config)`` builds one instance that the core reuses for every clip."""

    name: str
    factory: Callable[[Any], Detector]
    labels: tuple[str, ...]
    description: str
    config_model: type[BaseModel] | None = None
    privacy: ProcessingRecord | None = None
    options: tuple[DetectorOption, ...] = ()
    """Per-camera settings owners may change; detectors without any accept any options object (API only)."""
    title: str = ""
    """The name people read in the web UI ("Licence plates"); empty: the entry name, humanised (see ``title_of``)."""
    min_source_width: int = 0
    """The narrowest uploaded picture (px) the detector's measured accuracy holds for; 0: any. A camera that has the
    detector on and sends narrower clips (a sub-stream) gets an advice on its page and in ``GET .../detectors``."""
    verdict_titles: Mapping[str, str] = field(default_factory=dict)
    """The words the web UI shows for the verdict ``false_alarm:<label>`` of each of its labels that can be a cause
    (``{"web": "Spider web"}``); a label left out reads "False alarm: <label>"."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "verdict_titles", dict(self.verdict_titles))
        keys = [o.key for o in self.options]
        if len(set(keys)) != len(keys):
            raise ValueError(f"detector {self.name!r}: option keys must be unique")
        unknown = sorted(set(self.verdict_titles) - set(self.labels))
        if unknown:
            raise ValueError(f"detector {self.name!r}: verdict_titles name labels it does not have: {unknown}")
        if self.min_source_width < 0:
            raise ValueError(f"detector {self.name!r}: min_source_width must be 0 (any) or a width in pixels")

    def option(self, key: str) -> DetectorOption | None:
        """The declared option ``key``, or None."""
        return next((o for o in self.options if o.key == key), None)

    def threshold_option(self) -> DetectorOption | None:
        """The number option ``threshold`` (a camera's own threshold, below the deployment's default), or None."""
        opt = self.option("threshold")
        return opt if opt is not None and opt.kind == "number" else None

    def too_narrow(self, width: int) -> bool:
        """Whether pictures ``width`` px wide (0: not known) are narrower than the detector's accuracy holds for."""
        return 0 < width < self.min_source_width

    def source_advice(self, message: str) -> dict[str, Any]:
        """The ``source_too_narrow`` advice entry (``GET .../detectors``, ``alarmcloud detect --json``)."""
        return {"detector": self.name, "code": "source_too_narrow", "min_source_width": self.min_source_width,
                "message": message}


@dataclass(frozen=True)
class CameraAdapterSpec:
    """A camera brand: ``factory(config)`` builds the adapter."""

    name: str
    factory: Callable[[Any], CameraAdapter]
    description: str
    config_model: type[BaseModel] | None = None
    privacy: ProcessingRecord | None = None
    title: str = ""
    """The brand as people write it ("INSTAR"); empty: the entry name, humanised (see ``title_of``)."""


@dataclass(frozen=True)
class IntegrationSpec:
    """A smart-home or automation platform linked to customer accounts through OAuth."""

    name: str
    factory: Callable[[Any], Integration]
    description: str
    scopes: tuple[str, ...] = ()
    config_model: type[BaseModel] | None = None
    privacy: ProcessingRecord | None = None
    title: str = ""
    """The service as people know it ("Google Home"); empty: the entry name, humanised (see ``title_of``)."""


def title_of(spec: DetectorSpec | CameraAdapterSpec | IntegrationSpec | None, name: str = "") -> str:
    """The name to show people: the spec's ``title``, else its entry name (or ``name`` without a spec, e.g. a
    detector no longer installed) with ``_``/``-`` as spaces and each word capitalised ("google_home": "Google
    Home")."""
    if spec is not None and spec.title.strip():
        return spec.title.strip()
    raw = spec.name if spec is not None else name
    return " ".join(w[:1].upper() + w[1:] for w in raw.replace("_", " ").replace("-", " ").split())


@dataclass(frozen=True)
class HealthCheck:
    """A named readiness check; ``check`` returns True when healthy (it may be async)."""

    name: str
    check: Callable[[], bool | Awaitable[bool]]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
