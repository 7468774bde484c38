"""The alert store on SQLite and on a real PostgreSQL server.

PostgreSQL is not optional here: CI starts it, and a store that only works on
SQLite would break in production. Each test session gets its own schema (each
xdist worker too), dropped at the end, so concurrent runs don't collide. Point
TAPEWATCH_TEST_POSTGRES_URL elsewhere if the server is not on 127.0.0.1:5432.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, delete, make_url, select, text
from sqlalchemy.exc import OperationalError

from tapewatch.errors import InputError
from tapewatch.records import Alert
from tapewatch.store import alert_store as alerts_module
from tapewatch.store.alert_store import AlertStore, default_db_path, open_store
from tapewatch.store.models import AlertRow

PG_URL = os.environ.get("TAPEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
"""Parameters for tests run on both stores; the PostgreSQL case is marked, so `-m "not postgres"` works."""


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards; fails (not skips) when the server is down."""
    admin = create_engine(make_url(PG_URL).update_query_dict({"connect_timeout": "5"}))
    schema = f"tapewatch_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        unreachable = ""
    except OperationalError as err:
        admin.dispose()
        unreachable = str(err.orig).splitlines()[0]
    if unreachable:  # outside the except block, so the message is not buried under a chained traceback
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(PG_URL).render_as_string(hide_password=True)} "
            f"({unreachable}); start it or set TAPEWATCH_TEST_POSTGRES_URL",
            pytrace=False,
        )
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}", "connect_timeout": "5"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One fresh schema for the whole session (tests clean up the rows they add)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    if request.param == "sqlite":
        with open_store(tmp_path / "alerts.db") as opened:
            yield opened
        return
    with open_store(request.getfixturevalue("postgres_url")) as opened:
        assert opened.engine.dialect.name == "postgresql"
        yield opened
        with opened.engine.begin() as conn:
            conn.execute(delete(AlertRow))


def make_alert(
    minute: int = 0,
    *,
    symbol: str = "PUMP/USDT",
    venue: str = "binance",
    typology: str = "pump_and_dump",
    score: float = 0.5,
    detector: str = "pump_v1",
    evidence: dict[str, Any] | None = None,
    followup: dict[str, Any] | None = None,
) -> Alert:
    start = T0 + timedelta(minutes=minute)
    return Alert.build(
        detector=detector,
        typology=typology,
        venue=venue,
        symbol=symbol,
        start=start,
        end=start + timedelta(minutes=5),
        detected_at=start + timedelta(minutes=5),
        score=score,
        evidence=evidence if evidence is not None else {"return": 0.3},
        followup=followup,
    )


def test_saving_the_same_alerts_again_changes_nothing(store: AlertStore) -> None:
    batch = [make_alert(m) for m in range(3)]
    assert store.save(batch) == 3
    assert store.save(batch) == 0
    assert store.save([batch[0], batch[0]]) == 0
    assert store.count_by() == [(3,)]
    assert {a.id for a in store.list()} == {a.id for a in batch}


def test_duplicates_within_one_call_are_stored_once(store: AlertStore) -> None:
    alert = make_alert()
    assert store.save([alert, alert, make_alert(1)]) == 2
    assert store.count_by() == [(2,)]


def test_save_spans_several_batches(store: AlertStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts_module, "BATCH_SIZE", 7)
    batch = [make_alert(m) for m in range(20)]
    assert store.save(batch[:10]) == 10
    assert store.save(iter(batch)) == 10  # a generator works; only the last 10 are new
    assert store.count_by() == [(20,)]


def test_resave_updates_followup_only(store: AlertStore) -> None:
    original = make_alert(evidence={"return": 0.3})
    store.save([original])
    changed = original.model_copy(
        update={"followup": {"dumped": True}, "evidence": {"return": 9.9}, "score": 0.99}
    )
    assert store.save([changed]) == 0
    [stored] = store.list()
    assert stored.followup == {"dumped": True}
    assert stored.evidence == {"return": 0.3}
    assert stored.score == original.score


def test_followup_is_merged_and_never_erased_by_an_empty_one(store: AlertStore) -> None:
    alert = make_alert()
    store.save([alert.model_copy(update={"followup": {"dumped": False, "horizon_min": 30}})])
    store.save([alert])  # a re-detection knows no followup
    store.save([alert.model_copy(update={"followup": {"dumped": True}})])
    [stored] = store.list()
    assert stored.followup == {"dumped": True, "horizon_min": 30}


def test_a_late_pending_copy_never_undoes_a_settled_followup(store: AlertStore) -> None:
    """At-least-once delivery: the alert's first copy (dump pending) may come again after its update."""
    alert = make_alert(1)
    pending = {"dump": {"status": "pending", "peak_gain": 0.2}, "scheme": {"status": "open", "trades": 3}}
    settled = {
        "dump": {"status": "confirmed", "peak_gain": 0.5},
        "scheme": {"status": "complete", "trades": 9},
    }
    store.save([alert.model_copy(update={"followup": pending})])
    store.save([alert.model_copy(update={"followup": settled})])  # the twin: pending → settled goes in
    (stored,) = store.list(limit=None)
    assert stored.followup == settled
    store.save([alert.model_copy(update={"followup": pending})])  # the first copy, redelivered
    (stored,) = store.list(limit=None)
    assert stored.followup == settled


