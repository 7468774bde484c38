"""SQLite writers take the write lock when their transaction begins; autocommit reads take none."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, event, text

from tapewatch.store.alert_store import open_engine


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, statement, *_: seen.append(statement))
    return seen


def test_a_transaction_begins_with_the_write_lock(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "alerts.db")
    seen = _statements(engine)
    with engine.begin() as connection:
        connection.execute(text("SELECT count(*) FROM alerts")).all()
    assert seen[0] == "BEGIN IMMEDIATE"


def test_autocommit_reads_do_not_block_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    writes = open_engine(path, connect_args={"timeout": 0.1})
    reads = open_engine(path, isolation_level="AUTOCOMMIT")
    seen = _statements(reads)
    with reads.connect() as reader:
        reader.execute(text("SELECT count(*) FROM alerts")).all()
        with writes.begin() as writer:  # would fail "database is locked" were the read holding the lock
            writer.execute(text("DELETE FROM alerts"))
    assert "BEGIN IMMEDIATE" not in seen
