"""Re-rankers against slow, obviously-correct references, plus their properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from paretorec import ParetorecError
from paretorec.ranking import ItemSimilarity, dpp, fair_exposure, mmr
from paretorec.ranking._rerankers import DPP_JITTER, DPP_MIN_GAIN

SEEDS = [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------------- references
def _normalise(row: list[float]) -> list[float]:
    low, high = min(row), max(row)
    return [(x - low) / (high - low) if high > low else 0.0 for x in row]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm_a = math.sqrt(sum(float(x) * float(x) for x in a))
    norm_b = math.sqrt(sum(float(x) * float(x) for x in b))
    if norm_a == 0 or norm_b == 0:
        return 0.0
    return sum(float(x) * float(y) for x, y in zip(a, b, strict=True)) / (norm_a * norm_b)


def _best(values: dict[int, float]) -> int:
    """Key with the largest value; the lowest key among ties."""
    return min(values, key=lambda key: (-values[key], key))


def reference_mmr(relevance, codes, vectors, k, lam):
    out = []
    for rel_row, code_row in zip(relevance, codes, strict=True):
        rel = _normalise([float(x) for x in rel_row])
        chosen: list[int] = []
        for _ in range(k):
            scores = {}
            for i in range(len(rel)):
                if i in chosen:
                    continue
                redundancy = max(
                    (_cosine(vectors[code_row[i]], vectors[code_row[j]]) for j in chosen),
                    default=0.0,
                )
                scores[i] = lam * rel[i] - (1 - lam) * redundancy
            chosen.append(_best(scores))
        out.append(chosen)
    return np.array(out)


def _dpp_kernel(rel_row, code_row, vectors, theta):
    rel = _normalise([float(x) for x in rel_row])
    width = len(rel)
    similarity = np.array(
        [
            [_cosine(vectors[code_row[i]], vectors[code_row[j]]) for j in range(width)]
            for i in range(width)
        ]
    )
    np.fill_diagonal(similarity, 1.0)
    similarity += DPP_JITTER * np.eye(width)
    alpha = theta / (2 * (1 - theta))
    quality = np.exp(alpha * (np.array(rel) - max(rel)))
    return quality[:, None] * similarity * quality[None, :], rel


def _log_det(kernel: np.ndarray, subset: list[int]) -> float:
    if not subset:
        return 0.0
    sign, value = np.linalg.slogdet(kernel[np.ix_(subset, subset)])
    return float(value) if sign > 0 else -math.inf


def reference_dpp(relevance, codes, vectors, k, theta):
    """Greedy argmax of log det(L_{S+i}) with slogdet; stop and fill by relevance."""
    out = []
    for rel_row, code_row in zip(relevance, codes, strict=True):
        kernel, rel = _dpp_kernel(rel_row, code_row, vectors, theta)
        chosen: list[int] = []
        stopped = False
        while len(chosen) < k:
            rest = [i for i in range(len(rel)) if i not in chosen]
            if not stopped:
                base = _log_det(kernel, chosen)
                gains = {i: _log_det(kernel, [*chosen, i]) - base for i in rest}
                best = _best(gains)
                stopped = math.exp(gains[best]) < DPP_MIN_GAIN
            if stopped:
                best = _best({i: rel[i] for i in rest})
            chosen.append(best)
        out.append(chosen)
    return np.array(out)


def reference_fair(relevance, groups, k, min_share, protected_group):
    out = []
    for rel_row, group_row in zip(relevance, groups, strict=True):
        chosen: list[int] = []
        n_protected = 0
        for t in range(1, k + 1):
            required = math.floor(min_share * t + 1e-9)
            rest = [i for i in range(len(rel_row)) if i not in chosen]
            protected_left = [i for i in rest if group_row[i] == protected_group]
            pool = protected_left if n_protected < required and protected_left else rest
            best = _best({i: float(rel_row[i]) for i in pool})
            chosen.append(best)
            n_protected += int(group_row[best] == protected_group)
        out.append(chosen)
    return np.array(out)


# ---------------------------------------------------------------------------- inputs
def random_lists(seed: int, n_users: int = 6, width: int = 12, n_items: int = 40, dim: int = 5):
    """Continuous relevance and Gaussian vectors: no exact ties."""
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.choice(n_items, size=width, replace=False) for _ in range(n_users)])
    relevance = rng.normal(size=(n_users, width))
    vectors = rng.normal(size=(n_items, dim))
    return relevance, codes, vectors


def tied_lists(seed: int, n_users: int = 6, width: int = 12, n_items: int = 30, n_topics: int = 4):
    """Integer relevance (many ties), one-hot topic vectors (cosine exactly 0 or 1),
    duplicate vectors and a few all-zero vectors."""
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.choice(n_items, size=width, replace=False) for _ in range(n_users)])
    relevance = rng.integers(0, 4, size=(n_users, width)).astype(np.float64)
    relevance[0] = 2.0  # a constant row
    topic = rng.integers(0, n_topics, size=n_items)
    vectors = np.zeros((n_items, n_topics))
    vectors[np.arange(n_items), topic] = 1.0
    vectors[rng.choice(n_items, size=4, replace=False)] = 0.0
    return relevance, codes, vectors


def assert_valid_positions(positions: np.ndarray, n_users: int, width: int, k: int) -> None:
    assert positions.shape == (n_users, k)
    assert positions.dtype == np.int64
    assert ((positions >= 0) & (positions < width)).all()
    assert all(len(set(row)) == k for row in positions.tolist())


def relevance_order(relevance: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-relevance, axis=1, kind="stable")[:, :k]


# ---------------------------------------------------------------------------- MMR
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_mmr_matches_reference(seed: int, lam: float) -> None:
    relevance, codes, vectors = random_lists(seed)
    expected = reference_mmr(relevance, codes, vectors, 6, lam)
    np.testing.assert_array_equal(mmr(relevance, codes, vectors, 6, lam), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lam", [0.0, 0.25, 0.5, 1.0])
def test_mmr_matches_reference_with_ties(seed: int, lam: float) -> None:
    relevance, codes, vectors = tied_lists(seed)
    expected = reference_mmr(relevance, codes, vectors, 8, lam)
    np.testing.assert_array_equal(mmr(relevance, codes, vectors, 8, lam), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_mmr_lambda_one_is_relevance_order(seed: int) -> None:
    relevance, codes, vectors = tied_lists(seed)
    positions = mmr(relevance, codes, vectors, 10, 1.0)
    np.testing.assert_array_equal(positions, relevance_order(relevance, 10))


def test_mmr_lambda_zero_covers_distinct_topics_first() -> None:
    relevance, codes, vectors = tied_lists(0, n_items=60, width=20, n_topics=3)
    vectors[np.all(vectors == 0, axis=1), 0] = 1.0  # no zero vectors: exactly three topics
    positions = mmr(relevance, codes, vectors, 3, 0.0)
    topics = vectors.argmax(axis=1)[np.take_along_axis(codes, positions, axis=1)]
    for row, code_row in zip(topics, codes, strict=True):
        available = set(vectors.argmax(axis=1)[code_row].tolist())
        assert len(set(row.tolist())) == min(3, len(available))


# ---------------------------------------------------------------------------- DPP
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("theta", [0.0, 0.3, 0.5, 0.7, 0.9])
def test_dpp_matches_brute_force_greedy(seed: int, theta: float) -> None:
    relevance, codes, vectors = random_lists(seed)
    expected = reference_dpp(relevance, codes, vectors, 6, theta)
    np.testing.assert_array_equal(dpp(relevance, codes, vectors, 6, theta), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("theta", [0.0, 0.5, 0.95])
def test_dpp_matches_brute_force_up_to_ties(seed: int, theta: float) -> None:
    """With duplicates, zero vectors and tied relevance, each fast pick must reach the
    brute-force best log det given the same prefix (or, once stopped, the best relevance)."""
    relevance, codes, vectors = tied_lists(seed)
    k = 8
    positions = dpp(relevance, codes, vectors, k, theta)
    assert_valid_positions(positions, *relevance.shape, k)
    for rel_row, code_row, picks in zip(relevance, codes, positions.tolist(), strict=True):
        kernel, rel = _dpp_kernel(rel_row, code_row, vectors, theta)
        stopped = False
        for step, pick in enumerate(picks):
            chosen = picks[:step]
            rest = [i for i in range(len(rel)) if i not in chosen]
            if not stopped:
                base = _log_det(kernel, chosen)
                gains = {i: _log_det(kernel, [*chosen, i]) - base for i in rest}
                best_gain = max(gains.values())
                if math.exp(best_gain) >= DPP_MIN_GAIN * 1.01:
                    assert gains[pick] == pytest.approx(best_gain, abs=1e-6)
                    continue
                stopped = math.exp(best_gain) < DPP_MIN_GAIN * 0.99
                if not stopped:
                    continue  # too close to the stop threshold to tell
            assert rel[pick] == max(rel[i] for i in rest)


@pytest.mark.parametrize("seed", SEEDS)
def test_dpp_theta_near_one_is_relevance_order(seed: int) -> None:
    relevance, codes, vectors = random_lists(seed)
    positions = dpp(relevance, codes, vectors, 10, 1 - 1e-9)
    np.testing.assert_array_equal(positions, relevance_order(relevance, 10))


def test_dpp_theta_zero_covers_distinct_topics_first() -> None:
    relevance, codes, vectors = tied_lists(1, n_items=60, width=20, n_topics=3)
    vectors[np.all(vectors == 0, axis=1), 0] = 1.0
    positions = dpp(relevance, codes, vectors, 3, 0.0)
    topics = vectors.argmax(axis=1)[np.take_along_axis(codes, positions, axis=1)]
    for row, code_row in zip(topics, codes, strict=True):
        available = set(vectors.argmax(axis=1)[code_row].tolist())
        assert len(set(row.tolist())) == min(3, len(available))


def test_dpp_fills_by_relevance_after_the_gain_vanishes() -> None:
    # Every candidate shares one direction: after the first pick the kernel only adds
    # the jitter, so a high theta (tiny qualities) stops and fills by relevance.
    relevance = np.array([[0.1, 0.9, 0.5, 0.7, 0.3, 0.8]])
    codes = np.arange(6)[None, :]
    vectors = np.ones((6, 3))
    positions = dpp(relevance, codes, vectors, 6, 0.99)
    np.testing.assert_array_equal(positions, [[1, 5, 3, 2, 4, 0]])


# ---------------------------------------------------------------------------- fair
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("min_share", [0.0, 0.2, 0.3, 0.5, 0.7, 1.0])
def test_fair_matches_reference(seed: int, min_share: float) -> None:
    rng = np.random.default_rng(seed)
    relevance = rng.integers(0, 5, size=(8, 15)).astype(np.float64)  # ties included
    groups = rng.integers(0, 3, size=(8, 15))
    groups[0] = 0  # a user without protected candidates
    expected = reference_fair(relevance, groups, 10, min_share, 1)
    np.testing.assert_array_equal(fair_exposure(relevance, groups, 10, min_share, 1), expected)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("min_share", [0.1, 0.3, 0.5, 0.9])
def test_fair_meets_min_share_in_every_prefix(seed: int, min_share: float) -> None:
    rng = np.random.default_rng(seed)
    relevance = rng.normal(size=(20, 30))
    groups = (rng.random((20, 30)) < 0.4).astype(np.int64)
    k = 10
    groups[:, :k] = 0  # the most relevant positions hold no protected item...
    relevance[:, :k] += 10  # ...so the constraint has to bind
    groups[:, k::2] = 1  # and enough protected candidates exist
    positions = fair_exposure(relevance, groups, k, min_share, 1)
    protected = np.take_along_axis(groups, positions, axis=1) == 1
    enough = groups.sum(axis=1) >= math.floor(min_share * k + 1e-9)
    prefix_counts = np.cumsum(protected, axis=1)
    required = np.floor(min_share * np.arange(1, k + 1) + 1e-9)
    assert enough.all()
    assert (prefix_counts >= required).all()


def test_fair_min_share_zero_is_relevance_order() -> None:
    relevance, _, _ = tied_lists(2)
    groups = np.ones_like(relevance, dtype=np.int64)
    positions = fair_exposure(relevance, groups, 7, 0.0, 1)
    np.testing.assert_array_equal(positions, relevance_order(relevance, 7))


def test_fair_fills_by_relevance_when_no_protected_item_is_left() -> None:
    relevance = np.array([[5.0, 4.0, 3.0, 2.0, 1.0]])
    groups = np.array([[0, 0, 0, 1, 0]])
    positions = fair_exposure(relevance, groups, 5, 1.0, 1)
    np.testing.assert_array_equal(positions, [[3, 0, 1, 2, 4]])


# ---------------------------------------------------------------------------- shared properties
@pytest.mark.parametrize("make", [random_lists, tied_lists])
@pytest.mark.parametrize("seed", SEEDS)
def test_outputs_are_distinct_candidate_positions(make, seed: int) -> None:
    relevance, codes, vectors = make(seed)
    groups = codes % 2
    n_users, width = relevance.shape
    for k in (1, 5, width):
        assert_valid_positions(mmr(relevance, codes, vectors, k, 0.4), n_users, width, k)
        assert_valid_positions(dpp(relevance, codes, vectors, k, 0.4), n_users, width, k)
        assert_valid_positions(fair_exposure(relevance, groups, k, 0.4, 1), n_users, width, k)


@pytest.mark.parametrize("seed", [0, 1])
def test_block_path_matches_gram_path(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import paretorec.ranking._rerankers as rerankers

    relevance, codes, vectors = random_lists(seed, n_users=30)
    with_gram = ItemSimilarity(vectors)
    assert with_gram.gram is not None
    without_gram = ItemSimilarity(vectors, precompute_gram=False)
    assert without_gram.gram is None
    monkeypatch.setattr(rerankers, "BLOCK_BYTES", 20_000)  # several user blocks
    for fn, parameter in ((mmr, 0.5), (dpp, 0.5)):
        np.testing.assert_array_equal(
            fn(relevance, codes, with_gram, 6, parameter),
            fn(relevance, codes, without_gram, 6, parameter),
        )


def test_sparse_vectors_match_dense() -> None:
    relevance, codes, vectors = tied_lists(3)
    sparse = sp.csr_matrix(vectors)
    np.testing.assert_array_equal(
        mmr(relevance, codes, sparse, 6, 0.5), mmr(relevance, codes, vectors, 6, 0.5)
    )
    np.testing.assert_array_equal(
        dpp(relevance, codes, sparse, 6, 0.5), dpp(relevance, codes, vectors, 6, 0.5)
    )


def test_no_users_gives_an_empty_result() -> None:
    relevance = np.zeros((0, 5))
    codes = np.zeros((0, 5), dtype=np.int64)
    vectors = np.eye(5)
    assert mmr(relevance, codes, vectors, 3, 0.5).shape == (0, 3)
    assert dpp(relevance, codes, vectors, 3, 0.5).shape == (0, 3)
    assert fair_exposure(relevance, codes, 3, 0.5, 1).shape == (0, 3)


# ---------------------------------------------------------------------------- errors
def _good():
    return random_lists(0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r, c, v: mmr(r, c, v, 6, 1.7), "lam must be in [0, 1], got 1.7"),
        (lambda r, c, v: mmr(r, c, v, 0, 0.5), "k must be a positive int, got 0"),
        (
            lambda r, c, v: mmr(r, c, v, 13, 0.5),
            "k must be at most the number of candidates C=12, got k=13",
        ),
        (lambda r, c, v: dpp(r, c, v, 6, 1.0), "theta must be in [0, 1), got 1.0"),
        (lambda r, c, v: dpp(r, c, v, 6, -0.1), "theta must be in [0, 1), got -0.1"),
        (
            lambda r, c, v: fair_exposure(r, c % 2, 6, 1.2, 1),
            "min_share must be in [0, 1], got 1.2",
        ),
        (
            lambda r, c, v: fair_exposure(r, c % 2, 6, 0.5, "tail"),
            "protected_group must be an int, got 'tail'",
        ),
        (
            lambda r, c, v: fair_exposure(r, c[:, :3], 6, 0.5, 1),
            "groups_of_candidates must have the shape of relevance (6, 12), got shape (6, 3)",
        ),
        (
            lambda r, c, v: mmr(r[0], c, v, 6, 0.5),
            "relevance must be a 2-D array (n_users, C), got shape (12,)",
        ),
        (
            lambda r, c, v: mmr(np.where(r > 1, np.nan, r), c, v, 6, 0.5),
            "relevance must hold only finite values",
        ),
        (
            lambda r, c, v: mmr(r, c.astype(float), v, 6, 0.5),
            "item_codes must hold integers, got dtype float64",
        ),
        (
            lambda r, c, v: mmr(r, c, v[:10], 6, 0.5),
            "item_codes holds item code 39, but vectors has 10 rows (valid codes 0..9)",
        ),
        (
            lambda r, c, v: dpp(r, c, v[:, 0], 6, 0.5),
            "item vectors must be a 2-D array (n_items, d), got shape (40,)",
        ),
        (
            lambda r, c, v: dpp(r, c, np.full_like(v, np.inf), 6, 0.5),
            "item vectors must hold only finite values",
        ),
    ],
)
def test_bad_inputs(call, message: str) -> None:
    relevance, codes, vectors = _good()
    with pytest.raises(ParetorecError) as info:
        call(relevance, codes, vectors)
    assert str(info.value) == message


# ---------------------------------------------------------------------------- scale
@pytest.mark.parametrize("dim", [19, 384])
def test_movielens_sized_batch_runs(dim: int) -> None:
    """Smoke test at MovieLens-100k size (943 users x 100 candidates): no timing assertion."""
    rng = np.random.default_rng(0)
    n_users, width, n_items = 943, 100, 1682
    codes = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :width]
    relevance = rng.random((n_users, width)).astype(np.float32)
    vectors = rng.normal(size=(n_items, dim)).astype(np.float32)
    similarity = ItemSimilarity(vectors)
    for positions in (
        mmr(relevance, codes, similarity, 10, 0.5),
        dpp(relevance, codes, similarity, 10, 0.5),
        fair_exposure(relevance, codes % 2, 10, 0.5, 1),
    ):
        assert_valid_positions(positions, n_users, width, 10)


# ---------------------------------------------------------------- max-sum MMR and exposure
def _reference_greedy(relevance, codes, vectors, k, lam, mean, penalty, n_items):  # type: ignore[no-untyped-def]
    """Slow loop: MMR (max or mean redundancy) with the cross-user exposure penalty."""
    from paretorec._arrays import unit_rows

    units, _ = unit_rows(vectors)
    units = np.asarray(units)
    rel = relevance.astype(np.float64)
    lo, hi = rel.min(axis=1, keepdims=True), rel.max(axis=1, keepdims=True)
    rel = np.where(hi > lo, (rel - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    n, width = rel.shape
    counts = np.zeros(n_items)
    scale = penalty / np.log1p(n)
    chosen: list[list[int]] = [[] for _ in range(n)]
    for _step in range(k):
        picks = []
        for u in range(n):
            best, best_score = -1, -np.inf
            for c in range(width):
                if c in chosen[u]:
                    continue
                sims = [float(units[codes[u, c]] @ units[codes[u, s]]) for s in chosen[u]]
                redundancy = (np.mean(sims) if mean else max(sims)) if sims else 0.0
                score = lam * rel[u, c] - (1 - lam) * redundancy
                score -= scale * np.log1p(counts[codes[u, c]])
                if score > best_score + 1e-12:
                    best, best_score = c, score
            picks.append(best)
        for u, c in enumerate(picks):
            chosen[u].append(c)
            counts[codes[u, c]] += 1
    return np.array(chosen)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("mean", "penalty"), [(True, 0.0), (False, 0.4), (True, 0.4)])
def test_mmr_mean_and_exposure_match_reference(seed: int, mean: bool, penalty: float) -> None:
    from paretorec.ranking._rerankers import Exposure, ItemSimilarity, _mmr

    rng = np.random.default_rng(seed)
    n_items, n, width, k = 15, 6, 8, 4
    vectors = rng.normal(size=(n_items, 5))
    codes = np.array([rng.choice(n_items, size=width, replace=False) for _ in range(n)])
    relevance = rng.random((n, width))
    exposure = Exposure(n_items, n, penalty) if penalty else None
    ours = _mmr(relevance, codes, ItemSimilarity(vectors), k, 0.6, mean=mean, exposure=exposure)
    expected = _reference_greedy(relevance, codes, vectors, k, 0.6, mean, penalty, n_items)
    np.testing.assert_array_equal(ours, expected)


def test_exposure_penalty_spreads_exposure_and_is_refused_with_dpp() -> None:
    from paretorec import ParetorecError
    from paretorec.evaluation import catalogue_coverage
    from paretorec.ranking import CandidateSet, ItemContext, Policy, apply_policy

    rng = np.random.default_rng(0)
    n, n_items, width = 50, 40, 20
    items = np.array([rng.permutation(n_items)[:width] for _ in range(n)])
    scores = np.sort(rng.random((n, width)), axis=1)[:, ::-1].astype(np.float32)
    candidates = CandidateSet(users=np.arange(n), items=items, scores=scores)
    context = ItemContext(
        vectors=rng.random((n_items, 4)),
        popularity=rng.integers(1, 50, n_items),
        n_users=n,
        groups=np.zeros(n_items, dtype=np.int64),
    )
    plain = apply_policy(Policy(k=5), candidates, context)
    spread = apply_policy(Policy(k=5, exposure_penalty=2.0), candidates, context)
    assert catalogue_coverage(spread, n_items) >= catalogue_coverage(plain, n_items)
    assert (
        np.bincount(spread.ravel(), minlength=n_items).max()
        < np.bincount(plain.ravel(), minlength=n_items).max()
    )
    with pytest.raises(ParetorecError, match=r"exposure_penalty works with the re-rankers"):
        Policy(reranker="dpp", exposure_penalty=0.5)
