"""Request bodies read with a size cap, for the core's endpoints and for plugins that answer in their own shape."""

from __future__ import annotations

from starlette.requests import Request

#: what a JSON request body may weigh unless an endpoint says otherwise
MAX_JSON_BYTES = 1024 * 1024


async def read_body(request: Request, max_bytes: int = MAX_JSON_BYTES) -> bytes | None:
    """The request body, or ``None`` as soon as it grows past ``max_bytes`` (whether or not a Content-Length was
    sent: a chunked body is counted as it arrives, never held whole). Answer ``None`` with a 413."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)
