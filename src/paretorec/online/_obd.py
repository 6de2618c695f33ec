"""The Open Bandit Dataset (ZOZOTOWN) as logged feedback, and obp as a referee.

Rows are read as obp 0.5.7's ``OpenBanditDataset`` reads them (``obp/dataset/real.py``):
sorted by timestamp, ``action = item_id``, ``position = dense rank - 1``,
``reward = click``, ``pscore = propensity_score``, context = one-hot user features
(first level dropped), so the same ``bandit_feedback`` reaches both libraries.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import DataFileError, ParetorecError, check_choice
from ._ope import LoggedFeedback

CAMPAIGNS = ("all", "men", "women")
BEHAVIOR_POLICIES = ("random", "bts")
#: Python of the environment holding obp 0.5.7 (see PEERS.md); overridable.
OBP_PYTHON_ENV = "PARETOREC_OBP_PYTHON"


def obd_file(folder: str | Path, behavior_policy: str, campaign: str) -> Path:
    behavior_policy = check_choice(behavior_policy, "behavior_policy", BEHAVIOR_POLICIES)
    campaign = check_choice(campaign, "campaign", CAMPAIGNS)
    path = Path(folder) / behavior_policy / campaign / f"{campaign}.csv"
    if not path.is_file():
        raise DataFileError(f"folder: no Open Bandit Dataset logs at {path}")
    return path


def load_open_bandit(folder: str | Path, behavior_policy: str, campaign: str) -> LoggedFeedback:
    """Logged feedback of one policy and campaign of the Open Bandit Dataset."""
    path = obd_file(folder, behavior_policy, campaign)
    data = pd.read_csv(path, index_col=0)
    data = data.sort_values("timestamp")
    items = pd.read_csv(path.parent / "item_context.csv", index_col=0)
    position = pd.Series(data["position"].to_numpy()).rank(method="dense").to_numpy() - 1
    user_columns = data.columns[data.columns.str.contains("user_feature")]
    context = pd.get_dummies(data.loc[:, user_columns], drop_first=True).to_numpy(float)
    return LoggedFeedback(
        action=data["item_id"].to_numpy().astype(np.int64),
        reward=data["click"].to_numpy().astype(np.float64),
        pscore=data["propensity_score"].to_numpy().astype(np.float64),
        n_actions=len(items),
        position=position.astype(np.int64),
        context=context,
    )


def empirical_action_dist(feedback: LoggedFeedback) -> np.ndarray:
    """A policy's marginal (action, position) distribution from its own logs: (A, L).

    ``count(action a shown at position k) / count(rows at position k)``: an unbiased
    estimate of the time-averaged probability that the (non-stationary, context-free)
    policy shows ``a`` at ``k``, which is what its click rate averages over.
    """
    counts = np.zeros((feedback.n_actions, feedback.len_list))
    np.add.at(counts, (feedback.action, feedback.positions), 1.0)
    return counts / counts.sum(axis=0, keepdims=True)


def obp_python() -> Path | None:
    """The obp environment's interpreter, or None when it is not installed."""
    candidates = [os.environ.get(OBP_PYTHON_ENV, "")]
    candidates.append(str(Path(__file__).resolve().parents[4] / ".venv-msr" / "bin" / "python"))
    candidates.append("/work/main/.venv-msr/bin/python")
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            probe = subprocess.run([candidate, "-c", "import obp"], capture_output=True)
            if probe.returncode == 0:
                return Path(candidate)
    return None


