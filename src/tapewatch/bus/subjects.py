"""Names on the bus: streams, subjects, consumers and lease keys, all derived from `BusSettings`.

A trade batch of one venue/symbol goes to `PREFIX.trades.<partition>.<venue>.<symbol>`,
where the partition is a stable hash of venue and symbol (the same in every process
and every release), so one partition — and so one worker — sees all of a symbol's
trades in order. The end-of-input marker of a replay is `PREFIX.trades.<partition>.end`:
inside the partition's subjects, so it arrives after the partition's trades.
Alerts go to `PREFIX.alerts.<typology>.<venue>.<symbol>`, so a consumer can filter.
Venue and symbol are escaped into single subject tokens (a stock such as `BRK.B` has
a dot); the payload, not the subject, is the source of truth for them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tapewatch.config import BusSettings

ISOLATED = ("trades_stream", "alerts_stream", "subject_prefix", "leases_bucket", "consumer_prefix")

END_TOKEN = "end"
_UNSAFE = {".": "%2E", " ": "%20", "*": "%2A", ">": "%3E", "%": "%25", "\t": "%09"}


def partition_of(venue: str, symbol: str, partitions: int) -> int:
    """The partition of a venue/symbol: a stable hash (not Python's salted `hash`) modulo the count."""
    digest = hashlib.blake2b(f"{venue}|{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def token(text: str) -> str:
    """One subject token for a venue or symbol: characters NATS gives a meaning to are %-escaped."""
    if not text:
        return "_"
    return "".join(_UNSAFE.get(char, char) for char in text)


@dataclass(frozen=True)
class BusNames:
    """Every name the bus parts agree on, so a test can run on its own prefix, streams and bucket."""

    trades_stream: str
    alerts_stream: str
    prefix: str
    leases_bucket: str
    consumer_prefix: str
    partitions: int

    @classmethod
    def from_settings(cls, bus: BusSettings) -> BusNames:
        return cls(
            trades_stream=bus.trades_stream,
            alerts_stream=bus.alerts_stream,
            prefix=bus.subject_prefix,
            leases_bucket=bus.leases_bucket,
            consumer_prefix=bus.consumer_prefix,
            partitions=bus.partitions,
        )

    @property
    def trades_wildcard(self) -> str:
        return f"{self.prefix}.trades.>"

    @property
    def alerts_wildcard(self) -> str:
        return f"{self.prefix}.alerts.>"

    def trades_subject(self, venue: str, symbol: str) -> str:
        """Where one venue/symbol's trades go."""
        partition = partition_of(venue, symbol, self.partitions)
        return f"{self.prefix}.trades.{partition}.{token(venue)}.{token(symbol)}"

    def partition_filter(self, partition: int) -> str:
        """Every subject of one partition: its symbols' trades and its end marker."""
        return f"{self.prefix}.trades.{partition}.>"

    def end_subject(self, partition: int) -> str:
        return f"{self.prefix}.trades.{partition}.{END_TOKEN}"

    def alert_subject(self, typology: str, venue: str, symbol: str) -> str:
        return f"{self.prefix}.alerts.{token(typology)}.{token(venue)}.{token(symbol)}"

    def partition_of_subject(self, subject: str) -> int | None:
        """The partition a trades subject names, or None when it is not one of ours."""
        parts = subject.split(".")
        if len(parts) < 4 or parts[0] != self.prefix or parts[1] != "trades" or not parts[2].isdigit():
            return None
        return int(parts[2])

    def is_end_subject(self, subject: str) -> bool:
        return subject.count(".") == 3 and subject.endswith("." + END_TOKEN)

    def durable(self, partition: int) -> str:
        """The durable pull consumer of one partition: its ack floor is the partition's checkpoint."""
        return f"{self.consumer_prefix}_p{partition}"

    @property
    def sink_durable(self) -> str:
        return f"{self.consumer_prefix}_sink"

    @property
    def checkpoints_bucket(self) -> str:
        """The KV bucket of partitions' engine checkpoints (beside the leases, isolated with them)."""
        return f"{self.leases_bucket}_checkpoints"

    @staticmethod
    def lease_key(partition: int) -> str:
        return f"partition.{partition}"

    @staticmethod
    def member_key(worker: str) -> str:
        return f"worker.{worker}"


def isolated(bus: BusSettings, tag: str) -> BusSettings:
    """The same bus settings on streams, subjects, bucket and consumers of their own (`tag` in each name).

    For tests, benchmarks or a staging run sharing a NATS server: nothing they
    publish or consume meets anyone else's.
    """
    return bus.model_copy(update={name: f"{getattr(bus, name)}_{tag}" for name in ISOLATED})
