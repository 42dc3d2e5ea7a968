"""Per-camera detector options over real HTTP: declared by the plugins, validated all-or-nothing, used by the pipeline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmcloud import ClipFrames, Detector, DetectorOption, DetectorSpec, Finding, FrameRequest, hookimpl
from alarmcloud.plugins import PluginHost
from alarmcloud.testing import LiveServer, test_settings

SUB_PASSWORD = "another good pw"


def detectors(a: Any, camera_id: str) -> dict[str, Any]:
    r = a.get(f"/api/v1/cameras/{camera_id}/detectors")
    assert r.status_code == 200, r.text
    return r.json()


def put(a: Any, camera_id: str, body: dict[str, Any]) -> httpx.Response:
    return a.put(f"/api/v1/cameras/{camera_id}/detectors", json=body)


def test_the_bundled_detectors_declare_their_options_with_the_deployment_defaults(api: Any, server: Any) -> None:
    import jsonschema

    a = api().register("declared@example.com")
    cam = a.camera("Gate")
    got = detectors(a, cam["id"])
    plates = {o["key"]: o for o in got["available"]["plates"]["options"]}
    rain = {o["key"]: o for o in got["available"]["rain"]["options"]}
    assert got["available"]["plates"]["title"] == "Licence plates"  # what an app shows beside the switch
    assert got["available"]["insects"]["title"] == "Insects and spider webs at the IR lamp"
    countries = plates["countries"]
    assert countries["kind"] == "choices" and "misreads" in countries["help"]
    codes = [c["value"] for c in countries["choices"]]
    assert {"value": "DE", "label": "Germany"} in countries["choices"] and "AT" in codes
    assert codes[0] == "EU" and countries["choices"][0].get("group") is True  # every European format at once
    assert not any(c.get("group") for c in countries["choices"][1:])  # then each country
    assert countries["default"] == codes[1:]  # the operator set nothing: every known country
    threshold = rain["threshold"]
    assert (threshold["kind"], threshold["minimum"], threshold["maximum"], threshold["step"]) == (
        "number", 0.05, 0.99, 0.05)
    assert threshold["default"] == 0.65  # the shipped MLP and CNN pair's threshold
    assert got["options"] == {} and got["enabled"] == {"insects": False, "plates": False, "rain": False}
    # the answer is what the OpenAPI document says it is
    doc = httpx.get(server.url + "/openapi.json").json()
    op = doc["paths"]["/api/v1/cameras/{camera_id}/detectors"]
    jsonschema.validate(got, op["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    body = {"plates": True, "options": {"plates": {"countries": ["DE", "AT"]}, "rain": {"threshold": 0.8}}}
    jsonschema.validate(body, op["put"]["requestBody"]["content"]["application/json"]["schema"])
    r = put(a, cam["id"], body)
    assert r.status_code == 200, r.text
    jsonschema.validate(r.json(), op["put"]["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"400", "403", "404"} <= set(op["put"]["responses"])


def test_operator_settings_are_the_deployment_default(tmp_path: Path) -> None:
    st: Any = test_settings(tmp_path / "data")
    st.plugin = {"rain": {"threshold": 0.6}, "plates": {"countries": ["NL", "DE"]}}
    from tests.conftest import Api  # type: ignore[import-not-found]

    with LiveServer(st) as srv:
        a = Api(srv.url).register("operator-defaults@example.com")
        cam = a.camera("Gate")
        got = detectors(a, cam["id"])
    assert got["available"]["rain"]["options"][0]["default"] == 0.6
    assert got["available"]["plates"]["options"][0]["default"] == ["NL", "DE"]


def test_a_rain_model_with_its_own_threshold_is_the_deployment_default(tmp_path: Path) -> None:
    """An operator who points [plugins.rain] model_path at a model trained with another threshold, and sets no
    threshold, sees the model's as the cameras' default (the detector uses it: the rain plugin's tests)."""
    from alarmcloud_detect_rain.detector import default_model_path
    from alarmcloud_detect_rain.onnx_io import read_mlp, write_mlp

    from tests.conftest import Api  # type: ignore[import-not-found]

    w = read_mlp(default_model_path())
    w.metadata["threshold"] = "0.65"
    st: Any = test_settings(tmp_path / "data")
    st.plugin = {"rain": {"model_path": str(write_mlp(tmp_path / "rain.onnx", w))}}
    with LiveServer(st) as srv:
        a = Api(srv.url).register("model-threshold@example.com")
        got = detectors(a, a.camera("Gate")["id"])
    assert got["available"]["rain"]["options"][0]["default"] == 0.65


def test_valid_options_round_trip_merge_and_reset(api: Any) -> None:
    a = api().register("roundtrip@example.com")
    cam = a.camera("Gate")
    r = put(a, cam["id"], {"plates": True, "options": {"plates": {"countries": ["DE", "AT", "DE"]},
                                                        "rain": {"threshold": 0.8}}})
    assert r.status_code == 200, r.text
    want = {"plates": {"countries": ["DE", "AT"]}, "rain": {"threshold": 0.8}}  # a repeated code is kept once
    assert r.json()["options"] == want and r.json()["enabled"]["plates"] is True
    assert detectors(a, cam["id"])["options"] == want
    assert a.get(f"/api/v1/cameras/{cam['id']}").json()["detector_options"] == want
    # keys left out keep their values; the other detector's options stay as they are
    assert put(a, cam["id"], {"options": {"rain": {"threshold": 0.5}}}).status_code == 200
    assert detectors(a, cam["id"])["options"] == {"plates": {"countries": ["DE", "AT"]}, "rain": {"threshold": 0.5}}
    # null for a key: back to the deployment default (the key is gone, and so is an emptied detector)
    r = put(a, cam["id"], {"options": {"rain": {"threshold": None}}})
    assert r.status_code == 200 and r.json()["options"] == {"plates": {"countries": ["DE", "AT"]}}
    # null for a whole detector resets all its options; switching detectors leaves options alone
    assert put(a, cam["id"], {"plates": False}).json()["options"] == {"plates": {"countries": ["DE", "AT"]}}
    assert put(a, cam["id"], {"options": {"plates": None}}).json()["options"] == {}
    assert detectors(a, cam["id"])["options"] == {}


INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"options": {"nope": {"x": 1}}}, "unknown_detector", "'nope'"),
    ({"nope": True, "options": {"rain": {"threshold": 0.5}}}, "unknown_detector", "'nope'"),
    ({"options": ["rain"]}, "invalid_field", "options must be an object"),
    ({"options": {"rain": 0.5}}, "invalid_field", "must be an object or null"),
    ({"options": {"plates": {"country": ["DE"]}}}, "invalid_field", "no option 'country'"),
    ({"options": {"plates": {"countries": ["DE", "XX"]}}}, "invalid_field", "unknown choice 'XX'"),
    ({"options": {"plates": {"countries": ["de"]}}}, "invalid_field", "unknown choice 'de'"),
    ({"options": {"plates": {"countries": []}}}, "invalid_field", "at least one choice"),
    ({"options": {"plates": {"countries": "DE,AT"}}}, "invalid_field", "must be a list of codes"),
    ({"options": {"plates": {"countries": [1]}}}, "invalid_field", "must be a list of codes"),
    ({"options": {"rain": {"threshold": "0.8"}}}, "invalid_field", "threshold must be a number"),
    ({"options": {"rain": {"threshold": True}}}, "invalid_field", "threshold must be a number"),
    ({"options": {"rain": {"threshold": 1.5}}}, "invalid_field", "threshold must be from 0.05 to 0.99, not 1.5"),
    ({"options": {"rain": {"threshold": 0.01}}}, "invalid_field", "from 0.05 to 0.99"),
    # all or nothing: a valid part does not get stored next to an invalid one
    ({"rain": True, "options": {"plates": {"countries": ["AT"]}, "rain": {"threshold": 2}}}, "invalid_field",
     "Rain and snow: threshold"),
    ({"plates": False, "options": {"rain": {"threshold": 0.9}, "plates": {"countries": ["AT"], "zoom": 3}}},
     "invalid_field", "no option 'zoom'"),
]


