"""Saving and querying alerts: the store's front door for the engine, CLI and API.

`open_store()` takes a file path (SQLite, the no-server default) or a database
URL (PostgreSQL in production) and returns an `AlertStore`. Saving is
idempotent on the deterministic alert id, so replays and restarts never
duplicate; only `followup`, which is learnt after the fact, can change later.
"""

from __future__ import annotations

import builtins
import json
import math
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    make_url,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from tapewatch.closing import Closing
from tapewatch.errors import InputError
from tapewatch.home import home_dir
from tapewatch.records import Alert, newer_followup, to_iso
from tapewatch.store.models import AlertRow
from tapewatch.store.schema import upgrade

ALERTS = cast(Table, AlertRow.__table__)
ALERT_FIELDS = tuple(name for name in Alert.model_fields if name != "timing")
"""The columns that make up an `Alert` (timing is a live run's measurement, not stored); the rest
(status, created_at) belong to the store."""
COUNTABLE_FIELDS = ("typology", "severity", "venue", "symbol", "detector", "status")
BATCH_SIZE = 500
"""Rows per INSERT: large enough to be fast, small enough for SQLite's bound-parameter limit."""

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
SQLITE_LOCK_WAIT_S = 30.0
"""How long a SQLite connection waits for another writer's lock before giving up."""


def default_db_path() -> Path:
    """Where the store lives when nobody says: `tapewatch.db` in the Tapewatch home folder."""
    return home_dir() / "tapewatch.db"


def open_store(url: str | Path, **engine_options: Any) -> AlertStore:
    """Open (and create, if new) the alert store at a file path or database URL (see `open_engine`)."""
    return AlertStore(open_engine(url, **engine_options))


def open_engine(url: str | Path, **engine_options: Any) -> Engine:
    """Open (and create, if new) the database at a file path or URL, with every table in place.

    A plain path is a SQLite file; its parent folders are created so a first
    run needs no setup. Anything containing "://" is a SQLAlchemy URL and is
    used as is (`sqlite:///…`, `postgresql://user@host/db`, which SQLAlchemy 2.1
    drives with psycopg 3). The schema is brought up to date with Alembic
    migrations (`store/schema.py`). A database that cannot be opened is an InputError.
    `engine_options` go to `create_engine` (e.g. the API's connection pool size).
    """
    resolved = _resolve_url(url)
    if resolved.get_backend_name() not in SUPPORTED_DIALECTS:
        raise InputError(
            f"store URL {_safe(url)}: unsupported database {resolved.get_backend_name()!r}; "
            "expected a SQLite file path, sqlite:///FILE or postgresql://USER@HOST/DB"
        )
    sqlite_file = resolved.get_backend_name() == "sqlite"
    if sqlite_file:
        engine_options["connect_args"] = {
            "timeout": SQLITE_LOCK_WAIT_S,
            **engine_options.get("connect_args", {}),
        }
    engine = create_engine(resolved, json_serializer=_dump_json, **engine_options)
    if sqlite_file and engine_options.get("isolation_level") != "AUTOCOMMIT":
        # An autocommit engine (the API's reads) opens no transaction: it must take no write lock.
        _write_lock_first(engine)
    try:
        upgrade(engine)
    except OperationalError as err:
        engine.dispose()
        reason = str(err.orig or err).strip().splitlines()[0]
        raise InputError(f"store {_safe(url)}: cannot open the database: {reason}") from None
    return engine


