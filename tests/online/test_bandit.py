"""The operating-point bandit: propensities, learning, durable state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from paretorec import ParetorecError
from paretorec.online import ContextSpec, OperatingPointBandit, RewardSpec

SPEC = ContextSpec({"segment": ["a", "b", "c"]}, ["activity"])
TRUTH = np.array([[0.3, 0.1, 0.1], [0.1, 0.3, 0.1], [0.1, 0.1, 0.3]])
SRC = Path(__file__).resolve().parents[2] / "src"


def _train(policy: str, rounds: int = 6, batch: int = 300, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    bandit = OperatingPointBandit(["x", "y", "z"], policy=policy, context=SPEC, seed=1)
    for _ in range(rounds):
        segments = rng.integers(0, 3, batch)
        contexts = [{"segment": "abc"[s], "activity": int(rng.integers(0, 30))} for s in segments]
        arms, propensities = bandit.choose_batch(contexts)
        assert ((propensities > 0) & (propensities <= 1)).all()
        rewards = rng.random(batch) < TRUTH[segments, arms]
        bandit.update_batch(arms, contexts, rewards.astype(float))
    return bandit


@pytest.mark.parametrize("policy", ["epsilon_greedy", "linucb", "thompson"])
def test_learns_the_best_point_per_segment(policy: str) -> None:
    bandit = _train(policy)
    probabilities = bandit.probabilities([{"segment": s, "activity": 5} for s in "abc"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities.argmax(axis=1) == [0, 1, 2]).all(), probabilities
    assert probabilities.min() >= bandit.epsilon / 3 - 1e-12


@pytest.mark.parametrize("policy", ["epsilon_greedy", "linucb", "thompson"])
def test_propensities_match_choice_frequencies(policy: str) -> None:
    bandit = _train(policy, rounds=2, batch=100)
    context = {"segment": "b", "activity": 3}
    expected = bandit.probabilities([context])[0]
    arms, propensities = bandit.choose_batch([context] * 20_000)
    observed = np.bincount(arms, minlength=3) / len(arms)
    np.testing.assert_allclose(observed, expected, atol=0.015)
    np.testing.assert_allclose(propensities, expected[arms])


def test_epsilon_greedy_propensity_is_exact() -> None:
    bandit = OperatingPointBandit(["x", "y", "z"], policy="epsilon_greedy", epsilon=0.3)
    # untrained: all arms tie, so every arm has probability 1/3
    np.testing.assert_allclose(bandit.probabilities([None]), [[1 / 3] * 3])
    bandit.update("y", None, 1.0)
    np.testing.assert_allclose(bandit.probabilities([None]), [[0.1, 0.8, 0.1]])
    choice = bandit.choose()
    assert choice.propensity == pytest.approx(0.8 if choice.arm == "y" else 0.1)


def test_reward_combines_signals() -> None:
    spec = RewardSpec({"click": 1.0, "purchase": 3.0, "rating": 2.0, "diversity": 0.5})
    assert spec({"click": 1, "purchase": True, "rating": 5, "diversity": 0.4}) == pytest.approx(
        1 + 3 + 2 + 0.2
    )
    assert spec({"click": 0}) == 0.0
    assert spec({"rating": 1}) == 0.0  # the scale's low end
    bandit = OperatingPointBandit(["x", "y"], policy="linucb", reward=spec)
    bandit.update("x", None, {"click": 1, "purchase": 1})
    assert bandit.log()[2].tolist() == [4.0]


def test_context_encoding() -> None:
    rows = SPEC.encode([{"segment": "b", "activity": 9}, {"segment": "zzz"}, None])
    np.testing.assert_allclose(rows[0], [1, 0, 1, 0, np.log(10)])
    np.testing.assert_allclose(rows[1], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(rows[2], [1, 0, 0, 0, 0])


def test_save_load_round_trip(tmp_path: Path) -> None:
    bandit = _train("thompson", rounds=2)
    path = bandit.save(tmp_path / "state" / "bandit.safetensors")
    loaded = OperatingPointBandit.load(path)
    contexts = [{"segment": s, "activity": 2} for s in "abc"]
    np.testing.assert_allclose(loaded.probabilities(contexts), bandit.probabilities(contexts))
    assert loaded.n_observations == bandit.n_observations and loaded.arms == bandit.arms
    assert loaded.config() == bandit.config()
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_corrupt_state_is_refused(tmp_path: Path) -> None:
    path = _train("linucb", rounds=1).save(tmp_path / "b.safetensors")
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ParetorecError, match=r"is corrupt or not a saved bandit"):
        OperatingPointBandit.load(path)
    with pytest.raises(ParetorecError, match=r"no saved bandit at"):
        OperatingPointBandit.load(tmp_path / "missing")


_WRITER = """
import sys
from paretorec.online import OperatingPointBandit, ContextSpec
path = sys.argv[1]
bandit = OperatingPointBandit(["x", "y", "z"], policy="thompson",
                              context=ContextSpec({"segment": ["a", "b"]}))
n = 0
while True:
    choice = bandit.choose({"segment": "ab"[n % 2]})
    bandit.update(choice.arm, {"segment": "ab"[n % 2]}, float(n % 3 == 0))
    bandit.save(path)
    n += 1
    print(n, flush=True)  # acknowledged: saved before this line
"""


def test_state_survives_kill_9_while_saving(tmp_path: Path) -> None:
    path = tmp_path / "bandit.safetensors"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    for attempt in range(2):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        acknowledged = 0
        deadline = time.monotonic() + 60
        while acknowledged < 20 + 15 * attempt and time.monotonic() < deadline:
            acknowledged = int(process.stdout.readline())
        time.sleep(0.01 * attempt)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        loaded = OperatingPointBandit.load(path)  # never a torn file
        assert loaded.n_observations >= acknowledged
        assert not [p for p in tmp_path.iterdir() if p.name != path.name] or all(
            p.name.startswith(".") for p in tmp_path.iterdir() if p.name != path.name
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: OperatingPointBandit(["x"]), r"arms must be a list of at least 2 arm names"),
        (lambda: OperatingPointBandit(["x", "x"]), r"arms must be distinct"),
        (lambda: OperatingPointBandit(["x", "y"], policy="ucb1"), r"policy must be one of"),
        (lambda: OperatingPointBandit(["x", "y"], epsilon=1.5), r"epsilon must be a number in"),
        (lambda: OperatingPointBandit(["x", "y"], alpha=0), r"alpha must be a positive finite"),
        (lambda: OperatingPointBandit(["x", "y"]).update("w", None, 1.0), r"arm must be one of"),
        (lambda: OperatingPointBandit(["x", "y"]).update(5, None, 1.0), r"index in 0..1, got 5"),
        (
            lambda: OperatingPointBandit(["x", "y"]).update("x", None, float("nan")),
            r"reward must be a finite number or a dict of signals",
        ),
        (lambda: OperatingPointBandit(["x", "y"]).choose("a"), r"context must be a dict"),
        (lambda: RewardSpec({"clicks": 1.0}), r"unknown signal 'clicks'"),
        (lambda: RewardSpec({"click": "1"}), r"weights\['click'\] must be a finite number"),
        (lambda: ContextSpec({"segment": []}), r"categorical\['segment'\] must be a non-empty"),
        (lambda: SPEC.encode([{"activity": "many"}]), r"context\['activity'\] must be a number"),
    ],
)
def test_bad_inputs(make: Any, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        make()
