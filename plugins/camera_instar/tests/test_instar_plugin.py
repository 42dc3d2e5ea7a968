"""The entry point and hooks: the adapter spec, its privacy record and the alarm-server route."""

from __future__ import annotations

from importlib.metadata import entry_points

from alarmcloud.contracts import CameraAdapter
from alarmcloud_camera_instar import plugin
from alarmcloud_camera_instar.config import InstarConfig


def test_entry_point_targets_the_plugin_module() -> None:
    (ep,) = [e for e in entry_points(group="alarmcloud.cameras") if e.name == "instar"]
    assert ep.load() is plugin


def test_hook_register_camera_adapters() -> None:
    (spec,) = plugin.register_camera_adapters()
    assert spec.name == "instar"
    assert spec.config_model is InstarConfig
    adapter = spec.factory({"timeout_s": 2})
    assert isinstance(adapter, CameraAdapter)
    assert adapter.brand == "instar"
    assert adapter.config.timeout_s == 2  # type: ignore[attr-defined]
    assert spec.factory(None).models()
    assert spec.privacy is not None
    assert spec.privacy.recipients == ()
    assert any("password" in item for item in spec.privacy.data)


def test_hook_register_routes() -> None:
    routes = plugin.register_routes(app=None)
    assert [r.path for r in routes] == ["/alarm"]  # type: ignore[attr-defined]
    assert {"GET", "POST"} <= routes[0].methods  # type: ignore[attr-defined]
