"""A click-then-conversion funnel simulator with known ground truth.

:func:`simulate_funnel` draws users, items (with a short text written from the item's topic),
impressions, clicks and conversions from a latent-factor model and keeps the true
probabilities of every impression, so funnel models (ESMM and friends), text encoders and
online experiments can be checked against the truth.

The model, per impression of item i to user u:

* **click**: ``logit p_click = a + 1.5 <x_u, v_i> + 0.8 bait_i + 0.5 activity_u``, where
  ``x_u`` is the user's taste, ``v_i`` the item's factors (its topic's centroid plus noise),
  ``bait_i`` how eye-catching the item is and ``activity_u`` how readily the user clicks.
* **conversion given click**: ``logit p_conv = b + 1.2 <y_u, v_i> - selection_bias * bait_i
  - 0.6 price_i + propensity_u``, where ``y_u = 0.5 x_u + 0.87 z_u`` is a purchase taste only
  partly aligned with the click taste and ``propensity_u`` comes from the user's device and
  age group. Eye-catching items get clicked and then disappoint, so the clicked impressions
  are a biased sample of all impressions for conversion (sample selection bias, Ma et al.,
  SIGIR 2018); the intercepts ``a`` and ``b`` are solved so that the mean ``p_click`` over the
  impressions is ``click_rate`` and the mean ``p_conv`` is ``conversion_rate`` (a few percent
  of impressions click, a minority of clicks convert: the data sparsity of the same paper).
* **impressions**: each user sees distinct items drawn without replacement with weights
  ``popularity_i * exp(exposure_affinity <x_u, v_i>)`` (a popularity-skewed upstream
  recommender); users' impression counts follow a skewed activity distribution.

Labels: ``click ~ Bernoulli(p_click)``; ``conversion_if_clicked ~ Bernoulli(p_conv)`` is drawn
for *every* impression (the counterfactual outcome, for evaluating conversion models over the
entire space) and ``conversion = click * conversion_if_clicked`` is what a log would hold: it
is 0 whenever there was no click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._validation import (
    ParetorecError,
    check_fraction,
    check_nonnegative_float,
    check_nonnegative_int,
    check_positive_int,
)
from ._dataset import TIMESTAMP, Dataset

TOPIC_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("photography", ("camera", "lens", "tripod", "shutter", "flash", "photo", "zoom", "aperture")),
    ("music", ("guitar", "piano", "drum", "melody", "amplifier", "chord", "violin", "headphones")),
    ("cooking", ("skillet", "recipe", "knife", "oven", "spice", "saucepan", "blender", "baking")),
    ("fitness", ("dumbbell", "treadmill", "yoga", "protein", "kettlebell", "workout", "sneaker")),
    ("gardening", ("seeds", "shovel", "compost", "planter", "hose", "soil", "pruner", "bulbs")),
    ("travel", ("suitcase", "backpack", "passport", "luggage", "map", "adapter", "pillow")),
    ("gaming", ("console", "controller", "joystick", "keyboard", "mouse", "headset", "arcade")),
    ("reading", ("novel", "paperback", "bookmark", "hardcover", "poetry", "fiction", "memoir")),
    ("pets", ("leash", "kibble", "aquarium", "collar", "litter", "kennel", "chew", "treats")),
    ("outdoors", ("tent", "lantern", "compass", "sleeping bag", "hiking", "canteen", "kayak")),
    ("office", ("stapler", "notebook", "pen", "desk", "folder", "printer", "monitor", "chair")),
    ("beauty", ("lipstick", "serum", "perfume", "moisturizer", "mascara", "shampoo", "lotion")),
)
MAX_TOPICS = len(TOPIC_WORDS)
BAIT_WORDS = (
    ("plain", "simple", "basic", "standard"),  # low bait
    ("classic", "handy", "practical", "neat"),
    ("stunning", "amazing", "incredible", "must-have"),
    ("shocking", "viral", "unbelievable", "jaw-dropping"),  # high bait
)
PRICE_LEVELS = ("budget", "standard", "premium")
PRICE_WORDS = {
    "budget": ("cheap", "affordable", "budget"),
    "standard": ("everyday", "reliable", "durable"),
    "premium": ("premium", "luxury", "deluxe"),
}
AGE_GROUPS = ("18-24", "25-34", "35-49", "50+")
AGE_PROPENSITY = np.array([-0.4, 0.0, 0.2, 0.3])
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_SHARES = np.array([0.6, 0.3, 0.1])
DEVICE_PROPENSITY = np.array([-0.2, 0.5, 0.0])


@dataclass(frozen=True, eq=False)
class SimulatedFunnel:
    """A simulated impression log plus the latent truth it was drawn from.

    Attributes:
        dataset: impressions as a :class:`Dataset` with label columns ``click`` and
            ``conversion`` and the truth columns ``p_click``, ``p_conv`` (conversion
            probability given a click), ``p_ctcvr = p_click * p_conv`` and
            ``conversion_if_clicked`` (the counterfactual label, never to be trained on);
            ``items`` has ``text``, ``category``, ``price``; ``users`` has ``age_group`` and
            ``device``.
        user_factors: click taste ``x_u`` (n_users, dim).
        user_conversion_factors: purchase taste ``y_u`` (n_users, dim).
        item_factors: ``v_i`` (n_items, dim).
        item_topics: topic index of each item (into ``TOPIC_WORDS``).
        item_bait: eye-catchiness of each item (raises clicks, lowers conversion).
        item_price: latent price of each item (lowers conversion).
        user_activity: click propensity of each user.
        user_propensity: purchase propensity of each user (from device and age group).
        click_intercept, conversion_intercept: the solved intercepts ``a`` and ``b``.
        config: the arguments of :func:`simulate_funnel`.
    """

    dataset: Dataset
    user_factors: np.ndarray
    user_conversion_factors: np.ndarray
    item_factors: np.ndarray
    item_topics: np.ndarray
    item_bait: np.ndarray
    item_price: np.ndarray
    user_activity: np.ndarray
    user_propensity: np.ndarray
    click_intercept: float
    conversion_intercept: float
    config: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        frame = self.dataset.interactions
        return (
            f"SimulatedFunnel(users={self.dataset.n_users:,}, items={self.dataset.n_items:,}, "
            f"impressions={len(frame):,}, clicks={int(frame['click'].sum()):,}, "
            f"conversions={int(frame['conversion'].sum()):,})"
        )


def simulate_funnel(
    n_users: int = 2_000,
    n_items: int = 1_000,
    n_impressions: int = 100_000,
    *,
    dim: int = 8,
    n_topics: int = 8,
    click_rate: float = 0.04,
    conversion_rate: float = 0.1,
    selection_bias: float = 1.0,
    popularity_skew: float = 1.0,
    exposure_affinity: float = 0.5,
    seed: int = 0,
) -> SimulatedFunnel:
    """Simulate an impression -> click -> conversion log with known probabilities.

    Args:
        n_users, n_items: sizes of the user base and the catalogue (every one listed in the
            side tables, even without impressions).
        n_impressions: number of (user, item) impressions, each pair at most once
            (at most ``n_users * n_items``).
        dim: latent dimension of tastes and item factors.
        n_topics: number of item topics (at most ``len(TOPIC_WORDS)``, 12).
        click_rate: mean true click probability over the impressions, in (0, 1).
        conversion_rate: mean true conversion-given-click probability over *all*
            impressions, in (0, 1); the rate among clicked impressions differs (lower with
            ``selection_bias > 0``).
        selection_bias: how much eye-catching items disappoint after the click (0: bait
            only raises clicks and the clicked sample is less biased).
        popularity_skew: spread of the log-normal item popularity (0: uniform exposure).
        exposure_affinity: how much the impression draw favours items matching the user's
            taste (0: popularity only).
        seed: the one seed of every random draw; the same arguments give the same log.
    """
    n_users = check_positive_int(n_users, "n_users")
    n_items = check_positive_int(n_items, "n_items")
    n_impressions = check_positive_int(n_impressions, "n_impressions")
    if n_impressions > n_users * n_items:
        raise ParetorecError(
            f"n_impressions must be at most n_users * n_items ({n_users * n_items:,}: each "
            f"pair is shown once), got {n_impressions:,}"
        )
    dim = check_positive_int(dim, "dim")
    n_topics = check_positive_int(n_topics, "n_topics")
    if n_topics > MAX_TOPICS:
        raise ParetorecError(f"n_topics must be at most {MAX_TOPICS}, got {n_topics}")
    click_rate = check_fraction(click_rate, "click_rate")
    conversion_rate = check_fraction(conversion_rate, "conversion_rate")
    selection_bias = _finite(
        check_nonnegative_float(selection_bias, "selection_bias"), "selection_bias"
    )
    popularity_skew = _finite(
        check_nonnegative_float(popularity_skew, "popularity_skew"), "popularity_skew"
    )
    exposure_affinity = _finite(
        check_nonnegative_float(exposure_affinity, "exposure_affinity"), "exposure_affinity"
    )
    seed = check_nonnegative_int(seed, "seed")
    config = {
        "n_users": n_users,
        "n_items": n_items,
        "n_impressions": n_impressions,
        "dim": dim,
        "n_topics": n_topics,
        "click_rate": click_rate,
        "conversion_rate": conversion_rate,
        "selection_bias": selection_bias,
        "popularity_skew": popularity_skew,
        "exposure_affinity": exposure_affinity,
        "seed": seed,
    }
    rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ users
    taste = rng.standard_normal((n_users, dim)) / np.sqrt(dim)
    purchase_taste = 0.5 * taste + np.sqrt(0.75) * rng.standard_normal((n_users, dim)) / np.sqrt(
        dim
    )
    activity = 0.5 * rng.standard_normal(n_users)
    # age group follows the first taste coordinate, so the feature carries taste
    age = np.searchsorted(np.quantile(taste[:, 0], [0.25, 0.5, 0.75]), taste[:, 0])
    device = rng.choice(len(DEVICES), size=n_users, p=DEVICE_SHARES)
    propensity = (
        DEVICE_PROPENSITY[device] + AGE_PROPENSITY[age] + 0.3 * rng.standard_normal(n_users)
    )

    # ------------------------------------------------------------------ items
    topics = rng.integers(0, n_topics, size=n_items)
    centroids = rng.standard_normal((n_topics, dim))
    item_factors = (centroids[topics] + 0.5 * rng.standard_normal((n_items, dim))) / np.sqrt(1.25)
    bait = rng.standard_normal(n_items)
    price = rng.standard_normal(n_items)
    log_popularity = popularity_skew * rng.standard_normal(n_items)
    texts = _item_texts(rng, topics, bait, price)

    # ------------------------------------------------------------------ impressions
    counts = _impressions_per_user(rng, n_users, n_items, n_impressions)
    users, items = _draw_impressions(
        rng, counts, log_popularity, taste, item_factors, exposure_affinity
    )
    click_affinity = np.einsum("ij,ij->i", taste[users], item_factors[items])
    conversion_affinity = np.einsum("ij,ij->i", purchase_taste[users], item_factors[items])
    click_score = 1.5 * click_affinity + 0.8 * bait[items] + activity[users]
    conversion_score = (
        1.2 * conversion_affinity
        - selection_bias * bait[items]
        - 0.6 * price[items]
        + propensity[users]
    )
    click_intercept = _calibrate(click_score, click_rate)
    conversion_intercept = _calibrate(conversion_score, conversion_rate)
    p_click = _sigmoid(click_intercept + click_score)
    p_conv = _sigmoid(conversion_intercept + conversion_score)
    click = rng.random(users.size) < p_click
    conversion_if_clicked = rng.random(users.size) < p_conv
    timestamp = np.round(rng.uniform(0.0, 30 * 86_400.0, size=users.size))

    # ------------------------------------------------------------------ dataset
    user_ids = np.array([f"u{u:06d}" for u in range(n_users)], dtype=object)
    item_ids = np.array([f"i{i:06d}" for i in range(n_items)], dtype=object)
    frame = pd.DataFrame(
        {
            "user_id": user_ids[users],
            "item_id": item_ids[items],
            TIMESTAMP: timestamp,
            "click": click.astype(np.float32),
            "conversion": (click & conversion_if_clicked).astype(np.float32),
        }
    )
    dataset = Dataset.from_frames(
        "simulated-funnel",
        frame,
        timestamp_col=TIMESTAMP,
        label_columns=["click", "conversion"],
        items=pd.DataFrame(
            {
                "item_id": item_ids,
                "text": texts,
                "category": [TOPIC_WORDS[t][0] for t in topics],
                "price": [PRICE_LEVELS[level] for level in _price_levels(price)],
            }
        ),
        users=pd.DataFrame(
            {
                "user_id": user_ids,
                "age_group": [AGE_GROUPS[a] for a in age],
                "device": [DEVICES[d] for d in device],
            }
        ),
    )
    # from_frames keeps the row order, and the side tables fix code == index
    dataset = dataset.with_interactions(
        dataset.interactions.assign(
            p_click=p_click.astype(np.float32),
            p_conv=p_conv.astype(np.float32),
            p_ctcvr=(p_click * p_conv).astype(np.float32),
            conversion_if_clicked=conversion_if_clicked.astype(np.float32),
        )
    )
    return SimulatedFunnel(
        dataset=dataset,
        user_factors=taste,
        user_conversion_factors=purchase_taste,
        item_factors=item_factors,
        item_topics=topics,
        item_bait=bait,
        item_price=price,
        user_activity=activity,
        user_propensity=propensity,
        click_intercept=click_intercept,
        conversion_intercept=conversion_intercept,
        config=config,
    )


# --------------------------------------------------------------------------- helpers
def _finite(value: float, name: str) -> float:
    if not np.isfinite(value):
        raise ParetorecError(f"{name} must be a finite non-negative number, got {value}")
    return value


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _calibrate(score: np.ndarray, target: float) -> float:
    """Intercept c with mean(sigmoid(c + score)) == target (bisection; monotone in c)."""
    low, high = -60.0, 60.0
    for _ in range(100):
        middle = 0.5 * (low + high)
        if _sigmoid(middle + score).mean() < target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _price_levels(price: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.quantile(price, [1 / 3, 2 / 3]), price)


def _item_texts(
    rng: np.random.Generator, topics: np.ndarray, bait: np.ndarray, price: np.ndarray
) -> list[str]:
    """Short descriptions: a bait adjective, a price word and topic words."""
    bait_level = np.searchsorted(np.quantile(bait, [0.25, 0.5, 0.75]), bait)
    levels = _price_levels(price)
    texts = []
    for topic, b, level in zip(topics, bait_level, levels, strict=True):
        name, words = TOPIC_WORDS[topic]
        chosen = rng.choice(len(words), size=3, replace=False)
        adjective = BAIT_WORDS[b][rng.integers(len(BAIT_WORDS[b]))]
        price_words = PRICE_WORDS[PRICE_LEVELS[level]]
        price_word = price_words[rng.integers(len(price_words))]
        first, second, third = (words[j] for j in chosen)
        texts.append(f"{adjective} {price_word} {first} with {second} and {third} for {name}")
    return texts


def _impressions_per_user(
    rng: np.random.Generator, n_users: int, n_items: int, n_impressions: int
) -> np.ndarray:
    """Skewed activity (log-normal weights), each user capped at the catalogue size."""
    weights = np.exp(0.7 * rng.standard_normal(n_users))
    counts = np.zeros(n_users, dtype=np.int64)
    remaining = n_impressions
    while remaining > 0:
        room = n_items - counts
        open_weights = np.where(room > 0, weights, 0.0)
        extra = rng.multinomial(remaining, open_weights / open_weights.sum())
        counts += np.minimum(extra, room)
        remaining = n_impressions - int(counts.sum())
    return counts


def _draw_impressions(
    rng: np.random.Generator,
    counts: np.ndarray,
    log_popularity: np.ndarray,
    taste: np.ndarray,
    item_factors: np.ndarray,
    affinity: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Items drawn without replacement per user (Gumbel top-k), in user order."""
    n_users, n_items = taste.shape[0], item_factors.shape[0]
    chunk = max(1, 2_000_000 // n_items)
    users_out, items_out = [], []
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        size = counts[start:stop]
        width = int(size.max()) if size.size else 0
        if width == 0:
            continue
        keys = log_popularity[None, :] + affinity * (taste[start:stop] @ item_factors.T)
        keys = keys + rng.gumbel(size=keys.shape)
        top = np.argpartition(-keys, width - 1, axis=1)[:, :width] if width < n_items else None
        if top is None:
            top = np.argsort(-keys, axis=1)
        else:
            order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1)
            top = np.take_along_axis(top, order, axis=1)
        keep = np.arange(width)[None, :] < size[:, None]
        users_out.append(np.repeat(np.arange(start, stop), size))
        items_out.append(top[:, :width][keep])
    return np.concatenate(users_out), np.concatenate(items_out)


