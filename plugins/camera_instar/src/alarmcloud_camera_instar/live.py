"""Live-view URLs: RTSP main/sub/third streams and the JPEG snapshot, per generation."""

from __future__ import annotations

from urllib.parse import quote

from alarmcloud.contracts import CameraAccess, CameraError, LiveStream

from alarmcloud_camera_instar.catalog import Generation
from alarmcloud_camera_instar.cgi import base_url


def _host(camera: CameraAccess) -> str:
    if not camera.address:
        raise CameraError("unsupported", "the camera has no network address, so there is no live view")
    return f"[{camera.address}]" if ":" in camera.address else camera.address


def _userinfo(camera: CameraAccess) -> str:
    return f"{quote(camera.username or '', safe='')}:{quote(camera.password or '', safe='')}@"


def snapshot_url(camera: CameraAccess, gen: Generation) -> str:
    """The full-resolution snapshot URL without credentials (fetch it with Basic auth)."""
    return base_url(camera) + gen.snapshot_path


def live_stream(camera: CameraAccess, gen: Generation, rtsp_port: int = 554) -> LiveStream:
    """URLs without credentials; ``credentials_in_url`` holds the same URLs with the camera login."""
    host = _host(camera)
    port = "" if rtsp_port == 554 else f":{rtsp_port}"
    main, sub, third = (f"rtsp://{host}{port}{path}" for path in gen.rtsp_paths)
    snapshot = snapshot_url(camera, gen)
    with_login: dict[str, str] = {}
    if camera.username:
        auth = _userinfo(camera)
        for key, url in (("rtsp_main", main), ("rtsp_sub", sub), ("rtsp_third", third)):
            with_login[key] = url.replace("rtsp://", f"rtsp://{auth}", 1)
        # the documented query login: usr=/pwd= on hi3510, user=/pwd= on WQHD
        user_key = "user" if gen.api == "wqhd" else "usr"
        sep = "&" if "?" in snapshot else "?"
        with_login["snapshot"] = (
            f"{snapshot}{sep}{user_key}={quote(camera.username, safe='')}&pwd={quote(camera.password or '', safe='')}"
        )
    return LiveStream(rtsp_main=main, rtsp_sub=sub, rtsp_third=third, snapshot=snapshot, credentials_in_url=with_login)
