"""Secrets at rest: AES-GCM for camera credentials and TOTP secrets, argon2id for passwords, SHA-256 for tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

T = TypeVar("T")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = _hasher.hash("timing-equaliser")

#: at most one argon2 computation per CPU at a time: each takes ~64 MiB, so a login flood cannot exhaust memory
_HASH_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)


def _slotted(fn: Callable[..., T], *args: Any) -> T:
    with _HASH_SLOTS:
        return fn(*args)


def verify_password_limited(stored: str, password: str) -> bool:
    """``verify_password`` for code already in a worker thread, under the same one-hash-per-CPU limit."""
    return _slotted(verify_password, stored, password)


#: prefix of secrets the server generated itself (>= 128 bits of randomness): SHA-256 is enough, argon2 would only
#: cost memory and CPU on every camera upload
GENERATED_PREFIX = "sha256:"


def hash_generated_secret(secret: str) -> str:
    return GENERATED_PREFIX + token_hash(secret)


def verify_generated_secret(stored: str, secret: str) -> bool:
    """Check a secret stored by ``hash_generated_secret`` (or, for rows from older versions, by argon2id)."""
    if stored.startswith(GENERATED_PREFIX):
        return constant_eq(stored, hash_generated_secret(secret))
    return verify_password_limited(stored, secret)


async def hash_password_async(password: str) -> str:
    """``hash_password`` in a worker thread, so the event loop keeps serving while argon2 runs."""
    return await anyio.to_thread.run_sync(_slotted, hash_password, password)


async def verify_password_async(stored: str | None, password: str) -> bool:
    """``verify_password`` off the event loop; ``stored=None`` spends the same time and returns False."""
    if stored is None:
        await anyio.to_thread.run_sync(_slotted, burn_password_check, password)
        return False
    return await anyio.to_thread.run_sync(_slotted, verify_password, stored, password)


def burn_password_check(password: str) -> None:
    """Spend the same time as a real check, so unknown e-mails cannot be told apart by timing."""
    verify_password(_DUMMY_HASH, password)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """Tokens are high-entropy: a fast hash is enough and allows lookup by hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class SecretBox:
    """AES-256-GCM with a key id in every ciphertext so keys can rotate: ``kid$nonce$ciphertext`` (base64)."""

    def __init__(self, current_id: str, keys: dict[str, bytes]) -> None:
        if current_id not in keys:
            raise ValueError("the current key id has no key")
        self.current_id = current_id
        self._keys = {k: AESGCM(v) for k, v in keys.items()}

    def encrypt(self, plaintext: str | None, context: str = "") -> str | None:
        if plaintext is None or plaintext == "":
            return None
        nonce = os.urandom(12)
        ct = self._keys[self.current_id].encrypt(nonce, plaintext.encode(), context.encode())
        return "$".join([self.current_id, _b64(nonce), _b64(ct)])

    def decrypt(self, stored: str | None, context: str = "") -> str | None:
        if not stored:
            return None
        kid, nonce, ct = stored.split("$")
        return self._keys[kid].decrypt(_unb64(nonce), _unb64(ct), context.encode()).decode()

    def key_id(self, stored: str | None) -> str | None:
        return stored.split("$", 1)[0] if stored else None


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_or_create_key(path: Path) -> bytes:
    """The embedded default's key file (0600), created on first start."""
    if path.exists():
        return _unb64(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(_b64(key))
    return key


def generate_key() -> str:
    """A new random AES-256 key, base64 as ``secret_key`` expects it."""
    return _b64(AESGCM.generate_key(bit_length=256))


def decode_key(value: str) -> bytes:
    key = _unb64(value.strip())
    if len(key) != 32:
        raise ValueError("secret keys must be 32 bytes, base64-encoded")
    return key


def secret_box(settings: Any) -> SecretBox:
    """The deployment's box: ``secret_key`` (or the key file in ``data_dir``) as current, ``old_secret_keys``."""
    current = (decode_key(settings.secret_key.get_secret_value()) if settings.secret_key
               else load_or_create_key(settings.data_dir / "secret.key"))
    keys = {k: decode_key(v.get_secret_value()) for k, v in settings.old_secret_keys.items()}
    keys[settings.secret_key_id] = current
    return SecretBox(settings.secret_key_id, keys)


class MissingKeys(Exception):
    """Stored secrets use key ids the settings do not hold."""


def _stored_secrets(s: Any) -> list[tuple[Any, str, str]]:
    """Every encrypted column value: (row, attribute, AES-GCM context)."""
    from sqlmodel import select

    from alarmcloud.models import ACCOUNT_SECRETS, Account, Camera, TwoFactor, Webhook

    out: list[tuple[Any, str, str]] = []
    for cam in s.exec(select(Camera)).all():
        for name in ("host", "p2p_id", "username", "password"):
            if getattr(cam, f"{name}_enc"):
                out.append((cam, f"{name}_enc", f"camera:{cam.id}:{name}"))
    for hook in s.exec(select(Webhook)).all():
        out.append((hook, "secret", f"webhook:{hook.id}"))
    for tf in s.exec(select(TwoFactor)).all():  # TOTP secrets of two-step verification
        out.append((tf, "secret_enc", f"totp:{tf.account_id}"))
    for acc in s.exec(select(Account)).all():  # a person's ntfy access token and Telegram bot token
        for channel, attr in ACCOUNT_SECRETS.items():
            if getattr(acc, attr):
                out.append((acc, attr, f"{channel}:{acc.id}"))
    return out


def rotate_stored_secrets(db: Any, box: SecretBox, dry_run: bool = False) -> dict[str, int]:
    """Re-encrypt every stored secret under the current key, in one transaction; counts per former key id.

    Raises ``MissingKeys`` (nothing changed) when some ciphertext uses a key id that is not configured.
    """
    counts: dict[str, int] = {}
    with db.session() as s:
        items = _stored_secrets(s)
        missing = sorted({kid for row, attr, _ in items if (kid := _kid(getattr(row, attr))) and kid not in box._keys})
        if missing:
            raise MissingKeys(", ".join(missing))
        for row, attr, context in items:
            stored = getattr(row, attr)
            kid = _kid(stored)
            if kid == box.current_id:
                continue
            # webhook secrets written before they were encrypted are sealed now as well
            plain = box.decrypt(stored, context) if kid else stored
            counts[kid or "unencrypted"] = counts.get(kid or "unencrypted", 0) + 1
            setattr(row, attr, box.encrypt(plain, context))
            s.add(row)
        if dry_run:
            s.rollback()
        else:
            s.commit()
    return counts


def _kid(stored: str | None) -> str | None:
    """The key id of a ``kid$nonce$ciphertext`` value (None for a value that is not one)."""
    return stored.split("$", 1)[0] if stored and stored.count("$") == 2 else None
