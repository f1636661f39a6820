"""The freshness check on `calls`: failing while the newest complete day is missing, passing once
it is in, whatever older days hold. Real definitions, a real DuckDB file, an ephemeral instance.

The check reads the wall clock (it asks for the newest complete day as of now), so the days
synced here are the two before today: whichever of them the check expects at this hour, both
are in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from tests.e2e.conftest import Pipeline


def _evaluate_freshness(pipeline: Pipeline) -> dg.AssetCheckEvaluation:
    checks = list(pipeline.defs.asset_checks or [])
    defs = dg.Definitions(
        assets=pipeline.defs.assets,
        asset_checks=checks,
        jobs=[dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*checks))],
        resources=pipeline.defs.resources,
    )
    result = defs.resolve_job_def("freshness").execute_in_process(instance=pipeline.instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "freshness_check"
    return evaluation


def test_calls_is_stale_until_the_newest_complete_day_is_synced(pipeline: Pipeline) -> None:
    today = datetime.now(UTC).date()
    old_day = today - timedelta(days=10)
    assert pipeline.run_day(old_day).success  # a backfill of an old day does not make it fresh
    stale = _evaluate_freshness(pipeline)
    assert not stale.passed
    assert stale.severity == dg.AssetCheckSeverity.ERROR
    for back in (2, 1):
        assert pipeline.run_day(today - timedelta(days=back)).success
    assert _evaluate_freshness(pipeline).passed
