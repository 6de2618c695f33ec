"""Serving benchmark: the HTTP service under load, hot reloads, crashes and hostile input.

Everything runs on loopback (127.0.0.1), server and load generator on the same machine:

* **bundle**: MovieLens-1M (3,706 items, 6,040 users); candidates from EASE (lambda 500, the
  best model on ML-1M in ``fullsort``), top 200; a multi-task ranker's engage probability
  fused with the candidate score; MMR re-ranking; k = 10. Operating points: a small grid of
  fusion weights x MMR strengths, evaluated on validation (carved from training), the
  non-dominated ones kept and re-evaluated on test. The partial ML-1M copy has no ratings,
  so every observed pair counts as engaged and the ranker learns ``engage`` only (observed
  vs sampled unobserved pairs).
* **load**: open-loop ``POST /recommend`` at 100 requests/s (see :mod:`._loadgen` for why
  not locust), then rising rates until p99 reaches 50 ms.
* **hot reload**: ``POST /admin/reload`` repeatedly during 100 requests/s; failed requests.
* **crash safety**: SIGKILL of the server at a random moment during a stream of
  ``/feedback`` posts, restart, resend what was not acknowledged (and some of what was), and
  finally check that every acknowledged event is stored exactly once.
* **fuzzing**: schemathesis against ``/openapi.json``; count of 5xx answers.
* **explanation fidelity**: removing the top cited history item lowers the item's
  candidate score, on a sample of users.

Timings taken on a busy machine are not headline figures: run the full benchmark quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from .._validation import ParetorecError, check_positive_int
from ._harness import make_result, print_rows, write_result
from ._loadgen import LoadResult, _open, http_request, open_loop, wait_until_up

#: the SLO the rate search holds
P99_TARGET_MS = 50.0
RATE = 100.0
K = 10
N_CANDIDATES = 200
EASE = {"regularization": 500.0}
#: the engage-only ranker fused with EASE (implicit data: observed vs sampled pairs)
RANKER: dict[str, Any] = {
    "sources": ["engage"],
    "refit": False,  # early stopping picks the epoch; no second fit (bundle build time)
    "rows": {"rating_column": "observed", "like_threshold": 1.0},
    "tasks": [{"name": "engage", "kind": "binary"}],
    "model": {"architecture": "mmoe", "embedding_dim": 16, "tower_units": [16]},
    "strategy": {"name": "fixed"},
    # one epoch (engage AUC 0.87 on test): the ranker's quality does not change the serving
    # cost, and the bundle is the same with and without --quick, so one build serves both
    "trainer": {"epochs": 1, "batch_size": 4096, "patience": 1, "seed": 0, "progress": False},
}
FUSION_WEIGHTS = (
    {"candidate": 1.0},
    {"candidate": 0.7, "engage": 0.3},
    {"candidate": 0.4, "engage": 0.6},
)
MMR_LAMBDAS = (None, 0.8, 0.6, 0.4)
TOKEN = "bench-serving-token"


# ---------------------------------------------------------------------------- bundle
def _policy_grid(k: int = K) -> list[Any]:
    from ..ranking import Policy

    grid = []
    for weights in FUSION_WEIGHTS:
        for mmr in MMR_LAMBDAS:
            extra = (
                {}
                if mmr is None
                else {"reranker": "mmr", "mmr_lambda": mmr, "mmr_similarity": "mean"}
            )
            grid.append(Policy(k=k, weights=dict(weights), **extra))
    return grid


def _implicit(dataset: Any) -> Any:
    """The dataset with an ``observed`` label (1 for every pair) for the funnel's rows."""
    interactions = dataset.interactions.assign(observed=np.float32(1.0))
    return replace(
        dataset,
        interactions=interactions,
        label_columns=(*dataset.label_columns, "observed"),
    )


def is_served_point(policy: Any) -> bool:
    """Ranker fusion and MMR re-ranking: the operating point the load targets."""
    return policy.reranker == "mmr" and policy.weights.get("engage", 0.0) > 0


