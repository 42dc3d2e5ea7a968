"""Plugin loading (stevedore decides which code loads) and calling (pluggy decides how it is called)."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import anyio
import pluggy
from prometheus_client import Counter
from stevedore import NamedExtensionManager
from stevedore.extension import error_on_conflict

from alarmcloud import hookspecs
from alarmcloud.contracts import CameraAdapter, Detector, Integration
from alarmcloud.specs import CameraAdapterSpec, DetectorSpec, IntegrationSpec, title_of

log = logging.getLogger(__name__)

GROUPS: dict[str, str] = {
    "cameras": "alarmcloud.cameras",
    "detectors": "alarmcloud.detectors",
    "integrations": "alarmcloud.integrations",
}
DISABLE_ENV = "ALARMCLOUD_PLUGINS_DISABLE"

HOOK_ERRORS = Counter("alarmcloud_plugin_hook_errors_total", "Exceptions raised by plugin hooks", ["plugin", "hook"])


class PluginLoadError(RuntimeError):
    """An enabled plugin failed to load and the deployment is strict."""


@dataclass
class PluginStatus:
    """One row of the plugin status table (``GET /-/plugins``, ``alarmcloud plugins``)."""

    group: str
    name: str
    distribution: str | None
    version: str | None
    installed: bool
    enabled: bool
    loaded: bool
    error: str | None = None
    hook_errors: int = 0
    provides: list[dict[str, str]] = field(default_factory=list)
    """What the plugin registered: ``{"name", "title"}`` of each detector, camera brand or integration."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def installed_entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=GROUPS[group])}


def _disabled(configured: list[str]) -> set[str]:
    items = list(configured)
    items += [x for x in os.environ.get(DISABLE_ENV, "").split(",") if x.strip()]
    return {x.strip() for x in items}


