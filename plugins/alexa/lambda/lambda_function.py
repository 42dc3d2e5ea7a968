"""AWS Lambda for the Alexa smart-home skill: forwards each directive to alarmcloud and returns its answer.

Environment: ``ALARMCLOUD_URL`` (e.g. ``https://cams.example.com``), optional ``ALARMCLOUD_TIMEOUT`` (seconds,
default 6). Standard library only, so it can be pasted into the Lambda console as is.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from typing import Any


def _error(directive: dict[str, Any], error_type: str, message: str) -> dict[str, Any]:
    header = directive.get("directive", {}).get("header", {})
    event: dict[str, Any] = {"header": {"namespace": "Alexa", "name": "ErrorResponse", "payloadVersion": "3",
                                        "messageId": str(uuid.uuid4())},
                             "payload": {"type": error_type, "message": message}}
    if header.get("correlationToken"):
        event["header"]["correlationToken"] = header["correlationToken"]
    endpoint = directive.get("directive", {}).get("endpoint")
    if isinstance(endpoint, dict) and endpoint.get("endpointId"):
        event["endpoint"] = {"endpointId": endpoint["endpointId"]}
    return {"event": event}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point configured in the Lambda console (``lambda_function.lambda_handler``)."""
    url = os.environ["ALARMCLOUD_URL"].rstrip("/") + "/plugins/alexa/directive"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=float(os.environ.get("ALARMCLOUD_TIMEOUT", "6"))) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, TimeoutError, ValueError):
        return _error(event, "BRIDGE_UNREACHABLE", "the camera cloud is not reachable")
