"""Unreadable files through `tapewatch detect`: each set aside in one line naming it, the rest detected,
exit status 2 at the end; and the output paths checked before anything is read."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from conftest import START, burst, market, quiet_trades
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.errors import InputError
from tapewatch.io.readers import read_inputs
from tapewatch.pipeline.batch import detect_files
from unit.cli.test_cli import ccxt_csv_text

runner = CliRunner()
HEADER = "symbol,timestamp,datetime,side,price,amount"


@pytest.fixture(scope="module")
def pumped() -> str:
    """A coin pumped at hour 4: its file gives one pump_onset alert."""
    return ccxt_csv_text(market(quiet_trades(), burst(START + timedelta(hours=4))))


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    for index in range(at, at + 8):
        changed[index] ^= 0xFF
    return bytes(changed)


def _zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("t.csv", data)
    return buffer.getvalue()


def _parquet(data: bytes) -> bytes:
    buffer = io.BytesIO()
    pl.read_csv(data).rename({"timestamp": "ts"}).write_parquet(buffer)
    return buffer.getvalue()


CORRUPT: dict[str, tuple[str, Callable[[bytes], bytes], str]] = {
    "gzip cut in half": ("t.csv.gz", lambda d: _half(gzip.compress(d)), "cut short"),
    "gzip with a bad CRC": (
        "t.csv.gz",
        lambda d: _flip(gzip.compress(d), len(gzip.compress(d)) - 8),
        "corrupt",
    ),
    "gzip garbled inside": ("t.csv.gz", lambda d: _flip(gzip.compress(d), 200), "corrupt"),
    "zip cut in half": ("t.zip", lambda d: _half(_zipped(d)), "expected a complete zip archive"),
    "zip member garbled": ("t.zip", lambda d: _flip(_zipped(d), 300), "corrupt"),
    "parquet cut in half": ("t.parquet", lambda d: _half(_parquet(d)), "cannot read as Parquet"),
    "parquet footer garbled": (  # a garbled data page reads silently: Parquet pages carry no checksum
        "t.parquet",
        lambda d: _flip(_parquet(d), len(_parquet(d)) - 60),
        "cannot read as Parquet",
    ),
}


def _corrupt(folder: Path, case: str, pumped: str) -> Path:
    """A corrupt file of the pumped coin's trades under another symbol (its alerts would show)."""
    name, spoil, _ = CORRUPT[case]
    path = folder / name
    path.write_bytes(spoil(pumped.replace("AAA/BTC", "BBB/BTC").encode()))
    return path


