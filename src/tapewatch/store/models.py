"""The database schema: SQLAlchemy 2 declarative models, all on one `metadata`.

Everything persistent (alerts now; cases, comments, audit log, users later)
hangs off `Base.metadata`, so `metadata.create_all` and Alembic's autogenerate
(`target_metadata = tapewatch.store.models.metadata`) see one picture. The
naming convention gives every index and constraint a stable name, which
Alembic needs to alter or drop them portably.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Dialect, Float, Index, Integer, MetaData, String, UniqueConstraint
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

ALERT_STATUSES = ("new", "open", "escalated", "dismissed", "closed")
"""Workflow states an alert can be in; only "new" is set by this version (cases come later)."""


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
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    __table_args__ = (
        Index(None, "venue", "symbol", "detected_at"),
        Index(None, "typology", "severity"),
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
