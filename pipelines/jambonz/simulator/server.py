"""HTTP and `Simulator`, the object tests drive: the query engine's `_Store` plus the API.

`Simulator.handle(path, auth)` answers one GET of RecentCalls or Alerts, on the account's or the
service provider's route, in the server's order: the rate-limit bucket (one, shared by every
request), the `Faults` that stand for the infrastructure in front of the API, the route and
Bearer key (scoped by role), the query string, then a count and a page that are not atomic, with
the captures' error shapes and headers (tests override `handle` to watch or hold requests). Both
streams go through the same steps; only the query engine knows what their records are.
`_Handler` writes each `_Response` byte by byte in the captures' header order, or half of it, or
an RST. It never logs a key, only the key's role.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import json
import logging
import math
import re
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from http.client import responses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipelines.jambonz.simulator.generator import KEYS, Dialect
from pipelines.jambonz.simulator.query import _parse_params, _Refusal, _Store

log = logging.getLogger(__package__)  # the package's one logger


@dataclass
class Faults:
    """Knobs a test turns on. Counters count down per affected request of either stream
    (RecentCalls, Alerts) on either route, unless `stream` names the one they apply to."""

    stream: str | None = None  # "RecentCalls" or "Alerts": faults for that stream's requests only

    server_errors: int = 0  # next N requests answer 5xx
    server_error_status: int = 503
    server_error_html: bool = False  # HTML body instead of {"msg": ...}
    storm_429: int = 0  # next N requests answer 429 regardless of the bucket
    storm_429_retry_after: bool = True  # whether those 429s carry Retry-After
    retry_after_s: float = 1.0  # the Retry-After value sent with storm 429s
    # When set, storm 429s carry a spent bucket of their own (RateLimit-Remaining 0, -Reset this
    # many seconds) instead of the real one's: a proxy or a restarted limiter in front of jambonz.
    storm_429_reset_s: float | None = None
    slow_responses: int = 0  # next N requests wait slow_seconds before answering
    slow_seconds: float = 0.0
    truncated_bodies: int = 0  # next N 200 answers send half the body and close
    non_json_bodies: int = 0  # next N 200 answers send an HTML page with status 200
    reset_connections: int = 0  # next N requests: the socket is closed without an answer
    # Not a countdown: while > 0, every request lands N new records inside its queried range
    # (already ended CDRs; alerts of its type and route), after its count, before its page.
    landing_per_request: int = 0
    repeat_previous_page: int = 0  # next N pages > 1 repeat the records of the previous page
    short_pages: int = 0  # next N pages > 1 drop their last record (short page before the end)


class _Bucket:
    """express-rate-limit's fixed window: one shared counter, reset when the window ends."""

    def __init__(self, limit: int, window_s: float, *, start_now: bool) -> None:
        self.limit = limit
        self.window_s = window_s
        self.hits = 0
        self.reset_at = time.monotonic() + window_s if start_now else -math.inf

    def hit(self, n: int = 1) -> tuple[bool, int, list[tuple[str, str]]]:
        """Count n requests; (allowed, remaining, the RateLimit-* headers and any Retry-After)."""
        now = time.monotonic()
        if now >= self.reset_at:
            self.hits = 0
            self.reset_at = now + self.window_s
        self.hits += n
        remaining = max(0, self.limit - self.hits)
        reset = str(max(0, math.ceil(self.reset_at - now)))
        headers = [
            ("RateLimit-Policy", f"{self.limit};w={math.ceil(self.window_s)}"),
            ("RateLimit-Limit", str(self.limit)),
            ("RateLimit-Remaining", str(remaining)),
            ("RateLimit-Reset", reset),
        ]
        allowed = self.hits <= self.limit
        return allowed, remaining, headers if allowed else [*headers, ("Retry-After", reset)]


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncate: bool = False
    reset: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: Simulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-answer on purpose in fault tests; that is not an error here.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # the keep-alive timeout the real server advertises
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.sim._connected()

    def do_GET(self) -> None:
        response = self.server.sim.handle(self.path, self.headers.get("Authorization"))
        if response.reset:
            self._reset()
            return
        keep_alive = not self.close_connection and not response.truncate
        body = response.body
        length = [("Content-Length", str(len(body)))]
        connection = "keep-alive" if keep_alive else "close"
        date = email.utils.formatdate(self.server.sim.clock_ns() / 1e9, usegmt=True)  # its clock
        tail = [("Date", date), ("Connection", connection)]
        if keep_alive:
            tail.append(("Keep-Alive", "timeout=5"))
        if response.status != 401:
            digest = base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode()
            tail = [*length, ("ETag", f'W/"{len(body):x}-{digest[:27]}"'), *tail]
        else:
            tail += length
        head = f"HTTP/1.1 {response.status} {responses.get(response.status, 'Unknown')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in [*response.headers, *tail]) + "\r\n"
        self.wfile.write(
            head.encode("latin-1") + (body[: len(body) // 2] if response.truncate else body)
        )
        self.wfile.flush()
        if not keep_alive:
            self.close_connection = True

    def _reset(self) -> None:
        # SO_LINGER 0: the close sends RST, as a crashed proxy or a killed worker would. Closing
        # here (the fd really goes once rfile is closed) keeps the server from sending FIN first.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_ROUTE_RE = re.compile(r"^/v1/(Accounts|ServiceProviders)/([^/]+)/(RecentCalls|Alerts)/?$")

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
HTML_TYPE = "text/html; charset=utf-8"
NON_JSON_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>"
    b"<body><h1>We'll be right back</h1><p>The service is undergoing maintenance.</p>"
    b"</body></html>\n"
)


def _page(status: int, rl_headers: list[tuple[str, str]], kind: str, body: bytes) -> _Response:
    return _Response(status, [*rl_headers, *_HELMET_HEADERS, ("Content-Type", kind)], body)


def _json(status: int, rl_headers: list[tuple[str, str]], obj: Any) -> _Response:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return _page(status, rl_headers, "application/json; charset=utf-8", body)


def _too_many(headers: list[tuple[str, str]], *, express: bool) -> _Response:
    lead = [("X-Powered-By", "Express")] if express else []
    body = b"Too many requests, please try again later."
    return _Response(429, [*lead, *headers, ("Content-Type", HTML_TYPE)], body)


class Simulator(_Store):
    """A RecentCalls and Alerts server on 127.0.0.1 (a free port unless `port` is given).

    Args:
        seed: makes every generated CDR and alert deterministic.
        calls_per_day: average attempts per account per UTC day (a daily curve shapes the hours);
            an account-day also has ~1.5% as many alerts plus 8 planted edge cases (none at 0).
        dialect: "server" (what jambonz sends) or "docs" (what its docs page shows: the envelope
            `total`/`batch`/`page`, the calls' docs keys; alerts keep the server's records).
        rate_limit: (limit, window_seconds) of the one shared bucket; None sends no RateLimit
            headers and never answers 429 (a self-hosted server without a limiter).
        now: the simulator clock's start; None = the machine's clock, running. A CDR is visible
            once its call ended (terminated_at + buffer <= clock), an alert once time <= clock.
        retention_days: calls attempted (alerts written) before clock - retention are gone.
        costs: calls over the managed carrier (trunk "twilio", ~35% of calls) carry `cost`,
            `rate` and `billed_seconds` after the 21 keys, as since @jambonz/time-series 0.5.0;
            False serves the records of an older server. No other field depends on it.
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
        costs: bool = True,
    ) -> None:
        super().__init__(seed, calls_per_day, dialect, now, retention_days, costs)
        self.host = host
        self.port = port
        self.faults = Faults()
        self._bucket = None if rate_limit is None else _Bucket(*rate_limit, start_now=False)
        self._log: list[dict[str, Any]] = []
        self.count_429 = 0  # 429 answers so far
        self.connections = 0  # TCP connections accepted (keep-alive reuse: fewer than requests)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._gate: threading.Event | None = None  # hold(): requests wait until it is set

    def hold(self) -> None:
        """Requests from now on wait, unanswered, until release() (a run caught mid-sync)."""
        self._gate = threading.Event()

    def release(self) -> None:
        """Answer the held requests and stop holding."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def start(self) -> Simulator:  # serve in a background thread; returns self
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sim = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"jambonz-simulator-{self._server.server_address[1]}",
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

    def set_rate_limit(self, limit: int, window_s: float) -> None:
        """Replace the bucket (a fresh, full window starts now)."""
        with self._lock:
            self._bucket = _Bucket(limit, window_s, start_now=True)

    def consume(self, n: int) -> None:
        """Spend n requests of the bucket as another client (the operator's web UI) would."""
        with self._lock:
            if self._bucket is not None:
                self._bucket.hit(n)

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """One entry per RecentCalls or Alerts request: path, params, status, remaining, role (of
        the key, never the key), fault (the one that answered, if any), `at` (time.monotonic()
        when it arrived) and, for a 200, total/returned.
        """
        with self._lock:
            return [dict(e) for e in self._log]

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _take_fault(self, name: str, stream: str) -> bool:
        if self.faults.stream not in (None, stream):
            return False
        left: int = getattr(self.faults, name)
        if left > 0:
            setattr(self.faults, name, left - 1)
        return left > 0

    def handle(self, path: str, auth: str | None) -> _Response:
        """Answer one GET: rate limit, faults, auth, validation, count, (landing), data."""
        split = urlsplit(path)
        route = _ROUTE_RE.match(split.path)
        query = parse_qs(split.query, keep_blank_values=True)  # '+' decodes to ' ', as in express
        entry: dict[str, Any] = {
            "path": split.path,
            "params": {k: v[0] if len(v) == 1 else v for k, v in query.items()},
            "status": 0,
            "remaining": None,
            "role": None,
            "fault": None,
            "at": time.monotonic(),  # when it arrived: the gaps a client left between requests
        }
        rl_headers: list[tuple[str, str]] = []
        allowed = True
        with self._lock:
            if self._bucket is not None:
                allowed, entry["remaining"], rl_headers = self._bucket.hit()
            if route is not None:
                self._log.append(entry)
        if not allowed:
            return self._finish(entry, _too_many(rl_headers, express=True))
        if route is None:
            body = (
                f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
                f"<title>Error</title>\n</head>\n<body>\n<pre>Cannot GET {split.path}</pre>\n"
                f"</body>\n</html>\n"
            ).encode()
            return _page(404, rl_headers, HTML_TYPE, body)

        # Faults stand in for the infrastructure in front of the API, so they come before auth.
        stream = route[3]
        with self._lock:
            reset_conn = self._take_fault("reset_connections", stream)
            slow = 0.0
            if not reset_conn and self._take_fault("slow_responses", stream):
                slow = self.faults.slow_seconds
        if reset_conn:
            entry["fault"] = "reset_connections"
            return self._finish(entry, _Response(0, [], b"", reset=True))
        if slow > 0:
            entry["fault"] = "slow_responses"
            self._stopping.wait(slow)
        gate = self._gate
        if gate is not None:  # held (hold()): wait for release() or stop()
            entry["fault"] = "held"
            while not gate.wait(0.05) and not self._stopping.is_set():
                pass
        with self._lock:
            if self._take_fault("storm_429", stream):
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
                    after = self.faults.retry_after_s
                    text = str(int(after)) if float(after).is_integer() else f"{after:g}"
                    headers.append(("Retry-After", text))
                return self._finish(entry, _too_many(headers, express=False))
            if self._take_fault("server_errors", stream):
                entry["fault"] = "server_errors"
                return self._finish(entry, self._server_error(rl_headers))

        response = self._api(route, query, auth, entry, rl_headers)
        if response.status == 200:
            with self._lock:
                if self._take_fault("truncated_bodies", stream):
                    entry["fault"] = "truncated_bodies"
                    response.truncate = True
                elif self._take_fault("non_json_bodies", stream):
                    entry["fault"] = "non_json_bodies"
                    response = _page(200, rl_headers, HTML_TYPE, NON_JSON_PAGE)
        return self._finish(entry, response)

    def _finish(self, entry: dict[str, Any], response: _Response) -> _Response:
        with self._lock:
            entry["status"] = response.status
            if response.status == 429:
                self.count_429 += 1
        log.debug(
            "%s role=%s -> %s%s",
            entry["path"],
            entry["role"],
            response.status,
            f" ({entry['fault']})" if entry["fault"] else "",
        )
        return response

    def _server_error(self, rl_headers: list[tuple[str, str]]) -> _Response:
        status = self.faults.server_error_status
        phrase = responses.get(status, "Server Error")
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
        query: dict[str, list[str]],
        auth: str | None,
        entry: dict[str, Any],
        rl_headers: list[tuple[str, str]],
    ) -> _Response:
        kind, sid, stream = route.groups()
        scheme, _, token = (auth or "").strip().partition(" ")
        identity = KEYS.get(token.strip()) if scheme.lower() == "bearer" else None
        if identity is None:
            challenge = ("WWW-Authenticate", 'Bearer realm="Users", error="invalid_token"')
            return _Response(401, [*rl_headers, *_HELMET_HEADERS, challenge], b"Unauthorized")
        role, scope = identity
        entry["role"] = role
        forbidden = {"status": "fail", "message": "insufficient privileges"}
        bad = {"msg": "Bad request"}
        if kind == "ServiceProviders":
            if role == "account" or (
                role == "service_provider" and _UUID_RE.match(sid) and sid != scope
            ):
                return _json(403, rl_headers, forbidden)
            if not _UUID_RE.match(sid):
                return _json(400, rl_headers, bad)
        elif not _UUID_RE.match(sid):
            if role == "account":
                bad = {"status": "fail", "message": "invalid AccountsSid format"}
            return _json(400, rl_headers, bad)
        elif role == "account" and sid != scope:
            return _json(403, rl_headers, forbidden)

        route_kind = "service_provider" if kind == "ServiceProviders" else "account"
        parsed = _parse_params(stream, route_kind, sid, query, self.clock_ns)
        if isinstance(parsed, _Refusal):
            return _json(parsed.status, rl_headers, parsed.body)
        q, page_raw, count_raw = parsed
        page, count = int(page_raw), int(count_raw)

        with self._lock:
            # The server counts first, then reads the page: the two are not atomic.
            total = self._count(q)
            landing = self.faults.landing_per_request
            if landing > 0 and self.faults.stream in (None, stream):
                self._land(q, landing)
                entry["fault"] = "landing_per_request"
            offset = (page - 1) * count
            short = False
            if page > 1 and self._take_fault("repeat_previous_page", stream):
                entry["fault"] = "repeat_previous_page"
                offset -= count
            elif page > 1 and self._take_fault("short_pages", stream):
                entry["fault"] = "short_pages"
                short = True
            data = self._page(q, offset, count, short=short)
            entry["total"] = total
            entry["returned"] = len(data)
        if self.dialect == "docs":
            envelope: dict[str, Any] = {"total": total, "batch": len(data), "page": page}
        else:
            envelope = {"total": total, "page_size": count_raw, "page": page_raw}
        return _json(200, rl_headers, {**envelope, "data": data})
