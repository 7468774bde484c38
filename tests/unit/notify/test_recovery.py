"""At-least-once delivery: a send left claimed by a stopped notifier is taken over and sent again with the
same idempotency key; a slow holder cannot overwrite its successor; `notify status` reports what is stuck."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tapewatch.config import NotifySettings
from tapewatch.engine.stream import Emitted
from tapewatch.notify import deliveries, destinations, transport
from tapewatch.notify.background import BackgroundNotifier
from tapewatch.notify.router import Notifier, claim_expiry_s
from tapewatch.notify.rules import RuleChanges, update_rule
from tapewatch.notify.runner import LIVE_WATERMARK, NotifyRunner
from tapewatch.service.actors import SYSTEM
from tapewatch.store.models import DeliveryRow, utc_now
from tapewatch.store.state import read_state
from unit.store.test_store import make_alert

from .helpers import add_rule, logged

LONG_AGO = timedelta(hours=1)


def abandon(engine, rule_id: int, alert_id: str, destination: str, ago: timedelta = LONG_AGO) -> int:
    """A `sending` row as a notifier killed mid-send leaves it, claimed `ago`."""
    held = deliveries.claim(engine, rule_id, alert_id, destinations.mask(destination))
    assert held is not None
    table = DeliveryRow.__table__
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == held.id).values(created_at=utc_now() - ago))
    return held.id


def test_the_key_is_in_the_json_body_and_header_and_the_same_on_every_attempt(
    engine, store, webhook, settings
):
    url = f"json://127.0.0.1:{webhook.port}/hook"
    add_rule(engine, "all", url)
    alert = make_alert(0)
    store.save([alert])
    webhook.fail_first = 2
    [delivery] = Notifier(engine, settings).notify([alert])
    assert delivery.status == "sent" and delivery.attempts == 3
    key = transport.idempotency_key(alert.id, destinations.mask(url))
    assert [r.json()["idempotency_key"] for r in webhook.requests] == [key] * 3
    assert [r.headers["Idempotency-Key"] for r in webhook.requests] == [key] * 3
    other = transport.idempotency_key(alert.id, destinations.mask(f"json://127.0.0.1:{webhook.port}/other"))
    assert other != key  # one key per alert and destination


@pytest.mark.parametrize("scheme", ["form", "xml"])
def test_form_and_xml_webhooks_get_the_key_too(engine, store, webhook, settings, scheme):
    add_rule(engine, "all", f"{scheme}://127.0.0.1:{webhook.port}/hook")
    alert = make_alert(0)
    store.save([alert])
    Notifier(engine, settings).notify([alert])
    [request] = webhook.requests
    assert request.headers["Idempotency-Key"] in request.body.decode()


def test_a_poll_takes_over_an_abandoned_send_and_delivers_it_with_the_same_key(
    engine, store, webhook, settings
):
    url = f"json://127.0.0.1:{webhook.port}/hook"
    rule = add_rule(engine, "all", url)
    alert = make_alert(0)
    store.save([alert])
    delivery_id = abandon(engine, rule.id, alert.id, url)
    runner = NotifyRunner(engine, settings, since=utc_now())
    [delivery] = runner.poll()
    assert (delivery.id, delivery.status, delivery.attempts) == (delivery_id, "sent", 1)
    assert webhook.requests[0].json()["idempotency_key"] == transport.idempotency_key(
        alert.id, destinations.mask(url)
    )
    assert runner.report.reclaimed == 1 and "1 abandoned send(s) taken over" in runner.report.summary()
    assert runner.poll() == [] and len(webhook.requests) == 1  # sent: never again


def test_a_recent_claim_is_left_to_its_holder(engine, store, webhook, settings):
    url = f"json://127.0.0.1:{webhook.port}/hook"
    rule = add_rule(engine, "all", url)
    alert = make_alert(0)
    store.save([alert])
    abandon(engine, rule.id, alert.id, url, ago=timedelta(seconds=claim_expiry_s(settings) / 2))
    assert Notifier(engine, settings).recover() == []
    assert webhook.requests == [] and logged(engine) == [(rule.id, alert.id, "sending")]


def test_a_slow_holder_cannot_overwrite_what_its_successor_recorded(engine, store, webhook, settings):
    url = f"json://127.0.0.1:{webhook.port}/hook"
    rule = add_rule(engine, "all", url)
    alert = make_alert(0)
    store.save([alert])
    first = deliveries.claim(engine, rule.id, alert.id, destinations.mask(url))
    [stale] = deliveries.abandoned(engine, timedelta(0))
    successor = deliveries.reclaim(engine, stale)
    assert successor is not None and deliveries.reclaim(engine, stale) is None  # one winner
    assert deliveries.finish(engine, successor, "sent", 1, None)
    assert not deliveries.finish(engine, first, "failed", 4, "timed out")
    assert logged(engine) == [(rule.id, alert.id, "sent")]


def test_an_abandoned_send_whose_destination_left_the_rule_fails_with_the_reason(
    engine, store, webhook, settings
):
    url = f"json://127.0.0.1:{webhook.port}/hook"
    rule = add_rule(engine, "all", url)
    alert = make_alert(0)
    store.save([alert])
    abandon(engine, rule.id, alert.id, url)
    update_rule(engine, SYSTEM, rule.id, RuleChanges(destinations=[f"json://127.0.0.1:{webhook.port}/new"]))
    [delivery] = Notifier(engine, settings).recover()
    assert delivery.status == "failed" and delivery.error == (
        "not sent again after a crash: the destination is no longer in the rule"
    )
    assert webhook.requests == []


def test_the_claim_expiry_covers_every_attempt_and_wait():
    settings = NotifySettings(retries=3, timeout_s=10, retry_initial_s=1, retry_max_s=3)
    assert transport.longest_send_s(settings) == 4 * 10 + 1 + 2 + 3
    assert claim_expiry_s(settings) == 46 + 10


def test_notify_status_counts_and_names_failed_and_stuck_deliveries_and_exits_1(cli, engine, store, webhook):
    db = ["--db", engine.url.render_as_string(hide_password=False)]
    url = f"json://127.0.0.1:{webhook.port}/hook"
    rule = add_rule(engine, "all", url)
    sent, failed, stuck = make_alert(0), make_alert(1, symbol="FAIL/USDT"), make_alert(2, symbol="STUCK/USDT")
    store.save([sent, failed, stuck])
    fast = NotifySettings(retries=0, retry_initial_s=0.01)
    Notifier(engine, fast).notify([sent])
    clean = CliRunner().invoke(cli, ["notify", "status", *db])
    assert clean.exit_code == 0 and "1 sent, 0 failed" in clean.output
    webhook.fail_first = len(webhook.requests) + 1
    Notifier(engine, fast).notify([failed])
    abandon(engine, rule.id, stuck.id, url)
    shown = CliRunner().invoke(cli, ["notify", "status", *db])
    assert shown.exit_code == 1
    assert f"failed: delivery 2, alert {failed.id} (pump_and_dump binance:FAIL/USDT)" in shown.output
    assert f"stuck: delivery 3, alert {stuck.id}" in shown.output


def until(check, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_background_notifier_takes_over_an_abandoned_send(engine, store, webhook, settings):
    url = f"json://127.0.0.1:{webhook.port}/hook"
    rule = add_rule(engine, "all", url)
    alert = make_alert(0)
    store.save([alert])
    abandon(engine, rule.id, alert.id, url)
    with BackgroundNotifier(Notifier(engine, settings.model_copy(update={"poll_s": 0.05}))) as notifier:
        until(lambda: logged(engine) == [(rule.id, alert.id, "sent")], "the abandoned send to go out")
    assert notifier.logged == 1 and len(webhook.requests) == 1


def test_an_alert_stored_but_never_queued_is_sent_by_the_next_background_notifier(
    engine, store, webhook, settings
):
    """The bus sink acks a batch once it is saved and queued: killed then, the queue is gone. The next
    process follows the store from where the last one started, so the alert still goes out."""
    rule = add_rule(engine, "all", f"json://127.0.0.1:{webhook.port}/hook")
    quick = settings.model_copy(update={"poll_s": 0.05})
    with BackgroundNotifier(Notifier(engine, quick)):
        until(lambda: read_state(engine, LIVE_WATERMARK) is not None, "the first follower to start")
    lost = make_alert(0)
    store.save([lost])  # saved, never handed to a queue
    with BackgroundNotifier(Notifier(engine, quick)) as notifier:
        until(lambda: logged(engine) == [(rule.id, lost.id, "sent")], "the alert to be delivered")
        notifier([Emitted(lost)])  # the same alert through the queue as well: claimed already
        notifier.wait()
    assert len(webhook.requests) == 1 and notifier.logged == 1
