"""Operator configuration: TOML file, environment over file, secrets by indirection."""

from __future__ import annotations

from alarmcloud.config import load_settings


def test_toml_secrets_by_env_and_file(tmp_path, monkeypatch) -> None:
    secret_file = tmp_path / "smtp-password"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("AC_TEST_SMTP_USER", "from-env")
    cfg = tmp_path / "alarmcloud.toml"
    cfg.write_text(
        f"""
data_dir = "{tmp_path}/data"
[smtp]
host = "mail.example.org"
username = {{ "$env" = "AC_TEST_SMTP_USER" }}
password = {{ "$file" = "{secret_file}" }}
"""
    )
    s = load_settings(cfg)
    assert s.smtp.host == "mail.example.org"
    assert s.smtp.username == "from-env"
    pw = s.smtp.password
    assert (pw.get_secret_value() if hasattr(pw, "get_secret_value") else pw) == "from-file"
    assert str(s.db_url).endswith("data/alarmcloud.db")


def test_environment_overrides_file(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "alarmcloud.toml"
    cfg.write_text('public_url = "https://file.example"\n[smtp]\nhost = "file-host"\n')
    monkeypatch.setenv("ALARMCLOUD_PUBLIC_URL", "https://env.example")
    monkeypatch.setenv("ALARMCLOUD_SMTP__HOST", "env-host")
    s = load_settings(cfg)
    assert s.public_url == "https://env.example"
    assert s.smtp.host == "env-host"
    assert s.cookies_secure is True


def test_lists_in_the_environment_comma_separated_or_json(monkeypatch) -> None:
    monkeypatch.setenv("ALARMCLOUD_CAMERA_NETWORKS", "192.168.1.0/24, 10.8.0.0/16")
    monkeypatch.setenv("ALARMCLOUD_NOTIFY__WEBHOOK_NETWORKS", '["192.168.5.0/24"]')
    monkeypatch.setenv("ALARMCLOUD_PLUGINS__DISABLE", "detectors:plates,alexa")
    s = load_settings()
    assert s.camera_networks == ["192.168.1.0/24", "10.8.0.0/16"]
    assert s.notify.webhook_networks == ["192.168.5.0/24"]
    assert s.plugins.disable == ["detectors:plates", "alexa"]


def test_network_typo_fails_at_start(monkeypatch) -> None:
    import pytest
    from pydantic import ValidationError

    monkeypatch.setenv("ALARMCLOUD_CAMERA_NETWORKS", "192.168.1.0/33")
    with pytest.raises(ValidationError, match="camera_networks"):
        load_settings()


def test_public_url_follows_the_served_address_unless_set(monkeypatch) -> None:
    monkeypatch.delenv("ALARMCLOUD_PUBLIC_URL", raising=False)
    assert load_settings(None, port=18765).public_url == "http://127.0.0.1:18765"  # cameras upload here
    assert load_settings(None, host="0.0.0.0", port=9000).public_url == "http://localhost:9000"
    assert load_settings(None, host="::1", port=9000).public_url == "http://[::1]:9000"
    assert load_settings(None, port=9000, public_url="https://cams.example").public_url == "https://cams.example"
    monkeypatch.setenv("ALARMCLOUD_PUBLIC_URL", "https://env.example")
    assert load_settings(None, port=9000).public_url == "https://env.example"


def test_every_setting_is_described() -> None:
    """The settings models are the configuration docs (docs/configuration.md is generated from them)."""
    from alarmcloud.config import Settings
    from pydantic import BaseModel

    def walk(model: type[BaseModel], prefix: str = "") -> list[str]:
        missing = []
        for name, f in model.model_fields.items():
            if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
                missing += walk(f.annotation, f"{prefix}{name}.")
            if not (f.description or "").strip():
                missing.append(prefix + name)
        return missing

    assert walk(Settings) == []


def test_plugin_tables_under_plugins_as_documented(tmp_path) -> None:
    cfg = tmp_path / "alarmcloud.toml"
    cfg.write_text('[plugins]\nstrict = false\ndetectors = ["rain"]\n[plugins.ifttt]\nservice_key = "svc-key"\n'
                   '[plugin.rain]\nthreshold = 0.8\n')
    s = load_settings(cfg)
    assert s.plugin_settings("ifttt") == {"service_key": "svc-key"}  # [plugins.<name>] (DESIGN.md)
    assert s.plugin_settings("rain") == {"threshold": 0.8}  # [plugin.<name>] is read too
    assert s.plugins.strict is False and s.plugins.detectors == ["rain"]


def test_typos_and_wrong_values_in_the_file_are_named(tmp_path) -> None:
    import pytest
    from alarmcloud.cli import main
    from alarmcloud.config import ConfigError
    from click.testing import CliRunner

    cfg = tmp_path / "alarmcloud.toml"
    cfg.write_text('camera_networkz = ["10.0.0.0/8"]\n[ftp]\nprot = 21\n')
    with pytest.raises(ConfigError, match="'camera_networkz', 'ftp.prot'"):
        load_settings(cfg)
    cfg.write_text("[ftp\nport = 21\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)

    cfg.write_text('[ftp]\nport = "twenty-one"\n')
    r = CliRunner().invoke(main, ["migrate", "--config", str(cfg)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "ftp.port: Input should be a valid integer" in r.output


def test_serve_warns_when_cameras_would_get_loopback_upload_urls(monkeypatch) -> None:
    from alarmcloud.cli import public_url_hint

    monkeypatch.delenv("ALARMCLOUD_PUBLIC_URL", raising=False)
    assert public_url_hint(load_settings(None)) is None  # loopback only: nothing else can connect anyway
    hint = public_url_hint(load_settings(None, host="0.0.0.0", port=8080))
    assert hint and "http://localhost:8080" in hint and "ALARMCLOUD_PUBLIC_URL" in hint
    assert public_url_hint(load_settings(None, host="0.0.0.0", public_url="http://192.168.1.10:8000")) is None


def test_ftp_listens_where_http_does_unless_ftp_host_is_set(tmp_path, monkeypatch) -> None:
    from alarmcloud.cli import ftp_reach_hint, listen_lines

    for var in ("ALARMCLOUD_HOST", "ALARMCLOUD_FTP__HOST", "ALARMCLOUD_PUBLIC_URL", "ALARMCLOUD_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    first = load_settings(None)  # a first start: nothing but this computer can connect, FTP included
    assert (first.host, first.ftp_listen_host) == ("127.0.0.1", "127.0.0.1")
    http, ftp = listen_lines(first)
    assert http == "HTTP (web UI, API, HTTP upload) listening on http://127.0.0.1:8000 (this computer only)"
    assert ftp.startswith("FTP upload listening on 127.0.0.1:2121 (this computer only) (the HTTP address")
    opened = load_settings(None, host="0.0.0.0")  # serve --host 0.0.0.0 opens both
    assert opened.ftp_listen_host == "0.0.0.0"
    assert all("(every network address of this computer)" in line for line in listen_lines(opened))
    assert load_settings(None, host="::").ftp_listen_host == "::"
    assert "listening on http://[::]:8000" in listen_lines(load_settings(None, host="::"))[0]

    # an explicit ftp.host wins, from the file or the environment
    cfg = tmp_path / "alarmcloud.toml"
    cfg.write_text('host = "0.0.0.0"\n[ftp]\nhost = "127.0.0.1"\n')
    own = load_settings(cfg)
    assert (own.host, own.ftp_listen_host) == ("0.0.0.0", "127.0.0.1")
    assert listen_lines(own)[1].endswith("(this computer only) (ftp.host)")
    monkeypatch.setenv("ALARMCLOUD_FTP__HOST", "0.0.0.0")
    assert load_settings(None).ftp_listen_host == "0.0.0.0"
    monkeypatch.delenv("ALARMCLOUD_FTP__HOST")
    assert listen_lines(load_settings(None, ftp={"port": 0}))[1].startswith("FTP upload is off")

    # behind a reverse proxy (HTTP on loopback, cameras told the LAN address) FTP on loopback reaches no camera
    proxied = load_settings(None, public_url="http://192.168.1.10")
    hint = ftp_reach_hint(proxied)
    assert hint and "127.0.0.1" in hint and "192.168.1.10" in hint and "ALARMCLOUD_FTP__HOST=0.0.0.0" in hint
    assert ftp_reach_hint(load_settings(None, public_url="http://192.168.1.10", ftp={"host": "0.0.0.0"})) is None
    assert ftp_reach_hint(load_settings(None, public_url="http://192.168.1.10", ftp={"port": 0})) is None
    assert ftp_reach_hint(first) is None  # cameras are told 127.0.0.1 as well: the upload settings page warns
