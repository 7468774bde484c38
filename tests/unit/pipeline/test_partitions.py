"""`tapewatch detect` on inputs larger than memory: partitions of symbols give the whole run's alerts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.io.spill import partitions_for, rows_held
from tapewatch.pipeline.batch import detect_files
from unit.pipeline.venue_files import MODEL_FREE_DETECTORS, alert_lines, write_venue_files


@pytest.fixture(scope="module")
def market_files(tmp_path_factory):
    return write_venue_files(tmp_path_factory.mktemp("venue"))


@pytest.mark.parametrize("partitions", [2, 5])
def test_partitions_of_symbols_give_the_whole_runs_alerts_and_counts(market_files, tmp_path, partitions):
    whole = detect_files(
        [market_files],
        Settings(),
        detectors=MODEL_FREE_DETECTORS,
        dead_letter=tmp_path / "whole.jsonl",
    )
    split = detect_files(
        [market_files],
        Settings(),
        detectors=MODEL_FREE_DETECTORS,
        dead_letter=tmp_path / "split.jsonl",
        partitions=partitions,
    )
    assert whole.partitions == 1 and whole.read is not None
    assert split.partitions == partitions and split.read is None
    assert len(whole.alerts) > 10 and {"pump_onset", "wash_accounts", "spoofing_l3"} <= set(whole.by_detector)
    assert alert_lines(split) == alert_lines(whole)
    assert split.tally.records == whole.tally.records
    assert split.tally.duplicates_removed == whole.tally.duplicates_removed > 0  # the overlapping symbol
    assert (split.tally.rows_read, split.tally.files, split.tally.rejected) == (
        whole.tally.rows_read,
        whole.tally.files,
        whole.tally.rejected,
    )
    assert split.tally.rejected == 1 and list(split.tally.skipped) == list(whole.tally.skipped)
    assert (tmp_path / "split.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()


def test_the_default_runs_whole_inputs_that_fit_and_splits_those_that_do_not(market_files):
    files = sorted(market_files.glob("*.parquet"))
    assert partitions_for(files, memory_gib=2.0) == 1
    size = sum(path.stat().st_size for path in files)
    tiny = size * 45 / 2**30  # the memory those Parquet files need, in GiB
    assert partitions_for(files, memory_gib=tiny / 2) == 4  # a quarter of the budget per partition
    small = Settings(batch={"memory_gib": tiny / 2})
    run = detect_files(files, small, detectors=["pump_onset"])
    assert run.partitions == 4 and run.read is None


def test_the_command_says_it_ran_in_partitions(market_files, tmp_path):
    alerts = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(
        app,
        ["detect", str(market_files), "--partitions", "3", "--detector", "spoofing_l3", "-o", str(alerts)],
    )
    assert result.exit_code == 0, result.output
    assert "in 3 partitions by symbol" in result.output
    assert {json.loads(line)["detector"] for line in alerts.read_text().splitlines()} == {"spoofing_l3"}


def test_a_partition_too_large_to_hold_is_detected_a_day_at_a_time_with_the_same_alerts(market_files):
    whole = detect_files([market_files], Settings(), detectors=MODEL_FREE_DETECTORS)
    tiny = Settings(batch={"memory_gib": 1e-4})  # about 100 rows held at once
    assert rows_held(tiny.batch.memory_gib) < 200
    sliced = detect_files([market_files], tiny, detectors=MODEL_FREE_DETECTORS, partitions=2)
    assert alert_lines(sliced) == alert_lines(whole)
    assert sliced.tally.records == whole.tally.records
    assert sliced.tally.duplicates_removed == whole.tally.duplicates_removed


def test_a_spill_dir_that_does_not_exist_is_one_line(market_files, tmp_path):
    from tapewatch.errors import InputError

    missing = Settings(batch={"spill_dir": str(tmp_path / "no" / "such")})
    with pytest.raises(InputError, match=r"no[/\\]such'.*set \[batch\] spill_dir"):
        detect_files([market_files], missing, detectors=["pump_onset"], partitions=2)
