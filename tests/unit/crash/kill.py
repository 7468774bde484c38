"""Shared pieces of the crash tests: a seeded moment to die at, a throwaway database on each backend,
and waiting for a process or a condition with a clear failure.

The moment a process is killed at is drawn from a seeded generator whose seed
is printed (pytest shows it when the test fails); `TAPEWATCH_CRASH_SEED=N`
replays that exact run.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tapewatch.config import NotifySettings
from tapewatch.store.alert_store import open_store
from tapewatch.store.models import DeliveryRow
from unit.store.test_store import BACKENDS, postgres_schema

__all__ = [
    "BACKENDS",
    "FAST_NOTIFY",
    "crash_rng",
    "database",
    "delivery_log",
    "fast_notify",
    "stop_all",
    "wait_for",
]

SEED_ENV = "TAPEWATCH_CRASH_SEED"
WAIT_S = 60.0
"""Longest a crash test waits for anything: generous, for a loaded CI machine."""


FAST_NOTIFY = """[notify]
retries = 2
retry_initial_s = 0.3
retry_max_s = 0.3
timeout_s = 0.5
poll_s = 0.1
"""
"""Notifier settings (a `--config` file) for crash tests: claims expire after 3 × 0.5 + 0.6 + 0.5 = 2.6 s,
so a send a killed process left is taken over within seconds."""


def fast_notify() -> NotifySettings:
    return NotifySettings.model_validate(tomllib.loads(FAST_NOTIFY)["notify"])


def crash_rng(what: str) -> random.Random:
    """A generator for the kill moment, seeded from $TAPEWATCH_CRASH_SEED or at random, the seed printed."""
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"{what}: crash seed {seed} (replay with {SEED_ENV}={seed})")
    return random.Random(seed)


@contextlib.contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """What `--db` takes: a SQLite file in tmp_path, or a URL on a fresh PostgreSQL schema (dropped after)."""
    if backend == "sqlite":
        yield str(tmp_path / "alerts.db")
        return
    with postgres_schema() as url:
        yield url


def delivery_log(db: str) -> list[tuple[str, str, str]]:
    """The delivery log as (alert id, masked destination, status), in insertion order."""
    table = DeliveryRow.__table__
    query = select(table.c.alert_id, table.c.destination, table.c.status).order_by(table.c.id)
    with open_store(db) as store, store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def wait_for(check: Callable[[], bool], what: str, timeout: float = WAIT_S, every: float = 0.02) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def stop_all(processes: list[subprocess.Popen]) -> None:
    """Kill whatever a failed test left running (a passing one has ended them all)."""
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)
