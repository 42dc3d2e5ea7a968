"""Settings: one TOML file plus ``ALARMCLOUD_*`` environment variables. These models are the configuration docs."""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict


def _split_list(value: Any) -> Any:
    """Lists in the environment: a JSON array or comma-separated (``a,b``); TOML arrays pass through."""
    if isinstance(value, str):
        text = value.strip()
        return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
    return value


def _check_cidrs(value: list[str]) -> list[str]:
    for net in value:
        ipaddress.ip_network(net, strict=False)  # a typo fails at start-up, not at the first connection
    return value


#: a list of strings, comma-separated or JSON in the environment
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_list)]
#: a list of networks in CIDR notation, validated at start-up
CidrList = Annotated[list[str], NoDecode, BeforeValidator(_split_list), AfterValidator(_check_cidrs)]

PRIVATE_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]


class PluginsConfig(BaseModel):
    """Which plugins this deployment enables (no config file: every installed plugin)."""

    cameras: list[str] | None = Field(None, description="Enabled camera adapters (entry names); None: all installed")
    detectors: list[str] | None = Field(None, description="Enabled detectors (entry names); None: all installed")
    integrations: list[str] | None = Field(
        None, description="Enabled integrations (entry names); None: all installed"
    )
    disable: CommaList = Field(
        default_factory=list,
        description="Deny list 'group:name' or 'name' (env ALARMCLOUD_PLUGINS__DISABLE='detectors:plates,alexa')",
    )
    strict: bool = Field(
        True, description="Refuse to start when an enabled plugin fails to load; false: start without it (it shows "
                          "as failed at /-/plugins and in 'alarmcloud plugins')",
    )


class FtpConfig(BaseModel):
    """The built-in FTP/FTPS ingest server cameras upload to."""

    port: int = Field(2121, description="FTP control port; 0 disables FTP ingest")
    host: str | None = Field(
        None, description="Address the FTP server listens on; default: the HTTP server's address (host), so the "
                          "default start listens on this computer only and 'serve --host 0.0.0.0' opens both",
    )
    public_host: str | None = Field(None, description="Host name cameras use to reach the FTP server")
    passive_ports: str = Field("60000-60100", description="Passive data port range 'from-to'")
    masquerade_address: str | None = Field(None, description="Public IP announced for passive mode behind NAT")
    tls_cert: Path | None = Field(None, description="PEM certificate; when set, FTPS (explicit TLS) is offered")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert")
    tls_required: bool = Field(False, description="Refuse logins without TLS when a certificate is configured")
    spool_max_mb: int = Field(
        2048, ge=0, description="A camera's FTP client counts a clip as delivered once the transfer ends, so a clip "
        "that cannot be stored then (database or object store unreachable) is kept in <data_dir>/ftp-spool and "
        "stored when they are back; this caps that folder (MiB; 0: no spool, such clips are lost)")
    spool_retry_seconds: float = Field(30.0, gt=0, description="How often spooled FTP clips are tried again")


class IngestConfig(BaseModel):
    """Limits for uploaded clips."""

    max_upload_bytes: int = Field(200 * 1024 * 1024, description="Hard cap per upload; larger bodies get 413")
    max_clip_seconds: float = Field(300.0, description="Clips longer than this are rejected")
    probe_timeout_seconds: float = Field(20.0, description="Time limit for probing one upload")
    probe_memory_mb: int = Field(1024, description="Address-space limit of the probe process")
    mask_timeout_seconds: float = Field(180.0, description="Time limit for painting a camera's privacy masks into "
                                        "one clip (decode and H.264 encode)")
    mask_memory_mb: int = Field(2048, description="Address-space limit of the privacy-mask process")
    mask_threads: int = Field(2, description="Encoder threads of the privacy-mask process")
    series_gap_seconds: float = Field(60.0, description="Clips closer than this form one alarm series")


