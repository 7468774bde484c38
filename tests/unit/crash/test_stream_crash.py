"""kill -9 of `tapewatch stream --replay … --db … --notify` once a random number of its alerts is stored, then
the same command again: the store holds what an uninterrupted run stores (every alert once, follow-ups
merged), and every alert is notified once per idempotency key."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.notify import destinations, transport
from tapewatch.notify.router import claim_expiry_s
from tapewatch.store.alert_store import ALERTS, open_store
from unit.bus import bus_harness as harness
from unit.cli.test_cli import write_ccxt_csv
from unit.engine.test_stream import busy_market
from unit.notify.endpoints import webhook_server
from unit.notify.helpers import add_rule

from .kill import BACKENDS, FAST_NOTIFY, crash_rng, database, delivery_log, fast_notify, stop_all, wait_for

SPEED = "20000"
"""The 16 h market in about 3 s, so the kill lands while alerts are still coming."""


def stream(market: Path, db: str, speed: str, config: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "tapewatch", "stream", "--replay", str(market), "--speed", speed]
    return subprocess.Popen(
        [*command, "--db", db, "--notify", "--config", str(config), "-o", str(market.with_suffix(".jsonl"))],
        stderr=subprocess.PIPE,
        text=True,
    )


def tapewatch(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tapewatch", *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)


def stored_count(db: str) -> int:
    with open_store(db) as store, store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ALERTS)).scalar_one()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """The market file, and what one uninterrupted `stream` of it stores."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    market = folder / "market.csv"
    write_ccxt_csv(busy_market(), market)
    db = folder / "alerts.db"
    args = [
        "stream",
        "--replay",
        str(market),
        "--speed",
        "max",
        "--db",
        str(db),
        "-o",
        str(folder / "a.jsonl"),
    ]
    ran = CliRunner().invoke(app, args)
    assert ran.exit_code == 0, ran.output
    return market, harness.stored_alerts(db)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_killed_mid_replay_and_run_again_stores_and_notifies_what_an_uninterrupted_run_does(
    tmp_path, backend, uninterrupted
):
    """With `--notify`, and a webhook that fails each message once: a send the kill cut short stays
    `sending`, `notify status` names it, and `notify run --once` after the claim expiry sends it."""
    market, expected = uninterrupted
    kill_when = crash_rng(f"stream on {backend}").randint(1, len(expected) - 1)
    print(f"killing stream once {kill_when} of {len(expected)} alerts are stored")
    config = tmp_path / "tapewatch.toml"
    config.write_text(FAST_NOTIFY)
    with database(backend, tmp_path) as db, webhook_server() as webhook:
        webhook.fail_first_per_key = 1
        url = f"json://127.0.0.1:{webhook.port}/desk"
        with open_store(
            db
        ) as store:  # also the schema in place first: the polls below must not race to create it
            add_rule(store.engine, "all", url)
        processes = []
        try:
            doomed = stream(market, db, SPEED, config)
            processes.append(doomed)
            wait_for(lambda: stored_count(db) >= kill_when, f"{kill_when} alert(s) stored", every=0.01)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(10)
            killed = time.monotonic()
            at_kill = stored_count(db)
            again = stream(market, db, "max", config)
            processes.append(again)
            _, said = again.communicate(timeout=60)
        finally:
            stop_all(processes)
        assert doomed.returncode == -signal.SIGKILL
        assert at_kill < len(expected), "killed after the end: nothing was left to redo"
        assert again.returncode == 0, said
        assert harness.stored_alerts(db) == expected

        time.sleep(max(0.0, killed + claim_expiry_s(fast_notify()) - time.monotonic()))
        stuck = {alert_id for alert_id, _, status in delivery_log(db) if status == "sending"}
        status = tapewatch("notify", "status", "--db", db, "--config", str(config))
        assert status.returncode == (1 if stuck else 0), status.stderr
        assert all(f"alert {alert_id} to" in status.stderr for alert_id in stuck)
        ran = tapewatch("notify", "run", "--once", "--db", db, "--config", str(config))
        assert ran.returncode == 0, ran.stderr
        masked = destinations.mask(url)
        assert sorted(delivery_log(db)) == sorted((alert_id, masked, "sent") for alert_id in expected)
        assert set(webhook.delivered()) == {
            transport.idempotency_key(alert_id, masked) for alert_id in expected
        }
