"""`notify run` through a database outage: polls fail, are counted and logged, and what was stored meanwhile
is delivered once the database is back."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import make_url

from tapewatch.notify.runner import NotifyRunner
from tapewatch.store.alert_store import open_engine, open_store
from tapewatch.store.models import utc_now
from unit.store.tcp_proxy import TcpProxy
from unit.store.test_store import make_alert, postgres_schema

from .helpers import add_rule, logged


def wait(check, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.postgres
def test_notify_run_rides_out_a_database_outage_and_then_delivers_what_was_stored(webhook, settings, caplog):
    with postgres_schema() as direct:
        target = make_url(direct)
        with TcpProxy((target.host, target.port)) as proxy, open_store(direct) as store:
            rule = add_rule(store.engine, "all", f"json://127.0.0.1:{webhook.port}/hook")
            through = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            engine = open_engine(through)
            quick = settings.model_copy(update={"poll_s": 0.05})
            runner = NotifyRunner(engine, quick, since=utc_now() - timedelta(hours=1))
            stop = threading.Event()
            thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
            thread.start()
            try:
                proxy.down()
                wait(lambda: runner.report.db_errors >= 2, "polls to fail while the database is away")
                alert = make_alert(0)
                store.save([alert])  # stored by another writer during the outage
                proxy.up()
                wait(
                    lambda: logged(store.engine) == [(rule.id, alert.id, "sent")], "the alert to be delivered"
                )
            finally:
                stop.set()
                thread.join(10)
                engine.dispose()
    assert len(webhook.requests) == 1
    assert "database error(s)" in runner.report.summary() and runner.report.db_errors >= 2
    assert any("polling failed" in record.getMessage() for record in caplog.records)
