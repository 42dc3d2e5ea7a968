"""Operator settings of the Google Home plugin (``[plugins.google_home]`` in the config file)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class GoogleHomeConfig(BaseModel):
    """Settings of the cloud-to-cloud fulfillment; every field documents one operator choice."""

    service_account_file: str | None = Field(
        None, description="Path to the Google service-account JSON key (HomeGraph Report State / Request Sync)")
    service_account_json: SecretStr | None = Field(None, description="The same key inline (e.g. from {$env=...})")
    token_url: str | None = Field(None, description="OAuth token endpoint override (default: the key's token_uri)")
    homegraph_url: str = Field("https://homegraph.googleapis.com", description="HomeGraph API base URL")
    stream_url_template: str | None = Field(
        None, description="HTTPS URL of the camera's live stream from your media relay, e.g. "
        "'https://cams.example.com/{camera_id}/index.m3u8'; unset: GetCameraStream answers streamUnavailable")
    stream_protocol: str = Field("hls", description="Protocol of stream_url_template: hls, dash, "
                                 "smooth_stream or progressive_mp4")
    stream_need_auth_token: bool = Field(True, description="cameraStreamNeedAuthToken: the relay checks the "
                                         "user's OAuth token")
    cast_receiver_app_id: str | None = Field(None, description="Custom Cast receiver app id (optional)")
    http_timeout: float = Field(10.0, description="Timeout in seconds for calls to Google")
    http_retries: int = Field(3, description="Attempts per HomeGraph call on network errors and 5xx")
