"""The query engine: which stored calls or alerts a query matches, in the order it sends them.

InfluxDB's side of the server, over the generated days, the records landed by the landing fault
and the records a test injects: the clock (a CDR is visible once its call ended plus a write
buffer, an alert once its time has come), retention, inclusive ns bounds, the filters, time
descending order (alerts of one instant by series key, descending), and the query string read as
the server reads it. RecentCalls and Alerts share all of it but what a record is and its filters:
a `_Query` names its stream, and `_count`, `_land` and `_page` answer for either.
`_Store` is the half of `Simulator` that holds the records; `calls()` and `alerts()` are the
ground truth tests compare against. No HTTP, no keys, no fault knobs here.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from pipelines.jambonz.simulator.alerts import (
    SP_OWNER,
    Alert,
    generate_alerts,
    random_alerts,
)
from pipelines.jambonz.simulator.generator import (
    ACCOUNTS,
    DAY_NS,
    NS,
    SERVICE_PROVIDER_SID,
    TRUNKS,
    Dialect,
    _Block,
    from_ns,
    generate_day,
    make_block,
    parse_time_param,
    to_docs,
    to_ns,
)

_DIGITS = re.compile(r"[0-9]+")
_NONE = np.zeros(0, dtype=np.int64)
_Source = Callable[[int], dict[str, Any]]  # row i of a block or of the injected records
RECENT_CALLS, ALERTS = "RecentCalls", "Alerts"  # the streams: a route's last segment


@dataclass
class _Query:
    accounts: tuple[int, ...]  # whose generated records to look at (indexes into ACCOUNTS)
    stream: str = RECENT_CALLS
    kind: str = "account"  # the route: "account" or "service_provider"
    sid: str = ""  # the route's sid (alerts match it against their tags)
    lo_ns: int | None = None  # inclusive
    hi_ns: int | None = None  # inclusive
    answered: bool | None = None
    direction: str | None = None
    trunk: str | None = None
    regex: re.Pattern[str] | None = None  # the `filter`
    alert_type: str | None = None  # Alerts: an exact match on the type
    nothing: bool = False  # an unparseable start/end: InfluxDB matches no row

    def owners(self) -> tuple[int, ...]:
        """Whose generated alerts to look at: the accounts, and the SP's own on its route."""
        own = self.kind == "service_provider" and self.sid == SERVICE_PROVIDER_SID
        return self.accounts + ((SP_OWNER,) if own else ())

    def tags_match(self, record: dict[str, Any]) -> bool:
        """An alert of this route and type: the route matches the tag, not the account's owner."""
        tag = "service_provider_sid" if self.kind == "service_provider" else "account_sid"
        return record.get(tag) == self.sid and (
            self.alert_type is None or record.get("alert_type") == self.alert_type
        )

    def finds(self, frm: object, to: object, call_sid: object) -> bool:
        """The `filter` regex finds from or to, or the filter is exactly the call_sid."""
        assert self.regex is not None
        found = any(isinstance(s, str) and self.regex.search(s) for s in (frm, to))
        return found or call_sid == self.regex.pattern


@dataclass
class _Hits:
    """Matching records in answer order: row `row[k]` of `sources[src[k]]`, a dict once served."""

    sources: list[_Source]
    src: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return int(self.src.shape[0])


@dataclass
class _Raw:
    """An injected record, positioned in time and owned by one account."""

    acct: int
    at_ns: int
    record: dict[str, Any]


@dataclass
class _Refusal:
    """A query string the server refuses: the status and the JSON body it answers with."""

    status: int
    body: dict[str, Any]


def _accounts(route: str, sid: str) -> tuple[int, ...]:
    """The accounts a route's sid reads: "account" its own, "service_provider" both."""
    if route == "service_provider":
        return tuple(range(len(ACCOUNTS))) if sid == SERVICE_PROVIDER_SID else ()
    return (ACCOUNTS.index(sid),) if sid in ACCOUNTS else ()


