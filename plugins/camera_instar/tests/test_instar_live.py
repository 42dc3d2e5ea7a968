"""Live view: stream and snapshot URLs per generation never carry the password; snapshots come as JPEG."""

from __future__ import annotations

import pytest
from alarmcloud.contracts import CameraAccess, CameraError
from alarmcloud_camera_instar.adapter import InstarAdapter
from alarmcloud_camera_instar.testing import FakeInstarCamera

PASSWORD = "Pa$$:w/rd@1"
HI = CameraAccess(
    id="c1", model="IN-9008 Full HD", address="192.168.1.20", port=8081, username="admin", password=PASSWORD
)
WQ = CameraAccess(id="c2", model="IN-9408 2K+", address="192.168.1.21", username="admin", password=PASSWORD)


def test_hi3510_urls() -> None:
    live = InstarAdapter().live_stream(HI)
    assert live.rtsp_main == "rtsp://192.168.1.20/11"
    assert live.rtsp_sub == "rtsp://192.168.1.20/12"
    assert live.rtsp_third == "rtsp://192.168.1.20/13"
    assert live.snapshot == "http://192.168.1.20:8081/tmpfs/snap.jpg"


def test_wqhd_urls() -> None:
    live = InstarAdapter().live_stream(WQ)
    assert live.rtsp_main == "rtsp://192.168.1.21/livestream/11"
    assert live.rtsp_sub == "rtsp://192.168.1.21/livestream/12"
    assert live.rtsp_third == "rtsp://192.168.1.21/livestream/13"
    assert live.snapshot == "http://192.168.1.21/snap.cgi?chn=11"


@pytest.mark.parametrize("camera", [HI, WQ])
def test_password_only_in_the_credentials_variants(camera: CameraAccess) -> None:
    live = InstarAdapter().live_stream(camera)
    public = [live.rtsp_main, live.rtsp_sub, live.rtsp_third, live.snapshot]
    assert all(PASSWORD not in u and "Pa%24%24" not in u and "admin" not in u for u in public if u)
    with_login = live.credentials_in_url
    assert with_login["rtsp_main"].startswith("rtsp://admin:Pa%24%24%3Aw%2Frd%401@")
    assert "pwd=Pa%24%24%3Aw%2Frd%401" in with_login["snapshot"]
    assert PASSWORD not in repr(camera)
    assert PASSWORD not in repr(live.rtsp_main)


def test_ipv6_address_and_custom_rtsp_port() -> None:
    from alarmcloud_camera_instar.config import InstarConfig

    cam = CameraAccess(id="c3", model="IN-8015 Full HD", address="fd00::20", username="u", password="p")
    live = InstarAdapter(InstarConfig(rtsp_port=8554)).live_stream(cam)
    assert live.rtsp_main == "rtsp://[fd00::20]:8554/11"
    assert live.snapshot == "http://[fd00::20]/tmpfs/snap.jpg"


def test_no_address_no_live_view() -> None:
    cam = CameraAccess(id="c4", model="IN-8015 Full HD", address=None)
    with pytest.raises(CameraError) as err:
        InstarAdapter().live_stream(cam)
    assert err.value.code == "unsupported"


@pytest.mark.anyio
async def test_snapshot_is_fetched_with_basic_auth(adapter: InstarAdapter, camera: FakeInstarCamera) -> None:
    jpeg = await adapter.snapshot(camera.access())
    assert jpeg == camera.snapshot_jpeg
    assert jpeg.startswith(b"\xff\xd8")
    last = camera.requests[-1]
    assert last.authorized
    assert last.path in ("/tmpfs/snap.jpg", "/snap.cgi")
    assert not any(k in ("usr", "user", "pwd") for k, _ in last.params)  # never in the URL


@pytest.mark.anyio
async def test_snapshot_with_wrong_password(adapter: InstarAdapter) -> None:
    with FakeInstarCamera("wqhd") as cam:
        with pytest.raises(CameraError) as err:
            await adapter.snapshot(cam.access(password="nope"))
        assert err.value.code == "refused"
