"""Trades per second through NATS JetStream: publishing alone, then end to end with 1 and 2 workers.

    python benchmarks/bus_throughput.py [--url nats://127.0.0.1:4222] [--symbols 400] [--hours 4]

A synthetic market (benchmarks/_market.py, with a few pumps so alerts flow too) is
published onto private streams (deleted afterwards), in time-ordered chunks of 20,000
trades as a live feed would hand them over (~50 trades a message). Each figure ends
when every trade message is acked: processed by the detectors, alerts on the bus.
- "publish alone": encode + publish + the server's acknowledgements, no worker.
- "backlog": N worker processes (`run_worker`, as `tapewatch stream --bus` runs them)
  started on the already published market; their start-up and rebalancing count.
- "live": N workers already sharing the partitions while the market is published.
Workers compete with the publisher and each other for the machine's cores, so on a
2-core machine the 2-worker figures show what such a machine allows, not the design.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import nats
import polars as pl
from _market import START, pump_bursts, quiet_market

from tapewatch.bus.publish import publish_frame, replay_chunks
from tapewatch.bus.status import read_status
from tapewatch.bus.subjects import BusNames, isolated
from tapewatch.bus.topology import delete_topology, ensure_topology
from tapewatch.config import BusSettings, Settings

WORKER = (
    "import json, os, sys; from tapewatch.config import Settings; from tapewatch.bus.worker import run_worker; "
    "report = run_worker(Settings(**json.loads(os.environ['BENCH_SETTINGS'])), os.environ['BENCH_URL']); "
    "print(report.summary(), file=sys.stderr)"
)


PUMPS = 10
"""Pumps injected late in the market (after the detectors' 3 h baseline), so alerts flow too."""


def private(url: str, partitions: int) -> Settings:
    bus = BusSettings(url=url, partitions=partitions, heartbeat_s=0.5, lease_ttl_s=10)
    return Settings(bus=isolated(bus, f"bench{uuid.uuid4().hex[:8]}"))


async def poll(check, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            sys.exit(f"gave up after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


CHUNK = 20_000
"""Trades handed to the publisher at a time, in time order, as a live feed would (~50 per symbol)."""


def chunks(trades: pl.DataFrame):
    return replay_chunks(trades, "max", CHUNK)


def start_workers(settings: Settings, url: str, count: int) -> list[subprocess.Popen]:
    env = os.environ | {"BENCH_SETTINGS": settings.model_dump_json(), "BENCH_URL": url}
    return [
        subprocess.Popen([sys.executable, "-c", WORKER], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]


def stop_workers(procs: list[subprocess.Popen]) -> None:
    """SIGTERM (a graceful stop) and print each worker's own summary line."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        summary = [line for line in err.splitlines() if line.startswith("worker ")]
        if proc.returncode != 0:
            print(err[-2000:], file=sys.stderr)
        elif summary:
            print("    " + summary[-1], flush=True)


async def run_case(trades: pl.DataFrame, url: str, partitions: int, workers: int, live: bool) -> dict:
    """One measurement on fresh streams; `live`: workers first, then publish (timed together)."""
    settings = private(url, partitions)
    names = BusNames.from_settings(settings.bus)
    client = await nats.connect(url)
    js = client.jetstream()
    await ensure_topology(js, names, settings.bus)
    rates, procs = {}, []
    try:
        if not live:
            stats = await publish_frame(settings, url, chunks(trades))
            rates["publish alone"] = stats.trades / stats.seconds
            print(f"publish alone          : {stats.summary()}", flush=True)
        started = time.perf_counter()
        procs = start_workers(settings, url, workers)
        if live:

            async def shared() -> bool:
                owners = [p.owner for p in (await read_status(js, names)).partitions]
                return None not in owners and len(set(owners)) == workers

            await poll(shared, f"{workers} worker(s) to share the partitions")
            started = time.perf_counter()
            await publish_frame(settings, url, chunks(trades))

        async def processed() -> bool:
            return (await read_status(js, names)).trades_lag == 0

        await poll(processed, "every trade to be processed")
        seconds = time.perf_counter() - started
        alerts = (await js.stream_info(names.alerts_stream)).state.messages
        case = f"{'live' if live else 'backlog'}, {workers} worker(s)"
        rates[case] = trades.height / seconds
        what = "published and processed" if live else "processed (worker start included)"
        print(
            f"{case:<23}: {trades.height:,} trades {what} in {seconds:.2f}s "
            f"({rates[case]:,.0f} trades/s), {alerts} alert message(s)",
            flush=True,
        )
        return rates
    finally:
        await asyncio.to_thread(stop_workers, procs)
        await delete_topology(js, names)
        await client.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--hours", type=float, default=4.0, help="at least 4: the pumps need a baseline")
    parser.add_argument("--per-minute", type=float, default=6.0)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args()
    quiet = quiet_market(args.symbols, args.hours, args.per_minute)
    moments = [START + timedelta(hours=args.hours * (0.8 + 0.015 * i)) for i in range(PUMPS)]
    trades = pl.concat([quiet, pump_bursts(quiet, moments)]).sort("venue", "symbol", "ts")
    print(
        f"market: {trades.height:,} trades, {args.symbols} symbols, {args.hours:g} h; "
        f"{args.partitions} partitions; {os.cpu_count()} cores",
        flush=True,
    )
    rates: dict[str, float] = {}
    for live in (False, True):
        for workers in (1, 2):
            rates |= await run_case(trades, args.url, args.partitions, workers, live)
    print(json.dumps({name: round(rate) for name, rate in rates.items()}))


if __name__ == "__main__":
    asyncio.run(main())
