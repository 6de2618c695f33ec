"""``point="auto"``: the online bandit (:class:`paretorec.online.OperatingPointBandit`) picks
the operating point per request and learns from the service's feedback.

* **Arms** are the front's points (arm ``"3"`` is point 3).
* **Context**: whether the user is known, their number of training interactions
  (``activity``) and the length of the history sent with the request.
* **Propensity**: the bandit's probability of the chosen point is logged on every listed
  item (the policies themselves are deterministic), so off-policy evaluation can read the
  feedback store.
* **Reward**: the first ``/feedback`` post that names a request's ``request_id`` is that
  request's outcome: its events become signals (``click``, ``like``, ``purchase`` counted,
  ``rating`` its value; an impression alone is a reward of 0), combined by the bandit's
  :class:`~paretorec.online.RewardSpec`. Post a list's impressions and clicks together.
* **State** is saved (atomically, fsync'd) after every update when a state path is given,
  and loaded at start, so learning survives a restart. Requests still awaiting feedback are
  kept in memory only (at most :data:`MAX_PENDING`). One bandit per process: serve with one
  worker, or give each worker its own state file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._validation import ParetorecError

if TYPE_CHECKING:
    from ._recommender import Recommender

#: Requests remembered while they wait for their feedback.
MAX_PENDING = 100_000
#: Default reward: every positive signal counts, a purchase three times.
DEFAULT_REWARD = {"click": 1.0, "like": 1.0, "purchase": 3.0, "rating": 1.0}


class BanditChooser:
    """Wire an :class:`~paretorec.online.OperatingPointBandit` into a :class:`Recommender`.

    Args:
        recommender: the recommender whose front points are the arms.
        policy: ``"thompson"``, ``"linucb"`` or ``"epsilon_greedy"``.
        state_path: where the bandit's state is loaded from and saved to (None: memory).
        reward: signal weights (default :data:`DEFAULT_REWARD`).
        seed: seeds the bandit's draws.
    """

    def __init__(
        self,
        recommender: Recommender,
        *,
        policy: str = "thompson",
        state_path: str | Path | None = None,
        reward: Mapping[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        from ..online import ContextSpec, OperatingPointBandit, RewardSpec

        arms = [str(point.id) for point in recommender.points]
        if len(arms) < 2:
            raise ParetorecError(
                f"point='auto' needs a front of at least 2 points, this bundle has {len(arms)}"
            )
        self.state_path = None if state_path is None else Path(state_path)
        if self.state_path is not None and self.state_path.is_file():
            bandit = OperatingPointBandit.load(self.state_path)
            if list(bandit.arms) != arms:
                raise ParetorecError(
                    f"bandit state {self.state_path} has arms {list(bandit.arms)}, but the "
                    f"bundle's front has points {arms}; use a fresh state file"
                )
        else:
            bandit = OperatingPointBandit(
                arms,
                policy=policy,
                context=ContextSpec(
                    categorical={"known_user": ("yes", "no")},
                    numeric=("activity", "history_length"),
                ),
                reward=RewardSpec(dict(reward or DEFAULT_REWARD)),
                seed=seed,
            )
        self.bandit = bandit
        self.arms = tuple(arms)
        self.pending: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self.lock = threading.Lock()

    def attach(self, recommender: Recommender) -> BanditChooser:
        """Make ``recommender`` ask this bandit for ``point="auto"`` and feed it feedback."""
        recommender.auto_chooser = self.choose
        if self.observe not in recommender.observers:
            recommender.observers.append(self.observe)
        return self

    def choose(self, context: Mapping[str, Any]) -> tuple[int, float]:
        features = {
            "known_user": "yes" if context.get("known_user") else "no",
            "activity": float(context.get("activity") or 0),
            "history_length": float(context.get("history_length") or 0),
        }
        with self.lock:
            choice = self.bandit.choose(features)
            request_id = context.get("request_id")
            if request_id is not None:
                self.pending[str(request_id)] = (choice.arm, features)
                while len(self.pending) > MAX_PENDING:
                    self.pending.popitem(last=False)
        return self.arms.index(choice.arm), float(choice.propensity)

    def observe(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Turn the first feedback on each pending request into a bandit update."""
        outcomes: dict[str, dict[str, float]] = {}
        for event in events:
            request_id = event.get("request_id")
            if request_id is None or str(request_id) not in self.pending:
                continue
            signals = outcomes.setdefault(str(request_id), {})
            kind = str(event.get("kind"))
            if kind == "rating" and event.get("value") is not None:
                signals["rating"] = float(event["value"])
            elif kind in ("click", "like", "purchase"):
                signals[kind] = signals.get(kind, 0.0) + 1.0
        if not outcomes:
            return
        with self.lock:
            for request_id, signals in outcomes.items():
                found = self.pending.pop(request_id, None)
                if found is not None:
                    arm, features = found
                    self.bandit.update(arm, features, signals)
            if self.state_path is not None:
                self.bandit.save(self.state_path)
