"""Speed of `tapewatch detect` against the bare cost of reading the same files with Polars.

    python benchmarks/throughput.py [PUMP_EVENTS_DIR]

Prints trades per second for a bare `pl.read_csv` + `unique()` of the files, and for the
full detection run (read, validate, de-duplicate, detect) with the default detectors, as
`tapewatch detect` runs without `--detector`, and with the pump detector alone, each with its
ratio to the bare read. Target (issue 11): the default run costs at most 2× the bare read.
All are timed in this process, in turns (bare, default, pump, five rounds) so that
another process's load falls on all of them alike, and the best of each is kept; the load
average is printed beside them. The whole command, with Python's start-up and imports, is
timed too and printed separately.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import polars as pl
from _common import best_of, check, data_dir

from tapewatch.config import load_settings
from tapewatch.detect.pump.pump_onset import PumpOnsetDetector
from tapewatch.detect.registry import default_detector_names
from tapewatch.pipeline.batch import detect_files

REPEATS = 5
TARGET_RATIO = 2.0
"""Default detection over the bare read + de-duplication (issue 11)."""


def bare_read(files: list) -> pl.DataFrame:
    """What reading costs with nothing else: parse every file, concatenate, drop exact duplicates."""
    return pl.concat([pl.read_csv(path) for path in files]).unique()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: figures taken beside other work are slower."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def best_in_turns(repeats: int, calls: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Each call's fastest wall time over `repeats` rounds of all the calls in turn, and its last result."""
    best: dict[str, tuple[float, Any]] = {}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            result = call()
            seconds = time.perf_counter() - started
            best[name] = (min(seconds, best[name][0]) if name in best else seconds, result)
    return best


def main() -> None:
    files = sorted(data_dir(sys.argv).glob("*.csv.gz"))
    settings = load_settings()
    print(f"load average before: {load_average()} ({os.cpu_count()} cores)")
    timed = best_in_turns(
        REPEATS,
        {
            "bare": lambda: bare_read(files),
            "default": lambda: detect_files(files, settings),
            "pump": lambda: detect_files(files, settings, detectors=[PumpOnsetDetector.name]),
        },
    )
    (read_seconds, frame), (default_seconds, run), (pump_seconds, pump_run) = timed.values()
    trades = run.read.trades.height
    print(f"{len(files)} files, {trades:,} trades after de-duplication ({frame.height:,} in the bare read)")
    print(f"bare Polars read + unique : {read_seconds:.3f} s  {trades / read_seconds:>12,.0f} trades/s")
    ratio = default_seconds / read_seconds
    print(
        f"detect, default detectors ({', '.join(default_detector_names())}): {default_seconds:.3f} s  "
        f"{trades / default_seconds:,.0f} trades/s ({len(run.alerts)} alerts)"
    )
    print(check("  default detect / bare read", ratio, TARGET_RATIO, unit="x").line)
    print(
        f"detect, {PumpOnsetDetector.name} alone: {pump_seconds:.3f} s  "
        f"{trades / pump_seconds:,.0f} trades/s "
        f"({len(pump_run.alerts)} alerts), {pump_seconds / read_seconds:.2f}x the bare read (no target)"
    )
    command = [sys.executable, "-m", "tapewatch", "detect", *map(str, files), "--output", "/dev/null"]
    process_seconds, _ = best_of(3, lambda: subprocess.run(command, check=True, capture_output=True))
    print(
        f"whole `tapewatch detect` process (interpreter start-up and imports included): {process_seconds:.2f} s"
    )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