# =========================================================================== online users
#: The objectives an operating point trades off, in the order of ``arm_objectives``.
OBJECTIVES = ("accuracy", "diversity", "novelty")
#: Default segments: who values what (rows: weights over OBJECTIVES, summing to one).
DEFAULT_SEGMENTS: dict[str, tuple[float, float, float]] = {
    "focused": (0.8, 0.1, 0.1),
    "browsers": (0.2, 0.7, 0.1),
    "explorers": (0.2, 0.1, 0.7),
}


@dataclass(frozen=True, eq=False)
class SegmentedUsers:
    """Users whose segments value accuracy, diversity and novelty differently.

    The probability that user ``u`` rewards (clicks) a list served at operating point
    ``k`` is known exactly::

        p(u, k) = sigmoid(intercept + gain * <w_{s(u)}, z_k> + effect_u)

    where ``z_k`` are the point's objective values (accuracy, diversity, novelty), scaled
    to [0, 1] across the points, ``w_s`` the segment's weights over the objectives and
    ``effect_u = 0.3 log(1 + activity_u) + noise`` a user-level propensity. Users arrive
    with probability proportional to their activity, so the value of any policy ``pi`` is
    ``E_{u ~ arrival}[sum_k pi(k | u) p(u, k)]``, computed exactly by :meth:`policy_value`.
    """

    segment: np.ndarray
    activity: np.ndarray
    tenure_days: np.ndarray
    effect: np.ndarray
    segment_names: tuple[str, ...]
    segment_weights: np.ndarray
    arm_names: tuple[str, ...]
    arm_objectives: np.ndarray
    intercept: float
    gain: float

    @property
    def n_users(self) -> int:
        return len(self.segment)

    @property
    def n_arms(self) -> int:
        return len(self.arm_names)

    @property
    def arrival(self) -> np.ndarray:
        return self.activity / self.activity.sum()

    def scaled_objectives(self) -> np.ndarray:
        low = self.arm_objectives.min(axis=0)
        span = self.arm_objectives.max(axis=0) - low
        return (self.arm_objectives - low) / np.where(span > 0, span, 1.0)

    def expected_rewards(self, users: np.ndarray | None = None) -> np.ndarray:
        """Exact reward probabilities (len(users), n_arms)."""
        users = np.arange(self.n_users) if users is None else np.asarray(users)
        utility = self.segment_weights[self.segment[users]] @ self.scaled_objectives().T
        return _sigmoid(self.intercept + self.gain * utility + self.effect[users][:, None])

    def policy_value(self, probabilities: np.ndarray) -> float:
        """Exact value of a policy given as (n_users, n_arms) or (n_arms,) probabilities."""
        rewards = self.expected_rewards()
        weights = np.broadcast_to(probabilities, rewards.shape)
        return float(self.arrival @ (weights * rewards).sum(axis=1))

    def arm_values(self, segment: int | None = None) -> np.ndarray:
        """Exact value of always serving each arm (over all users or one segment)."""
        rewards = self.expected_rewards()
        arrival = self.arrival
        if segment is not None:
            arrival = np.where(self.segment == segment, arrival, 0.0)
            arrival = arrival / arrival.sum()
        return np.asarray(arrival @ rewards)

    def best_arm_per_segment(self) -> np.ndarray:
        return np.array(
            [int(np.argmax(self.arm_values(s))) for s in range(len(self.segment_names))]
        )

    def draw_users(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.n_users, size=n, p=self.arrival)

    def contexts(self, users: np.ndarray) -> list[dict[str, Any]]:
        """Request contexts: segment, activity level and tenure."""
        names = self.segment_names
        return [
            {
                "segment": names[self.segment[u]],
                "activity": float(self.activity[u]),
                "tenure_days": float(self.tenure_days[u]),
            }
            for u in users
        ]


