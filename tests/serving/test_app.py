"""The HTTP app in-process (TestClient) and over a real socket (uvicorn on loopback)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from paretorec.serving import Recommender, ServiceSettings, create_app

from .conftest import WordEncoder

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tiny_bundle: Path, tmp_path: Path):
    settings = ServiceSettings(
        admin_token=TOKEN, feedback_url=str(tmp_path / "feedback.db"), encoder=WordEncoder()
    )
    with TestClient(create_app(tiny_bundle, settings)) as test_client:
        yield test_client


def test_recommend_with_preference_returns_the_offline_pick(client: TestClient) -> None:
    service = client.app.state.service
    expected = service.get().front.pick({"ndcg": 2, "ild": 1})
    response = client.post(
        "/recommend", json={"user_id": "u0", "k": 5, "preference": {"ndcg": 2, "ild": 1}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["point"]["id"] == expected and len(body["items"]) == 5
    assert body["request_id"] and all(item["propensity"] == 1.0 for item in body["items"])


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"user_id": "never-seen"}, 200, None),
        ({"k": 1000}, 422, "k must be at most 100"),
        ({"k": 0}, 422, None),
        ({"point": 42}, 422, "point must be a front point id"),
        ({"history": ["m1", "missing"]}, 422, "unknown item id"),
        ({"preference": {"ndcg": 1}, "point": 1}, 422, "at most one of"),
        ({"constraints": ["ndcg >= 99"]}, 422, "no front point meets"),
        ({"user_id": {"nested": 1}}, 422, None),
        ({"unexpected": 1}, 422, None),
    ],
)
def test_recommend_inputs(client: TestClient, body, status, detail) -> None:
    response = client.post("/recommend", json=body)
    assert response.status_code == status, response.text
    if detail:
        assert detail in response.json()["detail"]


def test_feedback_is_idempotent_and_observed(client: TestClient) -> None:
    seen: list = []
    client.app.state.service.get().observers.append(seen.extend)
    event = {
        "kind": "click",
        "item_id": "m3",
        "idempotency_key": "e-1",
        "request_id": "r-1",
        "user_id": "u0",
        "timestamp": 1_700_000_000.0,
        "point_id": 2,
    }
    first = client.post("/feedback", json={"events": [event, {**event, "idempotency_key": "e-2"}]})
    again = client.post("/feedback", json={"events": [event]})
    assert first.json() == {"stored": 2, "duplicates": 0, "committed": True}
    assert again.json() == {"stored": 0, "duplicates": 1, "committed": True}
    assert [e["idempotency_key"] for e in seen] == ["e-1", "e-2"]
    assert client.app.state.service.store.count() == 2
    assert client.get("/front").json()["feedback"] == {"2": {"click": 2}}
    bad = client.post("/feedback", json={"events": [{**event, "kind": "hover"}]})
    assert bad.status_code == 422


def test_items_need_the_token_and_become_recommendable(client: TestClient) -> None:
    item = {"item_id": "fresh", "text": "Soup spice kitchen recipe", "title": "Fresh soup"}
    assert client.post("/items", json={"items": [item]}).status_code == 401
    wrong = client.post("/items", json={"items": [item]}, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    assert client.post("/admin/reload", json={}).status_code == 401
    added = client.post("/items", json={"items": [item]}, headers=AUTH)
    assert added.status_code == 200 and added.json()["items"][0]["status"] == "created"
    listed = client.post("/recommend", json={"history": ["fresh"], "k": 3}).json()
    assert listed["fallback"] == "text"
    # a reload keeps the items added at run time
    reloaded = client.post("/admin/reload", json={}, headers=AUTH)
    assert reloaded.status_code == 200 and reloaded.json()["items"] == 61


def test_front_health_metrics_openapi_and_body_limit(client: TestClient) -> None:
    client.post("/recommend", json={"user_id": "u1", "point": 3})
    front = client.get("/front").json()
    assert len(front["points"]) == 7 and front["traffic"] == {"3": 1}
    assert client.get("/health").json()["status"] == "ok"
    metrics = client.get("/metrics").text
    assert 'paretorec_recommendations_total{point="3"} 1.0' in metrics
    assert 'paretorec_request_latency_seconds_bucket{le="0.005",route="/recommend"}' in metrics
    schema = client.get("/openapi.json").json()
    assert {"/recommend", "/feedback", "/items", "/front", "/admin/reload"} <= set(schema["paths"])
    huge = client.post(
        "/recommend", content=b" " * 2_000_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413


def test_reload_while_serving_fails_no_request(client: TestClient) -> None:
    failures: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = client.post("/recommend", json={"user_id": "u2"})
            if response.status_code != 200:
                failures.append(response.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        assert client.post("/admin/reload", json={}, headers=AUTH).status_code == 200
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == [] and client.get("/health").json()["reloads"] == 3
    for path in ("/no/such/bundle", "nul\u0000byte", str(REPO / "README.md")):
        bad = client.post("/admin/reload", json={"bundle": path}, headers=AUTH)
        assert bad.status_code == 422, bad.text
    assert client.get("/health").json()["reloads"] == 3


def test_recommender_object_can_be_served(tiny_bundle: Path, tmp_path: Path) -> None:
    recommender = Recommender(tiny_bundle, encoder=WordEncoder())
    settings = ServiceSettings(admin_token=None, feedback_url=str(tmp_path / "f.db"))
    with TestClient(create_app(recommender, settings)) as client:
        assert client.post("/recommend", json={"user_id": "u3"}).status_code == 200
        closed = client.post("/items", json={"items": [{"item_id": "x", "text": "t"}]})
        assert closed.status_code == 401 and "PARETOREC_ADMIN_TOKEN" in closed.json()["detail"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_real_socket_and_sighup_reload(tiny_bundle: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "PARETOREC_FEEDBACK_URL": str(tmp_path / "feedback.db"),
        "OMP_NUM_THREADS": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "paretorec.cli", "serve", str(tiny_bundle), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(f"server did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        response = httpx.post(f"{base}/recommend", json={"user_id": "u5", "k": 3}, timeout=10)
        assert response.status_code == 200 and len(response.json()["items"]) == 3
        server.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/health", timeout=5).json()["reloads"] < 1:
            assert time.monotonic() < deadline, "SIGHUP did not reload the bundle"
            time.sleep(0.2)
        assert (
            httpx.post(f"{base}/recommend", json={"user_id": "u5"}, timeout=10).status_code == 200
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_feedback_is_read_in_the_next_list(client: TestClient) -> None:
    """Read-your-writes: a click joins the user's history for the next /recommend."""
    before = client.post("/recommend", json={"user_id": "newcomer", "k": 5, "point": 0}).json()
    assert before["fallback"] == "popularity"
    clicked = before["items"][0]["item_id"]
    events = [
        {"kind": "click", "item_id": clicked, "user_id": "newcomer", "idempotency_key": "c1"},
        {"kind": "impression", "item_id": "m59", "user_id": "newcomer", "idempotency_key": "c2"},
    ]
    assert client.post("/feedback", json={"events": events}).json()["stored"] == 2
    after = client.post("/recommend", json={"user_id": "newcomer", "k": 5, "point": 0}).json()
    assert after["fallback"] is None and clicked not in {i["item_id"] for i in after["items"]}
    recommender = client.app.state.service.get()
    expected = recommender.recommend(history=[clicked], k=5, point=0)
    assert [i["item_id"] for i in after["items"]] == [i.item_id for i in expected.items]
    assert client.post("/admin/reload", json={}, headers=AUTH).status_code == 200
    again = client.post("/recommend", json={"user_id": "newcomer", "k": 5, "point": 0}).json()
    assert again["items"] == after["items"]


