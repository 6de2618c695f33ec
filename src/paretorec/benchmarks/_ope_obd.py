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

The published comparison (campaign "all"): obp's own benchmark protocol
(:data:`paretorec.online._obd.PUBLISHED_PROTOCOL`: 30 bootstrap resamples of the random
logs, BernoulliTS with the ZOZOTOWN prior as the evaluated policy, a logistic-regression
reward model cross-fitted on 3 folds) runs in obp's environment; on each resample our
estimators run with obp's reward-model output and with paretorec's multi-task ranker as
the reward model (:func:`paretorec.online.fit_ranker_reward_model`), cross-fitted on the
same folds, and the mean relative errors stand beside obp's published ones.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..online import (
    LoggedFeedback,
    cross_fit_folds,
    empirical_action_dist,
    estimate_policy_value,
    fit_ranker_reward_model,
    fit_reward_model,
    load_open_bandit,
    obp_bandit_feedback,
    obp_python,
    round_rewards,
    run_obp,
)
from ..online._obd import CAMPAIGNS, PUBLISHED_PROTOCOL, run_obp_protocol
from ..online._reward import RANKER_REWARD_MODEL
from ._harness import data_folder, make_result, print_rows, write_result

ESTIMATORS = ("ips", "snips", "dm", "dr")
PUBLISHED_OBP_ALL = {"dm": 0.157, "ips": 0.311, "snips": 0.312, "dr": 0.292}
#: obp's estimator names -> ours, and obp's published means for the estimators we lack
OBP_NAMES = {"dm": "dm", "ipw": "ips", "snipw": "snips", "dr": "dr"}
PUBLISHED_OBP_ONLY = {"sndr": 0.302, "switch-dr": 0.258, "dr-os": 0.160}
REWARD_MODELS = ("obp_logistic_regression", "paretorec_ranker")
PROTOCOL_COLUMNS = (
    "relative_error",
    "relative_error_std",
    "published_relative_error",
    "obp_relative_error",
    "abs_diff_vs_obp",
    "reward_model_logloss",
)
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
    protocol_rows: list[dict[str, Any]] = []
    published: dict[str, Any] = {
        "dr_relative_error_all": None,
        "dr_relative_error_all_with_ranker_reward_model": None,
        "dm_relative_error_all": None,
        "dm_relative_error_all_with_ranker_reward_model": None,
    }
    if python is not None:
        protocol_rows, published, protocol_diffs = _published_protocol(folder, python, quick=quick)
        diffs.extend(protocol_diffs)
    summary = {
        "max_abs_diff_vs_obp": max(diffs) if diffs else None,
        "obp_available": python is not None,
        **published,
        "dr_relative_error_all_obp_published": PUBLISHED_OBP_ALL["dr"],
        "dr_relative_error_all_full_sample": dr_error_all,
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
        "published_protocol": {
            **PUBLISHED_PROTOCOL,
            "n_runs": 2 if quick else PUBLISHED_PROTOCOL["n_runs"],
            "n_sim": 10_000 if quick else PUBLISHED_PROTOCOL["n_sim"],
            "source": "zr-obp examples/obd/evaluate_off_policy_estimators.py and "
            "conf/hyperparams.yaml (README figures of commit b8ea3ef)",
            "campaign": "all",
            "evaluated_policy": "BernoulliTS(is_zozotown_prior=True, random_state=12345)"
            ".compute_batch_action_dist(n_sim)",
            "runs": "run b: sample_bootstrap_bandit_feedback(random_state=b) of the random "
            "logs; figure = mean over runs of |estimate - BTS click rate| / BTS click rate",
            "reward_models": {
                "obp_logistic_regression": "obp RegressionModel(LogisticRegression(max_iter="
                "10000, C=100), action_context=item features, one model per position)"
                ".fit_predict(n_folds=3, random_state=12345), run by obp",
                "paretorec_ranker": "paretorec.online.fit_ranker_reward_model: "
                "MultiTaskRanker, one binary click task, context columns as dense user "
                "features, item id + item features, position one-hot; cross-fitted on the "
                "same KFold folds as obp's",
            },
            "ranker": {k: v for k, v in RANKER_REWARD_MODEL.items() if k != "progress"},
            "estimators": "ours (IPS/SNIPS/DM/DR) on each run's arrays with each reward "
            "model; obp's own values for its estimators with its reward model",
        },
        "bootstrap": {"replicates": n_bootstrap, "seed": seed, "confidence": 0.95},
        "obp": "obp 0.5.7 in its own venv via subprocess, same bandit_feedback arrays, "
        "action_dist, reward-model output and bootstrap seed",
        "published_obp_relative_errors_all": PUBLISHED_OBP_ALL,
        "note": "rows 'CAMPAIGN: estimator' are one full-sample estimate each; rows 'all, "
        "obp protocol: ...' follow obp's published protocol (published_protocol): value, "
        "relative_error and obp_* are means over its bootstrap runs, abs_diff_vs_obp the "
        "largest difference over the runs",
        "quick": quick,
    }
    result = make_result("ope_obd", protocol=protocol, rows=rows + protocol_rows, summary=summary)
    print_rows("OPE of the BTS click rate from random logs (ours vs obp 0.5.7)", rows, COLUMNS)
    if protocol_rows:
        print_rows(
            "obp's published protocol (campaign all): mean relative error over bootstrap runs",
            protocol_rows,
            PROTOCOL_COLUMNS,
        )
    print(summary)
    write_result(result, output_dir)
    return result


