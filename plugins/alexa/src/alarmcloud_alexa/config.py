"""Operator settings of the Alexa plugin (``[plugins.alexa]`` in the config file)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class AlexaConfig(BaseModel):
    """Settings of the Alexa smart-home skill backend; every field documents one operator choice."""

    manufacturer_name: str = Field("alarmcloud", description="manufacturerName shown in the Alexa app")
    lwa_token_url: str = Field("https://api.amazon.com/auth/o2/token",
                               description="Login with Amazon token endpoint (AcceptGrant code exchange, refresh)")
    lwa_client_id: str | None = Field(None, description="The skill's Alexa client id (console 'Permissions' page)")
    lwa_client_secret: SecretStr | None = Field(None, description="The skill's Alexa client secret")
    event_gateway_url: str = Field("https://api.eu.amazonalexa.com/v3/events",
                                   description="Alexa event gateway of the skill's region (NA, EU or FE)")
    stream_url_template: str | None = Field(
        None, description="RTSP-over-TLS relay URL on port 443, e.g. 'rtsps://cams.example.com:443/{camera_id}'; "
        "unset: the camera's own RTSP URL (only reachable inside the customer's network)")
    image_url_template: str | None = Field(
        None, description="HTTPS URL of a still image per camera, e.g. 'https://cams.example.com/{camera_id}.jpg'; "
        "unset: the camera's snapshot URL")
    use_camera_credentials: bool = Field(
        True, description="Ask for stream URLs with the camera login (the core only gives them where the "
        "customer allowed it for integrations)")
    stream_width: int = Field(1920, description="Resolution announced for the main stream")
    stream_height: int = Field(1080, description="Resolution announced for the main stream")
    idle_timeout_seconds: int = Field(30, description="idleTimeoutSeconds in InitializeCameraStreams responses")
    http_timeout: float = Field(10.0, description="Timeout in seconds for calls to Amazon")
    http_retries: int = Field(3, description="Attempts per event-gateway call on network errors and 5xx")
    alarm_hold_seconds: int = Field(60, description="How long the motion sensor endpoint reports DETECTED")