def _parse_params(
    stream: str, route: str, sid: str, query: dict[str, list[str]], clock_ns: Callable[[], int]
) -> tuple[_Query, str, str] | _Refusal:
    """A query string of a stream's route as the server reads it: (query, page, count) or a
    refusal.

    page and count come back as sent (validated digit strings: the server echoes them as text);
    a bad one is a 400, a `filter` InfluxDB cannot compile a 500, as on the server. RecentCalls
    takes count=0 (every row, capture 52); Alerts wants 1..500.
    """
    page_raw = query.get("page", [""])[0]
    if not _DIGITS.fullmatch(page_raw) or int(page_raw) < 1:
        return _Refusal(400, {"msg": 'missing or invalid "page" query arg'})
    counts = query.get("count", [])
    count_raw = counts[0] if counts else ""
    least = 1 if stream == ALERTS else 0
    # A repeated count reaches the check as an array and slips past it, as on the server.
    if not _DIGITS.fullmatch(count_raw) or (
        len(counts) == 1 and not least <= int(count_raw) <= 500
    ):
        return _Refusal(400, {"msg": 'missing or invalid "count" query arg'})

    q = _Query(_accounts(route, sid), stream, route, sid)
    if stream == ALERTS:
        q.alert_type = query.get("alert_type", [None])[0]
    else:
        q.answered = {"true": True, "false": False}.get(query.get("answered", [""])[0])
        q.direction = query.get("direction", [None])[0]
        q.trunk = query.get("trunk", [None])[0]
        filt = query.get("filter", [None])[0]
        if filt:
            try:
                q.regex = re.compile(filt)
            except re.error as exc:
                return _Refusal(500, {"msg": _influx_regex_error(filt, exc)})
    days_raw = query.get("days", [""])[0]
    if _DIGITS.fullmatch(days_raw) and int(days_raw) > 0:
        # `time > now() - Nd`: exclusive, so the inclusive lower bound is one ns later.
        q.lo_ns = clock_ns() - int(days_raw) * DAY_NS + 1
    else:
        bounds = {
            name: parse_time_param(query[name][0]) for name in ("start", "end") if name in query
        }
        q.lo_ns, q.hi_ns = bounds.get("start"), bounds.get("end")
        q.nothing = None in bounds.values()
    return q, page_raw, count_raw


