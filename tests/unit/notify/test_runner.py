"""Following the store (`notify run`) across restarts, and notifying from a live sink off the hot path."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tapewatch.engine.stream import Emitted
from tapewatch.notify.background import BackgroundNotifier
from tapewatch.notify.router import Notifier
from tapewatch.notify.runner import NotifyRunner
from tapewatch.store.models import AlertRow, utc_now
from unit.store.test_store import make_alert

from .helpers import add_rule, logged


def backdate(engine, alert_ids, by: timedelta) -> None:
    """Make alerts look stored long ago (insertion time is set by the store)."""
    table = AlertRow.__table__
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id.in_(alert_ids)).values(created_at=utc_now() - by))


def test_the_runner_notifies_alerts_stored_after_it_started_and_a_restart_neither_resends_nor_skips(
    engine, store, webhook, settings
):
    add_rule(engine, "pumps", f"json://127.0.0.1:{webhook.port}/hook", typologies=["pump_and_dump"])
    history = make_alert(0)
    store.save([history])
    backdate(engine, [history.id], timedelta(hours=2))

    runner = NotifyRunner(engine, settings)
    assert runner.poll() == []  # what was there before the first start is not news
    fresh = [make_alert(10), make_alert(11, symbol="MOON/USDT")]
    store.save(fresh)
    assert {d.alert_id for d in runner.poll()} == {a.id for a in fresh}
    assert runner.poll() == []

    unmatched = make_alert(20, typology="wash_trading", detector="wash_v1")
    while_down = make_alert(21, symbol="DOWN/USDT")
    store.save([unmatched, while_down])  # stored while no runner was running

    restarted = NotifyRunner(engine, settings)
    assert [d.alert_id for d in restarted.poll()] == [while_down.id]
    assert restarted.poll() == []
    assert NotifyRunner(engine, settings).poll() == []  # and once more: nothing is sent twice
    assert len(webhook.requests) == 3
    assert history.id not in {alert_id for _, alert_id, _ in logged(engine)}
    assert dict(restarted.report.outcomes) == {"sent": 1}


def test_since_makes_a_first_start_notify_older_alerts(engine, store, webhook, settings):
    add_rule(engine, "all", f"json://127.0.0.1:{webhook.port}/hook")
    old = make_alert(0)
    store.save([old])
    backdate(engine, [old.id], timedelta(hours=2))
    runner = NotifyRunner(engine, settings, since=utc_now() - timedelta(hours=3))
    assert [d.alert_id for d in runner.poll()] == [old.id]


def test_an_alert_committed_late_with_an_earlier_insertion_time_is_still_picked_up(
    engine, store, webhook, settings
):
    add_rule(engine, "all", f"json://127.0.0.1:{webhook.port}/hook")
    runner = NotifyRunner(engine, settings, since=utc_now() - timedelta(hours=1))  # running for an hour
    first = make_alert(0)
    store.save([first])
    assert len(runner.poll()) == 1
    late = make_alert(1, symbol="LATE/USDT")
    store.save([late])
    backdate(engine, [late.id], timedelta(seconds=20))  # a writer whose clock lags, within lookback_s
    assert [d.alert_id for d in runner.poll()] == [late.id]
    assert runner.poll() == [] and len(webhook.requests) == 2


def test_pages_of_alerts_are_all_notified(engine, store, webhook, settings, monkeypatch):
    from tapewatch.notify import runner as runner_module

    monkeypatch.setattr(runner_module, "PAGE", 2)
    add_rule(engine, "all", f"json://127.0.0.1:{webhook.port}/hook")
    runner = NotifyRunner(engine, settings)
    alerts = [make_alert(m, symbol=f"S{m}/USDT") for m in range(5)]
    store.save(alerts)
    assert sorted(d.alert_id for d in runner.poll()) == sorted(a.id for a in alerts)


def test_a_live_sink_hands_alerts_to_a_background_worker_and_updates_are_not_new(
    engine, store, webhook, settings
):
    add_rule(engine, "all", f"json://127.0.0.1:{webhook.port}/hook")
    alert, other = make_alert(0), make_alert(1, symbol="MOON/USDT")
    store.save([alert, other])
    with BackgroundNotifier(Notifier(engine, settings)) as notifier:
        notifier([Emitted(alert), Emitted(other)])
        notifier([Emitted(alert.model_copy(update={"followup": {"dump": True}}), update=True)])
        notifier.wait()
        assert notifier.logged == 2
    assert sorted(a for _, a, _ in logged(engine)) == sorted([alert.id, other.id])
    assert len(webhook.requests) == 2


def test_a_restart_before_anything_was_ever_sent_still_notifies_what_came_while_it_was_down(
    engine, store, webhook, settings
):
    add_rule(engine, "pumps", f"json://127.0.0.1:{webhook.port}/hook", typologies=["pump_and_dump"])
    runner = NotifyRunner(engine, settings)
    store.save([make_alert(0, typology="wash_trading", detector="wash_v1")])
    assert runner.poll() == []  # looked at, matched nothing: the delivery log stays empty
    while_down = make_alert(5)
    store.save([while_down])  # stored before the restart below: a restart from "now" would skip it
    assert [d.alert_id for d in NotifyRunner(engine, settings).poll()] == [while_down.id]
    assert len(webhook.requests) == 1
