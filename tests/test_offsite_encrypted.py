"""Off-site copies encrypted to the owner's age key (``encrypt_to``), in each kind of storage (a real S3 server,
OpenSSH ``sshd`` and WebDAV server on loopback): the storage holds only ``.age`` files, which the real ``age`` tool
opens with the owner's secret key; this server never holds that key."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alarmcloud import agecrypt, offsite
from alarmcloud.models import Account, Clip, new_id

from tests.agekeys import AgeKey, age_key  # type: ignore[import-not-found]  # noqa: F401
from tests.conftest import forget_offsite_copy  # type: ignore[import-not-found]
from tests.s3server import ACCESS_KEY, REGION, MotoS3, s3  # type: ignore[import-not-found]  # noqa: F401
from tests.sftpserver import sshd  # type: ignore[import-not-found]  # noqa: F401
from tests.test_offsite_prune import (  # type: ignore[import-not-found]  # noqa: F401
    FOLDER,
    Destination,
    _path,
    _switch_on,
    _wait_sent,
    dest,
    settings,
)
from tests.webdavserver import webdav  # type: ignore[import-not-found]  # noqa: F401


def test_copies_leave_encrypted_and_open_with_the_owners_key(api: Any, server: Any, dest: Destination,  # noqa: F811
                                                              age_key: AgeKey, clip: Path,  # noqa: F811
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a = api().register(f"sealed-{dest.kind}@example.com")
    state = _switch_on(a, dest, encrypt_to=age_key.public, keep_days=30)
    assert state["encrypt_to"] == age_key.public
    ev = a.upload_analysed(a.upload_credentials(a.camera("Porch")["id"]), clip)
    _wait_sent(server.core, a.id, 1)
    video = _path(ev, "Porch") + ".age"
    side = video[:-len(".mp4.age")] + ".json.age"
    assert dest.files() == sorted([video, side])  # nothing in clear beside them
    sealed = dest.read(video)
    assert sealed.startswith(b"age-encryption.org/v1\n-> X25519 ")
    assert age_key.decrypt(sealed) == clip.read_bytes()
    doc = json.loads(age_key.decrypt(dest.read(side)))
    assert doc["clip_id"] == ev["id"] and doc["verdict"] == "alarm" and doc["video"] == video.rsplit("/", 1)[1]
    assert b"Porch" not in dest.read(side) and b"alarm" not in dest.read(side)
    shown = a.get(f"/api/v1/events/{ev['id']}").json()["offsite"]
    assert shown["state"] == "copied" and shown["encrypted"] is True
    assert "encrypted to your age key" in a.get(f"/events/{ev['id']}").text

    # copied again by a backfill: the copy there is complete (its encrypted size), so it is left as it is
    forget_offsite_copy(server.core, ev["id"])
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 1
    _wait_sent(server.core, a.id, 2)
    assert dest.read(video) == sealed  # a new upload would differ (a new file key every time)

    # old encrypted copies are deleted like plain ones
    old = f"Porch/2020/01/05/20200105T101010Z-{'a' * 32}"
    for rel in (old + ".mp4.age", old + ".json.age", f"Porch/2020/01/05/.20200105T101010Z-{'a' * 32}.mp4.age.part"):
        dest.put(rel, b"x")
    r = a.post("/api/v1/me/offsite/prune")
    assert r.status_code == 200 and r.json()["result"]["deleted_files"] == 3, r.text
    assert dest.files() == sorted([video, side])

    # back to plain copies: the copies are other files, so "Copy existing clips" makes them
    state = a.patch("/api/v1/me/offsite", json={"encrypt_to": None}).json()
    assert state["encrypt_to"] is None
    assert a.post("/api/v1/me/offsite/backfill").json()["queued"] == 1
    _wait_sent(server.core, a.id, 3)
    assert dest.read(_path(ev, "Porch")) == clip.read_bytes()
    assert age_key.identity.read_text().split("AGE-SECRET-KEY-")[1][:20] not in caplog.text


def test_bad_keys_get_a_precise_400_and_store_nothing(api: Any, server: Any, age_key: AgeKey) -> None:  # noqa: F811
    a = api().register("sealed-bad@example.com")
    before = a.get("/api/v1/me/offsite").json()
    secret = next(line for line in age_key.identity.read_text().splitlines() if line.startswith("AGE-SECRET"))
    for value, says in [(secret, "the secret key AGE-SECRET-KEY-1… stays with you"),
                        (age_key.public[:-2], "checksum"), ("ssh-ed25519 AAAA", "starts with age1"), (5, "type str")]:
        r = a.patch("/api/v1/me/offsite", json={"encrypt_to": value, "enabled": False})
        assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_field", "invalid_type"), r.text
        assert says in r.json()["error"]["message"] and secret not in r.text, (value, r.text)
    assert a.get("/api/v1/me/offsite").json() == before
    # written in capitals (as some tools print it): stored as age-keygen prints it
    r = a.patch("/api/v1/me/offsite", json={"encrypt_to": age_key.public.upper()})
    assert r.status_code == 200 and r.json()["encrypt_to"] == age_key.public, r.text


def test_a_large_clip_goes_up_encrypted_in_parts(server: Any, s3: MotoS3, age_key: AgeKey,  # noqa: F811
                                                 tmp_path: Path) -> None:
    core = server.core
    bucket = s3.new_bucket()
    acc = Account(id=new_id(), email="sealed-big@example.com", password_hash="x", offsite_enabled=True,
                  offsite_endpoint=s3.endpoint, offsite_region=REGION, offsite_bucket=bucket,
                  offsite_access_key_id=ACCESS_KEY, offsite_prefix=FOLDER, offsite_age_recipient=age_key.public)
    acc.offsite_secret_key_enc = offsite.seal_secret(core, acc.id, "alarmcloud-test-secret")
    big = tmp_path / "big.mp4"
    data = os.urandom(offsite.PART_SIZE + 3 * agecrypt.CHUNK + 5)  # more than one part
    big.write_bytes(data)
    core.blobs.put_file("sealed/big.mp4", big)
    clip = Clip(id=new_id(), account_id=acc.id, camera_id="cam", series_id="s", blob_key="sealed/big.mp4",
                size_bytes=len(data), status="done", verdict="alarm", started_at=datetime.now(UTC) - timedelta(hours=1))
    key = offsite.copy_clip(core, acc, offsite.open_secret(core, acc), clip, None, [])
    assert key.endswith(".mp4.age")
    sealed = s3.read(bucket, key)
    assert len(sealed) == agecrypt.encrypted_size(len(data)) and age_key.decrypt(sealed) == data
