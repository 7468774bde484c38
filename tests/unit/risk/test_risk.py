"""The 1–100 risk score: monotone in the evidence, explained by reasons that add up, read from the store."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from tapewatch.config import RiskSettings
from tapewatch.risk.evidence import risk_table, symbol_risk
from tapewatch.risk.score import AlertFact, Listing, RiskEvidence, risk_score
from tapewatch.store.alert_store import open_store
from tapewatch.store.models import InstrumentRow
from unit.store.test_store import BACKENDS, make_alert, postgres_schema

AT = datetime(2024, 3, 8, 12, 0, tzinfo=UTC)
TYPOLOGIES = ["pump_and_dump", "wash_trading", "spoofing", "volume_anomaly", "something_new"]

alert_facts = st.builds(
    AlertFact,
    typology=st.sampled_from(TYPOLOGIES),
    score=st.floats(0, 1),
    detected_at=st.integers(0, 10 * 24 * 60).map(lambda minutes: AT - timedelta(minutes=minutes)),
    probability=st.none() | st.floats(0, 1),
)
evidences = st.builds(
    RiskEvidence,
    venue=st.just("v"),
    symbol=st.just("S"),
    at=st.just(AT),
    alerts=st.lists(alert_facts, max_size=8),
    bar_z=st.dictionaries(st.sampled_from(["volume", "return", "amplitude"]), st.floats(-20, 20), max_size=3),
    listing=st.builds(
        Listing,
        asset_class=st.sampled_from(["stock", "crypto", None]),
        price=st.none() | st.floats(0.01, 100),
        market_cap=st.none() | st.floats(1e5, 1e12),
        first_seen=st.none() | st.integers(0, 400).map(lambda days: AT - timedelta(days=days)),
    ),
)


def test_no_evidence_scores_one_with_no_reasons():
    result = risk_score(RiskEvidence(venue="v", symbol="S", at=AT))
    assert (result.score, result.reasons, result.total_points) == (1, [], 0.0)


@settings(max_examples=200, deadline=None)
@given(evidences, alert_facts)
def test_another_alert_never_lowers_the_score(evidence, extra):
    before = risk_score(evidence)
    after = risk_score(replace(evidence, alerts=[*evidence.alerts, extra]))
    assert after.total_points >= before.total_points
    assert after.score >= before.score


@settings(max_examples=200, deadline=None)
@given(evidences, st.sampled_from(["volume", "return", "amplitude"]), st.floats(0, 10))
def test_a_more_extreme_bar_never_lowers_the_score(evidence, feature, more):
    z = evidence.bar_z.get(feature, 0.0)
    stronger = replace(evidence, bar_z={**evidence.bar_z, feature: z + more if z >= 0 else z - more})
    assert risk_score(stronger).total_points >= risk_score(evidence).total_points


@settings(max_examples=200, deadline=None)
@given(evidences)
def test_reasons_add_up_to_the_score(evidence):
    result = risk_score(evidence)
    assert 1 <= result.score <= 100
    assert sum(reason.points for reason in result.reasons) == pytest.approx(result.total_points, abs=1e-3)
    if result.reasons:
        assert sum(r.contribution for r in result.reasons) == pytest.approx(
            result.score - 1, abs=0.5 + 0.01 * len(result.reasons)
        )
        assert [r.points for r in result.reasons] == sorted((r.points for r in result.reasons), reverse=True)


def test_fresh_strong_alerts_explain_a_high_score_in_plain_words():
    alerts = [AlertFact("pump_and_dump", 0.9, AT - timedelta(hours=h), probability=0.95) for h in (1, 30)]
    result = risk_score(
        RiskEvidence(
            venue="binance",
            symbol="XYZ/BTC",
            at=AT,
            alerts=alerts,
            bar_z={"volume": 9.0},
            bar_interval="1h",
            listing=Listing(asset_class="crypto", first_seen=AT - timedelta(days=9)),
        )
    )
    assert result.score >= 80
    kinds = [reason.kind for reason in result.reasons]
    assert kinds[0] == "alerts:pump_and_dump"
    assert set(kinds) == {"alerts:pump_and_dump", "pump_model", "bar:volume", "listing:new"}
    texts = {reason.kind: reason.text for reason in result.reasons}
    assert texts["alerts:pump_and_dump"].startswith("2 pump-and-dump alerts in the last 7 days")
    assert texts["bar:volume"] == "volume 9.0 robust σ above normal on the last 1h bar"
    assert texts["pump_model"] == "the trained pump model gave probability 0.95 1 h ago"


def test_old_alerts_fade_and_alerts_outside_the_window_do_not_count():
    fresh = RiskEvidence(venue="v", symbol="S", at=AT, alerts=[AlertFact("spoofing", 1.0, AT)])
    old = replace(fresh, alerts=[AlertFact("spoofing", 1.0, AT - timedelta(days=4))])
    gone = replace(fresh, alerts=[AlertFact("spoofing", 1.0, AT - timedelta(days=8))])
    future = replace(fresh, alerts=[AlertFact("spoofing", 1.0, AT + timedelta(minutes=1))])
    assert risk_score(fresh).total_points == pytest.approx(RiskSettings().typology_weights["spoofing"])
    assert risk_score(old).total_points == pytest.approx(1.5 * 0.5**2)  # two half-lives of 48 h
    assert risk_score(gone).score == 1 and risk_score(future).score == 1  # as it stood at AT


def test_penny_small_cap_stock_scores_on_listing_facts_alone():
    listing = Listing(asset_class="stock", price=0.42, market_cap=3e6)
    result = risk_score(RiskEvidence(venue="nasdaq", symbol="PNY", at=AT, listing=listing))
    texts = {reason.kind: reason.text for reason in result.reasons}
    assert texts["listing:penny"] == "penny stock: last price $0.42 (under $5)"
    assert texts["listing:market_cap"] == "small market cap: $3.0M (under $300M)"
    assert 1 < result.score < 30


@contextlib.contextmanager
def database(kind: str, tmp_path) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp_path / "risk.db")
        return
    with postgres_schema() as url:
        yield url


@pytest.mark.parametrize("kind", BACKENDS)
def test_scores_come_from_the_store_and_the_table_ranks_them(kind, tmp_path):
    with database(kind, tmp_path) as url, open_store(url) as store:
        at = make_alert(0).detected_at + timedelta(hours=1)
        store.save(
            [
                make_alert(0, symbol="HOT/BTC", score=0.9, evidence={"probability": 0.8}),
                make_alert(10, symbol="HOT/BTC", typology="wash_trading", score=0.7),
                make_alert(20, symbol="MILD/BTC", typology="volume_anomaly", score=0.5),
                make_alert(-20 * 24 * 60, symbol="OLD/BTC", score=1.0),
            ]
        )
        with store.engine.begin() as conn:
            conn.execute(
                insert(InstrumentRow).values(
                    venue="nasdaq", symbol="PNY", asset_class="stock", last_price=0.5, first_seen=at
                )
            )
        hot = symbol_risk(store.engine, "binance", "HOT/BTC", at, RiskSettings())
        assert {reason.kind for reason in hot.reasons} == {
            "alerts:pump_and_dump",
            "alerts:wash_trading",
            "pump_model",
        }
        table = risk_table(store.engine, at, RiskSettings())
        assert [row.symbol for row in table] == [
            "HOT/BTC",
            "PNY",
            "MILD/BTC",
        ]  # OLD/BTC's alert is outside the window
        assert table[0].score == hot.score and table[0].score > table[1].score > 1
        only_nasdaq = risk_table(store.engine, at, RiskSettings(), venue="nasdaq")
        assert [row.symbol for row in only_nasdaq] == ["PNY"]


def test_risk_command_prints_the_table_and_explains_a_symbol(tmp_path):
    from typer.testing import CliRunner

    from tapewatch.cli.app import app

    db = str(tmp_path / "risk.db")
    with open_store(db) as store:
        store.save([make_alert(0, symbol="HOT/BTC", score=0.9), make_alert(5, symbol="MILD/BTC", score=0.2)])
    at = (make_alert(0).detected_at + timedelta(hours=1)).isoformat()
    runner = CliRunner()
    table = runner.invoke(app, ["risk", "--db", db, "--at", at, "--lake", str(tmp_path / "lake")])
    assert table.exit_code == 0, table.output
    assert table.output.index("HOT/BTC") < table.output.index("MILD/BTC")
    explained = runner.invoke(
        app,
        ["risk", "HOT/BTC", "--venue", "binance", "--db", db, "--at", at, "--json", "--lake", str(tmp_path)],
    )
    assert explained.exit_code == 0, explained.output
    line = json.loads(explained.output)
    assert line["symbol"] == "HOT/BTC" and line["score"] > 1
    assert line["reasons"][0]["text"].startswith("1 pump-and-dump alert in the last 7 days")
    bad = runner.invoke(app, ["risk", "--db", db, "--at", "yesterday"])
    assert bad.exit_code == 2 and "--at 'yesterday': not a time" in bad.output
    no_venue = runner.invoke(app, ["risk", "HOT/BTC", "--db", db])
    assert no_venue.exit_code == 2 and "--venue" in no_venue.output


def test_an_extreme_last_bar_in_the_lake_is_a_reason(tmp_path):
    import numpy as np
    import polars as pl

    from tapewatch.io.lake import Lake
    from tapewatch.records import BAR_SCHEMA, conform
    from tapewatch.risk.bars import last_bar_signals

    hours = 200
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, hours)))
    volume = rng.lognormal(3, 0.2, hours)
    volume[-1] *= 40  # the last hour trades forty times its usual volume
    ts = [AT - timedelta(hours=hours - i) for i in range(hours)]
    bars = conform(
        pl.DataFrame(
            {
                "ts": ts,
                "venue": "binance",
                "symbol": "VOL/BTC",
                "interval": "1h",
                "open": np.r_[close[0], close[:-1]],
                "high": close * 1.001,
                "low": close * 0.999,
                "close": close,
                "volume": volume,
            }
        ),
        BAR_SCHEMA,
    )
    lake = Lake(tmp_path / "lake")
    lake.write("bars", bars)
    signals, interval = last_bar_signals(bars)
    assert interval == "1h" and signals["volume"] > 5 and abs(signals["return"]) < 5
    with open_store(tmp_path / "risk.db") as store:
        scored = symbol_risk(store.engine, "binance", "VOL/BTC", AT, RiskSettings(), lake, last_bar_signals)
    assert [reason.kind for reason in scored.reasons] == ["bar:volume"]
    assert (
        scored.reasons[0].text.startswith("volume ")
        and "above normal on the last 1h bar" in scored.reasons[0].text
    )
