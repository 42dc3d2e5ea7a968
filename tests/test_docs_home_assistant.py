"""``docs/home_assistant.md`` works as written: its YAML blocks are read as Home Assistant reads them (``!secret``
from the ``secrets.yaml`` block) and their templates rendered with Jinja's sandbox as Home Assistant renders them,
against a real server: the webhook automation against a real delivery, the REST sensors against the API's answers,
the REST commands sent as Home Assistant sends them, to a fake INSTAR camera."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alarmcloud.testing import test_settings
from alarmcloud_camera_instar.testing import FakeInstarCamera
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.s3server import bucket_on_loopback  # type: ignore[import-not-found]

DOC = Path(__file__).resolve().parents[1] / "docs" / "home_assistant.md"
EXAMPLE = "https://cloud.example.com"
JINJA = ImmutableSandboxedEnvironment()


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return bucket_on_loopback(test_settings(tmp_path / "data", camera_networks=["127.0.0.0/8"],
                                            storage={"quota_bytes": 10_000_000}))


def _blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


def _load(text: str, secrets: dict[str, str]) -> Any:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!secret", lambda loader, node: secrets[loader.construct_scalar(node)])
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader with one more tag


def _render(template: str, **variables: Any) -> str:
    return JINJA.from_string(template).render(**variables)


def _section(blocks: list[str], key: str, secrets: dict[str, str]) -> Any:
    return next(_load(b, secrets)[key] for b in blocks if re.match(rf"{key}:", b))


def test_the_home_assistant_guide_works_as_written(api: Any, server: Any, clip: Path, receiver: Any) -> None:
    blocks = _blocks()
    a = api().register("home-assistant@example.com")
    with FakeInstarCamera("wqhd", password="Secr3t!pass") as fake:
        cam = a.camera("Driveway", model="IN-9408 2K+", host="127.0.0.1", port=fake.port, username="admin",
                       password="Secr3t!pass")
        # step 1: the token, into secrets.yaml
        r = a.post("/api/v1/tokens", json={"name": "Home Assistant", "read_only": False})
        assert r.status_code == 201, r.text
        secrets = {name: value.replace("act_paste-your-token-here", r.json()["token"])
                   for name, value in _load(blocks[0], {}).items()}
        assert list(secrets) == ["alarmcloud_token"] and secrets["alarmcloud_token"].startswith("Bearer act_")

        # step 2: the webhook, as the guide sets it up, and the automation's templates on the real delivery
        automation = _section(blocks, "automation", secrets)[0]
        trigger = automation["trigger"][0]
        assert trigger["platform"] == "webhook" and trigger["allowed_methods"] == ["POST"]
        r = a.post("/api/v1/webhooks", json={"url": f"{receiver.url}/api/webhook/{trigger['webhook_id']}",
                                             "events": ["detections.ready"], "only_real_alarms": True})
        assert r.status_code == 201, r.text
        ev = a.upload_analysed(a.upload_credentials(cam["id"]), clip)
        assert ev["verdict"] == "alarm"
        delivery = receiver.wait(1, f"/api/webhook/{trigger['webhook_id']}")[0]
        body = json.loads(delivery["body"])
        condition = automation["condition"][0]["value_template"]
        assert _render(condition, trigger={"json": body}) == "True"
        assert _render(condition, trigger={"json": {**body, "verdict": "false_alarm:rain"}}) == "False"
        data = automation["action"][0]["data"]
        assert _render(data["title"], trigger={"json": body}) == "Alarm: Driveway"
        message = _render(data["message"], trigger={"json": body})
        assert re.fullmatch(r"(person|movement|[a-z, ]+) at \d\d:\d\d UTC", message), message
        assert message.endswith(f"at {ev['started_at'][11:16]} UTC")
        public = server.core.settings.public_url.rstrip("/")  # the address the server's links carry
        assert _render(data["data"]["url"], trigger={"json": body}) == f"{public}/events/{ev['id']}"
        image = _render(data["data"]["image"], trigger={"json": body})
        assert image.startswith(public + "/api/v1/events/")
        r = httpx.get(server.url + image[len(public):], headers={"Authorization": secrets["alarmcloud_token"]})
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"

        # step 3: the REST sensors' templates on the API's answers
        sensors: dict[str, tuple[str, dict[str, Any]]] = {}
        for rest in _section(blocks, "rest", secrets):
            assert rest["resource"].startswith(EXAMPLE)
            r = httpx.get(server.url + rest["resource"][len(EXAMPLE):], headers=rest["headers"])
            assert r.status_code == 200, r.text
            for sensor in rest["sensor"]:
                value = _render(sensor["value_template"], value_json=r.json())
                attributes = {}
                if "json_attributes_path" in sensor:
                    assert sensor["json_attributes_path"] == "$.items[0]"
                    attributes = {k: r.json()["items"][0][k] for k in sensor["json_attributes"]}
                sensors[sensor["name"]] = (value, attributes)
        assert sensors["alarmcloud last alarm"] == ("Driveway", {
            "id": ev["id"], "started_at": ev["started_at"], "verdict": "alarm", "camera_id": cam["id"]})
        assert float(sensors["alarmcloud storage used"][0]) == round(clip.stat().st_size / 10_000_000 * 100, 1) > 0
        assert sensors["alarmcloud clips stored"][0] == "1"

        # step 4: the script's calls of the REST commands, sent as Home Assistant sends them
        commands = _section(blocks, "rest_command", secrets)
        steps = _section(blocks, "script", secrets)["alarmcloud_home"]["sequence"]
        assert fake.state["alarm"]["armed"] == "1"
        for step in steps:
            command = commands[step["service"].removeprefix("rest_command.")]
            variables = {**step["data"], "camera_id": cam["id"]} if "camera_id" in step["data"] else step["data"]
            url = _render(command["url"], **variables)
            assert url.startswith(EXAMPLE)
            r = httpx.request(command["method"].upper(), server.url + url[len(EXAMPLE):],
                              headers={**command["headers"], "Content-Type": command["content_type"]},
                              content=_render(command["payload"], **variables).encode())
            assert r.status_code == 200, (step["service"], r.text)
        assert fake.state["alarm"]["armed"] == "0"  # motion detection off on the camera
        snooze = a.get("/api/v1/me/snooze").json()
        assert snooze["all"] is not None  # alarm messages quiet for the hour
