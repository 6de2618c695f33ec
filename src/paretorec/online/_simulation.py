"""Simulated A/B tests and bandit runs against users whose true reward is known.

One run (:func:`run_simulation`) on :func:`paretorec.data.simulate_segmented_users`:

1. **A/B test**: ``n_rounds`` arriving users split at random between two fixed operating
   points A and B; each arm's mean reward with a 95 % normal interval, the lift B - A with
   a Welch interval, beside the exact values. Repeated ``ab_replicates`` times (vectorised)
   to measure how often the lift interval holds the true lift.
2. **Off-policy estimate of B from A's logs**: A served with a uniform exploration floor
   (``logging_epsilon``), its logs (with propensities) fed to IPS / SNIPS / DM / DR; the
   estimates are compared with B's exact value.
3. **Bandit**: an :class:`OperatingPointBandit` serving the same stream, updated in batches
   (delayed feedback); its cumulative (pseudo-)regret against the best fixed point per
   segment, beside uniform random's, and its reward against the best single point.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
from tqdm.auto import tqdm

from .._validation import ParetorecError, check_positive_int
from ..data._simulator import DEFAULT_SEGMENTS, SegmentedUsers, simulate_segmented_users
from ._bandit import OperatingPointBandit
from ._context import ContextSpec
from ._ope import LoggedFeedback, estimate_policy_value, fit_reward_model

#: A default front: five operating points from accurate to exploratory.
DEFAULT_ARMS: dict[str, tuple[float, float, float]] = {
    "accurate": (1.00, 0.00, 0.00),
    "balanced": (0.85, 0.45, 0.35),
    "mixed": (0.65, 0.70, 0.55),
    "diverse": (0.45, 0.90, 0.75),
    "novel": (0.25, 0.75, 1.00),
}

DEFAULTS: dict[str, Any] = {
    "arms": DEFAULT_ARMS,
    "segments": DEFAULT_SEGMENTS,
    "segment_shares": None,
    "n_users": 5_000,
    "n_rounds": 50_000,
    "seeds": [0, 1, 2],
    "arm_a": "accurate",
    "arm_b": "balanced",
    "policy": "thompson",
    # chosen on a validation seed (100, never reported): alpha 0.1 / 0.2 / 0.35 gave regret
    # ratios 0.18 / 0.13 / 0.17 for Thompson sampling (LinUCB 0.18 / 0.13 at 0.1 / 0.35);
    # the reward noise of a click is about 0.35, far below LinTS's unit-variance default
    "alpha": 0.25,
    "epsilon": 0.02,
    "batch_size": 500,
    # B is logged on epsilon / K of A's rounds: 0.5 gives B about 5,000 of 50,000 rounds,
    # an IPS standard error near 4 % of B's value for a 13 % click rate
    "logging_epsilon": 0.5,
    "ab_replicates": 200,
    "base_rate": 0.1,
    "gain": 1.5,
    "n_bootstrap": 1_000,
}


def load_simulation_config(source: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with a TOML / JSON file or a dict; validated."""
    given: dict[str, Any] = {}
    if isinstance(source, Mapping):
        given = dict(source)
    elif source is not None:
        path = Path(source)
        if not path.is_file():
            raise ParetorecError(f"config: no such file {path}")
        text = path.read_text()
        given = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        given = given.get("simulation", given)
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise ParetorecError(
            f"config: unknown key(s) {sorted(unknown)}; expected some of {sorted(DEFAULTS)}"
        )
    config = {**DEFAULTS, **given}
    arms = config["arms"]
    if not isinstance(arms, Mapping) or len(arms) < 2:
        raise ParetorecError(
            "config: arms must map >= 2 point names to [accuracy, diversity, novelty]"
        )
    for key in ("arm_a", "arm_b"):
        if config[key] not in arms:
            raise ParetorecError(
                f"config: {key} must be one of {', '.join(arms)}; got {config[key]!r}"
            )
    for key in ("n_users", "n_rounds", "batch_size", "ab_replicates", "n_bootstrap"):
        config[key] = check_positive_int(config[key], f"config: {key}")
    if isinstance(config["seeds"], int):
        config["seeds"] = [config["seeds"]]
    return config