_OBP_SCRIPT = r"""
import json, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
from obp.dataset import OpenBanditDataset
from obp.ope import (InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting,
                     DirectMethod, DoublyRobust)
from obp.policy import BernoulliTS
request = json.load(open(sys.argv[1]))
inputs = np.load(request["inputs"])
out = {}
dataset = OpenBanditDataset(behavior_policy="random", campaign=request["campaign"],
                            data_path=request["data_path"])
feedback = dataset.obtain_batch_bandit_feedback()
if request["given_feedback"]:
    given = np.load(request["given_feedback"])
    feedback = {key: given[key] for key in ("action", "reward", "pscore", "position")}
    feedback["n_rounds"] = len(feedback["action"])
    feedback["context"] = given["context"]
n = feedback["n_rounds"]
np.savez(request["feedback_out"], action=feedback["action"], reward=feedback["reward"],
         pscore=feedback["pscore"], position=feedback["position"], context=feedback["context"],
         n_actions=dataset.n_actions)
if request["feedback_only"]:
    sys.exit(0)
action_dist = np.tile(inputs["action_dist"][None], (n, 1, 1))
q = inputs["estimated_rewards"]
estimators = {"ips": InverseProbabilityWeighting(),
              "snips": SelfNormalizedInverseProbabilityWeighting(),
              "dm": DirectMethod(), "dr": DoublyRobust()}
for name, est in estimators.items():
    kwargs = dict(reward=feedback["reward"], action=feedback["action"],
                  position=feedback["position"], pscore=feedback["pscore"],
                  action_dist=action_dist, estimated_rewards_by_reg_model=q)
    value = float(est.estimate_policy_value(**kwargs))
    interval = est.estimate_interval(alpha=request["alpha"],
                                     n_bootstrap_samples=request["n_bootstrap"],
                                     random_state=request["seed"], **kwargs)
    lo = [v for k, v in interval.items() if "lower" in k][0]
    hi = [v for k, v in interval.items() if "upper" in k][0]
    out[name] = {"value": value, "lower": float(lo), "upper": float(hi)}
if request["n_sim"] == 0:
    json.dump(out, open(request["result_out"], "w"))
    sys.exit(0)
bts = BernoulliTS(n_actions=dataset.n_actions, len_list=dataset.len_list, is_zozotown_prior=True,
                  campaign=request["campaign"], random_state=request["seed"])
prior_dist = bts.compute_batch_action_dist(n_rounds=1, n_sim=request["n_sim"])[0]
np.save(request["prior_dist_out"], prior_dist)
out["bts_on_policy"] = float(OpenBanditDataset.calc_on_policy_policy_value_estimate(
    behavior_policy="bts", campaign=request["campaign"], data_path=request["data_path"]))
json.dump(out, open(request["result_out"], "w"))
"""


def run_obp(
    data_dir: str | Path,
    campaign: str,
    action_dist: np.ndarray,
    estimated_rewards: np.ndarray,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 2_000,
    seed: int = 12345,
    n_sim: int = 100_000,
    python: Path | None = None,
    timeout: float = 900.0,
    feedback_only: bool = False,
    feedback: LoggedFeedback | None = None,
) -> dict[str, Any]:
    """Run obp 0.5.7's IPW/SNIPW/DM/DR on the random logs of ``campaign`` in its own venv.

    Returns its estimates and intervals, the ``bandit_feedback`` arrays it built (so the
    caller can check both libraries saw the same rows), the BTS action distribution from
    obp's ``BernoulliTS(is_zozotown_prior=True)`` and the BTS on-policy click rate. With
    ``feedback_only`` only the arrays come back (see :func:`obp_bandit_feedback`). With
    ``feedback``, obp's estimators run on those arrays instead of its own loader's (one
    subprocess instead of two); ``n_sim=0`` skips the BernoulliTS distribution.
    """
    python = python or obp_python()
    if python is None:
        raise ParetorecError(
            f"obp is not installed: set {OBP_PYTHON_ENV} to a Python with obp 0.5.7 (PEERS.md)"
        )
    with tempfile.TemporaryDirectory(prefix="paretorec-obp-") as tmp:
        folder = Path(tmp)
        np.savez(
            folder / "inputs.npz", action_dist=action_dist, estimated_rewards=estimated_rewards
        )
        given = ""
        if feedback is not None:
            given = str(folder / "given.npz")
            np.savez(
                given,
                action=feedback.action,
                reward=feedback.reward,
                pscore=feedback.pscore,
                position=feedback.positions,
                context=feedback.context
                if feedback.context is not None
                else np.zeros((feedback.n_rounds, 0)),
            )
        request = {
            "inputs": str(folder / "inputs.npz"),
            "campaign": campaign,
            "data_path": str(Path(data_dir)),
            "alpha": alpha,
            "n_bootstrap": n_bootstrap,
            "seed": seed,
            "n_sim": n_sim,
            "feedback_only": feedback_only,
            "given_feedback": given,
            "feedback_out": str(folder / "feedback.npz"),
            "prior_dist_out": str(folder / "prior.npy"),
            "result_out": str(folder / "out.json"),
        }
        _run_obp_script(python, folder, "run.py", _OBP_SCRIPT, request, timeout, "obp run")
        result: dict[str, Any] = {}
        if not feedback_only:
            result = json.loads((folder / "out.json").read_text())
            if n_sim:
                result["bts_prior_dist"] = np.load(folder / "prior.npy")
        with np.load(folder / "feedback.npz") as arrays:
            result["feedback"] = {k: arrays[k] for k in arrays.files}
    return result


