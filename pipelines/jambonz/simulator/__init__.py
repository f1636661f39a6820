"""A local jambonz RecentCalls server and CDR generator, for demos and tests.

It speaks RecentCalls as the deployed server does (shared/docs/jambonz-recentcalls.md, the captures
in tests/fixtures/real-responses/): both routes, Bearer auth, the exact error shapes, inclusive
start/end bounds, attempt-time descending order, a count taken apart from the page, the rate-limit
bucket and fault knobs. It binds to loopback unless told otherwise, is imported by no production
code path but the demo, and never logs an API key (only the key's role). Layers, each importing
only the ones before it: generator.py (times, identities, CDRs), query.py (the store and its
queries), server.py (HTTP and `Simulator`), cli.py (`python -m pipelines.jambonz.simulator
--port 8080 --seed 1 --calls-per-day 1000`). Import from the package, not its modules.
"""

from __future__ import annotations

from pipelines.jambonz.simulator.generator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    ADMIN_KEY,
    DAY_NS,
    DOCS_KEYS,
    NS,
    OTHER_ACCOUNT_KEY,
    OTHER_ACCOUNT_SID,
    SERVICE_PROVIDER_KEY,
    SERVICE_PROVIDER_SID,
    TRUNKS,
    UNANSWERED_SENTINEL,
    format_influx,
    format_ms,
    generate_day,
    parse_time_param,
    to_docs,
)
from pipelines.jambonz.simulator.server import Faults, Simulator
from pipelines.jambonz.streams import SERVER_KEYS
