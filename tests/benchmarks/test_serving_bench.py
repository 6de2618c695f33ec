"""Pieces of the serving benchmark: the open-loop load generator, the crash loop, the fuzzer.

The generator is tested against a small asyncio HTTP server (fast); the crash loop and the
fuzzer start the real service in child processes on the tiny bundle (slow: each start
imports the whole stack).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from paretorec import ParetorecError
from paretorec.benchmarks._loadgen import http_request, open_loop
from paretorec.benchmarks._serving import (
    Server,
    crash_test,
    fuzz_test,
    is_served_point,
    load_test,
    served_point,
)

from ..serving.conftest import build_tiny_bundle


class StallingServer:
    """HTTP/1.1 keep-alive server answering one request at a time; request ``stall_at``
    takes ``stall`` seconds (everything due meanwhile queues behind it)."""

    def __init__(
        self, stall_at: int, stall: float, service: float = 0.0, keep_alive: float | None = None
    ) -> None:
        self.stall_at, self.stall, self.service = stall_at, stall, service
        self.keep_alive = keep_alive  # close a connection idle this long (as uvicorn does)
        self.seen = 0
        self.port = 0
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = self.lock
        try:
            while True:
                if self.keep_alive is None:
                    head = await reader.readuntil(b"\r\n\r\n")
                else:
                    try:
                        head = await asyncio.wait_for(
                            reader.readuntil(b"\r\n\r\n"), self.keep_alive
                        )
                    except asyncio.TimeoutError:
                        writer.close()
                        return
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length")),
                    0,
                )  # fmt: skip
                await reader.readexactly(length)
                async with lock:
                    self.seen += 1
                    if self.seen == self.stall_at:
                        await asyncio.sleep(self.stall)
                    if self.service:
                        await asyncio.sleep(self.service)
                body = b'{"ok": true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _main(self) -> None:
        self.lock = asyncio.Lock()
        self.stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self.loop = asyncio.get_running_loop()
        self.ready.set()
        async with server:
            await self.stop.wait()

    def __enter__(self) -> StallingServer:
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


def test_open_loop_counts_a_stall_in_every_request_due_during_it() -> None:
    """Open loop: requests keep being sent during a 0.3 s stall, and each waits from its due
    time; a closed-loop client would send nothing then and report one slow request."""
    rate, n = 200.0, 200
    requests = [http_request("POST", "/x", {"i": i}) for i in range(n)]
    with StallingServer(stall_at=40, stall=0.3) as server:
        result = open_loop(server.port, requests, rate)
    assert result.n_requests == n and result.n_errors == 0
    slow = int((result.latencies > 0.1).sum())
    assert slow >= 0.15 * rate  # >= 30 requests were due during the stall's first 0.2 s
    assert result.percentile_ms(99) > 200 and result.percentile_ms(10) < 50
    assert 0.9 < result.duration <= result.wall_seconds + 0.5
    metrics = result.metrics()
    assert metrics["requests"] == n and metrics["errors"] == 0 and metrics["p50_ms"] > 0


def test_open_loop_does_not_reuse_connections_the_server_may_have_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server closes keep-alive connections idle for 0.15 s; requests 0.3 s apart would
    each find their idle connection closed (an error a real client retries) unless the
    generator drops connections idle longer than ``IDLE_SECONDS``."""
    from paretorec.benchmarks import _loadgen

    requests = [http_request("GET", "/health") for _ in range(4)]
    with StallingServer(stall_at=0, stall=0.0, keep_alive=0.15) as server:
        monkeypatch.setattr(_loadgen, "IDLE_SECONDS", 1000.0)
        stale = open_loop(server.port, requests, 1 / 0.3)
        monkeypatch.setattr(_loadgen, "IDLE_SECONDS", 0.05)
        fresh = open_loop(server.port, requests, 1 / 0.3)
    assert stale.n_errors >= 1  # the failure the check prevents is real
    assert fresh.n_errors == 0 and fresh.n_requests == 4


def test_open_loop_counts_refused_connections_as_errors() -> None:
    with StallingServer(stall_at=0, stall=0.0) as server:
        port = server.port
    requests = [http_request("GET", "/health") for _ in range(5)]
    result = open_loop(port, requests, 100.0, timeout=2.0)
    assert result.n_errors == 5 and set(result.statuses) == {-1}


def test_rate_search_finds_the_highest_rate_under_the_p99_target() -> None:
    """One request at a time, 2 ms each (a few hundred per second at most, fewer on a busy
    machine): 800 per second overloads it and p99 grows without bound; the search halves
    the rate from that first miss until p99 < 50 ms holds."""
    from rich.console import Console

    from paretorec.benchmarks._serving import rate_search

    with StallingServer(stall_at=0, stall=0.0, service=0.002) as server:
        best, steps = rate_search(
            server.port, ["u"], 0, rates=[800.0, 1600.0], seconds=0.25, console=Console(quiet=True)
        )
    held = [step["metrics"]["held"] for step in steps]
    rates = [step["metrics"]["offered_rps"] for step in steps]
    assert rates == [800.0 / 2**i for i in range(len(steps))]  # 1600 never tried
    assert held == [False] * (len(steps) - 1) + [True]
    assert best == rates[-1] and 5 <= best <= 400
    assert steps[0]["metrics"]["p99_ms"] > 50 > steps[-1]["metrics"]["p99_ms"]


