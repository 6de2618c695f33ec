"""Objective vectors of a policy on precomputed candidates (validation or test)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import ParetorecError, check_positive_int
from ..evaluation import _metrics as M
from ..ranking import CandidateSet, ItemContext, Policy, apply_policy

#: name -> direction. ``gap[NAME]`` objectives (minimise) are added per user grouping.
OBJECTIVES: dict[str, str] = {
    "ndcg": "maximize",
    "recall": "maximize",
    "ild": "maximize",
    "coverage": "maximize",
    "novelty": "maximize",
    "gini": "minimize",
    "latency_ms": "minimize",
}


def objective_direction(name: str) -> str:
    if name.startswith("gap[") and name.endswith("]"):
        return "minimize"
    if name not in OBJECTIVES:
        raise ParetorecError(
            f"objective must be one of {', '.join(OBJECTIVES)} or gap[GROUP]; got {name!r}"
        )
    return OBJECTIVES[name]


@dataclass(frozen=True, eq=False)
class PolicyEvaluator:
    """Evaluates policies on fixed candidates against held-out relevance.

    ``relevant`` rows align with ``candidates.users``. Objectives are computed at list
    length ``k`` (the policy's ``k`` must match). ``latency_ms`` is the wall time of
    :func:`apply_policy` per list, in milliseconds (fusion + re-ranking, amortised over
    the batch of every user's list).
    """

    candidates: CandidateSet
    relevant: sp.csr_matrix
    context: ItemContext
    objectives: tuple[str, ...] = ("ndcg", "ild", "coverage", "novelty")
    k: int = 10
    user_groups: Mapping[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.k, "k")
        for name in self.objectives:
            objective_direction(name)
            if name.startswith("gap["):
                group = name[4:-1]
                if not self.user_groups or group not in self.user_groups:
                    raise ParetorecError(
                        f"objective {name!r} needs user_groups[{group!r}] (one label per "
                        "candidate row)"
                    )
        if self.relevant.shape[0] != len(self.candidates.users):
            raise ParetorecError(
                f"relevant has {self.relevant.shape[0]} rows but candidates has "
                f"{len(self.candidates.users)} users"
            )

    @cached_property
    def _relevance(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """The binary canonical relevance matrix and the relevant count per user, built
        once (every evaluation scores new lists against the same relevance)."""
        binary = M._check_relevant(self.relevant, len(self.candidates.users))
        return binary, np.diff(binary.indptr).astype(np.int64)

    @cached_property
    def _units(self) -> tuple[Any, np.ndarray]:
        """Unit rows of the item vectors and their squared norms (for ILD), built once."""
        return M._normalised_rows(self.context.vectors)

    @property
    def directions(self) -> list[str]:
        return [objective_direction(name) for name in self.objectives]

    def rank(self, policy: Policy) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        ranked = apply_policy(policy, self.candidates, self.context)
        elapsed = time.perf_counter() - started
        return ranked, elapsed

    def evaluate(self, policy: Policy) -> dict[str, float]:
        if policy.k != self.k:
            raise ParetorecError(f"policy k ({policy.k}) must equal the evaluator's k ({self.k})")
        ranked, elapsed = self.rank(policy)
        return self.score_lists(ranked, latency_seconds=elapsed)

    def ndcg_per_user(self, policy: Policy) -> np.ndarray:
        """nDCG@k of each candidate user's list under ``policy`` (rows aligned with the
        candidates); :meth:`evaluate`'s ``ndcg`` is its mean over users."""
        if policy.k != self.k:
            raise ParetorecError(f"policy k ({policy.k}) must equal the evaluator's k ({self.k})")
        ranked, _ = self.rank(policy)
        return self._ndcg_of(ranked)[0]

    def _ndcg_of(self, ranked: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-user nDCG of ``ranked``, with the hit matrix and relevant counts it came from."""
        binary, n_relevant = self._relevance
        if np.ndim(ranked) == 2 and len(ranked) != binary.shape[0]:
            raise ParetorecError(
                f"relevant has {binary.shape[0]} rows but ranked has {len(ranked)}; "
                "row r of relevant must belong to the user of ranked[r]"
            )
        hits = M._hits(M._check_ranked(ranked, n_items=binary.shape[1]), binary)
        return M.ndcg_from_hits(hits, n_relevant), hits, n_relevant

    def score_lists(self, ranked: np.ndarray, latency_seconds: float = 0.0) -> dict[str, float]:
        """Objective values of given top-k lists (rows aligned with the candidates)."""
        wanted = set(self.objectives)
        out: dict[str, float] = {}
        needs_hits = wanted & {"ndcg", "recall"} or any(n.startswith("gap[") for n in wanted)
        ndcg_per_user = None
        if needs_hits:
            ndcg_per_user, hits, n_relevant = self._ndcg_of(ranked)
            out["ndcg"] = M.mean_over_users(ndcg_per_user)
            out["recall"] = M.mean_over_users(M.recall_from_hits(hits, n_relevant))
        if "ild" in wanted:
            units, unit_sq_norm = self._units
            checked = M._check_ranked(ranked, n_items=units.shape[0])
            ild = M._intra_list_diversity(checked, units, unit_sq_norm)
            out["ild"] = float(np.nanmean(ild))
        if "coverage" in wanted:
            out["coverage"] = M.catalogue_coverage(ranked, self.context.n_items)
        if "novelty" in wanted:
            values = M.novelty(ranked, self.context.popularity, self.context.n_users)
            out["novelty"] = float(np.nanmean(values))
        if "gini" in wanted:
            out["gini"] = M.gini_exposure(ranked, self.context.n_items)
        if "latency_ms" in wanted:
            out["latency_ms"] = 1000.0 * latency_seconds / max(len(ranked), 1)
        for name in wanted:
            if name.startswith("gap[") and ndcg_per_user is not None and self.user_groups:
                out[name] = float(M.group_gap(ndcg_per_user, self.user_groups[name[4:-1]]).gap)
        return {name: float(out[name]) for name in self.objectives}


def ndcg_share_standard_errors(
    evaluator: PolicyEvaluator, policies: Sequence[Policy], reference: Policy | None = None
) -> np.ndarray:
    """Standard error, over the evaluator's users, of each policy's nDCG as a share of the
    ``reference`` policy's (default: the plain ranking, ``Policy(k)``).

    Paired (both rankings are scored on the same users) and by the delta method: for the
    share R = mean(x) / mean(y) of per-user nDCG x (policy) and y (reference) over n users,
    se(R) = sd(x - R y) / (sqrt(n) mean(y)). Users whose nDCG is undefined for either
    ranking are left out. NaN where the reference's mean nDCG is 0 or fewer than 2 users
    remain.
    """
    base = evaluator.ndcg_per_user(reference if reference is not None else Policy(k=evaluator.k))
    out = np.full(len(policies), np.nan)
    for i, policy in enumerate(policies):
        x = evaluator.ndcg_per_user(policy)
        ok = np.isfinite(x) & np.isfinite(base)
        n = int(ok.sum())
        mean_y = float(base[ok].mean()) if n else 0.0
        if n < 2 or not mean_y > 0:
            continue
        share = float(x[ok].mean()) / mean_y
        out[i] = float(np.std(x[ok] - share * base[ok], ddof=1)) / (np.sqrt(n) * mean_y)
    return out


def objective_matrix(rows: Sequence[Mapping[str, Any]], objectives: Sequence[str]) -> np.ndarray:
    return np.array([[float(row[name]) for name in objectives] for row in rows], dtype=np.float64)
