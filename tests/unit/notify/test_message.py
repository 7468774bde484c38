"""The words of a notification: title for a lock screen, evidence in plain words, a link to the console."""

from __future__ import annotations

from tapewatch.notify.message import compose, evidence_lines
from unit.store.test_store import make_alert

PUMP_EVIDENCE = {
    "rule": "crowd",
    "orders": {"now": 150, "baseline": 0.42},
    "order_rate_ratio": 357.1,
    "buy_share": {"now": 0.913, "threshold": 0.5},
    "price": {"now_max": 1.4e-05, "baseline_mean": 1e-05, "rise": 0.4},
    "trades": {"now": 300},
    "samples": [1, 2, 3],
}


def test_the_title_says_what_where_and_how_bad():
    alert = make_alert(0, symbol="PUMP/USDT", venue="binance", score=0.82, evidence=PUMP_EVIDENCE)
    message = compose(alert)
    assert message.title == "Pump and dump on binance:PUMP/USDT: high (0.82)"
    assert message.severity == "high"


def test_the_body_gives_the_evidence_in_plain_words_and_links_to_the_alert():
    alert = make_alert(0, score=0.95, evidence=PUMP_EVIDENCE)
    body = compose(alert, "https://tw.example.com/").body
    assert "orders: now 150, baseline 0.42" in body
    assert "order rate ratio: 357.1×" in body
    assert "buy share: now 91.3%, threshold 50.0%" in body
    assert "price: now max 1.4e-05, baseline mean 1e-05, rise 40.0%" in body
    assert "samples" not in body  # lists are for the console, not a phone
    assert f"https://tw.example.com/#/alerts/{alert.id}" in body
    assert "Severity critical, score 0.95, by pump_v1" in body


def test_without_a_console_url_there_is_no_link_but_the_alert_id_is_there():
    alert = make_alert(0)
    body = compose(alert).body
    assert "#/alerts/" not in body and f"Alert id: {alert.id}" in body


def test_evidence_is_cut_to_a_few_lines():
    many = {f"value_{n}": n for n in range(20)}
    assert len(evidence_lines(many)) == 8
