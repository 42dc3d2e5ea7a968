"""age encryption (``agecrypt``): what it writes opens with the real ``age`` tool, at every chunk boundary, read in
any piece size; recipients are checked like the age tools check them."""

from __future__ import annotations

import io
import os

import pytest
from alarmcloud import agecrypt

from tests.agekeys import AgeKey, age_key  # type: ignore[import-not-found]  # noqa: F401


@pytest.mark.parametrize("size", [0, 1, 1000, agecrypt.CHUNK - 1, agecrypt.CHUNK, agecrypt.CHUNK + 1,
                                  3 * agecrypt.CHUNK, 3 * agecrypt.CHUNK + 17])
def test_what_is_encrypted_opens_with_the_age_tool(age_key: AgeKey, size: int) -> None:  # noqa: F811
    key = agecrypt.parse_recipient(age_key.public)
    data = os.urandom(size)
    sealed = agecrypt.encrypt(data, key)
    assert len(sealed) == agecrypt.encrypted_size(size)
    assert age_key.decrypt(sealed) == data
    assert data[:64] not in sealed[agecrypt.HEADER:] or size < 16  # nothing of the clip in clear
    stream = agecrypt.Encrypting(io.BytesIO(data), size, key)  # as a copy reads it: in pieces of any size
    pieces = []
    while piece := stream.read(7777):
        pieces.append(piece)
    assert len(b"".join(pieces)) == len(stream) and age_key.decrypt(b"".join(pieces)) == data
    assert b"".join(agecrypt.Encrypting(io.BytesIO(data), size, key)) != sealed  # a new file key every time


def test_a_source_shorter_than_said_is_refused(age_key: AgeKey) -> None:  # noqa: F811
    stream = agecrypt.Encrypting(io.BytesIO(b"x" * 10), 20, agecrypt.parse_recipient(age_key.public))
    with pytest.raises(ValueError, match="ended after 10 of 20"):
        stream.read()


def test_recipients_are_checked(age_key: AgeKey) -> None:  # noqa: F811
    key = agecrypt.parse_recipient(age_key.public)
    assert agecrypt.bech32_encode("age", key) == age_key.public
    assert agecrypt.parse_recipient(age_key.public.upper()) == key  # one case, either
    secret = next(line for line in age_key.identity.read_text().splitlines() if line.startswith("AGE-SECRET"))
    wrong = age_key.public[:-1] + ("q" if age_key.public[-1] != "q" else "p")
    for text, says in [(secret, "starts with age1"), ("age1", "only the letters"), (wrong, "checksum"),
                       (age_key.public[:10] + age_key.public[10:].upper(), "one case"),
                       ("age1" + "q" * 58, "checksum"), ("age1" + "b" * 58, "only the letters"), ("ssh-ed25519 AAAAC3Nza", "starts with age1"),
                       (agecrypt.bech32_encode("age", key[:20]), "wrong length")]:
        with pytest.raises(ValueError, match=says):
            agecrypt.parse_recipient(text)
