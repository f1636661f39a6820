"""The fault campaign over the Alerts stream: its faults only (`Faults.stream = "Alerts"`); the
kill in both lanes, the API's faults in the file's (tests/conftest.py each_lane); every test
ends in the campaign's oracle, which holds the window's alerts to the simulator's own
(tests/faults/conftest.py assert_alerts_exact).

- a 429 storm on Alerts is waited out;
- alerts landing while paging shift the total, and the same alert served on two pages (a repeated
  page) is one row: the pager repairs both, as for calls;
- under a service-provider scope, the service provider's own alerts (no account: "undefined")
  are loaded with a NULL account_sid;
- a SIGKILL inside the alerts' load transaction changes no table, and the next run completes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from tests import oracle
from tests.conftest import NOW
from tests.faults.conftest import (
    MakePipeline,
    assert_alerts_exact,
    assert_window_exact,
    materialization,
)
from tests.faults.processes import Proc, cli_env, gate, materialize

DAY = NOW.date() - timedelta(days=2)
BURST = 1_100  # alerts injected into DAY: three pages of 500


def _burst(sim: Simulator) -> None:
    """BURST account-call-limit alerts over DAY, some sharing a millisecond."""
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    sim.add_alerts(
        [
            {
                "time": (start + timedelta(seconds=60 * (i // 3))).strftime("%Y-%m-%dT%H:%M:%S")
                + f".{i % 3:03d}{i:06d}Z",
                "account_sid": simmod.ACCOUNT_SID,
                "alert_type": "account-call-limit",
                "detail": None,
                "message": "you have exceeded your account call limit of 10; please consider "
                "upgrading your plan",
                "service_provider_sid": simmod.SERVICE_PROVIDER_SID,
                "vendor": None,
            }
            for i in range(BURST)
        ]
    )


def _alerts_requests(sim: Simulator) -> list[dict[str, object]]:
    return [e for e in sim.request_log if str(e["path"]).endswith("/Alerts")]


@pytest.mark.one_lane  # the API's side: the warehouse is only where they land
def test_a_429_storm_on_alerts_is_waited_out(
    simulator: Simulator, make_pipeline: MakePipeline
) -> None:
    pipeline = make_pipeline(simulator)
    simulator.faults.stream = "Alerts"
    simulator.faults.storm_429 = 3
    simulator.faults.retry_after_s = 0.2
    result = pipeline.run_day(DAY)
    assert result.success
    assert simulator.faults.storm_429 == 0, "the storm was served"
    assert [e["status"] for e in _alerts_requests(simulator)][:3] == [429, 429, 429]
    assert materialization(result, "alerts")["retries"] == {"429": 3}
    assert assert_window_exact(pipeline, DAY) > 0
    assert assert_alerts_exact(pipeline, DAY) > 0


@pytest.mark.one_lane  # the API's side: the warehouse is only where they land
@pytest.mark.parametrize("knob", ["landing_per_request", "repeat_previous_page"])
def test_alerts_landing_or_repeated_while_paging_are_repaired(
    simulator: Simulator, make_pipeline: MakePipeline, knob: str
) -> None:
    _burst(simulator)
    pipeline = make_pipeline(simulator)
    simulator.faults.stream = "Alerts"
    setattr(simulator.faults, knob, 5 if knob == "landing_per_request" else 1)
    result = pipeline.run_day(DAY)
    assert result.success
    meta = materialization(result, "alerts")
    assert meta["repairs"] > 0
    if knob == "landing_per_request":
        totals = {e["total"] for e in _alerts_requests(simulator) if e["params"]["page"] != "1"}
        assert len(totals) > 1, "the total changed between pages"
        simulator.faults.landing_per_request = 0
        # what landed during the last requests is taken by the next sync
        assert pipeline.run_day(DAY).success
    else:
        assert simulator.faults.repeat_previous_page == 0, "the fault was served"
        assert meta["duplicates_dropped"] > 0
    assert assert_alerts_exact(pipeline, DAY) > BURST


@pytest.mark.one_lane  # the API's side: the warehouse is only where they land
def test_service_provider_alerts_are_loaded_with_no_account(
    simulator: Simulator, make_pipeline: MakePipeline
) -> None:
    pipeline = make_pipeline(
        simulator,
        JAMBONZ_API_KEY=simmod.SERVICE_PROVIDER_KEY,
        JAMBONZ_ACCOUNT_SID="",
        JAMBONZ_SERVICE_PROVIDER_SID=simmod.SERVICE_PROVIDER_SID,
    )
    assert pipeline.run_day(DAY).success
    w = day_window(DAY, "UTC")
    sent = simulator.alerts(simmod.SERVICE_PROVIDER_SID, w.start, w.end, route="service_provider")
    sp_level = sum(a["account_sid"] == "undefined" for a in sent)
    accounts = {a["account_sid"] for a in sent}
    assert sp_level > 0
    assert {simmod.ACCOUNT_SID, simmod.OTHER_ACCOUNT_SID} <= accounts
    want = oracle.expected_alerts(sent)
    with pipeline.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT alert_key, account_sid FROM alerts WHERE alerted_at >= $s AND alerted_at < $e",
            {"s": w.start, "e": w.end},
        ).fetchall()
    assert dict(rows) == {k: r["account_sid"] for k, r in want.rows.items()}
    assert sum(a is None for _, a in rows) == sp_level


@pytest.mark.process
def test_sigkill_inside_the_alerts_load_changes_no_table_and_the_next_run_completes(
    simulator: Simulator, make_pipeline: MakePipeline, tmp_path: Path, procs: list[Proc]
) -> None:
    """SIGKILL of a run's process inside the alerts' load transaction (its calls committed,
    unchanged): only a killed process shows that the kernel's end of it leaves no table changed."""
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAY).success
    with pipeline.connect() as con:
        # the next load has 5 changed alerts to delete and insert again, and 5 to insert
        con.execute(
            "UPDATE alerts SET message = 'edited' WHERE alert_key IN "
            "(SELECT alert_key FROM alerts ORDER BY alert_key LIMIT 5)"
        )
        con.execute(
            "DELETE FROM alerts WHERE alert_key IN "
            "(SELECT alert_key FROM alerts ORDER BY alert_key DESC LIMIT 5)"
        )
    before = pipeline.snapshot()
    fifo = gate(tmp_path)
    pause = {"FAULTS_PAUSE_AT": "alerts_raw_insert", "FAULTS_PAUSE_FIFO": str(fifo)}
    run = materialize(procs, cli_env(pipeline, tmp_path, **pause), DAY)
    run.wait_for("PAUSED-IN-LOAD")
    run.kill()
    assert pipeline.snapshot() == before
    result = pipeline.run_day(DAY)
    assert result.success
    meta = materialization(result, "alerts")
    assert (meta["inserted"], meta["updated"]) == (5, 5)
    assert assert_window_exact(pipeline, DAY) > 0
