"""Off-site copies to the owner's own WebDAV server: Nextcloud, ownCloud, a NAS's WebDAV service.

The owner gives the URL of a folder (Nextcloud: ``https://cloud.example.net/remote.php/dav/files/<user>/``), a user
name and a password (best an app password that can be revoked on its own); the password is stored encrypted and
never returned. The URL follows the webhook address rules (https unless the operator allows http, public addresses
only unless the operator lists the network, no user info) and every request goes to the address checked for it
(resolved once per copy; no redirects, no proxies from the environment), with the TLS certificate checked against
the host name. Each file is written under a hidden ``.<name>.uploading`` name (``PUT``; Nextcloud refuses names
ending in ``.part``) and moved into place (``MOVE`` with ``Overwrite: T``) when complete, so an interrupted copy
never leaves a file that looks whole; the folders are made with ``MKCOL``; the layout is the bucket's
(``offsite.object_key``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from alarmcloud import crypto, notify
from alarmcloud.offsite import BucketError, check_prefix, copy_files

if TYPE_CHECKING:
    from alarmcloud.app import AlarmCloud
    from alarmcloud.models import Account, Camera, Clip, FindingRow

log = logging.getLogger(__name__)
KIND = "webdav"
WHAT = "WebDAV URL"


def check_url(app: AlarmCloud, url: str) -> tuple[httpx.URL, str]:
    """The folder's URL: https (http only where the operator allows it), no user info, query or fragment, and every
    address of its host allowed; with the address to connect to. Raises ``notify.TargetNotAllowed``."""
    u = notify.parse_webhook_url(url, WHAT)
    if u.scheme != "https" and not app.settings.offsite.allow_http:
        raise notify.TargetNotAllowed("the WebDAV URL must start with https:// (this server does not send clips and "
                                      "passwords over plain http)")
    if u.query or u.fragment:
        raise notify.TargetNotAllowed("the WebDAV URL is a folder's address, like https://cloud.example.net/remote."
                                      "php/dav/files/anna/ (no ?query or #fragment)")
    return u, notify.resolve_target(u, app.settings.notify.webhook_networks, WHAT)


def configured(acc: Account) -> bool:
    """URL, user name and password are saved."""
    return bool(acc.offsite_webdav_url and acc.offsite_webdav_user and acc.offsite_webdav_password_enc)


def where(acc: Account) -> str:
    return str(acc.offsite_webdav_url or "?")


class Dav:
    """Requests to the owner's folder over one connection to its checked address."""

    def __init__(self, app: AlarmCloud, acc: Account) -> None:
        self.acc = acc
        self.base, self.ip = check_url(app, acc.offsite_webdav_url or "")
        self.host = self.base.raw_host.decode("ascii")
        timeout = app.settings.offsite.timeout_seconds
        self.client = notify.direct_client(httpx.Timeout(timeout, connect=min(10.0, timeout)), auth=(
            acc.offsite_webdav_user or "", notify.open_account_secret(app, acc, KIND)))

    def url(self, path: str) -> httpx.URL:
        """The URL of ``path`` (relative, '/'-separated) inside the folder, as the server names it."""
        base = self.base.path if self.base.path.endswith("/") else self.base.path + "/"
        return self.base.copy_with(path=base + quote(path, safe="/"))

    def request(self, method: str, path: str, ok: tuple[int, ...], what: str, **kwargs: Any) -> httpx.Response:
        """``method`` on ``path`` at the checked address; a status outside ``ok`` as ``BucketError``."""
        target, host_header, ext = notify.pinned_request(self.url(path), self.ip)
        headers = {**host_header, "User-Agent": "alarmcloud-offsite/1", **kwargs.pop("headers", {})}
        try:
            r = self.client.request(method, target, headers=headers, extensions=ext, **kwargs)
        except httpx.TimeoutException:
            raise BucketError("timeout", f"{self.host} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise BucketError("cannot_connect", f"cannot connect to {self.host} ({type(exc).__name__})") from None
        if r.status_code not in ok:
            raise status_error(r.status_code, self.acc, what, path)
        return r

    def close(self) -> None:
        self.client.close()


def status_error(status: int, acc: Account, what: str, path: str) -> BucketError:
    """A WebDAV answer, in words."""
    if status == 401:
        return BucketError("access_denied", f"the WebDAV server refused the user name or password for "
                                            f"{acc.offsite_webdav_user!r} (Nextcloud: use an app password)")
    if status == 403:
        return BucketError("access_denied", f"the WebDAV server does not let {acc.offsite_webdav_user!r} {what} "
                                            f"{path}")
    if status in (404, 409):
        return BucketError("no_such_folder", f"the WebDAV server has no folder there (HTTP {status} to {what} "
                                             f"{path}): check the URL")
    if status == 507:
        return BucketError("bucket_error", "the WebDAV server is full (HTTP 507 Insufficient Storage)")
    if 300 <= status < 400:
        return BucketError("bucket_error", f"the WebDAV server redirects (HTTP {status}); enter the folder's own "
                                           "URL (redirects are not followed)")
    return BucketError("bucket_error", f"the WebDAV server answered HTTP {status} to {what} {path}")


@contextlib.contextmanager
def connect(app: AlarmCloud, acc: Account) -> Iterator[Dav]:
    dav = Dav(app, acc)
    try:
        yield dav
    finally:
        dav.close()


def _makedirs(dav: Dav, folder: str) -> None:
    """``MKCOL`` every folder of ``folder`` that is not there yet (405: it is)."""
    path = ""
    for part in [p for p in folder.split("/") if p]:
        path = f"{path}/{part}" if path else part
        dav.request("MKCOL", path + "/", (201, 405), "make the folder")


#: the ending of a file while it is uploaded: not ``.part`` or ``.filepart``, which Nextcloud and ownCloud refuse
#: (their own uploads use them)
UPLOADING = ".uploading"


def _put(dav: Dav, source: Any, path: str, length: int) -> None:
    """``PUT`` ``length`` bytes under a hidden name while uploading, then ``MOVE`` it over ``path``."""
    folder, _, name = path.rpartition("/")
    part = f"{folder}/.{name}{UPLOADING}" if folder else f".{name}{UPLOADING}"
    dav.request("PUT", part, (200, 201, 204), "write", content=source, headers={"Content-Length": str(length)})
    destination = str(dav.url(path))
    dav.request("MOVE", part, (201, 204), "move into place", headers={"Destination": destination,
                                                                       "Overwrite": "T"})


def _already_there(dav: Dav, path: str, side: str, size: int) -> bool:
    try:
        video = dav.request("HEAD", path, (200,), "read")
        dav.request("HEAD", side, (200,), "read")
    except BucketError:
        return False
    return video.headers.get("content-length") == str(size)


class _Files:
    """The folder as ``offsite.copy_files`` uses it."""

    def __init__(self, dav: Dav) -> None:
        self.dav = dav

    def there(self, path: str, side: str, size: int) -> bool:
        return _already_there(self.dav, path, side, size)

    def makedirs(self, folder: str) -> None:
        _makedirs(self.dav, folder)

    def put(self, source: Any, path: str, length: int) -> None:
        _put(self.dav, source, path, length)


def copy_clip(app: AlarmCloud, acc: Account, clip: Clip, cam: Camera | None, findings: list[FindingRow],
              unless_there: bool = False) -> str:
    """Copy into the folder (``offsite.copy_files``); the video's path."""
    with connect(app, acc) as dav:
        return copy_files(app, acc, clip, cam, findings, _Files(dav), unless_there)


def test_server(app: AlarmCloud, acc: Account) -> tuple[str, bool]:
    """Make the folder, write a small file and delete it again: its path, and whether the user could delete it.
    Raises ``BucketError`` or ``notify.TargetNotAllowed``."""
    folder = check_prefix(acc.offsite_prefix or "")
    path = (f"{folder}/" if folder else "") + f".alarmcloud-test-{crypto.new_token(6)}"
    with connect(app, acc) as dav:
        _makedirs(dav, folder)
        dav.request("PUT", path, (200, 201, 204), "write",
                    content=b"alarmcloud WebDAV test: this file is deleted again at once\n")
        try:
            dav.request("DELETE", path, (200, 204), "delete")
        except BucketError as exc:
            if exc.code != "access_denied":
                raise
            return path, False
    return path, True
