"""The database schema: SQLAlchemy 2 declarative models, all on one `metadata`.

Everything persistent (instruments, alerts and their workflow, cases, comments,
the audit log, users and API keys, notification rules and deliveries) hangs off
`Base.metadata`, so Alembic's autogenerate (`store/migrations/`) sees one
picture. The naming convention gives every index and constraint a stable name,
which Alembic needs to alter or drop them portably.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ALERT_STATUSES = ("new", "acknowledged", "in_case", "closed")
"""An alert's workflow: new → acknowledged → in a case → closed (with a disposition and a reason)."""
CASE_STATUSES = ("open", "closed")
DISPOSITIONS = ("true_positive", "false_positive", "benign")
"""How a closed alert or case was judged: manipulation, a detector's mistake, or real but innocent."""
ROLES = ("viewer", "analyst", "admin")
"""viewer reads; analyst also works alerts and cases; admin also manages users, keys and rules."""
SEVERITIES = ("low", "medium", "high", "critical")


def utc_now() -> datetime:
    """The current time, UTC-aware: the only kind of datetime the store hands out."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as a UTC-aware datetime on every backend.

    PostgreSQL keeps the instant (timestamptz) but returns it in the session's
    time zone; SQLite keeps no zone at all. So values are converted to UTC on
    the way in (naive values are taken as UTC, as `records.to_iso` does) and
    stamped/converted to UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _as_utc(value)
        # SQLite would store "+00:00" text for aware values and then compare strings:
        # keep it naive-UTC there so ordering and range filters stay correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
"""JSON everywhere, JSONB on PostgreSQL so evidence can be indexed and queried later."""


class Base(DeclarativeBase):
    """Declarative base of every table; its metadata is the schema's single source."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


metadata = Base.metadata
"""The schema, for `create_all` and for Alembic's `target_metadata`."""


class AlertRow(Base):
    """One stored alert: the `records.Alert` fields plus its workflow status and insertion time.

    The primary key is the alert's deterministic id, which is what makes saving
    a replayed run a no-op.
    """

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    typology: Mapped[str] = mapped_column(String(48))
    venue: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime]
    end: Mapped[datetime]
    detected_at: Mapped[datetime] = mapped_column(index=True)  # the default listing order
    score: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(16))
    detector: Mapped[str] = mapped_column(String(96))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    followup: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)  # followed by the feed, notify
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    disposition: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None]  # the last workflow change (None: untouched since detection)

    __table_args__ = (
        Index(None, "venue", "symbol", "detected_at"),
        Index(None, "typology", "severity"),
        Index(None, "status", "detected_at"),
    )

    def __repr__(self) -> str:
        return f"AlertRow(id={self.id!r}, {self.typology} {self.venue}:{self.symbol} @ {self.detected_at})"


INSTRUMENT_STATUSES = ("listed", "delisted")


class InstrumentRow(Base):
    """A tradable instrument on one venue, kept in step with the venue's own listing.

    Crypto markets come from the exchange (ccxt `load_markets`), stocks from the
    exchanges' symbol directories. A symbol that disappears from a listing is
    marked delisted, never deleted, so alerts on it keep their context.
    """

    __tablename__ = "instruments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    venue: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    asset_class: Mapped[str] = mapped_column(String(16))  # "crypto" / "stock"
    base: Mapped[str | None] = mapped_column(String(32))
    quote: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(String(256))
    listing_exchange: Mapped[str | None] = mapped_column(String(32))  # e.g. NASDAQ, NYSE, TSXV
    status: Mapped[str] = mapped_column(String(16), default="listed", server_default="listed")
    first_seen: Mapped[datetime] = mapped_column(default=utc_now)
    last_seen: Mapped[datetime] = mapped_column(default=utc_now)
    delisted_at: Mapped[datetime | None]
    last_price: Mapped[float | None] = mapped_column(Float)
    market_cap: Mapped[float | None] = mapped_column(Float)
    avg_volume: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (UniqueConstraint("venue", "symbol"), Index(None, "asset_class", "status"))

    def __repr__(self) -> str:
        return f"InstrumentRow({self.venue}:{self.symbol}, {self.status})"


class CaseRow(Base):
    """An investigation grouping related alerts, worked by an assignee and closed with a disposition."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open", index=True)
    assignee: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    disposition: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))


class CommentRow(Base):
    """An analyst's note on a case; comments are never edited (a correction is another comment)."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class AuditRow(Base):
    """One change to anything a person can change: who, when, what, to which record, with details.

    Append-only: the migration installs triggers that refuse UPDATE and DELETE on
    this table on both SQLite and PostgreSQL, so not even a bug can rewrite history.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    entity: Mapped[str] = mapped_column(String(16))  # alert / case / user / api_key / rule
    entity_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index(None, "entity", "entity_id"),)


class UserRow(Base):
    """A person (or service) with a role; a password only for console log-in, API keys for the rest."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ApiKeyRow(Base):
    """An API key, stored as a hash of the secret; `prefix` (public) finds it without scanning."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    parent_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    """The key whose holder made this one (None: made by a password session or the CLI): revoking
    that key revokes this one too, so a stolen key cannot leave a copy of itself behind."""


class SessionRow(Base):
    """A console log-in, kept on the server so it can be ended: the cookie holds only a random token.

    A session ends at `expires_at`, or earlier when revoked: by logging out, by a
    password change or removal of its user, or by revoking the key it was opened with.
    """

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class NotificationRuleRow(Base):
    """Which alerts go where: filters (empty = any) and Apprise destinations, with a cooldown.

    Destinations hold Apprise URLs, which carry webhook tokens and passwords:
    they may instead name an environment variable (`env:DISCORD_URL`) so the
    secret stays out of the database, and the API shows them masked.
    """

    __tablename__ = "notification_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    typologies: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    min_severity: Mapped[str] = mapped_column(String(16), default="low", server_default="low")
    venues: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    symbols: Mapped[list[str]] = mapped_column(JSONDocument, default=list)  # a watchlist
    destinations: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    cooldown_s: Mapped[float] = mapped_column(Float, default=900.0, server_default="900")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class DeliveryRow(Base):
    """One alert to one destination through one rule: sent, failed (after retries) or suppressed, and why."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("notification_rules.id"), index=True)
    alert_id: Mapped[str] = mapped_column(String(64), index=True)
    destination: Mapped[str] = mapped_column(String(256))  # masked: never the secret
    status: Mapped[str] = mapped_column(
        String(16)
    )  # sending (claimed) / sent / failed / cooldown / duplicate
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("rule_id", "alert_id", "destination"),)


class ServiceStateRow(Base):
    """A long-running process's bookmark (e.g. how far the notifier has read), so a restart resumes there."""

    __tablename__ = "service_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
