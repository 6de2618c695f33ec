"""A bounded open-loop HTTP/1.1 load generator on asyncio (loopback only).

Why not locust: locust's users are closed loops (each waits for its response before the next
request), so a slow server lowers the offered rate and hides its own queueing delay
("coordinated omission"); its gevent workers would also share this machine's two cores with
the server. Here request ``i`` is due at ``start + i / rate`` whatever happened before, and
its latency is measured from that due time, so a stall shows as latency of every request
due during it. The client is a few coroutines on keep-alive connections (no HTTP library
in the hot path), bounded in requests, connections and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from .._validation import ParetorecError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
T = TypeVar("T")
#: idle keep-alive connections older than this are not reused (uvicorn closes them at 5 s)
IDLE_SECONDS = 2.0
clock = time.perf_counter


@dataclass
class LoadResult:
    """Latencies (seconds, from each request's due time) and outcomes of one run."""

    rate: float
    duration: float
    latencies: np.ndarray
    statuses: list[int]
    errors: list[str]
    #: how late the generator itself sent requests (seconds; its own health check)
    send_lag: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wall_seconds: float = 0.0

    @property
    def n_requests(self) -> int:
        return len(self.statuses)

    @property
    def n_errors(self) -> int:
        """Requests that failed: a connection error, a timeout or a non-2xx status."""
        return sum(1 for s in self.statuses if not 200 <= s < 300)

    def percentile_ms(self, q: float) -> float:
        if not len(self.latencies):
            return float("nan")
        return float(np.percentile(self.latencies, q) * 1000.0)

    def metrics(self) -> dict[str, Any]:
        return {
            "offered_rps": self.rate,
            "seconds": self.duration,
            "requests": self.n_requests,
            "errors": self.n_errors,
            "achieved_rps": round(self.n_requests / self.wall_seconds, 2)
            if self.wall_seconds
            else None,
            "p50_ms": round(self.percentile_ms(50), 3),
            "p90_ms": round(self.percentile_ms(90), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "max_ms": round(float(self.latencies.max() * 1000.0), 3)
            if len(self.latencies)
            else None,
            "send_lag_p99_ms": round(float(np.percentile(self.send_lag, 99) * 1000.0), 3)
            if len(self.send_lag)
            else None,
            "error_kinds": sorted(set(self.errors))[:5],
        }


def check_loopback(host: str) -> str:
    if host not in LOOPBACK:
        raise ParetorecError(f"host must be a loopback address {LOOPBACK}, got {host!r}")
    return host


def http_request(
    method: str, path: str, body: Any = None, *, host: str = "127.0.0.1", token: str | None = None
) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request (``body`` is sent as JSON)."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.perf_counter()

    async def send(self, request: bytes) -> tuple[int, bytes, bool]:
        """Status, body, and whether the connection may be reused."""
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip().lower()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, body, headers.get("connection") != "close"

    def close(self) -> None:
        self.writer.close()


async def _open(host: str, port: int) -> _Connection:
    reader, writer = await asyncio.open_connection(host, port)
    return _Connection(reader, writer)


async def _open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    timeout: float,
    max_connections: int,
    on_response: Callable[[int, int, bytes], None] | None,
) -> LoadResult:
    n = len(requests)
    latencies = np.full(n, np.nan)
    statuses = [0] * n
    errors: list[str] = []
    lag = np.zeros(n)
    idle: list[_Connection] = []
    slots = asyncio.Semaphore(max_connections)

    async def one(i: int, due: float) -> None:
        async with slots:
            connection = None
            while idle and connection is None:
                connection = idle.pop()
                if clock() - connection.last_used > IDLE_SECONDS:
                    # the server may have closed it (keep-alive timeout) just as it is
                    # reused; a client retries that, so it would not count as an error
                    connection.close()
                    connection = None
            try:
                if connection is None:
                    connection = await asyncio.wait_for(_open(host, port), timeout)
                status, body, reusable = await asyncio.wait_for(
                    connection.send(requests[i]), timeout
                )
                statuses[i] = status
                if on_response is not None:
                    on_response(i, status, body)
                if reusable:
                    connection.last_used = clock()
                    idle.append(connection)
                else:
                    connection.close()
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                statuses[i] = -1
                errors.append(type(exc).__name__)
                if connection is not None:
                    connection.close()
            latencies[i] = clock() - due

    # time.perf_counter, not loop.time(): uvloop's clock has millisecond resolution
    started = clock() + 0.05
    tasks = []
    for i in range(n):
        due = started + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        lag[i] = max(clock() - due, 0.0)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    wall = clock() - started
    for connection in idle:
        connection.close()
    return LoadResult(
        rate=rate,
        duration=n / rate,
        latencies=latencies[np.isfinite(latencies)],
        statuses=statuses,
        errors=errors,
        send_lag=lag,
        wall_seconds=wall,
    )


def open_loop(
    port: int,
    requests: Sequence[bytes],
    rate: float,
    *,
    host: str = "127.0.0.1",
    timeout: float = 5.0,
    max_connections: int = 256,
    on_response: Callable[[int, int, bytes], None] | None = None,
    during: Callable[[], Any] | None = None,
) -> LoadResult:
    """Send ``requests`` (raw HTTP/1.1 bytes) open-loop at ``rate`` per second.

    ``during``, if given, is a blocking function run in a thread alongside the load (e.g.
    hot reloads); its result is discarded, its exceptions propagate.
    """
    check_loopback(host)
    if rate <= 0:
        raise ParetorecError(f"rate must be positive, got {rate!r}")

    async def main() -> LoadResult:
        load = asyncio.create_task(
            _open_loop(host, port, requests, rate, timeout, max_connections, on_response)
        )
        if during is not None:
            await asyncio.to_thread(during)
        return await load

    with frozen_heap():
        return run_async(main())


@contextlib.contextmanager
def frozen_heap() -> Any:
    """The generator's own heap (torch and the bundle it imported or read) moved out of the
    garbage collector's reach while it times requests, restored afterwards.

    Without it a full collection walks every object the benchmark process holds: 100-370 ms
    pauses were logged in the client (``gc.callbacks``) while the server logged none, and
    they showed as latency spikes of the server plus a late send schedule (``send_lag``).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed: less of the generator's own CPU per
    request, which it takes from the server it measures (they share the cores)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def wait_until_up(
    port: int,
    path: str = "/health",
    *,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
    interval: float = 0.05,
) -> float:
    """Seconds until ``GET path`` answers 200 (raises after ``timeout``)."""
    import http.client

    check_loopback(host)
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=2.0)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return time.perf_counter() - started
            connection.close()
        except OSError:
            pass
        time.sleep(interval)
    raise ParetorecError(f"server on {host}:{port} did not answer {path} within {timeout}s")
