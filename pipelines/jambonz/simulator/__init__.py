"""A local jambonz RecentCalls server and CDR generator, for demos and tests.

It speaks RecentCalls as the deployed jambonz server does (see shared/docs/jambonz-recentcalls.md
and the captures in tests/fixtures/real-responses/): both routes, Bearer auth, the exact error
shapes, inclusive start/end bounds, attempt-time descending order, a total taken by a separate
count before the page, the rate-limit bucket with its headers, and fault knobs. It binds to
loopback unless told otherwise. It must never be imported by production code paths other than the
demo, and it never logs an API key (only the key's role).

How it is built, one module a layer, each importing only the ones above it:

    generator.py   ns UTC times and their texts; who it knows (sids, keys, roles); seeded CDRs
                   per (account, UTC day) as numpy columns (`_Block`); `to_docs`
    query.py       `_Store`: the calls, the clock, retention, filters, order; the query string
    server.py      HTTP: `Faults`, the rate-limit `_Bucket`, the socket side, and
                   `Simulator(_Store)`: rate limit, faults, auth, count then page, envelopes
    cli.py         `main`: flags, banner, serve until Ctrl-C (`__main__.py` runs it)

- CDRs are generated lazily per (account, UTC day) from the seed and cached; a record becomes a
  dict only when it is served. Times are integer nanoseconds UTC so the inclusive bounds behave
  at nanosecond precision, as InfluxDB's do.
- A CDR is visible once its call ended plus a write buffer (<= 20 s): a day keeps filling after
  midnight while its long calls finish.
- The HTTP side is stdlib `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive; responses are
  written byte by byte so header order and bodies match the captures.

Everything other code uses is re-exported here; import from the package, not its modules.
Run it by hand: `python -m pipelines.jambonz.simulator --port 8080 --seed 1 --calls-per-day 1000`.
"""

from __future__ import annotations

from pipelines.jambonz.records import SERVER_KEYS
from pipelines.jambonz.simulator.cli import main
from pipelines.jambonz.simulator.generator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    ACCOUNTS,
    ADMIN_KEY,
    APPLICATION_SIDS,
    DAY_NS,
    DOCS_KEYS,
    KEYS,
    MS,
    NS,
    OTHER_ACCOUNT_KEY,
    OTHER_ACCOUNT_SID,
    SERVICE_PROVIDER_KEY,
    SERVICE_PROVIDER_SID,
    TERMINATION_REASONS,
    TRUNKS,
    UNANSWERED_SENTINEL,
    WORST_TRUNK,
    Dialect,
    format_influx,
    format_ms,
    from_ns,
    generate_day,
    make_block,
    parse_time_param,
    to_docs,
    to_ns,
)
from pipelines.jambonz.simulator.server import Faults, Simulator
