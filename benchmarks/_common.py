"""Shared bits of the benchmarks: where the real data lives and how to time a call."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
DEV_EVENTS = REPO.parent / "shared" / "data" / "pump-events" / "dev"


def data_dir(argv: list[str], default: Path = DEV_EVENTS) -> Path:
    """The directory named on the command line, or the shared dev data; exits with a clear line if absent."""
    path = Path(argv[1]) if len(argv) > 1 else default
    if not path.is_dir():
        sys.exit(f"data directory '{path}' not found: pass the pump-events directory as the first argument")
    return path


def best_of(repeats: int, func: Callable[[], T]) -> tuple[float, T]:
    """Fastest wall time of `repeats` calls (the least disturbed by the machine) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result  # type: ignore[return-value]
