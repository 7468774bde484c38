"""`tapewatch stream --notify`: alerts decided in a replay reach a real webhook, one message each."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.store.alert_store import open_engine
from unit.cli.test_cli import write_ccxt_csv
from unit.engine.test_stream import busy_market

from .helpers import add_rule, logged

runner = CliRunner()


def test_stream_notify_sends_each_new_alert_once_through_the_rules(tmp_path, webhook):
    db = tmp_path / "alerts.db"
    engine = open_engine(db)
    add_rule(engine, "pumps", f"json://127.0.0.1:{webhook.port}/hook", typologies=["pump_and_dump"])
    market = tmp_path / "market.csv"
    write_ccxt_csv(busy_market(), market)
    out = tmp_path / "alerts.jsonl"
    args = ["stream", "--replay", str(market), "--db", str(db), "--notify", "-o", str(out)]

    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    pumps = {
        a["id"] for a in map(json.loads, out.read_text().splitlines()) if a["typology"] == "pump_and_dump"
    }
    assert len(pumps) >= 2
    sent = [row for row in logged(engine) if row[2] == "sent"]
    assert {alert_id for _, alert_id, _ in sent} == pumps and len(sent) == len(pumps)  # updates are not news
    assert len(webhook.requests) == len(pumps)
    assert all(request.json()["title"].startswith("Pump and dump") for request in webhook.requests)
    assert runner.invoke(app, args).exit_code == 0  # the same replay again: nothing is sent twice
    assert len(webhook.requests) == len(pumps)
    engine.dispose()


def test_stream_notify_without_the_store_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["stream", "--replay", "x.csv", "--no-store", "--notify"])
    assert result.exit_code == 2 and "--notify: needs the store" in result.output
