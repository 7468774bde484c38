"""Scale-out over NATS JetStream: trades partitioned by symbol, shared by any number of workers.

    ingest / `tapewatch bus publish` ──► PREFIX.trades.<partition>.<venue>.<symbol>  (stream: trades, 24 h)
        workers (`tapewatch stream --bus`) own partitions by lease, run a StreamEngine per partition
            ──► PREFIX.alerts.<typology>.<venue>.<symbol>  (stream: alerts, 30 d)
                `tapewatch bus sink` ──► store + JSON lines (+ notifier hooks)

`subjects` names everything, `codec` encodes trade batches (Arrow IPC), `publish`
puts trades on the bus, `leases` shares partitions, `partition` runs one (and
explains exactly how a partition resumes after a crash), `worker` runs a worker,
`sink` stores alerts, `status` reports, `commands` are the CLI functions.
"""

from tapewatch.bus.codec import CodecError, decode_trades, encode_trades
from tapewatch.bus.connection import BusError
from tapewatch.bus.publish import PublishStats, TradePublisher, publish_files, publish_frame
from tapewatch.bus.sink import AlertSink, SinkReport, run_sink
from tapewatch.bus.status import BusStatus, bus_status, read_status
from tapewatch.bus.subjects import BusNames, partition_of
from tapewatch.bus.topology import delete_topology, ensure_topology
from tapewatch.bus.worker import BusWorker, WorkerReport, run_worker

__all__ = [
    "AlertSink",
    "BusError",
    "BusNames",
    "BusStatus",
    "BusWorker",
    "CodecError",
    "PublishStats",
    "SinkReport",
    "TradePublisher",
    "WorkerReport",
    "bus_status",
    "decode_trades",
    "delete_topology",
    "encode_trades",
    "ensure_topology",
    "partition_of",
    "publish_files",
    "publish_frame",
    "read_status",
    "run_sink",
    "run_worker",
]
