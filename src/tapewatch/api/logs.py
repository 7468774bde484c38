"""Keep API keys out of the server's logs: `?token=…` in a logged URL is masked.

Uvicorn logs each request line and WebSocket handshake with its query string;
a WebSocket client may authenticate with `?token=tw_…`, so the filter rewrites
any `token=` value before a record is written.
"""

from __future__ import annotations

import logging
import re

TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
LOGGERS = ("uvicorn.access", "uvicorn.error")


class RedactTokens(logging.Filter):
    """Masks `token=<secret>` in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = TOKEN_IN_URL.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                TOKEN_IN_URL.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_server_logs() -> None:
    """Install the filter on uvicorn's loggers (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
            logger.addFilter(RedactTokens())
