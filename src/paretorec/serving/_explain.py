"""Explanations: why an item is in a served list, and a test of their fidelity.

Per item:

* ``history``: the user's history items that contributed most to the item's candidate
  score. For EASE and item-kNN the score is a sum over the history, so each history item's
  term (``B[h, j]``, ``sim[h, j]``) is its exact contribution. For other models it is the
  drop of the score when that history item is deleted (one fold-in per deleted item, at
  most :data:`MAX_DELETIONS` history items). Items added through ``/items`` cite history
  items by text similarity. Popularity and random candidates cite nothing.
* ``ranker``: the multi-task ranker's task predictions for the pair.
* ``policy``: where the item stood at each stage: candidate rank, rank after fusion with the
  ranker's scores, after the policy's boosts / penalty, and its final rank after the
  re-ranker, with one sentence (e.g. "moved up from 14 to 3: novelty boost 14 -> 6, mmr
  re-rank 6 -> 3").

:func:`explanation_fidelity` checks the history part: deleting the top cited history item
must lower that item's candidate score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import ParetorecError, check_positive_int
from ..ranking import fused_scores

if TYPE_CHECKING:
    from ._recommender import Recommender, _Request

#: History items cited per listed item.
TOP_HISTORY = 3
#: Most history items a deletion explanation folds in without (the most recent by code order).
MAX_DELETIONS = 64


def history_contributions(
    recommender: Recommender, history: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """``(len(history), len(items))`` contribution of each history item to each item's
    candidate score (base-catalogue codes only)."""
    model = recommender.model
    if not len(history) or not len(items):
        return np.zeros((len(history), len(items)))
    if model.name == "ease":
        weights = model.weights  # type: ignore[attr-defined]
        return np.asarray(weights[np.ix_(history, items)], dtype=np.float64)
    if model.name == "itemknn":
        similarity = model.similarity  # type: ignore[attr-defined]
        return np.asarray(similarity[history][:, items].toarray(), dtype=np.float64)
    if not model.requires_history:
        return np.zeros((len(history), len(items)))
    used = history[-MAX_DELETIONS:]
    full = recommender.fold_in([history])[0, items].astype(np.float64)
    without = [history[history != h] for h in used]  # order kept (sequential models)
    reduced = recommender.fold_in(without)[:, items].astype(np.float64)
    out = np.zeros((len(history), len(items)))
    out[len(history) - len(used) :] = full[None, :] - reduced
    return out


def explain_request(recommender: Recommender, state: _Request) -> list[dict[str, Any]]:
    """One explanation per item of ``state.chosen`` (see the module docstring)."""
    catalogue = state.extras["catalogue"]
    candidates = state.candidates
    codes = np.asarray(candidates.items[0])
    chosen = np.asarray(state.chosen)
    position = {int(code): i for i, code in enumerate(codes)}
    history = np.asarray(state.history, dtype=np.int64)
    base_history = history[history < catalogue.n_base]
    base_items = chosen[chosen < catalogue.n_base]
    contributions = history_contributions(recommender, base_history, base_items)
    column = {int(code): j for j, code in enumerate(base_items)}
    stages = _stage_ranks(state, catalogue)
    out = []
    for final_rank, code in enumerate(chosen.tolist(), start=1):
        at = position[int(code)]
        cited: list[dict[str, Any]] = []
        if code < catalogue.n_base and len(base_history):
            values = contributions[:, column[int(code)]]
            order = np.argsort(-values, kind="stable")[:TOP_HISTORY]
            cited = [
                {
                    "item_id": catalogue.item_ids[int(base_history[i])],
                    "title": catalogue.titles[int(base_history[i])],
                    "contribution": float(values[i]),
                }
                for i in order
                if values[i] > 0
            ]
        elif code >= catalogue.n_base and catalogue.text_vectors is not None and len(history):
            vectors = catalogue.text_vectors
            values = vectors[history] @ vectors[int(code)]
            order = np.argsort(-values, kind="stable")[:TOP_HISTORY]
            cited = [
                {
                    "item_id": catalogue.item_ids[int(history[i])],
                    "title": catalogue.titles[int(history[i])],
                    "contribution": float(values[i]),
                    "by": "text similarity",
                }
                for i in order
                if values[i] > 0
            ]
        ranker = {name: float(values[0, at]) for name, values in candidates.predictions.items()}
        ranks = {name: int(ranks_of[at]) for name, ranks_of in stages.items()}
        ranks["final"] = final_rank
        out.append(
            {
                "history": cited,
                "ranker": ranker,
                "ranks": ranks,
                "policy": _policy_sentence(ranks, state),
                "text": _lines(cited, ranker, ranks, state),
            }
        )
    return out


def _stage_ranks(state: _Request, catalogue: Any) -> dict[str, np.ndarray]:
    """1-based rank of every candidate at each stage of the policy."""
    policy = state.policy
    candidates = state.candidates
    width = candidates.n_candidates

    def ranks(scores: np.ndarray) -> np.ndarray:
        order = np.argsort(-scores, kind="stable")
        out = np.empty(width, dtype=np.int64)
        out[order] = np.arange(1, width + 1)
        return out

    plain = policy.replace(
        novelty_boost=0.0,
        long_tail_boost=0.0,
        popularity_penalty=0.0,
        weights={"candidate": 1.0},
        fusion="sum",
    )
    unboosted = policy.replace(novelty_boost=0.0, long_tail_boost=0.0, popularity_penalty=0.0)
    return {
        "candidate": ranks(fused_scores(plain, candidates, catalogue.context)[0]),
        "fused": ranks(fused_scores(unboosted, candidates, catalogue.context)[0]),
        "boosted": ranks(fused_scores(policy, candidates, catalogue.context)[0]),
    }


def _policy_sentence(ranks: dict[str, int], state: _Request) -> str:
    policy = state.policy
    steps = []
    extra_sources = [s for s, w in policy.weights.items() if w > 0 and s != "candidate"]
    if extra_sources and ranks["fused"] != ranks["candidate"]:
        steps.append(
            f"fusion with the ranker's {', '.join(extra_sources)} {ranks['candidate']} -> "
            f"{ranks['fused']}"
        )
    boosts = [
        name
        for name, value in (
            ("novelty boost", policy.novelty_boost),
            ("long-tail boost", policy.long_tail_boost),
            ("popularity penalty", policy.popularity_penalty),
        )
        if value
    ]
    if boosts and ranks["boosted"] != ranks["fused"]:
        steps.append(f"{' and '.join(boosts)} {ranks['fused']} -> {ranks['boosted']}")
    if ranks["final"] != ranks["boosted"]:
        what = f"{policy.reranker} re-rank" if policy.reranker != "none" else "list order"
        steps.append(f"{what} {ranks['boosted']} -> {ranks['final']}")
    start, end = ranks["candidate"], ranks["final"]
    if start == end:
        head = f"kept at {end}"
    else:
        head = f"moved {'up' if end < start else 'down'} from {start} to {end}"
    return head + (": " + ", ".join(steps) if steps else " (the candidate model's order)")


def _lines(
    cited: Sequence[dict[str, Any]],
    ranker: dict[str, float],
    ranks: dict[str, int],
    state: _Request,
) -> list[str]:
    lines = []
    if cited:
        because = "; ".join(f"{c['title']} ({c['contribution']:.3g})" for c in cited)
        lines.append(f"because you liked: {because}")
    if ranker:
        lines.append("ranker: " + ", ".join(f"{k} {v:.2f}" for k, v in ranker.items()))
    lines.append(_policy_sentence(ranks, state))
    return lines


def explanation_fidelity(
    recommender: Recommender,
    users: Sequence[Any],
    *,
    k: int = 10,
    point: int | str | None = None,
) -> dict[str, Any]:
    """Deletion test of the history explanations on a sample of users.

    For every listed item (of the bundle's catalogue) that cites a history item, fold the
    user's history in again without the top cited item: the item's candidate score must
    drop. Returns ``{"checked", "passed", "pass_rate", "users"}`` (``pass_rate`` NaN when
    nothing was checked).
    """
    k = check_positive_int(k, "k")
    if isinstance(users, (str, bytes)) or not isinstance(users, Sequence):
        raise ParetorecError(f"users must be a list of user ids, got {type(users).__name__}")
    checked = passed = 0
    for user in users:
        state = recommender._rank(user, None, k, (), recommender.choose_point(point)[0])
        explanations = explain_request(recommender, state)
        catalogue = state.extras["catalogue"]
        history = np.asarray(state.history, dtype=np.int64)
        history = history[history < catalogue.n_base]
        for code, explanation in zip(state.chosen.tolist(), explanations, strict=True):
            if code >= catalogue.n_base or not explanation["history"]:
                continue
            top = catalogue.index[str(explanation["history"][0]["item_id"])]
            full = recommender.fold_in([history])[0, code]
            reduced = recommender.fold_in([history[history != top]])[0, code]
            checked += 1
            passed += int(reduced < full)
    return {
        "checked": checked,
        "passed": passed,
        "pass_rate": passed / checked if checked else float("nan"),
        "users": len(users),
    }
