"""A checkpoint taken mid-stream and restored into a fresh engine continues exactly as one unbroken run."""

from __future__ import annotations

import polars as pl
import pytest

from tapewatch.config import Settings, StreamSettings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.stream import StreamEngine
from unit.engine.test_stream import DETECTORS, busy_market

SETTINGS = StreamSettings(hold_ms=10**9)  # the newest millisecond is always held: a checkpoint carries it


def engine() -> StreamEngine:
    return StreamEngine(build_detectors(Settings(), DETECTORS), SETTINGS)


def chunks(trades: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return list(trades.sort("ts", maintain_order=True).iter_slices(size))


def run(engine: StreamEngine, parts: list[pl.DataFrame], start: int, *, finish: bool) -> list[dict]:
    """Push and step each part (arrival stamped by its number); keep what is emitted (timing aside:
    emission is wall-clock time)."""
    out = []
    for i, part in enumerate(parts, start):
        engine.push(part, arrived_at=float(i))
        out += engine.step(now=float(i))
    if finish:
        out += engine.finish()
    return [{"update": item.update, **item.alert.model_dump(exclude={"timing"})} for item in out]


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.8])
def test_restored_checkpoint_gives_the_alerts_of_one_uninterrupted_run(cut):
    trades = busy_market()
    parts = chunks(trades, 997)
    whole = run(engine(), parts, 0, finish=True)
    assert sum(not item["update"] for item in whole) >= 5  # alerts to compare, follow-ups among them

    half = int(len(parts) * cut)
    first = engine()
    before = run(first, parts[:half], 0, finish=False)
    first.push(parts[half].head(5), arrived_at=float(half))  # pushed, not yet stepped: pending rows
    checkpoint = first.snapshot()
    assert first.pending > 0

    restored = engine().restore(checkpoint)
    assert restored.pending == first.pending
    assert restored.stats == first.stats
    rest = [parts[half].slice(5), *parts[half + 1 :]]
    after = run(restored, rest, half, finish=True)
    assert before + after == whole
    assert restored.stats.trades_processed == trades.height


def test_a_checkpoint_of_other_detectors_is_refused():
    first = engine()
    first.push(busy_market().head(100), arrived_at=0.0)
    first.step(now=0.0)
    other = StreamEngine(build_detectors(Settings(), ["pump_onset"]), SETTINGS)
    with pytest.raises(ValueError, match="detectors"):
        other.restore(first.snapshot())
    with pytest.raises(ValueError, match="not a stream engine checkpoint"):
        other.restore(b"something else")


def test_set_asides_survive_a_checkpoint():
    first = engine()
    trades = busy_market().head(200)
    first.push(trades, arrived_at=0.0)
    first.step(now=0.0, flush=True)
    first.push(trades.head(3), arrived_at=1.0)  # already decided: set aside as duplicates
    first.step(now=1.0)
    restored = engine().restore(first.snapshot())
    assert restored.set_aside == first.set_aside and len(restored.set_aside) == 3
    assert restored.stats.set_aside == first.stats.set_aside
