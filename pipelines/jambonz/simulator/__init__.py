"""A local jambonz RecentCalls and Alerts server, CDR and alert generator, for demos and tests.

It speaks RecentCalls and Alerts as the deployed server does (shared/docs/jambonz-recentcalls.md,
shared/docs/jambonz-alerts.md, the captures in tests/fixtures/real-responses/): the account's and
the service provider's routes, Bearer auth, the exact error shapes, inclusive start/end bounds,
time-descending order, a count taken apart from the page, one rate-limit bucket for every request
and fault knobs for either stream. It binds to loopback unless told otherwise, is imported by no
production code path but the demo, and never logs an API key (only the key's role). Layers, each
importing only the ones before it: generator.py (times, identities, CDRs), alerts.py (alerts),
query.py (the store and its queries), server.py (HTTP and `Simulator`), cli.py (`python -m
pipelines.jambonz.simulator --port 8080 --seed 1 --calls-per-day 1000`). Import from the
package, not its modules.

Calls over the managed carrier carry `cost`, `rate` and `billed_seconds` after the 21 keys, as
records of a `@jambonz/time-series` 0.5.0 server (`costs=False`, `--no-costs`: an older one).

Ground truth for tests: `Simulator.calls(sid, start, end, route=...)` and
`Simulator.alerts(sid, start, end, route=..., alert_type=...)` give what the API would send;
`add_records` and `add_alerts` inject records.
"""

from __future__ import annotations

from pipelines.jambonz.simulator.alerts import (
    ALERT_KEYS,
    SP_OWNER,
    UNDEFINED,
    generate_alerts,
    series_key,
)
from pipelines.jambonz.simulator.generator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    ADMIN_KEY,
    COST_KEYS,
    DAY_NS,
    DOCS_KEYS,
    NS,
    OTHER_ACCOUNT_KEY,
    OTHER_ACCOUNT_SID,
    RATED_TRUNK,
    SERVICE_PROVIDER_KEY,
    SERVICE_PROVIDER_SID,
    TRUNKS,
    UNANSWERED_SENTINEL,
    call_cost,
    format_influx,
    format_ms,
    generate_day,
    parse_time_param,
    to_docs,
)
from pipelines.jambonz.simulator.server import Faults, Simulator
from pipelines.jambonz.streams import SERVER_KEYS
