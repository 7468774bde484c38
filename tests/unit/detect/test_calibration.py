from datetime import timedelta

from conftest import START

from tapewatch.detect.calibration import CalibrationTable, calibrate, fit_table, load_tables
from tapewatch.detect.registry import DETECTORS
from tapewatch.records import Alert


def _alert(detector: str, score: float, typology: str = "pump_and_dump") -> Alert:
    return Alert.build(
        detector=detector,
        typology=typology,
        venue="sim",
        symbol="AAA/BTC",
        start=START,
        end=START + timedelta(minutes=1),
        detected_at=START + timedelta(minutes=1),
        score=score,
        evidence={"x": 1},
    )


def _table(detector: str) -> CalibrationTable:
    return fit_table(
        detector, [0.1, 0.2, 0.5, 0.6, 0.8, 0.9], [False, False, False, True, True, True], "test"
    )


def test_fitted_table_is_the_precision_at_each_score_and_never_falls():
    table = _table("pump_onset")
    assert table.probability_at(0.1) == round(1 / 8, 4)  # never certain: the rule of succession's bounds
    assert table.probability_at(0.95) == round(7 / 8, 4)
    probabilities = [table.probability_at(x / 100) for x in range(101)]
    assert probabilities == sorted(probabilities)
    assert (table.alerts, table.true_alerts) == (6, 3)


def test_score_becomes_the_measured_probability_and_severity_follows():
    tables = {"pump_onset": _table("pump_onset")}
    low = calibrate(_alert("pump_onset", 0.2), tables)
    high = calibrate(_alert("pump_onset", 0.9), tables)
    assert (low.score, low.severity) == (0.125, "low")
    assert (high.score, high.severity) == (0.875, "high")
    assert high.evidence["raw_score"] == 0.9 and high.evidence["calibrated"] is True
    assert high.evidence["x"] == 1


def test_calibrating_twice_changes_nothing():
    tables = {"pump_onset": _table("pump_onset")}
    once = calibrate(_alert("pump_onset", 0.55), tables)
    assert calibrate(once, tables) == once


def test_public_data_wash_and_spoofing_are_at_most_medium_even_when_calibrated_high():
    tables = {"wash_public": _table("wash_public"), "spoofing_l2": _table("spoofing_l2")}
    for detector, typology in (("wash_public", "wash_trading"), ("spoofing_l2", "spoofing")):
        alert = calibrate(_alert(detector, 0.9, typology), tables)
        assert alert.score == 0.875
        assert alert.severity == "medium"


def test_a_detector_without_a_table_keeps_its_raw_score_and_is_at_most_medium():
    alert = calibrate(_alert("amplitude_anomaly", 0.95, "amplitude_anomaly"), {})
    assert alert.score == 0.95
    assert alert.severity == "medium"
    assert alert.evidence["calibrated"] is False
    assert calibrate(_alert("amplitude_anomaly", 0.1, "amplitude_anomaly"), {}).severity == "low"


def test_shipped_tables_name_registered_detectors_and_are_monotone():
    tables = load_tables()
    assert set(tables) == {"pump_onset", "wash_accounts", "spoofing_l3", "spoofing_l2"}
    assert set(tables) <= set(DETECTORS)
    for table in tables.values():
        assert list(table.raw) == sorted(table.raw)
        assert list(table.probability) == sorted(table.probability)
        assert 0 < table.alerts and 0 <= table.true_alerts <= table.alerts
