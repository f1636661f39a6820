"""The RecentCalls API as the deployed server answers it, and `Simulator`, the object tests drive.

`Simulator.handle(path, auth)` answers one GET in the server's order: the rate-limit bucket, the
faults that stand for the infrastructure in front of the API, the route and Bearer key (scoped by
role), the query string, then a count and a page that are not atomic (the landing, repeated- and
short-page faults bend them), in the server or the docs dialect, with the exact error shapes and
helmet headers of the captures. Tests subclass `Simulator` and override `handle` to watch or hold
requests. `Simulator` is the query engine's `_Store` plus this; the socket side is `wire.py`.
It never logs a key (the request log and the debug log name the key's role), and it binds to
loopback unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipelines.jambonz.simulator.bucket import _Bucket
from pipelines.jambonz.simulator.faults import Faults
from pipelines.jambonz.simulator.generator import Dialect
from pipelines.jambonz.simulator.identities import ACCOUNTS, KEYS, SERVICE_PROVIDER_SID
from pipelines.jambonz.simulator.query import _parse_params, _Refusal, _Store
from pipelines.jambonz.simulator.wire import _Handler, _Response, _Server

_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_ROUTE_RE = re.compile(r"^/v1/(Accounts|ServiceProviders)/([^/]+)/RecentCalls/?$")

_HELMET_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
        "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
        "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    ),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Origin-Agent-Cluster", "?1"),
    ("Referrer-Policy", "no-referrer"),
    ("Strict-Transport-Security", "max-age=15552000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-DNS-Prefetch-Control", "off"),
    ("X-Download-Options", "noopen"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Permitted-Cross-Domain-Policies", "none"),
    ("X-XSS-Protection", "0"),
    ("Surrogate-Control", "no-store"),
    ("Cache-Control", "no-store, no-cache, must-revalidate, proxy-revalidate"),
    ("Expires", "0"),
    ("Access-Control-Allow-Origin", "*"),
)
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
TOO_MANY = b"Too many requests, please try again later."
NON_JSON_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>"
    b"<body><h1>We'll be right back</h1><p>The service is undergoing maintenance.</p>"
    b"</body></html>\n"
)

log = logging.getLogger(__package__)  # the package's one logger


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class Simulator(_Store):
    """A RecentCalls server on 127.0.0.1 (a free port unless `port` is given).

    Args:
        seed: makes every generated CDR deterministic.
        calls_per_day: average attempts per account per UTC day (a daily curve shapes the hours).
        dialect: "server" (what jambonz sends) or "docs" (what its docs page shows).
        rate_limit: (limit, window_seconds) of the one shared bucket; None sends no RateLimit
            headers and never answers 429 (a self-hosted server without a limiter).
        now: the simulator clock's start; None = the machine's clock, running. A CDR is visible
            once its call ended (terminated_at + buffer <= clock).
        retention_days: calls attempted before clock - retention are gone from the API.
        host, port: where to listen; host defaults to 127.0.0.1.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        calls_per_day: int = 1000,
        dialect: Dialect = "server",
        rate_limit: tuple[int, float] | None = (600, 300.0),
        now: datetime | None = None,
        retention_days: int = 30,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(
            seed=seed,
            calls_per_day=calls_per_day,
            dialect=dialect,
            now=now,
            retention_days=retention_days,
        )
        self.host = host
        self.port = port
        self.faults = Faults()
        self._bucket = (
            None if rate_limit is None else _Bucket(rate_limit[0], rate_limit[1], start_now=False)
        )
        self._log: list[dict[str, Any]] = []
        self._count_429 = 0
        self._connections = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle
    def start(self) -> Simulator:  # serve in a background thread; returns self
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"jambonz-simulator-{server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in slow_responses
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:  # e.g. "http://127.0.0.1:54321"
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    # knobs
    faults: Faults

    def set_rate_limit(self, limit: int, window_s: float) -> None:
        """Replace the bucket (a fresh, full window starts now)."""
        with self._lock:
            self._bucket = _Bucket(limit, window_s, start_now=True)

    def consume(self, n: int) -> None:
        """Spend n requests of the bucket as another client (the operator's web UI) would."""
        with self._lock:
            if self._bucket is not None:
                self._bucket.hit(n)

    # observation
    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One entry per RecentCalls request: {path, params, status, remaining}.

        Also `role` (of the key, never the key), `fault` (the fault that answered, if any) and
        `total`/`returned` for 200 answers.
        """
        with self._lock:
            return [dict(e) for e in self._log]

    @property
    def count_429(self) -> int:
        with self._lock:
            return self._count_429

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (keep-alive reuse shows as fewer than requests)."""
        with self._lock:
            return self._connections

    def _connected(self) -> None:
        with self._lock:
            self._connections += 1

    # the API

    def _take_fault(self, name: str) -> bool:
        left = getattr(self.faults, name)
        if left > 0:
            setattr(self.faults, name, left - 1)
            return True
        return False

    def handle(self, path: str, auth: str | None) -> _Response:
        """Answer one GET: rate limit, faults, auth, validation, count, (landing), data."""
        split = urlsplit(path)
        route = _ROUTE_RE.match(split.path)
        query = parse_qs(split.query, keep_blank_values=True)  # '+' decodes to ' ', as in express
        params = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
        with self._lock:
            rl_headers: list[tuple[str, str]] = []
            remaining: int | None = None
            limited = False
            if self._bucket is not None:
                allowed, remaining, reset = self._bucket.hit()
                rl_headers = self._bucket.headers(remaining, reset)
                if not allowed:
                    limited = True
                    rl_headers.append(("Retry-After", str(reset)))
            entry: dict[str, Any] = {
                "path": split.path,
                "params": params,
                "status": 0,
                "remaining": remaining,
                "role": None,
                "fault": None,
            }
            if route is not None:
                self._log.append(entry)
        if limited:
            return self._finish(entry, self._too_many(rl_headers, express=True))
        if route is None:
            body = (
                f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f"<title>Error</title>\n</head>\n<body>\n<pre>Cannot GET {split.path}</pre>\n"
                f"</body>\n</html>\n"
            ).encode()
            return _Response(
                404, [*rl_headers, *_HELMET_HEADERS, ("Content-Type", HTML_TYPE)], body
            )

        # Faults stand in for the infrastructure in front of the API, so they come before auth.
        with self._lock:
            reset_conn = self._take_fault("reset_connections")
            slow = (
                0.0
                if reset_conn or not self._take_fault("slow_responses")
                else self.faults.slow_seconds
            )
        if reset_conn:
            entry["fault"] = "reset_connections"
            return self._finish(entry, _Response(0, [], b"", reset=True))
        if slow > 0:
            entry["fault"] = "slow_responses"
            self._stopping.wait(slow)
        with self._lock:
            if self._take_fault("storm_429"):
                entry["fault"] = "storm_429"
                headers = list(rl_headers)
                if self.faults.storm_429_reset_s is not None:
                    limit = self._bucket.limit if self._bucket is not None else 600
                    headers = [
                        ("RateLimit-Limit", str(limit)),
                        ("RateLimit-Remaining", "0"),
                        ("RateLimit-Reset", str(math.ceil(self.faults.storm_429_reset_s))),
                    ]
                if self.faults.storm_429_retry_after:
                    headers.append(("Retry-After", _retry_after(self.faults.retry_after_s)))
                return self._finish(entry, self._too_many(headers, express=False))
            if self._take_fault("server_errors"):
                entry["fault"] = "server_errors"
                return self._finish(entry, self._server_error(rl_headers))

        response = self._api(route, params, query, auth, entry, rl_headers)
        if response.status == 200:
            with self._lock:
                if self._take_fault("truncated_bodies"):
                    entry["fault"] = "truncated_bodies"
                    response.truncate = True
                elif self._take_fault("non_json_bodies"):
                    entry["fault"] = "non_json_bodies"
                    response = _Response(
                        200,
                        [*rl_headers, *_HELMET_HEADERS, ("Content-Type", HTML_TYPE)],
                        NON_JSON_PAGE,
                    )
        return self._finish(entry, response)

    def _finish(self, entry: dict[str, Any], response: _Response) -> _Response:
        with self._lock:
            entry["status"] = response.status
            if response.status == 429:
                self._count_429 += 1
        log.debug(
            "RecentCalls %s role=%s -> %s%s",
            entry["path"],
            entry["role"],
            response.status,
            f" ({entry['fault']})" if entry["fault"] else "",
        )
        return response

    @staticmethod
    def _too_many(headers: list[tuple[str, str]], *, express: bool) -> _Response:
        lead = [("X-Powered-By", "Express")] if express else []
        return _Response(429, [*lead, *headers, ("Content-Type", HTML_TYPE)], TOO_MANY)

    def _server_error(self, rl_headers: list[tuple[str, str]]) -> _Response:
        status = self.faults.server_error_status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Server Error"
        if self.faults.server_error_html:
            body = (
                f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
                f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                f"</body>\r\n</html>\r\n"
            ).encode()
            return _Response(status, [*rl_headers, ("Content-Type", "text/html")], body)
        return _json(status, rl_headers, {"msg": phrase})

    def _api(
        self,
        route: re.Match[str],
        params: dict[str, Any],
        query: dict[str, list[str]],
        auth: str | None,
        entry: dict[str, Any],
        rl_headers: list[tuple[str, str]],
    ) -> _Response:
        kind, sid = route.group(1), route.group(2)
        token = None
        if auth is not None:
            scheme, _, value = auth.strip().partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        identity = KEYS.get(token) if token else None
        if identity is None:
            return _Response(
                401,
                [
                    *rl_headers,
                    *_HELMET_HEADERS,
                    ("WWW-Authenticate", 'Bearer realm="Users", error="invalid_token"'),
                ],
                b"Unauthorized",
            )
        role, scope = identity
        entry["role"] = role
        forbidden = {"status": "fail", "message": "insufficient privileges"}
        if kind == "ServiceProviders":
            if role == "account" or (
                role == "service_provider" and _UUID_RE.match(sid) and sid != scope
            ):
                return _json(403, rl_headers, forbidden)
            if not _UUID_RE.match(sid):
                return _json(400, rl_headers, {"msg": "Bad request"})
            accounts = tuple(range(len(ACCOUNTS))) if sid == SERVICE_PROVIDER_SID else ()
        else:
            if not _UUID_RE.match(sid):
                if role == "account":
                    return _json(
                        400, rl_headers, {"status": "fail", "message": "invalid AccountsSid format"}
                    )
                return _json(400, rl_headers, {"msg": "Bad request"})
            if role == "account" and sid != scope:
                return _json(403, rl_headers, forbidden)
            accounts = (ACCOUNTS.index(sid),) if sid in ACCOUNTS else ()

        parsed = _parse_params(accounts, query, self.clock_ns)
        if isinstance(parsed, _Refusal):
            return _json(parsed.status, rl_headers, parsed.body)
        q, page_raw, count_raw = parsed
        page, count = int(page_raw), int(count_raw)

        with self._lock:
            # The server counts first, then reads the page: the two are not atomic.
            total = len(self._select(q, ordered=False))
            self._land(q, self.faults.landing_per_request)
            if self.faults.landing_per_request > 0:
                entry["fault"] = "landing_per_request"
            offset = (page - 1) * count
            short = False
            if page > 1 and self._take_fault("repeat_previous_page"):
                entry["fault"] = "repeat_previous_page"
                offset = (page - 2) * count
            elif page > 1 and self._take_fault("short_pages"):
                entry["fault"] = "short_pages"
                short = True
            hits = self._select(q)
            stop = None if count == 0 else offset + count
            if short:
                stop = max(offset, min(len(hits), stop if stop is not None else len(hits)) - 1)
            data = hits.serve(self, offset, stop)
            entry["total"] = total
            entry["returned"] = len(data)
        if self.dialect == "docs":
            envelope: dict[str, Any] = {
                "total": total,
                "batch": len(data),
                "page": page,
                "data": data,
            }
        else:
            envelope = {"total": total, "page_size": count_raw, "page": page_raw, "data": data}
        return _json(200, rl_headers, envelope)


def _json(status: int, rl_headers: list[tuple[str, str]], obj: Any) -> _Response:
    body = _dumps(obj)
    return _Response(status, [*rl_headers, *_HELMET_HEADERS, ("Content-Type", JSON_TYPE)], body)
