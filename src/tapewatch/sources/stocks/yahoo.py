"""Yahoo Finance through the real yfinance client: one ticker's bars, and quote facts for many tickers.

**Pointing yfinance elsewhere (tests, mirrors).** yfinance builds its URLs from
several places — `const._BASE_URL_` (query2), `_QUERY1_URL_`, module-level copies
made at import time (`quote._QUOTE_SUMMARY_URL_`), and literal strings for the
cookie and crumb (`https://fc.yahoo.com`, `…/v1/test/getcrumb`, `guce.yahoo.com`).
Patching constants would miss some and break with each release. Instead every
yfinance call gets a `MirrorSession`: a curl_cffi Session (yfinance's own HTTP
backend, so its error handling sees the exception types it expects) whose
`request` sends any `*.yahoo.com` URL to `yahoo_url` with path and query kept.
yfinance accepts such a session through its public `session=` argument. With no
`yahoo_url`, yfinance uses its default session and talks to Yahoo itself.

yfinance keeps one process-wide session (`YfData` is a singleton), so a mirror
session, once given, serves every later yfinance call in the process.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import yfinance as yf
from curl_cffi import requests as curl_requests
from peewee import OperationalError
from yfinance.data import YfData
from yfinance.exceptions import YFRateLimitError

from tapewatch.records import TIME

QUOTE_URL = "https://query1.finance.yahoo.com/v7/finance/quote"
"""Yahoo's quote endpoint: price, average volume and market cap of up to ~1,500 symbols per call."""

BAR_COLUMNS = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}

# yfinance logs "possibly delisted; no price data found" at ERROR for every ticker
# without data; Tapewatch reports those itself, so keep them off the terminal unless
# the application configures logging. Its pandas deprecation warnings are not ours to act on.
logging.getLogger("yfinance").addHandler(logging.NullHandler())
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"yfinance(\.|$)")


class MirrorSession(curl_requests.Session):
    """A curl_cffi session that sends every `*.yahoo.com` request to `base_url`, path and query kept."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, self.rewrite(url), *args, **kwargs)

    def rewrite(self, url: str) -> str:
        """`https://query2.finance.yahoo.com/v8/finance/chart/AAA?x=1` → `<base_url>/v8/finance/chart/AAA?x=1`."""
        parts = urlsplit(url)
        if not (parts.hostname or "").endswith("yahoo.com"):
            return url
        return f"{self.base_url}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class Facts:
    """What Yahoo's quote says about a ticker, as the instruments table stores it."""

    last_price: float | None
    avg_volume: float | None
    market_cap: float | None


@dataclass
class Quotes:
    """What a round of quote requests learnt, and the batches that failed (with the reason)."""

    found: dict[str, Facts] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class YahooClient:
    """Bars and facts from Yahoo, with rate-limit retries; one client is shared by the worker threads."""

    def __init__(
        self,
        base_url: str = "",
        *,
        prepost: bool = True,
        retries: int = 3,
        backoff_s: float = 1.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = MirrorSession(base_url) if base_url else None
        self.prepost = prepost
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.sleep = sleep

    def bars(self, ticker: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        """OHLCV bars with ts in [start, end), raw (not split/dividend-adjusted) prices; empty if none.

        Raw prices are what traded, which is what manipulation detectors must see.
        """
        frame = self._retry(
            lambda: yf.Ticker(ticker, session=self.session).history(
                start=start,
                end=end,
                interval=interval,
                prepost=self.prepost,
                auto_adjust=False,
                actions=False,
                timeout=self.timeout_s,
            )
        )
        if frame is None or frame.empty:
            return pl.DataFrame(schema={"ts": TIME, **dict.fromkeys(BAR_COLUMNS.values(), pl.Float64())})
        table = pl.from_pandas(frame.reset_index())
        index = table.columns[0]  # "Date" for daily bars, "Datetime" for intraday
        return table.select(
            pl.col(index).dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("ts"),
            *(pl.col(source).cast(pl.Float64).alias(name) for source, name in BAR_COLUMNS.items()),
        ).drop_nulls(["open", "high", "low", "close"])  # Yahoo's empty placeholder rows

    def facts(self, tickers: Sequence[str], batch: int = 100) -> Quotes:
        """Last price, 3-month average daily volume and market cap for each ticker Yahoo knows.

        One quote request per `batch` tickers (through yfinance's client, which
        handles Yahoo's cookie and crumb); tickers Yahoo does not return are absent.
        A batch that fails is reported in `Quotes.errors`, never raised: facts are
        refreshed daily, and yesterday's serve until the next refresh.
        """
        data = YfData(session=self.session)
        quotes = Quotes()
        for begin in range(0, len(tickers), batch):
            chunk = list(tickers[begin : begin + batch])
            params = {"symbols": ",".join(chunk), "formatted": "false"}
            try:
                document = self._retry(partial(data.get_raw_json, QUOTE_URL, params=params))
            except Exception as exc:  # noqa: BLE001  (HTTP, JSON or rate-limit errors of one batch)
                quotes.errors.append(
                    f"{len(chunk)} ticker(s) from {chunk[0]}: {type(exc).__name__}: {exc}"[:240]
                )
                continue
            for quote in (document.get("quoteResponse") or {}).get("result") or []:
                quotes.found[quote["symbol"]] = Facts(
                    last_price=_number(quote.get("regularMarketPrice")),
                    avg_volume=_number(quote.get("averageDailyVolume3Month")),
                    market_cap=_number(quote.get("marketCap")),
                )
        return quotes

    def _retry(self, call: Callable[[], Any]) -> Any:
        """Run a Yahoo call, backing off and retrying while it fails for a reason that passes.

        Two reasons pass: Yahoo saying "too many requests", and yfinance's own
        SQLite caches (time zones, cookies) being locked by another thread or
        process that is writing them — worker threads starting on a fresh cache
        meet that, and a ticker must not be reported failed for it.
        """
        for attempt in range(self.retries + 1):
            try:
                return call()
            except (YFRateLimitError, OperationalError) as exc:
                transient = not isinstance(exc, OperationalError) or "locked" in str(exc)
                if attempt == self.retries or not transient:
                    raise
                self.sleep(self.backoff_s * 2**attempt)
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