def _detectors(result_output: str, alerts: Path) -> list[str]:
    assert "Traceback" not in result_output
    return [json.loads(line)["symbol"] for line in alerts.read_text().splitlines()]


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_file_in_a_directory_is_set_aside_named_and_the_rest_detected(tmp_path, pumped, case):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.csv").write_text(pumped)
    bad = _corrupt(folder, case, pumped)
    alerts = tmp_path / "alerts.jsonl"
    result = runner.invoke(app, ["detect", str(folder), "-o", str(alerts), "--detector", "pump_onset"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if str(bad) in line]
    assert len(lines) == 1 and lines[0].startswith("set aside (cannot be read): input "), result.output
    assert CORRUPT[case][2] in lines[0]
    assert "read 1 file(s)" in result.output and "1 input file(s) could not be read" in result.output
    assert _detectors(result.output, alerts) == ["AAA/BTC"]  # the good file's alert, written


@pytest.mark.parametrize("case", ["gzip cut in half", "zip member garbled", "parquet footer garbled"])
def test_a_corrupt_file_alone_is_one_line_and_exit_2(tmp_path, pumped, case):
    bad = _corrupt(tmp_path, case, pumped)
    result = runner.invoke(app, ["detect", str(bad), "-o", str(tmp_path / "alerts.jsonl")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"error: input '{bad}': cannot read")
    assert "Traceback" not in result.output and "read 0 file(s)" not in result.output


def test_named_files_of_no_known_format_or_missing_columns_are_set_aside_too(tmp_path, pumped):
    good = tmp_path / "good.csv"
    good.write_text(pumped)
    noise = tmp_path / "noise.csv"
    noise.write_bytes(bytes(range(256)) * 20)
    columns = tmp_path / "columns.csv"
    columns.write_text("symbol,price,amount\nAAA/BTC,1,2\n")  # trades, but no time column
    alerts = tmp_path / "alerts.jsonl"
    result = runner.invoke(app, ["detect", str(noise), str(good), str(columns), "-o", str(alerts)])
    assert result.exit_code == 2, result.output
    assert f"set aside (cannot be read): input '{noise}': cannot tell the format" in result.output
    assert f"set aside (cannot be read): input '{columns}': missing column(s) timestamp" in result.output
    assert "2 input file(s) could not be read" in result.output
    assert "AAA/BTC" in _detectors(result.output, alerts)


def test_a_directory_without_market_data_is_an_error_not_read_0_files(tmp_path):
    (tmp_path / "README.csv").write_text("notes about the data\n")
    result = runner.invoke(app, ["detect", str(tmp_path)])
    assert result.exit_code == 2
    assert "no market data in the input: 1 file(s) skipped" in result.output and "README.csv" in result.output
    assert "read 0 file(s)" not in result.output


def test_a_readme_beside_market_data_is_skipped_not_an_error(tmp_path, pumped):
    (tmp_path / "README.csv").write_text("notes about the data\n")
    (tmp_path / "good.csv").write_text(pumped)
    result = runner.invoke(app, ["detect", str(tmp_path), "-o", str(tmp_path / "alerts.jsonl")])
    assert result.exit_code == 0, result.output
    assert f"skipped: input '{tmp_path / 'README.csv'}'" in result.output and "set aside" not in result.output


def test_no_readable_file_at_all_is_one_line(tmp_path, pumped):
    first = _corrupt(tmp_path, "gzip cut in half", pumped)
    second = _corrupt(tmp_path, "zip cut in half", pumped)
    result = runner.invoke(app, ["detect", str(first), str(second)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1  # one line, no summary
    assert "no input file could be read: 2 set aside as unreadable; first: input" in result.output


@pytest.mark.parametrize(
    ("option", "where", "expected"),
    [
        ("-o", lambda tmp: tmp, "is a directory"),
        ("-o", lambda tmp: tmp / "good.csv" / "alerts.jsonl", "is not a directory"),
        ("-o", lambda tmp: Path("/proc/tapewatch/alerts.jsonl"), "cannot write there"),
        ("--dead-letter", lambda tmp: tmp, "is a directory"),
        ("--dead-letter", lambda tmp: Path("/proc/rejected.jsonl"), "cannot write there"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_reading(
    tmp_path, pumped, option, where, expected
):
    (tmp_path / "good.csv").write_text(pumped)
    target = where(tmp_path)
    result = runner.invoke(app, ["detect", str(tmp_path / "good.csv"), option, str(target)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "read " not in result.output  # refused before reading anything
    name = "--output" if option == "-o" else option
    assert lines[0].startswith(f"error: {name} '{target}': ") and expected in lines[0], lines


def test_a_working_directory_nobody_may_write_in_does_not_stop_a_run(tmp_path, pumped, monkeypatch):
    data = tmp_path / "good.csv"
    data.write_text(pumped + "APPC/BTC,1704067200000,,buy,-1,1\n")  # one bad row, for the default file
    monkeypatch.chdir("/proc")
    result = runner.invoke(app, ["detect", str(data)])
    assert result.exit_code == 0, result.output
    went = Path(result.output.split("1 rejected → ")[1].split()[0])
    assert went.parent != Path("/proc") and json.loads(went.read_text())["reason"]
    went.unlink()


def test_partitions_set_bad_files_aside_and_give_the_whole_runs_alerts(tmp_path, pumped):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.csv").write_text(pumped)
    (folder / "other.csv").write_text(pumped.replace("AAA/BTC", "CCC/BTC"))
    bad = _corrupt(folder, "gzip with a bad CRC", pumped)
    whole = detect_files([folder], Settings(), detectors=["pump_onset"])
    split = detect_files([folder], Settings(), detectors=["pump_onset"], partitions=2)
    assert list(whole.tally.failed) == list(split.tally.failed) == [str(bad)]
    assert split.partitions == 2 and split.tally.files == whole.tally.files == 2
    assert (
        sorted(a.symbol for a in split.alerts)
        == sorted(a.symbol for a in whole.alerts)
        == [
            "AAA/BTC",
            "CCC/BTC",
        ]
    )
    result = runner.invoke(app, ["detect", str(folder), "--partitions", "2", "-o", str(tmp_path / "a.jsonl")])
    assert result.exit_code == 2 and f"set aside (cannot be read): input '{bad}'" in result.output


def test_read_inputs_raises_a_bad_files_error_unless_asked_to_set_it_aside(tmp_path, pumped):
    good = tmp_path / "good.csv"
    good.write_text(pumped)
    bad = _corrupt(tmp_path, "gzip cut in half", pumped)
    with pytest.raises(InputError, match=f"input '{bad}': cannot read: the data ends early"):
        read_inputs([good, bad])
    result = read_inputs([good, bad], set_aside=True)
    assert result.files == [good] and list(result.failed) == [str(bad)] and result.trades.height > 0


def test_blank_lines_are_counted_and_every_row_is_accounted_for(tmp_path):
    text = f"{HEADER}\nAAA/BTC,1709251200000,,buy,1,1\n\n\n,,,,,\nAAA/BTC,1709251200000,,buy,-1,1\n\n"
    # rows: a trade, two empty lines, separators only, a bad trade, an empty line (the last newline ends it)
    path = tmp_path / "blanks.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    result = read_inputs([path])
    counts = (result.rows_read, result.trades.height, result.rejected.height, result.blank_lines)
    assert counts == (6, 1, 1, 4)  # rows in = kept + dead letters + duplicates (none) + blank lines
    assert result.rejected["row"].to_list() == [5]  # its place in the file, blank lines counted
    summary = runner.invoke(app, ["detect", str(path), "-o", str(tmp_path / "a.jsonl")])
    assert "6 rows: 1 trades" in summary.output and "4 blank lines passed over" in summary.output


def test_undecodable_bytes_cost_their_row_not_the_file(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        f"{HEADER}\nAAA/BTC,1709251200000,,buy,1,1\n".encode() + b"\xe9\xff/BTC,1709251200000,,buy,1,1\n"
    )
    result = read_inputs([path])
    assert result.trades.height == 1
    assert result.rejected.select("row", "reason").rows() == [(2, "undecodable bytes: not UTF-8 text")]


def test_equal_trades_without_id_in_one_file_are_kept_whole_and_in_partitions(tmp_path, pumped):
    seconds = f"{HEADER}\n" + "AAA/BTC,1709251200000,,buy,1,1\n" * 3 + "AAA/BTC,1709251201000,,sell,1,2\n"
    (tmp_path / "a.csv").write_text(seconds)
    (tmp_path / "b.csv").write_text(seconds)  # the same file again: all four are copies
    whole = detect_files([tmp_path], Settings(), detectors=["pump_onset"])
    split = detect_files([tmp_path], Settings(), detectors=["pump_onset"], partitions=3)
    assert whole.tally.records["trades"] == split.tally.records["trades"] == 4
    assert whole.tally.duplicates_removed == split.tally.duplicates_removed == 4


def test_what_conversion_noticed_about_a_file_is_in_the_summary(tmp_path):
    path = tmp_path / "seconds.csv"
    path.write_text(f"{HEADER}\n" + "".join(f"AAA/BTC,{1709251200 + i},,buy,1,1\n" for i in range(5)))
    assert read_inputs([path]).notes[str(path)]  # e.g. timestamps read as epoch seconds
    result = runner.invoke(app, ["detect", str(path), "-o", str(tmp_path / "a.jsonl")])
    assert result.exit_code == 0, result.output
    assert f"note: '{path}': " in result.output and "epoch seconds" in result.output