def simulate_segmented_users(
    arm_objectives: Any,
    *,
    arm_names: Any = None,
    n_users: int = 5_000,
    segments: dict[str, Any] | None = None,
    segment_shares: Any = None,
    base_rate: float = 0.1,
    gain: float = 1.5,
    seed: int = 0,
) -> SegmentedUsers:
    """Draw users in segments that weigh the objectives differently (see SegmentedUsers).

    Args:
        arm_objectives: (n_arms, 3) accuracy, diversity, novelty of each operating point
            (any scale; they are min-max scaled across the points), e.g. front points.
        arm_names: names of the points (default ``p0, p1, ...``).
        n_users: size of the user base.
        segments: segment name -> weights over (accuracy, diversity, novelty); default
            :data:`DEFAULT_SEGMENTS`. Give every segment the same weights for a
            population where one fixed point is best for all.
        segment_shares: share of users per segment (default equal).
        base_rate: mean reward probability at the middle of the utility range.
        gain: how strongly utility moves the reward (log-odds per unit of utility).
        seed: the one seed.
    """
    objectives = np.asarray(arm_objectives, dtype=np.float64)
    if objectives.ndim != 2 or objectives.shape[1] != len(OBJECTIVES) or len(objectives) < 2:
        raise ParetorecError(
            f"arm_objectives must have shape (n_arms >= 2, 3) for {', '.join(OBJECTIVES)}, "
            f"got {objectives.shape}"
        )
    if not np.isfinite(objectives).all():
        raise ParetorecError("arm_objectives must be finite")
    names = (
        tuple(f"p{k}" for k in range(len(objectives)))
        if arm_names is None
        else tuple(str(n) for n in arm_names)
    )
    if len(names) != len(objectives):
        raise ParetorecError(
            f"arm_names must name each of the {len(objectives)} arms, got {len(names)}"
        )
    n_users = check_positive_int(n_users, "n_users")
    segments = dict(DEFAULT_SEGMENTS if segments is None else segments)
    if not segments:
        raise ParetorecError("segments must name at least one segment")
    weights = np.asarray(list(segments.values()), dtype=np.float64)
    if weights.shape != (len(segments), 3) or (weights < 0).any() or not np.isfinite(weights).all():
        raise ParetorecError(
            "segments must map each name to 3 non-negative weights (accuracy, diversity, novelty)"
        )
    weights = weights / np.where(
        weights.sum(axis=1, keepdims=True) > 0, weights.sum(1, keepdims=True), 1
    )
    shares = (
        np.full(len(segments), 1 / len(segments))
        if segment_shares is None
        else np.asarray(segment_shares, dtype=np.float64)
    )
    if shares.shape != (len(segments),) or (shares < 0).any() or shares.sum() <= 0:
        raise ParetorecError(f"segment_shares must be {len(segments)} non-negative shares")
    shares = shares / shares.sum()
    base_rate = check_fraction(base_rate, "base_rate")
    gain = _finite(check_nonnegative_float(gain, "gain"), "gain")
    seed = check_nonnegative_int(seed, "seed")
    rng = np.random.default_rng(seed)
    segment = rng.choice(len(segments), size=n_users, p=shares)
    activity = np.round(np.exp(1.0 + 0.8 * rng.standard_normal(n_users))) + 1.0
    tenure = np.round(rng.exponential(200.0, size=n_users))
    effect = 0.3 * np.log1p(activity) + 0.3 * rng.standard_normal(n_users)
    effect = effect - effect.mean()
    intercept = float(np.log(base_rate / (1 - base_rate)) - gain * 0.5)
    return SegmentedUsers(
        segment=segment,
        activity=activity,
        tenure_days=tenure,
        effect=effect,
        segment_names=tuple(str(s) for s in segments),
        segment_weights=weights,
        arm_names=names,
        arm_objectives=objectives,
        intercept=intercept,
        gain=gain,
    )