class S3StorageConfig(BaseModel):
    """An S3-compatible bucket for clips, thumbnails and exports (``storage.backend = "s3"``). Credentials not set
    here come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or the machine's
    instance role."""

    bucket: str | None = Field(None, description="Bucket name (it must exist: serve and worker check at start)")
    endpoint_url: str | None = Field(
        None, description="S3 endpoint, e.g. https://s3.example.net or http://127.0.0.1:9000; default: AWS S3 of "
                          "the region")
    region: str | None = Field(None, description="Region; default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1")
    key_prefix: str = Field("", description="Folder inside the bucket all keys go under, e.g. 'alarmcloud'; the "
                                            "store never reads or deletes outside it")
    access_key_id: str | None = Field(None, description="Access key id; default: AWS_ACCESS_KEY_ID")
    secret_access_key: SecretStr | None = Field(
        None, description="Secret key; default: AWS_SECRET_ACCESS_KEY (or {\"$env\" = \"NAME\"} / "
                          "{\"$file\" = \"path\"} in the file)")
    session_token: SecretStr | None = Field(None, description="Temporary session token; default: AWS_SESSION_TOKEN")
    allow_http: bool = Field(False, description="Allow a plain-http endpoint_url (only for a server on this machine "
                                                "or a trusted network: keys and clips travel unencrypted)")
    virtual_hosted_style: bool = Field(
        False, description="Address the bucket as <bucket>.<endpoint> instead of <endpoint>/<bucket>")
    timeout_seconds: float = Field(60.0, gt=0, description="Time limit for one request to the store (and for its "
                                                           "retries together)")
    connect_timeout_seconds: float = Field(5.0, gt=0, description="Time limit for connecting to the store")
    max_retries: int = Field(3, ge=0, description="Retries of a failed request (with backoff) before the upload or "
                                                  "read fails with 503")
    staging_dir: Path | None = Field(
        None, description="Local folder for uploads before they are sent and for clips being analysed; default "
                          "<data_dir>/staging. Give each server its own")

    @model_validator(mode="after")
    def _check(self) -> S3StorageConfig:
        from urllib.parse import urlparse

        if self.bucket is not None and not self.bucket.strip():
            raise ValueError("storage.s3.bucket is empty")
        if self.endpoint_url:
            url = urlparse(self.endpoint_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(f"storage.s3.endpoint_url {self.endpoint_url!r} is not an http(s) URL")
            if url.scheme == "http" and not self.allow_http:
                raise ValueError(f"storage.s3.endpoint_url {self.endpoint_url!r} is plain http: use https, or set "
                                 "storage.s3.allow_http = true for a server on this machine or a trusted network")
        prefix = self.key_prefix.strip("/")
        if (prefix and any(p in ("", ".", "..") for p in prefix.split("/"))) or "\\" in prefix:
            raise ValueError(f"storage.s3.key_prefix {self.key_prefix!r} must be a plain folder name like "
                             "'alarmcloud' or 'a/b'")
        return self


class StorageConfig(BaseModel):
    """Where clips are stored, and the default per-account quota (operators can change it per account)."""

    backend: Literal["local", "s3"] = Field(
        "local", description="'local': files under <data_dir>/blobs; 's3': an S3-compatible bucket ([storage.s3]) "
                             "shared by any number of API nodes and workers")
    s3: S3StorageConfig = Field(default_factory=S3StorageConfig, description="The bucket when backend = 's3'")

    quota_bytes: int = Field(10 * 1024**3, description="Default quota per account in bytes")
    retention_days: int = Field(30, description="Default days a clip is kept")
    almost_full_ratio: float = Field(0.9, description="Raise storage.almost_full above this share of the quota")
    download_max_clips: int = Field(500, ge=1, description="Most clips in one bulk download of events (more: 413)")
    kept_max_ratio: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Share of an account's quota its kept clips may fill (clips the owner keeps past the retention "
                    "period and out of the quota's eviction); the rest stays free for new alarms. 0: no clip can be "
                    "kept")

    @model_validator(mode="after")
    def _check_backend(self) -> StorageConfig:
        if self.backend == "s3" and not self.s3.bucket:
            raise ValueError("storage.backend = 's3' needs storage.s3.bucket (env ALARMCLOUD_STORAGE__S3__BUCKET)")
        return self


