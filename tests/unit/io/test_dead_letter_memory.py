"""Memory bounded by the good data, not the bad: a small `.gz` holding millions of blank or junk lines
runs `tapewatch detect` in constant memory, with every row accounted for.

Each run is a fresh process that reports its own peak RSS: `VmHWM`, the high-water mark of its own
memory map. Not `ru_maxrss`, which Linux carries across fork and exec, so a child of a large test
worker would report the worker's size.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

HEADER = b"symbol,timestamp,datetime,side,price,amount\n"
TRADE = b"BTC/USDT,1704067200000,,buy,100,1\n"
LIMIT_MB = 500
RUN = """
import json, sys
from tapewatch.cli.app import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "peak_mb": peak_kb / 1024}))
"""


def _flood(path: Path, line: bytes, count: int) -> Path:
    """A gzip of one good trade and `count` copies of `line` (a few KB for millions of lines)."""
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(HEADER + TRADE)
        block = line * 1_000_000
        for _ in range(count // 1_000_000):
            handle.write(block)
        handle.write(line * (count % 1_000_000))
    return path


def _detect(tmp_path: Path, source: Path) -> tuple[dict, str]:
    """`tapewatch detect` in a process of its own: its exit code and peak RSS, and its stderr."""
    args = [str(source), "-o", str(tmp_path / "alerts.jsonl"), "--dead-letter", str(tmp_path / "dead.jsonl")]
    process = subprocess.run(
        [sys.executable, "-c", RUN, "detect", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
    )
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1]), process.stderr


def test_twenty_million_blank_lines_cost_constant_memory_and_are_counted(tmp_path):
    source = _flood(tmp_path / "blank.csv.gz", b"\n", 20_000_000)
    assert source.stat().st_size < 100_000
    run, summary = _detect(tmp_path, source)
    assert run["code"] == 0, summary
    assert run["peak_mb"] < LIMIT_MB, (run, summary)
    # rows in = 1 trade + 0 dead letters + 0 duplicates + 20M blank lines
    assert "20,000,001 rows: 1 trades" in summary and "0 rejected" in summary
    assert "20,000,000 blank lines passed over" in summary
    assert not (tmp_path / "dead.jsonl").exists()  # blank lines are counted, not dead-lettered


@pytest.mark.parametrize("count", [3_000_000])
def test_a_flood_of_bad_rows_streams_to_the_dead_letter_file_in_constant_memory(tmp_path, count):
    source = _flood(tmp_path / "junk.csv.gz", b"x,y\n", count)
    run, summary = _detect(tmp_path, source)
    assert run["code"] == 0, summary
    assert run["peak_mb"] < LIMIT_MB, (run, summary)
    assert f"{count + 1:,} rows: 1 trades" in summary and f"{count:,} rejected" in summary
    dead = tmp_path / "dead.jsonl"
    with dead.open() as handle:
        first = json.loads(handle.readline())
        lines = 1 + sum(1 for _ in handle)
    assert lines == count  # every bad row written, none held
    assert first["row"] == 2 and first["record"]["symbol"] == "x" and first["reason"]
