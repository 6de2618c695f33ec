"""Off-policy evaluation on the Open Bandit Dataset, beside obp 0.5.7 in the same run.

For each campaign (all, men, women): the click rate of the Bernoulli-TS logging policy is
estimated from the uniform-random logs (IPS, SNIPS, DM, DR) and compared with the click
rate BTS really had in its own logs. The evaluated policy's action distribution is BTS's
marginal (item, position) distribution counted from its own logs
(:func:`paretorec.online.empirical_action_dist`); the DM/DR reward model is a
cross-fitted logistic regression on the user features, the item and the position. obp
runs in its own environment on the same ``bandit_feedback`` with the same action
distribution, reward-model output and bootstrap seed, so its numbers differ from ours
only by the implementations. A second set of rows uses obp's own BTS action distribution
(``BernoulliTS(is_zozotown_prior=True).compute_batch_action_dist``, the policy of obp's
published example) with our estimators.

Each log holds 10,000 rows and 38-69 clicks, so the observed click rate itself carries
about 15 % relative error: judge the estimators by whether their intervals hold it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..online import (
    empirical_action_dist,
    estimate_policy_value,
    fit_reward_model,
    load_open_bandit,
    obp_bandit_feedback,
    obp_python,
    run_obp,
)
from ..online._obd import CAMPAIGNS
from ._harness import data_folder, make_result, print_rows, write_result

ESTIMATORS = ("ips", "snips", "dm", "dr")
PUBLISHED_OBP_ALL = {"dm": 0.157, "ips": 0.311, "snips": 0.312, "dr": 0.292}
COLUMNS = (
    "value",
    "lower",
    "upper",
    "observed",
    "relative_error",
    "covers",
    "obp_value",
    "abs_diff_vs_obp",
)


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    n_bootstrap: int = 2_000,
    seed: int = 12345,
) -> dict[str, Any]:
    folder = data_folder("open-bandit-dataset-small", data_dir)
    n_bootstrap = 200 if quick else n_bootstrap
    n_sim = 10_000 if quick else 100_000
    python = obp_python()
    rows: list[dict[str, Any]] = []
    diffs: list[float] = []
    covered = 0
    dr_error_all = float("nan")
    for campaign in CAMPAIGNS[:1] if quick else CAMPAIGNS:
        bts = load_open_bandit(folder, "bts", campaign)
        observed = float(bts.reward.mean())
        dist = empirical_action_dist(bts)
        # the same bandit_feedback for both libraries: obp's own arrays when obp is here
        feedback = (
            obp_bandit_feedback(folder, campaign, python=python)
            if python
            else load_open_bandit(folder, "random", campaign)
        )
        q = fit_reward_model(feedback, seed=0)
        tiled = np.tile(dist[None], (feedback.n_rounds, 1, 1))
        ours = estimate_policy_value(
            feedback, tiled, estimated_rewards=q, n_bootstrap=n_bootstrap, seed=seed
        )
        theirs = (
            run_obp(
                folder,
                campaign,
                dist,
                q,
                n_bootstrap=n_bootstrap,
                seed=seed,
                n_sim=n_sim,
                python=python,
            )
            if python
            else None
        )
        for name in ESTIMATORS:
            e = ours[name]
            metrics: dict[str, Any] = {
                "value": e.value,
                "lower": e.lower,
                "upper": e.upper,
                "observed": observed,
                "relative_error": abs(e.value - observed) / observed,
                "covers": bool(e.lower <= observed <= e.upper),
                "effective_sample_size": e.effective_sample_size,
            }
            if theirs is not None:
                diff = abs(e.value - theirs[name]["value"])
                diffs.append(diff)
                metrics.update(
                    {
                        "obp_value": theirs[name]["value"],
                        "obp_lower": theirs[name]["lower"],
                        "obp_upper": theirs[name]["upper"],
                        "abs_diff_vs_obp": diff,
                        "obp_relative_error": abs(theirs[name]["value"] - observed) / observed,
                    }
                )
            rows.append(
                {
                    "name": f"{campaign}: {name}",
                    "campaign": campaign,
                    "estimator": name,
                    "action_dist": "bts_logged_frequencies",
                    "metrics": metrics,
                }
            )
        if ours["dr"].lower <= observed <= ours["dr"].upper and (
            ours["snips"].lower <= observed <= ours["snips"].upper
        ):
            covered += 1
        if campaign == "all":
            dr_error_all = abs(ours["dr"].value - observed) / observed
        if theirs is not None:
            prior = np.tile(theirs["bts_prior_dist"][None], (feedback.n_rounds, 1, 1))
            prior_estimates = estimate_policy_value(
                feedback, prior, estimated_rewards=q, n_bootstrap=n_bootstrap, seed=seed
            )
            for name in ESTIMATORS:
                e = prior_estimates[name]
                rows.append(
                    {
                        "name": f"{campaign}: {name} (obp BernoulliTS prior)",
                        "campaign": campaign,
                        "estimator": name,
                        "action_dist": "obp_bernoulli_ts_zozotown_prior",
                        "metrics": {
                            "value": e.value,
                            "lower": e.lower,
                            "upper": e.upper,
                            "observed": observed,
                            "relative_error": abs(e.value - observed) / observed,
                            "covers": bool(e.lower <= observed <= e.upper),
                        },
                    }
                )
    summary = {
        "max_abs_diff_vs_obp": max(diffs) if diffs else None,
        "obp_available": python is not None,
        "dr_relative_error_all": dr_error_all,
        "dr_relative_error_all_obp_published": PUBLISHED_OBP_ALL["dr"],
        "dr_relative_error_all_with_ranker_reward_model": None,
        "ci_covers_observed": covered,
        "campaigns": len(CAMPAIGNS[:1] if quick else CAMPAIGNS),
    }
    protocol = {
        "data": "open-bandit-dataset-small (obp 0.5.7 sample), random logs -> BTS policy",
        "evaluated_policy": "BTS marginal (item, position) distribution counted from the BTS "
        "logs; extra rows: obp BernoulliTS(is_zozotown_prior) distribution",
        "truth": "mean click of the BTS logs (10,000 rows)",
        "reward_model": "cross-fitted (3 folds) logistic regression: user features + item "
        "one-hot + position one-hot (paretorec.online.fit_reward_model)",
        "bootstrap": {"replicates": n_bootstrap, "seed": seed, "confidence": 0.95},
        "obp": "obp 0.5.7 in its own venv via subprocess, same bandit_feedback arrays, "
        "action_dist, reward-model output and bootstrap seed",
        "published_obp_relative_errors_all": PUBLISHED_OBP_ALL,
        "note": "published obp figures average 30 bootstrap resamples with obp's own "
        "reward model; the rows here are one full-sample estimate",
        "quick": quick,
    }
    result = make_result("ope_obd", protocol=protocol, rows=rows, summary=summary)
    print_rows("OPE of the BTS click rate from random logs (ours vs obp 0.5.7)", rows, COLUMNS)
    print(summary)
    write_result(result, output_dir)
    return result
