"""The campaign's oracles can fail, in either lane: a snapshot is None until a row is written and
sees any changed row; `assert_window_exact` refuses a call altered, missing or held twice, and a
normalizer that reads a column wrong (its expected rows do not come from the normalizer).

Every other fault test ends in one of these two oracles, so a lane where they were blind (a lake
read as empty, a snapshot of no table) would pass the whole campaign without testing it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines import normalize
from pipelines.jambonz.simulator import Simulator
from pipelines.jambonz.streams import Stream
from tests.conftest import NOW
from tests.faults.conftest import MakePipeline, assert_window_exact

DAY = NOW.date() - timedelta(days=2)
# (the change to the first call, what assert_window_exact says about it)
CHANGES = [
    (
        "UPDATE calls SET duration = duration + 1 "
        "WHERE call_key = (SELECT min(call_key) FROM calls)",
        "other values",
    ),
    ("DELETE FROM calls WHERE call_key = (SELECT min(call_key) FROM calls)", "not in calls"),
    (
        "INSERT INTO calls SELECT * FROM calls WHERE call_key = (SELECT min(call_key) FROM calls)",
        "more than once",
    ),
]


def test_the_oracles_see_every_kind_of_wrong_row(
    simulator: Simulator, make_pipeline: MakePipeline
) -> None:
    pipeline = make_pipeline(simulator)
    assert pipeline.snapshot() is None
    for change, said in CHANGES:
        assert pipeline.run_day(DAY).success  # loads the day, or repairs the change before
        before = pipeline.snapshot()
        assert before is not None
        assert before["calls"]
        assert assert_window_exact(pipeline, DAY) > 0
        with pipeline.connect() as con:
            con.execute(change)
        assert pipeline.snapshot() != before, change
        with pytest.raises(AssertionError, match=said):
            assert_window_exact(pipeline, DAY)


@pytest.mark.one_lane  # about the oracle, not the warehouse
def test_a_normalizer_bug_does_not_pass_the_oracle(
    simulator: Simulator, make_pipeline: MakePipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The normalizer reads `from` into to_number and `to` into from_number: the run succeeds
    and its checks pass (they test shape, not meaning), but the window is not exact."""
    swapped = {"from_number": ("to",), "to_number": ("from",)}
    real = normalize.rules

    def rules(stream: Stream) -> tuple[normalize.Rule, ...]:
        return tuple(
            normalize.Rule(r.column, r.kind, swapped.get(r.column, r.keys)) for r in real(stream)
        )

    monkeypatch.setattr(normalize, "rules", rules)
    pipeline = make_pipeline(simulator)
    assert pipeline.run_day(DAY).success
    with pytest.raises(AssertionError, match="other values"):
        assert_window_exact(pipeline, DAY)
