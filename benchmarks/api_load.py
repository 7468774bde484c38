"""The API under load: alert list and detail at a fixed request rate, and the live feed's fan-out.

    python benchmarks/api_load.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                  [--alerts 100000] [--rate 500] [--seconds 10] [--clients 500]

A private PostgreSQL schema (dropped afterwards) gets `--alerts` alerts through the
store's own bulk save, a viewer and an admin with API keys. The server runs as in
production (`tapewatch serve --workers N`: uvicorn, N processes) in a subprocess. The load
generator (aiohttp, open loop) sends requests at `--rate` per second whatever the
answers' pace, so a slow server shows as latency rather than as a lower rate; latency
is measured from each request's scheduled send time. Then `--clients` WebSocket
clients subscribe to the live feed, another connection stores new alerts, and every
client must receive every one of them.

Target: p99 < 50 ms at 500 req/s for both endpoints; every client receives every alert.
The generator, the server and PostgreSQL share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
import numpy as np
from sqlalchemy import create_engine, make_url, text

from tapewatch.records import Alert
from tapewatch.service import auth
from tapewatch.service.actors import SYSTEM
from tapewatch.store.alert_store import open_store

TARGET_P99_MS = 50.0
CONNECTIONS = 32
"""Keep-alive connections the load generator spreads its requests over (as a proxy in front would)."""
SERVER = (
    "import sys; from tapewatch.cli.serve import serve; "
    "serve(host='127.0.0.1', port=int(sys.argv[1]), db=sys.argv[2], lake=sys.argv[3], workers=int(sys.argv[4]), "
    "config=None)"
)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SYMBOLS = [f"C{n:03d}/USDT" for n in range(400)]
TYPOLOGIES = ["pump_and_dump", "volume_anomaly", "price_anomaly", "wash_trading"]


@contextlib.contextmanager
def private_schema(url: str) -> Iterator[str]:
    admin = create_engine(url)
    schema = f"tapewatch_bench_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def synthetic_alerts(count: int, offset_minutes: int = 0, seed: int = 7) -> list[Alert]:
    """`count` plausible alerts over a year of minutes across 400 symbols and four typologies."""
    rng = random.Random(seed)
    alerts = []
    for n in range(count):
        start = T0 + timedelta(minutes=offset_minutes + n * 5 + rng.randrange(5))
        alerts.append(
            Alert.build(
                detector="bench",
                typology=rng.choice(TYPOLOGIES),
                venue=rng.choice(["binance", "kraken"]),
                symbol=rng.choice(SYMBOLS),
                start=start,
                end=start + timedelta(minutes=3),
                detected_at=start + timedelta(minutes=3),
                score=rng.random(),
                evidence={"orders": rng.randrange(20, 400), "price_rise": round(rng.random(), 3)},
            )
        )
    return alerts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_healthy(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    sys.exit("the server did not become healthy within 30 s")


async def open_loop(base: str, key: str, paths: list[str], rate: float, seconds: float) -> dict:
    """Send requests at `rate`/s for `seconds`, each at its scheduled time; latency from that time."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as session:

        async def one(scheduled: float, path: str) -> None:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.get(path) as response:
                    await response.read()
                    if response.status != 200:
                        errors[str(response.status)] = errors.get(str(response.status), 0) + 1
            except aiohttp.ClientError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(time.perf_counter() - scheduled)

        began = time.perf_counter() + 0.2
        tasks = [asyncio.create_task(one(began + i / rate, paths[i % len(paths)])) for i in range(total)]
        gc.disable()  # the generator is the instrument: its own collections would pass for server latency
        try:
            await asyncio.gather(*tasks)
        finally:
            gc.enable()
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    return {
        "sent": total,
        "rate": total / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "errors": errors,
    }


