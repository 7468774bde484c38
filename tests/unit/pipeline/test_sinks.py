"""The one alerts-out: JSON lines, the store (patient, strict or left to the caller), notifications."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tapewatch.config import Settings, StoreSettings
from tapewatch.engine.stream import Emitted
from tapewatch.errors import InputError
from tapewatch.pipeline import sinks
from tapewatch.pipeline.sinks import open_alerts_out
from tapewatch.store.alert_store import open_store
from unit.store.test_store import BACKENDS, make_alert, postgres_schema


def emitted(*minutes: int) -> list[Emitted]:
    return [Emitted(make_alert(minute)) for minute in minutes]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new schema on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield str(tmp_path / "a.db")
        return
    with postgres_schema() as url:
        yield url


def break_the_store(db: str) -> None:
    """Saving fails from here on, as it does while the database is away."""
    with open_store(db) as store, store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE alerts RENAME TO alerts_away"))


def test_lines_and_the_store_receive_each_batch(tmp_path: Path, db: str) -> None:
    out = open_alerts_out(Settings(), output=tmp_path / "alerts.jsonl", db=db)
    out(emitted(0, 1))
    out.close()
    lines = [json.loads(line)["id"] for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    with open_store(db) as store:
        assert sorted(lines) == sorted(alert.id for alert in store.list()) and len(lines) == 2


def test_a_patient_store_holds_what_it_cannot_save_and_a_strict_one_raises(db: str) -> None:
    fast = Settings(store=StoreSettings(retry_initial_s=0.01, retry_max_s=0.02))  # the waits are real sleeps
    patient = open_alerts_out(fast, lines=False, db=db)
    strict = open_alerts_out(Settings(), lines=False, db=db, save="strict")
    break_the_store(db)
    patient(emitted(0))
    assert patient.patient is not None and len(patient.patient.waiting) == 1  # held, retried later
    with pytest.raises(SQLAlchemyError):
        strict(emitted(1))  # a bus worker leaves the messages unacked: they come again
    assert strict.patient is None
    strict.close()
    assert patient.close() is None and patient.patient.waiting  # still not saved: stream reports it


def test_save_no_leaves_the_store_to_the_caller(db: str) -> None:
    out = open_alerts_out(Settings(), lines=False, db=db, save="no")
    out(emitted(0))
    assert out.store is not None and out.store.list() == []
    out.close()


def test_notifications_need_the_store_and_a_failed_opening_closes_what_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="need the store"):
        open_alerts_out(Settings(), store=False, notify=True)
    closed: list[Path | None] = []

    class Writer(sinks.AlertLineWriter):
        def close(self) -> None:
            closed.append(self.path)
            super().close()

    monkeypatch.setattr(sinks, "AlertLineWriter", Writer)
    (tmp_path / "not-a-db").mkdir()
    output = tmp_path / "alerts.jsonl"
    with pytest.raises(InputError, match="cannot open the database"):  # a directory is no SQLite file
        open_alerts_out(Settings(), output=output, db=str(tmp_path / "not-a-db"))
    assert closed == [output]  # the writer opened first was closed again