class WorkerConfig(BaseModel):
    """Detection workers."""

    count: int = Field(1, description="In-process worker threads started by serve (0: none)")
    lease_seconds: float = Field(60.0, description="A claimed job returns to the queue when its lease expires")
    max_attempts: int = Field(3, description="Attempts before a job goes to the dead-letter state")
    retry_base_seconds: float = Field(5.0, description="Backoff base: base * 2**attempt")
    poll_seconds: float = Field(0.5, description="Idle poll interval")


class FairUseConfig(BaseModel):
    """Fair-use rules (the account administrator is told before any slowdown)."""

    long_clip_seconds: float = Field(30.0, description="Clips longer than this are processed at low priority")
    continuous_alarm_minutes: float = Field(30.0, description="A series longer than this is a continuous alarm")
    false_alarm_rate: float = Field(0.9, description="Daily false-alarm share that raises a notice")
    min_clips: int = Field(20, description="Clips per day before the false-alarm rate counts")
    grace_hours: float = Field(24.0, description="After the notice, hours before the priority is lowered")


class SmtpConfig(BaseModel):
    """Outgoing e-mail (notices and alarm mails). No host: e-mails are logged, not sent."""

    host: str | None = Field(None, description="SMTP server")
    port: int = Field(25, description="SMTP port")
    sender: str = Field("alarmcloud@localhost", description="From address")
    username: str | None = Field(None, description="SMTP login")
    password: SecretStr | None = Field(None, description="SMTP password")
    starttls: bool = Field(False, description="Use STARTTLS")


class NotifyConfig(BaseModel):
    """Delivery of webhooks and e-mail from the outbox (after the verdict), and where webhooks may point."""

    webhook_networks: CidrList = Field(
        default_factory=list,
        description="Non-public networks (CIDRs, comma-separated in the environment) webhook URLs may point into, "
                    "e.g. a receiver on the LAN; loopback, private, link-local and other non-public addresses are "
                    "refused unless listed",
    )
    timeout_seconds: float = Field(10.0, description="Time limit for one webhook request or SMTP session", gt=0)
    max_attempts: int = Field(8, description="Delivery attempts before a notification is given up (dead)", ge=1)
    retry_base_seconds: float = Field(10.0, description="Backoff after failed attempt n: base * 2**(n-1)", ge=0)
    keep_days: int = Field(30, description="Finished deliveries (sent, dead) are deleted after this many days", ge=1)
    telegram_api_url: str = Field(
        "https://api.telegram.org",
        description="Base URL of the Telegram Bot API for Telegram notifications (e.g. a self-hosted Bot API server)")


class OffsiteConfig(BaseModel):
    """Off-site copies: each owner may have new clips copied into their own S3-compatible bucket."""

    enabled: bool = Field(True, description="Offer off-site copies to account owners (false: the settings are hidden, "
                                            "nothing is queued and waiting copies are skipped)")
    allow_http: bool = Field(False, description="Allow plain-http bucket endpoints and WebDAV URLs (signatures, "
                                                "passwords and the clips then cross the network unencrypted); https "
                                                "otherwise")
    timeout_seconds: float = Field(120.0, description="Time limit for one request to a bucket (a part of an upload) "
                                   "or a WebDAV server, or one answer of an SFTP server", gt=0)
    max_attempts: int = Field(24, description="Attempts to copy one clip before it is given up", ge=1)
    retry_max_seconds: float = Field(3600.0, description="Longest wait between two attempts (the backoff of "
                                                         "notify.retry_base_seconds doubles up to this)", gt=0)
    backfill_spacing_seconds: float = Field(
        1.0, description="\"Copy existing clips\" spreads its copies out: each is due this long after the one before "
                         "plus its size at backfill_mib_per_second (new alarms' copies never wait behind them)", ge=0)
    backfill_mib_per_second: float = Field(
        4.0, description="Upload rate the spreading of existing clips' copies assumes (MiB/s; 100,000 clips of 2 MB: "
                         "about 40 h at 4 and 1 s, about 5.5 h at 20 and 0.1 s)", gt=0)


