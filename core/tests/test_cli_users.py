"""``alarmcloud migrate`` and ``alarmcloud users``: operators, password resets, the account list."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alarmcloud import crypto, db
from alarmcloud.cli import main
from alarmcloud.config import load_settings
from alarmcloud.models import Account, SessionRow
from click.testing import CliRunner
from sqlmodel import select


def _run(*args: str, input: str | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), input=input, prog_name="alarmcloud")
    return r.exit_code, r.output


def test_migrate_then_operator_reset_and_list(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out = _run("migrate", "--data-dir", data)
    assert code == 0 and "database at head" in out
    url = load_settings(None, data_dir=Path(data)).db_url
    with sa.create_engine(url).connect() as c:
        assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    # the password is asked twice without echo; too short is refused
    code, out = _run("users", "create-operator", "Ops@Example.com", "--data-dir", data, input="short\nshort\n")
    assert code != 0 and "at least 10 characters" in out
    code, out = _run("users", "create-operator", "Ops@Example.com", "--data-dir", data,
                     input="operator pass 1\noperator pass 1\n")
    assert code == 0, out
    database = db.Database(url)
    with database.session() as s:
        ops = s.exec(select(Account).where(Account.email == "ops@example.com")).one()
        assert ops.role == "operator" and crypto.verify_password(ops.password_hash, "operator pass 1")
        assert "operator pass 1" not in ops.password_hash
        customer = Account(email="cust@example.com", password_hash=crypto.hash_password("customer pass 1"))
        s.add(customer)
        s.add(SessionRow(id_hash=crypto.token_hash("a-session"), account_id=customer.id, csrf_token="c"))
        s.commit()

    code, out = _run("users", "reset-password", "cust@example.com", "--data-dir", data, "--password", "tiny")
    assert code != 0 and "at least 10 characters" in out
    code, out = _run("users", "reset-password", "cust@example.com", "--data-dir", data,
                     "--password", "customer pass 2")
    assert code == 0 and "sessions ended" in out
    code, out = _run("users", "reset-password", "nobody@example.com", "--data-dir", data, "--password", "x" * 12)
    assert code != 0 and "no account" in out
    with database.session() as s:
        cust = s.exec(select(Account).where(Account.email == "cust@example.com")).one()
        assert crypto.verify_password(cust.password_hash, "customer pass 2")
        assert not crypto.verify_password(cust.password_hash, "customer pass 1")
        assert s.exec(select(SessionRow).where(SessionRow.account_id == cust.id)).all() == []  # logged out

    # promoting an existing customer keeps its password
    code, _ = _run("users", "create-operator", "cust@example.com", "--data-dir", data, "--password", "ignored pw 12")
    assert code == 0
    code, out = _run("users", "list", "--data-dir", data)
    lines = {line.split()[2]: line.split()[1] for line in out.strip().splitlines()}
    assert lines == {"ops@example.com": "operator", "cust@example.com": "operator"}
    with database.session() as s:
        cust = s.exec(select(Account).where(Account.email == "cust@example.com")).one()
        assert crypto.verify_password(cust.password_hash, "customer pass 2")
    database.dispose()
