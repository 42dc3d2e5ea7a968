"""The INSTAR ``CameraAdapter``: catalogue, validation, controls, live view, snapshot, one-click setup."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
from alarmcloud.contracts import (
    CAMERA_ACTIONS,
    CameraAccess,
    CameraAdapter,
    CameraError,
    CameraModel,
    ClipProbe,
    ClipValidation,
    LiveStream,
    UploadTarget,
)

from alarmcloud_camera_instar import commands, mqtt
from alarmcloud_camera_instar.catalog import MODELS, Generation, find_model, generation_of
from alarmcloud_camera_instar.cgi import CameraClient
from alarmcloud_camera_instar.config import InstarConfig
from alarmcloud_camera_instar.live import live_stream
from alarmcloud_camera_instar.upload_setup import setup_steps
from alarmcloud_camera_instar.validation import validate_clip

log = logging.getLogger(__name__)

_JPEG_MAGIC = b"\xff\xd8"


class InstarAdapter(CameraAdapter):
    """INSTAR HD (720p), Full HD (1080p) and WQHD (2K+) cameras over their local CGI API."""

    brand: ClassVar[str] = "instar"

    def __init__(self, config: InstarConfig | None = None, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config or InstarConfig()
        self._transport = transport

    def models(self) -> Sequence[CameraModel]:
        """Every supported model (see ``catalog.MODELS``)."""
        return MODELS

    def validate_clip(self, model: str, probe: ClipProbe) -> ClipValidation:
        """MP4, the model's codecs, sizes and frame rates, about 18 s (longer: flagged ``long_clip``)."""
        return validate_clip(model, probe, self.config)

    async def control(self, camera: CameraAccess, action: str, value: Any, area: int | None = None) -> None:
        """Send the documented request of ``action`` for the camera's generation (CGI; MQTT where WQHD needs it)."""
        if action not in CAMERA_ACTIONS:
            raise CameraError("invalid", f"unknown action {action!r}")
        model, gen = self._lookup(camera)
        async with self._client(camera, gen) as client:
            if action == "motion_detection":
                await client.set(commands.motion_detection(gen, commands.to_switch(value)))
            elif action == "alarm_email":
                on = commands.to_switch(value)
                if gen.api != "wqhd":
                    await client.set(commands.alarm_email(gen, on))
                elif not await client.set_if_known(commands.alarm_email(gen, on)):
                    # firmware without the web UI's setmaaction: the documented MQTT topic does the same
                    await self._publish(camera, client, *commands.mqtt_alarm_email(on), what="alarm e-mail")
            elif action == "go_to_preset":
                position = commands.to_int(value, 1, 8, "preset")
                if gen.api == "wqhd":
                    commands.check_presets(model)
                    await self._publish(camera, client, *commands.mqtt_preset(position), what="presets")
                else:
                    await client.set(commands.go_to_preset(gen, model, position))
            elif action == "alarm_area":
                number = self._area(gen, area)
                await client.set(commands.alarm_area(gen, number, commands.to_switch(value)))
            else:
                number = self._area(gen, area)
                low, high = commands.sensitivity_range(gen)
                percent = commands.to_int(value, low, high, "sensitivity")
                enabled = True
                if gen.api == "hi3510":
                    # -enable is part of the documented command: keep the area's current switch
                    reply = await client.read(commands.read_areas(gen))
                    current = commands.area_enabled(gen, reply, number)
                    enabled = True if current is None else current
                await client.set(commands.area_sensitivity(gen, number, percent, enabled))
        log.info("camera %s: %s done", camera.id, action)

    def live_stream(self, camera: CameraAccess) -> LiveStream:
        """RTSP ``/11 /12 /13`` (hi3510) or ``/livestream/11..13`` (WQHD) and the snapshot URL."""
        _, gen = self._lookup(camera)
        return live_stream(camera, gen, self.config.rtsp_port)

    async def snapshot(self, camera: CameraAccess) -> bytes:
        """Fetch the full-resolution JPEG with Basic auth."""
        _, gen = self._lookup(camera)
        async with self._client(camera, gen) as client:
            response = await client.get(gen.snapshot_path)
        body = response.content
        if not body.startswith(_JPEG_MAGIC):
            raise CameraError("invalid", "the camera's snapshot is not a JPEG image")
        return body

    async def setup_upload(self, camera: CameraAccess, target: UploadTarget) -> list[str]:
        """Point FTP(S) upload and the alarm server here, uploading only alarm recordings."""
        _, gen = self._lookup(camera)
        steps, notes = setup_steps(gen, target)
        done: list[str] = []
        async with self._client(camera, gen) as client:
            for step in steps:
                await client.set(step.params)
                done.append(step.summary)
        log.info("camera %s: one-click upload setup done (%d steps)", camera.id, len(steps))
        return done + notes

    # ------------------------------------------------------------ helpers

    async def _publish(self, camera: CameraAccess, client: CameraClient, path: str, value: str, what: str) -> None:
        """Publish ``{"val": value}`` to ``<prefix><client id><path>`` on the camera's built-in MQTT broker.

        The prefix, client ID and ports come from the camera itself (``getmqttattr``); the broker is reached at
        the camera's own (allow-listed) address with the camera login, over TLS when the camera is on HTTPS.
        """
        settings = await client.read(commands.read_mqtt_settings())
        if settings.get("mq_enable") != "1":
            raise CameraError(
                "unsupported",
                f"this camera takes {what} only over MQTT, which is switched off: turn it on in the camera's "
                "web UI under Smarthome → MQTT",
            )
        prefix, client_id = settings.get("mq_prefix", ""), settings.get("mq_clientid", "")
        if not client_id.strip("/"):
            raise CameraError("unsupported", "the camera reports no MQTT client ID, so its topics are unknown")
        port_key, default = ("mq_portssl", 8883) if camera.https else ("mq_port", 1883)
        raw_port = settings.get(port_key, "")
        port = int(raw_port) if raw_port.isdigit() and 0 < int(raw_port) < 65536 else default
        auth = settings.get("mq_auth", "1") != "0"
        broker = mqtt.Broker(
            host=camera.address or "",
            port=port,
            username=(camera.username or "") if auth else None,
            password=(camera.password or "") if auth else None,
            tls=camera.https,
        )
        await mqtt.publish(broker, mqtt.topic(prefix, client_id, path), mqtt.json_value(value), self.config)

    def _lookup(self, camera: CameraAccess) -> tuple[CameraModel, Generation]:
        model = find_model(camera.model)
        if model is None:
            raise CameraError("unsupported", f"'{camera.model}' is not a supported INSTAR model")
        return model, generation_of(model)

    def _client(self, camera: CameraAccess, gen: Generation) -> CameraClient:
        return CameraClient(camera, gen, self.config, transport=self._transport)

    @staticmethod
    def _area(gen: Generation, area: int | None) -> int:
        if area is None:
            raise CameraError("invalid", "this action needs an alarm area number")
        return commands.to_int(area, 1, gen.areas, "alarm area")


def build_adapter(config: InstarConfig | dict[str, Any] | None = None) -> InstarAdapter:
    """The spec factory: accepts the validated config model, a plain dict, or nothing."""
    if isinstance(config, dict):
        config = InstarConfig.model_validate(config)
    return InstarAdapter(config)
