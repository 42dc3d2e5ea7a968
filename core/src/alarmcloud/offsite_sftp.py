"""Off-site copies to the owner's own SFTP server: a NAS at home, a storage box, any OpenSSH server.

The server logs in with a key of the account's own (Ed25519, made here; the owner adds its public line to
``~/.ssh/authorized_keys`` on their server), never with a password. The server's host key is trusted on the first
connection test (its fingerprint is shown to compare, or the owner enters it beforehand) and every later
connection must show the same key: a copy to a server showing another key is refused (``host_key_changed``).

The host is checked like a webhook host (``notify.resolve_target``: public addresses only unless the operator lists
a network) and resolved once: the connection goes to the checked address. Each file is written under a hidden
``.<name>.part`` name and renamed into place when complete, so a broken connection never leaves a file that looks
like a whole copy; the layout is the bucket's (``offsite.object_key``): ``<folder>/<camera>/<YYYY>/<MM>/<DD>/``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import ipaddress
import logging
import re
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from alarmcloud import crypto, notify
from alarmcloud.offsite import BucketError, check_prefix, copy_files

if TYPE_CHECKING:
    import paramiko

    from alarmcloud.app import AlarmCloud
    from alarmcloud.models import Account, Camera, Clip, FindingRow

log = logging.getLogger(__name__)
KIND = "sftp"
WHAT = "SFTP server"
DEFAULT_PORT = 22
#: a user name on the SFTP server (letters, digits, '.', '_', '-', '@'; not starting with '-')
USER_RE = re.compile(r"[A-Za-z0-9._@][A-Za-z0-9._@-]{0,63}")
#: a host name (or an IPv4 address): labels of letters, digits and '-'
HOST_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                     r"[A-Za-z0-9])?)*\.?")
#: a host key as this server records it, or as the owner may enter it: ``[<key type> ]SHA256:<43 base64 chars>``
#: (what ``ssh-keygen -lf`` prints; its bit count, comment and "(ED25519)" may come with it)
FINGERPRINT_RE = re.compile(r"SHA256:([A-Za-z0-9+/]{43})=?")
KEY_TYPE_RE = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521))")
#: what ``ssh-keygen -lf`` writes after the fingerprint, in the key types of the SSH protocol
_LF_TYPES = {"(ED25519)": "ssh-ed25519", "(RSA)": "ssh-rsa"}
#: the signature algorithms of an RSA host key (its key type is ``ssh-rsa`` whichever it signs with)
_RSA = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


# ---------------------------------------------------------------- settings


def check_host(host: str) -> str:
    """A host name or an IP address (IPv6 without brackets), lower case; raises ``ValueError``."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not HOST_RE.fullmatch(host) or host.replace(".", "").isdigit():
        raise ValueError("the SFTP server is a host name like nas.example.net or an IP address (no sftp://, "
                         "no user name, no port: the port is a field of its own)")
    return host.rstrip(".")


def check_host_key(text: str) -> str:
    """The owner's host key fingerprint as ``ssh-keygen -lf`` prints it (``256 SHA256:... root@nas (ED25519)``) or
    as this server shows it (``ssh-ed25519 SHA256:...``): stored as ``[<key type> ]SHA256:<fingerprint>``."""
    m = FINGERPRINT_RE.search(text)
    if m is None:
        raise ValueError("the host key is its SHA256 fingerprint, like SHA256:6Xr0g... as `ssh-keygen -lf "
                         "/etc/ssh/ssh_host_ed25519_key.pub` prints it on the server")
    kind = KEY_TYPE_RE.search(text)
    key_type = kind.group(1) if kind else next((t for lf, t in _LF_TYPES.items() if lf in text), None)
    bits = re.match(r"\s*(256|384|521) SHA256:", text)
    if key_type is None and "(ECDSA)" in text and bits:
        key_type = f"ecdsa-sha2-nistp{bits.group(1)}"
    return f"{key_type} SHA256:{m.group(1)}" if key_type else f"SHA256:{m.group(1)}"


