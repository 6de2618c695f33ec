"""``Recommender``: one user's list at a chosen operating point, from a bundle.

The library object that the HTTP app, the CLI and the tests all call; no HTTP here.

A request goes: user (a known id, a ``history`` of item ids folded in without retraining,
or neither: the cold-start fallback) -> the candidate model's top-C unseen items -> the
ranker's task probabilities -> the chosen front point's policy
(:func:`paretorec.ranking.apply_policy` on a one-user :class:`CandidateSet`) -> k items.

Documented decisions:

* **Operating point.** By id, by ``preference`` weights (the weighted Chebyshev pick
  :meth:`ParetoFront.pick` on the *validation* values, exactly as the offline run picks),
  by ``constraints`` (:meth:`ParetoFront.pick_constrained` on the validation values), or by
  default the front's knee (validation). The response reports the point's *test* values as
  its expected objective values (chosen on validation, reported on test).
* **Exposure penalty.** Offline, the cross-user exposure penalty counts placements among
  the lists built before in one batch of all users (on average half the batch). A request
  is a batch of one, so the service keeps the count instead: placements in its last
  ``n_train_users // 2`` served lists (this process, any point), with the penalty scaled by
  ``log1p(n_train_users)`` as offline. An approximation of the offline batch: the served
  lists' coverage follows the traffic, not a fixed batch.
* **Cold start.** A user id the bundle does not know, without a history, gets the
  training-popularity ranking (``fallback="popularity"``), never an error. A user known
  only through item ids added at run time (``/items``) is ranked by text similarity
  (``fallback="text"``).
* **Items added at run time** are not known to the candidate model; each gets a candidate
  score from its language-model similarity to the user's history, mapped onto the scale of
  that user's candidate scores by quantile mapping (``np.interp`` of the text similarity
  over the candidates' sorted text similarities and sorted scores), so it enters the list
  where its text ranks among the candidates. Users without a history never see them until
  they gather interactions. The ranker does not know them either: they get the median of the
  user's candidates' task probabilities. Their genre vector is zero (no similarity in
  MMR / ILD), their popularity 0 (long tail).
* **Anonymous users and the ranker.** Without a user code the ranker's task probabilities
  are each item's mean prediction over a fixed sample of training users.
* **Read-your-writes.** Clicks, likes, purchases and ratings that reach :meth:`observe`
  (the app calls it after each durable ``/feedback`` commit) join that user's history in
  this process at once: the next list folds them in and no longer shows those items.
  Each worker process keeps its own; they survive a reload, not a restart.
* **Candidate retrieval.** With an embedding-based candidate model (BPR, sequential) the
  bundle holds an :class:`~paretorec.ranking.ANNIndex` over its item vectors. When that
  index is approximate (IVF, HNSW: catalogues of 50,000 items and more under ``"auto"``),
  a known user's or a folded-in history's query vector retrieves the top-C candidates from
  it (seen and excluded items fetched beyond C and filtered), so no request scores the
  whole catalogue; their scores are the model's (the index re-ranks exactly). A flat
  (exact) index, EASE and item-kNN score every item (the exact path); ``retrieval="ann"``
  forces the index, ``"exact"`` the full scores. Items added at run time have no vectors
  of the candidate model: they stay an exact side list scored by text (below), merged with
  the retrieved candidates, so nothing is added to the index.
* **Propensity.** Every policy on the front is deterministic, so each listed item was shown
  with probability 1; the field is there for the logs off-policy evaluation reads.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import ParetorecError, check_choice, check_positive_int, show
from ..models import CandidateModel
from ..pareto import ParetoFront
from ..ranking import (
    ANNIndex,
    CandidateSet,
    ItemContext,
    Policy,
    apply_policy,
    fused_scores,
    retrieval_queries,
    retrieval_scale,
)
from ._bundle import Bundle, FrontPoint, load_bundle

#: Users whose mean ranker prediction stands in for an anonymous user's.
PRIOR_USERS = 64
#: Largest ``k`` a request may ask for by default.
MAX_K = 100
#: Feedback kinds that join a user's history at once (read-your-writes).
POSITIVE_KINDS = ("click", "like", "purchase", "rating")
#: Recent items kept per user, and users kept, for read-your-writes.
MAX_RECENT = 200
MAX_RECENT_USERS = 100_000

Observer = Callable[[Sequence[Mapping[str, Any]]], None]
AutoChooser = Callable[[Mapping[str, Any]], tuple[int, float]]


@dataclass(frozen=True)
class Constraint:
    """``objective op value`` (``>=`` for maximised objectives, ``<=`` for minimised ones);
    with ``relative`` the bound is ``value * best`` (best on the front's validation values),
    e.g. ``ndcg >= 0.95 * best``."""

    objective: str
    op: str
    value: float
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """``"ndcg >= 0.95 * best"``, ``"gini <= 0.8"``."""
        if not isinstance(text, str):
            raise ParetorecError(
                f"constraint must be a string such as 'ndcg >= 0.95 * best', got {show(text)}"
            )
        for op in (">=", "<="):
            if op in text:
                left, right = (part.strip() for part in text.split(op, 1))
                compact = right.replace(" ", "")
                relative = compact.endswith("*best")
                if relative:
                    compact = compact[: -len("*best")]
                try:
                    value = float(compact)
                except ValueError:
                    break
                return cls(objective=left, op=op, value=value, relative=relative)
        raise ParetorecError(
            f"constraint must read 'OBJECTIVE >= NUMBER [* best]' or 'OBJECTIVE <= NUMBER "
            f"[* best]', got {text!r}"
        )


@dataclass(frozen=True)
class RecommendedItem:
    item_id: Any
    title: str
    rank: int
    score: float
    candidate_score: float
    candidate_rank: int
    propensity: float = 1.0
    explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "item_id": self.item_id,
            "title": self.title,
            "rank": self.rank,
            "score": self.score,
            "candidate_score": self.candidate_score,
            "candidate_rank": self.candidate_rank,
            "propensity": self.propensity,
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


@dataclass(frozen=True)
class Recommendation:
    request_id: str
    user_id: Any
    items: list[RecommendedItem]
    point: dict[str, Any]
    fallback: str | None = None
    known_user: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "known_user": self.known_user,
            "fallback": self.fallback,
            "point": self.point,
            "items": [item.to_dict() for item in self.items],
        }


@dataclass(frozen=True, eq=False)
class _Catalogue:
    """The item side, as of the last ``add_items`` (replaced whole, never mutated)."""

    item_ids: tuple[Any, ...]
    index: dict[str, int]
    titles: tuple[str, ...]
    texts: tuple[str, ...]
    context: ItemContext
    text_vectors: np.ndarray | None
    n_base: int

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


@dataclass
class _Request:
    """Everything one request computed, for the response and the explanations."""

    user_code: int | None
    history: np.ndarray  # item codes (base and added) the list is conditioned on
    candidates: CandidateSet
    policy: Policy
    chosen: np.ndarray  # item codes, final order
    fallback: str | None
    extras: dict[str, Any] = field(default_factory=dict)


def top_k_row(scores: np.ndarray, k: int) -> np.ndarray:
    """:func:`paretorec.models.top_k_indices` of one row, in numpy: the ``k`` largest
    scores' indices, best first, ties broken by the lower index (same result; a tenth of
    its cost for one row, which a request is)."""
    n = len(scores)
    if k >= n:
        return np.argsort(-scores, kind="stable")[:k]
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = scores[np.argpartition(-scores, k - 1)[:k]].min()
    greater = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(greater)]
    chosen = np.concatenate([greater, tied])
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def raw_key(value: Any) -> str:
    """Ids are matched by their string form, so ``"1"`` and ``1`` name the same item."""
    return str(value)


class Recommender:
    """Recommend from a bundle (see the module docstring for the documented decisions).

    Args:
        bundle: a :class:`Bundle` or the path of one (verified on load).
        encoder: the text encoder for :meth:`add_items` (default: the bundle's reference,
            loaded on first use); any object with ``encode(texts) -> (n, d) array``.
        max_k: the largest ``k`` a request may ask for.
        retrieval: ``"auto"`` (the bundle's ANN index when it is approximate, else every
            item scored), ``"ann"`` (the index, also a flat one) or ``"exact"``.
    """

    def __init__(
        self,
        bundle: Bundle | str | Path,
        *,
        encoder: Any = None,
        max_k: int = MAX_K,
        retrieval: str = "auto",
    ) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.max_k = check_positive_int(max_k, "max_k")
        self.retrieval = check_choice(retrieval, "retrieval", ("auto", "ann", "exact"))
        index = self.bundle.ann
        if retrieval == "ann" and index is None:
            raise ParetorecError(
                f"retrieval='ann' needs a bundle with an ANN index; this bundle's candidate "
                f"model {self.bundle.model.name!r} has none (only bpr and sequential do)"
            )
        #: the index candidates are retrieved through, or None (every item scored)
        self.ann: ANNIndex | None = (
            index
            if index is not None
            and (retrieval == "ann" or (retrieval == "auto" and index.built_kind_ != "flat"))
            else None
        )
        self._ann_scale = retrieval_scale(self.bundle.model)
        self.model: CandidateModel = self.bundle.model
        self.ranker = self.bundle.ranker
        self.points: tuple[FrontPoint, ...] = self.bundle.points
        names = list(self.bundle.objectives)
        self.front = ParetoFront(
            values=[[p.validation[o] for o in names] for p in self.points],
            directions=list(self.bundle.directions),
            names=names,
        )
        self.default_point = self.front.knee()
        self._users = {raw_key(u): code for code, u in enumerate(self.bundle.user_ids.tolist())}
        ids = tuple(self.bundle.item_ids.tolist())
        self._catalogue = _Catalogue(
            item_ids=ids,
            index={raw_key(i): code for code, i in enumerate(ids)},
            titles=tuple(self.bundle.titles),
            texts=tuple(self.bundle.texts),
            context=self.bundle.context(),
            text_vectors=self.bundle.text_vectors,
            n_base=len(ids),
        )
        self._encoder = encoder
        self._write_lock = threading.Lock()
        self._prior: dict[str, np.ndarray] | None = None
        self.observers: list[Observer] = []
        #: ``point="auto"``: a function of the request context returning (front index,
        #: probability of that choice); the online layer's bandit attaches here.
        self.auto_chooser: AutoChooser | None = None
        #: read-your-writes: items each user clicked / liked / bought / rated since the
        #: bundle was loaded (this process), folded into their next list
        self._recent: dict[str, list[Any]] = {}
        #: the exposure penalty at serving time: placements in the last lists served
        n_users = int(self.bundle.meta["n_train_users"])
        self.exposure_window = max(1, n_users // 2)
        self._exposure_lists: deque[np.ndarray] = deque()
        self._exposure_counts = np.zeros(self._catalogue.n_items)
        self._exposure_lock = threading.Lock()
        if self.ranker is not None:
            self._prior = self._ranker_prior()

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Recommender:
        return cls(load_bundle(path), **kwargs)

    def __repr__(self) -> str:
        return (
            f"Recommender({self.bundle!r}, items now {self._catalogue.n_items:,}, "
            f"default point {self.default_point})"
        )

    # ------------------------------------------------------------------ catalogue
    @property
    def n_items(self) -> int:
        return self._catalogue.n_items

    def item_id(self, code: int) -> Any:
        return self._catalogue.item_ids[code]

    def title(self, item_id: Any) -> str:
        catalogue = self._catalogue
        code = catalogue.index.get(raw_key(item_id))
        if code is None:
            raise ParetorecError(f"item_id {show(item_id)} is not in the catalogue")
        return catalogue.titles[code]

    def knows_user(self, user_id: Any) -> bool:
        return raw_key(user_id) in self._users

    # ------------------------------------------------------------------ operating points
    def point_info(self, index: int, chosen_by: str) -> dict[str, Any]:
        point = self.points[index]
        return {
            "id": point.id,
            "describe": point.policy.describe(),
            "policy": point.policy.to_dict(),
            "chosen_by": chosen_by,
            "expected": dict(point.test),
            "validation": dict(point.validation),
        }

    def choose_point(
        self,
        point: int | str | None = None,
        preference: Mapping[str, float] | None = None,
        constraints: Sequence[Constraint | str | Mapping[str, Any]] | None = None,
        optimize: str | None = None,
    ) -> tuple[int, str]:
        """The front index for a request, and how it was chosen."""
        given = [
            name
            for name, value in (
                ("point", point),
                ("preference", preference),
                ("constraints", constraints),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise ParetorecError(
                f"give at most one of point, preference and constraints, got {' and '.join(given)}"
            )
        if preference is not None:
            if not isinstance(preference, Mapping) or not preference:
                raise ParetorecError(
                    "preference must map objective names to weights, e.g. "
                    f"{{'ndcg': 2, 'ild': 1}}; got {show(preference)}"
                )
            weights: dict[int | str, float] = {str(key): value for key, value in preference.items()}
            return self.front.pick(weights), "preference"
        if constraints is not None:
            return self._constrained(constraints, optimize), "constraints"
        if point is None or point == "default" or point == "knee":
            return self.default_point, "default" if point is None else "knee"
        if isinstance(point, str):
            if point.isdigit():
                point = int(point)
            else:
                raise ParetorecError(
                    f"point must be a front point id (0..{len(self.points) - 1}), 'knee' or "
                    f"'default'; got {point!r}"
                )
        if isinstance(point, bool) or not isinstance(point, (int, np.integer)):
            raise ParetorecError(f"point must be an int id, got {show(point)}")
        if not 0 <= int(point) < len(self.points):
            raise ParetorecError(
                f"point must be a front point id in 0..{len(self.points) - 1}, got {int(point)}"
            )
        return int(point), "id"

    def _constrained(
        self, constraints: Sequence[Constraint | str | Mapping[str, Any]], optimize: str | None
    ) -> int:
        if isinstance(constraints, (str, Mapping)) or not isinstance(constraints, Sequence):
            raise ParetorecError(
                "constraints must be a list such as ['ndcg >= 0.95 * best'], got "
                f"{show(constraints)}"
            )
        names = list(self.front.names)
        values = self.front.values
        bounds: dict[int | str, float] = {}
        for raw in constraints:
            if isinstance(raw, Constraint):
                item = raw
            elif isinstance(raw, str):
                item = Constraint.parse(raw)
            elif isinstance(raw, Mapping):
                try:
                    item = Constraint(**raw)
                except TypeError as exc:
                    raise ParetorecError(f"constraint {show(raw)} is malformed: {exc}") from None
            else:
                raise ParetorecError(f"constraint must be a string or an object, got {show(raw)}")
            if item.objective not in names:
                raise ParetorecError(
                    f"constraint objective {item.objective!r} is not one of {names}"
                )
            column = names.index(item.objective)
            direction = self.front.directions[column]
            expected = ">=" if direction == "maximize" else "<="
            if item.op != expected:
                raise ParetorecError(
                    f"constraint on {item.objective!r} ({direction}) must be a bound "
                    f"'{expected}', got {item.op!r}"
                )
            best = values[:, column].max() if direction == "maximize" else values[:, column].min()
            bound = float(item.value) * float(best) if item.relative else float(item.value)
            # several bounds on one objective: keep the tightest
            previous = bounds.get(item.objective)
            if previous is not None:
                bound = max(bound, previous) if direction == "maximize" else min(bound, previous)
            bounds[item.objective] = bound
        if optimize is None:
            free = [n for n in names if n not in bounds]
            optimize = free[0] if free else names[0]
        elif optimize not in names:
            raise ParetorecError(f"optimize must be one of {names}, got {optimize!r}")
        index = self.front.pick_constrained(optimize, bounds)
        if index is None:
            shown = ", ".join(f"{k} bound {v:.4g}" for k, v in bounds.items())
            raise ParetorecError(f"no front point meets the constraints ({shown})")
        return index

    # ------------------------------------------------------------------ recommend
    def recommend(
        self,
        user_id: Any = None,
        *,
        history: Sequence[Any] | None = None,
        k: int | None = None,
        exclude: Sequence[Any] = (),
        point: int | str | None = None,
        preference: Mapping[str, float] | None = None,
        constraints: Sequence[Constraint | str | Mapping[str, Any]] | None = None,
        optimize: str | None = None,
        explain: bool = False,
        request_id: str | None = None,
    ) -> Recommendation:
        """One user's list (see the module docstring)."""
        k = self.bundle.k if k is None else check_positive_int(k, "k")
        if k > self.max_k:
            raise ParetorecError(f"k must be at most {self.max_k}, got {k}")
        propensity = 1.0
        request_id = request_id or uuid.uuid4().hex
        if point == "auto":
            if self.auto_chooser is None:
                raise ParetorecError(
                    "point='auto' needs an online chooser (a bandit) attached to the service"
                )
            if preference is not None or constraints is not None:
                raise ParetorecError("point='auto' cannot be combined with preference/constraints")
            code = None if user_id is None else self._users.get(raw_key(user_id))
            seen = self.model.seen.indptr
            context = {
                "request_id": request_id,
                "user_id": user_id,
                "known_user": code is not None,
                "activity": 0 if code is None else int(seen[code + 1] - seen[code]),
                "history_length": 0 if history is None else len(history),
            }
            index, propensity = self.auto_chooser(context)
            chosen_by = "auto"
        else:
            index, chosen_by = self.choose_point(point, preference, constraints, optimize)
        state = self._rank(user_id, history, k, exclude, index)
        catalogue = self._catalogue_of(state)
        fused = fused_scores(state.policy, state.candidates, catalogue.context)[0]
        codes = np.asarray(state.candidates.items[0])
        # each chosen item's column in the candidate list (codes are unique in it)
        columns = np.argsort(codes, kind="stable")
        positions = columns[np.searchsorted(codes, state.chosen, sorter=columns)]
        explanations = None
        if explain:
            from ._explain import explain_request

            explanations = explain_request(self, state)
        items = []
        pairs = zip(state.chosen.tolist(), positions.tolist(), strict=True)
        for rank, (code, at) in enumerate(pairs, start=1):
            items.append(
                RecommendedItem(
                    item_id=catalogue.item_ids[code],
                    title=catalogue.titles[code],
                    rank=rank,
                    score=float(fused[at]),
                    candidate_score=float(state.candidates.scores[0, at]),
                    candidate_rank=at + 1,
                    propensity=float(propensity),
                    explanation=None if explanations is None else explanations[rank - 1],
                )
            )
        return Recommendation(
            request_id=request_id,
            user_id=user_id,
            items=items,
            point=self.point_info(index, chosen_by),
            fallback=state.fallback,
            known_user=state.user_code is not None,
        )

    def warm_up(self) -> None:
        """Serve one list at every front point (and a cold start), so that lazily built
        state (the item-similarity matrix of MMR / DPP) exists before real traffic."""
        user = self.bundle.user_ids[0] if len(self.bundle.user_ids) else None
        for index in range(len(self.points)):
            state = self._rank(user, None, self.bundle.k, (), index)
            self._forget_exposure(state.chosen)
        state = self._rank(None, None, self.bundle.k, (), self.default_point)
        self._forget_exposure(state.chosen)

    def _forget_exposure(self, chosen: np.ndarray) -> None:
        with self._exposure_lock:
            if self._exposure_lists and self._exposure_lists[-1] is chosen:
                self._exposure_lists.pop()
                self._exposure_counts[chosen] -= 1.0

    def _catalogue_of(self, state: _Request) -> _Catalogue:
        catalogue = state.extras["catalogue"]
        assert isinstance(catalogue, _Catalogue)  # internal invariant, not user input
        return catalogue

    def _rank(
        self,
        user_id: Any,
        history: Sequence[Any] | None,
        k: int,
        exclude: Sequence[Any],
        index: int,
    ) -> _Request:
        catalogue = self._catalogue  # one snapshot for the whole request
        user_code = None if user_id is None else self._users.get(raw_key(user_id))
        recent = self.recent_items(user_id) if user_id is not None else []
        if recent:
            history = [*(history or []), *recent]
        given = self._history_codes(history, catalogue)
        seen = (
            self.model.seen.indices[
                self.model.seen.indptr[user_code] : self.model.seen.indptr[user_code + 1]
            ].astype(np.int64)
            if user_code is not None
            else np.zeros(0, dtype=np.int64)
        )
        # training items first, then the request's history in its order (most recent last:
        # the order the sequential model reads)
        full_history = np.concatenate([seen[~np.isin(seen, given)], given]) if len(given) else seen
        base_history = full_history[full_history < catalogue.n_base]
        excluded = [catalogue.index[c] for c in map(raw_key, exclude) if c in catalogue.index]
        fallback = None
        query: np.ndarray | None = None
        scores: np.ndarray | None = None
        if user_code is not None and not len(given):
            if self.ann is not None:
                query = retrieval_queries(self.model, np.array([user_code]))
            else:
                scores = self.model.score(np.array([user_code]))[0].copy()
        elif len(base_history) or not self.model.requires_history:
            if len(base_history) and self.ann is not None:
                query = retrieval_queries(self.model, histories=[base_history])
            elif len(base_history):
                scores = self.fold_in([base_history])[0]
            else:
                scores = self._popular()
                fallback = "popularity"
        else:
            scores = self._popular()
            fallback = "text" if len(full_history) else "popularity"
        blocked = np.union1d(base_history, [c for c in excluded if c < catalogue.n_base])
        if query is not None:
            items, cand_scores = self._retrieve(query, blocked.astype(np.int64), catalogue)
        else:
            assert scores is not None  # internal invariant: one of the two paths ran
            scores = scores.astype(np.float64)
            scores[blocked.astype(np.int64)] = -np.inf
            n_finite = int(np.isfinite(scores).sum())
            width = min(self.bundle.n_candidates, n_finite)
            items = (
                top_k_row(scores.astype(np.float32), width)
                if width
                else np.zeros(0, dtype=np.int64)
            )
            cand_scores = scores[items]
        items, cand_scores = self._with_added_items(
            items, cand_scores, full_history, set(excluded), catalogue
        )
        predictions = self._predictions(user_code, items, catalogue)
        candidates = CandidateSet(
            users=np.zeros(1, dtype=np.int64),
            items=items[None, :].astype(np.int64),
            scores=cand_scores[None, :].astype(np.float32),
            predictions={name: values[None, :] for name, values in predictions.items()},
        )
        policy = self.points[index].policy
        k_served = min(k, len(items))
        if k_served == 0:
            chosen = np.zeros(0, dtype=np.int64)
            policy = policy.replace(k=k, depth=None)
        else:
            depth = policy.depth
            if depth is not None:
                depth = min(max(depth, k_served), len(items))
            policy = policy.replace(k=k_served, depth=depth)
            penalised = policy.exposure_penalty > 0
            chosen = apply_policy(
                policy,
                candidates,
                catalogue.context,
                exposure_counts=self._exposure_snapshot(catalogue.n_items) if penalised else None,
                exposure_users=int(self.bundle.meta["n_train_users"]) if penalised else None,
            )[0]
            self._record_exposure(chosen)
        return _Request(
            user_code=user_code,
            history=full_history,
            candidates=candidates,
            policy=policy,
            chosen=chosen,
            fallback=fallback,
            extras={"catalogue": catalogue},
        )

    def _retrieve(
        self, query: np.ndarray, blocked: np.ndarray, catalogue: _Catalogue
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top-C candidates of one query from the ANN index (``blocked`` base items
        left out), with the model's scores (float64)."""
        assert self.ann is not None  # internal invariant: called only with an index
        width = min(self.bundle.n_candidates, catalogue.n_base - len(blocked))
        if width <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        exclude = sp.csr_matrix(
            (np.ones(len(blocked), dtype=np.float32), blocked, [0, len(blocked)]),
            shape=(1, catalogue.n_base),
        )
        found, values = self.ann.search(query, width, exclude=exclude)
        keep = found[0] >= 0
        items = found[0][keep].astype(np.int64)
        return items, values[0][keep].astype(np.float64) * self._ann_scale

    def _exposure_snapshot(self, n_items: int) -> np.ndarray:
        with self._exposure_lock:
            counts = self._exposure_counts.copy()
        if len(counts) < n_items:
            counts = np.concatenate([counts, np.zeros(n_items - len(counts))])
        return counts[:n_items]

    def _record_exposure(self, chosen: np.ndarray) -> None:
        """Count a served list; the oldest list leaves the window."""
        with self._exposure_lock:
            top = int(chosen.max(initial=-1)) + 1
            if top > len(self._exposure_counts):
                grown = np.zeros(top)
                grown[: len(self._exposure_counts)] = self._exposure_counts
                self._exposure_counts = grown
            self._exposure_counts[chosen] += 1.0
            self._exposure_lists.append(chosen)
            while len(self._exposure_lists) > self.exposure_window:
                self._exposure_counts[self._exposure_lists.popleft()] -= 1.0

    def _history_codes(self, history: Sequence[Any] | None, catalogue: _Catalogue) -> np.ndarray:
        if history is None:
            return np.zeros(0, dtype=np.int64)
        if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence):
            raise ParetorecError(f"history must be a list of item ids, got {show(history)}")
        codes = []
        for item in history:
            code = catalogue.index.get(raw_key(item))
            if code is None:
                raise ParetorecError(f"history holds unknown item id {show(item)}")
            codes.append(code)
        # repeats keep their last position (the most recent interaction)
        ordered = list(dict.fromkeys(reversed(codes)))[::-1]
        return np.asarray(ordered, dtype=np.int64)

    def _popular(self) -> np.ndarray:
        n_base = self._catalogue.n_base
        return np.asarray(self._catalogue.context.popularity[:n_base], dtype=np.float64).copy()

    def fold_in(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Candidate scores (float32, (n, n_items)) of users given only their histories
        (item codes of the bundle's catalogue), history items not excluded."""
        return fold_in(self.model, histories)

    def _with_added_items(
        self,
        items: np.ndarray,
        scores: np.ndarray,
        history: np.ndarray,
        excluded: set[int],
        catalogue: _Catalogue,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merge items added at run time, scored from their text (see the module docs)."""
        n_added = catalogue.n_items - catalogue.n_base
        vectors = catalogue.text_vectors
        if not n_added or vectors is None or not len(history):
            return items, scores
        profile = vectors[history].mean(axis=0)
        norm = float(np.linalg.norm(profile))
        if norm == 0:
            return items, scores
        profile = profile / norm
        added = np.arange(catalogue.n_base, catalogue.n_items)
        keep = ~np.isin(added, history) & ~np.isin(added, list(excluded))
        added = added[keep]
        if not len(added):
            return items, scores
        similarity = vectors[added] @ profile
        if len(items):
            reference = vectors[items] @ profile
            order = np.argsort(reference)
            mapped = np.interp(similarity, reference[order], np.sort(scores))
        else:
            mapped = similarity.astype(np.float64)
        all_items = np.concatenate([items, added])
        all_scores = np.concatenate([scores, mapped])
        width = min(self.bundle.n_candidates, len(all_items))
        top = top_k_row(all_scores.astype(np.float32), width)
        return all_items[top], all_scores[top]

    def _predictions(
        self, user_code: int | None, items: np.ndarray, catalogue: _Catalogue
    ) -> dict[str, np.ndarray]:
        if self.ranker is None or not len(items):
            return {}
        base = items < catalogue.n_base
        out: dict[str, np.ndarray] = {}
        if user_code is not None:
            predicted = self.ranker.predict_pairs(np.array([user_code]), items[base][None, :])
            known = {name: values[0] for name, values in predicted.items()}
        else:
            prior = self._prior or {}
            known = {name: values[items[base]] for name, values in prior.items()}
        for name, values in known.items():
            column = np.empty(len(items), dtype=np.float32)
            column[base] = values
            column[~base] = float(np.median(values)) if len(values) else 0.5
            out[name] = column
        return out

    def _ranker_prior(self) -> dict[str, np.ndarray]:
        assert self.ranker is not None
        n_users = self.model.n_users
        rng = np.random.default_rng(0)
        users = np.sort(rng.choice(n_users, size=min(PRIOR_USERS, n_users), replace=False))
        items = np.broadcast_to(
            np.arange(self._catalogue.n_base), (len(users), self._catalogue.n_base)
        )
        predicted = self.ranker.predict_pairs(users, np.ascontiguousarray(items))
        return {name: values.mean(axis=0).astype(np.float32) for name, values in predicted.items()}

    # ------------------------------------------------------------------ items
    def add_items(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add or update items from their text (``{"item_id", "text", "title"?}``); they are
        recommendable at once through their language-model vectors."""
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
            raise ParetorecError(f"items must be a list of item objects, got {show(items)}")
        if not items:
            return []
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or "item_id" not in item or "text" not in item:
                raise ParetorecError(f"items[{i}] must hold 'item_id' and 'text', got {show(item)}")
            if not isinstance(item["text"], str) or not item["text"].strip():
                raise ParetorecError(f"items[{i}].text must be a non-empty string")
        if self._catalogue.text_vectors is None:
            raise ParetorecError(
                "this bundle holds no text vectors (exported with text_encoder=None), so "
                "items cannot be added from their text"
            )
        vectors = np.asarray(self.encoder().encode([str(item["text"]) for item in items]))
        with self._write_lock:
            old = self._catalogue
            assert old.text_vectors is not None
            if vectors.shape[1] != old.text_vectors.shape[1]:
                raise ParetorecError(
                    f"the encoder gives {vectors.shape[1]}-d vectors, the bundle's item vectors "
                    f"are {old.text_vectors.shape[1]}-d"
                )
            ids = list(old.item_ids)
            index = dict(old.index)
            titles = list(old.titles)
            texts = list(old.texts)
            text_vectors = old.text_vectors.copy()
            new_rows: list[np.ndarray] = []
            results = []
            for item, vector in zip(items, vectors, strict=True):
                key = raw_key(item["item_id"])
                title = str(item.get("title") or item["text"])[:200]
                if key in index:
                    code = index[key]
                    if code < len(text_vectors):
                        text_vectors[code] = vector
                    else:
                        new_rows[code - len(text_vectors)] = vector
                    titles[code], texts[code] = title, str(item["text"])
                    results.append({"item_id": item["item_id"], "status": "updated"})
                else:
                    index[key] = len(ids)
                    ids.append(item["item_id"])
                    titles.append(title)
                    texts.append(str(item["text"]))
                    new_rows.append(vector)
                    results.append({"item_id": item["item_id"], "status": "created"})
            n_new = len(new_rows)
            if n_new:
                text_vectors = np.vstack([text_vectors, np.asarray(new_rows, dtype=np.float32)])
            context = old.context
            if n_new:
                vectors_old = np.asarray(context.vectors)
                context = ItemContext(
                    vectors=np.vstack(
                        [vectors_old, np.zeros((n_new, vectors_old.shape[1]), vectors_old.dtype)]
                    ),
                    popularity=np.concatenate([context.popularity, np.zeros(n_new)]),
                    n_users=context.n_users,
                    groups=np.concatenate([context.groups, np.ones(n_new, dtype=np.int64)]),
                )
            self._catalogue = replace(
                old,
                item_ids=tuple(ids),
                index=index,
                titles=tuple(titles),
                texts=tuple(texts),
                context=context,
                text_vectors=text_vectors,
            )
        return results

    def encoder(self) -> Any:
        """The text encoder of the bundle (loaded on first use)."""
        if self._encoder is None:
            reference = self.bundle.text_encoder
            if reference is None:
                raise ParetorecError("this bundle names no text encoder")
            if reference.get("custom"):
                raise ParetorecError(
                    f"this bundle's items were encoded by a custom encoder "
                    f"({reference['model']!r}); pass encoder=... to Recommender"
                )
            from ..text import TextEncoder

            self._encoder = TextEncoder(
                reference["model"],
                normalize=bool(reference.get("normalize", True)),
                max_seq_length=reference.get("max_seq_length"),
                show_progress=False,
            )
        return self._encoder

    # ------------------------------------------------------------------ feedback hook
    def observe(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Called with feedback events after they were durably stored: remembers each user's
        positive events (read-your-writes: the next list of that user folds them in) and
        passes the events to every function in :attr:`observers` (the online layer
        attaches its bandit updates here)."""
        catalogue = self._catalogue
        with self._write_lock:
            for event in events:
                user, item = event.get("user_id"), event.get("item_id")
                if event.get("kind") not in POSITIVE_KINDS or user is None or item is None:
                    continue
                if raw_key(item) not in catalogue.index:
                    continue
                recent = self._recent.setdefault(raw_key(user), [])
                recent.append(item)
                del recent[:-MAX_RECENT]
                if len(self._recent) > MAX_RECENT_USERS:  # forget the oldest user
                    del self._recent[next(iter(self._recent))]
        for observer in list(self.observers):
            observer(events)

    def recent_items(self, user_id: Any) -> list[Any]:
        """Items of ``user_id``'s positive feedback seen by :meth:`observe` (oldest first)."""
        return list(self._recent.get(raw_key(user_id), ()))


def fold_in(model: CandidateModel, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Scores of users known only by their histories (``CandidateModel.score_histories``,
    history items not excluded): float32 ``(len(histories), n_items)``."""
    if not getattr(model, "supports_fold_in", False):
        raise ParetorecError(
            f"the candidate model {model.name!r} cannot fold in a history; serve a bundle "
            "whose candidates come from a model with fold-in (ease, itemknn, bpr, sequential)"
        )
    return np.asarray(model.score_histories(list(histories), exclude_history=False))