def test_list_is_newest_first_and_pages(store: AlertStore) -> None:
    batch = [make_alert(m) for m in (5, 0, 20, 10)]
    store.save(batch)
    listed = store.list()
    assert [a.detected_at for a in listed] == sorted((a.detected_at for a in batch), reverse=True)
    assert [a.id for a in store.list(limit=2, offset=1)] == [a.id for a in listed[1:3]]
    assert len(store.list(limit=None)) == 4


def test_list_filters(store: AlertStore) -> None:
    store.save(
        [
            make_alert(0, symbol="AAA/USDT", score=0.95),
            make_alert(10, symbol="BBB/USDT", venue="kraken", typology="wash_trading", score=0.75),
            make_alert(20, symbol="AAA/USDT", typology="spoofing", score=0.2),
        ]
    )

    def symbols(**filters: Any) -> list[str]:
        return [a.symbol + "@" + a.venue for a in store.list(**filters)]

    assert symbols(symbol="AAA/USDT") == ["AAA/USDT@binance", "AAA/USDT@binance"]
    assert symbols(venue="kraken") == ["BBB/USDT@kraken"]
    assert symbols(typology="wash_trading") == ["BBB/USDT@kraken"]
    assert [a.severity for a in store.list(severity=["critical", "high"])] == ["high", "critical"]
    assert symbols(typology="spoofing", symbol="BBB/USDT") == []
    # since is inclusive, until exclusive, on detected_at (= start + 5 min here)
    since, until = T0 + timedelta(minutes=15), T0 + timedelta(minutes=25)
    assert [a.typology for a in store.list(since=since, until=until)] == ["wash_trading"]
    naive_since = (T0 + timedelta(minutes=25)).replace(tzinfo=None)  # naive means UTC
    assert [a.typology for a in store.list(since=naive_since)] == ["spoofing"]


def test_datetimes_come_back_utc_aware_with_microseconds(store: AlertStore) -> None:
    paris = timezone(timedelta(hours=2))
    start = datetime(2024, 6, 1, 14, 30, 0, 123456, tzinfo=paris)
    alert = Alert.build(
        detector="d",
        typology="price_anomaly",
        venue="nyse",
        symbol="ACME",
        start=start,
        end=start + timedelta(seconds=90),
        detected_at=start + timedelta(seconds=91),
        score=0.5,
        evidence={},
    )
    store.save([alert])
    [stored] = store.list()
    for field in ("start", "end", "detected_at"):
        moment = getattr(stored, field)
        assert moment.tzinfo == UTC, field
        assert moment == getattr(alert, field), field
    assert stored.start.hour == 12 and stored.start.microsecond == 123456
    assert stored.id == alert.id


def test_evidence_round_trips_as_json(store: AlertStore) -> None:
    evidence = {
        "return": 0.4123456789,
        "volume_z": np.float64(7.5),
        "trades": np.int64(42),
        "buyers": ["a1", "b2"],
        "nested": {"ratio": 1.5, "flag": True, "none": None, "label": "pompe à fric ✓"},
        "undefined": float("nan"),
        "peak_at": datetime(2024, 3, 1, 12, 3, tzinfo=UTC),
    }
    store.save([make_alert(evidence=evidence)])
    [stored] = store.list()
    assert stored.evidence == {
        "return": 0.4123456789,
        "volume_z": 7.5,
        "trades": 42,
        "buyers": ["a1", "b2"],
        "nested": {"ratio": 1.5, "flag": True, "none": None, "label": "pompe à fric ✓"},
        "undefined": None,  # JSON has no NaN; PostgreSQL's JSONB rejects it
        "peak_at": "2024-03-01T12:03:00.000Z",
    }


def test_count_by_groups_largest_first(store: AlertStore) -> None:
    store.save(
        [
            make_alert(0, score=0.95),
            make_alert(1, score=0.95),
            make_alert(2, typology="wash_trading", score=0.5),
        ]
    )
    assert store.count_by("typology", "severity") == [
        ("pump_and_dump", "critical", 2),
        ("wash_trading", "medium", 1),
    ]
    assert store.count_by("status") == [("new", 3)]
    with pytest.raises(InputError, match="evidence"):
        store.count_by("evidence")


def test_new_rows_have_status_new_and_utc_created_at(store: AlertStore) -> None:
    before = datetime.now(UTC)
    store.save([make_alert()])
    with store.engine.connect() as conn:
        status, created_at = conn.execute(select(AlertRow.status, AlertRow.created_at)).one()
    assert status == "new"
    assert created_at.tzinfo == UTC
    assert before - timedelta(seconds=1) <= created_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_open_store_creates_parent_folders_for_a_plain_path(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "tw.db"
    with open_store(str(path)) as store:
        assert store.save([make_alert()]) == 1
    assert path.is_file()
    with open_store(f"sqlite:///{path}") as store:  # the same file through a URL
        assert store.count_by() == [(1,)]


def test_open_store_rejects_unusable_urls(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported database 'mysql'"):
        open_store("mysql://user:secret@host/db")
    with pytest.raises(InputError, match="cannot open the database"):
        open_store(f"sqlite:///{tmp_path}/missing-folder/x.db")


def test_default_db_path_honours_tapewatch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAPEWATCH_HOME", str(tmp_path / "tw"))
    assert default_db_path() == tmp_path / "tw" / "tapewatch.db"
    monkeypatch.delenv("TAPEWATCH_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".tapewatch" / "tapewatch.db"