def build_bundle(
    directory: str | Path,
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    console: Console | None = None,
) -> Path:
    """Fit the ML-1M bundle into ``directory`` (reused when its recipe is unchanged)."""
    from ..config import ParetoConfig
    from ..data import carve_validation, load_dataset, stratified_split
    from ..pareto import non_dominated_mask
    from ..pareto._features import choose_item_features, item_vectors
    from ..pareto._pipeline import _evaluator
    from ..serving import write_bundle

    console = console or Console()
    target = Path(directory)
    ranker = RANKER  # the same bundle with and without quick (see RANKER)
    recipe = {
        "dataset": "movielens-1m",
        "ease": EASE,
        "n_candidates": N_CANDIDATES,
        "ranker": ranker,
        "grid": [p.to_dict() for p in _policy_grid()],
        "version": 1,
    }
    stamp = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    stamp_file = target.parent / f"{target.name}.recipe"
    reusable = (target / "manifest.json").is_file() and stamp_file.is_file()
    if reusable and stamp_file.read_text().strip() == stamp:
        console.print(f"bundle: reusing {target} (recipe {stamp})")
        return target
    started = time.perf_counter()
    dataset = _implicit(load_dataset("movielens-1m", data_dir))
    config = ParetoConfig.from_dict(
        {
            "name": "serving_ml1m",
            "data": {"dataset": "movielens-1m"},
            "candidates": {"model": "ease", "params": EASE, "n_candidates": N_CANDIDATES},
            "objectives": {"names": ["ndcg", "ild", "coverage", "novelty"], "k": K},
            "search": {"storage": None},
            "ranker": ranker,
        }
    )
    data = config.data
    split = stratified_split(dataset, ratio=data.ratio, seed=data.seed)
    inner = carve_validation(split, ratio=data.validation_ratio, seed=data.validation_seed)
    if inner.valid is None:
        raise RuntimeError("carve_validation returned no validation part")
    choice = choose_item_features(
        dataset, "genres", config.objectives.item_groups, model_has_embeddings=False
    )
    vectors = item_vectors(dataset, choice)
    console.print(
        f"bundle: fitting EASE + ranker on {dataset.name} ({dataset.n_interactions:,} pairs)"
    )
    validation, _, ranker_epochs = _evaluator(
        dataset, inner.train, inner.valid, config, choice, vectors, console
    )
    fitted: dict[str, Any] = {}
    test, _, _ = _evaluator(
        dataset,
        split.train,
        split.test,
        config,
        choice,
        vectors,
        console,
        keep=fitted,
        ranker_epochs=ranker_epochs,
    )
    grid = _policy_grid()
    objectives = list(validation.objectives)
    valid_values = np.array([[validation.evaluate(p)[o] for o in objectives] for p in grid])
    keep = non_dominated_mask(valid_values, validation.directions)
    if not any(keep[i] and is_served_point(p) for i, p in enumerate(grid)):
        # the served point must be in the bundle even if the grid's front lacks one
        candidates = [i for i, p in enumerate(grid) if is_served_point(p)]
        keep[max(candidates, key=lambda i: valid_values[i, 0])] = True
    front = []
    for i in np.flatnonzero(keep):
        values = test.evaluate(grid[i])
        front.append(
            {
                "policy": grid[i].to_dict(),
                "validation": dict(zip(objectives, valid_values[i].tolist(), strict=True)),
                "test": {o: float(values[o]) for o in objectives},
            }
        )
    write_bundle(
        target,
        dataset=dataset,
        model=fitted["model"],
        ranker=fitted.get("ranker"),
        vectors=vectors,
        objectives=objectives,
        directions=validation.directions,
        front=front,
        config=config.model_dump(mode="json"),
        name="serving_ml1m",
        n_candidates=N_CANDIDATES,
    )
    stamp_file.write_text(stamp + "\n")
    console.print(
        f"bundle: {target} ({len(front)} points) built in {time.perf_counter() - started:.0f}s"
    )
    return target


