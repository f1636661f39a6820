"""Paging faults through the real `daily_sync` job: the window ends exact, every call once.

Records landing while the job pages (so the total changes between pages), a page repeating the
previous one, a page shorter than it should be before the end, and a window of more than 100,000
calls (over 200 pages).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from pipelines.jambonz import simulator as simmod
from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from tests.conftest import NOW
from tests.e2e.conftest import Pipeline
from tests.faults.conftest import SYNCS, MakePipeline, assert_window_exact, materialization
from tests.helpers import record_identity

# about the API: the warehouse is only where the calls land (tests/conftest.py each_lane)
pytestmark = pytest.mark.one_lane

DAY = NOW.date() - timedelta(days=2)


@pytest.fixture
def busy() -> Iterator[Simulator]:
    """About 1,600 calls a day: four pages of 500."""
    with Simulator(seed=11, calls_per_day=1600, now=NOW) as sim:
        yield sim


def _held(pipeline: Pipeline) -> list[str]:
    with pipeline.connect(read_only=True) as con:
        return [r[0] for r in con.execute("SELECT call_key FROM calls").fetchall()]


def test_records_landing_while_paging_shift_the_total_and_nothing_is_lost_or_doubled(
    busy: Simulator, make_pipeline: MakePipeline
) -> None:
    pipeline = make_pipeline(busy)
    w = day_window(DAY, "UTC")
    present = {record_identity(r) for r in busy.calls(simmod.ACCOUNT_SID, w.start, w.end)}
    assert len(present) > 1500
    busy.faults.landing_per_request = 7
    result = pipeline.run_day(DAY)
    assert result.success
    meta = materialization(result)
    totals = {e["total"] for e in busy.request_log if "total" in e and e["params"]["page"] != "1"}
    assert len(totals) > 1, "the total changed between pages"
    assert meta["repairs"] > 0
    held = _held(pipeline)
    assert len(held) == len(set(held)), "a call was loaded twice"
    assert present <= set(held), "a call that was there before the run is missing"
    busy.faults.landing_per_request = 0
    # What landed during the last requests is taken by the next sync; then the window is exact.
    assert pipeline.run_day(DAY).success
    assert assert_window_exact(pipeline, DAY) > len(present)


@pytest.mark.parametrize("knob", ["repeat_previous_page", "short_pages"])
def test_a_repeated_or_short_page_is_repaired(
    busy: Simulator, make_pipeline: MakePipeline, knob: str
) -> None:
    pipeline = make_pipeline(busy)
    setattr(busy.faults, knob, 1)
    result = pipeline.run_day(DAY)
    assert result.success
    assert getattr(busy.faults, knob) == 0, "the fault was served"
    assert materialization(result)["repairs"] > 0
    assert assert_window_exact(pipeline, DAY) > 1500


@pytest.mark.slow
def test_a_window_of_more_than_100_000_calls_loads_every_call_once(
    make_pipeline: MakePipeline,
) -> None:
    with Simulator(seed=3, calls_per_day=104_000, now=NOW) as sim:
        pipeline = make_pipeline(sim)
        result = pipeline.run_day(DAY, assets=SYNCS)  # the syncs at scale, not the models
        assert result.success
        meta = materialization(result)
        assert meta["pages"] > 200
        assert assert_window_exact(pipeline, DAY) > 100_000
