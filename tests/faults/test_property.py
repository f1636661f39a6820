"""A property: whatever the calls and the faults, syncing until success gives exactly the window.

For random sets of calls (both dialects, a random seed and volume, calls exactly at the window's
edges, calls still up at the first sync that arrive late) and random sequences of the
simulator's faults, each attempt either succeeds or fails leaving every table as it was; once the
faults have drained and the late calls have ended, syncing until success leaves `calls` equal to
the calls attempted in the window, each once, with the right values; syncing again changes no
row of any table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.jambonz.simulator import Simulator
from pipelines.partitions import day_window
from tests.conftest import NOW, cdr
from tests.faults.conftest import SYNCS, MakePipeline, assert_window_exact

DAY = NOW.date() - timedelta(days=2)
WINDOW = day_window(DAY, "UTC")
KNOBS = (
    "server_errors",
    "storm_429",
    "slow_responses",
    "truncated_bodies",
    "non_json_bodies",
    "reset_connections",
    "repeat_previous_page",
    "short_pages",
    "landing_per_request",
)
MAX_ATTEMPTS = 10
_examples = itertools.count()


def _edge_record(sid: str, offset_ns: int) -> dict[str, Any]:
    ns = int(WINDOW.start.timestamp()) * 1_000_000_000 + offset_ns
    seconds, frac = divmod(ns, 1_000_000_000)
    at = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
    return cdr(sid, at, failed=True)


DAY_NS = 86_400 * 1_000_000_000
edge_offsets = st.lists(
    st.one_of(
        st.sampled_from([-1, 0, 1, DAY_NS - 1, DAY_NS, DAY_NS - 1000]),
        st.integers(-(10**9), DAY_NS + 10**9),
    ),
    max_size=6,
)
fault_sequences = st.lists(st.tuples(st.sampled_from(KNOBS), st.integers(1, 7)), max_size=4)


def _given(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The campaign's hypothesis: `examples` runs of random calls, edges and fault sequences."""

    def wrap(test: Callable[..., None]) -> Callable[..., None]:
        return settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )(
            given(
                dialect=st.sampled_from(["server", "docs"]),
                seed=st.integers(0, 10_000),
                calls_per_day=st.integers(0, 1200),
                late=st.booleans(),
                edges=edge_offsets,
                faults=fault_sequences,
            )(test)
        )

    return wrap


# The file lane explores the faults and the data; the lake lane, fewer examples of the same,
# proves what is the warehouse's own there: a failed attempt and a second sync change no table.
@pytest.mark.slow
@pytest.mark.parametrize("lane", ["file"], indirect=True)
@_given(examples=6)
def test_syncing_until_success_gives_exactly_the_window_and_again_changes_nothing(
    make_pipeline: MakePipeline,
    tmp_path: Path,
    dialect: str,
    seed: int,
    calls_per_day: int,
    late: bool,
    edges: list[int],
    faults: list[tuple[str, int]],
) -> None:
    example = {"dialect": dialect, "seed": seed, "calls_per_day": calls_per_day, "late": late}
    _sync_until_success(make_pipeline, tmp_path, edges=edges, faults=faults, **example)


@pytest.mark.slow
@pytest.mark.parametrize("lane", ["lake"], indirect=True)
@_given(examples=3)
def test_syncing_until_success_in_the_lake_gives_exactly_the_window_and_again_changes_nothing(
    make_pipeline: MakePipeline,
    tmp_path: Path,
    dialect: str,
    seed: int,
    calls_per_day: int,
    late: bool,
    edges: list[int],
    faults: list[tuple[str, int]],
) -> None:
    example = {"dialect": dialect, "seed": seed, "calls_per_day": calls_per_day, "late": late}
    _sync_until_success(make_pipeline, tmp_path, edges=edges, faults=faults, **example)


def _sync_until_success(
    make_pipeline: MakePipeline,
    tmp_path: Path,
    dialect: str,
    seed: int,
    calls_per_day: int,
    late: bool,
    edges: list[int],
    faults: list[tuple[str, int]],
) -> None:
    settled = NOW
    first_sync = WINDOW.end - timedelta(minutes=20) if late else settled
    with Simulator(seed=seed, calls_per_day=calls_per_day, dialect=dialect, now=first_sync) as sim:  # type: ignore[arg-type]
        sim.add_records([_edge_record(f"edge-{n}", off) for n, off in enumerate(edges)])
        sim.faults.retry_after_s = 0.05
        sim.faults.slow_seconds = 0.6
        folder = tmp_path / f"example-{next(_examples)}"  # a warehouse (file or lake) of its own
        folder.mkdir()
        pipeline = make_pipeline(
            sim, warehouse=folder / "warehouse.duckdb", jambonz={"timeout_s": 0.3}
        )

        def attempt() -> bool:
            before = pipeline.snapshot()
            result = pipeline.run_day(DAY, assets=SYNCS)  # what lands, not the models
            if not result.success:
                assert pipeline.snapshot() == before, "a failed run changed a table"
            return result.success

        for knob, n in faults:
            setattr(sim.faults, knob, n)
            attempt()
            sim.faults.landing_per_request = 0  # landing is a phase, not a countdown
        sim.set_clock(settled)  # every call of the window has ended and been written
        for _ in range(MAX_ATTEMPTS):
            if attempt():
                break
        else:
            pytest.fail(f"no success in {MAX_ATTEMPTS} attempts after the faults drained")
        assert_window_exact(pipeline, DAY)
        before = pipeline.snapshot()
        assert pipeline.run_day(DAY, assets=SYNCS).success
        assert pipeline.snapshot() == before, "a second sync changed a table"
