"""When does Spark pay? `tapewatch detect` on the local engine against `--engine spark` on local[*].

    python benchmarks/spark_scale.py [--sizes 10M,50M] [--keep DIR]

For each size, generates Binance-style daily trade dumps (headerless CSV, `SYMBOL-trades-DATE.csv`, one
file per symbol and day; 40 symbols whose activity is log-normally skewed, heavy-tailed Pareto trade
sizes, a pump on every 8th symbol each day) into a temp dir, then runs the real command for each engine in its own process:

    tapewatch detect DIR -o alerts.jsonl                   (the local engine: partitions by itself when
                                                            the input exceeds [batch] memory_gib)
    tapewatch detect DIR -o alerts.jsonl --engine spark    (Spark in local mode, all cores)

and prints for each the wall time (JVM start included), the peak memory of the whole process tree
(proportional set size summed over the process and its children, sampled every 0.25 s: the JVM and
Spark's Python workers count), the alerts written, and the Spark/local time ratio. The two alert files
must be identical (printed as `same alerts: yes`).

Target: Spark's alerts identical to the local engine's at every size (a correctness target, not a
speed one); the ratio is reported to say where Spark pays on one machine, not held to a number. Timings
taken while others share the cores are noisy: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

SYMBOLS = 40
TRADES_PER_DAY_FILE = 125_000
"""Mean trades in one symbol's day: days = size / (SYMBOLS × this), at least one."""
START = datetime(2024, 6, 1, tzinfo=UTC)
PUMPED_EVERY = 8
"""Every 8th symbol is pumped once a day (so both engines have alerts to agree on)."""
TOOL = Path(sys.executable).with_name("tapewatch")


def parse_size(text: str) -> int:
    """`1M`, `500k`, `50M` or a plain number of trades."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("km")) * scale)
    except ValueError:
        sys.exit(f"--sizes: '{text}' is not a size (e.g. 1M, 500k, 50M)")


def generate(folder: Path, trades: int, seed: int = 13) -> int:
    """Binance daily trade dumps holding about `trades` trades in all; returns the number written."""
    rng = np.random.default_rng(seed)
    days = max(1, round(trades / (SYMBOLS * TRADES_PER_DAY_FILE)))
    weights = rng.lognormal(0, 1, SYMBOLS)
    per_symbol = np.maximum(1, (weights / weights.sum() * trades / days).astype(np.int64))
    written = 0
    for index, count in enumerate(per_symbol):
        symbol = f"C{index:03d}USDT"
        price = rng.uniform(0.01, 100)
        for day in range(days):
            date = START + timedelta(days=day)
            n = int(rng.poisson(count))
            ms = np.sort(rng.integers(0, 86_400_000, n)) + int(date.timestamp() * 1000)
            walk = price * np.exp(np.cumsum(rng.normal(0, 4e-4, n)))
            maker = rng.random(n) < 0.5
            if index % PUMPED_EVERY == 0 and n:  # a pump: ~100× the day's trade rate for 10 s, price +40 %
                buys = max(120, n // 80)
                at = int(np.searchsorted(ms, ms[0] + 43_200_000))
                burst = ms[min(at, n - 1)] + np.sort(rng.integers(0, 10_000, buys))
                ms = np.concatenate([ms[:at], burst, ms[at:] + 10_000])
                lift = walk[min(at, n - 1)] * (1 + 0.4 * np.minimum(1, np.arange(1, buys + 1) / (buys / 2)))
                walk = np.concatenate([walk[:at], lift, walk[at:] * 1.4])
                maker = np.concatenate([maker[:at], np.zeros(buys, dtype=bool), maker[at:]])  # takers buy
                n += buys
            price = float(walk[-1]) if n else price
            qty = np.round((rng.pareto(1.5, n) + 1) * 0.01, 5)  # heavy-tailed: a few huge prints
            frame = pl.DataFrame(
                {
                    "id": np.arange(written, written + n),
                    "price": np.round(walk, 6),
                    "qty": qty,
                    "quote_qty": np.round(walk * qty, 6),
                    "time": ms,
                    "is_buyer_maker": maker,
                    "is_best_match": np.ones(n, dtype=bool),
                }
            )
            frame.write_csv(folder / f"{symbol}-trades-{date:%Y-%m-%d}.csv", include_header=False)
            written += n
    return written


def tree_pss_bytes(root: int) -> int:
    """Proportional set size of `root` and all its descendants (shared pages counted once overall)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


@dataclass
class Timed:
    seconds: float
    peak_bytes: int
    alerts: int
    summary: str


def run(command: list[str], output: Path) -> Timed:
    """Run `command` (nice 10), sampling its process tree's memory until it ends."""
    started = time.perf_counter()
    process = subprocess.Popen(
        ["nice", "-n", "10", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.25):
            peak = max(peak, tree_pss_bytes(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr[-3000:]}")
    lines = [line for line in stderr.splitlines() if line.startswith(("read ", "larger than", "warning"))]
    alerts = sum(1 for _ in output.open()) if output.exists() else 0
    return Timed(seconds, peak, alerts, " | ".join(lines))


def load_average() -> str:
    return " ".join(f"{load:.1f}" for load in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10M,50M", help="trades per run, comma-separated (e.g. 1M,10M)")
    parser.add_argument("--keep", type=Path, help="generate into (and keep) this directory")
    args = parser.parse_args()
    sizes = [parse_size(size) for size in args.sizes.split(",")]
    print(f"{os.cpu_count()} cores; load average {load_average()} (timings beside other work are noisy)")
    for size in sizes:
        base = Path(tempfile.mkdtemp(prefix="tapewatch-spark-scale-", dir=args.keep))
        try:
            data = base / "trades"
            data.mkdir()
            started = time.perf_counter()
            written = generate(data, size)
            files = len(list(data.iterdir()))
            megabytes = sum(path.stat().st_size for path in data.iterdir()) / 2**20
            print(
                f"\n{written:,} trades in {files} daily files of {SYMBOLS} symbols ({megabytes:,.0f} MiB CSV), "
                f"generated in {time.perf_counter() - started:.0f} s"
            )
            local_out, spark_out = base / "local.jsonl", base / "spark.jsonl"
            local = run([str(TOOL), "detect", str(data), "-o", str(local_out)], local_out)
            print(
                f"  local engine      {local.seconds:8.1f} s  peak {local.peak_bytes / 2**30:5.2f} GiB  "
                f"{local.alerts:,} alerts  [{local.summary}]  load {load_average()}"
            )
            spark = run(
                [str(TOOL), "detect", str(data), "-o", str(spark_out), "--engine", "spark"], spark_out
            )
            print(
                f"  spark local[*]    {spark.seconds:8.1f} s  peak {spark.peak_bytes / 2**30:5.2f} GiB  "
                f"{spark.alerts:,} alerts  [{spark.summary}]  load {load_average()}"
            )
            same = local_out.read_bytes() == spark_out.read_bytes()
            print(
                f"  spark/local time {spark.seconds / local.seconds:.2f}× (noisy), "
                f"memory {spark.peak_bytes / max(local.peak_bytes, 1):.2f}×; "
                f"same alerts: {'yes' if same else 'NO'} (target: yes): {'MET' if same else 'MISSED'}"
            )
        finally:
            if args.keep is None:
                shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
