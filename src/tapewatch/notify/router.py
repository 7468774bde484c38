"""The notifier: alerts in, messages out through every matching rule, each outcome in the delivery log.

For each alert (earliest detection first, so cooldowns follow market time),
each enabled rule that matches it, and each of the rule's destinations:

1. the log already has (rule, alert, destination): nothing to do, ever again
   (a replay, a follow-up update of the alert, a second runner);
2. the rule sent a like alert (venue, symbol, typology) within its cooldown:
   logged as `cooldown`, not sent;
3. another rule already sent this alert there: logged as `duplicate`, not sent;
4. otherwise claimed, sent with retries and back-off, and logged `sent` or
   `failed` with the error, secrets removed.

Rules are read afresh on every call, so a change applies to the next alert.
Sending blocks on the network (and on back-off), so a live stream should not
call `notify` itself: `background.BackgroundNotifier` runs it on a worker
thread, and `runner.NotifyRunner` runs it in its own process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine

from tapewatch.config import NotifySettings
from tapewatch.errors import InputError
from tapewatch.notify import deliveries, destinations, transport
from tapewatch.notify.deliveries import Delivery
from tapewatch.notify.message import compose
from tapewatch.notify.rules import RoutingRule, routing_rules
from tapewatch.notify.transport import Message, Outcome
from tapewatch.records import Alert

log = logging.getLogger("tapewatch.notify")


class Notifier:
    """Routes alerts to destinations on one database; `notify` returns what it logged."""

    def __init__(
        self, engine: Engine, settings: NotifySettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.sleep = sleep

    def notify(self, alerts: Iterable[Alert]) -> list[Delivery]:
        """Deliver each alert through every enabled rule that matches it; the new log rows, in order."""
        alerts = sorted(alerts, key=lambda alert: (alert.detected_at, alert.id))
        if not alerts:
            return []
        rules = routing_rules(self.engine)
        logged: list[Delivery] = []
        for alert in alerts:
            for rule in rules:
                if rule.matches(alert):
                    logged.extend(self._through(rule, alert))
        return logged

    def _through(self, rule: RoutingRule, alert: Alert) -> list[Delivery]:
        message = compose(alert, self.settings.console_url)
        logged = []
        for destination in rule.destinations:
            delivery_id = self._decide(rule, alert, destinations.mask(destination), destination, message)
            if delivery_id is not None:
                delivery = deliveries.get_delivery(self.engine, delivery_id)
                log.info(
                    "notify: %s %s %s:%s through rule '%s' to %s%s",
                    delivery.status,
                    alert.typology,
                    alert.venue,
                    alert.symbol,
                    rule.name,
                    delivery.destination,
                    f" ({delivery.error})" if delivery.error else "",
                )
                logged.append(delivery)
        return logged

    def _decide(
        self, rule: RoutingRule, alert: Alert, masked: str, destination: str, message: Message
    ) -> int | None:
        """Log (and, when due, send) one alert to one destination; the row's id, None if it was logged before."""
        if deliveries.in_cooldown(self.engine, rule.id, alert, rule.cooldown_s):
            note = f"a like alert was sent through this rule within {rule.cooldown_s:g}s"
            return deliveries.claim(self.engine, rule.id, alert.id, masked, "cooldown", note)
        other = deliveries.sent_by_other_rule(self.engine, rule.id, alert.id, masked)
        if other is not None:
            note = f"already sent there through rule '{other}'"
            return deliveries.claim(self.engine, rule.id, alert.id, masked, "duplicate", note)
        delivery_id = deliveries.claim(self.engine, rule.id, alert.id, masked)
        if delivery_id is None:
            return None
        outcome = send(destination, message, self.settings, sleep=self.sleep)
        status = "sent" if outcome.ok else "failed"
        deliveries.finish(self.engine, delivery_id, status, outcome.attempts, outcome.error)
        return delivery_id


def send(
    destination: str,
    message: Message,
    settings: NotifySettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Send one message to one destination (an `env:NAME` one read now), retrying as configured."""
    try:
        url = destinations.resolve(destination)
    except InputError as exc:
        return Outcome(ok=False, attempts=0, error=str(exc))
    if destination != url and transport.instantiate(url) is None:
        return Outcome(
            ok=False, attempts=0, error=f"destination '{destination}': Apprise cannot use the URL in it"
        )

    def scrub(text: str) -> str:
        return destinations.scrub(text, url)

    return transport.send_with_retries(url, message, settings, scrub=scrub, sleep=sleep)
