"""Database tables (SQLModel). Times are aware UTC. Every customer row carries ``account_id`` for tenancy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, select


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime) -> datetime:
    """A stored time as aware UTC (SQLite hands timestamps back without a zone)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a Z."""
    return aware(dt).astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_seconds(dt: datetime) -> str:
    """ISO 8601 in UTC to the second, with a Z (backup manifests, the erasure register)."""
    return aware(dt).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_id() -> str:
    return uuid.uuid4().hex


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    email: str = Field(index=True, unique=True, max_length=320)
    password_hash: str = Field(max_length=200)
    role: str = Field(default="user", max_length=16)  # user | operator
    owner_id: str | None = Field(default=None, foreign_key="accounts.id", max_length=32)  # set for sub-users
    created_at: datetime = Field(default_factory=utcnow)
    last_active_at: datetime = Field(default_factory=utcnow)
    restricted: bool = False  # GDPR Art. 18: no processing of clips
    quota_bytes: int | None = None
    retention_days: int | None = None
    pending_email: str | None = Field(default=None, max_length=320)
    pending_email_token_hash: str | None = Field(default=None, max_length=64)
    deletion_notice_at: datetime | None = None
    notify_email: bool = False
    notify_only_real: bool = True
    notify_cooldown_seconds: int = 300
    #: alarm e-mails carry the clip's picture (off by default: the picture then leaves the cloud by e-mail)
    notify_email_picture: bool = False
    #: push notifications through an ntfy server (``notify.queue_notifications``); shares only-real and cooldown
    notify_push: bool = False
    notify_push_url: str | None = Field(default=None, max_length=500)  # the ntfy topic URL (checked like webhooks)
    #: the ntfy access token, encrypted (SecretBox, context "push:<account_id>"); never returned nor exported
    notify_push_token_enc: str | None = Field(default=None, max_length=500)
    #: the push carries the clip's picture (off by default: the picture then leaves the cloud to the push server)
    notify_push_picture: bool = False
    #: Telegram messages through the person's own bot (``notify.send_telegram``); shares only-real and cooldown
    notify_telegram: bool = False
    #: the chat the bot writes to: a numeric id (negative for groups) or ``@channelname``
    notify_telegram_chat_id: str | None = Field(default=None, max_length=64)
    #: the bot token from @BotFather, encrypted (SecretBox, context "telegram:<account_id>"); never returned or exported
    notify_telegram_token_enc: str | None = Field(default=None, max_length=500)
    #: the message is the clip's picture with the text as caption (off by default: the picture then goes to Telegram)
    notify_telegram_picture: bool = False
    #: the person's alarm messages (e-mail, push, Telegram) are snoozed until a time (ISO 8601, UTC): "*" for every
    #: camera, else per camera id (``snooze``); webhooks and linked services are not
    notify_snoozes: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))
    #: off-site copies of clips into the owner's own S3-compatible bucket (``offsite``; owners only)
    offsite_enabled: bool = False
    #: the bucket's endpoint URL (checked like webhook URLs: https, public addresses unless the operator allows)
    offsite_endpoint: str | None = Field(default=None, max_length=500)
    offsite_region: str | None = Field(default=None, max_length=64)
    offsite_bucket: str | None = Field(default=None, max_length=63)
    #: the folder in the bucket the copies go under ("" or None: the bucket's top)
    offsite_prefix: str | None = Field(default=None, max_length=200)
    offsite_access_key_id: str | None = Field(default=None, max_length=128)
    #: the secret access key, encrypted (SecretBox, context "offsite:<account_id>"); never returned nor exported
    offsite_secret_key_enc: str | None = Field(default=None, max_length=500)
    #: what is copied: ``alarms`` (clips whose verdict is an alarm) or ``all`` (every analysed clip)
    offsite_scope: str = Field(default="alarms", max_length=16)
    #: when the latest copy arrived in the bucket
    offsite_last_copy_at: datetime | None = None
    #: where the copies go: ``s3`` (the bucket above), ``sftp`` (the owner's SFTP server, ``offsite_sftp``) or
    #: ``webdav`` (``offsite_webdav``)
    offsite_kind: str = Field(default="s3", max_length=8)
    #: the SFTP server: host name or address (checked like webhook hosts), port (22 when None), user name
    offsite_sftp_host: str | None = Field(default=None, max_length=253)
    offsite_sftp_port: int | None = None
    offsite_sftp_user: str | None = Field(default=None, max_length=64)
    #: the server's host key this server trusts (``<key type> SHA256:<fingerprint>``, or the fingerprint alone as the
    #: owner entered it): recorded by the first connection test, a different key refuses every copy
    offsite_sftp_host_key: str | None = Field(default=None, max_length=120)
    #: the account's own SSH key (Ed25519, made by this server): its public line for the owner's authorized_keys, and
    #: the private key encrypted (SecretBox, context "sftp:<account_id>"); never returned nor exported
    offsite_sftp_public_key: str | None = Field(default=None, max_length=200)
    offsite_sftp_key_enc: str | None = Field(default=None, max_length=1000)
    #: a WebDAV server (``offsite_webdav``: Nextcloud, ownCloud, a NAS): the folder's URL (checked like webhook
    #: URLs), the user name and the (app) password, encrypted (SecretBox, context "webdav:<account_id>"); never
    #: returned nor exported
    offsite_webdav_url: str | None = Field(default=None, max_length=500)
    offsite_webdav_user: str | None = Field(default=None, max_length=128)
    offsite_webdav_password_enc: str | None = Field(default=None, max_length=500)
    #: when the owner was last told that the copies do not arrive (``offsite.check_failing``)
    offsite_failing_notified_at: datetime | None = None
    #: copies older than this many days are deleted from the owner's storage (``offsite_prune``; the copies of kept
    #: clips stay); None: every copy is kept
    offsite_keep_days: int | None = None
    #: when old copies were last deleted (or that run began), how many files it deleted, and its error (None: it
    #: went through)
    offsite_pruned_at: datetime | None = None
    offsite_prune_deleted: int | None = None
    offsite_prune_error: str | None = Field(default=None, max_length=500)
    #: an age public key (``age1…``): the copies are encrypted to it before they leave (``agecrypt``); None: plain
    offsite_age_recipient: str | None = Field(default=None, max_length=100)


#: a person's channel credentials: channel -> the ``Account`` column holding it encrypted (SecretBox, context
#: "<channel>:<account id>"; ``notify.seal_account_secret``/``open_account_secret``, rotated by ``keys rotate``)
ACCOUNT_SECRETS = {"push": "notify_push_token_enc", "telegram": "notify_telegram_token_enc",
                   "offsite": "offsite_secret_key_enc", "sftp": "offsite_sftp_key_enc",
                   "webdav": "offsite_webdav_password_enc"}


class SessionRow(SQLModel, table=True):
    __tablename__ = "sessions"
    id_hash: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie value
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    #: the browser and system it was started from, coarse ("Firefox on Android", ``auth.device_label``); None: unknown
    device: str | None = Field(default=None, max_length=60)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    name: str = Field(max_length=100)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    #: GET (and HEAD) only: a tool that shows events, clips and storage cannot change or delete anything
    read_only: bool = False


class CameraRight(SQLModel, table=True):
    """A sub-user's right on one camera of its owner: view < control < admin."""

    __tablename__ = "camera_rights"
    account_id: str = Field(foreign_key="accounts.id", primary_key=True, max_length=32)
    camera_id: str = Field(foreign_key="cameras.id", primary_key=True, max_length=32)
    right: str = Field(max_length=16)


