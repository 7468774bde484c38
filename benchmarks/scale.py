"""`tapewatch detect` on inputs larger than memory: time, trades/s and peak RSS at 10M, 50M and 100M trades.

    python benchmarks/scale.py [--sizes 10,50,100] [--symbols 2500] [--per-day 10] [--folder DIR]

Each size is a generated market of `--per-day` million trades a day (10M trades: one day; 100M: ten), written as
one Parquet file per symbol and day (the layout of Binance's daily dumps and of the lake), so a larger
input is a longer history, as it is in practice: `--symbols` coins whose trade counts follow a heavy
tail (Zipf, exponent 0.9: the busiest coin has about 4 % of all trades, 400,000 a day, and most coins
a few hundred), prices on a random walk, lognormal sizes. The whole command (`tapewatch detect DIR -o FILE`, every default
detector, `[batch] memory_gib` at its default) runs in a child process; its wall time and peak RSS
(`wait4`'s ru_maxrss) are printed beside the targets (issue 13): 100M trades under 4 GiB, and time
linear in size within 20 % (seconds per million trades at each size against the smallest size's).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from _common import check

from tapewatch.records import TRADE_SCHEMA, conform

START = datetime(2024, 6, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
TARGET_GIB = 4.0
"""Peak RSS of the 100M run."""
TARGET_LINEARITY = 0.20
"""Seconds per million trades may differ from the smallest size's by this share."""


def write_market(folder: Path, trades: int, symbols: int, per_day: int, seed: int = 7) -> int:
    """Write `trades` generated trades, `per_day` a day, as one Parquet file per symbol and day; return
    the file count."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, symbols + 1) ** 0.9
    prices = np.log(rng.uniform(1e-6, 1e-3, symbols))
    files = 0
    for day in range(math.ceil(trades / per_day)):
        counts = rng.multinomial(min(per_day, trades - day * per_day), weights / weights.sum())
        for index in np.flatnonzero(counts):
            count = int(counts[index])
            walk = prices[index] + np.cumsum(rng.normal(0, 0.0005, count))
            prices[index] = walk[-1]
            offsets = np.sort(rng.integers(0, DAY_US, count)) + day * DAY_US
            frame = pl.DataFrame(
                {
                    "ts": pl.Series(offsets + int(START.timestamp() * 1e6)).cast(pl.Datetime("us", "UTC")),
                    "venue": "bench",
                    "symbol": f"C{index:04d}/BTC",
                    "price": np.exp(walk),
                    "amount": rng.lognormal(5, 1.2, count),
                    "side": np.where(rng.random(count) < 0.5, "buy", "sell"),
                }
            )
            conform(frame, TRADE_SCHEMA).write_parquet(folder / f"C{index:04d}-day{day}.parquet")
            files += 1
    return files


def run_detect(folder: Path, output: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in GiB and the summary's last line of one `tapewatch detect` child."""
    command = [str(Path(sys.executable).with_name("tapewatch")), "detect", str(folder), "-o", str(output)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    stderr = child.stderr.read() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"tapewatch detect failed on {folder}:\n{stderr}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    return seconds, usage.ru_maxrss / 2**20, " / ".join(lines[-2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100", help="millions of trades, comma-separated")
    parser.add_argument("--symbols", type=int, default=2500)
    parser.add_argument("--per-day", type=float, default=10, help="millions of trades a day")
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to generate (default: a temp folder)"
    )
    args = parser.parse_args()
    sizes = [float(size) for size in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="tapewatch-scale-", dir=args.folder))
    results = []
    try:
        for size in sizes:
            folder = root / f"{size:g}M"
            folder.mkdir()
            started = time.perf_counter()
            files = write_market(folder, int(size * 1e6), args.symbols, int(args.per_day * 1e6))
            print(
                f"{size:g}M trades: {files} files generated in {time.perf_counter() - started:.0f}s",
                flush=True,
            )
            seconds, gib, summary = run_detect(folder, root / "alerts.jsonl")
            results.append((size, seconds, gib))
            print(
                f"  detect: {seconds:.1f}s, {size * 1e6 / seconds:,.0f} trades/s, peak RSS {gib:.2f} GiB  [{summary}]",
                flush=True,
            )
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'trades':>8} {'seconds':>8} {'trades/s':>10} {'s per 1M':>9} {'peak GiB':>9}")
    for size, seconds, gib in results:
        print(
            f"{size:>7g}M {seconds:>8.1f} {size * 1e6 / seconds:>10,.0f} {seconds / size:>9.2f} {gib:>9.2f}"
        )
    largest = max(results)
    print(check(f"peak RSS at {largest[0]:g}M trades", largest[2], TARGET_GIB, unit=" GiB").line)
    per_million = [seconds / size for size, seconds, _ in results]
    drift = max(abs(value / per_million[0] - 1) for value in per_million)
    print(check("time per trade, largest drift from the smallest size", drift, TARGET_LINEARITY).line)


if __name__ == "__main__":
    main()
