"""HTTP responses that send one stored blob, from local disk or an S3 bucket alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from alarmcloud.blobstore import LocalBlobStore

if TYPE_CHECKING:
    from alarmcloud.blobstore import BlobStore

CHUNK = 256 * 1024


def _pieces(fh: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        while length > 0:
            data = fh.read(min(CHUNK, length))
            if not data:
                break
            length -= len(data)
            yield data


async def blob_response(request: Request, blobs: BlobStore, key: str, media_type: str,
                        filename: str | None = None) -> Response:
    """The blob ``key`` with Range support: a local file is sent as it is (sendfile), a remote one is streamed by
    range reads (FileNotFoundError when it is missing)."""
    if isinstance(blobs, LocalBlobStore):
        return FileResponse(blobs.path(key), media_type=media_type, filename=filename)
    from alarmcloud.eventsapi import media_etag, ranged

    fh = await anyio.to_thread.run_sync(blobs.open, key)
    size = fh.seek(0, 2)
    etag = media_etag(key)
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    asked = ranged(request, etag, size, headers)
    if isinstance(asked, Response):
        fh.close()
        return asked
    start, end, status = asked
    if request.method == "HEAD":
        fh.close()
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(_pieces(fh, start, end - start + 1), status_code=status, headers=headers,
                             media_type=media_type)
