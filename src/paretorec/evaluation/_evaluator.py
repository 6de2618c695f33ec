"""Full-catalogue ranking evaluation: batched scoring, seen items excluded, all metrics."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from .._validation import ParetorecError, check_choice, check_index_array, check_positive_int
from ..data import Dataset
from ..models import CandidateModel, top_k_indices
from . import _metrics as M

ACCURACY = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
EMPTY_TARGET_ACTIONS = ("skip", "zero", "error")


@dataclass
class RankingResult:
    """Metrics of one model on one test set.

    ``metrics`` maps names such as ``"ndcg@10"`` to the mean over evaluated users;
    ``per_user`` holds the per-user arrays (aligned with ``users``) of the accuracy
    metrics; ``ranked`` the top-K item codes per evaluated user; ``seconds`` the wall
    time of scoring, top-K selection and metrics.
    """

    metrics: dict[str, float]
    users: np.ndarray
    ranked: np.ndarray
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    skipped_users: int = 0

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in list(self.metrics.items())[:6])
        return f"RankingResult(users={len(self.users):,}, {shown}, ...)"


def _check_ks(k: int | Sequence[int]) -> tuple[int, ...]:
    ks = (k,) if isinstance(k, (int, np.integer)) or not isinstance(k, Sequence) else tuple(k)
    if len(ks) == 0:
        raise ParetorecError("k must be a positive int or a non-empty list of them, got []")
    return tuple(sorted({check_positive_int(v, "k") for v in ks}))


def evaluate_ranking(
    model: CandidateModel,
    test: Dataset,
    *,
    k: int | Sequence[int] = 10,
    users: Any = None,
    items: Any = None,
    item_features: Mapping[str, Any] | None = None,
    user_groups: Mapping[str, Any] | None = None,
    empty_target_action: str = "skip",
    map_normalization: str = "relevant",
    beyond_accuracy: bool = True,
    batch_size: int = 1024,
    progress: bool = False,
) -> RankingResult:
    """Rank the whole catalogue for each test user and compute every metric.

    Training items (``model.seen``) are excluded from each list. By default the users
    evaluated are those with at least one test interaction and a training history;
    pass ``users`` to choose them, and ``empty_target_action`` to say what a user
    without test items counts as (``"skip"``, ``"zero"`` or ``"error"``).

    ``item_features`` maps a name to an item x d matrix (multi-hot genres, language-model
    embeddings) and adds intra-list diversity ``ild_<name>@K``. ``user_groups`` maps a
    name to a per-user-code label array (gender, age band) and adds the largest gap in
    nDCG between groups, ``ndcg@K_gap[<name>]``. Memory is bounded by ``batch_size``
    users' full score rows at a time.

    ``items`` restricts the ranking to those item codes (e.g. the cold items of a cold-start
    split): lists are drawn from them only, test interactions with other items are not
    targets, and coverage counts against them. Tied scores are broken by the order of
    ``items`` (pass them shuffled for a random tie-break: a model that scores every cold
    item alike then ranks like random instead of favouring low item codes).
    """
    ks = _check_ks(k)
    check_choice(empty_target_action, "empty_target_action", EMPTY_TARGET_ACTIONS)
    batch_size = check_positive_int(batch_size, "batch_size")
    if not isinstance(test, Dataset):
        raise ParetorecError(f"test must be a paretorec Dataset, got {type(test).__name__}")
    if test.n_items != model.n_items or test.n_users != model.n_users:
        raise ParetorecError(
            f"test has {test.n_users} users x {test.n_items} items but the model was fitted on "
            f"{model.n_users} x {model.n_items}; split both from the same dataset"
        )
    max_k = ks[-1]
    if max_k > model.n_items:
        raise ParetorecError(
            f"k must be at most the number of items ({model.n_items}), got {max_k}"
        )

    relevant_all = test.to_csr()
    pool: np.ndarray | None = None
    if items is not None:
        pool = check_index_array(items, "items", model.n_items)
        if len(np.unique(pool)) != len(pool):
            raise ParetorecError("items must not repeat an item code")
        if len(pool) < max_k:
            raise ParetorecError(f"items must hold at least k={max_k} item codes, got {len(pool)}")
        keep = np.zeros(model.n_items, dtype=np.float32)
        keep[pool] = 1.0
        relevant_all = sp.csr_matrix(relevant_all @ sp.diags(keep))
        relevant_all.eliminate_zeros()
    n_test = M.count_relevant(relevant_all)
    history = np.diff(model.seen.indptr)
    skipped = 0
    if users is None:
        candidates = np.flatnonzero(n_test > 0)
        if model.requires_history:
            keep = history[candidates] > 0
            skipped = int((~keep).sum())
            candidates = candidates[keep]
        eval_users = candidates
    else:
        eval_users = check_index_array(users, "users", model.n_users)
    if len(eval_users) == 0:
        raise ParetorecError(f"test ({test.name!r}) has no user to evaluate")

    start = time.perf_counter()
    ranked = np.empty((len(eval_users), max_k), dtype=np.int64)
    batches = model.score_batches(eval_users, batch_size=batch_size, exclude_seen=True)
    row = 0
    for batch, scores in tqdm(
        batches,
        total=-(-len(eval_users) // batch_size),
        desc=f"ranking {model.name}",
        disable=not progress,
        leave=False,
    ):
        if pool is None:
            ranked[row : row + len(batch)] = top_k_indices(scores, max_k)
        else:
            ranked[row : row + len(batch)] = pool[top_k_indices(scores[:, pool], max_k)]
        row += len(batch)

    relevant = relevant_all[eval_users]
    n_relevant = M.count_relevant(relevant)
    if empty_target_action == "error" and (n_relevant == 0).any():
        raise ParetorecError(
            f"{int((n_relevant == 0).sum())} evaluated user(s) have no test items "
            "(empty_target_action='error')"
        )
    hits_all = M.hits_at_k(ranked, relevant)
    metrics: dict[str, float] = {}
    per_user: dict[str, np.ndarray] = {}
    for kk in ks:
        hits = hits_all[:, :kk]
        values = {
            "precision": M.precision_from_hits(hits, n_relevant),
            "recall": M.recall_from_hits(hits, n_relevant),
            "ndcg": M.ndcg_from_hits(hits, n_relevant),
            "map": M.map_from_hits(hits, n_relevant, normalization=map_normalization),
            "mrr": M.mrr_from_hits(hits, n_relevant),
            "hit_rate": M.hit_rate_from_hits(hits, n_relevant),
        }
        for name, array in values.items():
            key = f"{name}@{kk}"
            per_user[key] = array
            metrics[key] = M.mean_over_users(array, empty_target_action)
        if user_groups:
            for group_name, labels in user_groups.items():
                labels = np.asarray(labels)
                if len(labels) != model.n_users:
                    raise ParetorecError(
                        f"user_groups[{group_name!r}] must have one label per user "
                        f"({model.n_users}), got {len(labels)}"
                    )
                gap = M.group_gap(per_user[f"ndcg@{kk}"], labels[eval_users])
                metrics[f"ndcg@{kk}_gap[{group_name}]"] = float(gap.gap)
        if beyond_accuracy:
            metrics.update(_beyond_accuracy(ranked[:, :kk], kk, model.seen, item_features, pool))
    return RankingResult(
        metrics=metrics,
        users=eval_users,
        ranked=ranked,
        per_user=per_user,
        seconds=time.perf_counter() - start,
        skipped_users=skipped,
    )


def _beyond_accuracy(
    ranked: np.ndarray,
    k: int,
    seen: sp.csr_matrix,
    item_features: Mapping[str, Any] | None,
    pool: np.ndarray | None = None,
) -> dict[str, float]:
    n_users, n_items = seen.shape
    popularity = np.asarray(seen.sum(axis=0)).ravel()
    tail = M.long_tail_mask(popularity)
    out = {
        f"coverage@{k}": (
            M.catalogue_coverage(ranked, n_items)
            if pool is None
            else len(np.unique(ranked)) / len(pool)
        ),
        f"novelty@{k}": float(np.nanmean(M.novelty(ranked, popularity, n_users))),
        f"avg_popularity@{k}": float(np.nanmean(M.average_popularity(ranked, popularity))),
        f"long_tail_share@{k}": float(np.nanmean(M.long_tail_share(ranked, tail))),
        f"gini@{k}": M.gini_exposure(ranked, n_items),
    }
    for name, vectors in (item_features or {}).items():
        ild = M.intra_list_diversity(ranked, vectors)
        out[f"ild_{name}@{k}"] = float(np.nanmean(ild))
    return out


__all__ = ["RankingResult", "evaluate_ranking"]