def resolve(app: AlarmCloud, host: str, port: int = DEFAULT_PORT) -> str:
    """The address to connect to: the host resolved once, every address allowed by the webhook rules
    (``notify.resolve_target``). Raises ``notify.TargetNotAllowed``."""
    return notify.resolve_target(httpx.URL(scheme="http", host=host, port=port),
                                 app.settings.notify.webhook_networks, WHAT)


def configured(acc: Account) -> bool:
    """Host, user name, the account's key and the trusted host key are all there."""
    return bool(acc.offsite_sftp_host and acc.offsite_sftp_user and acc.offsite_sftp_key_enc
                and acc.offsite_sftp_host_key)


def where(acc: Account) -> str:
    """``user@host:port`` for messages."""
    return f"{acc.offsite_sftp_user or '?'}@{_host_port(acc)}"


def _host_port(acc: Account) -> str:
    host = acc.offsite_sftp_host or "?"
    return f"[{host}]:{acc.offsite_sftp_port or DEFAULT_PORT}" if ":" in host else \
        f"{host}:{acc.offsite_sftp_port or DEFAULT_PORT}"


def new_key(app: AlarmCloud, account_id: str) -> tuple[str, str]:
    """A fresh Ed25519 key for the account: its sealed private key and its public ``authorized_keys`` line."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()).decode()
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH).decode()
    sealed = notify.seal_account_secret(app, KIND, account_id, private)
    assert sealed is not None
    return sealed, f"{public} alarmcloud-offsite-{account_id[:8]}"


def _private_key(app: AlarmCloud, acc: Account) -> paramiko.PKey:
    import paramiko

    text = notify.open_account_secret(app, acc, KIND)
    if not text:
        raise BucketError("access_denied", "this account has no SFTP key; make one in the off-site settings")
    return paramiko.Ed25519Key.from_private_key(io.StringIO(text))


def fingerprint(key: paramiko.PKey) -> str:
    """``<key type> SHA256:<base64 without padding>``, as OpenSSH shows host keys."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def _matches(pinned: str, seen: str) -> bool:
    kind, _, fp = pinned.rpartition(" ")
    seen_kind, _, seen_fp = seen.rpartition(" ")
    return fp == seen_fp and (not kind or kind == seen_kind)


# ---------------------------------------------------------------- the connection


class Connection:
    """One logged-in SFTP session (``connect``); ``seen`` is the host key the server showed."""

    def __init__(self, transport: paramiko.Transport, sftp: paramiko.SFTPClient, seen: str) -> None:
        self.transport, self.sftp, self.seen = transport, sftp, seen


@contextlib.contextmanager
def connect(app: AlarmCloud, acc: Account, trust_new: bool = False) -> Iterator[Connection]:
    """Log in to the owner's server: the host checked and resolved once, the host key compared with the trusted
    one (``trust_new``: none trusted yet, any key is accepted and shown), the account's key. Raises
    ``BucketError`` (codes as in ``offsite.BucketError``, and ``host_key_changed``, ``host_key_unknown``) or
    ``notify.TargetNotAllowed``. Errors of the body pass through as they are (``remote`` turns the server's)."""
    port = acc.offsite_sftp_port or DEFAULT_PORT
    ip = resolve(app, acc.offsite_sftp_host or "", port)
    timeout = float(app.settings.offsite.timeout_seconds)
    there = _host_port(acc)
    if not acc.offsite_sftp_host_key and not trust_new:
        raise BucketError("host_key_unknown", "the SFTP server's host key is not trusted yet: run the connection "
                                              "test (it records the key) or enter its fingerprint")
    try:
        sock = socket.create_connection((ip, port), timeout=min(10.0, timeout))
    except TimeoutError:
        raise BucketError("timeout", f"{there} did not answer within {min(10.0, timeout):g} s") from None
    except OSError:
        raise BucketError("cannot_connect", f"cannot connect to {there}") from None
    sock.settimeout(timeout)
    import paramiko

    transport = paramiko.Transport(sock)
    try:
        conn = _login(app, acc, transport, timeout, there)
        try:
            yield conn
        finally:
            conn.sftp.close()
    finally:
        transport.close()


