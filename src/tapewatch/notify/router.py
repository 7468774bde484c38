"""The notifier: alerts in, messages out through every matching rule, each outcome in the delivery log.

For each alert (earliest detection first, so cooldowns follow market time),
each enabled rule that matches it, and each of the rule's destinations:

1. the log already has (rule, alert, destination): nothing to do, ever again
   (a replay, a follow-up update of the alert, a second runner);
2. the rule sent a like alert (venue, symbol, typology) within its cooldown:
   logged as `cooldown`, not sent;
3. another rule already sent this alert there: logged as `duplicate`, not sent;
4. otherwise claimed, sent with retries and back-off, and logged `sent` or
   `failed` with the error, secrets removed (a failure is also logged as a warning).

Every message to a destination carries the same idempotency key (alert id and
masked destination, hashed), also when `recover` sends again what a stopped
process had claimed and perhaps sent already.

Rules are read afresh on every call, so a change applies to the next alert.
Sending blocks on the network (and on back-off), so a live stream should not
call `notify` itself: `background.BackgroundNotifier` runs it on a worker
thread, and `runner.NotifyRunner` runs it in its own process.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from sqlalchemy import Engine, select

from tapewatch.config import NotifySettings
from tapewatch.errors import InputError
from tapewatch.notify import deliveries, destinations, transport
from tapewatch.notify.deliveries import Claim, Delivery
from tapewatch.notify.message import compose
from tapewatch.notify.rules import RoutingRule, routing_rule, routing_rules
from tapewatch.notify.transport import Message, Outcome
from tapewatch.records import Alert
from tapewatch.store.alert_store import ALERT_FIELDS, ALERTS

log = logging.getLogger("tapewatch.notify")


class Notifier:
    """Routes alerts to destinations on one database; `notify` returns what it logged."""

    def __init__(
        self, engine: Engine, settings: NotifySettings, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.sleep = sleep
        self.claim_expiry = timedelta(seconds=claim_expiry_s(settings))
        self._next_recovery = 0.0

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

    def recover(self) -> list[Delivery]:
        """Send again every delivery whose claim outlived the longest send: its process stopped part-way.

        The previous holder may have sent it before it died, so the receiver can
        see it twice; the message's idempotency key is the same both times. The
        log is looked at most every half claim expiry: a claim is abandoned only
        after a whole one, and the query reads the log's older rows.
        """
        if time.monotonic() < self._next_recovery:
            return []
        self._next_recovery = time.monotonic() + self.claim_expiry.total_seconds() / 2
        logged = []
        for stale in deliveries.abandoned(self.engine, self.claim_expiry):
            held = deliveries.reclaim(self.engine, stale)
            if held is None:
                continue  # another notifier took it over first
            log.warning(
                "notify: delivery %d (alert %s to %s) was claimed at %s by a notifier that stopped "
                "before finishing it; sending it again",
                stale.id,
                stale.alert_id,
                stale.destination,
                f"{stale.created_at:%Y-%m-%d %H:%M:%S}",
            )
            self._resend(stale, held)
            logged.append(self._logged(stale.id, stale.rule or f"#{stale.rule_id}"))
        return logged

    def _resend(self, stale: Delivery, held: Claim) -> None:
        rule = routing_rule(self.engine, stale.rule_id)
        real = next((d for d in rule.destinations if destinations.mask(d) == stale.destination), None)
        alert = _stored_alert(self.engine, stale.alert_id)
        if real is None or alert is None:
            missing = "the destination is no longer in the rule" if real is None else "the alert is gone"
            deliveries.finish(self.engine, held, "failed", 0, f"not sent again after a crash: {missing}")
            return
        self._send(held, alert, real, stale.destination, compose(alert, self.settings.console_url))

    def _through(self, rule: RoutingRule, alert: Alert) -> list[Delivery]:
        message = compose(alert, self.settings.console_url)
        logged = []
        for destination in rule.destinations:
            delivery_id = self._decide(rule, alert, destinations.mask(destination), destination, message)
            if delivery_id is not None:
                logged.append(self._logged(delivery_id, rule.name))
        return logged

    def _logged(self, delivery_id: int, rule: str) -> Delivery:
        """The row as it now stands, also logged: a failure as a warning, anything else as information."""
        delivery = deliveries.get_delivery(self.engine, delivery_id)
        log.log(
            logging.WARNING if delivery.status == "failed" else logging.INFO,
            "notify: %s %s %s:%s through rule '%s' to %s%s",
            delivery.status,
            delivery.typology,
            delivery.venue,
            delivery.symbol,
            rule,
            delivery.destination,
            f" ({delivery.error})" if delivery.error else "",
        )
        return delivery

    def _decide(
        self, rule: RoutingRule, alert: Alert, masked: str, destination: str, message: Message
    ) -> int | None:
        """Log (and, when due, send) one alert to one destination; the row's id, None if it was logged before."""
        if deliveries.in_cooldown(self.engine, rule.id, alert, rule.cooldown_s):
            note = f"a like alert was sent through this rule within {rule.cooldown_s:g}s"
            return _id(deliveries.claim(self.engine, rule.id, alert.id, masked, "cooldown", note))
        other = deliveries.sent_by_other_rule(self.engine, rule.id, alert.id, masked)
        if other is not None:
            note = f"already sent there through rule '{other}'"
            return _id(deliveries.claim(self.engine, rule.id, alert.id, masked, "duplicate", note))
        held = deliveries.claim(self.engine, rule.id, alert.id, masked)
        if held is None:
            return None
        self._send(held, alert, destination, masked, message)
        return held.id

    def _send(self, held: Claim, alert: Alert, destination: str, masked: str, message: Message) -> None:
        keyed = dataclasses.replace(message, key=transport.idempotency_key(alert.id, masked))
        outcome = send(destination, keyed, self.settings, sleep=self.sleep)
        status = "sent" if outcome.ok else "failed"
        if not deliveries.finish(self.engine, held, status, outcome.attempts, outcome.error):
            log.warning("notify: delivery %d was taken over while this notifier was sending it", held.id)


def claim_expiry_s(settings: NotifySettings) -> float:
    """How old a `sending` claim must be to count as abandoned: the longest send, plus one more attempt's
    time as a margin for the database round trips and a clock a little off."""
    return transport.longest_send_s(settings) + settings.timeout_s


def _id(held: Claim | None) -> int | None:
    return None if held is None else held.id


def _stored_alert(engine: Engine, alert_id: str) -> Alert | None:
    columns = [ALERTS.c[name] for name in ALERT_FIELDS]
    with engine.connect() as conn:
        row = conn.execute(select(*columns).where(ALERTS.c.id == alert_id)).first()
    return None if row is None else Alert.model_validate(row._asdict())


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