def obp_bandit_feedback(
    data_dir: str | Path, campaign: str, *, python: Path | None = None
) -> LoggedFeedback:
    """The random-policy ``bandit_feedback`` exactly as obp builds it (row order included).

    obp sorts rows by timestamp with pandas' default (unstable) sort, so rows with equal
    timestamps can come out in another order than :func:`load_open_bandit`'s under a
    different pandas; the estimates are the same, the bootstrap draws are not. Parity
    checks therefore run both libraries on these arrays.
    """
    empty = np.zeros((1, 1, 1))
    arrays = run_obp(data_dir, campaign, empty, empty, python=python, feedback_only=True)
    feedback = arrays["feedback"]
    return LoggedFeedback(
        action=feedback["action"].astype(np.int64),
        reward=feedback["reward"].astype(np.float64),
        pscore=feedback["pscore"].astype(np.float64),
        n_actions=int(feedback["n_actions"]),
        position=feedback["position"].astype(np.int64),
        context=feedback["context"].astype(np.float64),
    )


#: obp's published OPE benchmark on the small sample (zr-obp ``examples/obd``,
#: ``evaluate_off_policy_estimators.py`` with ``conf/hyperparams.yaml``, commit b8ea3ef):
#: BernoulliTS (ZOZOTOWN prior) evaluated from the uniform-random logs; 30 runs, run ``b``
#: on ``sample_bootstrap_bandit_feedback(random_state=b)``; reward model
#: ``RegressionModel(LogisticRegression(max_iter=10000, C=100, random_state=12345),
#: action_context=obd.action_context)`` cross-fitted with ``n_folds=3,
#: random_state=12345``; the mean relative error over the runs.
PUBLISHED_PROTOCOL: dict[str, Any] = {
    "n_runs": 30,
    "n_folds": 3,
    "seed": 12345,
    "n_sim": 1_000_000,
    "logistic_regression": {"max_iter": 10000, "C": 100, "random_state": 12345},
}

_OBP_PROTOCOL_SCRIPT = r"""
import json, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from obp.dataset import OpenBanditDataset
from obp.ope import (DirectMethod, DoublyRobust, DoublyRobustWithShrinkageTuning,
                     InverseProbabilityWeighting, OffPolicyEvaluation, RegressionModel,
                     SelfNormalizedDoublyRobust, SelfNormalizedInverseProbabilityWeighting,
                     SwitchDoublyRobustTuning)
from obp.policy import BernoulliTS
request = json.load(open(sys.argv[1]))
seed, campaign, folder = request["seed"], request["campaign"], request["out"]
np.random.seed(seed)
obd = OpenBanditDataset(behavior_policy="random", campaign=campaign,
                        data_path=request["data_path"])
policy = BernoulliTS(n_actions=obd.n_actions, len_list=obd.len_list, random_state=seed,
                     is_zozotown_prior=True, campaign=campaign)
dist = policy.compute_batch_action_dist(n_sim=request["n_sim"])[0]
truth = float(OpenBanditDataset.calc_on_policy_policy_value_estimate(
    behavior_policy="bts", campaign=campaign, data_path=request["data_path"]))
lambdas = [10, 50, 100, 500, 1000, 5000, 10000, np.inf]
estimators = [DirectMethod(), InverseProbabilityWeighting(),
              SelfNormalizedInverseProbabilityWeighting(), DoublyRobust(),
              SelfNormalizedDoublyRobust(), SwitchDoublyRobustTuning(lambdas=lambdas),
              DoublyRobustWithShrinkageTuning(lambdas=lambdas)]
out = {"truth": truth, "relative_ee": {e.estimator_name: [] for e in estimators},
       "values": {e.estimator_name: [] for e in estimators}}
np.save(folder + "/action_dist.npy", dist)
np.save(folder + "/action_context.npy", np.asarray(obd.action_context, dtype=np.float64))
for b in range(request["n_runs"]):
    feedback = obd.sample_bootstrap_bandit_feedback(random_state=b)
    model = RegressionModel(n_actions=obd.n_actions, len_list=obd.len_list,
                            action_context=obd.action_context,
                            base_model=LogisticRegression(**request["logistic_regression"]))
    q = model.fit_predict(context=feedback["context"], action=feedback["action"],
                          reward=feedback["reward"], position=feedback["position"],
                          pscore=feedback["pscore"], n_folds=request["n_folds"],
                          random_state=seed)
    folds = np.zeros(feedback["n_rounds"], dtype=np.int64)
    split = KFold(n_splits=request["n_folds"], shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(split.split(feedback["context"])):
        folds[test] = fold
    ope = OffPolicyEvaluation(bandit_feedback=feedback, ope_estimators=estimators)
    action_dist = np.tile(dist[None], (feedback["n_rounds"], 1, 1))
    # evaluate_performance_of_estimators(metric="relative-ee") is |value - truth| / truth
    # of these values (estimating them once instead of twice)
    values = ope.estimate_policy_values(action_dist=action_dist,
                                        estimated_rewards_by_reg_model=q)
    for name in out["values"]:
        out["relative_ee"][name].append(abs(float(values[name]) - truth) / truth)
        out["values"][name].append(float(values[name]))
    np.savez(f"{folder}/run{b}.npz", action=feedback["action"], position=feedback["position"],
             reward=feedback["reward"], pscore=feedback["pscore"], context=feedback["context"],
             q=q, folds=folds, n_actions=obd.n_actions)
    print(f"run {b} done", flush=True)
json.dump(out, open(folder + "/out.json", "w"))
"""


