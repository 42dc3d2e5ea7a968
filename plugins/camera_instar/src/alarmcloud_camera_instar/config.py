"""Operator settings of the INSTAR adapter (``[plugins.instar]``); the field descriptions are the docs."""

from __future__ import annotations

from pydantic import BaseModel, Field


class InstarConfig(BaseModel):
    """How the adapter talks to cameras and which clips it accepts."""

    timeout_s: float = Field(5.0, gt=0, description="Seconds to wait for one camera HTTP request.")
    retries: int = Field(2, ge=0, le=5, description="Extra attempts when a camera does not answer (0 = none).")
    retry_backoff_s: float = Field(0.2, ge=0, description="Pause before the first retry; doubled each time.")
    verify_tls: bool = Field(
        False,
        description="Check the camera's HTTPS certificate. INSTAR cameras on a LAN address usually present a "
        "certificate for their DDNS name, so this is off by default.",
    )
    rtsp_port: int = Field(554, ge=1, le=65535, description="RTSP port of the cameras (INSTAR default 554).")
    min_clip_s: float = Field(1.0, ge=0, description="Shorter uploads are rejected (not an alarm recording).")
    standard_clip_max_s: float = Field(
        21.0,
        gt=0,
        description="Alarm clips are 18 s (3 s before, 15 s after the trigger); longer clips are accepted "
        "but flagged `long_clip` for the fair-use rules.",
    )
    max_clip_s: float = Field(600.0, gt=0, description="Longer uploads are rejected as not a camera alarm clip.")