@pytest.mark.parametrize(("body", "code", "message"), INVALID, ids=[f"{i}-{c[1]}" for i, c in enumerate(INVALID)])
def test_invalid_options_answer_400_and_store_nothing(api: Any, body: dict[str, Any], code: str,
                                                      message: str) -> None:
    a = api().register("invalid@example.com")
    cam = a.camera("Gate")
    assert put(a, cam["id"], {"plates": True, "options": {"plates": {"countries": ["DE"]}}}).status_code == 200
    before = detectors(a, cam["id"])
    r = put(a, cam["id"], body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code
    assert message in r.json()["error"]["message"], r.json()
    assert detectors(a, cam["id"]) == before


def test_other_tenants_and_sub_users_without_the_admin_right_cannot_change_options(api: Any) -> None:
    owner = api().register("owner-opts@example.com")
    cam = owner.camera("Gate")
    other_cam = owner.camera("Back")
    stranger = api().register("stranger-opts@example.com")
    body = {"options": {"rain": {"threshold": 0.9}}}
    for method, payload in (("GET", None), ("PUT", body)):
        r = stranger.req(method, f"/api/v1/cameras/{cam['id']}/detectors", json=payload)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    sub = owner.post("/api/v1/subusers", json={"email": "sub-opts@example.com", "password": SUB_PASSWORD,
                                               "rights": {cam["id"]: "view"}}).json()
    helper = api().login("sub-opts@example.com", SUB_PASSWORD)
    assert detectors(helper, cam["id"])["available"]["rain"]["options"]  # a viewer sees the options
    assert put(helper, cam["id"], body).status_code == 403
    assert put(helper, other_cam["id"], body).status_code == 404  # no right at all: not even its existence
    assert owner.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {cam["id"]: "control"}}).status_code == 200
    r = put(helper, cam["id"], body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert detectors(owner, cam["id"])["options"] == {}
    assert owner.put(f"/api/v1/subusers/{sub['id']}", json={"rights": {cam["id"]: "admin"}}).status_code == 200
    assert put(helper, cam["id"], body).status_code == 200
    assert detectors(owner, cam["id"])["options"] == {"rain": {"threshold": 0.9}}


# ---------------------------------------------------------------- the options reach the detector


class EchoDetector(Detector):
    """Reports the options it was handed for each clip as the finding's text."""

    name = "echo"
    labels = ("echo",)

    def frame_request(self) -> FrameRequest:
        return FrameRequest(max_keyframes=1, width=32, color="gray")

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        return [Finding("echo", "echo", 1.0, text=json.dumps(frames.options, sort_keys=True))]


class FreeDetector(EchoDetector):
    """Declares no options: it gets whatever object the owner stored, as before options were declared."""

    name = "free"
    labels = ("free",)

    def analyze(self, frames: ClipFrames) -> list[Finding]:
        return [Finding("free", "free", 1.0, text=json.dumps(frames.options, sort_keys=True))]


class EchoPlugin:
    @hookimpl
    def register_detectors(self) -> list[DetectorSpec]:
        return [
            DetectorSpec("echo", lambda cfg: EchoDetector(), ("echo",), "echoes its options", options=(
                DetectorOption("colours", "Colours", "choices", choices=[("r", "Red"), ("g", "Green")]),
                DetectorOption("level", "Level", "number", minimum=1, maximum=10, step=1, default=5),
            )),
            DetectorSpec("free", lambda cfg: FreeDetector(), ("free",), "declares no options"),
        ]


def test_saved_options_reach_the_detector_for_the_next_clip(tmp_path: Path,
                                                            make_test_clip: Callable[..., Path]) -> None:
    from tests.conftest import Api  # type: ignore[import-not-found]

    host = PluginHost({"cameras": ["instar"], "detectors": [], "integrations": []})
    host.register(EchoPlugin(), "test:echo", "echo")
    with LiveServer(test_settings(tmp_path / "data"), plugins=host.load()) as srv:
        a = Api(srv.url).register("echo@example.com")
        cam = a.camera("Gate")
        echo = detectors(a, cam["id"])["available"]
        assert [o["key"] for o in echo["echo"]["options"]] == ["colours", "level"]
        assert echo["echo"]["options"][1]["default"] == 5 and echo["free"]["options"] == []
        creds = a.upload_credentials(cam["id"])
        clip = make_test_clip("echo", seconds=3)

        def seen() -> dict[str, Any]:
            ev = a.upload_analysed(creds, clip)
            return {f["detector"]: json.loads(f["text"]) for f in ev["findings"]}

        assert put(a, cam["id"], {"echo": True, "free": True}).status_code == 200
        assert seen() == {"echo": {}, "free": {}}
        r = put(a, cam["id"], {"options": {"echo": {"colours": ["g"], "level": 7},
                                           "free": {"anything": {"nested": [1, "x"]}}}})
        assert r.status_code == 200, r.text
        assert seen() == {"echo": {"colours": ["g"], "level": 7}, "free": {"anything": {"nested": [1, "x"]}}}
        # a detector that declares no options takes any object, replacing the previous one (as before)
        assert put(a, cam["id"], {"options": {"free": {"other": True}}}).status_code == 200
        r = put(a, cam["id"], {"options": {"echo": {"level": 11}, "free": {"more": 1}}})
        assert r.status_code == 400 and "from 1 to 10, not 11" in r.json()["error"]["message"]
        assert put(a, cam["id"], {"options": {"echo": {"colours": None}}}).status_code == 200
        assert seen() == {"echo": {"level": 7}, "free": {"other": True}}


def test_a_plugin_cannot_declare_a_nonsense_option() -> None:
    with pytest.raises(ValueError, match="needs at least one choice"):
        DetectorOption("countries", "Countries", "choices")
    with pytest.raises(ValueError, match="unique"):
        DetectorOption("countries", "Countries", "choices", choices=(("DE", "Germany"), ("DE", "Deutschland")))
    with pytest.raises(ValueError, match="kind"):
        DetectorOption("x", "X", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="minimum is above maximum"):
        DetectorOption("x", "X", "number", minimum=2, maximum=1)
    with pytest.raises(ValueError, match="group must be one of the choices"):
        DetectorOption("countries", "Countries", "choices", choices=(("DE", "Germany"),), groups=("EU",))
    with pytest.raises(ValueError, match="unique"):
        DetectorSpec("d", lambda cfg: EchoDetector(), ("d",), "d", options=(
            DetectorOption("x", "X", "number"), DetectorOption("x", "Y", "number")))
    spec = DetectorSpec("d", lambda cfg: EchoDetector(), ("d",), "d")  # older plugins: no options
    assert spec.options == ()
