"""Speed of `tapewatch detect` against the bare cost of reading the same files with Polars.

    python benchmarks/throughput.py [PUMP_EVENTS_DIR]

Prints trades per second for the full detection run (read, validate, de-duplicate,
detect) and for a bare `pl.read_csv` + `unique()` of the same files, and the ratio
between them, twice: with the pump detectors issue 2 set the target for (pump_onset,
kamps_kleinberg), and with every default detector (wash, spoofing and bar anomaly
detectors too). Target (issue 2): the pump run costs at most 2× the bare read.
Both are timed in this process (best of 5); the whole command, with Python's
start-up and imports, is timed too and printed separately.
"""

from __future__ import annotations

import subprocess
import sys

import polars as pl
from _common import best_of, data_dir

from tapewatch.batch_job import detect_files
from tapewatch.config import load_settings

REPEATS = 5
PUMP_DETECTORS = ["pump_onset", "kamps_kleinberg"]


def bare_read(files: list) -> pl.DataFrame:
    """What reading costs with nothing else: parse every file, concatenate, drop exact duplicates."""
    return pl.concat([pl.read_csv(path) for path in files]).unique()


def main() -> None:
    files = sorted(data_dir(sys.argv).glob("*.csv.gz"))
    settings = load_settings()
    read_seconds, frame = best_of(REPEATS, lambda: bare_read(files))
    trades = None
    for label, names in (("pump detectors", PUMP_DETECTORS), ("every default detector", None)):
        detect_seconds, run = best_of(
            REPEATS, lambda names=names: detect_files(files, settings, detectors=names)
        )
        if trades is None:
            trades = run.read.trades.height
            print(
                f"{len(files)} files, {trades:,} trades after de-duplication ({frame.height:,} in the bare read)"
            )
            print(
                f"bare Polars read + unique : {read_seconds:.3f} s  {trades / read_seconds:>12,.0f} trades/s"
            )
        ratio = detect_seconds / read_seconds
        verdict = f"(target ≤ 2.00x) {'OK' if ratio <= 2 else 'OVER TARGET'}" if names else "(no target)"
        print(
            f"detect, {label:<22}: {detect_seconds:.3f} s  {trades / detect_seconds:>12,.0f} trades/s "
            f"({len(run.alerts)} alerts), {ratio:.2f}x the bare read {verdict}"
        )
    command = [sys.executable, "-m", "tapewatch", "detect", *map(str, files), "--output", "/dev/null"]
    process_seconds, _ = best_of(3, lambda: subprocess.run(command, check=True, capture_output=True))
    print(
        f"whole `tapewatch detect` process (interpreter start-up and imports included): {process_seconds:.2f} s"
    )


if __name__ == "__main__":
    main()