class PrivacyConfig(BaseModel):
    """Retention of personal data (days)."""

    access_log_days: int = Field(90, description="Access data is deleted after this many days (max 90)", le=90)
    inactive_days: int = Field(730, description="Accounts inactive this long get a deletion notice")
    inactive_grace_days: int = Field(30, description="Days between the notice and the deletion")
    export_days: int = Field(7, description="Finished exports are deleted after this many days")
    plates_days: int | None = Field(None, description="Plate reads are deleted after this many days (None: with clip)")
    case_links: bool = Field(True, description="Owners may share a case (its notes and clips) with a link that needs "
                                               "no account, for at most 30 days; false: no new links, and links "
                                               "made before serve nothing")
    erasure_register: Path | None = Field(
        None, description="Append-only file of the ids of erased accounts and deleted clips and cameras, replayed by "
                          "`alarmcloud restore` onto older backups (docs/backup.md); default "
                          "<data_dir>/erasures.jsonl. Best on storage apart from data_dir")


class Settings(BaseSettings):
    """alarmcloud settings. Env: ALARMCLOUD_<FIELD>, nested with '__' (ALARMCLOUD_FTP__PORT=0)."""

    model_config = SettingsConfigDict(env_prefix="ALARMCLOUD_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(Path("data"), description="SQLite database, local blobs and keys of the embedded default")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/alarmcloud.db")
    public_url: str = Field(
        "http://localhost:8000",
        description="Base URL customers and cameras use (upload URLs, links in e-mails); default: "
                    "http://<host>:<port> of this server, localhost when it listens on every address",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server (and FTP, unless ftp.host is set) listens on; "
                                             "0.0.0.0: every network address")
    port: int = Field(8000, description="HTTP port")
    secret_key: SecretStr | None = Field(
        None, description="Base64 32-byte key for encrypting camera secrets; default: generated into data_dir"
    )
    secret_key_id: str = Field("k1", description="Id of secret_key, stored with each ciphertext for rotation")
    old_secret_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Earlier keys by id, still accepted for decryption"
    )
    secure_cookies: bool | None = Field(
        None, description="Mark cookies Secure; default: when public_url is https or the request came over TLS"
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description="Reverse proxies (comma-separated IPs, or '*') whose X-Forwarded-For / X-Forwarded-Proto "
                    "headers serve trusts: client networks and https then come from the proxy; default: none",
    )
    session_idle_minutes: int = Field(60 * 24 * 7, description="Sessions end after this much inactivity")
    session_absolute_days: int = Field(30, description="Sessions end this long after login")
    two_factor_required: Literal["nobody", "operators", "owners", "everyone"] = Field(
        "nobody", description="Who must use two-step verification: operators; owners (account owners and "
                              "operators); everyone (sub-users too). Someone without it is sent to the account "
                              "page to set it up before anything else (the API answers 403 two_factor_required)")
    login_attempts: int = Field(5, description="Failed logins per e-mail and network per window before 429")
    login_window_seconds: int = Field(900, description="Login rate-limit window")
    camera_networks: CidrList = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        description="CIDRs the server may contact cameras in (never loopback/link-local unless listed)",
    )
    registration_open: bool = Field(True, description="Allow anyone to register")
    plugins: PluginsConfig = Field(default_factory=PluginsConfig, description="Plugin selection")
    plugin: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-plugin settings tables: [plugins.<name>] (also read as "
                                          "[plugin.<name>])"
    )
    ftp: FtpConfig = Field(default_factory=FtpConfig, description="FTP/FTPS ingest")
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Upload limits")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Blob storage and quota defaults")
    workers: WorkerConfig = Field(default_factory=WorkerConfig, description="Detection workers")
    fair_use: FairUseConfig = Field(default_factory=FairUseConfig, description="Fair-use rules")
    smtp: SmtpConfig = Field(default_factory=SmtpConfig, description="Outgoing e-mail")
    notify: NotifyConfig = Field(default_factory=NotifyConfig, description="Webhook and e-mail delivery")
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig, description="Retention of personal data")
    offsite: OffsiteConfig = Field(default_factory=OffsiteConfig,
                                   description="Off-site copies of clips into owners' own S3-compatible buckets")
    config_file: Path | None = Field(None, description="The TOML file these settings were read from")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (CLI / config file values) < env: operators override a file with the environment
        return env_settings, init_settings, file_secret_settings

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        # cameras get upload URLs from public_url: without one, point them at the address actually served
        if "public_url" not in self.model_fields_set:
            host = "localhost" if self.host in ("", "0.0.0.0", "::") else self.host
            self.public_url = f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
        return self

    @property
    def ftp_listen_host(self) -> str:
        """The address the FTP server binds: ``ftp.host`` when set, else the HTTP server's ``host``."""
        return self.ftp.host or self.host

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'alarmcloud.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.public_url.startswith("https://")

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """The ``[plugins.<name>]`` table (empty when absent)."""
        return dict(self.plugin.get(name, {}))