# ---------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``uvicorn`` serving a bundle in a child process on 127.0.0.1 (one worker)."""

    def __init__(
        self,
        bundle: str | Path,
        feedback_url: str,
        *,
        port: int | None = None,
        log: str | Path | None = None,
        threads: int = 1,
    ) -> None:
        self.bundle = Path(bundle)
        self.feedback_url = feedback_url
        self.port = port or free_port()
        self.log = Path(log) if log else None
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds = float("nan")

    def start(self, timeout: float = 300.0) -> Server:
        env = {
            **os.environ,
            "PARETOREC_BUNDLE": str(self.bundle.resolve()),
            "PARETOREC_FEEDBACK_URL": self.feedback_url,
            "PARETOREC_ADMIN_TOKEN": TOKEN,
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
            "OPENBLAS_NUM_THREADS": str(self.threads),
            "TOKENIZERS_PARALLELISM": "false",
        }
        command = [
            sys.executable, "-m", "uvicorn", "paretorec.serving._app:app_from_env", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
            "--no-access-log",
        ]  # fmt: skip
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if self.log:
                output.close()  # type: ignore[union-attr]
        started = time.perf_counter()
        try:
            while True:
                if self.process.poll() is not None:
                    raise ParetorecError(
                        f"server exited with code {self.process.returncode} while starting"
                        + (f"; log: {self.log}" if self.log else "")
                    )
                try:
                    wait_until_up(self.port, timeout=0.5)
                    break
                except ParetorecError:
                    if time.perf_counter() - started > timeout:
                        raise
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.perf_counter() - started
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _get_json(port: int, path: str) -> Any:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return json.loads(response.read())
    finally:
        connection.close()


