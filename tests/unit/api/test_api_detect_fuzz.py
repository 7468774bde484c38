"""Fuzzing POST /detect with hostile rows: every request is detected whole or refused naming a row.

The API takes a caller's rows all or nothing (the caller is there to fix them): a 200 must have
run on every row sent, a 422 must name the first bad row and why, and nothing may be a 5xx. Rows are
drawn the way files go wrong: times of 1970, seconds for milliseconds, the far future, prices and
amounts no market prints, unknown sides, symbols in every spelling, missing fields.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Api

T0_MS = 1_704_067_200_000  # 2024-01-01
CASES = max(int(os.environ.get("TAPEWATCH_FUZZ_FILES", "1500")) // 10, 30)

GOOD_TIMES = st.one_of(
    st.integers(T0_MS, T0_MS + 86_400_000),
    st.integers(0, 59).map(lambda s: f"2024-01-01T00:00:{s:02d}Z"),
)
ODD_TIMES = st.sampled_from(
    [0, -1, 1.5, T0_MS // 1000, 10**30, 4_102_444_800_000, "", "yesterday", None, True]
)
GOOD_NUMBERS = st.floats(1e-6, 1e5)
ODD_NUMBERS = st.sampled_from([0, -1, 1e308, 5e-324, 1e-320, 1e13, 1e19, "1.5", "abc", None, False])
SIDES = st.sampled_from(["buy", "sell", "SELL", "long", "", None])
SYMBOLS = st.sampled_from(["FUZ/BTC", "fuzbtc", "FUZ-BTC", "", "x" * 300, "🚀/BTC", None])
OPTIONAL = {
    "venue": st.sampled_from(["fuzzex", "api", "", None]),
    "trade_id": st.one_of(st.none(), st.text(max_size=8)),
}
GOOD_ROWS = st.fixed_dictionaries(
    {
        "ts": GOOD_TIMES,
        "price": GOOD_NUMBERS,
        "amount": GOOD_NUMBERS,
        "symbol": st.sampled_from(["FUZ/BTC", "fuzbtc", "FUZ-BTC"]),
    },
    optional=OPTIONAL | {"side": st.sampled_from(["buy", "sell", "SELL"])},
)
ODD_ROWS = st.fixed_dictionaries(
    {"ts": st.one_of(GOOD_TIMES, ODD_TIMES), "price": st.one_of(GOOD_NUMBERS, ODD_NUMBERS)},
    optional=OPTIONAL | {"amount": st.one_of(GOOD_NUMBERS, ODD_NUMBERS), "side": SIDES, "symbol": SYMBOLS},
)
ROWS = st.integers(0, 7).flatmap(lambda pick: ODD_ROWS if pick == 0 else GOOD_ROWS)
"""Mostly plausible rows (so whole requests get through), now and then one drawn from what goes wrong."""
NAMED_ROW = re.compile(r"trades\[(\d+)\]")


@settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(ROWS, min_size=1, max_size=6))
def test_posted_rows_are_detected_whole_or_refused_naming_a_row(sqlite_api: Api, rows: list[dict]) -> None:
    response = sqlite_api.post("/api/v1/detect", {"trades": rows, "detectors": ["pump_onset"]}, role="viewer")
    assert response.status_code in (200, 422), (rows, response.status_code, response.text[:300])
    if response.status_code == 200:
        assert response.json()["trades"] == len(rows), rows  # every row went in: none dropped unsaid
        return
    detail = response.json()["detail"]
    named = NAMED_ROW.search(detail)
    assert named is not None and int(named.group(1)) < len(rows), detail