def _resolve_secrets(value: Any) -> Any:
    """``{"$env": "NAME"}`` and ``{"$file": "path"}`` indirection for secrets in the TOML file."""
    if isinstance(value, dict):
        if set(value) == {"$env"}:
            return os.environ.get(value["$env"])
        if set(value) == {"$file"}:
            return Path(value["$file"]).read_text().strip()
        return {k: _resolve_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_secrets(v) for v in value]
    return value


class ConfigError(ValueError):
    """A settings file the product cannot use; the message names the file and the setting."""


def _plugin_tables(data: dict[str, Any]) -> dict[str, Any]:
    """``[plugins.<name>]`` tables (the documented form) join ``[plugin.<name>]``; the former wins on a clash."""
    section = data.get("plugins")
    if not isinstance(section, dict):
        return data
    tables = {k: v for k, v in section.items() if k not in PluginsConfig.model_fields and isinstance(v, dict)}
    if not tables:
        return data
    merged = {k: dict(v) for k, v in (data.get("plugin") or {}).items()}
    for name, table in tables.items():
        merged[name] = {**merged.get(name, {}), **table}
    return {**data, "plugins": {k: v for k, v in section.items() if k not in tables}, "plugin": merged}


def _unknown_keys(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys of a settings file no field reads (a typo would otherwise be ignored without a word)."""
    out: list[str] = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            out.append(prefix + key)
        elif (isinstance(value, dict) and isinstance(info.annotation, type)
              and issubclass(info.annotation, BaseModel)):
            out += _unknown_keys(info.annotation, value, f"{prefix}{key}.")
    return out


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any), then the environment; ``overrides`` (CLI flags) win over the file.

    Raises ``ConfigError`` for a file that is not TOML or names a setting that does not exist, and pydantic's
    ``ValidationError`` for a value of the wrong kind.
    """
    data: dict[str, Any] = {}
    path = config_file or (Path(os.environ["ALARMCLOUD_CONFIG"]) if os.environ.get("ALARMCLOUD_CONFIG") else None)
    if path is not None:
        with open(path, "rb") as fh:
            try:
                data = _plugin_tables(_resolve_secrets(tomllib.load(fh)))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path} is not valid TOML: {exc}") from None
        unknown = _unknown_keys(Settings, data)
        if unknown:
            raise ConfigError(f"{path}: unknown setting {', '.join(map(repr, unknown))} "
                              "(every setting is listed in docs/configuration.md)")
        data["config_file"] = path
    data.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**data)
