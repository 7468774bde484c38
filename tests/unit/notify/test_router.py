"""The notifier end to end: rules matched, messages delivered to real local endpoints, every outcome logged."""

from __future__ import annotations

import logging

import pytest
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack
from apprise.plugins.telegram import NotifyTelegram

from tapewatch.notify.deliveries import list_deliveries
from tapewatch.notify.router import Notifier
from unit.store.test_store import make_alert

from .endpoints import text_of
from .helpers import add_rule, logged

EVIDENCE = {"order_rate_ratio": 357.1, "price": {"rise": 0.4}, "orders": {"now": 150, "baseline": 0.42}}


def hook(webhook, path: str = "hook") -> str:
    return f"json://127.0.0.1:{webhook.port}/{path}"


def test_each_rule_gets_exactly_the_alerts_its_filters_match(engine, store, webhook, settings):
    rules = {
        "any": add_rule(engine, "any", hook(webhook, "any")),
        "wash": add_rule(engine, "wash", hook(webhook, "wash"), typologies=["wash_trading"]),
        "high": add_rule(engine, "high", hook(webhook, "high"), min_severity="high"),
        "watch": add_rule(engine, "watch", hook(webhook, "watch"), symbols=["pump/usdt"], venues=["BINANCE"]),
        "off": add_rule(engine, "off", hook(webhook, "off"), enabled=False),
    }
    low_pump = make_alert(0, symbol="PUMP/USDT", score=0.2)
    high_wash = make_alert(1, symbol="WASH/BTC", typology="wash_trading", detector="wash_v1", score=0.75)
    kraken_pump = make_alert(2, symbol="PUMP/USDT", venue="kraken", score=0.95)
    alerts = [low_pump, high_wash, kraken_pump]
    store.save(alerts)

    delivered = Notifier(engine, settings).notify(alerts)

    assert {d.status for d in delivered} == {"sent"}
    got = {(d.rule, d.alert_id) for d in delivered}
    assert got == {
        ("any", low_pump.id),
        ("any", high_wash.id),
        ("any", kraken_pump.id),
        ("wash", high_wash.id),
        ("high", high_wash.id),
        ("high", kraken_pump.id),
        ("watch", low_pump.id),  # the watchlist compares without regard to case
    }
    assert sorted(r.path for r in webhook.requests) == sorted(f"/{rule}" for rule, _ in got)
    assert rules["off"].id not in {d.rule_id for d in delivered}


def test_a_webhook_receives_the_title_body_and_kind(engine, store, webhook, settings):
    add_rule(engine, "all", hook(webhook))
    alert = make_alert(0, score=0.8, evidence=EVIDENCE)
    store.save([alert])
    [delivery] = Notifier(engine, settings).notify([alert])

    [request] = webhook.requests
    payload = request.json()
    assert payload["title"] == "Pump and dump on binance:PUMP/USDT: high (0.80)"
    assert payload["type"] == "warning"  # high severity: chat services colour it
    assert "order rate ratio: 357.1×" in payload["message"]
    assert "price: rise 40.0%" in payload["message"]
    assert f"https://tw.example.com/#/alerts/{alert.id}" in payload["message"]
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, None)
    assert (
        delivery.delivered_at is not None and delivery.venue == "binance" and delivery.symbol == "PUMP/USDT"
    )


def test_the_same_alert_goes_to_a_destination_once_ever_even_as_a_follow_up_update(
    engine, store, webhook, settings
):
    add_rule(engine, "all", hook(webhook))
    alert = make_alert(0)
    store.save([alert])
    notifier = Notifier(engine, settings)
    assert len(notifier.notify([alert])) == 1
    updated = alert.model_copy(update={"followup": {"dump": {"confirmed": True}}})
    store.save([updated])
    assert notifier.notify([updated]) == []
    assert Notifier(engine, settings).notify([alert, alert]) == []  # a second notifier, a replay
    assert len(webhook.requests) == 1
    assert logged(engine) == [(1, alert.id, "sent")]


