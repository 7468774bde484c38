"""The live feed: alerts stored by any process reach every WebSocket client, once; slow clients are dropped."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import insert

from tapewatch.api.feed import AlertFeed
from tapewatch.store.alert_store import ALERTS, open_store
from tapewatch.store.models import utc_now
from unit.store.test_store import make_alert

from .harness import Api, LiveServer, live_server

SAVE_IN_ANOTHER_PROCESS = """
import sys
from datetime import datetime, timezone
from tapewatch.records import Alert
from tapewatch.store.alert_store import open_store
start = datetime(2024, 3, 2, 9, 30, tzinfo=timezone.utc)
alert = Alert.build(detector="pump_onset", typology="pump_and_dump", venue="binance", symbol="FAR/USDT",
                    start=start, end=start, detected_at=start, score=0.8, evidence={"orders": 99})
with open_store(sys.argv[1]) as store:
    assert store.save([alert]) == 1
print(alert.id)
"""


def wait_for_clients(server: LiveServer, count: int) -> None:
    """Until the server's metrics show `count` subscribed WebSocket clients."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(f"{server.base}/metrics").text
        if f"tapewatch_ws_clients {float(count)}" in text:
            return
        time.sleep(0.02)
    raise AssertionError(f"never saw {count} WebSocket clients")


async def receive(socket: websockets.ClientConnection, timeout: float = 10.0) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


def test_an_alert_saved_by_another_process_reaches_every_client_once(api: Api) -> None:
    api.save(make_alert(0))  # stored before anyone listens: not pushed
    with live_server(api.another_app()) as server:

        async def scenario() -> list[dict]:
            url = f"{server.ws}/api/v1/ws/alerts"
            async with (
                websockets.connect(f"{url}?token={api.keys['viewer']}") as first,
                websockets.connect(url, additional_headers=api.headers("analyst")) as second,
            ):
                await asyncio.to_thread(wait_for_clients, server, 2)
                saved = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-c", SAVE_IN_ANOTHER_PROCESS, api.url],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                alert_id = saved.stdout.strip()
                got = [await receive(first), await receive(second)]
                assert [g["id"] for g in got] == [alert_id, alert_id]
                with pytest.raises(TimeoutError):  # exactly once: nothing else follows
                    await receive(first, timeout=0.5)
                return got

        got = asyncio.run(scenario())
    listed = api.get("/api/v1/alerts", params={"symbol": "FAR/USDT"}).json()["items"]
    assert got[0] == listed[0]  # the same shape (and values) as the list items
    assert got[0]["status"] == "new" and got[0]["evidence"] == {"orders": 99}


def test_clients_authenticate_by_first_message_or_session_and_bad_ones_are_closed(api: Api) -> None:
    logged = api.client.post("/api/v1/session", json={"api_key": api.keys["viewer"]})
    cookie = "; ".join(f"{k}={v}" for k, v in logged.cookies.items())
    with live_server(api.another_app()) as server:
        url = f"{server.ws}/api/v1/ws/alerts"

        async def scenario() -> dict[str, object]:
            outcome: dict[str, object] = {}
            async with (
                websockets.connect(url) as by_message,
                websockets.connect(url, additional_headers={"Cookie": cookie}) as by_cookie,
            ):
                await by_message.send(json.dumps({"token": api.keys["analyst"]}))
                await asyncio.to_thread(wait_for_clients, server, 2)
                (alert,) = api.save(make_alert(5, symbol="LIVE/USDT"))
                outcome["message"] = (await receive(by_message))["id"] == alert.id
                outcome["cookie"] = (await receive(by_cookie))["id"] == alert.id
            for name, attempt in {
                "bad token": (f"{url}?token=tw_bad", {}),
                "bad first message": (url, {}),
                "cross-site cookie": (url, {"Cookie": cookie, "Origin": "https://evil.example"}),
            }.items():
                async with websockets.connect(attempt[0], additional_headers=attempt[1]) as socket:
                    if name == "bad first message":
                        await socket.send("not json")
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(socket.recv(), 5)
                    outcome[name] = closed.value.rcvd.code
            return outcome

        outcome = asyncio.run(scenario())
    assert outcome == {
        "message": True,
        "cookie": True,
        "bad token": 4401,
        "bad first message": 4401,
        "cross-site cookie": 4403,
    }


def test_a_slow_subscriber_is_dropped_and_the_others_keep_receiving(api: Api) -> None:
    async def scenario() -> tuple[list[str], bool, bool, int]:
        feed = AlertFeed(api.store.engine, poll_s=60, settle_s=5, queue_size=2)
        await feed.start()
        fast, slow = feed.subscribe(), feed.subscribe()
        received = []
        for minute in range(4):
            api.save(make_alert(minute))
            assert await feed.poll() == 1
            batch = fast.queue.get_nowait()  # the fast client keeps up; the slow one never reads
            received += [json.loads(text)["id"] for text in batch]
        assert slow.queue.get_nowait() is None  # its sender is told to close
        await feed.stop()
        return received, fast.dropped, slow.dropped, feed.clients

    received, fast_dropped, slow_dropped, clients = asyncio.run(scenario())
    assert received == [make_alert(minute).id for minute in range(4)]
    assert (fast_dropped, slow_dropped, clients) == (False, True, 1)


def test_an_alert_committed_late_is_still_pushed_exactly_once(api: Api) -> None:
    async def scenario() -> list[list[str]]:
        feed = AlertFeed(api.store.engine, poll_s=60, settle_s=5, queue_size=10)
        await feed.start()
        client = feed.subscribe()
        batches = []
        api.save(make_alert(0))
        await feed.poll()
        # A writer stamped this row 2 s before the last one seen, but committed it only now.
        late = make_alert(1)
        row = {name: getattr(late, name) for name in ("id", "typology", "venue", "symbol", "start", "end")}
        row |= {"detected_at": late.detected_at, "score": late.score, "severity": late.severity}
        row |= {"detector": late.detector, "created_at": utc_now() - timedelta(seconds=2)}
        with api.store.engine.begin() as conn:
            conn.execute(insert(ALERTS).values(**row))
        await feed.poll()
        await feed.poll()
        while not client.queue.empty():
            batches.append([json.loads(text)["id"] for text in client.queue.get_nowait()])
        await feed.stop()
        return batches

    assert asyncio.run(scenario()) == [[make_alert(0).id], [make_alert(1).id]]


def test_alerts_already_stored_when_the_server_starts_are_not_replayed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with open_store(url) as store:
        store.save([make_alert(m) for m in range(3)])

        async def scenario() -> int:
            feed = AlertFeed(store.engine, poll_s=60, settle_s=5, queue_size=10)
            await feed.start()
            client = feed.subscribe()
            found = await feed.poll()
            store.save([make_alert(10)])
            found += await feed.poll()
            assert [json.loads(t)["id"] for t in client.queue.get_nowait()] == [make_alert(10).id]
            await feed.stop()
            return found

        assert asyncio.run(scenario()) == 1