def make_environment(config: Mapping[str, Any], seed: int) -> SegmentedUsers:
    arms = config["arms"]
    return simulate_segmented_users(
        np.array([arms[name] for name in arms], dtype=np.float64),
        arm_names=list(arms),
        n_users=config["n_users"],
        segments=dict(config["segments"]),
        segment_shares=config["segment_shares"],
        base_rate=config["base_rate"],
        gain=config["gain"],
        seed=seed,
    )


def context_spec(env: SegmentedUsers) -> ContextSpec:
    return ContextSpec({"segment": list(env.segment_names)}, ["activity", "tenure_days"])


def encode_users(env: SegmentedUsers, users: np.ndarray) -> np.ndarray:
    """The bandit's context matrix for ``users`` (same as ``ContextSpec.encode``)."""
    n_segments = len(env.segment_names)
    out = np.zeros((len(users), 1 + n_segments + 2))
    out[:, 0] = 1.0
    out[np.arange(len(users)), 1 + env.segment[users]] = 1.0
    out[:, -2] = np.log1p(env.activity[users])
    out[:, -1] = np.log1p(env.tenure_days[users])
    return out


_FIELDS = ("mean", "lower", "upper")


def _normal_interval(values: np.ndarray) -> tuple[float, float, float]:
    mean = float(values.mean())
    half = 1.959964 * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def run_ab_test(
    env: SegmentedUsers,
    arm_a: int,
    arm_b: int,
    n_rounds: int,
    replicates: int,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """A/B test (first replicate reported in full) and interval coverage over replicates."""
    truth = env.arm_values()
    true_lift = float(truth[arm_b] - truth[arm_a])
    covered = 0
    first: dict[str, Any] = {}
    rewards_all = env.expected_rewards()
    chunk = max(1, 5_000_000 // n_rounds)
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        users = rng.choice(env.n_users, size=(size, n_rounds), p=env.arrival)
        to_b = rng.random((size, n_rounds)) < 0.5
        p = np.where(to_b, rewards_all[users, arm_b], rewards_all[users, arm_a])
        reward = (rng.random((size, n_rounds)) < p).astype(np.float64)
        n_b = to_b.sum(axis=1)
        n_a = n_rounds - n_b
        mean_b = (reward * to_b).sum(axis=1) / n_b
        mean_a = (reward * ~to_b).sum(axis=1) / n_a
        var_b = mean_b * (1 - mean_b) * n_b / (n_b - 1)
        var_a = mean_a * (1 - mean_a) * n_a / (n_a - 1)
        half = 1.959964 * np.sqrt(var_a / n_a + var_b / n_b)
        lift = mean_b - mean_a
        covered += int(((lift - half <= true_lift) & (true_lift <= lift + half)).sum())
        if not first:
            a_rewards, b_rewards = reward[0][~to_b[0]], reward[0][to_b[0]]
            first = {
                "a": dict(zip(_FIELDS, _normal_interval(a_rewards), strict=True)),
                "b": dict(zip(_FIELDS, _normal_interval(b_rewards), strict=True)),
                "lift": {
                    "mean": float(lift[0]),
                    "lower": float(lift[0] - half[0]),
                    "upper": float(lift[0] + half[0]),
                },
                "relative_lift": float(lift[0] / mean_a[0]),
                "rounds_per_arm": [int(n_a[0]), int(n_b[0])],
                "curve_a": _running_mean(reward[0][~to_b[0]]),
                "curve_b": _running_mean(reward[0][to_b[0]]),
            }
    first["a"]["true"] = float(truth[arm_a])
    first["b"]["true"] = float(truth[arm_b])
    first["lift"]["true"] = true_lift
    first["coverage"] = covered / replicates
    first["replicates"] = replicates
    return first


def _running_mean(values: np.ndarray, points: int = 100) -> list[list[float]]:
    """(round, mean reward so far) at ``points`` evenly spaced rounds, for plotting."""
    cumulative = np.cumsum(values) / np.arange(1, len(values) + 1)
    at = np.unique(np.linspace(0, len(values) - 1, points).astype(int))
    return [[int(i + 1), float(cumulative[i])] for i in at]


def run_ope_from_logs(
    env: SegmentedUsers,
    arm_a: int,
    arm_b: int,
    n_rounds: int,
    epsilon: float,
    n_bootstrap: int,
    rng: np.random.Generator,
    seed: int,
) -> dict[str, Any]:
    """Log A with an exploration floor, then estimate always-B from those logs."""
    k = env.n_arms
    users = env.draw_users(n_rounds, rng)
    explore = rng.random(n_rounds) < epsilon
    actions = np.where(explore, rng.integers(0, k, n_rounds), arm_a)
    pscore = np.where(actions == arm_a, 1 - epsilon + epsilon / k, epsilon / k)
    p = env.expected_rewards(users)[np.arange(n_rounds), actions]
    rewards = (rng.random(n_rounds) < p).astype(np.float64)
    feedback = LoggedFeedback(
        action=actions, reward=rewards, pscore=pscore, n_actions=k, context=encode_users(env, users)
    )
    dist = np.zeros((n_rounds, k, 1))
    dist[:, arm_b, 0] = 1.0
    q = fit_reward_model(feedback, per_action=True, seed=seed)
    estimates = estimate_policy_value(
        feedback, dist, estimated_rewards=q, n_bootstrap=n_bootstrap, seed=seed
    )
    truth = float(env.arm_values()[arm_b])
    return {
        "true_value_b": truth,
        "logging_epsilon": epsilon,
        "estimates": {
            name: {
                **e.to_dict(),
                "relative_error": abs(e.value - truth) / truth,
                "covers_truth": e.lower <= truth <= e.upper,
            }
            for name, e in estimates.items()
        },
    }


def run_bandit(
    env: SegmentedUsers,
    n_rounds: int,
    *,
    policy: str,
    epsilon: float | None,
    batch_size: int,
    alpha: float = 1.0,
    rng: np.random.Generator,
    seed: int,
    progress: bool = False,
) -> dict[str, Any]:
    bandit = OperatingPointBandit(
        list(env.arm_names),
        policy=policy,
        context=context_spec(env),
        epsilon=epsilon,
        alpha=alpha,
        seed=seed,
    )
    users = env.draw_users(n_rounds, rng)
    expected = env.expected_rewards(users)  # (n, K)
    best_per_segment = env.best_arm_per_segment()
    oracle = expected[np.arange(n_rounds), best_per_segment[env.segment[users]]]
    chosen = np.empty(n_rounds, dtype=np.int64)
    rewards = np.empty(n_rounds)
    contexts = encode_users(env, users)
    steps = range(0, n_rounds, batch_size)
    for start in tqdm(steps, desc=f"bandit ({policy})", disable=not progress, leave=False):
        stop = min(start + batch_size, n_rounds)
        arms, _ = bandit.choose_batch(contexts[start:stop])
        reward = (rng.random(stop - start) < expected[np.arange(start, stop), arms]).astype(float)
        bandit.update_batch(arms, contexts[start:stop], reward)
        chosen[start:stop] = arms
        rewards[start:stop] = reward
    got = expected[np.arange(n_rounds), chosen]
    regret = float((oracle - got).sum())
    random_regret = float((oracle - expected.mean(axis=1)).sum())
    fixed = env.arm_values()
    best_fixed = int(np.argmax(fixed))
    return {
        "policy": policy,
        "epsilon": bandit.epsilon,
        "mean_reward": float(rewards.mean()),
        "mean_expected_reward": float(got.mean()),
        "cumulative_regret": regret,
        "random_cumulative_regret": random_regret,
        "regret_vs_random": regret / random_regret if random_regret > 0 else float("nan"),
        "best_fixed_point": env.arm_names[best_fixed],
        "best_fixed_value": float(fixed[best_fixed]),
        "lift_vs_best_fixed_point": float(got.mean() / fixed[best_fixed] - 1),
        "oracle_value": float(oracle.mean()),
        "best_point_per_segment": {
            env.segment_names[s]: env.arm_names[a] for s, a in enumerate(best_per_segment)
        },
        "final_arm_shares": {
            env.arm_names[a]: float(np.mean(chosen[-batch_size * 10 :] == a))
            for a in range(env.n_arms)
        },
        "curve": _running_mean(rewards),
    }


def run_simulation(
    config: Mapping[str, Any] | str | Path | None = None, *, progress: bool = False
) -> dict[str, Any]:
    """A/B test, OPE of B from A's logs, and the bandit, for every seed in the config."""
    cfg = load_simulation_config(config)
    names = list(cfg["arms"])
    arm_a, arm_b = names.index(cfg["arm_a"]), names.index(cfg["arm_b"])
    runs = []
    for seed in cfg["seeds"]:
        env = make_environment(cfg, seed)
        rng = np.random.default_rng([seed, 1])
        ab = run_ab_test(env, arm_a, arm_b, cfg["n_rounds"], cfg["ab_replicates"], rng)
        ope = run_ope_from_logs(
            env,
            arm_a,
            arm_b,
            cfg["n_rounds"],
            cfg["logging_epsilon"],
            cfg["n_bootstrap"],
            rng,
            seed,
        )
        bandit = run_bandit(
            env,
            cfg["n_rounds"],
            policy=cfg["policy"],
            epsilon=cfg["epsilon"],
            alpha=cfg["alpha"],
            batch_size=cfg["batch_size"],
            rng=rng,
            seed=seed,
            progress=progress,
        )
        runs.append(
            {
                "seed": seed,
                "ab": ab,
                "ope": ope,
                "bandit": bandit,
                "arm_values": dict(zip(env.arm_names, env.arm_values().tolist(), strict=False)),
            }
        )
    summary = {
        "bandit_regret_vs_random": float(np.mean([r["bandit"]["regret_vs_random"] for r in runs])),
        "bandit_reward_lift_vs_best_fixed_point": float(
            np.mean([r["bandit"]["lift_vs_best_fixed_point"] for r in runs])
        ),
        "ope_dr_relative_error": float(
            np.mean([r["ope"]["estimates"]["dr"]["relative_error"] for r in runs])
        ),
        "ab_ci_coverage": float(np.mean([r["ab"]["coverage"] for r in runs])),
    }
    return {"config": {k: v for k, v in cfg.items()}, "runs": runs, "summary": summary}


def plot_simulation(result: Mapping[str, Any], path: str | Path) -> Path:
    """Running mean reward over rounds: arm A, arm B (A/B test) and the bandit (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = result["runs"][0]
    cfg = result["config"]
    figure, axis = plt.subplots(figsize=(6.5, 3.6))
    settled: list[float] = [float(run["bandit"]["oracle_value"])]
    for label, curve in (
        (f"A: {cfg['arm_a']}", run["ab"]["curve_a"]),
        (f"B: {cfg['arm_b']}", run["ab"]["curve_b"]),
        (f"bandit ({run['bandit']['policy']})", run["bandit"]["curve"]),
    ):
        xs, ys = zip(*curve, strict=True)
        axis.plot(xs, ys, label=label)
        settled.extend(y for x, y in zip(xs, ys, strict=True) if x >= 0.1 * max(xs))
    # the first rounds' running means swing from 0 to 1: scale the axis to the settled part
    # (the early swing runs off the top, its start still visible)
    axis.set_ylim(0.0, 1.6 * max(settled))
    axis.axhline(
        run["bandit"]["oracle_value"],
        color="grey",
        linestyle=":",
        label="best point per segment (truth)",
    )
    axis.set_xlabel("rounds served by the arm")
    axis.set_ylabel("mean reward so far")
    axis.set_title("Simulated A/B test and bandit over operating points")
    axis.legend(fontsize=8)
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def demo_simulation(
    output_dir: str | Path, *, n_rounds: int = 5_000, seed: int = 0, n_users: int = 2_000
) -> tuple[dict[str, Any], Path]:
    """A short simulated A/B test and bandit run for ``paretorec demo``: (summary, PNG)."""
    result = run_simulation(
        {
            "n_rounds": n_rounds,
            "seeds": [seed],
            "n_users": n_users,
            "ab_replicates": 20,
            "n_bootstrap": 200,
            "batch_size": 250,
        }
    )
    run = result["runs"][0]
    summary = {
        **result["summary"],
        "arm_a": result["config"]["arm_a"],
        "arm_b": result["config"]["arm_b"],
        "a_reward": run["ab"]["a"],
        "b_reward": run["ab"]["b"],
        "lift": run["ab"]["lift"],
        "ope_b_from_a_logs": {k: v["value"] for k, v in run["ope"]["estimates"].items()},
        "bandit_mean_reward": run["bandit"]["mean_reward"],
        "best_point_per_segment": run["bandit"]["best_point_per_segment"],
        "n_rounds": n_rounds,
    }
    figure = plot_simulation(result, Path(output_dir) / "online_simulation.png")
    return summary, figure