async def fan_out(base: str, key: str, store_url: str, clients: int, alerts: int) -> dict:
    """`clients` subscribers; `alerts` new alerts stored by another connection; who got what, how fast.

    Readiness is end to end, so it holds with any number of server processes: probe alerts are
    stored until every client has received one, and only then are the measured alerts stored.
    """
    ws_url = base.replace("http", "ws", 1) + f"/api/v1/ws/alerts?token={key}"
    new = synthetic_alerts(alerts, offset_minutes=10_000_000, seed=99)
    wanted = {a.id for a in new}
    received: list[list[tuple[str, float]]] = [[] for _ in range(clients)]
    probed = [asyncio.Event() for _ in range(clients)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = await asyncio.gather(*(session.ws_connect(ws_url, heartbeat=None) for _ in range(clients)))

        async def listen(index: int, socket: aiohttp.ClientWebSocketResponse) -> None:
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                alert_id = json.loads(message.data)["id"]
                if alert_id not in wanted:
                    probed[index].set()
                    continue
                received[index].append((alert_id, time.perf_counter()))
                if len(received[index]) >= alerts:
                    return

        listeners = [asyncio.create_task(listen(i, s)) for i, s in enumerate(sockets)]
        saved_at: dict[str, float] = {}
        with open_store(store_url) as store:  # another connection, as `tapewatch stream` would be
            for probe in synthetic_alerts(30, offset_minutes=20_000_000, seed=5):
                store.save([probe])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in probed)), 2.0)
                if all(e.is_set() for e in probed):
                    break
            else:
                sys.exit(f"not every one of the {clients} WebSocket clients received a probe alert")
            for batch in range(0, alerts, max(1, alerts // 4)):
                chunk = new[batch : batch + max(1, alerts // 4)]
                store.save(chunk)
                saved_at |= {a.id: time.perf_counter() for a in chunk}
                await asyncio.sleep(0.3)
        _, pending = await asyncio.wait(listeners, timeout=30)
        for task in pending:
            task.cancel()
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
    complete = sum(1 for got in received if {i for i, _ in got} == wanted and len(got) == alerts)
    delays = np.array([(at - saved_at[i]) * 1000 for got in received for i, at in got])
    return {
        "clients": clients,
        "alerts": alerts,
        "complete": complete,
        "messages": sum(len(got) for got in received),
        "min_received": min(len(got) for got in received),
        "p50": float(np.percentile(delays, 50)) if len(delays) else float("nan"),
        "p99": float(np.percentile(delays, 99)) if len(delays) else float("nan"),
    }


def report(name: str, result: dict, rate: float) -> bool:
    ok = result["p99"] < TARGET_P99_MS and not result["errors"] and result["rate"] >= 0.95 * rate
    print(
        f"{name:<14} {result['rate']:7.1f} req/s (asked {rate:.0f})  p50 {result['p50']:6.1f} ms  "
        f"p99 {result['p99']:6.1f} ms  max {result['max']:7.1f} ms  errors {result['errors'] or 0}  "
        f"target p99 < {TARGET_P99_MS:.0f} ms at {rate:.0f} req/s: {'MET' if ok else 'MISSED'}"
    )
    return ok


async def measure(base: str, key: str, url: str, ids: list[str], args: argparse.Namespace) -> bool:
    await wait_healthy(base)
    met = True
    list_paths = ["/api/v1/alerts", "/api/v1/alerts?offset=50", "/api/v1/alerts?severity=critical"]
    await open_loop(base, key, list_paths, args.rate / 5, 2)  # warm-up: connections, caches
    met &= report("alert list", await open_loop(base, key, list_paths, args.rate, args.seconds), args.rate)
    detail_paths = [f"/api/v1/alerts/{i}" for i in ids]
    met &= report(
        "alert detail", await open_loop(base, key, detail_paths, args.rate, args.seconds), args.rate
    )
    feed = await fan_out(base, key, url, args.clients, args.fanout_alerts)
    fan_ok = feed["complete"] == feed["clients"]
    print(
        f"ws fan-out     {feed['clients']} clients x {feed['alerts']} alerts: "
        f"{feed['complete']}/{feed['clients']} clients got every alert, {feed['messages']:,} messages "
        f"(expected {feed['clients'] * feed['alerts']:,}), fewest received {feed['min_received']}; "
        f"store-to-client p50 {feed['p50']:.0f} ms p99 {feed['p99']:.0f} ms (the feed polls every 0.5 s)  "
        f"target every client gets every alert: {'MET' if fan_ok else 'MISSED'}"
    )
    return met and fan_ok


def main(args: argparse.Namespace) -> int:
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with the generator, "
        f"PostgreSQL and anything else running); server: serve --workers {args.workers}"
    )
    with private_schema(args.url) as url:
        with open_store(url) as store:
            alerts = synthetic_alerts(args.alerts)
            started = time.perf_counter()
            for begin in range(0, len(alerts), 10_000):
                store.save(alerts[begin : begin + 10_000])
            took = time.perf_counter() - started
            print(
                f"stored {len(alerts):,} alerts in {took:.1f} s ({len(alerts) / took:,.0f}/s, AlertStore.save)"
            )
            with store.engine.connect() as conn:  # as after any bulk load: autovacuum would do it mid-run
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE alerts"))
            for name, role in (("viewer", "viewer"), ("admin", "admin")):
                auth.create_user(store.engine, SYSTEM, name, role)
            key = auth.create_api_key(store.engine, SYSTEM, "viewer", "bench")[1]
        port = free_port()
        env = os.environ | {"TAPEWATCH_API__SESSION_SECRET": secrets.token_urlsafe(32)}
        ids = [a.id for a in random.Random(3).sample(alerts, 2000)]
        with tempfile.TemporaryFile() as log:  # the server's own log (an access line per request)
            command = [sys.executable, "-c", SERVER, str(port), url, os.devnull, str(args.workers)]
            server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            try:
                ok = asyncio.run(measure(f"http://127.0.0.1:{port}", key, url, ids, args))
            finally:
                server.terminate()
                server.wait(10)
            if server.returncode not in (0, -15):
                log.seek(0)
                print(f"the server exited with {server.returncode}:\n{log.read().decode()[-2000:]}")
        return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "TAPEWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--fanout-alerts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="server processes (serve --workers)")
    sys.exit(main(parser.parse_args()))