def _write_lock_first(engine: Engine) -> None:
    """Every SQLite transaction takes the write lock when it begins (BEGIN IMMEDIATE).

    Several processes share one SQLite file (a stream saving alerts, its notifier claiming
    deliveries, the API). With pysqlite's deferred transactions, one that read first and then
    writes while another holds the write lock gets "database is locked" at once: SQLite does not
    wait there, since waiting could deadlock. Taking the lock up front makes every writer wait
    its turn, up to `SQLITE_LOCK_WAIT_S` (the connection's busy timeout). The recipe is
    SQLAlchemy's own for pysqlite (hand the BEGIN to SQLAlchemy, then emit it).
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _resolve_url(url: str | Path) -> URL:
    if isinstance(url, str) and "://" in url:
        try:
            return make_url(url)
        except ArgumentError as err:
            raise InputError(f"store URL {_safe(url)}: {err}") from None
    path = Path(url).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(path))


def _safe(url: str | Path) -> str:
    """The URL with any password hidden, for error messages."""
    if isinstance(url, str) and "://" in url:
        try:
            return make_url(url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<unparseable URL>"
    return str(url)


class AlertStore(Closing):
    """Alerts in a relational database: idempotent saves, filtered listing, summary counts.

    Use as a context manager (or call `close()`) so connections are released.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def save(self, alerts: Iterable[Alert]) -> int:
        """Store alerts not seen before and return how many were new.

        An id already stored is left as it is, except that a non-empty `followup`
        is merged into the stored one (new keys win, but a settled section is never
        replaced by a pending one: `newer_followup`): follow-ups are learnt after
        the fact, while a re-detection with an empty followup must not erase them.
        Within one call, the last alert with a given id wins.
        """
        inserted = 0
        with self.engine.begin() as conn:
            for batch in _batches(_unique_by_id(alerts), BATCH_SIZE):
                new_ids = self._insert_new(conn, batch)
                inserted += len(new_ids)
                self._merge_followups(conn, [a for a in batch if a.id not in new_ids and a.followup])
        return inserted

    def _insert_new(self, conn: Connection, batch: list[Alert]) -> set[str]:
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(ALERTS).on_conflict_do_nothing(index_elements=["id"]).returning(ALERTS.c.id)
        return set(conn.execute(stmt, [_to_row(a) for a in batch]).scalars())

    def _merge_followups(self, conn: Connection, alerts: list[Alert]) -> None:
        if not alerts:
            return
        query = (
            select(ALERTS.c.id, ALERTS.c.followup)
            .where(ALERTS.c.id.in_([a.id for a in alerts]))
            .with_for_update()  # a no-op on SQLite, which locks the whole file anyway
        )
        stored: dict[str, Any] = {key: doc for key, doc in conn.execute(query)}
        changes = []
        for alert in alerts:
            merged = newer_followup(stored[alert.id] or {}, _json_safe(alert.followup))
            if merged != stored[alert.id]:
                changes.append({"key": alert.id, "followup": merged})
        if changes:
            stmt = update(ALERTS).where(ALERTS.c.id == bindparam("key"))
            conn.execute(stmt.values(followup=bindparam("followup")), changes)

    def list(
        self,
        typology: str | Collection[str] | None = None,
        severity: str | Collection[str] | None = None,
        symbol: str | Collection[str] | None = None,
        venue: str | Collection[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
        status: str | Collection[str] | None = None,
        case_id: int | None = None,
    ) -> builtins.list[Alert]:  # `list` here would name this method
        """Alerts matching every given filter, newest `detected_at` first.

        Each text filter takes one value or several (any of them matches).
        `since` is inclusive and `until` exclusive, on `detected_at`; naive
        datetimes are taken as UTC. `limit=None` returns everything.
        """
        conditions = alert_conditions(
            typology=typology,
            severity=severity,
            symbol=symbol,
            venue=venue,
            status=status,
            case_id=case_id,
            since=since,
            until=until,
        )
        query: Select[Any] = (
            select(*(ALERTS.c[name] for name in ALERT_FIELDS))
            .where(*conditions)
            .order_by(ALERTS.c.detected_at.desc(), ALERTS.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [Alert.model_validate(row._asdict()) for row in conn.execute(query)]

    def count_by(self, *fields: str) -> builtins.list[tuple[Any, ...]]:
        """Alert counts grouped by the given fields, as `(value, ..., count)` rows, largest first.

        For summary tables, e.g. `count_by("typology", "severity")`. With no
        field it returns the total as `[(n,)]`.
        """
        unknown = [f for f in fields if f not in COUNTABLE_FIELDS]
        if unknown:
            raise InputError(f"cannot count alerts by {unknown[0]!r}; expected one of {COUNTABLE_FIELDS}")
        columns = [ALERTS.c[f] for f in fields]
        n = func.count().label("n")
        query = select(*columns, n).select_from(ALERTS).group_by(*columns).order_by(n.desc(), *columns)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]


def alert_conditions(
    *,
    typology: str | Collection[str] | None = None,
    severity: str | Collection[str] | None = None,
    symbol: str | Collection[str] | None = None,
    venue: str | Collection[str] | None = None,
    status: str | Collection[str] | None = None,
    case_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of `AlertStore.list`'s filters, for queries that select other columns
    (the API reads each alert with its workflow state in one query)."""
    conditions = [
        *_matches("typology", typology),
        *_matches("severity", severity),
        *_matches("symbol", symbol),
        *_matches("venue", venue),
        *_matches("status", status),
    ]
    if case_id is not None:
        conditions.append(ALERTS.c.case_id == case_id)
    if since is not None:
        conditions.append(ALERTS.c.detected_at >= since)
    if until is not None:
        conditions.append(ALERTS.c.detected_at < until)
    return conditions


def _matches(field: str, wanted: str | Collection[str] | None) -> list[ColumnElement[bool]]:
    if wanted is None:
        return []
    column = ALERTS.c[field]
    if isinstance(wanted, str):
        return [column == wanted]
    return [column.in_(list(wanted))]


def _to_row(alert: Alert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in ALERT_FIELDS}  # JSON made safe by _dump_json


def _unique_by_id(alerts: Iterable[Alert]) -> list[Alert]:
    # PostgreSQL refuses one INSERT that touches the same key twice.
    return list({alert.id: alert for alert in alerts}.values())


def _batches(items: Sequence[Alert], size: int) -> Iterator[list[Alert]]:
    for begin in range(0, len(items), size):
        yield list(items[begin : begin + size])


def _json_safe(value: Any) -> Any:
    """Plain JSON values: NaN/inf become null (PostgreSQL's JSONB rejects them), numpy scalars
    become Python numbers, datetimes ISO-8601 UTC text; so the stored document compares equal
    to what is read back."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _json_safe(value.tolist())
    return str(value)


def _dump_json(value: Any) -> str:
    return json.dumps(_json_safe(value), separators=(",", ":"), allow_nan=False)