def test_within_the_cooldown_a_like_alert_is_logged_but_not_sent(engine, store, webhook, settings):
    rule = add_rule(engine, "pumps", hook(webhook), cooldown_s=900)
    first, soon, other_symbol, later = (
        make_alert(0),
        make_alert(5),
        make_alert(6, symbol="MOON/USDT"),
        make_alert(16),  # 16 minutes after the first: past the 15-minute cooldown
    )
    store.save([first, soon, other_symbol, later])

    outcomes = {d.alert_id: d for d in Notifier(engine, settings).notify([later, other_symbol, soon, first])}

    assert outcomes[first.id].status == "sent"
    assert outcomes[soon.id].status == "cooldown" and "within 900s" in outcomes[soon.id].error
    assert outcomes[other_symbol.id].status == "sent"
    assert outcomes[later.id].status == "sent"
    assert len(webhook.requests) == 3
    assert list_deliveries(engine, rule_id=rule.id, status="cooldown").total == 1


def test_a_destination_two_rules_share_gets_the_alert_once(engine, store, webhook, settings):
    add_rule(engine, "a pumps", hook(webhook))
    add_rule(engine, "b everything", hook(webhook))
    alert = make_alert(0)
    store.save([alert])
    delivered = Notifier(engine, settings).notify([alert])
    assert [(d.rule, d.status) for d in delivered] == [("a pumps", "sent"), ("b everything", "duplicate")]
    assert delivered[1].error == "already sent there through rule 'a pumps'"
    assert len(webhook.requests) == 1


def test_a_failing_endpoint_is_retried_with_back_off_until_it_answers(engine, store, webhook, settings):
    webhook.fail_first = 2
    add_rule(engine, "all", hook(webhook))
    alert = make_alert(0)
    store.save([alert])
    waits: list[float] = []
    [delivery] = Notifier(engine, settings, sleep=waits.append).notify([alert])
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert waits == [0.01, 0.02]  # doubling, capped at retry_max_s
    assert len(webhook.requests) == 3 and webhook.requests[0].body == webhook.requests[2].body


def test_when_retries_run_out_the_delivery_fails_with_the_error_and_no_secret_in_log_or_logs(
    engine, store, webhook, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    webhook.fail_first = 100
    token = "Tok3nS3cretAbcdef123456"
    add_rule(engine, "all", f"json://alerts:PaSsW0rd99@127.0.0.1:{webhook.port}/hook/{token}")
    alert = make_alert(0)
    store.save([alert])
    [delivery] = Notifier(engine, settings).notify([alert])

    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "500" in delivery.error
    assert delivery.destination == f"json://alerts:****@127.0.0.1:{webhook.port}/hook/T...6"
    page = list_deliveries(engine, status="failed")
    assert token not in page.model_dump_json() and "PaSsW0rd99" not in page.model_dump_json()
    assert delivery.delivered_at is None and len(webhook.requests) == 3
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp")
    )  # not the server's
    assert f"failed pump_and_dump binance:PUMP/USDT through rule 'all' to {delivery.destination}" in ours
    assert "Starting new HTTP connection" not in ours  # urllib3's debug lines are quiet while sending
    assert token not in ours and "PaSsW0rd99" not in ours


def test_an_unreachable_host_fails_with_a_scrubbed_error(engine, store, settings):
    token = "Tok3nS3cretAbcdef123456"
    add_rule(engine, "all", f"json://127.0.0.1:9/hook/{token}")  # the discard port: nothing listens
    alert = make_alert(0)
    store.save([alert])
    [delivery] = Notifier(engine, settings).notify([alert])
    assert delivery.status == "failed" and delivery.error and token not in delivery.error