def _login(app: AlarmCloud, acc: Account, transport: paramiko.Transport, timeout: float, there: str) -> Connection:
    import paramiko

    with server_errors(acc, logging_in=True, late=f"did not answer within {timeout:g} s"):
        pinned = acc.offsite_sftp_host_key or ""
        kind = pinned.rpartition(" ")[0]
        if kind:  # the server is asked for the trusted key's type only, whatever else it holds
            opts = transport.get_security_options()
            opts.key_types = tuple(t for t in opts.key_types if t in (_RSA if kind == "ssh-rsa" else (kind,)))
        try:
            transport.start_client(timeout=timeout)
        except paramiko.SSHException as exc:
            if kind and "host key" in str(exc).lower():
                raise BucketError("host_key_changed", f"{there} no longer offers the trusted {kind} host key: if "
                                  "the server was set up again, remove the trusted key and test again") from None
            raise
        seen = fingerprint(transport.get_remote_server_key())
        if pinned and not _matches(pinned, seen):
            log.warning("sftp %s showed the host key %s, not the trusted %s", there, seen, pinned)
            raise BucketError("host_key_changed", f"{there} showed another host key ({seen}) than the trusted "
                              f"one ({pinned}): nothing was sent. If the server was set up again, compare the "
                              "new key on the server (ssh-keygen -lf), remove the trusted key and test again")
        user = acc.offsite_sftp_user or ""
        try:
            transport.auth_publickey(user, _private_key(app, acc))
        except paramiko.BadAuthenticationType as exc:
            raise BucketError("access_denied", f"{there} does not take keys for {user!r} (it allows: "
                              f"{', '.join(exc.allowed_types) or 'nothing'})") from None
        except paramiko.AuthenticationException:
            raise BucketError("access_denied", f"{there} refused this server's key for the user {user!r}: add "
                              "the public key from the off-site settings to ~/.ssh/authorized_keys of that user "
                              "on the server") from None
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
        except paramiko.SSHException:
            sftp = None
        if sftp is None:
            raise BucketError("bucket_error", f"{there} let {user!r} in but offers no SFTP")
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(timeout)
        return Connection(transport, sftp, seen)


@contextlib.contextmanager
def server_errors(acc: Account, logging_in: bool = False, late: str = "stopped answering") -> Iterator[None]:
    """The server's failures as ``BucketError``: no answer in time, a broken (or never made) SSH connection, and,
    once logged in, an SFTP answer about a file (``file_error``)."""
    import paramiko

    there = _host_port(acc)
    try:
        yield
    except BucketError:
        raise
    except TimeoutError:
        raise BucketError("timeout", f"{there} {late}") from None
    except (paramiko.SSHException, EOFError, ConnectionError) as exc:
        raise BucketError("cannot_connect", f"the SSH connection to {there} "
                          f"{'failed' if logging_in else 'broke'}: {str(exc)[:200] or type(exc).__name__}") from None
    except OSError as exc:
        if logging_in:
            raise BucketError("cannot_connect", f"the SSH connection to {there} failed: "
                              f"{str(exc)[:200] or type(exc).__name__}") from None
        raise file_error(exc, acc) from None


def remote(acc: Account, fn: Any, *args: Any) -> Any:
    """Call ``fn`` on the server: its failures (a file answer, a broken connection) as ``BucketError``."""
    with server_errors(acc):
        return fn(*args)


def file_error(exc: OSError, acc: Account) -> BucketError:
    """An SFTP answer about a file or folder, in words."""
    text = (exc.strerror or str(exc) or type(exc).__name__)[:200]
    name = f" ({exc.filename})" if exc.filename else ""
    if exc.errno == errno.EACCES or isinstance(exc, PermissionError):
        return BucketError("access_denied", f"the SFTP server does not let {acc.offsite_sftp_user!r} write "
                                            f"there{name}: {text}")
    if exc.errno == errno.ENOENT:
        return BucketError("no_such_folder", f"the SFTP server has no such folder{name}")
    return BucketError("bucket_error", f"the SFTP server answered: {text}{name}")


