"""The streaming path (stream_window -> chunked normalize -> WindowLoad) against the one-shot path
(fetch_window -> normalize -> load_window): the same warehouse content and the same counts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines import sync as sync_module
from pipelines.jambonz.pager import JambonzClient
from pipelines.jambonz.simulator import ACCOUNT_KEY, ACCOUNT_SID, Simulator
from pipelines.jambonz.streams import REQUIRED_KEYS, Scope, Window
from tests.conftest import NOW
from tests.helpers import fetch_window, load_window, normalize_dicts, record_identity, sync_window
from warehouse.database import Warehouse
from warehouse.load import LoadResult, WindowLoad

DAY = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
SCOPE = Scope.account(ACCOUNT_SID)
SYNCED = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def _bad_records() -> list[dict[str, Any]]:
    at = DAY.start + timedelta(hours=3)
    base = {
        "attempted_at": at.strftime("%Y-%m-%dT%H:%M:%S.123Z"),
        "account_sid": ACCOUNT_SID,
        "direction": "inbound",
        "answered": False,
        "duration": 0,
        "sip_status": 486,
        "terminated_at": (at + timedelta(seconds=9)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    return [
        base | {"call_sid": None, "sip_callid": None, "from": "no identity"},  # quarantined
        base | {"call_sid": "bad-status-0001", "sip_status": "busy"},  # wrong type
        base | {"call_sid": "fine-0001", "sip_callid": "x@h", "cost": 0.25, "to": "Zoë"},
        base | {"call_sid": None, "sip_callid": "only-sip@10.0.0.1"},  # surrogate key
    ]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(seed=11, calls_per_day=2_600, rate_limit=None, now=NOW) as s:
        s.add_records(_bad_records())
        yield s


def client(sim: Simulator) -> JambonzClient:
    return JambonzClient(sim.base_url, ACCOUNT_KEY, fallback_rate=None, page_size=500)


def content(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    calls = wh.con.execute("SELECT * FROM calls ORDER BY call_key").fetchall()
    raw = [
        (k, at, acct, json.loads(p), s)
        for k, at, acct, p, s in wh.con.execute(
            "SELECT call_key, attempted_at, account_sid, payload::VARCHAR, synced_at "
            "FROM calls_raw ORDER BY call_key"
        ).fetchall()
    ]
    quarantine = wh.con.execute(
        "SELECT * EXCLUDE (payload), payload::JSON::VARCHAR FROM calls_quarantine ORDER BY ALL"
    ).fetchall()
    return {"calls": calls, "raw": raw, "quarantine": quarantine}


def one_shot(sim: Simulator, wh: Warehouse) -> tuple[LoadResult, int]:
    with client(sim) as c:
        result = fetch_window(c, SCOPE, DAY)
    n = normalize_dicts(
        result.records,
        synced_at=SYNCED,
        scope_sid=ACCOUNT_SID,
        window_start=DAY.start,
        window_end=DAY.end,
    )
    load = load_window(wh, n.calls, n.raw, n.quarantine, window_start=DAY.start, window_end=DAY.end)
    return load, len(result.records)


def test_streamed_sync_equals_one_shot_load(sim: Simulator, tmp_path: Path) -> None:
    with Warehouse(tmp_path / "a.duckdb") as a, Warehouse(tmp_path / "b.duckdb") as b:
        load_a, in_window = one_shot(sim, a)
        with client(sim) as c:
            synced = sync_window(c, b, SCOPE, DAY, synced_at=SYNCED, chunk_records=700)
        assert synced.load == load_a
        # both paths ran: most pages columnar, the pages with the odd records record by record
        assert 0 < synced.fetch.columnar_pages < synced.fetch.pages
        assert load_a.quarantined == 2
        assert load_a.inserted == in_window - 2
        assert synced.in_window == in_window
        assert synced.quarantined == 2
        # the keys the load wrote stay on its connection for the completeness check
        stored = a.con.execute("SELECT call_key FROM calls ORDER BY call_key").fetchall()
        assert synced.loaded == len(stored)
        assert b.con.execute("SELECT key FROM _window_keys ORDER BY 1").fetchall() == stored
        assert content(b) == content(a)
        # and the raw payload is the record's text exactly as the server sent it
        (payload,) = b.con.execute(
            "SELECT payload::VARCHAR FROM calls_raw WHERE call_key = 'fine-0001'"
        ).fetchone() or ("",)
        assert '"to":"Zoë"' in payload

        # a second sync of the same window: everything unchanged, on both paths
        again_a, _ = one_shot(sim, a)
        with client(sim) as c:
            again_b = sync_window(c, b, SCOPE, DAY, synced_at=SYNCED, chunk_records=1_000)
        assert again_b.load == again_a
        assert (again_a.inserted, again_a.updated, again_a.quarantined) == (0, 0, 0)
        assert content(b) == content(a)


def test_stream_batches_are_the_window_exactly_once(sim: Simulator) -> None:
    with client(sim) as c:
        whole = fetch_window(c, SCOPE, DAY)
        stream = c.stream_window(SCOPE, DAY)
        batches = list(stream)
    streamed = [b.record(i, REQUIRED_KEYS) for b in batches for i in range(len(b))]
    assert len(batches) >= 6
    # the page with the odd records was read by json.loads, the rest by Arrow's reader
    assert stream.result is not None
    assert 0 < stream.result.columnar_pages < stream.result.pages
    ids = [k for b in batches for k in b.keys]
    assert ids == [record_identity(r) for r in streamed]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(record_identity(r) for r in whole.records)
    assert stream.result.in_window == len(ids) == whole.in_window
    assert (stream.result.total, stream.result.pages) == (whole.total, whole.pages)


def test_window_load_in_batches_counts_like_load_window(sim: Simulator, tmp_path: Path) -> None:
    with client(sim) as c:
        records = fetch_window(c, SCOPE, DAY).records
    args = {"synced_at": SYNCED, "scope_sid": ACCOUNT_SID}
    bounds = {"window_start": DAY.start, "window_end": DAY.end}
    whole = normalize_dicts(records, **args, **bounds)
    thirds = [normalize_dicts(records[i::3], **args, **bounds) for i in range(3)]
    with Warehouse(tmp_path / "a.duckdb") as a, Warehouse(tmp_path / "b.duckdb") as b:
        # something to update: a few calls already held, one of them different
        seed = normalize_dicts(records[:50], **args, **bounds)
        for wh in (a, b):
            load_window(wh, seed.calls, seed.raw, seed.quarantine, **bounds)
            wh.con.execute(
                "UPDATE calls SET duration = duration + 1 WHERE call_key = $k",
                {"k": seed.calls.column("call_key")[0].as_py()},
            )
        expected = load_window(a, whole.calls, whole.raw, whole.quarantine, **bounds)
        with b.window_load(**bounds) as load:
            for n in thirds:
                load.add(n.calls, n.raw, n.quarantine)
        assert load.result() == expected
        assert expected.updated == 1
        assert expected.unchanged == 49
        assert content(b) == content(a)


def test_window_load_refuses_a_call_in_two_batches(sim: Simulator, tmp_path: Path) -> None:
    with client(sim) as c:
        records = fetch_window(c, SCOPE, DAY).records
    bounds = {"window_start": DAY.start, "window_end": DAY.end}
    n = normalize_dicts(records[:20], synced_at=SYNCED, scope_sid=ACCOUNT_SID, **bounds)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        load = wh.window_load(**bounds)
        with load:
            load.add(n.calls, n.raw, n.quarantine)
            load.add(n.calls.slice(0, 5), n.raw.slice(0, 5), n.quarantine)
            with pytest.raises(ValueError, match="5 call_key values were in two batches"):
                load.__exit__(None, None, None)  # leaving the block: checked before COMMIT
        assert wh.con.execute("SELECT count(*) FROM calls").fetchone() == (0,)


@pytest.mark.parametrize(("chunk_records", "held_while_fetching"), [(100_000, False), (700, True)])
def test_the_file_is_opened_once_the_first_chunk_is_ready(
    sim: Simulator, tmp_path: Path, chunk_records: int, held_while_fetching: bool
) -> None:
    """A day that fits one chunk is fetched whole before the file is taken: DuckDB lets one
    process hold it, and a fetch may wait minutes on the rate limit."""
    from pipelines.sync import load_stream

    requests_when_opened: list[int] = []
    with JambonzClient(sim.base_url, ACCOUNT_KEY, fallback_rate=None) as c:
        stream = c.stream_window(SCOPE, DAY)
        with Warehouse(tmp_path / "w.duckdb") as wh:

            def open_warehouse() -> Warehouse:
                requests_when_opened.append(len(sim.request_log))
                return wh

            synced = load_stream(
                stream, open_warehouse, SCOPE, DAY, synced_at=SYNCED, chunk_records=chunk_records
            )
    assert len(requests_when_opened) == 1
    assert synced.load.inserted > 0
    fetched_after_open = synced.fetch.requests - requests_when_opened[0]
    assert (fetched_after_open > 0) is held_while_fetching


@pytest.mark.parametrize("stage", ["normalize", "write"])
def test_a_chunk_failing_rolls_back_the_whole_window_and_surfaces(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """An error in the normalizer or the writer thread, chunks into the window: it is raised
    from sync_window and no chunk of the window stays in the file."""
    calls = 0

    def failing(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError(f"{stage} failed on chunk 3")
            return real(*args, **kwargs)

        return wrapper

    if stage == "normalize":
        monkeypatch.setattr(sync_module, "normalize", failing(sync_module.normalize))
    else:
        monkeypatch.setattr(WindowLoad, "add", failing(WindowLoad.add))
    with Warehouse(tmp_path / "w.duckdb") as wh, client(sim) as c:
        with pytest.raises(RuntimeError, match=f"{stage} failed on chunk 3"):
            sync_window(c, wh, SCOPE, DAY, synced_at=SYNCED, chunk_records=500)
        assert calls >= 3
        assert wh.count_calls(DAY.start, DAY.end) == 0
        assert wh.con.execute("SELECT count(*) FROM calls_raw").fetchone() == (0,)
