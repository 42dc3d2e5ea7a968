"""Secrets at rest: camera passwords are sealed with AES-GCM under a key id, and keys can rotate."""

from __future__ import annotations

import os
import stat

import pytest
from alarmcloud.crypto import SecretBox, decode_key, hash_password, load_or_create_key, token_hash, verify_password
from cryptography.exceptions import InvalidTag


def _box(current: str = "k1", **keys: bytes) -> SecretBox:
    return SecretBox(current, keys or {"k1": os.urandom(32)})


def test_secret_round_trip_never_stores_plaintext() -> None:
    box = _box()
    sealed = box.encrypt("camera-password", context="camera:7")
    assert sealed is not None and "camera-password" not in sealed
    assert box.key_id(sealed) == "k1"
    assert box.decrypt(sealed, context="camera:7") == "camera-password"
    # a fresh nonce each time: equal passwords do not give equal ciphertexts
    assert box.encrypt("camera-password", context="camera:7") != sealed


def test_ciphertext_bound_to_its_row() -> None:
    """A ciphertext copied onto another camera's row does not decrypt there."""
    box = _box()
    sealed = box.encrypt("secret", context="camera:1")
    with pytest.raises(InvalidTag):
        box.decrypt(sealed, context="camera:2")


def test_tampered_ciphertext_is_rejected() -> None:
    box = _box()
    sealed = box.encrypt("secret", context="c")
    assert sealed is not None
    kid, nonce, ct = sealed.split("$")
    flipped = ct[:-2] + ("A" if ct[-2] != "A" else "B") + ct[-1]
    with pytest.raises(InvalidTag):
        box.decrypt("$".join([kid, nonce, flipped]), context="c")


def test_key_rotation_old_ciphertexts_still_open() -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    sealed_old = _box("k1", k1=old_key).encrypt("pw", context="c")
    rotated = _box("k2", k1=old_key, k2=new_key)
    assert rotated.decrypt(sealed_old, context="c") == "pw"
    assert rotated.key_id(rotated.encrypt("pw", context="c")) == "k2"
    with pytest.raises(KeyError):
        _box("k2", k2=new_key).decrypt(sealed_old, context="c")


def test_unknown_current_key_refused() -> None:
    with pytest.raises(ValueError):
        SecretBox("k9", {"k1": os.urandom(32)})


def test_key_file_created_private_and_reused(tmp_path) -> None:
    path = tmp_path / "keys" / "secret.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key


def test_short_keys_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key("c2hvcnQ")


def test_passwords_argon2id() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong")
    assert not verify_password("not-a-hash", "correct horse")


def test_token_hash_is_stable_and_not_the_token() -> None:
    assert token_hash("abc") == token_hash("abc") != "abc"
    assert token_hash("abc") != token_hash("abd")


def test_generated_upload_secrets_fast_hash_and_legacy_argon2() -> None:
    from alarmcloud.crypto import hash_generated_secret, verify_generated_secret

    stored = hash_generated_secret("Zr4-generated-upload-password")
    assert stored.startswith("sha256:") and "Zr4" not in stored
    assert verify_generated_secret(stored, "Zr4-generated-upload-password")
    assert not verify_generated_secret(stored, "Zr4-generated-upload-passwore")
    legacy = hash_password("older-camera-password")  # rows written before generated secrets used SHA-256
    assert verify_generated_secret(legacy, "older-camera-password")
    assert not verify_generated_secret(legacy, "wrong")
