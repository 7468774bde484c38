"""kill -9 of `tapewatch notify run` at a random moment (most often in a retry's back-off), then a restart:
every alert reaches every destination, the log has one `sent` row for each, and a receiver that keeps the
idempotency key sees each once."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tapewatch.notify import destinations, transport
from tapewatch.store.alert_store import open_store
from tapewatch.store.models import utc_now
from unit.notify.endpoints import webhook_server
from unit.notify.helpers import add_rule
from unit.store.test_store import make_alert

from .kill import BACKENDS, FAST_NOTIFY, crash_rng, database, delivery_log, stop_all, wait_for

ALERTS = 4


def notify_run(db: str, config: Path) -> subprocess.Popen:
    since = (utc_now() - timedelta(hours=1)).isoformat()
    command = [sys.executable, "-m", "tapewatch", "notify", "run", "--db", db, "--config", str(config)]
    return subprocess.Popen([*command, "--since", since], stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_notify_run_killed_mid_delivery_and_restarted_delivers_everything_once_per_key(tmp_path, backend):
    config = tmp_path / "tapewatch.toml"
    config.write_text(FAST_NOTIFY)
    with database(backend, tmp_path) as db, webhook_server() as webhook:
        webhook.fail_first_per_key = 1  # every delivery fails once, then waits 0.3 s before its retry
        urls = [f"json://127.0.0.1:{webhook.port}/{path}" for path in ("desk", "pager")]
        alerts = [make_alert(minute, symbol=f"S{minute}/USDT") for minute in range(ALERTS)]
        with open_store(db) as store:
            add_rule(store.engine, "all", *urls)
            store.save(alerts)
        expected = {
            (alert.id, destinations.mask(url)): transport.idempotency_key(alert.id, destinations.mask(url))
            for alert in alerts
            for url in urls
        }
        # Requests come one at a time, two per delivery: odd ones fail and start a back-off.
        kill_at = crash_rng(f"notify run on {backend}").randint(1, 2 * len(expected) - 2)
        print(f"killing notify run at request {kill_at} of {2 * len(expected)}")
        processes = []
        try:
            doomed = notify_run(db, config)
            processes.append(doomed)
            wait_for(lambda: len(webhook.requests) >= kill_at, f"request {kill_at} at the endpoint")
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(10)
            left = [row for row in delivery_log(db) if row[2] == "sending"]
            if kill_at % 2:
                assert left, "killed in a back-off: that delivery must still be claimed"

            survivor = notify_run(db, config)
            processes.append(survivor)

            def all_sent() -> bool:
                rows = delivery_log(db)
                return len(rows) == len(expected) and all(status == "sent" for _, _, status in rows)

            wait_for(all_sent, "every delivery sent after the restart")
            survivor.send_signal(signal.SIGTERM)
            _, said = survivor.communicate(timeout=30)
        finally:
            stop_all(processes)
        assert survivor.returncode == 0, said
        rows = delivery_log(db)
        assert sorted((alert_id, where) for alert_id, where, _ in rows) == sorted(expected)
        received = webhook.delivered()
        assert set(received) == set(expected.values())  # at least once each, nothing else
        summary = re.search(r"(\d+) abandoned send\(s\) taken over", said)
        assert summary, said
        taken_over = int(summary.group(1))
        # More than were left only if a loaded machine made one of the survivor's own sends outlast the expiry.
        assert taken_over >= len(left)
        # Only a delivery taken over can arrive twice: its first holder may have sent it before it died.
        assert sum(received.values()) - len(received) <= taken_over
