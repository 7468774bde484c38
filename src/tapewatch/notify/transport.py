"""Apprise, the one library that speaks to every destination, wrapped once.

Apprise turns a URL (`discord://…`, `slack://…`, `tgram://…`, `mailto://…`,
`json://…`) into a message sent with that service's API. Its own logger is kept
from propagating: it may name full URLs, tokens included, when something fails.
Each send's messages come back through the call's `AppriseResult` instead, and
are scrubbed of secrets (`destinations.scrub`) before anyone stores or logs them.
The HTTP library's debug lines name the request path (a Discord or Slack
webhook's token is in it), so they are dropped while a message is being sent.
Retries are ours, not Apprise's, so every attempt is counted in the delivery log.

A message may carry an idempotency key, the same on every attempt and every
resend after a crash. Where Apprise sends it over HTTP to an endpoint we
describe (`json://`, `form://`, `xml://` and their `s` forms) it goes in the
`Idempotency-Key` header and in the payload as `idempotency_key`, so the
receiver can drop repeats; the chat, e-mail and other plugins build their own
requests and have no place for it.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tapewatch.records import Severity

if TYPE_CHECKING:
    from apprise import AppriseAsset, NotifyBase

    from tapewatch.config import NotifySettings

APP_ID = "Tapewatch"
NOTIFY_TYPES: dict[str, str] = {"low": "info", "medium": "info", "high": "warning", "critical": "failure"}
"""Apprise's message kinds by severity: chat services colour the message by them."""
ERROR_MAX = 500
TOKEN_LEAKING_LOGGERS = ("urllib3.connectionpool",)
"""Loggers that write request paths, tokens included, at debug level."""
KEY_HEADER = "Idempotency-Key"
KEY_FIELD = "idempotency_key"
_sending: contextvars.ContextVar[bool] = contextvars.ContextVar("tapewatch_notify_sending", default=False)


@dataclass(frozen=True)
class Message:
    """What is sent: a title, a plain-text body, the alert's severity (it picks the colour) and, for a
    delivery, the key a receiver can recognise a repeat by."""

    title: str
    body: str
    severity: Severity = "low"
    key: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One delivery's result after retries: how many attempts, and the last error (secrets removed)."""

    ok: bool
    attempts: int
    error: str | None = None


class _QuietWhileSending(logging.Filter):
    """Drops a record logged while this thread (or task) is sending a message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _sending.get()


@contextmanager
def _sending_now() -> Iterator[None]:
    token = _sending.set(True)
    try:
        yield
    finally:
        _sending.reset(token)


@functools.cache
def _asset() -> AppriseAsset:
    """Tapewatch's name on messages, and Apprise's cache kept in memory (no files in the home folder)."""
    import apprise

    logger = logging.getLogger(apprise.LOGGER_NAME)
    logger.propagate = False  # its messages may carry URLs with tokens; results carry them to us instead
    logger.setLevel(logging.WARNING)
    for name in TOKEN_LEAKING_LOGGERS:
        logging.getLogger(name).addFilter(_QuietWhileSending())
    return apprise.AppriseAsset(
        app_id=APP_ID, app_desc="Tapewatch market-surveillance alerts", storage_mode="memory"
    )


def idempotency_key(alert_id: str, destination: str) -> str:
    """The stable id of one alert's delivery to one (masked) destination: the same on every resend."""
    return hashlib.sha256(f"{alert_id}\n{destination}".encode()).hexdigest()[:32]


def carries_key(plugin: NotifyBase) -> bool:
    """Whether this plugin sends a request whose headers and payload we can add the key to."""
    from apprise.plugins.custom_form import NotifyForm
    from apprise.plugins.custom_json import NotifyJSON
    from apprise.plugins.custom_xml import NotifyXML

    return isinstance(plugin, (NotifyJSON, NotifyForm, NotifyXML))


def instantiate(url: str) -> NotifyBase | None:
    """Apprise's plugin for a URL, or None when Apprise cannot use it (unknown service, bad token)."""
    import apprise

    return apprise.Apprise.instantiate(url, asset=_asset(), suppress_exceptions=True)


def known_service(scheme: str) -> bool:
    """Whether Apprise has a plugin for this URL scheme (to tell a typo from a malformed URL)."""
    import apprise

    _asset()
    return scheme.lower() in apprise.NotificationManager().schemas()


def send_once(url: str, message: Message, timeout_s: float) -> str | None:
    """Send one message; None when it was accepted, else what Apprise said went wrong (unscrubbed)."""
    import apprise

    plugin = instantiate(url)
    if plugin is None:
        return "Apprise cannot use this URL"
    if message.key is not None and carries_key(plugin):
        plugin.headers[KEY_HEADER] = message.key  # type: ignore[attr-defined]
        plugin.payload_extras[KEY_FIELD] = message.key  # type: ignore[attr-defined]
    sender = apprise.Apprise(asset=_asset())
    sender.add(plugin)
    with _sending_now():
        result = sender.notify(
            body=message.body,
            title=message.title,
            notify_type=NOTIFY_TYPES[message.severity],
            body_format=apprise.NotifyFormat.TEXT,
            timeout=timeout_s,
        )
    with result:
        if result:
            return None
        said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
        return "; ".join(said) or f"not delivered ({result.status.name.lower()})"


def send_with_retries(
    url: str,
    message: Message,
    settings: NotifySettings,
    *,
    scrub: Callable[[str], str],
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Send, retrying `settings.retries` times with doubling waits (capped at `retry_max_s`).

    Any failure is retried, whatever its kind: Apprise reports an HTTP 500, a
    refused connection and a timeout alike, and all of them can be passing.
    """
    delay = settings.retry_initial_s
    error: str | None = None
    for attempt in range(1, settings.retries + 2):
        if attempt > 1:
            sleep(delay)
            delay = min(settings.retry_max_s, delay * 2)
        try:
            error = send_once(url, message, settings.timeout_s)
        except Exception as exc:  # a plugin bug must not stop the other deliveries  # noqa: BLE001
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            return Outcome(ok=True, attempts=attempt)
    # Scrubbed before it is cut short, so no token is left half-cut and unrecognised.
    return Outcome(ok=False, attempts=settings.retries + 1, error=scrub(error or "not delivered")[:ERROR_MAX])


def longest_send_s(settings: NotifySettings) -> float:
    """The longest `send_with_retries` can take: every attempt timing out, and every wait between them.

    Apprise's `timeout` bounds a whole attempt, so a claim on a delivery older
    than this (plus a margin) belongs to a process that stopped.
    """
    waits, delay = 0.0, settings.retry_initial_s
    for _ in range(settings.retries):
        waits += delay
        delay = min(settings.retry_max_s, delay * 2)
    return (settings.retries + 1) * settings.timeout_s + waits
