"""Two-step verification (TOTP, RFC 6238): enrolment, login with a second step, recovery codes, switching off."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from alarmcloud import crypto, db, twofactor
from alarmcloud.cli import main
from alarmcloud.config import load_settings
from alarmcloud.models import Account, TwoFactor
from alarmcloud.testing import LiveServer
from click.testing import CliRunner
from sqlmodel import select

Api = Any
PASSWORD = "correct horse battery staple"  # what the shared Api client registers with


def _previous_code(secret: str) -> str:
    """The previous step's code, not taken in the last 5 s of a step (by the time the server checked it, it would be
    two steps old: outside the window)."""
    left = twofactor.STEP - time.time() % twofactor.STEP
    if left < 5:
        time.sleep(left + 0.1)
    return twofactor.totp(secret, time.time() - twofactor.STEP)


def _enable(a: Api) -> tuple[str, list[str]]:
    """Switch 2FA on for ``a``: returns the secret and the recovery codes. Confirms with the previous step's code so
    that the current step's code is still unused for the test that follows."""
    r = a.post("/api/v1/me/2fa")
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    r = a.post("/api/v1/me/2fa/confirm", json={"code": _previous_code(secret), "password": PASSWORD})
    assert r.status_code == 200, r.text
    return secret, r.json()["recovery_codes"]


