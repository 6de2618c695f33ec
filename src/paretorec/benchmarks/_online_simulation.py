"""Simulated online learning: A/B test, OPE of B from A's logs, bandit regret (known truth).

Users in three segments weigh accuracy, diversity and novelty differently
(:func:`paretorec.data.simulate_segmented_users`); five operating points span the front.
Each seed runs (1) an A/B test of two fixed points over ``n_rounds`` with ``ab_replicates``
vectorised replicates for interval coverage, (2) OPE of B from A's logs (A with a uniform
exploration floor), (3) the Thompson-sampling bandit over all five points, updated every
500 rounds. A control run gives every segment the same weights (one best point for all),
where the bandit cannot beat the best fixed point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..online._simulation import DEFAULTS, run_simulation
from ._harness import make_result, print_rows, write_result

COLUMNS = (
    "regret_vs_random",
    "lift_vs_best_fixed_point",
    "ope_dr_relative_error",
    "ab_ci_coverage",
    "ab_lift",
    "ab_true_lift",
)


def _rows(result: dict[str, Any], label: str) -> list[dict[str, Any]]:
    rows = []
    for run in result["runs"]:
        bandit, ab, ope = run["bandit"], run["ab"], run["ope"]
        rows.append(
            {
                "name": f"{label} seed {run['seed']}",
                "metrics": {
                    "regret_vs_random": bandit["regret_vs_random"],
                    "lift_vs_best_fixed_point": bandit["lift_vs_best_fixed_point"],
                    "bandit_mean_reward": bandit["mean_expected_reward"],
                    "best_fixed_value": bandit["best_fixed_value"],
                    "oracle_value": bandit["oracle_value"],
                    "cumulative_regret": bandit["cumulative_regret"],
                    "random_cumulative_regret": bandit["random_cumulative_regret"],
                    "ope_dr_relative_error": ope["estimates"]["dr"]["relative_error"],
                    "ope": {
                        k: {
                            f: v[f]
                            for f in ("value", "lower", "upper", "relative_error", "covers_truth")
                        }
                        for k, v in ope["estimates"].items()
                    },
                    "ope_true_value_b": ope["true_value_b"],
                    "ab_ci_coverage": ab["coverage"],
                    "ab_a": ab["a"],
                    "ab_b": ab["b"],
                    "ab_lift": ab["lift"]["mean"],
                    "ab_true_lift": ab["lift"]["true"],
                    "ab_lift_interval": [ab["lift"]["lower"], ab["lift"]["upper"]],
                    "best_point_per_segment": bandit["best_point_per_segment"],
                },
            }
        )
    return rows


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,  # unused: simulated
    quick: bool = False,
) -> dict[str, Any]:
    overrides: dict[str, Any] = {"n_rounds": 50_000, "seeds": [0, 1, 2]}
    if quick:
        overrides = {"n_rounds": 5_000, "seeds": [0], "ab_replicates": 50, "n_bootstrap": 200}
    main = run_simulation(overrides, progress=True)
    same = {name: (0.5, 0.3, 0.2) for name in DEFAULTS["segments"]}
    control = run_simulation(
        {**overrides, "seeds": overrides["seeds"][:1], "segments": same}, progress=True
    )
    rows = _rows(main, "segments differ") + _rows(control, "segments identical (control)")
    summary = {
        **main["summary"],
        "control_lift_vs_best_fixed_point": control["summary"][
            "bandit_reward_lift_vs_best_fixed_point"
        ],
        "ope_ips_relative_error": float(
            np.mean([r["ope"]["estimates"]["ips"]["relative_error"] for r in main["runs"]])
        ),
        "ope_dr_covers_truth": int(
            sum(r["ope"]["estimates"]["dr"]["covers_truth"] for r in main["runs"])
        ),
    }
    config = {k: v for k, v in main["config"].items()}
    protocol = {
        "simulator": "paretorec.data.simulate_segmented_users (exact click probabilities)",
        "config": config,
        "regret": "pseudo-regret (expected reward) against the best fixed point of the "
        "user's segment; random = uniform over the points on the same users",
        "lift": "bandit mean expected reward / best single fixed point's value - 1",
        "ab_ci_coverage": "share of replicate A/B tests whose 95 % Welch interval holds the "
        "true lift",
        "ope": "always-B estimated from A's logs (A with uniform exploration floor "
        "logging_epsilon); DR/DM reward model: per-point logistic regression on the "
        "context (segment, log activity, log tenure), cross-fitted",
        "quick": quick,
    }
    result = make_result("online_simulation", protocol=protocol, rows=rows, summary=summary)
    print_rows("Simulated online learning (truth known)", rows, COLUMNS)
    print(summary)
    write_result(result, output_dir)
    return result