def run_obp_protocol(
    data_dir: str | Path,
    campaign: str,
    folder: str | Path,
    *,
    n_runs: int = PUBLISHED_PROTOCOL["n_runs"],
    n_sim: int = PUBLISHED_PROTOCOL["n_sim"],
    python: Path | None = None,
    timeout: float = 3_600.0,
) -> dict[str, Any]:
    """obp 0.5.7's own run of its published OBD benchmark (:data:`PUBLISHED_PROTOCOL`).

    Writes into ``folder``: ``run{b}.npz`` per run (the bootstrap sample's arrays, obp's
    cross-fitted reward-model output ``q`` and the fold id of each row), the evaluated
    policy's ``action_dist.npy`` (A, L) and ``action_context.npy``. Returns obp's values and
    relative errors per estimator and run, the ground truth (BTS click rate) and paths.
    """
    python = python or obp_python()
    if python is None:
        raise ParetorecError(
            f"obp is not installed: set {OBP_PYTHON_ENV} to a Python with obp 0.5.7 (PEERS.md)"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    request = {
        "campaign": check_choice(campaign, "campaign", CAMPAIGNS),
        "data_path": str(Path(data_dir)),
        "out": str(folder),
        "n_runs": int(n_runs),
        "n_sim": int(n_sim),
        "n_folds": PUBLISHED_PROTOCOL["n_folds"],
        "seed": PUBLISHED_PROTOCOL["seed"],
        "logistic_regression": PUBLISHED_PROTOCOL["logistic_regression"],
    }
    _run_obp_script(
        python, folder, "protocol.py", _OBP_PROTOCOL_SCRIPT, request, timeout, "obp protocol run"
    )
    result: dict[str, Any] = json.loads((folder / "out.json").read_text())
    result["action_dist"] = np.load(folder / "action_dist.npy")
    result["action_context"] = np.load(folder / "action_context.npy")
    result["runs"] = [folder / f"run{b}.npz" for b in range(int(n_runs))]
    return result


def _run_obp_script(
    python: Any,
    folder: Path,
    name: str,
    script: str,
    request: dict[str, Any],
    timeout: float | None,
    what: str,
) -> None:
    """Write ``script`` and its ``request.json`` into ``folder`` and run it under obp's
    interpreter; a non-zero exit raises with the tail of its stderr."""
    (folder / "request.json").write_text(json.dumps(request))
    (folder / name).write_text(script)
    done = subprocess.run(
        [str(python), str(folder / name), str(folder / "request.json")],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise ParetorecError(f"{what} failed: {done.stderr[-2000:]}")
