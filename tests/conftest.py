"""Small generated markets for the detector and engine tests (no real data needed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tapewatch.records import TRADE_SCHEMA, conform

START = datetime(2024, 3, 1, tzinfo=UTC)


def quiet_trades(
    symbol: str = "AAA/BTC",
    *,
    venue: str = "testex",
    start: datetime = START,
    hours: float = 6.0,
    per_minute: float = 2.0,
    price: float = 1e-5,
    seed: int = 0,
) -> pl.DataFrame:
    """An illiquid coin: Poisson trades, balanced taker sides, a small random walk in price."""
    rng = np.random.default_rng(seed)
    count = rng.poisson(per_minute * hours * 60)
    offsets = np.sort(rng.uniform(0, hours * 3600, count))
    prices = price * np.exp(np.cumsum(rng.normal(0, 0.002, count)))
    return conform(
        pl.DataFrame(
            {
                "ts": [start + timedelta(seconds=float(s)) for s in offsets],
                "venue": venue,
                "symbol": symbol,
                "price": prices,
                "amount": rng.lognormal(5, 1, count),
                "side": rng.choice(["buy", "sell"], count),
            }
        ),
        TRADE_SCHEMA,
    )


def burst(
    at: datetime,
    *,
    symbol: str = "AAA/BTC",
    venue: str = "testex",
    orders: int = 150,
    seconds: float = 20.0,
    price: float = 1e-5,
    rise: float = 0.4,
    side: str = "buy",
    fills_per_order: int = 2,
    seed: int = 1,
) -> pl.DataFrame:
    """A crowd of taker orders in a few seconds, each sweeping `fills_per_order` levels, price ramping by `rise`."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, seconds, orders))
    direction = 1 if side == "buy" else -1
    rows = []
    for index, offset in enumerate(offsets):
        level = price * (1 + direction * rise * min(1.0, 2 * (index + 1) / orders))
        for fill in range(fills_per_order):
            rows.append(
                {
                    "ts": at + timedelta(seconds=float(offset)),
                    "venue": venue,
                    "symbol": symbol,
                    "price": level * (1 + direction * 0.001 * fill),
                    "amount": float(rng.lognormal(6, 1)),
                    "side": side,
                }
            )
    return conform(pl.DataFrame(rows), TRADE_SCHEMA)


def market(*frames: pl.DataFrame) -> pl.DataFrame:
    """Frames merged and sorted the way readers hand them to the engine."""
    return pl.concat(frames).sort("venue", "symbol", "ts", maintain_order=True)


@pytest.fixture
def pumped_market() -> tuple[pl.DataFrame, datetime]:
    """Six quiet hours with a pump at hour 4 that is dumped back within minutes."""
    at = START + timedelta(hours=4)
    dump = burst(
        at + timedelta(minutes=3), orders=60, seconds=120, price=1.4e-5, rise=0.35, side="sell", seed=3
    )
    return market(quiet_trades(), burst(at), dump), at


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for a module: the object store the lake tests use."""
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def aws_environment(endpoint: str, folder: Path) -> dict[str, str]:
    """The variables a deployment sets for an S3-compatible store at `endpoint` (no files of this user's)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "none"),
        "AWS_CONFIG_FILE": str(folder / "none"),
    }