class Camera(SQLModel, table=True):
    __tablename__ = "cameras"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    name: str = Field(max_length=100)
    brand: str = Field(max_length=50)
    model: str = Field(max_length=100)
    #: the owner's name for where the camera is ("Home", "Farm"): cameras of one site are listed together and the
    #: timeline filters by it; None: no site
    site: str | None = Field(default=None, max_length=60)
    #: tell the camera's people when it sends no clip for this many days (``silence``: power, network or upload
    #: settings gone); None: never
    silent_after_days: int | None = None
    #: when they were told that it fell silent; cleared by its next clip
    silent_notified_at: datetime | None = None
    #: when its latest clip arrived (set by ingest), so the silence check reads cameras, not their clips
    last_clip_at: datetime | None = None
    host_enc: str | None = Field(default=None, sa_column=Column(Text))
    port: int = 80
    p2p_id_enc: str | None = Field(default=None, sa_column=Column(Text))
    username_enc: str | None = Field(default=None, sa_column=Column(Text))
    password_enc: str | None = Field(default=None, sa_column=Column(Text))
    integrations_may_use_credentials: bool = False
    upload_username: str | None = Field(default=None, index=True, unique=True, max_length=64)
    upload_password_hash: str | None = Field(default=None, max_length=200)
    #: the password one-click setup gave the camera: valid beside ``upload_password_hash`` until the camera uploads
    #: with it (then it replaces that one), because a setup that fails part-way may or may not have written it
    upload_password_pending_hash: str | None = Field(default=None, max_length=200)
    detectors: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    detector_options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    rejected_count: int = 0
    motion_detection: bool | None = None
    last_trigger: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    last_trigger_at: datetime | None = None
    fair_use_state: str = Field(default="normal", max_length=32)  # normal | notice | low_priority
    fair_use_reason: str | None = Field(default=None, max_length=300)
    fair_use_since: datetime | None = None
    fair_use_override: str | None = Field(default=None, max_length=32)  # operator: normal | low_priority
    false_alarm_rate: float | None = None
    # rectangles [x0, y0, x1, y1] (fractions of the frame) painted black before a clip is stored; None = no masks
    privacy_masks: list[list[float]] | None = Field(default=None, sa_column=Column(JSON))
    # view check (``viewcheck``): learning | ok | obstructed, why, since when, in which light (day | night)
    view_state: str = Field(default="learning", max_length=16)
    view_reason: str | None = Field(default=None, max_length=32)
    view_since: datetime | None = None
    view_light: str | None = Field(default=None, max_length=8)
    #: numbers only: the last clips' measures per light (the baseline), the latest verdicts, normal clips counted
    view_data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class Series(SQLModel, table=True):
    __tablename__ = "series"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    camera_id: str = Field(foreign_key="cameras.id", index=True, max_length=32)
    started_at: datetime
    ended_at: datetime
    clip_count: int = 0


