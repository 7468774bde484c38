"""What `tapewatch detect` costs before it reads a row, and the whole command against a bare read.

    python benchmarks/startup.py [PUMP_EVENTS_DIR]

Two figures of issue 13, each in fresh processes (a warm-up run of each first, so compiled bytecode
is cached), run in turns so that another process's load falls on both sides alike:

- Start-up: the wall time of `python -m tapewatch detect MISSING.csv` (everything the command does
  before it opens a file: interpreter, imports, option parsing, settings; it stops at the missing
  file with exit code 2) minus that of `python -c "import polars"`, median of STARTUP_RUNS each.
  Target: at most STARTUP_TARGET_S. The packages the command imports beyond Polars follow, by
  `-X importtime` self time, so a miss says where the time goes.
- Whole command: `python -m tapewatch detect FILES -o alerts.jsonl` (default detectors) against
  `read_inputs(FILES)` in a fresh process (the same files read, checked and de-duplicated,
  nothing else), median of COMMAND_RUNS each, interpreter and imports included on both sides.
  Target: at most COMMAND_TARGET_RATIO times the bare read.

The targets are on wall time; each is also checked on the children's CPU seconds (user + system),
which move far less than wall time on a shared machine (the start-up is single-threaded, so on an
idle machine the two agree; Polars' reader threads make CPU exceed wall for the reads).

PUMP_EVENTS_DIR defaults to ../shared/data/pump-events/dev (31 Binance trade files); when it is
absent the benchmark says so and writes a generated market of about the same size instead
(benchmarks/_market.py). Timings taken while other work runs are slower and noisier: the load
average is printed before and after.
"""

from __future__ import annotations

import gzip
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import polars as pl
from _common import DEV_EVENTS, check
from _market import START, pump_bursts, quiet_market

from tapewatch.sources.simulator.market import ccxt_trade_rows

STARTUP_RUNS = 7
STARTUP_TARGET_S = 0.15
"""Issue 13: the detect command's start-up beyond importing Polars alone."""
COMMAND_RUNS = 5
COMMAND_TARGET_RATIO = 2.0
"""Issue 13: the whole default `tapewatch detect` over the bare read of the same files."""
GENERATED_FILES = 31
GENERATED_HOURS = 96.0
GENERATED_PER_MINUTE = 3.6
"""A generated stand-in for the dev files: 31 files of one coin each, 4 days, about 650k trades."""