def _logloss(feedback: LoggedFeedback, q: np.ndarray) -> float:
    """Click log-loss of a cross-fitted reward model on the logged (action, position)s."""
    rows = np.arange(feedback.n_rounds)
    p = np.clip(q[rows, feedback.action, feedback.positions], 1e-12, 1 - 1e-12)
    r = feedback.reward
    return float(-np.mean(r * np.log(p) + (1 - r) * np.log(1 - p)))


def _published_protocol(
    folder: Path, python: Path, *, quick: bool
) -> tuple[list[dict[str, Any]], dict[str, Any], list[float]]:
    """obp's published OBD protocol, with obp's reward model and with the ranker."""
    n_runs = 2 if quick else PUBLISHED_PROTOCOL["n_runs"]
    n_sim = 10_000 if quick else PUBLISHED_PROTOCOL["n_sim"]
    seed = PUBLISHED_PROTOCOL["seed"]
    errors: dict[str, dict[str, list[float]]] = {
        m: {e: [] for e in ESTIMATORS} for m in REWARD_MODELS
    }
    estimates: dict[str, dict[str, list[float]]] = {
        m: {e: [] for e in ESTIMATORS} for m in REWARD_MODELS
    }
    logloss: dict[str, list[float]] = {m: [] for m in REWARD_MODELS}
    diffs: dict[str, list[float]] = {e: [] for e in ESTIMATORS}
    folds_match = True
    with tempfile.TemporaryDirectory(prefix="paretorec-obp-protocol-") as tmp:
        print(f"obp's published protocol: {n_runs} runs in obp's environment ...", flush=True)
        started = time.perf_counter()
        theirs = run_obp_protocol(folder, "all", tmp, n_runs=n_runs, n_sim=n_sim, python=python)
        obp_seconds = time.perf_counter() - started
        ranker_seconds = 0.0
        truth = float(theirs["truth"])
        dist = np.asarray(theirs["action_dist"])
        for b, path in enumerate(tqdm(theirs["runs"], desc="reward models", unit="run")):
            with np.load(path) as arrays:
                run = {k: arrays[k] for k in arrays.files}
            feedback = LoggedFeedback(
                action=run["action"].astype(np.int64),
                reward=run["reward"].astype(np.float64),
                pscore=run["pscore"].astype(np.float64),
                n_actions=int(run["n_actions"]),
                position=run["position"].astype(np.int64),
                context=run["context"].astype(np.float64),
            )
            folds = cross_fit_folds(feedback.n_rounds, PUBLISHED_PROTOCOL["n_folds"], seed)
            folds_match = folds_match and bool(np.array_equal(folds, run["folds"]))
            started = time.perf_counter()
            models = {
                "obp_logistic_regression": run["q"],
                "paretorec_ranker": fit_ranker_reward_model(
                    feedback, action_context=theirs["action_context"], folds=folds, seed=seed
                ),
            }
            ranker_seconds += time.perf_counter() - started
            tiled = np.broadcast_to(dist[None], (feedback.n_rounds, *dist.shape))
            for model, q in models.items():
                logloss[model].append(_logloss(feedback, q))
                for name in ESTIMATORS:
                    value = float(round_rewards(name, feedback, tiled, q).mean())
                    errors[model][name].append(abs(value - truth) / truth)
                    estimates[model][name].append(value)
                    if model == "obp_logistic_regression":
                        obp_name = next(k for k, v in OBP_NAMES.items() if v == name)
                        diffs[name].append(abs(value - theirs["values"][obp_name][b]))
    if not folds_match:
        raise RuntimeError("sklearn's KFold split differs between paretorec's and obp's venvs")
    rows: list[dict[str, Any]] = []
    for model in REWARD_MODELS:
        for name in ESTIMATORS:
            values = np.asarray(errors[model][name])
            metrics: dict[str, Any] = {
                "value": float(np.mean(estimates[model][name])),
                "observed": truth,
                "relative_error": float(values.mean()),
                "relative_error_std": float(values.std(ddof=1)) if len(values) > 1 else None,
                "runs": len(values),
                "reward_model_logloss": float(np.mean(logloss[model]))
                if name in ("dm", "dr")
                else None,
            }
            if model == "obp_logistic_regression":
                obp_name = next(k for k, v in OBP_NAMES.items() if v == name)
                metrics.update(
                    {
                        "published_relative_error": PUBLISHED_OBP_ALL[name],
                        "obp_value": float(np.mean(theirs["values"][obp_name])),
                        "obp_relative_error": float(np.mean(theirs["relative_ee"][obp_name])),
                        "abs_diff_vs_obp": float(max(diffs[name])),
                    }
                )
            rows.append(
                {
                    "name": f"all, obp protocol: {name} ({model})",
                    "campaign": "all",
                    "estimator": name,
                    "action_dist": "obp_bernoulli_ts_zozotown_prior",
                    "reward_model": model,
                    "metrics": metrics,
                }
            )
    for obp_name, figure in PUBLISHED_OBP_ONLY.items():
        values = np.asarray(theirs["relative_ee"][obp_name])
        rows.append(
            {
                "name": f"all, obp protocol: {obp_name} (obp only, obp_logistic_regression)",
                "campaign": "all",
                "estimator": obp_name,
                "action_dist": "obp_bernoulli_ts_zozotown_prior",
                "reward_model": "obp_logistic_regression",
                "metrics": {
                    "observed": truth,
                    "obp_value": float(np.mean(theirs["values"][obp_name])),
                    "obp_relative_error": float(values.mean()),
                    "published_relative_error": figure,
                    "runs": len(values),
                },
            }
        )
    lr, ranker = errors["obp_logistic_regression"], errors["paretorec_ranker"]
    summary = {
        "dr_relative_error_all": float(np.mean(lr["dr"])),
        "dr_relative_error_all_with_ranker_reward_model": float(np.mean(ranker["dr"])),
        "dm_relative_error_all": float(np.mean(lr["dm"])),
        "dm_relative_error_all_with_ranker_reward_model": float(np.mean(ranker["dm"])),
        "dm_relative_error_all_obp_published": PUBLISHED_OBP_ALL["dm"],
        "obp_reproduced_relative_errors_all": {
            name: float(np.mean(values)) for name, values in theirs["relative_ee"].items()
        },
        "protocol_runs": n_runs,
        "protocol_folds_match_obp": folds_match,
        "protocol_obp_seconds": obp_seconds,
        "protocol_ranker_fit_seconds": ranker_seconds,
    }
    return rows, summary, [d for values in diffs.values() for d in values]
