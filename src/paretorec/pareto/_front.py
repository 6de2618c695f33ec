"""Pareto-front utilities: dominance, non-dominated sorting, normalisation, hypervolume, and
picking one operating point (knee, weighted Chebyshev, epsilon-constraint) from a front.

Conventions shared by every function here:

* ``values`` is a finite float array ``(n_points, n_objectives)`` holding at least one point;
  ``directions`` gives ``"maximize"`` or ``"minimize"`` for each objective (column).
* Point ``a`` *dominates* ``b`` when ``a`` is no worse than ``b`` in every objective and strictly
  better in at least one. Equal points do not dominate each other, so duplicates of a
  non-dominated point are all kept.
* *Normalised space* maps every objective to "maximize in [0, 1]":
  ``v' = (v - nadir) / (ideal - nadir)``, so 0 is the nadir (worst) and 1 the ideal (best),
  whatever the direction. See :class:`Normalization`.
* Objectives are named by column index, or by name where a function takes ``names``.
* Returned indices are row indices of ``values``; ties go to the lowest index.

>>> values = [[0.30, 12.0], [0.25, 4.0], [0.20, 5.0], [0.10, 1.0]]  # ndcg, latency_ms
>>> directions = ["maximize", "minimize"]
>>> non_dominated_mask(values, directions).tolist()
[True, True, False, True]
>>> non_dominated_sort(values, directions).tolist()
[0, 0, 1, 0]
>>> front = ParetoFront(values, directions, names=["ndcg", "latency_ms"])
>>> front.pick_constrained("ndcg", {"latency_ms": 5.0})
1
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import ParetorecError, check_choice, check_nonnegative_float, plain, show

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
ObjectiveKey = int | str

DIRECTIONS = ("maximize", "minimize")
#: Upper bound on the cells of one (targets x dominators) boolean block in dominance checks.
_BLOCK_CELLS = 1 << 22
#: Rows per block in non-dominated sorting; bounds its sequential within-block pass.
_SORT_BLOCK_ROWS = 256
#: Signed distances (normalised space) closer than this to the best count as a knee tie.
_KNEE_TIE_TOLERANCE = 1e-12


# ---------------------------------------------------------------------------- validation
def _check_values(values: Any, name: str = "values") -> FloatArray:
    """``values`` as a finite float64 array of shape (n_points >= 1, n_objectives >= 1)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParetorecError(
            f"{name} must be a numeric array of shape (n_points, n_objectives), got {show(values)}"
        ) from exc
    if arr.ndim != 2:
        raise ParetorecError(
            f"{name} must be a 2-D array of shape (n_points, n_objectives), got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ParetorecError(f"{name} must hold at least one point, got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ParetorecError(
            f"{name} must have at least one objective column, got shape {arr.shape}"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise ParetorecError(f"{name}[{row}, {col}] must be finite, got {float(arr[row, col])}")
    return arr


def _check_sequence(value: Any, name: str, what: str) -> list[Any]:
    """``value`` as a list; a bare string or a mapping is rejected (it is one value, not many)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ParetorecError(f"{name} must be a sequence of {what}, got {show(value)}")
    return list(value)


def _check_length(items: Sized, name: str, n_objectives: int) -> None:
    if len(items) != n_objectives:
        raise ParetorecError(
            f"{name} must have {n_objectives} entries, one per objective column, got {len(items)}"
        )


def _check_directions(directions: Any, n_objectives: int) -> tuple[str, ...]:
    items = _check_sequence(
        directions, "directions", "'maximize'/'minimize' strings, one per objective"
    )
    _check_length(items, "directions", n_objectives)
    return tuple(check_choice(d, f"directions[{j}]", DIRECTIONS) for j, d in enumerate(items))


def _check_problem(values: Any, directions: Any) -> tuple[FloatArray, tuple[str, ...]]:
    arr = _check_values(values)
    return arr, _check_directions(directions, arr.shape[1])


def _signs(directions: Sequence[str]) -> FloatArray:
    """+1 for maximize, -1 for minimize: ``values * signs`` is "larger is better" everywhere."""
    return np.array([1.0 if d == "maximize" else -1.0 for d in directions])


def _check_names(names: Any, n_objectives: int) -> tuple[str, ...] | None:
    if names is None:
        return None
    items = _check_sequence(names, "names", "strings, one per objective")
    _check_length(items, "names", n_objectives)
    for j, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise ParetorecError(f"names[{j}] must be a non-empty string, got {show(item)}")
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise ParetorecError(f"names must be unique, got {item!r} twice")
        seen.add(item)
    return tuple(items)


def _resolve_objective(
    key: Any, names: tuple[str, ...] | None, n_objectives: int, what: str = "objective"
) -> int:
    """Column index of ``key``: an index in ``0..n_objectives-1`` or one of ``names``."""
    if isinstance(key, str):
        if names is None:
            raise ParetorecError(
                f"{what} {key!r} is a name, but no names were given; pass names=... "
                f"or use a column index"
            )
        if key not in names:
            known = ", ".join(repr(n) for n in names)
            raise ParetorecError(f"{what} {key!r} is not one of the objective names: {known}")
        return names.index(key)
    if isinstance(key, bool) or not isinstance(key, numbers.Integral):
        raise ParetorecError(f"{what} must be an objective name or column index, got {show(key)}")
    if not 0 <= int(key) < n_objectives:
        raise ParetorecError(
            f"{what} {plain(key)} is not a column index; valid indices are 0..{n_objectives - 1}"
        )
    return int(key)


def _check_point(point: Any, name: str, n_objectives: int) -> FloatArray:
    """A finite 1-D vector with one entry per objective (a bound or reference point)."""
    try:
        arr = np.asarray(point, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParetorecError(f"{name} must be a sequence of numbers, got {show(point)}") from exc
    if arr.ndim != 1:
        raise ParetorecError(f"{name} must be a 1-D sequence of numbers, got shape {arr.shape}")
    _check_length(arr, name, n_objectives)
    finite = np.isfinite(arr)
    if not finite.all():
        j = int(np.flatnonzero(~finite)[0])
        raise ParetorecError(f"{name}[{j}] must be finite, got {float(arr[j])}")
    return arr


def _check_weights(weights: Any, n_objectives: int, names: tuple[str, ...] | None) -> FloatArray:
    """Non-negative finite weights with a positive entry, scaled to sum to one.

    A mapping ``{objective: weight}`` gives unlisted objectives weight 0.
    """
    out = np.zeros(n_objectives)
    if isinstance(weights, Mapping):
        entries = [
            (_resolve_objective(key, names, n_objectives, "weights key"), f"weights[{key!r}]", w)
            for key, w in weights.items()
        ]
    else:
        items = _check_sequence(weights, "weights", "numbers, one per objective")
        _check_length(items, "weights", n_objectives)
        entries = [(j, f"weights[{j}]", w) for j, w in enumerate(items)]
    for j, label, raw in entries:
        w = check_nonnegative_float(plain(raw), label)
        if not math.isfinite(w):
            raise ParetorecError(f"{label} must be finite, got {w}")
        out[j] += w
    total = float(out.sum())
    if total <= 0:
        raise ParetorecError(
            f"weights must have at least one positive entry, got {show(out.tolist())}"
        )
    return np.asarray(out / total, dtype=np.float64)


# ---------------------------------------------------------------------------- dominance
def _block_rows(n_columns: int, cap: int | None = None) -> int:
    rows = max(32, _BLOCK_CELLS // max(n_columns, 1))
    return rows if cap is None else min(rows, cap)


def _dominance_block(dominators: FloatArray, targets: FloatArray) -> BoolArray:
    """``out[t, d]``: ``dominators[d]`` dominates ``targets[t]`` (both oriented to maximize)."""
    shape = (targets.shape[0], dominators.shape[0])
    no_worse = np.ones(shape, dtype=bool)
    better = np.zeros(shape, dtype=bool)
    scratch = np.empty(shape, dtype=bool)
    # One objective at a time keeps memory at a few (targets x dominators) boolean planes.
    for j in range(targets.shape[1]):
        mine, theirs = targets[:, None, j], dominators[None, :, j]
        np.greater_equal(theirs, mine, out=scratch)
        no_worse &= scratch
        np.greater(theirs, mine, out=scratch)
        better |= scratch
    no_worse &= better
    return no_worse


def _lexicographic_descending(points: FloatArray) -> IntArray:
    """Row order, best first lexicographically: a dominator always precedes what it dominates."""
    keys = tuple(-points[:, j] for j in reversed(range(points.shape[1])))
    return np.lexsort(keys).astype(np.int64)


def _non_dominated_oriented(points: FloatArray) -> BoolArray:
    """Non-dominated mask of points oriented so that larger is better in every column."""
    n = points.shape[0]
    order = _lexicographic_descending(points)
    ordered = points[order]
    keep = np.zeros(n, dtype=bool)
    rows = _block_rows(n)
    for start in range(0, n, rows):
        block = ordered[start : start + rows]
        # Every dominated point has a non-dominated dominator earlier in lexicographic order,
        # so the non-dominated points found so far plus the block itself suffice.
        dominators = np.concatenate([ordered[:start][keep[:start]], block])
        keep[start : start + rows] = ~_dominance_block(dominators, block).any(axis=1)
    mask = np.empty(n, dtype=bool)
    mask[order] = keep
    return mask


def _front_ranks_oriented(points: FloatArray) -> IntArray:
    """Front ranks of points oriented so that larger is better (0 = non-dominated)."""
    n = points.shape[0]
    order = _lexicographic_descending(points)
    ordered = points[order]
    ranks = np.zeros(n, dtype=np.int64)
    rows = _block_rows(n, cap=_SORT_BLOCK_ROWS)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        block = ordered[start:stop]
        # rank = length of the longest chain of dominators above the point (NSGA-II fronts);
        # all dominators precede the point lexicographically, so their ranks are known first.
        if start:
            dominated_by = _dominance_block(ordered[:start], block)
            base = np.where(dominated_by, ranks[None, :start] + 1, 0).max(axis=1)
        else:
            base = np.zeros(stop - start, dtype=np.int64)
        within = _dominance_block(block, block)
        for i in np.flatnonzero(within.any(axis=1)):
            base[i] = max(base[i], int(base[: int(i)][within[i, : int(i)]].max()) + 1)
        ranks[start:stop] = base
    out = np.empty(n, dtype=np.int64)
    out[order] = ranks
    return out


def non_dominated_mask(values: ArrayLike, directions: Sequence[str]) -> BoolArray:
    """Boolean mask ``(n_points,)`` of the points no other point dominates.

    ``a`` dominates ``b`` when it is no worse in every objective and strictly better in at least
    one; duplicates of a non-dominated point are all kept. Blockwise broadcasting over points in
    lexicographic order compares each point only with the non-dominated points found so far:
    O(n * front_size * m) time, bounded memory (20k points take about a second).
    """
    arr, dirs = _check_problem(values, directions)
    return _non_dominated_oriented(arr * _signs(dirs))


def non_dominated_sort(values: ArrayLike, directions: Sequence[str]) -> IntArray:
    """Front rank of every point, as in NSGA-II's fast non-dominated sorting.

    Rank 0 is the non-dominated set; rank ``k`` is the non-dominated set of what remains after
    removing ranks ``0..k-1``. Equivalently, a point's rank is the length of the longest chain of
    points dominating one another above it, which is how it is computed here (blockwise,
    O(n^2 m) time, bounded memory). Sorting the rank-0 points again gives all zeros.
    """
    arr, dirs = _check_problem(values, directions)
    return _front_ranks_oriented(arr * _signs(dirs))


# ---------------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class Normalization:
    """Per-objective bounds mapping values to "maximize in [0, 1]" (normalised space).

    ``apply(values)[:, j] = (values[:, j] - nadir[j]) / (ideal[j] - nadir[j])``: 1 at the ideal
    (best) value, 0 at the nadir (worst) value, for maximize and minimize objectives alike.
    ``ideal`` must be no worse than ``nadir`` in every objective.

    * Values beyond the bounds (possible when the bounds come from other data) extrapolate
      linearly: above 1 is better than the ideal, below 0 worse than the nadir. Normalise
      several fronts with one ``Normalization`` (e.g. from their stacked values) to compare them.
    * A constant objective (``ideal == nadir``) maps to 1.0; with bounds from other data a point
      worse than that value maps to 0.0.
    """

    ideal: tuple[float, ...]
    nadir: tuple[float, ...]
    directions: tuple[str, ...]

    def __post_init__(self) -> None:
        directions = _check_sequence(
            self.directions, "directions", "'maximize'/'minimize' strings, one per objective"
        )
        if not directions:
            raise ParetorecError("directions must name at least one objective, got []")
        m = len(directions)
        dirs = _check_directions(directions, m)
        ideal = _check_point(self.ideal, "ideal", m)
        nadir = _check_point(self.nadir, "nadir", m)
        worse = (ideal - nadir) * _signs(dirs) < 0
        if worse.any():
            j = int(np.flatnonzero(worse)[0])
            raise ParetorecError(
                f"ideal[{j}]={float(ideal[j])} is worse than nadir[{j}]={float(nadir[j])} for a "
                f"{dirs[j]!r} objective; the ideal must be no worse than the nadir"
            )
        object.__setattr__(self, "ideal", tuple(float(v) for v in ideal))
        object.__setattr__(self, "nadir", tuple(float(v) for v in nadir))
        object.__setattr__(self, "directions", dirs)

    @classmethod
    def from_values(cls, values: ArrayLike, directions: Sequence[str]) -> Normalization:
        """Bounds observed in ``values``: ideal = best value, nadir = worst, per objective."""
        arr, dirs = _check_problem(values, directions)
        maximize = _signs(dirs) > 0
        best = np.where(maximize, arr.max(axis=0), arr.min(axis=0))
        worst = np.where(maximize, arr.min(axis=0), arr.max(axis=0))
        return cls(tuple(best.tolist()), tuple(worst.tolist()), dirs)

    @property
    def n_objectives(self) -> int:
        return len(self.directions)

    def apply(self, values: ArrayLike) -> FloatArray:
        """``values`` in normalised space (float array of the same shape)."""
        arr = _check_values(values)
        if arr.shape[1] != self.n_objectives:
            raise ParetorecError(
                f"values has {arr.shape[1]} objective columns but this normalization has "
                f"{self.n_objectives}"
            )
        ideal = np.asarray(self.ideal)
        nadir = np.asarray(self.nadir)
        span = ideal - nadir
        constant = span == 0
        out = (arr - nadir) / np.where(constant, 1.0, span)
        if constant.any():
            no_worse_than_ideal = (arr - ideal) * _signs(self.directions) >= 0
            out = np.where(constant, np.where(no_worse_than_ideal, 1.0, 0.0), out)
        return out

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON-able form; :meth:`from_dict` restores it."""
        return {
            "ideal": list(self.ideal),
            "nadir": list(self.nadir),
            "directions": list(self.directions),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalization:
        _check_keys(data, ("ideal", "nadir", "directions"), "normalization dict")
        return cls(tuple(data["ideal"]), tuple(data["nadir"]), tuple(data["directions"]))


def _check_keys(data: Any, required: Sequence[str], what: str) -> None:
    if not isinstance(data, Mapping):
        raise ParetorecError(f"{what} must be a mapping, got {show(data)}")
    for key in required:
        if key not in data:
            raise ParetorecError(f"{what} is missing key {key!r}")


def _resolve_normalization(
    normalization: Any, values: FloatArray, directions: tuple[str, ...]
) -> Normalization:
    if normalization is None:
        return Normalization.from_values(values, directions)
    if not isinstance(normalization, Normalization):
        raise ParetorecError(
            f"normalization must be a Normalization or None, got {show(normalization)}"
        )
    if normalization.directions != directions:
        raise ParetorecError(
            f"normalization has directions {list(normalization.directions)} but the values "
            f"have directions {list(directions)}"
        )
    return normalization


def normalize(
    values: ArrayLike,
    directions: Sequence[str],
    ideal: Sequence[float] | None = None,
    nadir: Sequence[float] | None = None,
) -> tuple[FloatArray, Normalization]:
    """``values`` in normalised space ("maximize in [0, 1]") and the bounds used.

    Bounds not given come from the data: ``ideal`` = best observed value, ``nadir`` = worst
    observed value, per objective (in the objective's own units and direction). With bounds
    from the data every result lies in [0, 1]; see :class:`Normalization` for values beyond
    given bounds and for constant objectives (mapped to 1.0). Pass the returned
    ``Normalization`` (or its ``apply``) to normalise other fronts with the same bounds.
    """
    arr, dirs = _check_problem(values, directions)
    observed = Normalization.from_values(arr, dirs)
    m = arr.shape[1]
    bounds = Normalization(
        tuple(_check_point(ideal, "ideal", m).tolist()) if ideal is not None else observed.ideal,
        tuple(_check_point(nadir, "nadir", m).tolist()) if nadir is not None else observed.nadir,
        dirs,
    )
    return bounds.apply(arr), bounds


# ---------------------------------------------------------------------------- hypervolume
def _hypervolume_2d(points: FloatArray) -> float:
    """Area of the union of boxes ``[0, p]`` for 2-D points with positive coordinates."""
    order = np.lexsort((-points[:, 1], -points[:, 0]))
    heights = np.maximum.accumulate(points[order, 1])
    # Sweep by decreasing x: each point adds a strip of its width above the running height.
    return float(points[order, 0] @ np.diff(heights, prepend=0.0))


def _hypervolume_3d(points: FloatArray) -> float:
    """Volume of the union of boxes ``[0, p]`` for 3-D points, O(n^2) vectorised.

    Slice along z (descending): ``V = sum_k area_k * (z_k - z_{k+1})`` with ``area_k`` the 2-D
    area of the first ``k`` points, accumulated from each point's exclusive 2-D contribution
    with respect to the points above it. Those contributions come from one staircase sweep per
    point over a columns-sorted-by-x matrix ``min(column point, row point)``: taking the
    minimum with a row keeps the columns sorted, so no per-row sort is needed.
    """
    n = points.shape[0]
    points = points[np.argsort(-points[:, 2], kind="stable")]
    x_order = np.argsort(-points[:, 0], kind="stable")
    xs, ys = points[x_order, 0], points[x_order, 1]
    contributions = np.empty(n)
    rows = _block_rows(n)
    for start in range(0, n, rows):
        block = points[start : start + rows]
        widths = np.minimum(xs[None, :], block[:, 0, None])
        above = x_order[None, :] < np.arange(start, start + block.shape[0])[:, None]
        heights = np.where(above, np.minimum(ys[None, :], block[:, 1, None]), 0.0)
        np.maximum.accumulate(heights, axis=1, out=heights)
        covered = (widths * np.diff(heights, axis=1, prepend=0.0)).sum(axis=1)
        contributions[start : start + block.shape[0]] = block[:, 0] * block[:, 1] - covered
    areas = np.cumsum(contributions)
    depths = points[:, 2] - np.append(points[1:, 2], 0.0)
    return float(areas @ depths)


def _hypervolume_slicing(points: FloatArray) -> float:
    """HSO: slice along the last objective, recursing on the (m-1)-D cross-sections.

    The cross-section's non-dominated set is updated incrementally; a point weakly dominated
    within it leaves the cross-section (and its volume) unchanged.
    """
    points = points[np.argsort(-points[:, -1], kind="stable")]
    depths = points[:, -1] - np.append(points[1:, -1], 0.0)
    section = points[:0, :-1]
    section_volume = 0.0
    stale = False
    total = 0.0
    for k in range(points.shape[0]):
        p = points[k, :-1]
        if not (section >= p).all(axis=1).any():
            section = np.concatenate([section[~(p >= section).all(axis=1)], p[None, :]])
            stale = True
        if depths[k] > 0:
            if stale:
                section_volume = _hypervolume_positive(section)
                stale = False
            total += float(depths[k]) * section_volume
    return total


def _hypervolume_positive(points: FloatArray) -> float:
    """Volume dominated by points with strictly positive coordinates, reference at the origin."""
    n, m = points.shape
    if n == 0:
        return 0.0
    if n == 1:
        return float(np.prod(points[0]))
    if m == 1:
        return float(points[:, 0].max())
    if m == 2:
        return _hypervolume_2d(points)
    if m == 3:
        return _hypervolume_3d(points)
    return _hypervolume_slicing(points)


def _reference_point(
    reference: Sequence[float] | None, reference_offset: float | None, n_objectives: int
) -> FloatArray:
    """The hypervolume reference point in normalised space (default: the nadir, the origin)."""
    if reference is not None and reference_offset is not None:
        raise ParetorecError(
            f"give reference or reference_offset, not both; got reference={show(reference)} "
            f"and reference_offset={show(reference_offset)}"
        )
    if reference is not None:
        return _check_point(reference, "reference", n_objectives)
    if reference_offset is None:
        return np.zeros(n_objectives)
    offset = check_nonnegative_float(plain(reference_offset), "reference_offset")
    if not math.isfinite(offset):
        raise ParetorecError(f"reference_offset must be finite, got {offset}")
    return np.full(n_objectives, -offset)


def hypervolume(
    values: ArrayLike,
    directions: Sequence[str],
    reference: Sequence[float] | None = None,
    normalization: Normalization | None = None,
    reference_offset: float | None = None,
) -> float:
    """Dominated hypervolume, computed exactly in normalised space.

    Objectives are first mapped to "maximize in [0, 1]" with ``normalization`` (default: the
    bounds of ``values`` itself, :meth:`Normalization.from_values`). The volume is that of the
    union of the boxes spanned by each point and the reference point, which is the origin of
    normalised space (the nadir) unless ``reference`` (in normalised space) or
    ``reference_offset`` is given. Points not strictly better than the reference in every
    objective contribute nothing, so with the nadir as reference a point at the nadir in any
    objective (an extreme point of the front: best in one objective, worst in another) adds no
    volume. ``reference_offset=0.1`` moves the reference 10 % of each objective's range
    (ideal - nadir of the normalisation) beyond the nadir, i.e. to ``[-0.1] * m`` in
    normalised space, so the extremes count; give ``reference`` or ``reference_offset``, not
    both. With the default normalisation the value depends on the front's own bounds: to
    compare fronts, or to track a growing front, pass one shared ``normalization``.

    Exact for any number of objectives: sweeps in 2-D (O(n log n)), an O(n^2) vectorised
    slicing in 3-D, HSO slicing over the last objective above that (O(n^(m-1)) worst case;
    about 0.03 s for 200 non-dominated points in 4-D).
    """
    arr, dirs = _check_problem(values, directions)
    bounds = _resolve_normalization(normalization, arr, dirs)
    origin = _reference_point(reference, reference_offset, arr.shape[1])
    shifted = bounds.apply(arr) - origin
    shifted = shifted[(shifted > 0).all(axis=1)]
    if shifted.shape[0] == 0:
        return 0.0
    shifted = np.unique(shifted, axis=0)
    return _hypervolume_positive(shifted[_non_dominated_oriented(shifted)])


# ---------------------------------------------------------------------------- picking a point
def _extreme_points(normalised: FloatArray) -> FloatArray:
    """Per objective, the point best in it; ties go to the best sum of the others, then index."""
    n, m = normalised.shape
    rows = []
    for j in range(m):
        others = normalised.sum(axis=1) - normalised[:, j]
        rows.append(np.lexsort((np.arange(n), -others, -normalised[:, j]))[0])
    return normalised[rows]


def _hyperplane_normal(extremes: FloatArray) -> FloatArray:
    """``w`` with ``w . e = 1`` for every extreme point ``e``; all ones when degenerate."""
    m = extremes.shape[0]
    if np.linalg.matrix_rank(extremes) == m:
        normal = np.asarray(np.linalg.solve(extremes, np.ones(m)), dtype=np.float64)
        if np.isfinite(normal).all() and (normal > 0).all():
            return normal
    return np.ones(m)


def knee_point(values: ArrayLike, directions: Sequence[str]) -> int:
    """Index of the knee: the point bulging furthest towards the ideal from the extremes' plane.

    Among the non-dominated points, normalised with their own bounds (ideal = 1, nadir = 0):
    take the extreme point of every objective (the point best in it; ties to the best sum of
    the other objectives), fit the hyperplane ``w . v = 1`` through these ``m`` points, and
    return the point with the largest signed distance ``(w . v - 1) / ||w||`` from it, positive
    on the ideal side. In 2-D the plane is the line ``v_0 + v_1 = 1`` through the two ends of
    the front. If the extreme points do not fix a plane facing the ideal (repeated or
    collinear extremes, or a normal with a non-positive component) the plane
    ``sum_j v_j = 1`` is used instead, as NSGA-III does for degenerate intercepts. Ties (within
    1e-12) go to the lowest index; a single non-dominated point is its own knee.
    """
    arr, dirs = _check_problem(values, directions)
    candidates = np.flatnonzero(_non_dominated_oriented(arr * _signs(dirs)))
    subset = arr[candidates]
    normalised = Normalization.from_values(subset, dirs).apply(subset)
    normal = _hyperplane_normal(_extreme_points(normalised))
    distance = (normalised @ normal - 1.0) / float(np.linalg.norm(normal))
    best = np.flatnonzero(distance >= distance.max() - _KNEE_TIE_TOLERANCE)[0]
    return int(candidates[best])


def preference_pick(
    values: ArrayLike,
    directions: Sequence[str],
    weights: Sequence[float] | Mapping[ObjectiveKey, float],
    normalization: Normalization | None = None,
    names: Sequence[str] | None = None,
) -> int:
    """Index minimising the weighted Chebyshev distance to the ideal in normalised space.

    ``argmin_i max_j w_j * (1 - v_ij)`` with ``v`` normalised by ``normalization`` (default:
    bounds of ``values``; 1 = ideal). ``weights`` are non-negative with at least one positive
    entry and are scaled to sum to 1; give one per objective, or a mapping
    ``{objective: weight}`` (index, or name with ``names``) where unlisted objectives weigh 0.
    Only non-dominated points are candidates: a dominated point can at best tie with a point
    dominating it (zero weights ignore some objectives), and the dominating point is returned.
    Remaining ties go to the lowest index.
    """
    arr, dirs = _check_problem(values, directions)
    resolved_names = _check_names(names, arr.shape[1])
    w = _check_weights(weights, arr.shape[1], resolved_names)
    normalised = _resolve_normalization(normalization, arr, dirs).apply(arr)
    candidates = np.flatnonzero(_non_dominated_oriented(arr * _signs(dirs)))
    scores = (w * (1.0 - normalised[candidates])).max(axis=1)
    return int(candidates[np.argmin(scores)])


def epsilon_constraint_pick(
    values: ArrayLike,
    directions: Sequence[str],
    objective: ObjectiveKey,
    constraints: Mapping[ObjectiveKey, float],
    names: Sequence[str] | None = None,
) -> int | None:
    """Index of the best point in ``objective`` among those meeting every constraint.

    ``constraints`` maps objectives (index, or name with ``names``) to bounds, in the
    objective's own units: a lower bound (``>=``) for maximize objectives, an upper bound
    (``<=``) for minimize ones; bounds are inclusive. Returns ``None`` when no point is
    feasible. Ties in ``objective`` go to a tied point that no other tied point dominates (so
    the other objectives break them), then to the lowest index.
    """
    arr, dirs = _check_problem(values, directions)
    m = arr.shape[1]
    resolved_names = _check_names(names, m)
    target = _resolve_objective(objective, resolved_names, m)
    if not isinstance(constraints, Mapping):
        raise ParetorecError(
            f"constraints must be a mapping {{objective: bound}}, got {show(constraints)}"
        )
    oriented = arr * _signs(dirs)
    feasible = np.ones(arr.shape[0], dtype=bool)
    for key, bound in constraints.items():
        column = _resolve_objective(key, resolved_names, m, "constraints key")
        value = plain(bound)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise ParetorecError(f"constraints[{key!r}] must be a number, got {show(bound)}")
        feasible &= oriented[:, column] >= float(value) * _signs(dirs)[column]
    if not feasible.any():
        return None
    scores = np.where(feasible, oriented[:, target], -np.inf)
    tied = np.flatnonzero(scores == scores.max())
    return int(tied[_non_dominated_oriented(oriented[tied])][0])


# ---------------------------------------------------------------------------- ParetoFront
@dataclass(frozen=True, eq=False, repr=False, init=False)
class ParetoFront:
    """A set of evaluated points (e.g. trained policies) with the tools above as methods.

    ``values`` ``(n_points, n_objectives)`` is stored as a read-only float array; ``names``
    default to ``objective_0, objective_1, ...``; ``payloads`` optionally attach one dict per
    point (say, the hyperparameters that produced it; JSON-able for :meth:`to_dict`). Methods
    return row indices into this front. ``front()`` keeps the non-dominated rows (with their
    payloads) as a new ``ParetoFront``.

    >>> front = ParetoFront([[0.3, 12.0], [0.25, 4.0], [0.2, 5.0]], ["maximize", "minimize"],
    ...                     names=["ndcg", "latency_ms"])
    >>> front
    ParetoFront(3 points, 2 non-dominated; ndcg (maximize), latency_ms (minimize))
    >>> front.front().values.tolist()
    [[0.3, 12.0], [0.25, 4.0]]
    >>> front.pick(weights={"latency_ms": 1.0})
    1
    """

    values: FloatArray
    directions: tuple[str, ...]
    names: tuple[str, ...]
    payloads: tuple[dict[str, Any], ...] | None

    def __init__(
        self,
        values: ArrayLike,
        directions: Sequence[str],
        names: Sequence[str] | None = None,
        payloads: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        arr, dirs = _check_problem(values, directions)
        arr = arr.copy()
        arr.flags.writeable = False
        m = arr.shape[1]
        resolved_names = _check_names(names, m) or tuple(f"objective_{j}" for j in range(m))
        object.__setattr__(self, "values", arr)
        object.__setattr__(self, "directions", dirs)
        object.__setattr__(self, "names", resolved_names)
        object.__setattr__(self, "payloads", _check_payloads(payloads, arr.shape[0]))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParetoFront):
            return NotImplemented
        return (
            self.directions == other.directions
            and self.names == other.names
            and self.payloads == other.payloads
            and np.array_equal(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        objectives = ", ".join(
            f"{n} ({d})" for n, d in zip(self.names, self.directions, strict=True)
        )
        extra = ", with payloads" if self.payloads is not None else ""
        return (
            f"ParetoFront({len(self)} points, {int(self.mask.sum())} non-dominated; "
            f"{objectives}{extra})"
        )

    @cached_property
    def mask(self) -> BoolArray:
        """Read-only :func:`non_dominated_mask` of the points."""
        mask = _non_dominated_oriented(self.values * _signs(self.directions))
        mask.flags.writeable = False
        return mask

    @cached_property
    def ranks(self) -> IntArray:
        """Read-only :func:`non_dominated_sort` front ranks of the points."""
        ranks = _front_ranks_oriented(self.values * _signs(self.directions))
        ranks.flags.writeable = False
        return ranks

    def front(self) -> ParetoFront:
        """The non-dominated points (and their payloads) as a new front, in their order here."""
        keep = np.flatnonzero(self.mask)
        payloads = None if self.payloads is None else [self.payloads[i] for i in keep]
        return ParetoFront(self.values[keep], self.directions, self.names, payloads)

    def normalization(self) -> Normalization:
        """This front's observed bounds (pass to another front's methods to share them)."""
        return Normalization.from_values(self.values, self.directions)

    def hypervolume(
        self,
        normalization: Normalization | None = None,
        reference: Sequence[float] | None = None,
        reference_offset: float | None = None,
    ) -> float:
        """:func:`hypervolume` of the points."""
        return hypervolume(self.values, self.directions, reference, normalization, reference_offset)

    def knee(self) -> int:
        """:func:`knee_point` of the points."""
        return knee_point(self.values, self.directions)

    def pick(
        self,
        weights: Sequence[float] | Mapping[ObjectiveKey, float],
        normalization: Normalization | None = None,
    ) -> int:
        """:func:`preference_pick`; weights may be keyed by objective name."""
        return preference_pick(self.values, self.directions, weights, normalization, self.names)

    def pick_constrained(
        self, objective: ObjectiveKey, constraints: Mapping[ObjectiveKey, float]
    ) -> int | None:
        """:func:`epsilon_constraint_pick`; objectives may be given by name."""
        return epsilon_constraint_pick(
            self.values, self.directions, objective, constraints, self.names
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lists of floats and strings); :meth:`from_dict` restores it."""
        return {
            "values": self.values.tolist(),
            "directions": list(self.directions),
            "names": list(self.names),
            "payloads": None if self.payloads is None else [dict(p) for p in self.payloads],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParetoFront:
        _check_keys(data, ("values", "directions"), "ParetoFront dict")
        return cls(data["values"], data["directions"], data.get("names"), data.get("payloads"))


def _check_payloads(payloads: Any, n_points: int) -> tuple[dict[str, Any], ...] | None:
    if payloads is None:
        return None
    items = _check_sequence(payloads, "payloads", "dicts, one per point")
    if len(items) != n_points:
        raise ParetorecError(
            f"payloads must have {n_points} entries, one per point, got {len(items)}"
        )
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ParetorecError(f"payloads[{i}] must be a dict, got {show(item)}")
    return tuple(dict(item) for item in items)