PYTHON = sys.executable
BARE_READ = "import sys; from tapewatch.io.readers import read_inputs; read_inputs(sys.argv[1:])"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: figures taken beside other work are slower."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def timed(command: list[str], expect: int = 0) -> tuple[float, float]:
    """Wall seconds and child CPU seconds (user + system) of one run; exits if the return code is not
    `expect` (a benchmark of a failing command would time the failure)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != expect:
        sys.exit(
            f"{' '.join(command)[:200]}: exit code {process.returncode}, expected {expect}\n{process.stderr}"
        )
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def medians_in_turns(runs: int, commands: dict[str, tuple[list[str], int]]) -> dict[str, tuple[float, float]]:
    """Per command, the median wall and CPU seconds over `runs` rounds of all commands in turn, after
    one unrecorded warm-up round."""
    for command, expect in commands.values():
        timed(command, expect)
    samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for _ in range(runs):
        for name, (command, expect) in commands.items():
            samples[name].append(timed(command, expect))
    return {
        name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for name, got in samples.items()
    }


def import_self_times(command: list[str], expect: int) -> dict[str, float]:
    """Seconds of `-X importtime` self time per module of one run of `command` (a Python command)."""
    process = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, check=False
    )
    if process.returncode != expect:
        sys.exit(f"-X importtime {' '.join(command)[:200]}: exit code {process.returncode}\n{process.stderr}")
    found = re.findall(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)$", process.stderr, re.MULTILINE)
    return {module: int(micros) / 1e6 for micros, module in found}


def packages_beyond(command: dict[str, float], baseline: dict[str, float], top: int = 10) -> list[str]:
    """The top-level packages (tapewatch by subpackage) whose modules `command` imports and the
    baseline does not, largest self time first, as "name 12 ms"."""
    sums: dict[str, float] = defaultdict(float)
    for module, seconds in command.items():
        if module not in baseline:
            parts = module.split(".")
            sums[".".join(parts[:2]) if parts[0] == "tapewatch" else parts[0]] += seconds
    largest = sorted(sums.items(), key=lambda item: -item[1])[:top]
    return [f"{name} {seconds * 1000:.0f} ms" for name, seconds in largest]


def generated_files(folder: Path) -> list[Path]:
    """A market like the dev files (one coin per gzipped ccxt-layout CSV, a pump in each), written to
    `folder`."""
    market = quiet_market(GENERATED_FILES, GENERATED_HOURS, GENERATED_PER_MINUTE)
    pumps = pump_bursts(market, [START + timedelta(hours=48 + i) for i in range(GENERATED_FILES)])
    trades = pl.concat([market, pumps]).sort("symbol", "ts")
    paths = []
    for (symbol,), rows in trades.group_by("symbol", maintain_order=True):
        path = folder / f"{str(symbol).replace('/', '_')}.csv.gz"
        path.write_bytes(gzip.compress(ccxt_trade_rows(rows).write_csv().encode(), compresslevel=6))
        paths.append(path)
    return paths


def input_files(argv: list[str], scratch: Path) -> tuple[list[Path], str]:
    """The trade files to detect on, and a line saying which they are."""
    directory = Path(argv[1]) if len(argv) > 1 else DEV_EVENTS
    files = sorted(directory.glob("*.csv.gz")) if directory.is_dir() else []
    if files:
        return files, f"{len(files)} files from {directory}"
    files = generated_files(scratch)
    return files, (
        f"'{directory}' is absent or holds no *.csv.gz: a generated market instead "
        f"({len(files)} files, {GENERATED_HOURS:g} h, ~{GENERATED_PER_MINUTE:g} trades/min per coin)"
    )


def startup(scratch: Path) -> None:
    """The start-up figure, and where its time goes."""
    missing = str(scratch / "missing.csv")
    commands = {
        "polars": ([PYTHON, "-c", "import polars"], 0),
        "detect": ([PYTHON, "-m", "tapewatch", "detect", missing], 2),
    }
    medians = medians_in_turns(STARTUP_RUNS, commands)
    (polars_wall, polars_cpu), (detect_wall, detect_cpu) = medians["polars"], medians["detect"]
    print(
        f"python -c 'import polars'           : {polars_wall:.3f} s wall, {polars_cpu:.3f} s CPU (median of {STARTUP_RUNS})"
    )
    print(f"tapewatch detect up to the first file: {detect_wall:.3f} s wall, {detect_cpu:.3f} s CPU")
    print(
        check("  start-up beyond Polars, wall", detect_wall - polars_wall, STARTUP_TARGET_S, unit=" s").line
    )
    print(check("  start-up beyond Polars, CPU", detect_cpu - polars_cpu, STARTUP_TARGET_S, unit=" s").line)
    beyond = packages_beyond(import_self_times(*commands["detect"]), import_self_times(*commands["polars"]))
    print(f"  imported beyond Polars (-X importtime self time, one run): {', '.join(beyond)}")


def whole_command(files: list[Path], scratch: Path) -> None:
    """The whole default detect command against the bare read of the same files."""
    names = [str(path) for path in files]
    commands = {
        "read": ([PYTHON, "-c", BARE_READ, *names], 0),
        "detect": ([PYTHON, "-m", "tapewatch", "detect", *names, "-o", str(scratch / "alerts.jsonl")], 0),
    }
    medians = medians_in_turns(COMMAND_RUNS, commands)
    (read_wall, read_cpu), (detect_wall, detect_cpu) = medians["read"], medians["detect"]
    print(
        f"bare read_inputs in a fresh process : {read_wall:.2f} s wall, {read_cpu:.2f} s CPU (median of {COMMAND_RUNS})"
    )
    print(f"tapewatch detect, default detectors : {detect_wall:.2f} s wall, {detect_cpu:.2f} s CPU")
    print(
        check(
            "  whole detect / bare read, wall", detect_wall / read_wall, COMMAND_TARGET_RATIO, unit="x"
        ).line
    )
    print(
        check("  whole detect / bare read, CPU", detect_cpu / read_cpu, COMMAND_TARGET_RATIO, unit="x").line
    )


def main() -> None:
    print(f"load average before: {load_average()} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="tapewatch-startup-") as folder:
        scratch = Path(folder)
        files, which = input_files(sys.argv, scratch)
        startup(scratch)
        print(which)
        whole_command(files, scratch)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
