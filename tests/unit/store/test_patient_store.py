"""A live stream's alerts survive a real database outage: PostgreSQL behind a relay that goes down and back."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from tapewatch.store.alert_store import open_store
from tapewatch.store.models import AlertRow
from tapewatch.store.patient import PatientStore
from unit.store.tcp_proxy import TcpProxy
from unit.store.test_store import make_alert, postgres_url  # noqa: F401  (session fixture: a fresh PostgreSQL schema)

pytestmark = pytest.mark.postgres


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def relayed(postgres_url):  # noqa: F811
    url = make_url(postgres_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        yield proxy, url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def test_alerts_wait_through_an_outage_with_back_off_and_are_all_saved_after(relayed, caplog):
    proxy, url = relayed
    clock = Clock()
    first, during, later = (make_alert(i) for i in range(3))
    patient = PatientStore(open_store(url), initial_s=1.0, max_s=3.0, clock=clock)
    try:
        patient.save([first])
        assert patient.waiting == []

        proxy.down()
        with caplog.at_level(logging.WARNING, logger="tapewatch.store"):
            patient.save([during])  # fails: kept, not raised
            assert patient.waiting == [during] and patient.failures == 1
            patient.save([])  # within the back-off: no attempt
            assert patient.failures == 1
            for expected_failures, wait in ((2, 1.0), (3, 2.0), (4, 3.0), (5, 3.0)):  # doubling, capped
                clock.now += wait
                patient.save([])
                assert patient.failures == expected_failures
        assert "store: saving 1 alert(s) failed" in caplog.text and "retrying in 3.0s" in caplog.text

        proxy.up()
        clock.now += 3.0
        patient.save([later])
        assert patient.waiting == [] and patient.saved == 3
        assert {a.id for a in patient.store.list(limit=None)} == {first.id, during.id, later.id}
    finally:
        with patient.store.engine.begin() as conn:
            conn.execute(delete(AlertRow))
        assert patient.close() == 0


def test_closing_during_an_outage_says_how_many_were_not_saved(relayed):
    proxy, url = relayed
    patient = PatientStore(open_store(url), initial_s=0.01, max_s=0.02)
    proxy.down()
    patient.save([make_alert()])
    assert patient.close(attempts=2) == 1 and patient.failures == 3
