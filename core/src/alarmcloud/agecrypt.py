"""age encryption (https://age-encryption.org/v1) to one X25519 recipient, streamed: the off-site copies of an owner
who gives an age public key (``age1…``, made with ``age-keygen``) leave this server encrypted, so the bucket, the
NAS or the cloud folder holds nothing it can read; ``age -d -i key.txt clip.mp4.age > clip.mp4`` opens them. The
secret key never reaches this server.

The format, as the specification (C2SP age) has it: a text header (the version line, one ``X25519`` stanza that
wraps a random 16-byte file key for the recipient, and an HMAC of the header under a key derived from the file
key), then a 16-byte nonce and the payload in 64 KiB chunks, each sealed with ChaCha20-Poly1305 under a key derived
from the file key and the nonce; a chunk's nonce is its 11-byte big-endian counter and a last-chunk flag byte.
Only encryption is done here (the age tools, or any implementation of the specification, decrypt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: plaintext bytes per payload chunk (each gains a 16-byte tag)
CHUNK = 64 * 1024
TAG = 16
NONCE = 16
VERSION = b"age-encryption.org/v1"
#: the ending of an encrypted file's name
SUFFIX = ".age"
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# ---------------------------------------------------------------- recipients (Bech32, BIP 173)


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= _GEN[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convert(data: list[int] | bytes, frombits: int, tobits: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out = []
    maxv = (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or (acc << (tobits - bits)) & maxv:
        return None
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    five = _convert(data, 8, 5, True)
    assert five is not None
    values = _hrp_expand(hrp) + five
    mod = _polymod([*values, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in five + checksum)


def parse_recipient(text: str) -> bytes:
    """The 32-byte X25519 public key of an age recipient ``age1…``; ValueError saying what is wrong."""
    text = text.strip()
    if not text.lower().startswith("age1"):
        raise ValueError("an age public key starts with age1 (age-keygen prints it as 'Public key: age1…'; the "
                         "secret key AGE-SECRET-KEY-1… stays with you)")
    if text != text.lower() and text != text.upper():
        raise ValueError("an age public key is written in one case (age1…)")
    text = text.lower()
    data = text[4:]
    if len(text) > 90 or len(data) < 6 or any(c not in _CHARSET for c in data):
        raise ValueError("not an age public key: only the letters and digits age-keygen prints")
    values = [_CHARSET.index(c) for c in data]
    if _polymod(_hrp_expand("age") + values) != 1:
        raise ValueError("not an age public key: its checksum does not match (a character is wrong or missing)")
    key = _convert(values[:-6], 5, 8, False)
    if key is None or len(key) != 32:
        raise ValueError("not an age X25519 public key (wrong length)")
    return bytes(key)


# ---------------------------------------------------------------- encryption


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _wrapped(text: bytes) -> bytes:
    """A stanza body: lines of 64 columns, the last one shorter (empty when the text fills its last line)."""
    return b"".join(text[i:i + 64] + b"\n" for i in range(0, len(text) + 1, 64))


def _header(recipient: bytes, file_key: bytes) -> bytes:
    """The header for one X25519 recipient: version line, stanza, MAC line."""
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    if not any(shared):  # a low-order point: every such key decrypts alike (the specification forbids it)
        raise ValueError("not a usable age public key")
    wrap = _hkdf(shared, share + recipient, b"age-encryption.org/v1/X25519")
    body = ChaCha20Poly1305(wrap).encrypt(bytes(12), file_key, None)
    head = VERSION + b"\n-> X25519 " + _b64(share) + b"\n" + _wrapped(_b64(body)) + b"---"
    mac = hmac.new(_hkdf(file_key, b"", b"header"), head, hashlib.sha256).digest()
    return head + b" " + _b64(mac) + b"\n"


def _chunks(size: int) -> int:
    return max(1, -(-size // CHUNK))


class Encrypting(io.RawIOBase):
    """A readable stream of ``source`` (``size`` bytes) encrypted to ``recipient`` (its 32-byte key): header,
    nonce, sealed chunks. ``len(stream)`` is the encrypted size."""

    def __init__(self, source: BinaryIO, size: int, recipient: bytes) -> None:
        super().__init__()
        file_key = os.urandom(16)
        nonce = os.urandom(NONCE)
        self._head = _header(recipient, file_key) + nonce
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._source, self._size = source, size
        self._counter, self._read = 0, 0
        self._pending = bytearray(self._head)
        self._done = False
        self.length = len(self._head) + size + TAG * _chunks(size)
        assert self.length == encrypted_size(size)

    def __len__(self) -> int:
        return self.length

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> None:
        piece = b""
        while len(piece) < min(CHUNK, self._size - self._read):
            more = self._source.read(min(CHUNK, self._size - self._read) - len(piece))
            if not more:
                raise ValueError(f"the source ended after {self._read + len(piece)} of {self._size} bytes")
            piece += more
        self._read += len(piece)
        last = self._read >= self._size
        nonce = self._counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
        self._pending += self._aead.encrypt(nonce, piece, None)
        self._counter += 1
        self._done = last

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._pending) < n):
            self._next_chunk()
        if n < 0 or n >= len(self._pending):
            out, self._pending = bytes(self._pending), bytearray()
        else:
            out = bytes(self._pending[:n])
            del self._pending[:n]
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def __iter__(self) -> Encrypting:  # type: ignore[override]
        return self

    def __next__(self) -> bytes:
        data = self.read(CHUNK + TAG)
        if not data:
            raise StopIteration
        return data


#: the header's length for one X25519 recipient (the same for every file)
HEADER = len(_header(X25519PrivateKey.generate().public_key().public_bytes_raw(), bytes(16)))


def encrypted_size(size: int) -> int:
    """The size of ``size`` bytes encrypted: header, nonce, the bytes and a tag per chunk."""
    return HEADER + NONCE + size + TAG * _chunks(size)


def encrypt(data: bytes, recipient: bytes) -> bytes:
    """``data`` encrypted to ``recipient`` as one age file."""
    return Encrypting(io.BytesIO(data), len(data), recipient).read()
