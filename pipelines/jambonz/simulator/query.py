"""The query engine: which stored calls a RecentCalls query matches, in the order it sends them.

InfluxDB's side of the server, over the generated days, the calls landed by the landing fault
and the records a test injects: the simulator clock (a CDR is visible once its call ended plus a
write buffer), retention, the inclusive start/end bounds at nanosecond precision, the filters
(answered, direction, trunk, the `filter` regex over from/to or an exact call_sid), attempt-time
descending order, and the query string read as the server reads it (`page`, `count`, `days`,
`start`/`end`). `_Store` is the half of `Simulator` that holds the calls; `calls()` is the ground
truth tests compare against. This module never speaks HTTP, never checks a key and never spends a
fault knob: the server decides what to ask and which slice to send.
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

from pipelines.jambonz.simulator.generator import (
    ACCOUNTS,
    DAY_NS,
    NS,
    SERVICE_PROVIDER_SID,
    TRUNKS,
    Dialect,
    _Block,
    _parse_rfc3339_loose,
    from_ns,
    generate_day,
    make_block,
    parse_time_param,
    to_docs,
    to_ns,
)

_DIGITS = re.compile(r"[0-9]+")


@dataclass
class _Query:
    accounts: tuple[int, ...]
    lo_ns: int | None = None  # inclusive
    hi_ns: int | None = None  # inclusive
    answered: bool | None = None
    direction: str | None = None
    trunk: str | None = None
    regex: re.Pattern[str] | None = None
    filter_text: str | None = None
    nothing: bool = False  # an unparseable start/end: InfluxDB matches no row


@dataclass
class _Hits:
    """Matching records in answer order, as (source, row) pairs kept in arrays until served."""

    sources: list[object]
    src: np.ndarray
    row: np.ndarray

    @classmethod
    def none(cls) -> _Hits:
        return cls([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.src.shape[0])

    def serve(self, sim: _Store, start: int, stop: int | None) -> list[dict[str, Any]]:
        return [
            sim._serve((self.sources[s], r))
            for s, r in zip(
                self.src[start:stop].tolist(), self.row[start:stop].tolist(), strict=True
            )
        ]


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


def _parse_params(
    accounts: tuple[int, ...], query: dict[str, list[str]], clock_ns: Callable[[], int]
) -> tuple[_Query, str, str] | _Refusal:
    """A RecentCalls query string as the server reads it: (query, page, count) or a refusal.

    page and count come back as sent (validated digit strings: the server echoes them as text);
    a bad one is a 400, a `filter` InfluxDB cannot compile a 500, as on the server.
    """
    page_raw = query.get("page", [""])[0]
    if not _DIGITS.fullmatch(page_raw) or int(page_raw) < 1:
        return _Refusal(400, {"msg": 'missing or invalid "page" query arg'})
    counts = query.get("count", [])
    count_raw = counts[0] if counts else ""
    # A repeated count reaches the check as an array and slips past it, as on the server.
    if not _DIGITS.fullmatch(count_raw) or (len(counts) == 1 and int(count_raw) > 500):
        return _Refusal(400, {"msg": 'missing or invalid "count" query arg'})

    q = _Query(accounts)
    answered = query.get("answered", [None])[0]
    if answered in ("true", "false"):
        q.answered = answered == "true"
    q.direction = query.get("direction", [None])[0]
    q.trunk = query.get("trunk", [None])[0]
    filt = query.get("filter", [None])[0]
    if filt:
        try:
            q.regex = re.compile(filt)
        except re.error as exc:
            return _Refusal(500, {"msg": _influx_regex_error(filt, exc)})
        q.filter_text = filt
    days_raw = query.get("days", [""])[0]
    if _DIGITS.fullmatch(days_raw) and int(days_raw) > 0:
        # `time > now() - Nd`: exclusive, so the inclusive lower bound is one ns later.
        q.lo_ns = clock_ns() - int(days_raw) * DAY_NS + 1
    else:
        for name in ("start", "end"):
            if name in query:
                ns = parse_time_param(query[name][0])
                if ns is None:
                    q.nothing = True
                elif name == "start":
                    q.lo_ns = ns
                else:
                    q.hi_ns = ns
    return q, page_raw, count_raw


class _Store:
    """The calls a `Simulator` holds and its clock; `Simulator` adds the API and the HTTP side.

    One `_lock` (reentrant) guards the clock and every store; the server takes it too.
    """

    def __init__(
        self,
        *,
        seed: int,
        calls_per_day: int,
        dialect: Dialect,
        now: datetime | None,
        retention_days: int,
    ) -> None:
        if dialect not in ("server", "docs"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.seed = seed
        self.calls_per_day = calls_per_day
        self.dialect: Dialect = dialect
        self.retention_days = retention_days
        self._lock = threading.RLock()
        # The CDR clock: base_ns, advanced by the monotonic clock unless frozen.
        if now is None:
            self._clock_base_ns = time.time_ns()
            self._clock_anchor: int | None = time.monotonic_ns()
        else:
            self._clock_base_ns = to_ns(now)
            self._clock_anchor = None
        self._days: dict[tuple[int, int], _Block] = {}
        self._landed: list[_Block] = []
        self._raw: list[_Raw] = []
        self._landings = 0

    # the clock
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
                at = rec.get("_at")
                at_ns = to_ns(at) if isinstance(at, datetime) else None
                if at_ns is None:
                    at_ns = _parse_rfc3339_loose(rec.get("attempted_at"))
                if at_ns is None:
                    raise ValueError("an injected record needs a parseable attempted_at or `_at`")
                owner = rec.get("_account_sid", rec.get("account_sid"))
                acct = ACCOUNTS.index(owner) if owner in ACCOUNTS else 0
                self._raw.append(_Raw(acct, at_ns, dict(rec)))

    # ground truth for tests
    def calls(
        self, sid: str, start: datetime, end: datetime, *, route: str = "account"
    ) -> list[dict[str, Any]]:
        """Every record visible now with start <= attempted_at < end, as the API would send it.

        route: "account" (sid = account sid) or "service_provider".
        """
        accounts: tuple[int, ...]
        if route == "account":
            accounts = (ACCOUNTS.index(sid),) if sid in ACCOUNTS else ()
        elif route == "service_provider":
            accounts = tuple(range(len(ACCOUNTS))) if sid == SERVICE_PROVIDER_SID else ()
        else:
            raise ValueError(f"unknown route {route!r}")
        with self._lock:
            q = _Query(accounts, lo_ns=to_ns(start), hi_ns=to_ns(end) - 1)
            return self._select(q).serve(self, 0, None)

    # the store

    def _day(self, acct: int, day: int) -> _Block:
        key = (acct, day)
        block = self._days.get(key)
        if block is None:
            block = generate_day(self.seed, acct, day, self.calls_per_day)
            self._days[key] = block
        return block

    def _bounds(self, q: _Query, clock: int) -> tuple[int, int]:
        """The attempt-time range worth looking at: the query's, inside retention and the clock."""
        lo = clock - self.retention_days * DAY_NS
        hi = clock
        if q.lo_ns is not None:
            lo = max(lo, q.lo_ns)
        if q.hi_ns is not None:
            hi = min(hi, q.hi_ns)
        return lo, hi

    def _select(self, q: _Query, *, ordered: bool = True) -> _Hits:
        """Matching visible records as (source, index), attempt time descending."""
        if q.nothing or not q.accounts:
            return _Hits.none()
        clock = self.clock_ns()
        lo, hi = self._bounds(q, clock)
        if lo > hi:
            return _Hits.none()
        sources: list[object] = []
        times: list[np.ndarray] = []
        src_ids: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        blocks: list[_Block] = [
            self._day(acct, day)
            for acct in q.accounts
            for day in range(lo // DAY_NS, hi // DAY_NS + 1)
        ]
        blocks += [b for b in self._landed if b.acct in q.accounts]
        for block in blocks:
            att = block.attempted_ns
            i0 = int(np.searchsorted(att, lo, side="left"))
            i1 = int(np.searchsorted(att, hi, side="right"))
            if i0 >= i1:
                continue
            sl = slice(i0, i1)
            mask = block.visible_ns[sl] <= clock
            if q.answered is not None:
                mask &= block.answered[sl] == q.answered
            if q.direction == "outbound":
                mask &= block.outbound[sl]
            elif q.direction == "inbound":
                mask &= ~block.outbound[sl]
            elif q.direction is not None:
                mask &= False  # exact match on a value no call has
            if q.trunk is not None:
                if q.trunk in TRUNKS:
                    mask &= block.trunk[sl] == TRUNKS.index(q.trunk)
                else:
                    mask &= False
            idx = np.nonzero(mask)[0] + i0
            if q.regex is not None and idx.size:
                froms, tos, sids = block.strings()
                pat, text = q.regex, q.filter_text
                idx = np.array(
                    [
                        i
                        for i in idx.tolist()
                        if pat.search(froms[i]) or pat.search(tos[i]) or sids[i] == text
                    ],
                    dtype=np.int64,
                )
            if idx.size:
                sources.append(block)
                times.append(att[idx])
                src_ids.append(np.full(idx.size, len(sources) - 1, dtype=np.int64))
                rows.append(idx.astype(np.int64))
        raw_hits = [
            (r.at_ns, i)
            for i, r in enumerate(self._raw)
            if r.acct in q.accounts and lo <= r.at_ns <= hi and self._raw_matches(r.record, q)
        ]
        if raw_hits:
            sources.append(self._raw)
            times.append(np.array([t for t, _ in raw_hits], dtype=np.int64))
            src_ids.append(np.full(len(raw_hits), len(sources) - 1, dtype=np.int64))
            rows.append(np.array([i for _, i in raw_hits], dtype=np.int64))
        if not times:
            return _Hits.none()
        t = np.concatenate(times)
        s = np.concatenate(src_ids)
        r = np.concatenate(rows)
        if not ordered:  # a count needs no order
            return _Hits(sources, s, r)
        order = np.argsort(-t, kind="stable")
        return _Hits(sources, s[order], r[order])

    @staticmethod
    def _raw_matches(rec: dict[str, Any], q: _Query) -> bool:
        if q.answered is not None and rec.get("answered") is not q.answered:
            return False
        if q.direction is not None and rec.get("direction") != q.direction:
            return False
        if q.trunk is not None and rec.get("trunk") != q.trunk:
            return False
        if q.regex is not None:
            frm, to = rec.get("from"), rec.get("to")
            if not (
                (isinstance(frm, str) and q.regex.search(frm))
                or (isinstance(to, str) and q.regex.search(to))
                or rec.get("call_sid") == q.filter_text
            ):
                return False
        return True

    def _serve(self, ref: tuple[object, int]) -> dict[str, Any]:
        source, i = ref
        if isinstance(source, _Block):
            rec = source.record(i)
        else:
            raw = self._raw[i].record
            rec = {k: v for k, v in raw.items() if not k.startswith("_")}
        return to_docs(rec) if self.dialect == "docs" else rec

    def _land(self, q: _Query, n: int) -> None:
        """n calls land inside the queried range, already ended (the landing fault)."""
        if q.nothing or not q.accounts or n <= 0:
            return
        clock = self.clock_ns()
        lo, hi = self._bounds(q, clock)
        if lo > hi:
            return
        self._landings += 1
        rng = np.random.default_rng([self.seed, 0x1A4D, self._landings])
        attempted = np.sort(rng.integers(lo, hi + 1, n, dtype=np.int64))
        accts = rng.choice(np.array(q.accounts, dtype=np.int64), n)
        for acct in sorted(set(accts.tolist())):
            self._landed.append(
                make_block(rng, int(acct), attempted[accts == acct], end_cap_ns=clock)
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
    return (
        "A 400 Bad Request error occurred: "
        + json.dumps({"error": detail}, separators=(",", ":"))
        + "\n"
    )