@pytest.mark.parametrize(
    ("host", "rate", "message"),
    [
        ("10.0.0.1", 10.0, "host must be a loopback address"),
        ("example.org", 10.0, "host must be a loopback address"),
        ("127.0.0.1", 0.0, "rate must be positive, got 0.0"),
    ],
)
def test_open_loop_refuses_bad_targets(host: str, rate: float, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        open_loop(1, [http_request("GET", "/")], rate, host=host)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield build_tiny_bundle(tmp_path_factory.mktemp("bench") / "bundle")


@pytest.mark.slow
def test_crash_loop_loses_no_acknowledged_event(bundle: Path, tmp_path: Path) -> None:
    result = crash_test(bundle, tmp_path, cycles=3, seed=1, kill_window=(0.2, 0.6))
    assert result["cycles"] == 3 and result["acked_events"] > 0
    assert result["acked_lost"] == 0 and result["duplicates"] == 0
    # every acknowledged event, replayed at the end, is answered as a duplicate
    assert result["replayed_acked_answered_duplicate"] == result["acked_events"]
    assert result["replayed_acked_stored_again"] == 0
    assert result["stored_events"] >= result["acked_events"]


@pytest.mark.slow
def test_service_load_and_fuzz(bundle: Path, tmp_path: Path) -> None:
    from paretorec.serving import load_bundle

    loaded = load_bundle(bundle)
    users, point = loaded.user_ids.tolist(), served_point(loaded)
    url = f"sqlite:///{tmp_path / 'feedback.sqlite3'}"
    with Server(bundle, url, log=tmp_path / "server.log") as server:
        result = load_test(server.port, users, point, rate=50.0, seconds=1.0)
        assert result.n_requests == 50 and result.n_errors == 0, result.metrics()
        body = json.loads(asyncio.run(_recommend_once(server.port, users[0], point)).decode())
        assert body["point"]["id"] == point and len(body["items"]) == 10
        fuzz = fuzz_test(server.port, tmp_path, max_examples=2, max_seconds=90)
    assert {"POST /recommend", "POST /feedback", "POST /items", "POST /admin/reload"} <= set(
        fuzz["operations"]
    )
    assert {"200", "422"} <= set(fuzz["statuses"])
    assert fuzz["server_errors"] == fuzz["server_errors_by_server_metrics"]
    assert fuzz["server_errors"] == 0, fuzz["examples"]


async def _recommend_once(port: int, user: object, point: int) -> bytes:
    from paretorec.benchmarks._loadgen import _open

    connection = await _open("127.0.0.1", port)
    try:
        request = http_request("POST", "/recommend", {"user_id": user, "k": 10, "point": point})
        status, body, _ = await connection.send(request)
    finally:
        connection.close()
    assert status == 200
    return body


def test_served_point_is_ranker_fusion_with_mmr(bundle: Path) -> None:
    from paretorec.ranking import Policy
    from paretorec.serving import load_bundle

    fused = {"candidate": 0.7, "engage": 0.3}
    assert is_served_point(Policy(weights=fused, reranker="mmr"))
    assert not is_served_point(Policy(weights=fused))
    assert not is_served_point(Policy(reranker="mmr"))
    loaded = load_bundle(bundle)
    # the tiny bundle has no ranker: the point with the best validation nDCG stands in
    best = max(loaded.points, key=lambda p: p.validation["ndcg"])
    assert served_point(loaded) == best.id


def test_explanation_fidelity_on_a_user_sample(bundle: Path) -> None:
    from paretorec.benchmarks._serving import explanation_fidelity

    result = explanation_fidelity(bundle, n_users=8, seed=0)
    assert result["users"] == 8 and result["checked"] > 0
    assert result["pass_rate"] == result["passed"] / result["checked"] >= 0.9


@pytest.mark.slow
def test_fork_server_serves_and_leaves_no_server_behind(bundle: Path, tmp_path: Path) -> None:
    """Each forked child serves the bundle on its own port; one still alive when the
    context exits (an error mid-cycle) is killed and reaped, not left serving."""
    import os

    from paretorec.benchmarks._forkserver import ForkServer
    from paretorec.benchmarks._loadgen import wait_until_up

    url = f"sqlite:///{tmp_path / 'fb.sqlite3'}"
    with ForkServer(bundle, url, log=tmp_path / "fork.log") as forks:
        first = forks.start()
        first.kill()
        assert forks.children == set()
        second = forks.start()
        assert second.port != first.port or second.process.pid != first.process.pid
        wait_until_up(second.port, timeout=5)
        pid = second.process.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped (a zombie would still accept signal 0)
    with pytest.raises(ParetorecError, match="did not answer"):
        wait_until_up(second.port, timeout=0.3)


def test_the_load_generator_times_with_its_heap_frozen() -> None:
    """Full collections of the client's heap paused it for 100-370 ms during timed loads."""
    import gc

    from paretorec.benchmarks._loadgen import frozen_heap

    before = gc.get_freeze_count()
    held = [[i] for i in range(1000)]
    with frozen_heap():
        assert gc.get_freeze_count() >= before + len(held)
    assert gc.get_freeze_count() == before
