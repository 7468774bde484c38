"""`tapewatch stream --exchange`: warm up on REST history, then alert on a pump arriving over WebSocket."""

from __future__ import annotations

import json
import re
import time

from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.io.lake import Lake
from tapewatch.store.alert_store import open_store
from unit.sources.exchange.crypto_harness import CtrlC, steady
from unit.sources.exchange.fake_binance import FakeBinance

runner = CliRunner()
PRICE = 100.0


def pump(server: FakeBinance, orders: int = 40) -> None:
    """Taker buys 50 ms apart, lifting the price 20 %: a crowd no quiet baseline explains."""
    start = int(time.time() * 1000)
    last = PRICE + 4.49  # where `steady`'s 450 trades left the price
    rise = [last * (1 + 0.2 * (i + 1) / orders) for i in range(orders)]
    server.add_trades("ETH/BTC", [(start + i * 50, price, 1.0, False) for i, price in enumerate(rise)])


def test_a_live_pump_is_alerted_after_warming_up_on_rest_history(tmp_path):
    now = int(time.time() * 1000)
    alerts = tmp_path / "alerts.jsonl"
    with FakeBinance(["ETH/BTC", "BTC/USDT"]) as server:
        # 2.5 hours of a quiet market, a trade every 20 s, known only to the REST history
        server.add_trades("ETH/BTC", steady(now - 9_000_000, 450, 20_000, price=PRICE), broadcast=False)
        config = tmp_path / "tapewatch.toml"
        config.write_text(
            f'[exchange]\nrest_url = "{server.rest_url}"\nws_url = "{server.ws_url}"\nrate_limit_ms = 1\n'
        )
        args = ["stream", "--exchange", "binance", "--symbols", "ETH/BTC", "--config", str(config)]
        args += ["--lake", str(tmp_path / "lake"), "--db", str(tmp_path / "alerts.db"), "-o", str(alerts)]

        def alerted() -> bool:
            return alerts.is_file() and "pump_onset" in alerts.read_text()

        result = CtrlC(server, lambda: pump(server), alerted).run(lambda: runner.invoke(app, args))

    assert result.exit_code == 0, result.output
    assert "warmed up on 450 trades of history" in result.output
    live = re.search(r"live binance: 1 symbol\(s\) \(stopped by Ctrl-C\): (\d+) trades", result.output)
    # the pump's trades, not the history's 450: Ctrl-C comes once the alert is out, which may be before
    # the pump's last trades arrive
    assert live is not None and 20 <= int(live.group(1)) <= 40, result.output
    assert "(0/s)" not in result.output
    alert, *updates = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert all(update["id"] == alert["id"] for update in updates)  # the dump follow-up, completed on exit
    assert alert["detector"] == "pump_onset" and alert["symbol"] == "ETH/BTC"
    assert alert["timing"]["arrived_at"] <= alert["timing"]["emitted_at"]
    assert (
        Lake(tmp_path / "lake").read("trades", symbol="ETH/BTC").height == 450
    )  # the warm-up kept its fetch
    with open_store(tmp_path / "alerts.db") as store:
        assert [stored.id for stored in store.list(limit=None)] == [alert["id"]]


def test_without_warm_up_the_same_pump_is_not_alerted(tmp_path):
    """The rule needs an hour of baseline: started cold, it stays quiet (why the warm-up exists)."""
    now = int(time.time() * 1000)
    alerts = tmp_path / "alerts.jsonl"
    with FakeBinance(["ETH/BTC"]) as server:
        server.add_trades("ETH/BTC", steady(now - 9_000_000, 450, 20_000, price=PRICE), broadcast=False)
        config = tmp_path / "tapewatch.toml"
        config.write_text(f'[exchange]\nrest_url = "{server.rest_url}"\nws_url = "{server.ws_url}"\n')
        args = ["stream", "--exchange", "binance", "--symbols", "ETH/BTC", "--config", str(config)]
        args += ["--warmup", "0", "--no-store", "-o", str(alerts)]

        pumped: list[float] = []

        def pump_once() -> None:
            pump(server)
            pumped.append(time.time())

        def waited() -> bool:  # ample time to decide 40 trades (the warmed-up run alerts well within it)
            return bool(pumped) and time.time() > pumped[0] + 3.0

        result = CtrlC(server, pump_once, waited).run(lambda: runner.invoke(app, args))

    assert result.exit_code == 0, result.output
    assert "warmed up" not in result.output
    assert "40 trades" in result.output and "0 alert(s)" in result.output
