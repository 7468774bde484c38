"""The alert-list micro-cache under concurrency: one query per page at a time, stale pages while refreshing."""

from __future__ import annotations

import asyncio

import pytest

from tapewatch.api.list_cache import ListCache


class Query:
    """A page query that takes a while and counts how often it ran."""

    def __init__(self, bodies: list[bytes], fail: bool = False) -> None:
        self.bodies, self.fail, self.runs = bodies, fail, 0
        self.release = asyncio.Event()

    async def __call__(self) -> bytes:
        self.runs += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("database is down")
        return self.bodies[self.runs - 1]


def test_concurrent_misses_run_one_query_and_share_its_page():
    async def scenario():
        cache, query = ListCache(ttl_s=60), Query([b"page"])
        waiting = [asyncio.create_task(cache.fetch("", query)) for _ in range(20)]
        await asyncio.sleep(0)
        query.release.set()
        assert await asyncio.gather(*waiting) == [b"page"] * 20
        assert query.runs == 1 and cache.get("") == b"page"

    asyncio.run(scenario())


def test_an_expired_page_is_served_while_one_refresh_runs():
    async def scenario():
        cache = ListCache(ttl_s=0.01)
        cache.put("", b"old")
        await asyncio.sleep(0.02)  # expired
        query = Query([b"new"])
        assert [await cache.fetch("", query) for _ in range(5)] == [b"old"] * 5  # nobody waits
        await asyncio.sleep(0)
        assert query.runs == 1
        query.release.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert cache.get("") == b"new"

    asyncio.run(scenario())


def test_a_page_queried_before_a_change_is_not_kept_after_it():
    async def scenario():
        cache, query = ListCache(ttl_s=60), Query([b"before the change"])
        task = asyncio.create_task(cache.fetch("", query))
        await asyncio.sleep(0)
        cache.clear()  # this server changed something while the query ran
        query.release.set()
        assert await task == b"before the change"  # the request that asked gets its answer
        assert cache.get("") is None  # but the next one queries again

    asyncio.run(scenario())


def test_a_failed_refresh_drops_the_stale_page_so_the_next_request_sees_the_failure():
    async def scenario():
        cache = ListCache(ttl_s=0.01)
        cache.put("", b"old")
        await asyncio.sleep(0.02)
        failing = Query([], fail=True)
        assert await cache.fetch("", failing) == b"old"  # served stale while the refresh runs
        failing.release.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert cache.get("") is None and "" not in cache._entries
        again = Query([], fail=True)
        again.release.set()
        with pytest.raises(RuntimeError, match="database is down"):
            await cache.fetch("", again)

    asyncio.run(scenario())