class Clip(SQLModel, table=True):
    """One stored alarm clip = one event of the API."""

    __tablename__ = "clips"
    __table_args__ = (
        Index("ix_clips_account_started", "account_id", "started_at", "id"),
        Index("ix_clips_camera_started", "camera_id", "started_at", "id"),
        Index("ix_clips_account_verdict_started", "account_id", "verdict", "started_at", "id"),  # verdict filter
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    camera_id: str = Field(foreign_key="cameras.id", max_length=32)
    series_id: str = Field(foreign_key="series.id", index=True, max_length=32)
    blob_key: str = Field(max_length=200)
    thumb_key: str | None = Field(default=None, max_length=200)
    size_bytes: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    received_at: datetime = Field(default_factory=utcnow)
    duration: float = 0.0
    width: int = 0  # the picture as players show it (a turned clip's coded height)
    height: int = 0
    fps: float = 0.0
    codec: str = Field(default="", max_length=20)
    original_name: str | None = Field(default=None, max_length=255)
    trigger: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    status: str = Field(default="pending", max_length=16)  # pending | done | failed | skipped
    verdict: str | None = Field(default=None, max_length=64)
    mover: bool | None = None
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    #: per detector that reports one (``ClipFrames.score``), the score it compared with the camera's threshold, also
    #: below it: {"rain": 0.42}; None before the analysis (or from none of the camera's detectors)
    scores: dict[str, float] | None = Field(default=None, sa_column=Column(JSON))
    #: sha256 of the privacy masks painted into the stored video (``masks.masks_hash``); None: stored unmasked
    privacy_masks_hash: str | None = Field(default=None, max_length=64)
    #: the owner's bucket this clip was last copied to (``offsite.destination``: endpoint, bucket and prefix), None:
    #: never; a backfill copies the clips whose copy is not in the bucket set now
    offsite_copy: str | None = Field(default=None, max_length=32)
    #: when the owner chose to keep the clip (``PATCH /api/v1/events/{id}``): retention and the quota's eviction leave
    #: it alone until they stop keeping it; None: it goes when its time comes. Deleting it, its camera or the
    #: account deletes it all the same
    kept_at: datetime | None = None
    #: the owner's case (``cases``) the clip belongs to; a clip in a case is kept (``kept_at`` set) while it is there
    case_id: str | None = Field(default=None, foreign_key="cases.id", index=True, max_length=32)


class Case(SQLModel, table=True):
    """The owner's collection of the clips of one incident (a break-in, a damaged car): a name, notes, and its clips,
    kept while they are in it, downloaded together with a checksum file."""

    __tablename__ = "cases"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    name: str = Field(max_length=100)
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    #: when the case was last downloaded (the owner sees what they handed over already); None: never
    exported_at: datetime | None = None
    #: the owner's link for someone without an account (the police, an insurer): the SHA-256 of its token, until
    #: when it serves, how often it was fetched; None: not shared
    share_hash: str | None = Field(default=None, max_length=64, unique=True)
    share_created_at: datetime | None = None
    share_expires_at: datetime | None = None
    share_fetches: int = 0
    #: how many downloads the link allows (None: no limit, links made before there was one)
    share_max_fetches: int | None = None
    share_last_fetch_at: datetime | None = None


class FindingRow(SQLModel, table=True):
    __tablename__ = "findings"
    __table_args__ = (
        # label and plate filters of the events API: the matching clip ids, the distinct plate texts
        Index("ix_findings_account_label_text", "account_id", "label", "text", "clip_id"),
        # a clip's findings, and "has this clip a finding with this label"
        Index("ix_findings_clip_label", "clip_id", "label"),
    )
    id: int | None = Field(default=None, primary_key=True)
    clip_id: str = Field(foreign_key="clips.id", max_length=32)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    detector: str = Field(max_length=50)
    label: str = Field(max_length=50, index=True)
    score: float
    time: float | None = None
    box: list[float] | None = Field(default=None, sa_column=Column(JSON))
    text: str | None = Field(default=None, max_length=64, index=True)


class Job(SQLModel, table=True):
    """Durable detection job; written in the clip's transaction."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "state", "priority", "fair_round", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    clip_id: str = Field(foreign_key="clips.id", index=True, max_length=32)
    camera_id: str = Field(max_length=32, index=True)
    account_id: str = Field(max_length=32, index=True)
    state: str = Field(default="queued", max_length=16)  # queued | running | done | dead
    priority: int = 0  # 0 normal, 1 low (fair use)
    fair_round: int = 0  # position in its camera's queue when written: round-robin between cameras
    attempts: int = 0
    available_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    worker: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class MaskJob(SQLModel, table=True):
    """Durable job painting a camera's current privacy masks into its clips stored without them (``masks_apply``)."""

    __tablename__ = "mask_jobs"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(max_length=32, index=True)
    camera_id: str = Field(max_length=32, index=True)
    masks: list[list[float]] = Field(default_factory=list, sa_column=Column(JSON))
    masks_hash: str = Field(max_length=64)
    state: str = Field(default="queued", max_length=16)  # queued | running | done | cancelled | dead
    total: int = 0
    done: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))  # clip_id, code, message
    cursor: str | None = Field(default=None, max_length=32)  # clips are visited in id order; the last one handled
    attempts: int = 0
    worker: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class DownloadLink(SQLModel, table=True):
    """A resumable bulk download (``download``): the chosen clips as laid out in the ZIP when the link was made.

    Only its maker may fetch it, only until it expires, and only while every clip is as it was (else 410)."""

    __tablename__ = "download_links"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(max_length=32, index=True)  # the account that owns the clips
    user_id: str = Field(max_length=32, index=True)  # the person who made the link
    #: one entry per clip, oldest first: clip_id, file (its name in the ZIP, or None: no video), blob_key, size
    files: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    index_size: int = 0  # events.json: its size and SHA-256 (rebuilt on every fetch; it must not have changed)
    index_sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class Rejection(SQLModel, table=True):
    """A rejected upload: the reason is kept, the data never."""

    __tablename__ = "rejections"
    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    camera_id: str = Field(foreign_key="cameras.id", index=True, max_length=32)
    at: datetime = Field(default_factory=utcnow)
    code: str = Field(max_length=50)
    message: str = Field(max_length=300)


