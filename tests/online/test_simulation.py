"""Segmented users with known rewards; A/B tests, OPE and the bandit on them; the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from paretorec import ParetorecError
from paretorec.cli import app
from paretorec.data import simulate_segmented_users
from paretorec.online._simulation import (
    DEFAULT_ARMS,
    context_spec,
    demo_simulation,
    encode_users,
    run_simulation,
)

ARMS = np.array(list(DEFAULT_ARMS.values()))


def test_expected_rewards_are_exact_and_segments_differ() -> None:
    env = simulate_segmented_users(ARMS, n_users=500, seed=1)
    rewards = env.expected_rewards()
    z = env.scaled_objectives()
    u = 7
    manual = 1 / (
        1
        + np.exp(
            -(env.intercept + env.gain * env.segment_weights[env.segment[u]] @ z.T + env.effect[u])
        )
    )
    np.testing.assert_allclose(rewards[u], manual)
    # the value of a policy is the arrival-weighted mean of its expected rewards
    uniform = np.full(env.n_arms, 1 / env.n_arms)
    assert env.policy_value(uniform) == pytest.approx(float(env.arrival @ rewards.mean(axis=1)))
    assert len(set(env.best_arm_per_segment().tolist())) == 3  # each segment has its own best


def test_identical_segments_share_one_best_point() -> None:
    same = {"a": (0.5, 0.3, 0.2), "b": (0.5, 0.3, 0.2)}
    env = simulate_segmented_users(ARMS, n_users=300, segments=same, seed=0)
    assert len(set(env.best_arm_per_segment().tolist())) == 1


def test_encoded_contexts_match_the_spec() -> None:
    env = simulate_segmented_users(ARMS, n_users=50, seed=0)
    users = np.arange(10)
    np.testing.assert_allclose(
        encode_users(env, users), context_spec(env).encode(env.contexts(users))
    )


def test_small_simulation_end_to_end() -> None:
    result = run_simulation(
        {
            "n_rounds": 4000,
            "seeds": [3],
            "n_users": 800,
            "ab_replicates": 40,
            "n_bootstrap": 100,
            "batch_size": 200,
        }
    )
    run = result["runs"][0]
    assert run["ab"]["lift"]["true"] == pytest.approx(
        run["arm_values"]["balanced"] - run["arm_values"]["accurate"]
    )
    assert 0 < run["ab"]["coverage"] <= 1
    assert run["bandit"]["regret_vs_random"] < 1.0  # learns something in 4,000 rounds
    assert abs(run["ope"]["estimates"]["dr"]["value"] - run["ope"]["true_value_b"]) < 0.05
    assert set(result["summary"]) == {
        "bandit_regret_vs_random",
        "bandit_reward_lift_vs_best_fixed_point",
        "ope_dr_relative_error",
        "ab_ci_coverage",
    }


def test_demo_simulation_writes_a_plot(tmp_path: Path) -> None:
    summary, figure = demo_simulation(tmp_path, n_rounds=1500, n_users=300)
    assert figure.is_file() and figure.stat().st_size > 1000
    assert summary["arm_a"] == "accurate" and "lift" in summary


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"arm_a": "nope"}, r"arm_a must be one of"),
        ({"n_rounds": 0}, r"n_rounds must be a positive int"),
        ({"colour": 1}, r"unknown key\(s\) \['colour'\]"),
    ],
)
def test_bad_configs(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        run_simulation(config)


def test_bad_simulator_arguments() -> None:
    with pytest.raises(ParetorecError, match=r"arm_objectives must have shape \(n_arms >= 2, 3\)"):
        simulate_segmented_users(np.ones((3, 2)))
    with pytest.raises(ParetorecError, match=r"arm_names must name each of the 5 arms"):
        simulate_segmented_users(ARMS, arm_names=["x"])


def test_cli_simulate_and_ope(tmp_path: Path) -> None:
    config = tmp_path / "sim.json"
    config.write_text(
        json.dumps(
            {"n_rounds": 1500, "seeds": [0], "n_users": 300, "ab_replicates": 10, "n_bootstrap": 50}
        )
    )
    runner = CliRunner()
    done = runner.invoke(app, ["simulate", str(config), "--output", str(tmp_path / "r.json")])
    assert done.exit_code == 0, done.output
    assert "lift B-A" in done.output and (tmp_path / "r.json").is_file()
    rng = np.random.default_rng(0)
    logs = pd.DataFrame(
        {"point": rng.choice(["x", "y"], 400), "reward": rng.integers(0, 2, 400), "propensity": 0.5}
    )
    logs.to_csv(tmp_path / "logs.csv", index=False)
    done = runner.invoke(
        app, ["ope", str(tmp_path / "logs.csv"), "--policy", "x", "--n-bootstrap", "50"]
    )
    assert done.exit_code == 0, done.output
    assert "snips" in done.output and "dr" in done.output
    ranker = ["--reward-model", "ranker", "--n-bootstrap", "50"]
    done = runner.invoke(app, ["ope", str(tmp_path / "logs.csv"), "--policy", "x", *ranker])
    assert done.exit_code == 0, done.output
    assert "dm" in done.output and "dr" in done.output
    done = runner.invoke(
        app, ["ope", str(tmp_path / "logs.csv"), "--policy", "x", "--reward-model", "lgbm"]
    )
    assert done.exit_code != 0 and "reward_model must be one of" in done.output
    done = runner.invoke(app, ["ope", str(tmp_path / "logs.csv"), "--policy", "z"])
    assert done.exit_code != 0 and "unknown point 'z'" in done.output


def test_simulation_report_embeds_the_plot(tmp_path: Path) -> None:
    from paretorec.online import write_simulation_report

    summary, figure = demo_simulation(tmp_path, n_rounds=1000, n_users=200)
    page = write_simulation_report(summary, figure, tmp_path)
    text = page.read_text()
    assert "data:image/png;base64," in text and "lift B - A" in text
