"""The live source's counters in the end summary: the same lines for `stream` and `ingest crypto --live`."""

from __future__ import annotations

from tapewatch.sources.exchange.live import STAT_KEYS
from tapewatch.sources.exchange.sequence import Gap
from tapewatch.sources.exchange.summary import live_lines

T = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in µs


def test_the_summary_names_halted_symbols_given_up_watches_and_each_gap_with_its_bounds():
    stats = dict.fromkeys(STAT_KEYS, 0) | {
        "trades": 1200,
        "gaps_backfilled": 2,
        "gap_trades": 40,
        "gaps_failed": 2,
        "reconnects": 3,
        "symbols_halted": 1,
        "symbols_resumed": 1,
        "watches_failed": 1,
    }
    gaps = [("ETH/BTC", Gap(T, T + 1_500_000, 41, 97)), ("BTC/USDT", Gap(T + 60_000_000, T + 61_000_000))]
    lines = live_lines(stats, gaps)
    assert lines[0] == (
        "live: 1,200 trade(s); 0 duplicate(s), 0 out of order, 2 gap(s) refilled (40 trades), "
        "2 not repaired, 3 reconnect(s), 0 malformed"
    )
    assert lines[1] == "  1 symbol(s) stopped trading (unsubscribed), 1 trading again, 1 watch(es) given up"
    assert lines[2] == (
        "  ETH/BTC: trades missing (not repaired) between 2024-01-01T00:00:00.000000Z and "
        "2024-01-01T00:00:01.500000Z (ids 41–97, exclusive)"
    )
    assert lines[3].endswith("between 2024-01-01T00:01:00.000000Z and 2024-01-01T00:01:01.000000Z")


def test_a_quiet_run_says_nothing_of_halts_and_the_lake_count_only_when_written():
    stats = dict.fromkeys(STAT_KEYS, 0) | {"trades": 3}
    assert live_lines(stats, []) == [
        (
            "live: 3 trade(s); 0 duplicate(s), 0 out of order, 0 gap(s) refilled (0 trades), "
            "0 not repaired, 0 reconnect(s), 0 malformed"
        )
    ]
    assert live_lines(stats, [], written=3)[0].startswith("live: 3 trade(s), 3 new in the lake; ")
