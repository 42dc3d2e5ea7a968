"""Key rotation: ``alarmcloud keys rotate`` re-encrypts every stored secret under the current key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alarmcloud import crypto, db
from alarmcloud.cli import main
from alarmcloud.config import load_settings
from alarmcloud.models import Account, Camera, Webhook
from click.testing import CliRunner
from sqlmodel import select

TELEGRAM_TOKEN = "7123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
OFFSITE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRETS = {"host": "192.168.1.20", "p2p_id": "INSTAR-P2P-4711", "username": "camuser", "password": "Sup3r-Secret"}


def _stored(data: Path) -> tuple[dict[str, str], str]:
    """A camera with every secret and a webhook, written with the deployment's default key (the key file)."""
    st = load_settings(None, data_dir=data)
    db.migrate(st.db_url)
    box = crypto.secret_box(st)
    database = db.Database(st.db_url)
    with database.session() as s:
        acc = Account(email="keys@example.com", password_hash="x")
        s.add(acc)
        s.flush()
        acc.notify_push_token_enc = box.encrypt("tk_ntfy_token", f"push:{acc.id}")
        acc.notify_telegram_token_enc = box.encrypt(TELEGRAM_TOKEN, f"telegram:{acc.id}")
        acc.offsite_secret_key_enc = box.encrypt(OFFSITE_SECRET, f"offsite:{acc.id}")
        cam = Camera(account_id=acc.id, name="Cellar", brand="instar", model="IN-9008 Full HD")
        for name, value in SECRETS.items():
            setattr(cam, f"{name}_enc", box.encrypt(value, f"camera:{cam.id}:{name}"))
        hook = Webhook(account_id=acc.id, url="https://example.com/h", secret="")
        hook.secret = box.encrypt("whsec_signing", f"webhook:{hook.id}") or ""
        legacy = Webhook(account_id=acc.id, url="https://example.com/old", secret="whsec_plain_legacy")
        s.add_all([cam, hook, legacy])
        s.commit()
        ids = {"camera": cam.id, "hook": hook.id, "legacy": legacy.id}
    database.dispose()
    return ids, (data / "secret.key").read_text().strip()


def _rows(data: Path) -> tuple[Camera, list[Webhook]]:
    database = db.Database(load_settings(None, data_dir=data).db_url)
    with database.session() as s:
        cam = s.exec(select(Camera)).one()
        hooks = list(s.exec(select(Webhook)).all())
    database.dispose()
    return cam, hooks


def test_rotate_reencrypts_everything_under_the_new_key(tmp_path: Path, monkeypatch: Any) -> None:
    data = tmp_path / "data"
    ids, old_key = _stored(data)
    runner = CliRunner()
    new_key = runner.invoke(main, ["keys", "generate"]).output.strip()
    assert len(crypto.decode_key(new_key)) == 32
    for var in ("ALARMCLOUD_SECRET_KEY", "ALARMCLOUD_SECRET_KEY_ID", "ALARMCLOUD_OLD_SECRET_KEYS"):
        monkeypatch.delenv(var, raising=False)
    env = {"ALARMCLOUD_SECRET_KEY": new_key, "ALARMCLOUD_SECRET_KEY_ID": "k2"}
    before = _rows(data)[0].password_enc

    # without the previous key configured nothing changes and the operator is told which id is missing
    r = runner.invoke(main, ["keys", "rotate", "--data-dir", str(data)], env=env)
    assert r.exit_code != 0 and "k1" in r.output and "Nothing was changed" in r.output
    assert _rows(data)[0].password_enc == before

    env["ALARMCLOUD_OLD_SECRET_KEYS"] = json.dumps({"k1": old_key})
    r = runner.invoke(main, ["keys", "rotate", "--data-dir", str(data), "--dry-run"], env=env)
    assert r.exit_code == 0 and "would re-encrypt 9 secrets under k2 (8 from k1, 1 from unencrypted)" in r.output
    assert _rows(data)[0].password_enc == before

    r = runner.invoke(main, ["keys", "rotate", "--data-dir", str(data)], env=env)
    assert r.exit_code == 0 and "re-encrypted 9 secrets under k2" in r.output, r.output
    cam, hooks = _rows(data)
    only_new = crypto.SecretBox("k2", {"k2": crypto.decode_key(new_key)})  # the old key can now be dropped
    for name, value in SECRETS.items():
        stored = getattr(cam, f"{name}_enc")
        assert stored.startswith("k2$") and value not in stored
        assert only_new.decrypt(stored, f"camera:{cam.id}:{name}") == value
    secrets = {h.id: only_new.decrypt(h.secret, f"webhook:{h.id}") for h in hooks}
    assert secrets == {ids["hook"]: "whsec_signing", ids["legacy"]: "whsec_plain_legacy"}
    database = db.Database(load_settings(None, data_dir=data).db_url)
    with database.session() as s:
        acc = s.exec(select(Account)).one()
        assert only_new.decrypt(acc.notify_push_token_enc, f"push:{acc.id}") == "tk_ntfy_token"
        assert only_new.decrypt(acc.notify_telegram_token_enc, f"telegram:{acc.id}") == TELEGRAM_TOKEN
        assert only_new.decrypt(acc.offsite_secret_key_enc, f"offsite:{acc.id}") == OFFSITE_SECRET
        # no encrypted column of any table is left under the old key (a new *_enc column must be rotated too)
        from sqlalchemy import text
        from sqlmodel import SQLModel

        for table in SQLModel.metadata.sorted_tables:
            for col in [c.name for c in table.columns if c.name.endswith("_enc")]:
                for (value,) in s.exec(text(f'SELECT "{col}" FROM "{table.name}"')).all():  # type: ignore[call-overload]
                    assert value is None or value.startswith("k2$"), (table.name, col)
    database.dispose()
    r = runner.invoke(main, ["keys", "rotate", "--data-dir", str(data)], env=env)
    assert "re-encrypted 0 secrets" in r.output  # idempotent


def test_secret_box_from_settings_prefers_the_configured_current_key(tmp_path: Path) -> None:
    key = crypto.generate_key()
    st = load_settings(None, data_dir=tmp_path, secret_key=key, secret_key_id="k2",
                       old_secret_keys={"k2": crypto.generate_key()})
    box = crypto.secret_box(st)
    stored = box.encrypt("x", "c")
    assert stored is not None and stored.startswith("k2$")
    assert crypto.SecretBox("k2", {"k2": crypto.decode_key(key)}).decrypt(stored, "c") == "x"
    assert not (tmp_path / "secret.key").exists()  # a configured key writes no key file

