"""Distributed policy search: workers share one study and finish exactly its budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from paretorec import ParetorecError
from paretorec.pareto import Normalization, PolicyEvaluator, SearchSpace, run_search
from paretorec.pareto._distributed import join_search
from paretorec.pareto._search import open_storage
from paretorec.ranking import Policy

from .test_search import tiny_evaluator

BUDGET = 41  # the baseline + 40 study trials


def _trials(storage: Path) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="paretorec", storage=open_storage(storage))
    return study.get_trials(deepcopy=False)


@dataclass(frozen=True, eq=False)
class SlowEvaluator(PolicyEvaluator):
    """Takes long enough per policy that the spawned worker joins before the budget ends."""

    def evaluate(self, policy: Policy) -> dict[str, float]:
        time.sleep(0.15)
        return super().evaluate(policy)


def test_two_workers_finish_exactly_the_budget(tmp_path: Path) -> None:
    evaluator = tiny_evaluator()
    space = SearchSpace(k=5)
    storage = tmp_path / "study.journal"
    slow = SlowEvaluator(**{f.name: getattr(evaluator, f.name) for f in fields(evaluator)})
    parallel = run_search(slow, space, n_trials=BUDGET, storage=storage, workers=2, progress=False)
    trials = _trials(storage)
    numbers = [t.number for t in trials]
    assert len(parallel.policies) == BUDGET
    assert sorted(numbers) == list(range(BUDGET - 1))  # no duplicate, no overshoot
    assert all(t.state == TrialState.COMPLETE for t in trials)
    workers = [t.user_attrs["worker"] for t in trials]
    assert set(workers) == {0, 1}, workers  # both took tickets
    serial = [
        run_search(evaluator, space, n_trials=BUDGET, seed=seed, progress=False) for seed in (0, 1)
    ]
    fronts = [r.front for r in (parallel, *serial)]
    normalization = Normalization.from_values(
        np.vstack([f.values for f in fronts]), parallel.directions
    )
    volumes = [f.hypervolume(normalization=normalization) for f in fronts]
    spread = max(volumes[1:]) - min(volumes[1:])
    # within noise: no further from the serial runs' mean than their own spread (+ slack)
    assert abs(volumes[0] - np.mean(volumes[1:])) <= max(spread, 0.05) + 0.05, volumes


def test_a_resumed_search_tops_up_and_replaces_trials_left_running(tmp_path: Path) -> None:
    evaluator = tiny_evaluator()
    storage = tmp_path / "study.journal"
    run_search(evaluator, SearchSpace(k=5), n_trials=10, storage=storage, progress=False)
    study = optuna.load_study(study_name="paretorec", storage=open_storage(storage))
    study.enqueue_trial({})
    stale = study.ask()  # a worker killed mid-trial leaves it running
    assert stale.number == 9
    result = run_search(evaluator, SearchSpace(k=5), n_trials=14, storage=storage, progress=False)
    assert len(result.policies) == 14
    states = [t.state for t in _trials(storage)]
    assert states.count(TrialState.COMPLETE) == 13 and states.count(TrialState.FAIL) == 1


@pytest.mark.parametrize("storage", ["study.db", "study.journal"])
def test_storage_kinds_resume(tmp_path: Path, storage: str) -> None:
    evaluator = tiny_evaluator()
    first = run_search(evaluator, SearchSpace(k=5), n_trials=4, storage=tmp_path / storage)
    again = run_search(evaluator, SearchSpace(k=5), n_trials=4, storage=tmp_path / storage)
    np.testing.assert_array_equal(first.values, again.values)
    assert (tmp_path / storage).is_file()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda tmp: run_search(tiny_evaluator(), SearchSpace(k=5), n_trials=5, workers=2),
            r"workers=2 needs a storage the workers share .* got storage=None",
        ),
        (
            lambda tmp: run_search(tiny_evaluator(), SearchSpace(k=5), n_trials=5, workers=0),
            r"workers must be a positive int, got 0",
        ),
        (
            lambda tmp: join_search(tmp / "missing.journal"),
            r"storage must be an existing study file or an RDB URL, got .*missing.journal",
        ),
        (
            lambda tmp: join_search(_plain_study(tmp), study_name="other"),
            r"study_name must be one of \['paretorec'\], got 'other'",
        ),
        (
            lambda tmp: join_search(_plain_study(tmp), study_name="paretorec"),
            r"study 'paretorec' was not created by paretorec pareto",
        ),
    ],
)
def test_bad_distributed_input(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParetorecError, match=message):
        make(tmp_path)


def _plain_study(tmp: Path) -> Path:
    storage = tmp / "plain.journal"
    run_search(tiny_evaluator(), SearchSpace(k=5), n_trials=3, storage=storage, progress=False)
    return storage


def test_cli_worker_commands_refuse_bad_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from paretorec.cli import app

    missing = CliRunner().invoke(app, ["pareto-worker", str(tmp_path / "none.journal")])
    assert missing.exit_code == 2
    assert "storage must be an existing study file or an RDB URL" in missing.output
    config = tmp_path / "c.toml"
    config.write_text("[search]\nn_trials = 3\n")
    zero = CliRunner().invoke(app, ["pareto", str(config), "--workers", "0"])
    assert zero.exit_code == 2 and "workers must be a positive int, got 0" in zero.output
    nproc = CliRunner().invoke(app, ["train", str(config), "--nproc", "0"])
    assert nproc.exit_code == 2 and "nproc must be a positive int, got 0" in nproc.output
