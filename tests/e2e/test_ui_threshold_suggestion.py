"""The clip page in a real browser: "Not rain" on a clip the detector called rain offers the camera's threshold that
keeps such clips alarms; one click applies it, and the next such clip stays an alarm. "This was rain" on a clip it
then missed shows its score and offers the threshold that catches it. The camera page says what a threshold would
flag before it is saved."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from uihelpers import browser, login, make_accepted_clip, opened_page, require_chromium, watch  # noqa: E402

pytestmark = pytest.mark.browser


@contextmanager
def rain_camera(tmp_path: Path, email: str, name: str) -> Iterator[tuple[Any, Any, Any, dict[str, Any], Any]]:
    """A server whose "rain" detector is a stand-in with known scores (a clip of N seconds scores N / 10), a browser,
    and an account with one camera that runs it: (server, browser, api, camera, upload credentials)."""
    require_chromium()
    from alarmcloud.testing import LiveServer, test_settings

    from tests.conftest import Api  # type: ignore[import-not-found]
    from tests.test_threshold_suggestion import length_host  # type: ignore[import-not-found]

    plugins = length_host("rain", ("rain", "snow"), maximum=0.99)
    with LiveServer(test_settings(tmp_path / "data"), plugins=plugins) as srv, browser() as b:
        a = Api(srv.url).register(email)
        cam = a.camera(name)
        assert a.put(f"/api/v1/cameras/{cam['id']}/detectors", json={"rain": True}).status_code == 200
        yield srv, b, a, cam, a.upload_credentials(cam["id"])


def test_not_rain_offers_the_threshold_and_applies_it(tmp_path: Path) -> None:
    with rain_camera(tmp_path, "tuner@example.org", "Garden") as (srv, b, a, cam, creds):
        confirmed = a.upload_analysed(creds, make_accepted_clip(tmp_path / "A_20240101_120000.mp4", seconds=9))
        assert a.post(f"/api/v1/events/{confirmed['id']}/feedback", json={"label": "rain"}).status_code == 201
        wrong = a.upload_analysed(creds, make_accepted_clip(tmp_path / "A_20240101_120100.mp4", seconds=7))
        assert [f["score"] for f in wrong["findings"]] == [0.7]

        with opened_page(b, 1280, 900) as page:
            _, errors = watch(page, srv.url)
            login(page, srv.url, "tuner@example.org")
            page.goto(f"{srv.url}/events/{wrong['id']}")
            tune = page.locator("[data-tune]")
            assert not tune.is_visible()
            page.get_by_role("button", name="Not rain").click()
            page.locator(".sent").get_by_text("marked as not rain").wait_for()
            tune.wait_for(state="visible")
            text = tune.inner_text()
            assert "70% sure" in text and "from 50% to 75%" in text, text
            assert "on this camera 0 of the 1 clip you marked as rain would no longer" in text, text
            page.get_by_role("button", name="Raise the threshold to 75%").click()
            tune.get_by_text("now calls a clip rain from 75%").wait_for()
            assert errors == []

        got = a.get(f"/api/v1/cameras/{cam['id']}/detectors").json()["options"]
        assert got == {"rain": {"threshold": 0.75}}
        # the next 7 s clip stays an alarm; the confirmed 9 s kind is still called rain
        missed = a.upload_analysed(creds, make_accepted_clip(tmp_path / "A_20240101_120200.mp4", seconds=7))
        assert missed["findings"] == [] and missed["scores"] == {"rain": 0.7}
        again = a.upload_analysed(creds, make_accepted_clip(tmp_path / "A_20240101_120300.mp4", seconds=9))
        assert [f["label"] for f in again["findings"]] == ["rain"]

        # the owner finds that clip was rain after all: the page shows how close it came, and offers to lower
        with opened_page(b, 1280, 900) as page:
            _, errors = watch(page, srv.url)
            login(page, srv.url, "tuner@example.org")
            page.goto(f"{srv.url}/events/{missed['id']}")
            score = page.locator("[data-score=rain]")
            assert "70% sure, below this camera's threshold" in score.inner_text()
            tune = page.locator("[data-tune]")
            page.get_by_role("button", name="This was rain").click()
            tune.wait_for(state="visible")
            text = tune.inner_text()
            assert "Lower this camera's rain threshold from 75% to 70%" in text, text
            assert "1 of the 1 clip you marked as not rain would have been called rain wrongly" in text, text
            page.get_by_role("button", name="Lower the threshold to 70%").click()
            tune.get_by_text("now calls a clip rain from 70%").wait_for()
            assert errors == []
        assert a.get(f"/api/v1/cameras/{cam['id']}/detectors").json()["options"] == {"rain": {"threshold": 0.7}}


def test_the_camera_page_shows_what_a_threshold_would_flag_before_it_is_saved(tmp_path: Path) -> None:
    with rain_camera(tmp_path, "preview@example.org", "Porch") as (srv, b, a, cam, creds):
        events = [a.upload_analysed(creds, make_accepted_clip(tmp_path / f"A_20240101_12{n:02d}00.mp4", seconds=n))
                  for n in (4, 6, 8)]  # scores 0.4, 0.6, 0.8
        for ev, label in zip(events, ("rain", "not_rain", "rain"), strict=True):
            assert a.post(f"/api/v1/events/{ev['id']}/feedback", json={"label": label}).status_code == 201

        with opened_page(b, 1280, 900) as page:
            _, errors = watch(page, srv.url)
            login(page, srv.url, "preview@example.org")
            page.goto(f"{srv.url}/cameras/{cam['id']}")
            page.get_by_role("button", name="Options of Rain").click()
            preview = page.locator("[data-threshold-preview]")
            preview.wait_for(state="visible")
            text = preview.inner_text()
            assert text.startswith("At 50%, 2 of this camera's 3 clips of the last 30 days would count as rain or snow"), text
            assert "1 of them you marked as wrong; 1 clip you confirmed would not." in text, text
            page.locator("input[name=threshold]").fill("0.4")
            page.locator("[data-threshold-preview]", has_text="At 40%").wait_for()
            text = preview.inner_text()
            assert "At 40%, 3 of this camera's 3 clips" in text and "(2 at the 50% in use)" in text, text
            assert "confirmed would not" not in text, text
            page.get_by_role("button", name="Save Rain options").click()
            page.locator("[data-options-state]", has_text="Saved.").wait_for()
            page.locator("[data-threshold-preview]", has_text="40%").filter(has_not_text="in use").wait_for()
            assert preview.inner_text().startswith("At 40%, 3 of this camera's 3 clips"), preview.inner_text()
            assert errors == []
        assert a.get(f"/api/v1/cameras/{cam['id']}/detectors").json()["options"] == {"rain": {"threshold": 0.4}}
