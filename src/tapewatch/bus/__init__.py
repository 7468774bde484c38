"""Scale-out over NATS JetStream: trades partitioned by symbol, shared by any number of workers.

    ingest / `tapewatch bus publish` ──► PREFIX.trades.<partition>.<venue>.<symbol>  (stream: trades, kept ≥ the detectors' need)
        workers (`tapewatch stream --bus`) own partitions by lease, run a StreamEngine per partition
            ──► PREFIX.alerts.<typology>.<venue>.<symbol>  (stream: alerts, 30 d)
                `tapewatch bus sink` ──► store + JSON lines (+ notifier hooks)

`subjects` names everything, `codec` encodes trade batches (Arrow IPC), `publish`
puts trades on the bus, `leases` shares partitions, `partition` runs one (and
explains exactly how a partition resumes after a crash), `worker` runs a worker,
`retention` says how long trades must be kept, `checkpoints` saves partitions' engine
state, `sink` stores alerts, `status` reports; the CLI functions are in `tapewatch.cli.bus`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "CodecError": "codec",
    "decode_trades": "codec",
    "encode_trades": "codec",
    "Checkpoints": "checkpoints",
    "BusError": "connection",
    "PublishStats": "publish",
    "TradePublisher": "publish",
    "publish_files": "publish",
    "publish_frame": "publish",
    "Retention": "retention",
    "needed_retention": "retention",
    "AlertSink": "sink",
    "SinkReport": "sink",
    "run_sink": "sink",
    "BusStatus": "status",
    "bus_status": "status",
    "read_status": "status",
    "BusNames": "subjects",
    "partition_of": "subjects",
    "delete_topology": "topology",
    "ensure_topology": "topology",
    "BusWorker": "worker",
    "WorkerReport": "worker",
    "run_worker": "worker",
}
"""Where each public name lives: imported on first use, so the CLI (which registers `bus` commands at
start-up) does not pay for nats-py, Polars and the engine before a bus command runs."""


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