def _login(server: LiveServer, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/auth/login", json={"email": email, "password": password})


def _second(server: LiveServer, pending: str, code: str) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/auth/login/second-factor", json={"pending_token": pending, "code": code})


def test_rfc6238_reference_values() -> None:
    """The SHA-1 test vectors of RFC 6238 appendix B (8 digits), and the 6-digit codes they truncate to."""
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    for t, want in [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")]:
        assert twofactor.hotp(secret, t // 30, digits=8) == want
        assert twofactor.totp(secret, t) == want[-6:]
    assert twofactor.matching_step(secret, "287082", now=59 + 30) == 1  # one step late still passes
    assert twofactor.matching_step(secret, "287082", now=59 + 60) is None  # two steps late does not
    assert twofactor.matching_step(secret, "287082", after=1, now=59) is None  # an already used step does not


def test_enrol_confirm_and_login_needs_the_code(api: Any, server: LiveServer) -> None:
    a = api().register("tf@example.com")
    assert a.get("/api/v1/me/2fa").json() == {"enabled": False, "pending": False, "recovery_codes_left": 0}
    r = a.post("/api/v1/me/2fa")
    assert r.status_code == 201
    body = r.json()
    secret = body["secret"]
    assert body["otpauth_uri"].startswith("otpauth://totp/alarmcloud:tf@example.com?secret=" + secret)
    assert body["qr_svg"].startswith("<svg") and "<path" in body["qr_svg"]
    # not on before a first code confirms it: the password alone still logs in
    assert a.get("/api/v1/me/2fa").json()["pending"] is True
    assert _login(server, "tf@example.com").status_code == 200
    wrong = "000000" if twofactor.totp(secret) != "000000" else "111111"
    r = a.post("/api/v1/me/2fa/confirm", json={"code": wrong, "password": PASSWORD})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code"
    # a stolen session alone cannot switch it on (and lock the owner out): the password is asked too
    r = a.post("/api/v1/me/2fa/confirm", json={"code": twofactor.totp(secret, time.time() - 30)})
    assert r.status_code == 400 and a.get("/api/v1/me/2fa").json()["enabled"] is False
    r = a.post("/api/v1/me/2fa/confirm", json={"code": _previous_code(secret), "password": "not the password"})
    assert r.status_code == 401 and a.get("/api/v1/me/2fa").json()["enabled"] is False
    r = a.post("/api/v1/me/2fa/confirm", json={"code": _previous_code(secret), "password": PASSWORD})
    assert r.status_code == 200
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert a.get("/api/v1/me/2fa").json() == {"enabled": True, "pending": False, "recovery_codes_left": 10}
    assert a.post("/api/v1/me/2fa").status_code == 409  # no silent re-enrolment while on

    r = _login(server, "tf@example.com")
    assert r.status_code == 401 and r.json()["error"]["code"] == "second_factor_required"
    assert "ac_session" not in r.cookies and "csrf_token" not in r.json()
    pending = r.json()["pending_token"]
    code = twofactor.totp(secret)
    r = _second(server, pending, code)
    assert r.status_code == 200, r.text
    assert r.cookies.get("ac_session") and r.json()["email"] == "tf@example.com"
    me = httpx.get(server.url + "/api/v1/me", cookies={"ac_session": r.cookies["ac_session"]})
    assert me.status_code == 200 and me.json()["email"] == "tf@example.com"

    # the same code again is refused, even with a fresh pending login (and still inside its window if the 30 s step
    # has just turned over)
    pending = _login(server, "tf@example.com").json()["pending_token"]
    r = _second(server, pending, code)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_code"
    # a forged or tampered pending token is refused
    r = _second(server, pending[:-4] + "AAAA", twofactor.totp(secret, time.time() + 30))
    assert r.status_code == 401 and r.json()["error"]["code"] == "login_expired"


def test_switching_on_ends_the_other_sessions(api: Any, server: LiveServer) -> None:
    a = api().register("sessions@example.com")
    elsewhere = api().login("sessions@example.com")  # e.g. someone who had learnt the password
    assert elsewhere.get("/api/v1/me").status_code == 200
    _enable(a)
    assert elsewhere.get("/api/v1/me").status_code == 401
    assert a.get("/api/v1/me").status_code == 200  # the session that switched it on stays


def test_recovery_code_works_once(api: Any, server: LiveServer) -> None:
    a = api().register("rc@example.com")
    _, codes = _enable(a)
    pending = _login(server, "rc@example.com").json()["pending_token"]
    r = _second(server, pending, codes[3].upper().replace("-", " "))  # typed loosely
    assert r.status_code == 200
    assert a.get("/api/v1/me/2fa").json()["recovery_codes_left"] == 9
    pending = _login(server, "rc@example.com").json()["pending_token"]
    r = _second(server, pending, codes[3])
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_code"


def test_wrong_codes_count_against_the_login_rate_limit(api: Any, server: LiveServer) -> None:
    a = api().register("rl@example.com")
    secret, _ = _enable(a)
    attempts = server.core.settings.login_attempts  # type: ignore[attr-defined]
    right = twofactor.totp(secret)
    wrong = "123456" if right != "123456" else "654321"
    statuses = []
    for _ in range(attempts + 1):
        # a right password each time must not clear the count of wrong codes
        pending = _login(server, "rl@example.com").json().get("pending_token")
        statuses.append(_second(server, pending, wrong).status_code if pending else 429)
    assert statuses[:attempts] == [401] * attempts and statuses[attempts] == 429
    r = _login(server, "rl@example.com")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_disable_needs_password_and_code(api: Any, server: LiveServer) -> None:
    a = api().register("off@example.com")
    secret, codes = _enable(a)
    r = a.post("/api/v1/me/2fa/disable", json={"password": "wrong password!", "code": twofactor.totp(secret)})
    assert r.status_code == 401
    r = a.post("/api/v1/me/2fa/disable", json={"password": PASSWORD, "code": "000000"
                                               if twofactor.totp(secret) != "000000" else "111111"})
    assert r.status_code == 400 and a.get("/api/v1/me/2fa").json()["enabled"] is True
    r = a.post("/api/v1/me/2fa/disable", json={"password": PASSWORD, "code": twofactor.totp(secret)})
    assert r.status_code == 204
    assert a.get("/api/v1/me/2fa").json() == {"enabled": False, "pending": False, "recovery_codes_left": 0}
    assert _login(server, "off@example.com").status_code == 200
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        assert s.get(TwoFactor, a.id) is None
    # a recovery code also switches it off (phone lost, codes kept)
    _, codes = _enable(a)
    assert a.post("/api/v1/me/2fa/disable", json={"password": PASSWORD, "code": codes[0]}).status_code == 204


def test_password_email_and_deletion_need_a_code_too(api: Any, server: LiveServer) -> None:
    a = api().register("sudo@example.com")
    secret, codes = _enable(a)
    change = {"current_password": PASSWORD, "password": "a brand new password"}
    r = a.patch("/api/v1/me", json=change)  # the password alone is not enough any more
    assert r.status_code == 403 and r.json()["error"]["code"] == "second_factor_required"
    r = a.patch("/api/v1/me", json={**change, "code": "000000" if twofactor.totp(secret) != "000000" else "111111"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_code"
    r = a.patch("/api/v1/me", json={"current_password": PASSWORD, "email": "new-sudo@example.com"})
    assert r.status_code == 403
    assert _login(server, "sudo@example.com").status_code == 401  # unchanged: still password + second step
    assert a.patch("/api/v1/me", json={**change, "code": twofactor.totp(secret)}).status_code == 200
    r = a.delete("/api/v1/me", json={"password": "a brand new password"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "second_factor_required"
    assert a.get("/api/v1/me").status_code == 200
    assert a.delete("/api/v1/me", json={"password": "a brand new password", "code": codes[0]}).status_code == 200
    assert a.get("/api/v1/me").status_code == 401


def test_api_tokens_keep_working(api: Any, server: LiveServer) -> None:
    a = api().register("tok@example.com")
    token = a.post("/api/v1/tokens", json={"name": "script"}).json()["token"]
    _enable(a)
    r = httpx.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["email"] == "tok@example.com"


def test_secret_is_not_stored_in_clear(api: Any, server: LiveServer, settings: Any) -> None:
    a = api().register("clear@example.com")
    secret, codes = _enable(a)
    dump = "\n".join(sqlite3.connect(settings.db_url.removeprefix("sqlite:///")).iterdump())
    assert "two_factor" in dump and "recovery_codes" in dump
    assert secret not in dump and secret.lower() not in dump
    for c in codes:
        assert c not in dump and c.replace("-", "") not in dump
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        row = s.get(TwoFactor, a.id)
        assert row is not None and row.secret_enc.startswith(server.core.secret_box.current_id + "$")  # type: ignore[attr-defined]


def test_export_says_whether_it_is_on_but_never_the_secret(api: Any, server: LiveServer) -> None:
    from alarmcloud.privacy_export import account_data

    a = api().register("exp@example.com")
    secret, codes = _enable(a)
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        data = account_data(s, a.id)
    text = json.dumps(data)
    assert data["two_factor"][0]["enabled_at"] and len(data["recovery_codes"]) == 10
    assert secret not in text and "secret_enc" not in text and "code_hash" not in text
    assert not any(c in text for c in codes)


def test_erasure_removes_the_second_factor(api: Any, server: LiveServer) -> None:
    from alarmcloud.models import RecoveryCode

    a = api().register("gone@example.com")
    _, codes = _enable(a)
    assert a.delete("/api/v1/me", json={"password": PASSWORD, "code": codes[0]}).status_code == 200
    with server.core.db.session() as s:  # type: ignore[attr-defined]
        assert s.get(TwoFactor, a.id) is None
        assert s.exec(select(RecoveryCode).where(RecoveryCode.account_id == a.id)).all() == []


def test_operator_resets_2fa_from_the_cli(tmp_path: Path, monkeypatch: Any) -> None:
    for var in ("ALARMCLOUD_SECRET_KEY", "ALARMCLOUD_SECRET_KEY_ID", "ALARMCLOUD_OLD_SECRET_KEYS"):
        monkeypatch.delenv(var, raising=False)
    data = tmp_path / "data"
    account_id, _ = _stored_2fa(data)
    runner = CliRunner()
    r = runner.invoke(main, ["users", "reset-2fa", "locked@example.com", "--data-dir", str(data)])
    assert r.exit_code == 0 and "switched off" in r.output, r.output
    with _db(data).session() as s:
        assert s.get(TwoFactor, account_id) is None
    r = runner.invoke(main, ["users", "reset-2fa", "locked@example.com", "--data-dir", str(data)])
    assert r.exit_code == 0 and "nothing changed" in r.output
    assert runner.invoke(main, ["users", "reset-2fa", "nobody@example.com", "--data-dir", str(data)]).exit_code != 0
    # reset-password can switch it off in the same step
    account_id, _ = _stored_2fa(data, "locked2@example.com")
    r = runner.invoke(main, ["users", "reset-password", "locked2@example.com", "--password", "new password 123",
                             "--reset-2fa", "--data-dir", str(data)])
    assert r.exit_code == 0 and "two-step verification switched off" in " ".join(r.output.split()), r.output
    with _db(data).session() as s:
        assert s.get(TwoFactor, account_id) is None


def test_key_rotation_reencrypts_the_totp_secret(tmp_path: Path, monkeypatch: Any) -> None:
    for var in ("ALARMCLOUD_SECRET_KEY", "ALARMCLOUD_SECRET_KEY_ID", "ALARMCLOUD_OLD_SECRET_KEYS"):
        monkeypatch.delenv(var, raising=False)
    data = tmp_path / "data"
    account_id, secret = _stored_2fa(data)
    old_key = (data / "secret.key").read_text().strip()
    runner = CliRunner()
    new_key = crypto.generate_key()
    env = {"ALARMCLOUD_SECRET_KEY": new_key, "ALARMCLOUD_SECRET_KEY_ID": "k2",
           "ALARMCLOUD_OLD_SECRET_KEYS": json.dumps({"k1": old_key})}
    r = runner.invoke(main, ["keys", "rotate", "--data-dir", str(data)], env=env)
    assert r.exit_code == 0 and "re-encrypted 1 secrets under k2 (1 from k1)" in r.output, r.output
    with _db(data).session() as s:
        row = s.get(TwoFactor, account_id)
        assert row is not None and row.secret_enc.startswith("k2$")
    only_new = crypto.SecretBox("k2", {"k2": crypto.decode_key(new_key)})
    assert only_new.decrypt(row.secret_enc, f"totp:{account_id}") == secret


def _db(data: Path) -> db.Database:
    return db.Database(load_settings(None, data_dir=data).db_url)


def _stored_2fa(data: Path, email: str = "locked@example.com") -> tuple[str, str]:
    """An account with 2FA on, written with the deployment's default key."""
    st = load_settings(None, data_dir=data)
    db.migrate(st.db_url)
    box = crypto.secret_box(st)
    secret = twofactor.new_secret()
    with _db(data).session() as s:
        acc = Account(email=email, password_hash=crypto.hash_password(PASSWORD))
        s.add(acc)
        s.flush()
        s.add(TwoFactor(account_id=acc.id, secret_enc=box.encrypt(secret, f"totp:{acc.id}") or "",
                        enabled_at=acc.created_at))
        s.commit()
        assert s.exec(select(TwoFactor)).first() is not None
        return acc.id, secret


def test_openapi_documents_the_second_step(server: LiveServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = spec["paths"]
    assert "second_factor_required" in paths["/api/v1/auth/login"]["post"]["description"]
    assert "pending_token" in paths["/api/v1/auth/login/second-factor"]["post"]["description"]
    for path, method in [("/api/v1/me/2fa", "get"), ("/api/v1/me/2fa", "post"), ("/api/v1/me/2fa/confirm", "post"),
                         ("/api/v1/me/2fa/disable", "post")]:
        assert paths[path][method]["description"], path
