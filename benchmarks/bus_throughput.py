"""Trades per second through NATS JetStream per worker, partition balance, and what a takeover costs.

    python benchmarks/bus_throughput.py [--url nats://127.0.0.1:4222] [--symbols 800] [--hours 4]
        [--per-minute 4] [--partitions 16] [--skip-takeover]

A realistic market: many symbols with heavy-tailed rates (lognormal, σ 1.5: the busiest
symbols trade ~100× the median one), accounts named on both sides of each trade (so
`wash_accounts` has its input) and pumps injected late (so alerts flow). The workers
run the default detectors: `pump_onset` and `wash_accounts`; `spoofing_l3` reads L3
order events, which the bus does not carry, so the workers' engines leave it out.
Everything goes on private streams, deleted afterwards.

- "N pinned": the market is published (the publisher's rate is printed), then N worker
  processes (`run_worker`, as `tapewatch stream --bus` runs them), each pinned to its
  own core (`os.sched_setaffinity`), import everything, start together and are timed
  until every trade is decided (their first rebalancing counts). Each worker's rate is
  the trades it decided over the time until the last partition it owns was done, and
  its CPU seconds (/proc) say what the work cost whatever else loads the machine;
  balance is the largest partition's (and worker's) trades over the mean.
- "takeover": a worker that owns every partition, checkpointing, is stopped; a new one
  takes them over, restoring the checkpoints (replaying what came after), and again
  with no checkpoint (replaying the whole retention), as after a crash.

The NATS server and this process share the machine's cores with the workers: on a
2-core machine the 2-worker figure is a floor of what 2 free cores give.
Targets: 2 pinned workers ≥ 1.6× one (on 2 cores shared with the server); partitions
and workers within 1.5× of the mean; a takeover from checkpoints ≥ 10× quicker than a
full replay. Timings are noisy when others use the machine: the load average is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import nats
import numpy as np
import polars as pl
from _market import START, pump_bursts

from tapewatch.bus.publish import publish_frame, replay_chunks
from tapewatch.bus.retention import human, needed_retention
from tapewatch.bus.status import read_status
from tapewatch.bus.subjects import BusNames, isolated, partition_of
from tapewatch.bus.topology import delete_topology, ensure_topology
from tapewatch.config import BusSettings, Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.kinds import TRADES
from tapewatch.records import TRADE_SCHEMA, conform

WORKER = (
    "import json, os, sys, time\n"
    "core = os.environ.get('BENCH_CORE')\n"
    "if core: os.sched_setaffinity(0, {int(core)})\n"
    "from tapewatch.config import Settings\n"
    "from tapewatch.bus.worker import run_worker\n"
    "open(os.environ['BENCH_GO'] + f'.{os.getpid()}', 'w').close()  # imported: ready\n"
    "while not os.path.exists(os.environ['BENCH_GO']): time.sleep(0.005)\n"
    "report = run_worker(Settings(**json.loads(os.environ['BENCH_SETTINGS'])), os.environ['BENCH_URL'])\n"
    "print(report.summary(), file=sys.stderr)\n"
)
"""A worker process: pinned to its core, it imports everything, says so, and starts on the go signal
(a file), so N workers start together and their imports are not timed."""
PUMPS = 10
"""Pumps injected late in the market (after the detectors' 3 h baseline), so alerts flow too."""
CHUNK = 20_000
"""Trades handed to the publisher at a time, in time order, as a live feed would."""
POLL_S = 0.2
TARGET_SPEEDUP = 1.6
TARGET_BALANCE = 1.5
TARGET_TAKEOVER = 10.0
TRADES_DONE = re.compile(r"worker (\S+): ([\d,]+) trades")
READY = re.compile(r"partition (\d+): ready in ([\d.]+)s after replaying (\d+) trades")
RESTORED = re.compile(r"partition (\d+): restored the checkpoint of seq \d+ \(([\d.]+) MB.* in ([\d.]+)s")


def realistic_market(symbols: int, hours: float, per_minute: float, seed: int = 3) -> pl.DataFrame:
    """Symbols with heavy-tailed rates (mean `per_minute`), accounts on both sides, pumps late."""
    rng = np.random.default_rng(seed)
    rates = rng.lognormal(0.0, 1.5, symbols)
    rates *= per_minute / rates.mean()
    counts = rng.poisson(rates * hours * 60)
    total = int(counts.sum())
    index = np.repeat(np.arange(symbols), counts)
    offsets = (rng.uniform(0, hours * 3600, total) * 1e6).astype(np.int64)
    order = np.lexsort((offsets, index))
    index, offsets = index[order], offsets[order]
    steps = rng.normal(0, 0.002, total)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    walk = np.cumsum(steps)
    walk -= np.repeat(walk[starts] - steps[starts], counts)
    accounts = 40  # per symbol, a few busy ones (Zipf-like weights)
    weights = 1 / np.arange(1, accounts + 1)
    weights /= weights.sum()
    buyer = rng.choice(accounts, total, p=weights)
    seller = (
        buyer + 1 + rng.choice(accounts - 1, total, p=np.r_[weights[1:]] / weights[1:].sum())
    ) % accounts
    frame = pl.DataFrame(
        {
            "ts": pl.Series(offsets + int(START.timestamp() * 1e6)).cast(pl.Datetime("us", "UTC")),
            "venue": "bench",
            "symbol": pl.Series([f"C{i:04d}/BTC" for i in range(symbols)]).gather(index),
            "price": rng.uniform(1e-6, 1e-4, symbols)[index] * np.exp(walk),
            "amount": rng.lognormal(5, 1, total),
            "side": np.where(rng.random(total) < 0.5, "buy", "sell"),
            "trade_id": np.arange(total).astype(str),
            "buyer": pl.Series((index * accounts + buyer).astype(str)),
            "seller": pl.Series((index * accounts + seller).astype(str)),
        }
    )
    quiet = conform(frame, TRADE_SCHEMA)
    moments = [START + timedelta(hours=hours * (0.8 + 0.015 * i)) for i in range(PUMPS)]
    return pl.concat([quiet, pump_bursts(quiet, moments)]).sort("venue", "symbol", "ts")


def per_partition(trades: pl.DataFrame, partitions: int) -> Counter[int]:
    counts = trades.group_by("venue", "symbol").len()
    result: Counter[int] = Counter()
    for venue, symbol, n in counts.iter_rows():
        result[partition_of(venue, symbol, partitions)] += n
    return result


def imbalance(values: list[float]) -> float:
    """The largest over the mean (1.0: perfectly even)."""
    return max(values) / (sum(values) / len(values)) if values and sum(values) else 0.0


def private(url: str, partitions: int, checkpoint_s: float = 0.0) -> Settings:
    bus = BusSettings(
        url=url, partitions=partitions, heartbeat_s=0.5, lease_ttl_s=10, checkpoint_s=checkpoint_s
    )
    return Settings(bus=isolated(bus, f"bench{uuid.uuid4().hex[:8]}"))


async def poll(check, what: str, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            sys.exit(f"gave up after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(POLL_S)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc): what it cost, whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nats_server_pid() -> int | None:
    """The local NATS server's process, when it runs on this machine (its CPU is part of the cost)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "nats-server":
                    return int(entry.name)
    return None


@dataclass
class Worker:
    """A worker process and every line it wrote on stderr (read by a thread, so its pipe never fills)."""

    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> tuple[str, int]:
        """SIGTERM (a graceful stop); (its name, trades it decided) from its summary line."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        time.sleep(0.2)  # the reader thread takes the last lines
        found = [match for match in self.matches(TRADES_DONE)]
        if self.proc.returncode != 0 or not found:
            print("\n".join(self.lines[-30:]), file=sys.stderr)
            sys.exit(f"worker exited with {self.proc.returncode}")
        return found[-1].group(1), int(found[-1].group(2).replace(",", ""))

    def matches(self, pattern: re.Pattern) -> list[re.Match]:
        return [match for line in list(self.lines) if (match := pattern.search(line))]


def start_together(settings: Settings, url: str, cores: list[int | None]) -> list[Worker]:
    """Start one worker per core, wait until each has imported everything, then let them all go."""
    go = Path(tempfile.mkdtemp(prefix="tapewatch-bench-")) / "go"
    base = os.environ | {"BENCH_SETTINGS": settings.model_dump_json(), "BENCH_URL": url, "BENCH_GO": str(go)}
    workers = []
    for core in cores:
        env = base | ({"BENCH_CORE": str(core)} if core is not None else {})
        proc = subprocess.Popen([sys.executable, "-c", WORKER], env=env, stderr=subprocess.PIPE, text=True)
        workers.append(Worker(proc))
        threading.Thread(target=workers[-1]._read, daemon=True).start()
    deadline = time.monotonic() + 300
    while not all(Path(f"{go}.{w.proc.pid}").exists() for w in workers):
        if time.monotonic() > deadline or any(w.proc.poll() is not None for w in workers):
            sys.exit("workers did not start")
        time.sleep(0.01)
    go.touch()
    return workers


async def drain(
    trades: pl.DataFrame, url: str, partitions: int, cores: list[int | None], checkpoint_s: float = 0.0
) -> dict:
    """Publish the market, then N pinned workers (started together) decide it; per-worker rates,
    CPU seconds and balance."""
    settings = private(url, partitions, checkpoint_s)
    names = BusNames.from_settings(settings.bus)
    client = await nats.connect(url)
    js = client.jetstream()
    await ensure_topology(js, names, settings.bus)
    workers: list[Worker] = []
    result: dict = {}
    server = nats_server_pid()
    try:
        stats = await publish_frame(settings, url, replay_chunks(trades, "max", CHUNK))
        result["publish"] = stats
        workers = await asyncio.to_thread(start_together, settings, url, cores)
        started = time.perf_counter()
        cpu_before = [w.cpu_s() for w in workers]
        server_before = cpu_seconds(server) if server else 0.0
        done_at: dict[int, float] = {}
        owner: dict[int, str] = {}

        async def processed() -> bool:
            status = await read_status(js, names)
            now = time.perf_counter() - started
            for part in status.partitions:
                if part.lag == 0 and part.has_consumer and part.partition not in done_at:
                    done_at[part.partition] = now
                elif part.lag:
                    done_at.pop(part.partition, None)  # not done after all (taken over)
                owner[part.partition] = part.owner or owner.get(part.partition, "?")
            return status.trades_lag == 0 and len(done_at) == partitions

        await poll(processed, "every trade to be processed")
        seconds = time.perf_counter() - started
        cpu = [w.cpu_s() - before for w, before in zip(workers, cpu_before, strict=True)]
        result["server_cpu"] = (cpu_seconds(server) - server_before) if server else None
        decided = await asyncio.to_thread(lambda: [w.stop() for w in workers])
        workers = []
    finally:
        for worker in workers:
            worker.proc.kill()
        await delete_topology(js, names)
        await client.close()
    result["seconds"], result["rate"] = seconds, trades.height / seconds
    result["workers"] = {}
    for (name, count), used in zip(decided, cpu, strict=True):
        finish = max((t for p, t in done_at.items() if owner.get(p) == name), default=seconds)
        result["workers"][name] = (count, count / finish, used)
    result["worker_balance"] = imbalance([count for count, _, _ in result["workers"].values()])
    result["cpu"] = sum(cpu)
    return result


async def takeover(trades: pl.DataFrame, url: str, partitions: int, core: int | None) -> dict:
    """A checkpointing worker processes the market and stops; a new worker takes over from the
    checkpoints, then another with the checkpoints gone (the whole retention replayed)."""
    settings = private(url, partitions, checkpoint_s=1.0)
    names = BusNames.from_settings(settings.bus)
    client = await nats.connect(url)
    js = client.jetstream()
    await ensure_topology(js, names, settings.bus)
    result: dict = {}
    try:
        await publish_frame(settings, url, replay_chunks(trades, "max", CHUNK))
        (first,) = await asyncio.to_thread(start_together, settings, url, [core])

        async def checkpointed() -> bool:
            status = await read_status(js, names)
            busy = [p for p in status.partitions if p.ack_floor]
            return status.trades_lag == 0 and bool(busy) and all(p.checkpoint_seq is not None for p in busy)

        await poll(checkpointed, "every partition processed and checkpointed")
        await asyncio.sleep(2 * settings.bus.checkpoint_s + 1)  # the last checkpoints cover the ends
        await asyncio.to_thread(first.stop)
        for case, drop in (("from checkpoints", False), ("full replay", True)):
            if drop:
                await js.delete_object_store(names.checkpoints_bucket)
            (taker,) = await asyncio.to_thread(
                start_together, private_like(settings, checkpoint_s=0.0), url, [core]
            )
            started = time.perf_counter()

            async def taken(taker: Worker = taker) -> bool:
                return len({m.group(1) for m in taker.matches(READY)}) >= partitions

            await poll(taken, f"the takeover ({case})")
            wall = time.perf_counter() - started
            await asyncio.to_thread(taker.stop)
            ready = taker.matches(READY)
            replayed = sum(int(m.group(3)) for m in ready)
            size_mb = sum(float(m.group(2)) for m in taker.matches(RESTORED))
            result[case] = (wall, replayed, size_mb)
    finally:
        await delete_topology(js, names)
        await client.close()
    return result


def private_like(settings: Settings, **bus: float) -> Settings:
    return settings.model_copy(update={"bus": settings.bus.model_copy(update=bus)})


def verdict(ok: bool) -> str:
    return "OK" if ok else "UNDER TARGET"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--symbols", type=int, default=800)
    parser.add_argument("--hours", type=float, default=4.0, help="at least 4: the pumps need a baseline")
    parser.add_argument("--per-minute", type=float, default=4.0, help="mean trades per symbol-minute")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--skip-takeover", action="store_true")
    parser.add_argument(
        "--checkpoint-s", type=float, default=0.0, help="workers save checkpoints this often (0: never)"
    )
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    trades = realistic_market(args.symbols, args.hours, args.per_minute)
    detectors = [d.name for d in build_detectors(Settings()) if TRADES.serves(d)]
    per_symbol = trades.group_by("symbol").len()["len"]
    print(
        f"market: {trades.height:,} trades, {args.symbols} symbols over {args.hours:g} h (per symbol: median "
        f"{per_symbol.median():,.0f}, max {per_symbol.max():,}); {args.partitions} partitions; detectors on "
        f"the bus: {', '.join(detectors)}; checkpoints every {args.checkpoint_s or 'never'} s; {len(cores)} "
        f"cores, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    parts = per_partition(trades, args.partitions)
    counts = [parts.get(p, 0) for p in range(args.partitions)]
    part_balance = imbalance(counts)
    bound = sum(counts) / max(counts)
    print(
        f"partitions: trades per partition min {min(counts):,} / mean {sum(counts) / len(counts):,.0f} / max "
        f"{max(counts):,}: max/mean {part_balance:.2f} (target ≤ {TARGET_BALANCE}) "
        f"{verdict(part_balance <= TARGET_BALANCE)}; the largest partition caps the speed-up of any number "
        f"of workers at {bound:.1f}×",
        flush=True,
    )
    runs = {}
    for n in (1, 2):
        pinned: list[int | None] = list(cores[:n]) if len(cores) >= n else [None] * n
        runs[n] = run = await drain(trades, args.url, args.partitions, pinned, args.checkpoint_s)
        server = "" if run["server_cpu"] is None else f"; NATS server {run['server_cpu']:.1f} CPU-s"
        print(
            f"{n} pinned worker(s) (cores {pinned}): {trades.height:,} trades decided in {run['seconds']:.2f}s = "
            f"{run['rate']:,.0f} trades/s, {run['cpu']:.1f} worker CPU-s = "
            f"{trades.height / run['cpu']:,.0f} trades per worker CPU-s{server} "
            f"(published beforehand: {run['publish'].trades / run['publish'].seconds:,.0f} trades/s)",
            flush=True,
        )
        for name, (count, rate, used) in run["workers"].items():
            print(
                f"    worker {name}: decided {count:,} trades, {rate:,.0f} trades/s until its last partition "
                f"was done, {used:.1f} CPU-s ({count / max(used, 1e-9):,.0f} trades per CPU-s; it got "
                f"{used / run['seconds']:.0%} of its core, the rest went to the server and other processes)",
                flush=True,
            )
        if n > 1:
            print(
                f"    trades per worker max/mean {run['worker_balance']:.2f} (target ≤ {TARGET_BALANCE}) "
                f"{verdict(run['worker_balance'] <= TARGET_BALANCE)}",
                flush=True,
            )
    speedup = runs[2]["rate"] / runs[1]["rate"]
    overhead = runs[2]["cpu"] / runs[1]["cpu"]
    per_cpu = trades.height / runs[2]["cpu"]
    print(
        f"scaling: 2 pinned workers {runs[2]['rate']:,.0f} vs 1 {runs[1]['rate']:,.0f} trades/s = {speedup:.2f}× "
        f"(target ≥ {TARGET_SPEEDUP}×, ideal 2.00×) {verdict(speedup >= TARGET_SPEEDUP)}; the work itself: "
        f"{overhead:.2f}× the worker CPU-s of one worker (1.00: splitting costs nothing), load average "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(
        f"    implied on N free cores (not measured here): ~N × {per_cpu:,.0f} trades/s, up to the largest "
        f"partition's cap ({bound:.1f}× with {args.partitions} partitions) and the NATS server "
        + (
            f"(~{trades.height / runs[2]['server_cpu']:,.0f} trades per server CPU-s)"
            if runs[2]["server_cpu"]
            else "(not on this machine: not measured)"
        ),
        flush=True,
    )
    if not args.skip_takeover:
        taken = await takeover(trades, args.url, args.partitions, cores[0])
        for case, (wall, replayed, size_mb) in taken.items():
            extra = f", {size_mb:.1f} MB of checkpoints read" if size_mb else ""
            print(
                f"takeover, {case:<16}: {args.partitions} partitions ready {wall:.2f}s after the worker "
                f"started, {replayed:,} trades replayed{extra}",
                flush=True,
            )
        full, quick = taken["full replay"], taken["from checkpoints"]
        ratio = full[0] / max(quick[0], 1e-3)
        rate = full[1] / max(full[0], 1e-3)
        retention = needed_retention(Settings())
        hourly = trades.height / args.hours
        replay_s = hourly * (retention.target / timedelta(hours=1)) / rate
        print(
            f"    from checkpoints {ratio:.1f}× quicker than a full replay (target ≥ {TARGET_TAKEOVER}×) "
            f"{verdict(ratio >= TARGET_TAKEOVER)}; a full replay ran at {rate:,.0f} trades/s, so a takeover "
            f"without checkpoints at this market's rate ({hourly:,.0f} trades/h) replays the whole "
            f"{human(retention.target)} retention ({human(retention.needed)} needed: {retention.reason}) "
            f"in ~{replay_s:,.0f}s",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