def test_an_env_destination_reads_its_url_at_delivery_time(engine, store, webhook, settings, monkeypatch):
    add_rule(engine, "all", "env:TW_TEST_HOOK")
    first, second = make_alert(0), make_alert(30)
    store.save([first, second])
    [missing] = Notifier(engine, settings).notify([first])
    assert (missing.status, missing.attempts) == ("failed", 0)
    assert missing.error == (
        "destination 'env:TW_TEST_HOOK': environment variable TW_TEST_HOOK is not set (expected an Apprise URL in it)"
    )
    monkeypatch.setenv("TW_TEST_HOOK", hook(webhook, "from-env"))
    [sent] = Notifier(engine, settings).notify([second])
    assert (sent.status, sent.destination) == ("sent", "env:TW_TEST_HOOK")
    assert [r.path for r in webhook.requests] == ["/from-env"]


def test_an_email_arrives_with_the_title_as_subject_and_the_evidence_in_the_body(
    engine, store, mailbox, settings
):
    url = (
        f"mailto://desk:M41lS3cret@example.com:{mailbox.port}?smtp=127.0.0.1&mode=insecure"
        "&from=tapewatch@example.com&to=surveillance@example.com"
    )
    add_rule(engine, "mail", url)
    alert = make_alert(0, score=0.95, evidence=EVIDENCE)
    store.save([alert])
    [delivery] = Notifier(engine, settings).notify([alert])

    assert delivery.status == "sent"
    [message] = mailbox.messages
    assert message["Subject"] == "Pump and dump on binance:PUMP/USDT: critical (0.95)"
    assert mailbox.recipients == [["surveillance@example.com"]]
    body = text_of(message)
    assert "orders: now 150, baseline 0.42" in body and f"#/alerts/{alert.id}" in body
    assert mailbox.logins == [("desk", "M41lS3cret")]  # the password was used, and is in no log
    assert "M41lS3cret" not in delivery.destination


@pytest.fixture
def chat_hosts(webhook, monkeypatch):
    """Point Apprise's Discord, Slack and Telegram plugins at the local server.

    Their API hosts are class constants with no URL option to change them, so
    they are patched here; the plugins' own code builds and sends the request.
    """
    monkeypatch.setattr(NotifyDiscord, "notify_url", f"{webhook.url}/api/webhooks")
    monkeypatch.setattr(NotifySlack, "webhook_url", f"{webhook.url}/services")
    monkeypatch.setattr(NotifyTelegram, "notify_url", f"{webhook.url}/bot")
    webhook.replies["/bot"] = (200, "application/json", '{"ok": true, "result": {"message_id": 7}}')
    return webhook


def test_discord_slack_and_telegram_messages_are_built_by_their_plugins(engine, store, chat_hosts, settings):
    add_rule(engine, "discord", "discord://417429632418316298/hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH")
    add_rule(engine, "slack", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7")
    add_rule(engine, "telegram", "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567")
    alert = make_alert(0, score=0.8, evidence=EVIDENCE)
    store.save([alert])
    delivered = Notifier(engine, settings).notify([alert])
    assert [(d.rule, d.status) for d in delivered] == [
        ("discord", "sent"),
        ("slack", "sent"),
        ("telegram", "sent"),
    ]

    by_path = {r.path.split("/")[1]: r for r in chat_hosts.requests}
    discord = by_path["api"]
    assert discord.path == "/api/webhooks/417429632418316298/hX3kQ9pLmN2vB7wR5tY8uI0oP4aS6dF1gH"
    assert discord.json()["content"].startswith("Pump and dump on binance:PUMP/USDT: high (0.80)")
    slack = by_path["services"].json()["attachments"][0]
    assert slack["title"] == "Pump and dump on binance:PUMP/USDT: high (0.80)" and "357.1×" in slack["text"]
    telegram = by_path["bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"]
    assert telegram.path.endswith("/sendMessage")
    assert telegram.json()["chat_id"] == -1001234567 and "357.1×" in telegram.json()["text"]