class _Store:
    """The calls and alerts a `Simulator` holds and its clock; `Simulator` adds the API and HTTP.

    One `_lock` (reentrant) guards the clock and every store; the server takes it too.
    """

    def __init__(
        self,
        seed: int,
        calls_per_day: int,
        dialect: Dialect,
        now: datetime | None,
        retention: int,
        costs: bool = True,
    ) -> None:
        if dialect not in ("server", "docs"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.seed = seed
        self.calls_per_day = calls_per_day
        self.costs = costs
        self.dialect: Dialect = dialect
        self.retention_days = retention
        self._lock = threading.RLock()
        self._days: dict[tuple[int, int], _Block] = {}
        self._landed: list[_Block] = []
        self._raw: list[_Raw] = []
        self._landings = 0
        self._alert_days: dict[tuple[int, int], list[Alert]] = {}
        self._landed_alerts: list[Alert] = []
        self._raw_alerts: list[Alert] = []
        self._alert_landings = 0
        # The CDR clock: base_ns, advanced by the monotonic clock unless frozen (anchor None).
        self._clock_base_ns = time.time_ns() if now is None else to_ns(now)
        self._clock_anchor = time.monotonic_ns() if now is None else None

    @property
    def now(self) -> datetime:
        """The simulator clock (what `days` counts back from and visibility is judged against)."""
        return from_ns(self.clock_ns())

    def clock_ns(self) -> int:
        with self._lock:
            if self._clock_anchor is None:
                return self._clock_base_ns
            return self._clock_base_ns + time.monotonic_ns() - self._clock_anchor

    def set_clock(self, now: datetime, *, frozen: bool = True) -> None:
        """Set the clock; frozen=True stops it until the next set/advance."""
        with self._lock:
            self._clock_base_ns = to_ns(now)
            self._clock_anchor = None if frozen else time.monotonic_ns()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._clock_base_ns += round(seconds * NS)

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Inject raw records as stored (server-dialect shape, attempted_at as RFC 3339 string).

        For malformed-record and edge-time tests; they are served verbatim in the server dialect
        (converted where possible in the docs dialect). Optional private keys, stripped when
        served: `_at` (datetime) positions a record whose attempted_at is missing or junk;
        `_account_sid` owns it to an account when account_sid is missing or junk. Injected
        records are visible at once and count for ground truth.
        """
        with self._lock:
            for rec in records:
                at, text = rec.get("_at"), rec.get("attempted_at")
                at_ns = to_ns(at) if isinstance(at, datetime) else None
                if at_ns is None and isinstance(text, str):
                    at_ns = parse_time_param(text)
                if at_ns is None:
                    raise ValueError("an injected record needs a parseable attempted_at or `_at`")
                owner = rec.get("_account_sid", rec.get("account_sid"))
                acct = ACCOUNTS.index(owner) if owner in ACCOUNTS else 0
                self._raw.append(_Raw(acct, at_ns, dict(rec)))

    def calls(
        self, sid: str, start: datetime, end: datetime, *, route: str = "account"
    ) -> list[dict[str, Any]]:
        """Every record visible now with start <= attempted_at < end, as the API would send it.

        route: "account" (sid = account sid) or "service_provider".
        """
        if route not in ("account", "service_provider"):
            raise ValueError(f"unknown route {route!r}")
        q = _Query(_accounts(route, sid), lo_ns=to_ns(start), hi_ns=to_ns(end) - 1)
        with self._lock:
            return self._serve(self._select(q), 0, None)

    def add_alerts(self, records: list[dict[str, Any]]) -> None:
        """Inject alert records as stored (the server's shape, `time` as RFC 3339 text).

        Served verbatim, in the route whose tag they carry (account_sid, service_provider_sid):
        malformed ones too. A record whose `time` is missing or junk needs the private key `_at`
        (a datetime, or ns since the epoch) to be placed; private `_` keys are stripped when
        served. As InfluxDB does, an alert with the time and tags of one already stored
        replaces it (last write wins). Visible once the clock reaches their time, as any alert.
        """
        with self._lock:
            for rec in records:
                at = rec.get("_at")
                at_ns = _ns(at) if isinstance(at, (datetime, int)) else None
                if at_ns is None and isinstance(rec.get("time"), str):
                    at_ns = parse_time_param(rec["time"])
                if at_ns is None:
                    raise ValueError("an injected alert needs a parseable `time` or `_at`")
                self._raw_alerts.append(Alert.of(at_ns, dict(rec)))

    def alerts(
        self,
        sid: str,
        start: datetime | int | None = None,
        end: datetime | int | None = None,
        *,
        route: str = "account",
        alert_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every alert visible now with start <= time < end, as the API would send them: newest
        first, ties by tag set. start/end: datetimes or ns since the epoch; None is unbounded
        (back to retention; up to the clock).

        route: "account" (sid = account sid: alerts whose account_sid tag is it) or
        "service_provider" (alerts whose service_provider_sid tag is it).
        """
        if route not in ("account", "service_provider"):
            raise ValueError(f"unknown route {route!r}")
        q = _Query(_accounts(route, sid), ALERTS, route, sid, alert_type=alert_type)
        q.lo_ns = None if start is None else _ns(start)
        q.hi_ns = None if end is None else _ns(end) - 1
        with self._lock:
            return [a.served() for a in self._alert_hits(q)]

    def _count(self, q: _Query) -> int:
        """What the server's count query answers: the matching records, visible now."""
        if q.stream == ALERTS:
            return len(self._alert_hits(q))
        return len(self._select(q, ordered=False))

    def _page(self, q: _Query, offset: int, count: int, *, short: bool) -> list[dict[str, Any]]:
        """The page query: `count` records from `offset` (count 0: all), one fewer if `short`."""
        hits: _Hits | list[Alert] = self._alert_hits(q) if q.stream == ALERTS else self._select(q)
        stop = len(hits) if count == 0 else min(len(hits), offset + count)
        stop = max(offset, stop - 1) if short else stop
        if isinstance(hits, list):
            return [a.served() for a in hits[offset:stop]]
        return self._serve(hits, offset, stop)

    def _span(self, q: _Query) -> tuple[int, int, int] | None:
        """(lo, hi, clock): the times worth looking at, inside retention and the clock."""
        if q.nothing or (q.stream == RECENT_CALLS and not q.accounts):
            return None
        clock = self.clock_ns()
        lo = clock - self.retention_days * DAY_NS
        hi = clock
        if q.lo_ns is not None:
            lo = max(lo, q.lo_ns)
        if q.hi_ns is not None:
            hi = min(hi, q.hi_ns)
        return (lo, hi, clock) if lo <= hi else None

    def _select(self, q: _Query, *, ordered: bool = True) -> _Hits:
        """Matching visible records, attempt time descending (any order if not `ordered`)."""
        span = self._span(q)
        if span is None:
            return _Hits([], _NONE, _NONE)
        lo, hi, clock = span
        sources: list[_Source] = []
        times: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        days = range(lo // DAY_NS, hi // DAY_NS + 1)
        blocks = [self._day(acct, day) for acct in q.accounts for day in days]
        for block in blocks + [b for b in self._landed if b.acct in q.accounts]:
            idx = _block_hits(block, q, lo, hi, clock)
            if idx.size:
                sources.append(block.record)
                times.append(block.attempted_ns[idx])
                rows.append(idx)
        raw = [i for i, r in enumerate(self._raw) if _raw_matches(r, q, lo, hi)]
        if raw:
            sources.append(self._injected)
            times.append(np.array([self._raw[i].at_ns for i in raw], dtype=np.int64))
            rows.append(np.array(raw, dtype=np.int64))
        src = np.repeat(np.arange(len(rows), dtype=np.int64), [r.size for r in rows])
        row = np.concatenate([_NONE, *rows])
        if ordered:
            order = np.argsort(-np.concatenate([_NONE, *times]), kind="stable")
            src, row = src[order], row[order]
        return _Hits(sources, src, row)

    def _day(self, acct: int, day: int) -> _Block:
        block = self._days.get((acct, day))
        if block is None:
            block = generate_day(self.seed, acct, day, self.calls_per_day, costs=self.costs)
            self._days[acct, day] = block
        return block

    def _injected(self, i: int) -> dict[str, Any]:
        return {k: v for k, v in self._raw[i].record.items() if not k.startswith("_")}

    def _serve(self, hits: _Hits, start: int, stop: int | None) -> list[dict[str, Any]]:
        """Hits [start:stop] as the API sends them, in this simulator's dialect."""
        refs = zip(hits.src[start:stop].tolist(), hits.row[start:stop].tolist(), strict=True)
        records = [hits.sources[s](r) for s, r in refs]
        return [to_docs(r) for r in records] if self.dialect == "docs" else records

    def _alert_hits(self, q: _Query) -> list[Alert]:
        """Matching visible alerts, newest first, ties by series key descending.

        Generated, landed and injected alerts in the order they were written, so that one with
        the time and tags of an earlier one replaces it, as a point does in InfluxDB.
        """
        span = self._span(q)
        if span is None:
            return []
        lo, hi, _ = span
        days = range(lo // DAY_NS, hi // DAY_NS + 1)
        written = [a for o in q.owners() for d in days for a in self._alert_day(o, d)]
        latest: dict[tuple[int, str], Alert] = {}
        for a in [*written, *self._landed_alerts, *self._raw_alerts]:
            if lo <= a.at_ns <= hi and q.tags_match(a.record):
                latest[a.order] = a
        return sorted(latest.values(), key=lambda a: a.order, reverse=True)

    def _alert_day(self, owner: int, day: int) -> list[Alert]:
        alerts = self._alert_days.get((owner, day))
        if alerts is None:
            alerts = generate_alerts(self.seed, owner, day, self.calls_per_day)
            self._alert_days[owner, day] = alerts
        return alerts

    def _land(self, q: _Query, n: int) -> None:
        """n records land inside the queried range (the landing fault): calls already ended,
        or alerts of the route's accounts (and on its own route, the service provider's)."""
        if q.stream == ALERTS:
            self._land_alerts(q, n)
            return
        span = self._span(q)
        if span is None or n <= 0:
            return
        lo, hi, clock = span
        self._landings += 1
        rng = np.random.default_rng([self.seed, 0x1A4D, self._landings])
        attempted = np.sort(rng.integers(lo, hi + 1, n, dtype=np.int64))
        accts = rng.choice(np.array(q.accounts, dtype=np.int64), n)
        self._landed += [
            make_block(rng, int(a), attempted[accts == a], end_cap_ns=clock, costs=self.costs)
            for a in np.unique(accts)
        ]

    def _land_alerts(self, q: _Query, n: int) -> None:
        span = self._span(q)
        if span is None or n <= 0 or not q.owners():
            return
        lo, hi, _ = span
        self._alert_landings += 1
        rng = np.random.default_rng([self.seed, 0xA1E7, 0x1A4D, self._alert_landings])
        times = rng.integers(lo, hi + 1, n, dtype=np.int64)
        owners = rng.choice(np.array(q.owners(), dtype=np.int64), n)
        # alerts the query shows: of its type, and on the SP's route with the SP's sid
        no_sp = 0.0 if q.kind == "service_provider" else 0.02
        for owner in np.unique(owners):
            at = times[owners == owner]
            self._landed_alerts += random_alerts(
                rng, int(owner), at, alert_type=q.alert_type, no_sp_share=no_sp
            )


def _ns(at: datetime | int) -> int:
    return at if isinstance(at, int) else to_ns(at)


def _block_hits(block: _Block, q: _Query, lo: int, hi: int, clock: int) -> np.ndarray:
    """The rows of a block attempted in [lo, hi], visible by `clock`, that match q."""
    i0 = int(np.searchsorted(block.attempted_ns, lo, side="left"))
    i1 = int(np.searchsorted(block.attempted_ns, hi, side="right"))
    sl = slice(i0, i1)
    mask = block.visible_ns[sl] <= clock
    if q.answered is not None:
        mask &= block.answered[sl] == q.answered
    if q.direction is not None:  # an exact match: a value no call has matches none
        mask &= (block.outbound[sl] == (q.direction == "outbound")) & (
            q.direction in ("inbound", "outbound")
        )
    if q.trunk is not None:
        mask &= block.trunk[sl] == (TRUNKS.index(q.trunk) if q.trunk in TRUNKS else -1)
    idx = np.flatnonzero(mask) + i0
    if q.regex is not None and idx.size:
        froms, tos, sids = block.strings
        pat, text = q.regex, q.regex.pattern
        hits = [
            i for i in idx.tolist() if pat.search(froms[i]) or pat.search(tos[i]) or sids[i] == text
        ]
        idx = np.array(hits, dtype=np.int64)
    return idx


def _raw_matches(raw: _Raw, q: _Query, lo: int, hi: int) -> bool:
    """Whether an injected record attempted in [lo, hi] matches q (it is visible at once)."""
    rec = raw.record
    return (
        raw.acct in q.accounts
        and lo <= raw.at_ns <= hi
        and (q.answered is None or rec.get("answered") is q.answered)
        and (q.direction is None or rec.get("direction") == q.direction)
        and (q.trunk is None or rec.get("trunk") == q.trunk)
        and (q.regex is None or q.finds(rec.get("from"), rec.get("to"), rec.get("call_sid")))
    )


def _influx_regex_error(filt: str, exc: re.error) -> str:
    """The 500 body jambonz relays when InfluxDB cannot parse `=~ /.*<filter>.*/` (capture 43)."""
    # Go's regexp words it differently from Python's; the common case (a leading `+`, as in
    # an encoded +1508) is reproduced exactly, the rest carry Python's reason.
    if filt[:1] in ("+", "*", "?"):
        what = f"invalid nested repetition operator: `*{filt[0]}`"
    else:
        what = exc.msg
    detail = f"error parsing query: error parsing regexp: {what} at line 1, char 83"
    error = json.dumps({"error": detail}, separators=(",", ":"))
    return f"A 400 Bad Request error occurred: {error}\n"