def _post(port: int, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        connection.request("POST", path, json.dumps(body).encode(), headers)
        response = connection.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text else None
    finally:
        connection.close()


# ---------------------------------------------------------------------------- load
def recommend_requests(
    users: Sequence[Any], point: int, n: int, *, seed: int = 0, k: int = K
) -> list[bytes]:
    """``n`` ``POST /recommend`` requests for users drawn uniformly (seeded) at ``point``."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, len(users), size=n)
    return [
        http_request("POST", "/recommend", {"user_id": users[int(i)], "k": k, "point": point})
        for i in chosen
    ]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def served_point(bundle: Any) -> int:
    """The id of the bundle's fusion + MMR point with the best validation accuracy."""
    points = [p for p in bundle.points if is_served_point(p.policy)] or list(bundle.points)
    accuracy = bundle.objectives[0]
    return int(max(points, key=lambda p: p.validation.get(accuracy, 0.0)).id)


def load_test(
    port: int, users: Sequence[Any], point: int, rate: float, seconds: float, seed: int = 0
) -> LoadResult:
    n = max(int(rate * seconds), 1)
    return open_loop(port, recommend_requests(users, point, n, seed=seed), rate)


def drain(
    port: int, users: Sequence[Any], point: int, *, quick_ms: float = 250.0, limit: float = 180.0
) -> float:
    """Wait until a single ``/recommend`` answers within ``quick_ms`` (requests that timed out
    on the client are still queued in the server); the seconds waited."""
    started = time.perf_counter()
    request = recommend_requests(users, point, 1, seed=int(started))[0]
    while time.perf_counter() - started < limit:
        result = open_loop(port, [request], 1.0, timeout=limit)
        if result.n_errors == 0 and result.percentile_ms(50) < quick_ms:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def rate_search(
    port: int,
    users: Sequence[Any],
    point: int,
    *,
    rates: Sequence[float],
    seconds: float,
    console: Console,
    floor: float = 5.0,
) -> tuple[float | None, list[dict[str, Any]]]:
    """Rising ``rates`` until p99 >= 50 ms or a request fails; the highest rate that held.

    If the first rate already misses, halve it until one holds (or below ``floor``: None).
    """
    best: float | None = None
    steps: list[dict[str, Any]] = []

    def attempt(rate: float) -> bool:
        drain(port, users, point)  # a missed step leaves a backlog in the server
        result = load_test(port, users, point, rate, seconds, seed=100 + len(steps))
        metrics = result.metrics()
        held = result.n_errors == 0 and result.percentile_ms(99) < P99_TARGET_MS
        steps.append({"name": f"rate {rate:g}/s", "metrics": {**metrics, "held": held}})
        console.print(
            f"  {rate:g} req/s: p50 {metrics['p50_ms']} ms, p99 {metrics['p99_ms']} ms, "
            f"errors {metrics['errors']} -> {'held' if held else 'missed'}"
        )
        return held

    for rate in rates:
        if not attempt(rate):
            break
        best = rate
    if best is None and rates:
        rate = rates[0] / 2
        while rate >= floor:
            if attempt(rate):
                best = rate
                break
            rate /= 2
    return best, steps


def reload_test(
    port: int, users: Sequence[Any], point: int, *, reloads: int, seconds: float
) -> tuple[LoadResult, list[dict[str, Any]]]:
    """``reloads`` hot reloads spread over a ``seconds`` stream at 100 requests/s."""
    outcomes: list[dict[str, Any]] = []
    gap = seconds / (reloads + 1)

    def reload_loop() -> None:
        for _ in range(reloads):
            time.sleep(gap)
            started = time.perf_counter()
            try:
                status, body = _post(port, "/admin/reload", {}, token=TOKEN)
            except OSError as exc:
                status, body = -1, str(exc)
            outcomes.append(
                {
                    "status": status,
                    "seconds": round(time.perf_counter() - started, 3),
                    "detail": None if status == 200 else body,
                }
            )

    n = int(RATE * seconds)
    result = open_loop(port, recommend_requests(users, point, n, seed=7), RATE, during=reload_loop)
    return result, outcomes


# ---------------------------------------------------------------------------- crash
async def _feedback_stream(
    port: int,
    cycle: int,
    kill_after: float,
    process: Any,  # Popen-like: poll(), send_signal()
    resend: list[dict[str, Any]],
    items: Sequence[Any],
    streams: int,
    max_events: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Post events until the server is killed; (acknowledged, unacknowledged, duplicates)."""
    loop = asyncio.get_running_loop()
    acked: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = list(resend)
    unacked: list[dict[str, Any]] = []
    duplicates_reported = 0
    counter = iter(range(max_events))

    def kill() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)

    loop.call_later(kill_after, kill)

    def next_event() -> dict[str, Any] | None:
        if pending:
            return pending.pop()
        i = next(counter, None)
        if i is None:
            return None
        return {
            "kind": "click",
            "item_id": _plain(items[(cycle * 7919 + i) % len(items)]),
            "idempotency_key": f"crash-{cycle}-{i}",
            "user_id": f"crash-user-{cycle}",
            "timestamp": time.time(),
            "point_id": 0,
            "position": i % K,
        }

    async def poster() -> None:
        nonlocal duplicates_reported
        try:
            connection = await _open("127.0.0.1", port)
        except OSError:
            return
        while True:
            event = next_event()
            if event is None:
                break
            request = http_request("POST", "/feedback", {"events": [event]})
            try:
                status, body, _ = await asyncio.wait_for(connection.send(request), 10.0)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                unacked.append(event)
                break
            answer = json.loads(body) if status == 200 else {}
            if status == 200 and answer.get("committed"):
                acked.append(event)
                duplicates_reported += int(answer.get("duplicates", 0))
            else:
                unacked.append(event)
        connection.close()
        # whatever this poster never got to is retried next cycle
        unacked.extend(pending)
        pending.clear()

    await asyncio.gather(*(poster() for _ in range(streams)))
    return acked, unacked, duplicates_reported


def crash_test(
    bundle: str | Path,
    directory: str | Path,
    *,
    cycles: int = 200,
    seed: int = 0,
    kill_window: tuple[float, float] = (0.05, 1.0),
    streams: int = 4,
    resend_acked: int = 3,
    console: Console | None = None,
) -> dict[str, Any]:
    """``cycles`` x (start, stream /feedback, SIGKILL at a random moment); then the check.

    Each cycle's server is a fresh process forked from a parent that imported the code and
    loaded the bundle once (:mod:`._forkserver`; a cold start imports for 5-10 s here); the
    server process opens the feedback store itself and is the one killed.

    Unacknowledged events are resent after each restart with the same idempotency key (as a
    client retrying would), and so are ``resend_acked`` already acknowledged ones, so the
    store's de-duplication is exercised across crashes. ``acked_lost``: acknowledged keys
    missing from the store; ``duplicates``: keys stored more than once plus stored events
    whose content differs from what was acknowledged, plus acknowledged events stored again
    when all of them are replayed against a restarted server at the end.
    """
    from ..serving import FeedbackStore, load_bundle

    cycles = check_positive_int(cycles, "cycles")
    console = console or Console()
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "crash_feedback.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database.resolve()}"
    items = [_plain(i) for i in load_bundle(bundle).item_ids[:500]]
    rng = random.Random(seed)
    acked: dict[str, dict[str, Any]] = {}
    retry: list[dict[str, Any]] = []
    reported_duplicates = 0
    startups = []
    from tqdm import tqdm

    from ._forkserver import ForkServer

    with ForkServer(bundle, url, log=folder / "crash_server.log") as forks:
        for cycle in tqdm(range(cycles), desc="crash cycles", leave=False):
            server = forks.start()
            startups.append(server.startup_seconds)
            resend = retry + [
                acked[k] for k in rng.sample(sorted(acked), min(resend_acked, len(acked)))
            ]
            kill_after = rng.uniform(*kill_window)
            got, retry, dup = asyncio.run(
                _feedback_stream(
                    server.port,
                    cycle,
                    kill_after,
                    server.process,
                    resend,
                    items,
                    streams,
                    100_000,
                )
            )
            server.kill()
            reported_duplicates += dup
            for event in got:
                acked[event["idempotency_key"]] = event
        # Replay every acknowledged event against a restarted server: each must be answered
        # as a duplicate and none stored again (idempotency across crashes, end to end).
        stored_again = answered_duplicate = 0
        server = forks.start()
        try:
            events = list(acked.values())
            for start in range(0, len(events), 500):
                status, answer = _post(
                    server.port, "/feedback", {"events": events[start : start + 500]}
                )
                if status != 200:
                    raise ParetorecError(f"replaying acknowledged events failed: {status} {answer}")
                stored_again += int(answer["stored"])
                answered_duplicate += int(answer["duplicates"])
        finally:
            server.kill()
    store = FeedbackStore(url)
    try:
        stored = store.events()
    finally:
        store.close()
    per_key = Counter(row["idempotency_key"] for row in stored)
    by_key = {row["idempotency_key"]: row for row in stored}
    lost = [key for key in acked if key not in per_key]
    repeated = sum(n - 1 for n in per_key.values() if n > 1)
    altered = sum(
        1
        for key, event in acked.items()
        if key in by_key and str(by_key[key]["item_id"]) != str(event["item_id"])
    )
    return {
        "cycles": cycles,
        "acked_events": len(acked),
        "stored_events": len(stored),
        "acked_lost": len(lost),
        "duplicates": repeated + altered + stored_again,
        "replayed_acked_stored_again": stored_again,
        "replayed_acked_answered_duplicate": answered_duplicate,
        "unacked_at_end": len(retry),
        "duplicates_answered_by_server": reported_duplicates,
        "startup_seconds_median": round(float(np.median(startups)), 3),
        "kill_window_seconds": list(kill_window),
        "lost_examples": lost[:5],
    }


# ---------------------------------------------------------------------------- fuzz
def fuzz_test(
    port: int,
    directory: str | Path,
    *,
    max_examples: int = 50,
    max_seconds: int = 300,
    seed: int = 0,
) -> dict[str, Any]:
    """schemathesis against ``/openapi.json`` (bearer token set); 5xx answers counted.

    The count is read from schemathesis's HAR record of every exchange (not its exit code,
    which also reflects schema-conformance findings) and cross-checked with the server's own
    Prometheus counters.
    """
    folder = Path(directory).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    har = folder / "fuzz.har"
    har.unlink(missing_ok=True)
    executable = shutil.which(
        "schemathesis", path=str(Path(sys.executable).parent)
    ) or shutil.which("schemathesis")
    if executable is None:
        raise ParetorecError("schemathesis is not installed (pip install schemathesis)")
    before = _server_errors(port)
    command = [
        executable, "run", f"http://127.0.0.1:{port}/openapi.json",
        "--checks", "not_a_server_error", "--max-examples", str(max_examples),
        "--seed", str(seed), "--workers", "1", "--no-shrink", "--generation-database", "none",
        "--max-time", str(max_seconds), "--request-timeout", "30",
        "--report", "har", "--report-har-path", str(har),
        "-H", f"Authorization: Bearer {TOKEN}", "--no-color",
    ]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(  # cwd: schemathesis keeps a .schemathesis/ folder there
        command, capture_output=True, text=True, timeout=max_seconds + 120, check=False, cwd=folder
    )
    (folder / "fuzz.log").write_text(completed.stdout + completed.stderr)
    entries = json.loads(har.read_text())["log"]["entries"] if har.is_file() else []
    statuses = Counter(int(e["response"]["status"]) for e in entries)
    server_side = _server_errors(port) - before
    errors = [
        f"{e['request']['method']} {e['request']['url']} "
        f"{(e['request'].get('postData') or {}).get('text', '')[:160]} -> "
        f"{e['response']['status']}"
        for e in entries
        if int(e["response"]["status"]) >= 500
    ]
    if not entries:
        raise ParetorecError(
            f"schemathesis recorded no requests (exit {completed.returncode}); see "
            f"{folder / 'fuzz.log'}"
        )
    from urllib.parse import urlsplit

    operations = sorted(
        {f"{e['request']['method']} {urlsplit(e['request']['url']).path}" for e in entries}
    )
    return {
        "requests": len(entries),
        "operations": operations,
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "server_errors_by_server_metrics": server_side,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "examples": errors[:5],
        "seconds": round(time.perf_counter() - started, 1),
        "exit_code": completed.returncode,
    }


def _server_errors(port: int) -> int:
    """5xx answers the server has counted (its ``paretorec_requests_total`` counter)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    total = 0
    for line in text.splitlines():
        if line.startswith("paretorec_requests_total{") and 'status="5' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


# ---------------------------------------------------------------------------- fidelity
def explanation_fidelity(
    bundle: str | Path, *, n_users: int, point: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """The deletion test of explanations (:func:`paretorec.serving.explanation_fidelity`)
    on ``n_users`` known users drawn at random (seeded), at ``point``."""
    from ..serving import Recommender
    from ..serving import explanation_fidelity as deletion_test

    recommender = Recommender.load(bundle)
    ids = recommender.bundle.user_ids
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(ids), size=min(n_users, len(ids)), replace=False)
    users = [_plain(ids[i]) for i in np.sort(chosen)]
    started = time.perf_counter()
    result = dict(deletion_test(recommender, users, k=K, point=point))
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


# ---------------------------------------------------------------------------- run
def bundle_or_build(
    bundle: str | Path | None,
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    work_dir: str | Path = "runs/serving_bench",
) -> Path:
    """``bundle`` if given, else the ML-1M bundle under ``work_dir`` (built once, reused)."""
    if bundle is not None:
        return Path(bundle)
    return build_bundle(Path(work_dir) / "bundle", data_dir=data_dir, quick=quick)


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    crash_cycles: int | None = None,
    bundle: str | Path | None = None,
    work_dir: str | Path = "runs/serving_bench",
) -> dict[str, Any]:
    """Build (or reuse) the ML-1M bundle, then the load, reload, crash, fuzz and fidelity
    runs; write ``<output_dir>/serving.json``."""
    console = Console()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cycles = crash_cycles if crash_cycles is not None else (20 if quick else 200)
    phases: dict[str, float] = {}
    run_started = time.perf_counter()

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            phases[name] = round(time.perf_counter() - started, 1)

    settings: dict[str, Any] = {
        "load_seconds": 10 if quick else 60,
        "rate_step_seconds": 3 if quick else 10,
        "rates": (100, 200, 400) if quick else (100, 150, 200, 250, 300, 400, 500, 600, 800, 1000),
        "reloads": 3 if quick else 10,
        "reload_seconds": 8 if quick else 40,
        "fuzz_examples": 10 if quick else 100,
        "fuzz_seconds": 60 if quick else 240,
        "fidelity_users": 30 if quick else 300,
    }
    from ..serving import load_bundle

    with phase("bundle"):
        path = (
            Path(bundle)
            if bundle
            else build_bundle(work / "bundle", data_dir=data_dir, quick=quick, console=console)
        )
    loaded = load_bundle(path)
    users = [_plain(u) for u in loaded.user_ids]
    point = served_point(loaded)
    policy = next(p.policy for p in loaded.points if p.id == point)
    del loaded
    console.print(f"serving point {point}: {policy.describe()}")
    rows: list[dict[str, Any]] = []
    feedback_db = work / "load_feedback.sqlite3"
    server_cm = Server(path, f"sqlite:///{feedback_db.resolve()}", log=work / "server.log")
    with phase("server_start"):
        server = server_cm.start()
    try:
        console.print(f"server up on 127.0.0.1:{server.port} in {server.startup_seconds:.1f}s")
        with phase("load_100rps"):
            load_test(server.port, users, point, 50, 4, seed=99)  # warm-up
            drain(server.port, users, point)
            main = load_test(server.port, users, point, RATE, settings["load_seconds"])
        rows.append({"name": f"open loop {RATE:g}/s", "metrics": main.metrics()})
        console.print(f"  {RATE:g} req/s for {settings['load_seconds']}s: {main.metrics()}")
        with phase("rate_search"):
            best, steps = rate_search(
                server.port,
                users,
                point,
                rates=settings["rates"],
                seconds=settings["rate_step_seconds"],
                console=console,
            )
        rows.extend(steps)
        with phase("hot_reload"):
            drain(server.port, users, point)
            reload_result, reloads = reload_test(
                server.port,
                users,
                point,
                reloads=settings["reloads"],
                seconds=settings["reload_seconds"],
            )
        failed_reloads = sum(1 for r in reloads if r["status"] != 200)
        reload_metrics = {
            **reload_result.metrics(),
            "reloads": len(reloads),
            "reloads_failed": failed_reloads,
            "reload_seconds_median": float(np.median([r["seconds"] for r in reloads])),
        }
        rows.append({"name": "hot reload", "metrics": reload_metrics})
        console.print(f"  reloads: {reloads}")
        with phase("fuzz"):
            fuzz = fuzz_test(
                server.port,
                work,
                max_examples=settings["fuzz_examples"],
                max_seconds=settings["fuzz_seconds"],
            )
        rows.append({"name": "fuzz", "metrics": fuzz})
        console.print(f"  fuzz: {fuzz}")
    finally:
        server.stop()
    with phase("crash"):
        crash = crash_test(path, work, cycles=cycles, console=console)
    rows.append({"name": "crash safety", "metrics": crash})
    console.print(f"  crash: {crash}")
    with phase("fidelity"):
        fidelity = explanation_fidelity(path, n_users=settings["fidelity_users"], point=point)
    rows.append({"name": "explanation fidelity", "metrics": fidelity})
    phases["total"] = round(time.perf_counter() - run_started, 1)
    phases["total_without_bundle"] = round(phases["total"] - phases["bundle"], 1)
    console.print(f"  phase seconds: {phases}")
    summary = {
        "p99_ms_at_100rps": round(main.percentile_ms(99), 3),
        "p50_ms_at_100rps": round(main.percentile_ms(50), 3),
        "errors_at_100rps": main.n_errors,
        "reload_failed_requests": reload_result.n_errors,
        "acked_lost": crash["acked_lost"],
        "duplicates": crash["duplicates"],
        "fuzz_server_errors": fuzz["server_errors"],
        "explanation_deletion_pass_rate": fidelity.get("pass_rate"),
        "max_rps_p99_under_50ms": best,
    }
    protocol = {
        "bundle": str(path),
        "dataset": "movielens-1m (3,706 items, 6,040 users; the implicit pairs: every observed "
        "pair is an engagement)",
        "candidates": f"EASE {EASE}, top {N_CANDIDATES}, fitted on the 75% training part",
        "ranker": "MMoE over the engage task (observed vs sampled unobserved pairs), fused "
        "with the candidate score",
        "served_point": {"id": point, "policy": policy.describe()},
        "server": f"uvicorn, 1 worker ({_uvicorn_stack()}), torch/BLAS threads 1, SQLite "
        "feedback store (WAL, synchronous=FULL), all on 127.0.0.1; a plain /recommend is "
        "computed on the event loop, explained ones on the thread pool",
        "machine": f"{os.cpu_count()} CPU cores shared by the server and the load generator "
        "(one process each, plus the fork server during the crash loop): the client's CPU "
        "time is taken from the server's",
        "load": "open-loop asyncio HTTP/1.1 client (keep-alive), request i due at i/rate; "
        "latency from the due time (no coordinated omission); known users drawn uniformly",
        "rate_search": f"rates {list(settings['rates'])} for {settings['rate_step_seconds']}s "
        f"each, stopping at the first with p99 >= {P99_TARGET_MS} ms or any error",
        "reload": f"{settings['reloads']} POST /admin/reload during {settings['reload_seconds']}s "
        "at 100 requests/s",
        "crash": f"{cycles} cycles: start, 4 concurrent /feedback streams, SIGKILL at a uniform "
        "random moment, restart; unacknowledged and 3 acknowledged events resent each cycle. "
        "Each cycle's server is a fresh process forked from a parent that imported the code "
        "and loaded the bundle once (a cold start imports for 5-10 s); the child opens the "
        "store itself (WAL recovery included) and is the process killed",
        "fuzz": f"schemathesis {settings['fuzz_examples']} examples per operation, "
        f"<= {settings['fuzz_seconds']}s, with the admin token",
        "settings": settings,
        "phase_seconds": phases,
        "quick": quick,
        "machine_note": "server and load generator share this machine; timings taken while "
        "other work runs are not headline figures",
    }
    result = make_result("serving", protocol=protocol, rows=rows, summary=summary)
    print_rows(
        "Serving under load (127.0.0.1)",
        [r for r in rows if "p99_ms" in r["metrics"]],
        ("offered_rps", "requests", "errors", "p50_ms", "p99_ms", "max_ms"),
    )
    console.print(f"summary: {summary}")
    target = write_result(result, output_dir)
    console.print(f"wrote {target}")
    return result


def _uvicorn_stack() -> str:
    """The event loop and HTTP parser uvicorn's ``auto`` picks here."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"loop {loop}, http {http}"


@contextlib.contextmanager
def _temporary_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="paretorec-serving-") as name:
        yield Path(name)
