"""One real test per hook: a plugin object registered with the core, called through a running server or CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import httpx
from alarmcloud import ClipFrames, Detector, DetectorSpec, Finding, FrameRequest, HealthCheck, hookimpl
from alarmcloud.contracts import CameraAdapter, ClipValidation, Integration, LiveStream
from alarmcloud.plugins import PluginHost
from alarmcloud.specs import CameraAdapterSpec, IntegrationSpec
from alarmcloud.testing import LiveServer, test_settings
from click.testing import CliRunner
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class BrightDetector(Detector):
    name = "bright"
    labels = ("bright",)
    threshold = 0.1

    def frame_request(self) -> FrameRequest:
        return FrameRequest(max_keyframes=3, width=64, color="gray")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        mean = max(float(f.image.mean()) for f in frames.keyframes)
        return [Finding("bright", "bright", mean / 255, time=frames.keyframes[0].time)] if mean > 10 else []


class ToyCamera(CameraAdapter):
    brand = "toy"

    def models(self) -> list[Any]:
        return []

    def validate_clip(self, model: str, probe: Any) -> ClipValidation:
        return ClipValidation.ok() if probe.video_codec == "h264" else ClipValidation.reject("toys record H.264")

    async def control(self, camera: Any, action: str, value: Any, area: int | None = None) -> None:
        return None

    def live_stream(self, camera: Any) -> LiveStream:
        return LiveStream(rtsp_main=f"rtsp://{camera.address}/live")


class ToyIntegration(Integration):
    name = "toylink"
    scopes = ("alarms:read",)

    def __init__(self) -> None:
        self.events: list[str] = []

    async def handle_event(self, event: Any) -> None:
        self.events.append(event.type)


class ToyPlugin:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.integration = ToyIntegration()

    @hookimpl
    async def startup(self, app: Any) -> None:
        self.calls.append("startup")

    @hookimpl
    def shutdown(self, app: Any) -> None:
        self.calls.append("shutdown")

    @hookimpl
    def register_routes(self, app: Any) -> list[Route]:
        async def hello(request: Request) -> JSONResponse:
            return JSONResponse({"hello": request.app.state.alarmcloud is app})

        return [Route("/hello", hello)]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command("toy")
        def toy() -> None:
            """A plugin command."""
            click.echo("toy command ran")

    @hookimpl
    def register_camera_adapters(self) -> list[CameraAdapterSpec]:
        return [CameraAdapterSpec("toy", lambda cfg: ToyCamera(), "toy cameras")]

    @hookimpl
    def register_detectors(self) -> list[DetectorSpec]:
        return [DetectorSpec("bright", lambda cfg: BrightDetector(), ("bright",), "brightness")]

    @hookimpl
    def register_integrations(self) -> list[IntegrationSpec]:
        return [IntegrationSpec("toylink", lambda cfg: self.integration, "toy link", scopes=("alarms:read",))]

    @hookimpl
    def health_checks(self, app: Any) -> list[HealthCheck]:
        async def ok() -> bool:
            return True

        return [HealthCheck("toy-ok", ok), HealthCheck("toy-broken", lambda: False)]


def _host(plugin: ToyPlugin) -> PluginHost:
    host = PluginHost({"cameras": [], "detectors": [], "integrations": []})
    host.register(plugin, "test:toy", "toy")
    return host.load()


def _server(tmp_path: Path, plugin: ToyPlugin) -> LiveServer:
    return LiveServer(test_settings(tmp_path / "data"), plugins=_host(plugin))


def test_hook_startup(tmp_path: Path) -> None:
    plugin = ToyPlugin()
    with _server(tmp_path, plugin):
        assert plugin.calls == ["startup"]


def test_hook_shutdown(tmp_path: Path) -> None:
    plugin = ToyPlugin()
    with _server(tmp_path, plugin):
        pass
    assert plugin.calls == ["startup", "shutdown"]


def test_hook_register_routes(tmp_path: Path) -> None:
    with _server(tmp_path, ToyPlugin()) as srv:
        r = httpx.get(srv.url + "/plugins/toy/hello")
        assert r.status_code == 200 and r.json() == {"hello": True}
        assert "/plugins/toy/hello" in httpx.get(srv.url + "/openapi.json").json()["paths"]


def test_hook_register_commands() -> None:
    group = click.Group("alarmcloud")
    _host(ToyPlugin()).pm.hook.register_commands(cli=group)
    result = CliRunner().invoke(group, ["toy"])
    assert result.exit_code == 0 and "toy command ran" in result.output


def test_hook_register_camera_adapters(tmp_path: Path, make_test_clip: Any) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    with _server(tmp_path, ToyPlugin()) as srv:
        a = Api(srv.url).register("toy@example.com")
        r = a.post("/api/v1/cameras", json={"name": "t", "brand": "toy", "model": "any"})
        assert r.status_code == 201, r.text
        creds = a.upload_credentials(r.json()["id"])
        r = a.upload(creds, make_test_clip("toy", seconds=4))
        assert r.status_code == 201, r.text
        assert a.post("/api/v1/cameras", json={"name": "t", "brand": "instar", "model": "IN-9008"}).status_code == 400


def test_hook_register_detectors(tmp_path: Path, make_test_clip: Any) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    with _server(tmp_path, ToyPlugin()) as srv:
        a = Api(srv.url).register("det@example.com")
        cam = a.post("/api/v1/cameras", json={"name": "t", "brand": "toy", "model": "any"}).json()
        assert a.get(f"/api/v1/cameras/{cam['id']}/detectors").json()["enabled"] == {"bright": False}
        assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"bright": True}).status_code == 200
        r = a.upload(a.upload_credentials(cam["id"]), make_test_clip("toy", seconds=4))
        ev = a.wait_event(r.json()["event_id"])
        assert [f["label"] for f in ev["findings"]] == ["bright"]
        assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"nope": True}).status_code == 400


def test_hook_register_integrations(tmp_path: Path, make_test_clip: Any) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    plugin = ToyPlugin()
    with _server(tmp_path, plugin) as srv:
        a = Api(srv.url).register("int@example.com")
        cam = a.post("/api/v1/cameras", json={"name": "t", "brand": "toy", "model": "any"}).json()
        r = a.upload(a.upload_credentials(cam["id"]), make_test_clip("toy", seconds=4))
        a.wait_event(r.json()["event_id"])
        deadline = time.monotonic() + 30  # returns as soon as it happens; room for a loaded CI machine
        while "detections.ready" not in plugin.integration.events and time.monotonic() < deadline:
            time.sleep(0.05)
    assert {"camera.changed", "clip.stored", "detections.ready"} <= set(plugin.integration.events)


def test_hook_health_checks(tmp_path: Path) -> None:
    with _server(tmp_path, ToyPlugin()) as srv:
        r = httpx.get(srv.url + "/-/health")
        assert r.status_code == 503
        assert r.json()["checks"] == {"database": True, "toy-ok": True, "toy-broken": False}


# ---------------------------------------------------------------- the plugin status table

BUNDLED = {("cameras", "instar"), ("detectors", "rain"), ("detectors", "plates"), ("integrations", "ifttt"),
           ("integrations", "alexa"), ("integrations", "google_home")}


def _broken_distribution(root: Path) -> Path:
    """An installed distribution whose entry point fails on import, as a broken third-party plugin would."""
    (root / "alarmcloud_broken_fixture.py").write_text('raise ImportError("needs libfoo.so.3")\n')
    info = root / "alarmcloud_broken_fixture-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: alarmcloud-broken-fixture\nVersion: 0.1\n")
    (root / "alarmcloud_misspelled_fixture.py").write_text(
        "from alarmcloud import hookimpl\n\n\n@hookimpl\ndef startpu(app):\n    pass\n")
    (info / "entry_points.txt").write_text("[alarmcloud.detectors]\nbroken = alarmcloud_broken_fixture\n\n"
                                           "[alarmcloud.integrations]\nmisspelled = alarmcloud_misspelled_fixture\n")
    return root


def _check_table(rows: list[dict[str, Any]]) -> None:
    by_key = {(r["group"], r["name"]): r for r in rows}
    for key in BUNDLED:
        assert by_key[key]["installed"] and by_key[key]["enabled"] and by_key[key]["loaded"], by_key[key]
        assert by_key[key]["distribution"].startswith("alarmcloud-") and by_key[key]["error"] is None
    broken = by_key[("detectors", "broken")]
    assert broken["installed"] and broken["enabled"] and not broken["loaded"]
    assert broken["distribution"] == "alarmcloud-broken-fixture"
    assert "ImportError" in broken["error"] and "libfoo.so.3" in broken["error"]
    misspelled = by_key[("integrations", "misspelled")]  # check_pending: an unknown hook name fails the plugin
    assert not misspelled["loaded"] and "unknown hook 'startpu'" in misspelled["error"]
    # each row says what its plugin added, by the name people read: the rain plugin brings two detectors
    assert by_key[("detectors", "rain")]["provides"] == [
        {"name": "rain", "title": "Rain and snow"}, {"name": "insects", "title": "Insects and spider webs at the IR lamp"}]
    assert by_key[("cameras", "instar")]["provides"] == [{"name": "instar", "title": "INSTAR"}]
    assert broken["provides"] == [] and misspelled["provides"] == []


def test_plugin_status_cli_shows_bundled_loaded_and_broken_failed(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    site = _broken_distribution(tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("ALARMCLOUD_CONFIG", None)
    out = subprocess.run([sys.executable, "-m", "alarmcloud.cli", "plugins", "--json"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    _check_table(json.loads(out.stdout))
    table = subprocess.run([sys.executable, "-m", "alarmcloud.cli", "plugins"], env={**env, "COLUMNS": "200"},
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "broken" in table.stdout and "libfoo.so.3" in table.stdout and "google_home" in table.stdout
    assert "Insects and spider webs at the IR lamp (insects)" in table.stdout
    assert "Google Home (google_home)" in table.stdout
    # serve refuses to start with a broken enabled plugin: one clear line, no traceback
    out = subprocess.run([sys.executable, "-m", "alarmcloud.cli", "serve", "--data-dir", str(tmp_path / "data"),
                          "--port", "0", "--ftp-port", "0"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "detectors:broken: ImportError: needs libfoo.so.3" in out.stderr and "PLUGINS__STRICT=false" in out.stderr
    # a config file enables exactly the names it lists for a group
    cfg = tmp_path / "alarmcloud.toml"
    cfg.write_text('[plugins]\ndetectors = ["rain"]\nintegrations = ["alexa", "misspelled"]\n')
    out = subprocess.run([sys.executable, "-m", "alarmcloud.cli", "plugins", "--config", str(cfg), "--json"],
                         cwd=tmp_path, timeout=120, env=env, capture_output=True, text=True)
    enabled = {(r["group"], r["name"]) for r in json.loads(out.stdout) if r["enabled"]}
    assert enabled == {("cameras", "instar"), ("detectors", "rain"), ("integrations", "alexa"),
                       ("integrations", "misspelled")}
    # the environment can disable plugins: a disabled one is never imported
    out = subprocess.run([sys.executable, "-m", "alarmcloud.cli", "plugins", "--json"], cwd=tmp_path, timeout=120,
                         env={**env, "ALARMCLOUD_PLUGINS__DISABLE": "detectors:broken,misspelled"},
                         capture_output=True, text=True)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert not rows["broken"]["enabled"] and rows["broken"]["error"] is None and not rows["misspelled"]["enabled"]
    assert rows["rain"]["loaded"] and rows["ifttt"]["loaded"]


def test_plugin_status_endpoint_and_strict_start(tmp_path: Path, monkeypatch: Any) -> None:
    import sys

    import pytest
    from alarmcloud.app import create_app
    from alarmcloud.plugins import PluginLoadError
    from stevedore.extension import ExtensionManager

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(_broken_distribution(site)))
    # stevedore keeps the entry points it listed once per process; this process listed them before we installed
    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
    st: Any = test_settings(tmp_path / "data")
    # by default a broken enabled plugin stops start-up, naming the plugin and its error
    with pytest.raises(PluginLoadError, match="detectors:broken.*libfoo.so.3"):
        create_app(st)
    sys.modules.pop("alarmcloud_broken_fixture", None)
    st.plugins.strict = False  # the operator allows starting without it
    with LiveServer(st) as srv:
        r = httpx.get(srv.url + "/-/plugins")
        assert r.status_code == 200
        _check_table(r.json()["plugins"])
        assert httpx.get(srv.url + "/-/health").status_code == 200
    # a config that does not enable the broken plugin never imports it
    st = test_settings(tmp_path / "data2")
    st.plugins.detectors = ["rain", "plates"]
    st.plugins.integrations = []
    with LiveServer(st) as srv:
        rows = {(r["group"], r["name"]): r for r in httpx.get(srv.url + "/-/plugins").json()["plugins"]}
        assert rows[("detectors", "broken")]["enabled"] is False and rows[("detectors", "broken")]["error"] is None
        assert rows[("detectors", "rain")]["loaded"]


class _FailingStartup:
    @hookimpl
    def startup(self, app: Any) -> None:
        raise RuntimeError("cannot reach the vendor cloud")


def test_failing_startup_hook_is_isolated_counted_and_exported_as_a_metric(tmp_path: Path) -> None:
    plugin = ToyPlugin()
    host = _host(plugin)
    host.register(_FailingStartup(), "test:flaky", "flaky")
    with LiveServer(test_settings(tmp_path / "data"), plugins=host) as srv:
        assert plugin.calls == ["startup"]  # the other plugin still started
        r = httpx.get(srv.url + "/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        line = next(x for x in r.text.splitlines()
                    if x.startswith("alarmcloud_plugin_hook_errors_total{") and 'plugin="flaky"' in x)
        assert 'hook="startup"' in line and float(line.rsplit(" ", 1)[1]) >= 1
        rows = {row["name"]: row for row in httpx.get(srv.url + "/-/plugins").json()["plugins"]}
        assert rows["flaky"]["hook_errors"] == 1 and rows["toy"]["hook_errors"] == 0
