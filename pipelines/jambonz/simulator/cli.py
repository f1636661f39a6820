"""The command line: `python -m pipelines.jambonz.simulator [--port 0] ...` (`make sim`).

Builds a `Simulator` from the flags, prints a banner (where it listens, its sids and fake keys, a
curl to try) and serves until Ctrl-C or SIGTERM, both ending it the same orderly way. The only
module of the package that prints or touches signals; it never binds beyond `--host`.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Sequence

from pipelines.jambonz.simulator.generator import (
    ACCOUNT_KEY,
    ACCOUNT_SID,
    ADMIN_KEY,
    OTHER_ACCOUNT_KEY,
    OTHER_ACCOUNT_SID,
    SERVICE_PROVIDER_KEY,
    SERVICE_PROVIDER_SID,
    from_ns,
    parse_time_param,
)
from pipelines.jambonz.simulator.server import Simulator


def _parse_rate_limit(text: str) -> tuple[int, float]:
    limit, _, window = text.partition("/")
    try:
        return int(limit), float(window or 300)
    except ValueError:
        raise argparse.ArgumentTypeError("expected LIMIT/WINDOW_SECONDS, e.g. 600/300") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.jambonz.simulator",
        description="Serve synthetic jambonz RecentCalls and Alerts on loopback until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calls-per-day", type=int, default=1000)
    parser.add_argument("--dialect", choices=("server", "docs"), default="server")
    parser.add_argument("--retention-days", type=int, default=30)
    parser.add_argument("--now", help="freeze the CDR clock at this RFC 3339 time (default: run)")
    parser.add_argument(
        "--no-costs",
        action="store_true",
        help="no cost/rate/billed_seconds on rated calls (a server before time-series 0.5.0)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--rate-limit", type=_parse_rate_limit, default=(600, 300.0))
    group.add_argument("--no-rate-limit", action="store_true")
    args = parser.parse_args(argv)
    now_ns = parse_time_param(args.now) if args.now else None
    if args.now and now_ns is None:
        parser.error(f"--now: cannot parse {args.now!r}")
    rate_limit = None if args.no_rate_limit else args.rate_limit
    sim = Simulator(
        seed=args.seed,
        calls_per_day=args.calls_per_day,
        dialect=args.dialect,
        rate_limit=rate_limit,
        now=None if now_ns is None else from_ns(now_ns),
        retention_days=args.retention_days,
        host=args.host,
        port=args.port,
        costs=not args.no_costs,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # raises KeyboardInterrupt
    with sim:
        limit = "none" if rate_limit is None else f"{rate_limit[0]} per {rate_limit[1]:g}s"
        banner = (
            f"jambonz simulator listening on {sim.base_url} (dialect {sim.dialect}, "
            f"seed {sim.seed}, {sim.calls_per_day} calls/day/account)",
            f"  rate limit:            {limit}",
            f"  service provider sid:  {SERVICE_PROVIDER_SID}",
            f"  account sid:           {ACCOUNT_SID}",
            f"  other account sid:     {OTHER_ACCOUNT_SID}",
            f"  account key:           {ACCOUNT_KEY}",
            f"  other account key:     {OTHER_ACCOUNT_KEY}",
            f"  service provider key:  {SERVICE_PROVIDER_KEY}",
            f"  admin key:             {ADMIN_KEY}",
            f"  try: curl -H 'Authorization: Bearer {ACCOUNT_KEY}' "
            f"'{sim.base_url}/v1/Accounts/{ACCOUNT_SID}/RecentCalls?page=1&count=5'",
            f"  alerts: the same with /Alerts?page=1&count=5 (or /v1/ServiceProviders/"
            f"{SERVICE_PROVIDER_SID}/Alerts with the service provider key)",
        )
        print("\n".join(banner), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0
