"""The socket side: a threading HTTP/1.1 server that writes each answer byte by byte.

`_Server` accepts connections and hands every GET to `Simulator.handle`; `_Handler` writes the
`_Response` it gets back with the headers in the captures' order (ETag, Date, keep-alive with the
server's 5 s timeout), or half of it and a close (a truncated body), or an RST without an answer
(a reset connection). Deciding what to answer is `server.py`'s: this module never reads a query,
a key or a fault knob, and a client hanging up mid-answer is not an error here.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import logging
import socket
import struct
import sys
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

log = logging.getLogger(__package__)  # the package's one logger


@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    truncate: bool = False
    reset: bool = False


def _etag(body: bytes) -> str:
    digest = base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode()
    return f'W/"{len(body):x}-{digest[:27]}"'


class _Answers(Protocol):
    """What the HTTP side needs of the simulator (server.Simulator)."""

    def _connected(self) -> None: ...

    def handle(self, path: str, auth: str | None) -> _Response: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: _Answers

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up mid-answer on purpose in fault tests; that is not an error here.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
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
        headers = list(response.headers)
        date = email.utils.formatdate(usegmt=True)
        if response.status == 401:
            headers += [("Date", date), *self._connection(keep_alive)]
            headers.append(("Content-Length", str(len(response.body))))
        else:
            headers.append(("Content-Length", str(len(response.body))))
            headers.append(("ETag", _etag(response.body)))
            headers += [("Date", date), *self._connection(keep_alive)]
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        head = f"HTTP/1.1 {response.status} {phrase}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        body = response.body[: len(response.body) // 2] if response.truncate else response.body
        self.wfile.write(head.encode("latin-1") + body)
        self.wfile.flush()
        if not keep_alive:
            self.close_connection = True

    @staticmethod
    def _connection(keep_alive: bool) -> list[tuple[str, str]]:
        if keep_alive:
            return [("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")]
        return [("Connection", "close")]

    def _reset(self) -> None:
        # SO_LINGER 0: the close sends RST, as a crashed proxy or a killed worker would. Closing
        # here (the fd really goes once rfile is closed) keeps the server from sending FIN first.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)
