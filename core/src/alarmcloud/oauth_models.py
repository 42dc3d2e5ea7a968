"""OAuth 2 tables: clients, one-time codes, token pairs (hashes only), grants and per-integration pseudonyms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from alarmcloud.models import new_id, utcnow


class OAuthClient(SQLModel, table=True):
    """A registered client (an integration platform such as IFTTT, Alexa, Google)."""

    __tablename__ = "oauth_clients"
    id: str = Field(primary_key=True, max_length=64)  # the client_id
    name: str = Field(max_length=100)
    integration: str = Field(index=True, max_length=50)
    secret_hash: str | None = Field(default=None, max_length=64)  # None: public client
    redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    require_pkce: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class OAuthCode(SQLModel, table=True):
    """A one-time authorization code (stored as its SHA-256)."""

    __tablename__ = "oauth_codes"
    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(foreign_key="oauth_clients.id", index=True, max_length=64)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    redirect_uri: str = Field(max_length=500)
    scope: str = Field(max_length=500)
    code_challenge: str | None = Field(default=None, max_length=128)
    code_challenge_method: str | None = Field(default=None, max_length=10)
    expires_at: datetime
    used_at: datetime | None = None


class OAuthToken(SQLModel, table=True):
    """An access token with its refresh token; rotation links a token to its parent."""

    __tablename__ = "oauth_tokens"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    client_id: str = Field(foreign_key="oauth_clients.id", index=True, max_length=64)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    family_id: str = Field(index=True, max_length=32)  # all tokens descending from one code
    parent_id: str | None = Field(default=None, max_length=32)
    code_hash: str | None = Field(default=None, index=True, max_length=64)
    scope: str = Field(max_length=500)
    access_hash: str = Field(index=True, unique=True, max_length=64)
    refresh_hash: str | None = Field(default=None, index=True, unique=True, max_length=64)
    access_expires_at: datetime
    refresh_expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None  # first use of this token (access or refresh): retires the parent
    refresh_retired_at: datetime | None = None  # the successor was used; presenting it again is reuse
    revoked_at: datetime | None = None


class OAuthGrant(SQLModel, table=True):
    """A customer's link to a client with the scopes granted (one live row per account and client)."""

    __tablename__ = "oauth_grants"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    client_id: str = Field(foreign_key="oauth_clients.id", index=True, max_length=64)
    integration: str = Field(max_length=50)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Pseudonym(SQLModel, table=True):
    """The stable random user id an integration sees instead of the account id or e-mail."""

    __tablename__ = "oauth_pseudonyms"
    __table_args__ = (UniqueConstraint("integration", "account_id"),)
    id: int | None = Field(default=None, primary_key=True)
    integration: str = Field(max_length=50)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=32)
    pseudonym: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)