class Feedback(SQLModel, table=True):
    __tablename__ = "feedback"
    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    clip_id: str = Field(foreign_key="clips.id", index=True, max_length=32)
    detector: str = Field(max_length=50)
    label: str = Field(max_length=50)  # e.g. rain | not_rain
    created_at: datetime = Field(default_factory=utcnow)


class Consent(SQLModel, table=True):
    """Append-only consent ledger: releases of recordings and integration grants."""

    __tablename__ = "consents"
    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    kind: str = Field(max_length=32)  # clip_release | integration_grant
    subject: str = Field(max_length=100)  # clip id, client id
    purpose: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    withdrawn_at: datetime | None = None


class PluginState(SQLModel, table=True):
    __tablename__ = "plugin_state"
    __table_args__ = (UniqueConstraint("plugin", "account_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    plugin: str = Field(max_length=50)
    account_id: str | None = Field(default=None, foreign_key="accounts.id", index=True, max_length=32)
    key: str = Field(max_length=200)
    value: Any = Field(default=None, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=300)  # encrypted (SecretBox); deliveries are signed with it
    only_real_alarms: bool = True
    events: list[str] | None = Field(default=None, sa_column=Column(JSON))  # None: detections.ready only
    created_at: datetime = Field(default_factory=utcnow)


class Outbox(SQLModel, table=True):
    """Notifications to deliver (webhooks, e-mail) with retries; survives restarts."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_kind_target", "kind", "target"),
        # "is a copy of this clip waiting" (off-site copies: backfill, queueing)
        Index("ix_outbox_clip", "clip_id", "kind", "state"),
        # the copy loop's looks: the next copy due, the copies due now
        Index("ix_outbox_kind_state_due", "kind", "state", "available_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    kind: str = Field(max_length=16)  # webhook | email | push | telegram | offsite
    target: str = Field(max_length=500)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    #: the clip an off-site copy is of (``payload.clip_id`` too), None for other kinds; no foreign key: a copy
    #: outlives its clip's deletion (it is then skipped)
    clip_id: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    available_at: datetime = Field(default_factory=utcnow)
    state: str = Field(default="queued", max_length=16)  # queued | sent | dead | skipped
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime | None = Field(default_factory=utcnow)
    last_attempt_at: datetime | None = None


class UsageHour(SQLModel, table=True):
    """Usage aggregated per account, camera or token and hour (no IPs): statistics and billing."""

    __tablename__ = "usage_hours"
    __table_args__ = (UniqueConstraint("hour", "subject"),)
    id: int | None = Field(default=None, primary_key=True)
    hour: datetime
    subject: str = Field(max_length=80)  # account:<id> | camera:<id> | token:<id>
    account_id: str | None = Field(default=None, foreign_key="accounts.id", index=True, max_length=32)
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class ClipAccess(SQLModel, table=True):
    """Who opened the account's clips (``clipaccess``): a video played, clips or a case downloaded, a case fetched
    through its link. Shown to the account owner; kept at most ``privacy.access_log_days`` days."""

    __tablename__ = "clip_access"
    __table_args__ = (Index("ix_clip_access_account_at", "account_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    #: the account whose clips were opened (the owner's; a sub-user opens its owner's)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    #: who: the owner or a sub-user; None: someone with a case's link
    user_id: str | None = Field(default=None, max_length=32)
    via: str = Field(max_length=16)  # session | token | link
    what: str = Field(max_length=16)  # video | clips | case
    #: the clip (video), the download link or first clip (clips), the case (case)
    object_id: str = Field(max_length=32)
    clips: int = 1
    ip_prefix: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow)


class AccessLog(SQLModel, table=True):
    """Access data without persons: truncated IPs, no tokens, kept at most 90 days."""

    __tablename__ = "access_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    ip_prefix: str = Field(max_length=64)
    method: str = Field(max_length=10)
    path: str = Field(max_length=300)
    status: int
    bytes_out: int = 0
    duration_ms: int = 0


class KnownPlate(SQLModel, table=True):
    """A licence plate the customer knows (name it, be told when it appears or when an unknown one does)."""

    __tablename__ = "known_plates"
    __table_args__ = (UniqueConstraint("account_id", "text"),)
    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    text: str = Field(max_length=20)
    name: str = Field(max_length=100)
    notify: bool = True
    #: a read one character off counts as this plate (off for a plate whose neighbours are other cars)
    close_reads: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class TwoFactor(SQLModel, table=True):
    """An account's TOTP second factor (RFC 6238); ``enabled_at`` is None until a first code confirmed it."""

    __tablename__ = "two_factor"
    account_id: str = Field(foreign_key="accounts.id", primary_key=True, max_length=32)
    secret_enc: str = Field(sa_column=Column(Text, nullable=False))  # AES-GCM, context "totp:<account_id>"
    enabled_at: datetime | None = None
    last_step: int = 0  # the last accepted time step: a code is never accepted twice
    created_at: datetime = Field(default_factory=utcnow)
    #: where the server requires two-step verification, the enrolment is also confirmed with a code sent to the
    #: account's e-mail address (its SHA-256; None: none asked)
    email_code_hash: str | None = Field(default=None, max_length=64)


class RecoveryCode(SQLModel, table=True):
    """One-time recovery code of the second factor, stored hashed."""

    __tablename__ = "recovery_codes"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    code_hash: str = Field(max_length=80)
    used_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


def lock_account(s: Session, account_id: str) -> None:
    """Lock the account's row until the transaction ends (PostgreSQL; SQLite's writes are serial anyway), so a
    count against a per-account limit and the insert after it run one request at a time: requests at once never
    pass the limit together. ``FOR NO KEY UPDATE``: it does not wait for, or hold up, the key-share locks that
    inserting a row referencing the account takes (a detection's write-back, an upload), so a limit check that then
    locks a clip cannot deadlock with the write-back of that clip."""
    s.exec(select(Account.id).where(Account.id == account_id).with_for_update(key_share=True)).first()


from alarmcloud import oauth_models as _oauth_models  # noqa: E402,F401  (OAuth tables)
