"""The search's fast paths compute what the plain public functions compute.

A Pareto search evaluates thousands of policies on the same candidates, so the evaluator
and the fusion keep what does not change between policies (per-source min-max scaling,
source checks, the candidates' similarity cube, the binary relevance matrix, the unit item
vectors for ILD). These tests pin
that the kept values give exactly the figures of a fresh computation through the public
functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from paretorec import ParetorecError
from paretorec.evaluation import _metrics as M
from paretorec.pareto import Constraint, PolicyEvaluator, SearchSpace
from paretorec.pareto._search import open_storage
from paretorec.ranking import CandidateSet, ItemContext, Policy, apply_policy
from paretorec.ranking._rerankers import _CUBE_CACHE

N_USERS, N_ITEMS, WIDTH, K = 40, 60, 25, 5


def _problem(seed: int = 0) -> tuple[CandidateSet, ItemContext, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    items = np.stack([rng.choice(N_ITEMS, WIDTH, replace=False) for _ in range(N_USERS)])
    scores = np.sort(rng.random((N_USERS, WIDTH)).astype(np.float32), axis=1)[:, ::-1]
    scores[:, 10:14] = scores[:, 10:11]  # ties in the candidate score
    predictions = {
        "like": rng.random((N_USERS, WIDTH)).astype(np.float32),
        "engage": np.round(rng.random((N_USERS, WIDTH)), 1).astype(np.float32),
    }
    candidates = CandidateSet(
        users=np.arange(N_USERS),
        items=items,
        scores=np.ascontiguousarray(scores),
        predictions=predictions,
    )
    genres = sp.csr_matrix((rng.random((N_ITEMS, 6)) < 0.3).astype(np.float32))
    seen = sp.csr_matrix((rng.random((N_USERS, N_ITEMS)) < 0.2).astype(np.float32))
    context = ItemContext.from_training(seen, genres)
    relevant = sp.csr_matrix((rng.random((N_USERS, N_ITEMS)) < 0.1).astype(np.float32))
    return candidates, context, relevant


POLICIES = [
    {},
    {"weights": {"candidate": 1.0, "like": 0.4, "engage": 0.7}, "novelty_boost": 0.3},
    {"popularity_penalty": 0.5, "long_tail_boost": 0.2, "exposure_penalty": 0.8},
    {"reranker": "mmr", "mmr_lambda": 0.6, "weights": {"candidate": 1.0, "like": 0.5}},
    {"reranker": "mmr", "mmr_lambda": 0.4, "mmr_similarity": "mean", "exposure_penalty": 1.2},
    {"reranker": "mmr", "mmr_lambda": 0.7, "order": "score", "depth": 12},
    {"reranker": "dpp", "dpp_theta": 0.7, "weights": {"candidate": 1.0, "engage": 0.3}},
    {"reranker": "fair", "fair_min_share": 0.4, "exposure_penalty": 0.5},
    {"fusion": "product", "weights": {"candidate": 1.0, "like": 0.5}},
]


def _fresh(candidates: CandidateSet) -> CandidateSet:
    """A copy with new array objects: nothing kept from an earlier policy applies to it."""
    return CandidateSet(
        users=candidates.users.copy(),
        items=candidates.items.copy(),
        scores=candidates.scores.copy(),
        predictions={name: values.copy() for name, values in candidates.predictions.items()},
    )


@pytest.mark.parametrize("params", POLICIES)
def test_repeated_evaluations_equal_a_fresh_computation(params: dict) -> None:
    candidates, context, relevant = _problem()
    evaluator = PolicyEvaluator(
        candidates=candidates,
        relevant=relevant,
        context=context,
        objectives=("ndcg", "recall", "ild", "coverage", "novelty", "gini"),
        k=K,
    )
    for warm in POLICIES:  # every cache filled by other policies first
        evaluator.evaluate(Policy(k=K, **warm))
    assert _CUBE_CACHE[candidates][1] is not None  # MMR / DPP read the kept cube
    policy = Policy(k=K, **params)
    got = evaluator.evaluate(policy)

    ranked = apply_policy(policy, _fresh(candidates), context)
    np.testing.assert_array_equal(apply_policy(policy, candidates, context), ranked)
    hits = M.hits_at_k(ranked, relevant)
    n_relevant = M.count_relevant(relevant)
    expected = {
        "ndcg": M.mean_over_users(M.ndcg_from_hits(hits, n_relevant)),
        "recall": M.mean_over_users(M.recall_from_hits(hits, n_relevant)),
        "ild": float(np.nanmean(M.intra_list_diversity(ranked, context.vectors))),
        "coverage": M.catalogue_coverage(ranked, context.n_items),
        "novelty": float(np.nanmean(M.novelty(ranked, context.popularity, context.n_users))),
        "gini": M.gini_exposure(ranked, context.n_items),
    }
    assert got == expected  # exactly: the same arithmetic, only done once


def test_a_source_changed_by_a_new_candidate_set_is_rescaled() -> None:
    candidates, context, _ = _problem()
    policy = Policy(k=K, weights={"candidate": 1.0, "like": 1.0})
    first = apply_policy(policy, candidates, context)
    flipped = CandidateSet(
        users=candidates.users,
        items=candidates.items,
        scores=candidates.scores,
        predictions={
            "like": 1.0 - candidates.predictions["like"],
            "engage": candidates.predictions["engage"],
        },
    )
    assert not np.array_equal(apply_policy(policy, flipped, context), first)
    np.testing.assert_array_equal(apply_policy(policy, candidates, context), first)


def test_score_lists_checks_rows_and_codes() -> None:
    candidates, context, relevant = _problem()
    evaluator = PolicyEvaluator(candidates=candidates, relevant=relevant, context=context, k=K)
    with pytest.raises(ParetorecError, match="relevant has 40 rows but ranked has 3"):
        evaluator.score_lists(np.zeros((3, K), dtype=np.int64))
    with pytest.raises(ParetorecError, match="item code 99"):
        evaluator.score_lists(np.full((N_USERS, K), 99, dtype=np.int64))


def test_journal_storage_writes_a_trial_in_few_appends_and_replays_in_plain_optuna(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default storage holds a trial's parameters and attributes back until its state
    changes: the same search, the same log lines, far fewer locked appends."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from paretorec.pareto import run_search
    from paretorec.pareto._search import JournalFile

    from .test_search import tiny_evaluator

    appends: list[int] = []
    original = JournalFile.append_logs

    def counted(self: JournalFile, logs: list[dict]) -> None:
        appends.append(len(logs))
        original(self, logs)

    monkeypatch.setattr(JournalFile, "append_logs", counted)
    evaluator = tiny_evaluator()
    path = tmp_path / "study.journal"
    constraints = [Constraint("ndcg", min=0.9, relative=True)]
    stored = run_search(
        evaluator,
        SearchSpace(k=5),
        n_trials=25,
        storage=path,
        constraints=constraints,
        population_size=8,
        progress=False,
    )
    in_memory = run_search(
        evaluator,
        SearchSpace(k=5),
        n_trials=25,
        constraints=constraints,
        population_size=8,
        progress=False,
    )
    np.testing.assert_array_equal(stored.values, in_memory.values)
    assert stored.policies == in_memory.policies
    np.testing.assert_array_equal(stored.feasible, in_memory.feasible)
    lines = sum(1 for _ in path.open())
    assert sum(appends) == lines  # every log written once
    assert len(appends) <= 3 * 24 + 40, (len(appends), lines)  # was one append per line
    assert lines > 10 * 24

    plain = optuna.load_study(
        study_name="paretorec",
        storage=optuna.storages.JournalStorage(JournalFileBackend(str(path))),
    )
    ours = optuna.load_study(study_name="paretorec", storage=open_storage(path))
    for theirs, mine in zip(plain.trials, ours.trials, strict=True):
        assert theirs.state == mine.state == optuna.trial.TrialState.COMPLETE
        assert theirs.params == mine.params and len(mine.params) >= 8
        assert theirs.user_attrs == mine.user_attrs and "policy" in mine.user_attrs
        assert theirs.system_attrs == mine.system_attrs
        assert theirs.values == mine.values


def test_held_back_logs_read_back_leave_the_same_study_as_a_plain_replay(tmp_path: Path) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from paretorec.pareto._search import BatchedJournalStorage, JournalFile

    path = tmp_path / "study.journal"
    storage = BatchedJournalStorage(JournalFile(path))
    study = optuna.create_study(
        study_name="s",
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=optuna.samplers.NSGAIISampler(seed=0, population_size=4),
    )

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        trial.set_user_attr("pair", [x, kind])
        return x, (1.0 - x) ** 2 + (kind == "b")

    study.optimize(objective, n_trials=12)
    assert not storage._held and not storage._echo  # all written, all read back
    plain = optuna.load_study(
        study_name="s", storage=optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    )
    mine = storage.get_all_trials(study._study_id)
    assert len(mine) == len(plain.trials) == 12
    for theirs, ours in zip(plain.trials, mine, strict=True):
        assert (theirs.params, theirs.user_attrs, theirs.system_attrs, theirs.values) == (
            ours.params,
            ours.user_attrs,
            ours.system_attrs,
            ours.values,
        )
        assert theirs.distributions == ours.distributions and theirs.state == ours.state
