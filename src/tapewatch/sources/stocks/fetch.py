"""Read a listing file from a URL (with timeouts and retries) or a local path, as text.

Listings are published once a day and downloads fail now and then (NASDAQ Trader
answers 5xx under load), so transport errors, 429 and 5xx are retried with
exponential back-off; other HTTP statuses are the caller's mistake and fail at once.
Every failure is one InputError line naming the location.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tapewatch.errors import InputError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
HEADERS = {"User-Agent": "Mozilla/5.0 (compatible; tapewatch)", "Accept": "application/json, text/plain, */*"}
"""Browser-like, because listing hosts such as tsx.com sit behind CDNs that may turn away unknown clients."""


def read_text(
    location: str,
    *,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The text at `location`: an http(s) URL, a `file://` URL or a path."""
    if location.startswith(("http://", "https://")):
        return _download(location, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s, sleep=sleep)
    path = Path(location.removeprefix("file://")).expanduser()
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"listing '{location}': cannot read it ({exc.strerror or exc})") from None


def _download(
    url: str, *, timeout_s: float, retries: int, backoff_s: float, sleep: Callable[[float], None]
) -> str:
    problem = ""
    with httpx.Client(timeout=timeout_s, follow_redirects=True, headers=HEADERS) as client:
        for attempt in range(retries + 1):
            if attempt:
                sleep(backoff_s * 2 ** (attempt - 1))
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}".rstrip(": ")
                continue
            if response.status_code in RETRY_STATUSES:
                problem = f"HTTP {response.status_code}"
                continue
            if response.is_error:
                raise InputError(
                    f"listing '{url}': HTTP {response.status_code}; check the URL (stocks settings)"
                )
            response.encoding = response.encoding or "utf-8"
            return response.text
    raise InputError(f"listing '{url}': no answer after {retries + 1} attempt(s) ({problem})")