# ---------------------------------------------------------------- files


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    """Make every missing folder of ``folder`` (relative to the login's start folder)."""
    import stat

    path = ""
    for part in [p for p in folder.split("/") if p]:
        path = f"{path}/{part}" if path else part
        try:
            mode = sftp.stat(path).st_mode
        except FileNotFoundError:
            try:
                sftp.mkdir(path)
            except OSError:
                if not _is_dir(sftp, path):  # made meanwhile by another copy: fine
                    raise
            continue
        if mode is not None and not stat.S_ISDIR(mode):
            raise BucketError("bucket_error", f"the SFTP server has a file where the folder {path} goes")


def _is_dir(sftp: paramiko.SFTPClient, path: str) -> bool:
    import stat

    try:
        mode = sftp.stat(path).st_mode
    except OSError:
        return False
    return mode is not None and stat.S_ISDIR(mode)


def _put(sftp: paramiko.SFTPClient, source: Any, path: str, size: int) -> None:
    """Write ``source`` (a binary file object) under a hidden part name, then rename it into place."""
    folder, _, name = path.rpartition("/")
    part = f"{folder}/.{name}.part" if folder else f".{name}.part"
    sftp.putfo(source, part, file_size=size, confirm=True)
    try:
        sftp.posix_rename(part, path)  # replaces an older copy in one step (OpenSSH and most servers)
    except OSError:
        with contextlib.suppress(FileNotFoundError):  # a server without it: plain rename (not over a file)
            sftp.remove(path)
        sftp.rename(part, path)


def _already_there(sftp: paramiko.SFTPClient, path: str, side: str, size: int) -> bool:
    try:
        return sftp.stat(path).st_size == size and sftp.stat(side) is not None
    except OSError:
        return False


class _Files:
    """The logged-in SFTP session as ``offsite.copy_files`` uses it (the server's failures as ``BucketError``)."""

    def __init__(self, acc: Account, sftp: paramiko.SFTPClient) -> None:
        self.acc, self.sftp = acc, sftp

    def there(self, path: str, side: str, size: int) -> bool:
        return bool(remote(self.acc, _already_there, self.sftp, path, side, size))

    def makedirs(self, folder: str) -> None:
        remote(self.acc, _makedirs, self.sftp, folder)

    def put(self, source: Any, path: str, length: int) -> None:
        remote(self.acc, _put, self.sftp, source, path, length)


def copy_clip(app: AlarmCloud, acc: Account, clip: Clip, cam: Camera | None, findings: list[FindingRow],
              unless_there: bool = False) -> str:
    """Log in and copy (``offsite.copy_files``); the video's path."""
    with connect(app, acc) as conn:
        return copy_files(app, acc, clip, cam, findings, _Files(acc, conn.sftp), unless_there)


def test_server(app: AlarmCloud, acc: Account) -> tuple[str, bool, str]:
    """Log in, make the folder, write a small file and delete it again: its path, whether the user could delete it,
    and the host key the server showed (to be trusted when none is yet). Raises ``BucketError`` or
    ``notify.TargetNotAllowed``."""
    folder = check_prefix(acc.offsite_prefix or "")
    path = (f"{folder}/" if folder else "") + f".alarmcloud-test-{crypto.new_token(6)}"
    body = b"alarmcloud SFTP test: this file is deleted again at once\n"
    with connect(app, acc, trust_new=not acc.offsite_sftp_host_key) as conn:
        remote(acc, _makedirs, conn.sftp, folder)
        remote(acc, conn.sftp.putfo, io.BytesIO(body), path, len(body), None, True)
        try:
            remote(acc, conn.sftp.remove, path)
        except BucketError as exc:
            if exc.code != "access_denied":
                raise
            return path, False, conn.seen
        return path, True, conn.seen
