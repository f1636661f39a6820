"""A RecentCalls server of pre-rendered pages, in its own process, for the benchmarks.

It answers `GET /v1/Accounts/<sid>/RecentCalls?page=N&count=500...` with page N of the day
registered under <sid> (benchmarks.pages.sid_for), no rate limit and no RateLimit headers (a
self-hosted server without a limiter), after an optional added latency. Pages are bytes in memory,
so serving costs a header and a write: the server must never be the bottleneck, and its CPU time
is reported (`GET /__cpu`). `GET /__latency?ms=20` sets the added latency. Loopback only.

Run: `python -m benchmarks.server --day 100000:path --day 200000:path` prints `port <n>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from benchmarks import pages


class Server:
    def __init__(self, days: dict[str, list[bytes]]) -> None:
        self.days = days
        self.totals = {sid: sum(_count(p) for p in ps) for sid, ps in days.items()}
        self.latency_s = 0.0
        self.requests = 0

    def answer(self, target: str) -> tuple[int, bytes]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        if url.path == "/__cpu":
            t = time.process_time()
            return 200, json.dumps({"cpu_s": t, "requests": self.requests}).encode()
        if url.path == "/__latency":
            self.latency_s = float(query.get("ms", ["0"])[0]) / 1000
            return 200, b"{}"
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[3] != "RecentCalls" or parts[2] not in self.days:
            return 404, b'{"msg":"not found"}'
        self.requests += 1
        day = self.days[parts[2]]
        page = int(query.get("page", ["1"])[0])
        data = day[page - 1] if 1 <= page <= len(day) else b"[]"
        head = b'{"total":%d,"page_size":"500","page":"%d","data":' % (
            self.totals[parts[2]],
            page,
        )
        return 200, head + data + b"}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                status, body = self.answer(target)
                if self.latency_s and not target.startswith("/__"):
                    await asyncio.sleep(self.latency_s)
                writer.write(
                    b"HTTP/1.1 %d OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                    b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n" % (status, len(body))
                )
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _count(data: bytes) -> int:
    return data.count(b'"attempted_at":')


async def _serve(server: Server, port: int) -> None:
    srv = await asyncio.start_server(server.handle, "127.0.0.1", port, limit=1 << 16)
    print(f"port {srv.sockets[0].getsockname()[1]}", flush=True)
    async with srv:
        await srv.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server")
    parser.add_argument("--day", action="append", default=[], help="CALLS:PATH of a pages file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    days = {}
    for spec in args.day:
        calls, _, path = spec.partition(":")
        days[pages.sid_for(int(calls))] = pages.read(Path(path))
    asyncio.run(_serve(Server(days), args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
