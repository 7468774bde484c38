"""Alerts on the bus: how workers publish what their engines emit, and how the sink reads it back.

The payload is the alert's JSON line (what `tapewatch detect` prints). The message
id is the deterministic alert id, plus a suffix naming the follow-up for an update,
so an alert re-emitted after a restart or a takeover is dropped by the alerts
stream's duplicate window, and past it by the store's idempotent save.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tapewatch.bus.connection import retrying
from tapewatch.bus.publish import MSG_ID
from tapewatch.bus.subjects import BusNames
from tapewatch.config import BusSettings
from tapewatch.engine.stream import Emitted
from tapewatch.records import Alert

UPDATE = "Tapewatch-Update"


def message_id(item: Emitted) -> str:
    """The alert id for a new alert; id + a hash of the follow-up for an update."""
    if not item.update:
        return item.alert.id
    followup = json.dumps(item.alert.followup, sort_keys=True, default=str)
    return f"{item.alert.id}-followup-{hashlib.sha256(followup.encode()).hexdigest()[:12]}"


def parse_alert(msg: Msg) -> Emitted:
    """The alert a message carries; ValueError (pydantic's) when it is not one."""
    alert = Alert.model_validate_json(msg.data)
    return Emitted(alert, update=bool(msg.headers and msg.headers.get(UPDATE)))


class AlertPublisher:
    """Publishes emitted alerts, each confirmed by the server (retried through outages)."""

    def __init__(self, js: JetStreamContext, names: BusNames, bus: BusSettings) -> None:
        self.js, self.names, self.bus = js, names, bus

    async def publish(self, emitted: list[Emitted]) -> None:
        """New alerts first, then updates, so the sink never sees an update before its alert."""
        for updates in (False, True):
            await asyncio.gather(*(self._send(item) for item in emitted if item.update is updates))

    async def _send(self, item: Emitted) -> None:
        alert = item.alert
        headers = {MSG_ID: message_id(item)} | ({UPDATE: "1"} if item.update else {})
        subject = self.names.alert_subject(alert.typology, alert.venue, alert.symbol)
        payload = alert.to_json_line().encode()
        await retrying(
            f"publish alert {alert.id}",
            lambda: self.js.publish(subject, payload, headers=dict(headers)),
            self.bus,
        )
