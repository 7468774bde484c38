"""Offline twins of the outside world for the stocks tests: Yahoo, a listings host, and a clock.

`FakeYahoo` answers on 127.0.0.1 the endpoints the real yfinance client calls —
the cookie (`fc.yahoo.com`), the crumb (`/v1/test/getcrumb`, cookie required),
`/v8/finance/chart/{symbol}` (fixture bars cut to `period1`/`period2`, Yahoo's 404
body for unknown symbols), `/v7/finance/quote` (crumb required) and the
quoteSummary/timeseries endpoints yfinance falls back on — with the response shapes
in `fixtures/yahoo/`. `FakeListings` serves listing files and can fail on purpose.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"
CRUMB = "Xq7fake.Crumb"


class _Handler(BaseHTTPRequestHandler):
    """Routes GETs to the owning fake's `answer(path, query, headers)`."""

    fake: Any

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        path = unquote(parts.path)
        self.fake.requests.append((path, query))
        status, body, headers = self.fake.answer(path, query, self.headers)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serving(fake: Any) -> Iterator[str]:
    """Run a fake on a free port of 127.0.0.1 for the duration; yields its base URL."""
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


JSON = {"Content-Type": "application/json;charset=utf-8"}


class FakeYahoo:
    """Yahoo Finance's query1/query2/fc hosts, as far as yfinance uses them."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.rate_limited = 0  # answer this many chart requests with 429 Too Many Requests
        self.quotes_down = False  # answer quote requests with 500
        quotes = json.loads((FIXTURES / "yahoo" / "quote.json").read_text())["quoteResponse"]["result"]
        self.quotes = {quote["symbol"]: quote for quote in quotes}

    def charts(self, symbol: str | None = None) -> list[dict[str, str]]:
        """The chart requests received (for one symbol), tz look-ups (`range=1d`) excluded."""
        prefix = "/v8/finance/chart/" + (symbol or "")
        return [q for path, q in self.requests if path.startswith(prefix) and "range" not in q]

    def answer(self, path: str, query: dict[str, str], headers: Any) -> tuple[int, Any, dict[str, str]]:
        if path == "/v1/test/getcrumb":
            if "A3=" not in (headers.get("Cookie") or ""):
                return 403, b"Invalid Cookie", {"Content-Type": "text/plain"}
            return 200, CRUMB.encode(), {"Content-Type": "text/plain;charset=utf-8"}
        if path.startswith("/v8/finance/chart/") and self.rate_limited:
            self.rate_limited -= 1
            return 429, b"Too Many Requests", {"Content-Type": "text/plain"}
        if path.startswith("/v8/finance/chart/"):
            return self.chart(path.rsplit("/", 1)[1], query)
        if (
            path.startswith(("/v7/finance/quote", "/v10/finance/quoteSummary"))
            and query.get("crumb") != CRUMB
        ):
            error = {"code": "Unauthorized", "description": "Invalid Crumb"}
            return 401, {"finance": {"result": None, "error": error}}, JSON
        if path.startswith("/v7/finance/quote") and self.quotes_down:
            error = {"code": "Internal Server Error", "description": "Service unavailable"}
            return 500, {"finance": {"result": None, "error": error}}, JSON
        if path.startswith("/v7/finance/quote"):
            symbols = query.get("symbols", "").split(",")
            found = [self.quotes[symbol] for symbol in symbols if symbol in self.quotes]
            return 200, {"quoteResponse": {"result": found, "error": None}}, JSON
        if path.startswith("/v10/finance/quoteSummary/"):
            symbol = path.rsplit("/", 1)[1]
            error = {"code": "Not Found", "description": f"Quote not found for symbol: {symbol}"}
            return 404, {"quoteSummary": {"result": None, "error": error}}, JSON
        if path.startswith("/ws/fundamentals-timeseries/"):
            return 200, {"timeseries": {"result": [], "error": None}}, JSON
        # fc.yahoo.com answers 404 but sets the A3 cookie that the crumb needs.
        cookie = "A3=d=AQABBFakeCookie&S=AQAAAFake; Path=/; Max-Age=31557600; HttpOnly"
        return 404, b"<html>Not Found</html>", {"Content-Type": "text/html", "Set-Cookie": cookie}

    def chart(self, symbol: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """The fixture of (symbol, interval), cut to [period1, period2); Yahoo's 404 body when none."""
        path = FIXTURES / "yahoo" / f"chart_{symbol}_{query.get('interval', '1d')}.json"
        if not path.exists():
            error = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
            return 404, {"chart": {"result": None, "error": error}}, JSON
        document = json.loads(path.read_text())
        if "period1" in query:
            _cut(document["chart"]["result"][0], int(query["period1"]), int(query["period2"]))
        return 200, document, JSON


def _cut(result: dict[str, Any], begin: int, end: int) -> None:
    """Keep the bars with begin <= timestamp < end, as Yahoo does for period1/period2."""
    keep = [i for i, ts in enumerate(result["timestamp"]) if begin <= ts < end]
    if not keep:  # Yahoo's answer for a range without bars: meta only, an empty quote
        del result["timestamp"]
        result["indicators"] = {"quote": [{}]}
        return
    result["timestamp"] = [result["timestamp"][i] for i in keep]
    for block in (*result["indicators"]["quote"], *result["indicators"].get("adjclose", [])):
        for key, values in block.items():
            block[key] = [values[i] for i in keep]


class FakeListings:
    """A web server of listing files; `fail` answers that many requests with 503 first."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = dict(files)
        self.fail = 0
        self.requests: list[tuple[str, dict[str, str]]] = []

    def answer(self, path: str, query: dict[str, str], headers: Any) -> tuple[int, Any, dict[str, str]]:
        if self.fail:
            self.fail -= 1
            return 503, b"Service Unavailable", {"Content-Type": "text/plain"}
        if path not in self.files:
            return 404, b"Not Found", {"Content-Type": "text/plain"}
        kind = "application/json" if path.endswith("json") or "/json/" in path else "text/plain"
        return 200, self.files[path].read_bytes(), {"Content-Type": kind}


class FakeClock:
    """A clock that moves only when the code under test sleeps (and counts the sleeps)."""

    def __init__(self, start: datetime, *, stop_after: int | None = None) -> None:
        self.moment = start
        self.sleeps: list[float] = []
        self.stop_after = stop_after

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        if self.stop_after is not None and len(self.sleeps) >= self.stop_after:
            raise KeyboardInterrupt  # what Ctrl-C does to a sleeping loop
        self.sleeps.append(seconds)
        self.moment += timedelta(seconds=seconds)
