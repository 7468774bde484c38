"""Fuzzing the bus with hostile files: `bus publish` and a worker on the real NATS account for every row.

Each example draws a few hostile trade files (malformed cells, blank lines, repeats, gzip cut short),
publishes them as `tapewatch bus publish` does and runs a worker until the bus has settled. Rows read
must equal trades published + rows refused (dead-lettered) + duplicates removed + blank lines, and
every published trade must be decided or set aside by the worker, with the dead-letter files holding
exactly the rows counted. Fewer cases than the readers' fuzz: each one creates its own streams.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tapewatch.bus.publish import publish_files
from tapewatch.errors import InputError
from tapewatch.store.alert_store import open_store
from unit.bus import bus_harness as harness
from unit.io.fuzz_files import LAYOUTS, FuzzFile, fuzz_files, write_fuzz_file

pytestmark = pytest.mark.nats
CASES = max(int(os.environ.get("TAPEWATCH_FUZZ_FILES", "1500")) // 60, 10)
TRADE_LAYOUTS = {layout.name for layout in LAYOUTS[:4]}
"""The layouts that hold trades: the only records the bus carries."""


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(fuzz_files().filter(lambda f: f.layout.name in TRADE_LAYOUTS), min_size=1, max_size=3))
def test_every_row_of_hostile_files_sent_over_the_bus_is_accounted_for(drawn: list[FuzzFile]) -> None:
    config = harness.private_settings()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        paths = [str(write_fuzz_file(file, root / f"in{i}")) for i, file in enumerate(drawn)]
        refused, set_aside = root / "publish-rejected.jsonl", root / "worker-rejected.jsonl"

        async def scenario():
            async with harness.on_bus(config) as js:
                try:
                    stats = await asyncio.to_thread(
                        publish_files, config, harness.NATS_URL, paths, dead_letter=refused
                    )
                except InputError as exc:  # no file could be read at all: one line, nothing published
                    assert "\n" not in str(exc) and any(path in str(exc) for path in paths), str(exc)
                    return None, None
                with open_store(root / "alerts.db") as store:
                    running = harness.Running(config, store)
                    worker = running.add_worker(dead_letter=set_aside)
                    await harness.settled(js, config)
                    await running.close()
                return stats, worker.report.stats

        published, worked = asyncio.run(scenario())
        if published is None:
            return
        written = (_lines(refused), _lines(set_aside))
    read = published.read
    assert read is not None
    assert (
        read.rows_read
        == published.trades + published.letters.count + read.duplicates_removed + read.blank_lines
    )
    assert worked.trades == published.trades
    assert written == (published.letters.count, sum(worked.set_aside.values()))
    assert set(read.failed) <= set(paths) and all("\n" not in why for why in read.failed.values())