class PluginHost:
    """Loads the enabled entry points, registers them with one pluggy manager, builds the registries."""

    def __init__(self, enabled: dict[str, list[str] | None], disable: list[str] | None = None,
                 strict: bool = False, plugin_settings: Callable[[str], dict[str, Any]] | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.status: list[PluginStatus] = []
        self.strict = strict
        self._enabled = enabled
        self._disable = _disabled(disable or [])
        self._plugin_settings = plugin_settings or (lambda name: {})
        self.camera_specs: dict[str, CameraAdapterSpec] = {}
        self.detector_specs: dict[str, DetectorSpec] = {}
        self.integration_specs: dict[str, IntegrationSpec] = {}
        self._instances: dict[tuple[str, str], Any] = {}
        self.owner: dict[str, str] = {}  # pluggy plugin name -> entry name

    # ------------------------------------------------------------ loading

    def load(self) -> PluginHost:
        for group, namespace in GROUPS.items():
            installed = installed_entry_points(group)
            wanted = self._enabled.get(group)
            names = list(installed) if wanted is None else list(wanted)
            names = [n for n in names if n not in self._disable and f"{group}:{n}" not in self._disable
                     and f"{group}:*" not in self._disable]
            rows = {n: self._row(group, n, installed.get(n), enabled=n in names) for n in installed}
            for n in names:
                rows.setdefault(n, PluginStatus(group, n, None, None, False, True, False, "not installed"))
            failures: dict[str, str] = {}

            def on_fail(_mgr: Any, ep: metadata.EntryPoint, err: BaseException, failures=failures,
                        group=group) -> None:
                failures[ep.name] = f"{type(err).__name__}: {err}"
                log.error("plugin %s:%s failed to load: %s", group, ep.name, failures[ep.name])

            mgr: NamedExtensionManager[Any] = NamedExtensionManager(
                namespace, names=names, name_order=True, on_load_failure_callback=on_fail,
                on_missing_entrypoints_callback=lambda missing: None, conflict_resolver=error_on_conflict,
            )
            for ext in mgr:
                try:
                    self.register(ext.plugin, f"{group}:{ext.name}", ext.name, track=False)
                    rows[ext.name].loaded = True
                except Exception as exc:  # a plugin with a bad hook must not take the others down
                    failures[ext.name] = f"{type(exc).__name__}: {exc}"
            for n, err in failures.items():
                rows[n].loaded = False
                rows[n].error = err
            for n in names:
                if rows[n].installed and not rows[n].loaded and rows[n].error is None:
                    # installed after this process first listed entry points (stevedore lists them once)
                    rows[n].error = "installed while running: restart to load it"
            self.status.extend(rows.values())
        self.pm.check_pending()
        self._build_registries()
        broken = [s for s in self.status if s.enabled and not s.loaded]
        if broken and self.strict:
            raise PluginLoadError(
                "enabled plugins failed to load: " + "; ".join(f"{s.group}:{s.name}: {s.error}" for s in broken)
                + " (fix or disable them, e.g. ALARMCLOUD_PLUGINS__DISABLE=<group>:<name>, or start without them "
                "with ALARMCLOUD_PLUGINS__STRICT=false)")
        return self

    def _row(self, group: str, name: str, ep: metadata.EntryPoint | None, enabled: bool) -> PluginStatus:
        dist = getattr(ep, "dist", None) if ep else None
        return PluginStatus(group, name, dist.name if dist else None, dist.version if dist else None,
                            installed=ep is not None, enabled=enabled, loaded=False)

    def register(self, plugin: object, pluggy_name: str, entry_name: str, track: bool = True) -> None:
        """Register one plugin object (module) directly; tests use this for fixtures."""
        self.pm.register(plugin, name=pluggy_name)
        try:
            self.pm.check_pending()  # a misspelled hook fails loudly here, naming this plugin and the hook
        except pluggy.PluginValidationError:
            self.pm.unregister(name=pluggy_name)
            raise
        self.owner[pluggy_name] = entry_name
        if track and not any(r.name == entry_name for r in self.status):
            group = pluggy_name.split(":", 1)[0]
            self.status.append(PluginStatus(group, entry_name, None, None, True, True, True))

    def _build_registries(self) -> None:
        rows = {(r.group, r.name): r for r in self.status}
        for hook_name, target in (
            ("register_camera_adapters", self.camera_specs),
            ("register_detectors", self.detector_specs),
            ("register_integrations", self.integration_specs),
        ):
            hook = getattr(self.pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # the order of a hook call: last registered first
                for spec in impl.function() or ():
                    if spec.name in target:
                        raise PluginLoadError(f"two plugins register the name {spec.name!r}")
                    target[spec.name] = spec  # type: ignore[index]
                    group = impl.plugin_name.split(":", 1)[0]
                    row = rows.get((group, self.owner.get(impl.plugin_name, impl.plugin_name)))
                    if row is not None:
                        row.provides.append({"name": spec.name, "title": title_of(spec, spec.name)})

    # ------------------------------------------------------------ instances

    def _instance(self, kind: str, spec: Any) -> Any:
        key = (kind, spec.name)
        if key not in self._instances:
            raw = self._plugin_settings(spec.name)
            config = spec.config_model(**raw) if spec.config_model is not None else raw
            self._instances[key] = spec.factory(config)
        return self._instances[key]

    def camera_adapter(self, brand: str) -> CameraAdapter | None:
        spec = self.camera_specs.get(brand)
        return self._instance("camera", spec) if spec else None

    def detector(self, name: str) -> Detector | None:
        spec = self.detector_specs.get(name)
        return self._instance("detector", spec) if spec else None

    def integration(self, name: str) -> Integration | None:
        spec = self.integration_specs.get(name)
        return self._instance("integration", spec) if spec else None

    # ------------------------------------------------------------ calling

    def impls(self, hook_name: str, only: Collection[str] | None = None) -> list[tuple[str, Callable[..., Any]]]:
        """(owner, function) of each implementation; ``only``: of these plugins (pluggy's names) alone."""
        hook = getattr(self.pm.hook, hook_name)
        return [(self.owner.get(i.plugin_name, i.plugin_name), i.function) for i in hook.get_hookimpls()
                if only is None or i.plugin_name in only]

    async def call_each(self, hook_name: str, timeout: float = 30.0, only: Collection[str] | None = None,
                        **kwargs: Any) -> list[Any]:
        """Call every implementation (``only``: of these plugins), awaiting async ones; each one isolated (logged and
        counted on error)."""
        results: list[Any] = []
        for owner, fn in self.impls(hook_name, only):
            try:
                with anyio.fail_after(timeout):
                    value = fn(**{k: v for k, v in kwargs.items() if k in inspect.signature(fn).parameters})
                    if inspect.isawaitable(value):
                        value = await value
                results.append(value)
            except Exception as exc:
                HOOK_ERRORS.labels(owner, hook_name).inc()
                for row in self.status:
                    if row.name == owner:
                        row.hook_errors += 1
                log.exception("plugin %s failed in hook %s: %s", owner, hook_name, type(exc).__name__)
        return results

    def status_table(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in sorted(self.status, key=lambda s: (s.group, s.name))]