def test_auto_point_is_chosen_by_the_bandit_and_learns(tiny_bundle: Path, tmp_path: Path) -> None:
    state = tmp_path / "bandit.safetensors"
    settings = ServiceSettings(
        feedback_url=str(tmp_path / "feedback.db"),
        bandit="epsilon_greedy",
        bandit_state=str(state),
        admin_token=TOKEN,
    )
    with TestClient(create_app(tiny_bundle, settings)) as client:
        body = client.post("/recommend", json={"user_id": "u0", "point": "auto"}).json()
        assert body["point"]["chosen_by"] == "auto"
        propensity = body["items"][0]["propensity"]
        assert 0 < propensity <= 1 and {i["propensity"] for i in body["items"]} == {propensity}
        events = [
            {
                "kind": kind,
                "item_id": body["items"][0]["item_id"],
                "user_id": "u0",
                "request_id": body["request_id"],
                "point_id": body["point"]["id"],
                "propensity": propensity,
                "idempotency_key": f"auto-{kind}",
            }
            for kind in ("impression", "click")
        ]
        assert client.post("/feedback", json={"events": events}).json()["stored"] == 2
        assert client.app.state.service.bandit.bandit.n_observations == 1
        assert client.post("/admin/reload", json={}, headers=AUTH).status_code == 200
        again = client.post("/recommend", json={"history": ["m1"], "point": "auto"})
        assert again.json()["point"]["chosen_by"] == "auto"
    assert state.is_file()
    with TestClient(create_app(tiny_bundle, settings)) as client:  # a restart keeps learning
        assert client.app.state.service.bandit.bandit.n_observations == 1
    plain = ServiceSettings(feedback_url=str(tmp_path / "f2.db"), bandit=None)
    with TestClient(create_app(tiny_bundle, plain)) as client:
        refused = client.post("/recommend", json={"point": "auto"})
        assert refused.status_code == 422 and "online chooser" in refused.json()["detail"]
