"""Candidate retrieval over large catalogues: an approximate nearest-neighbour index (faiss).

The embedding-based candidate models score a user by an inner product with every item
vector: BPR (user factors . item factors + item bias), the sequential model (the last
state . the item table; cosine when it has a temperature) and language-model text vectors
(cosine). :func:`retrieval_vectors` gives those queries and item vectors, an
:class:`ANNIndex` retrieves the top items without scoring the whole catalogue.

Index kinds (``kind="auto"`` picks by catalogue size):

* ``flat``: exact (brute-force) inner product, below ``flat_below`` items (default 50,000):
  at that size a full scan costs about a millisecond per user, so approximation buys
  nothing.
* ``ivf``: an inverted file (``IndexIVFFlat``): k-means cells (``nlist``, by default
  ``2 sqrt(n)``, trained 10 iterations on a 64k sample), each query scans the ``nprobe``
  closest cells. Build = k-means on a
  sample + one assignment pass, minutes on two cores for a million 384-d items, and the
  memory is the vectors themselves; the default for large catalogues.
* ``hnsw``: a navigable small-world graph (``IndexHNSWFlat``, ``M`` links per item,
  ``ef_search`` at query time): the fastest single queries, but a build that grows with
  ``n log n`` graph insertions (much slower than IVF for high dimensions on few cores)
  and about ``2 M`` extra integers per item.

Scores are inner products (``metric="ip"``); ``metric="cosine"`` normalises items and
queries. IVF clusters and probes by inner product directly. HNSW searches inner products
as Euclidean distances after the standard reduction (Bachrach et al., RecSys 2014): items
get one extra coordinate ``sqrt(M^2 - |x|^2)`` (``M`` the largest item norm), queries a 0,
so the nearest item is the one with the largest inner product (a graph needs a metric).
For IVF the reduction was measured worse: on 50k simulator item vectors (64-d, isotropic
user tastes) recall@100 at nprobe 128 of 447 cells was 0.58 with it, 0.98 without (its
extra coordinate makes k-means cluster by item norm).

Seen items are excluded by over-fetching and filtering. The index saves as files in a
folder (:meth:`ANNIndex.save`: faiss's serialised bytes inside safetensors, a JSON config
and the sha256 manifest of :mod:`paretorec._artifacts`; no pickle).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._artifacts import read_artifact, write_artifact
from .._validation import ParetorecError, check_choice, check_positive_int

KINDS = ("auto", "flat", "ivf", "hnsw")
METRICS = ("ip", "cosine")
ARTIFACT_FORMAT = "paretorec.ann_index"


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise ParetorecError(
            "ANN retrieval needs faiss: pip install faiss-cpu (or faiss-gpu)"
        ) from exc
    return faiss


def _as_matrix(values: Any, name: str, dim: int | None = None) -> np.ndarray:
    array = np.ascontiguousarray(values, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ParetorecError(f"{name} must be a non-empty 2-D array, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ParetorecError(f"{name} must have {dim} columns (the index's), got {array.shape[1]}")
    if not np.isfinite(array).all():
        raise ParetorecError(f"{name} must be finite (found NaN or inf)")
    return array


def _normalised(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


class ANNIndex:
    """Top-k inner-product search over item vectors (see the module docstring).

    Args:
        kind: ``"auto"`` (flat below ``flat_below`` items, else ivf), ``"flat"``, ``"ivf"``
            or ``"hnsw"``.
        metric: ``"ip"`` (inner product) or ``"cosine"``.
        nlist: IVF cells (default ``2 sqrt(n)``, at least 1).
        nprobe: IVF cells scanned per query (default ``max(1, nlist // 32)``: 1/32 of
            the catalogue).
        hnsw_m: HNSW links per item; ``ef_construction`` / ``ef_search``: HNSW breadth at
            build and query time.
        flat_below: catalogue size under which ``auto`` is exact.
        train_size: items k-means trains on (IVF), a random sample when the catalogue is
            larger.
        seed: the k-means and sampling seed.
    """

    def __init__(
        self,
        kind: str = "auto",
        *,
        metric: str = "ip",
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        flat_below: int = 50_000,
        train_size: int = 64_000,
        seed: int = 0,
    ) -> None:
        self.kind = check_choice(kind, "kind", KINDS)
        self.metric = check_choice(metric, "metric", METRICS)
        self.nlist = None if nlist is None else check_positive_int(nlist, "nlist")
        self.nprobe = None if nprobe is None else check_positive_int(nprobe, "nprobe")
        self.hnsw_m = check_positive_int(hnsw_m, "hnsw_m")
        self.ef_construction = check_positive_int(ef_construction, "ef_construction")
        self.ef_search = check_positive_int(ef_search, "ef_search")
        self.flat_below = check_positive_int(flat_below, "flat_below")
        self.train_size = check_positive_int(train_size, "train_size")
        self.seed = int(seed)
        self.index_: Any = None
        self.built_kind_: str | None = None
        self.n_items_ = 0
        self.dim_ = 0
        self.build_seconds_ = math.nan
        self.max_norm_ = 0.0  # squared largest item norm (the inner-product reduction)

    def get_params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "flat_below": self.flat_below,
            "train_size": self.train_size,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        built = (
            f", built={self.built_kind_!r} over {self.n_items_:,} x {self.dim_}"
            if self.index_ is not None
            else ""
        )
        return f"ANNIndex(kind={self.kind!r}, metric={self.metric!r}{built})"

    # ------------------------------------------------------------------ build
    def build(self, item_vectors: Any) -> ANNIndex:
        """Index ``item_vectors`` (n_items x d); row i is item i."""
        faiss = _faiss()
        vectors = _as_matrix(item_vectors, "item_vectors")
        if self.metric == "cosine":
            vectors = _normalised(vectors)
        n, dim = vectors.shape
        kind = self.kind
        if kind == "auto":
            kind = "flat" if n < self.flat_below else "ivf"
        started = time.perf_counter()
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
            index.add(vectors)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim + 1, self.hnsw_m)
            index.hnsw.efConstruction = self.ef_construction
            index.add(self._augment_items(vectors))
        else:
            nlist = self.nlist or max(1, min(int(2 * math.sqrt(n)), n // 39 or 1))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = self.seed
            index.cp.niter = 10  # k-means converges enough for cell assignment
            sample = vectors
            if n > self.train_size:
                rng = np.random.default_rng(self.seed)
                sample = vectors[np.sort(rng.choice(n, self.train_size, replace=False))]
            index.train(sample)
            index.add(vectors)
        self.build_seconds_ = time.perf_counter() - started
        self.index_, self.built_kind_, self.n_items_, self.dim_ = index, kind, n, dim
        self._set_query_params()
        return self

    def _augment_items(self, vectors: np.ndarray) -> np.ndarray:
        norms = np.einsum("ij,ij->i", vectors, vectors)
        self.max_norm_ = float(norms.max())
        extra = np.sqrt(np.maximum(self.max_norm_ - norms, 0.0))
        return np.hstack([vectors, extra[:, None].astype(np.float32)])

    def _raw_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(inner products, items) of the top ``k`` per query, best first."""
        if self.built_kind_ != "hnsw":  # flat and IVF score inner products directly
            scores, items = self.index_.search(queries, k)
            return scores, items
        augmented = np.hstack([queries, np.zeros((len(queries), 1), dtype=np.float32)])
        distances, items = self.index_.search(augmented, k)
        # |q - x'|^2 = |q|^2 + M^2 - 2 q.x
        squared = np.einsum("ij,ij->i", queries, queries)[:, None]
        scores = ((squared + self.max_norm_ - distances) / 2).astype(np.float32)
        scores[items < 0] = -np.inf
        return scores, items

    def _set_query_params(self) -> None:
        if self.built_kind_ == "ivf":
            self.index_.nprobe = self.nprobe or max(1, self.index_.nlist // 32)
        elif self.built_kind_ == "hnsw":
            self.index_.hnsw.efSearch = self.ef_search

    # ------------------------------------------------------------------ search
    def search(
        self, queries: Any, k: int, *, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` items of each query row (item ids, scores; best first).

        ``exclude``: a CSR matrix with one row per query (e.g. the seen-items matrix
        sliced to the users); its items are left out (fetched then filtered). Rows with
        fewer than ``k`` results pad with item -1 and score -inf.
        """
        if self.index_ is None:
            raise ParetorecError("ANNIndex is not built; call build(item_vectors) first")
        k = check_positive_int(k, "k")
        matrix = _as_matrix(queries, "queries", self.dim_)
        if self.metric == "cosine":
            matrix = _normalised(matrix)
        extra = 0
        if exclude is not None:
            if exclude.shape[0] != matrix.shape[0]:
                raise ParetorecError(
                    f"exclude must have one row per query ({matrix.shape[0]}), "
                    f"got {exclude.shape[0]}"
                )
            extra = int(np.diff(exclude.indptr).max(initial=0))
        fetch = min(k + extra, self.n_items_)
        scores, items = self._raw_search(matrix, fetch)
        if exclude is None and fetch == k:
            return items.astype(np.int64), scores
        out_items = np.full((matrix.shape[0], k), -1, dtype=np.int64)
        out_scores = np.full((matrix.shape[0], k), -np.inf, dtype=np.float32)
        for row in range(matrix.shape[0]):
            found = items[row]
            keep = found >= 0
            if exclude is not None:
                seen = exclude.indices[exclude.indptr[row] : exclude.indptr[row + 1]]
                keep &= ~np.isin(found, seen)
            chosen = np.flatnonzero(keep)[:k]
            out_items[row, : len(chosen)] = found[chosen]
            out_scores[row, : len(chosen)] = scores[row, chosen]
        return out_items, out_scores

    # ------------------------------------------------------------------ files
    def save(self, directory: str | Path) -> Path:
        """Write the index as files in ``directory`` (atomic; checksummed; no pickle)."""
        if self.index_ is None:
            raise ParetorecError("ANNIndex is not built; call build(item_vectors) first")
        data = _faiss().serialize_index(self.index_)
        config = {
            "format": ARTIFACT_FORMAT,
            "params": self.get_params(),
            "built_kind": self.built_kind_,
            "n_items": self.n_items_,
            "dim": self.dim_,
            "max_norm": self.max_norm_,
            "build_seconds": self.build_seconds_,
        }
        return write_artifact(directory, config, {"faiss_index": np.asarray(data, np.uint8)})

    @classmethod
    def load(cls, directory: str | Path) -> ANNIndex:
        """Read an index written by :meth:`save` (checksums verified)."""
        config, tensors = read_artifact(directory)
        if config.get("format") != ARTIFACT_FORMAT:
            raise ParetorecError(
                f"directory: {directory} does not hold an ANN index "
                f"(format {config.get('format')!r})"
            )
        index = cls(**config["params"])
        index.index_ = _faiss().deserialize_index(tensors["faiss_index"])
        index.built_kind_ = config["built_kind"]
        index.n_items_, index.dim_ = int(config["n_items"]), int(config["dim"])
        index.build_seconds_ = float(config["build_seconds"])
        index.max_norm_ = float(config["max_norm"])
        index._set_query_params()
        return index


def exact_top_k(queries: np.ndarray, item_vectors: np.ndarray, k: int) -> np.ndarray:
    """The exact top ``k`` items by inner product (brute force, blocked): the reference an
    ANN index's recall is measured against."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    items = np.ascontiguousarray(item_vectors, dtype=np.float32)
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 64):
        scores = queries[start : start + 64] @ items.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[start : start + 64] = np.take_along_axis(top, order, axis=1)
    return out


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact top-k that ``found`` retrieved."""
    hits = [len(np.intersect1d(f[f >= 0], e)) / len(e) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits))


def retrieval_vectors(model: Any, users: Any = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Queries (one row per user in ``users``, default every user), item vectors and the
    metric under which their inner products rank as ``model`` scores.

    BPR: ``[user factors, 1]`` against ``[item factors, item bias]``; the sequential
    model: the last state against the item table (cosine when it has a temperature, as it
    scores). Other models have no vectors: refused with a message.
    """
    from ..models import BPRModel, SequentialTransformer

    if isinstance(model, BPRModel):
        if model.user_factors is None or model.item_factors is None:
            raise ParetorecError("BPRModel is not fitted; call fit(train) first")
        chosen = np.arange(len(model.user_factors)) if users is None else np.asarray(users)
        queries = np.hstack(
            [model.user_factors[chosen], np.ones((len(chosen), 1), dtype=np.float32)]
        )
        biases = (
            model.item_biases
            if model.item_biases is not None
            else np.zeros(len(model.item_factors), dtype=np.float32)
        )
        items = np.hstack([model.item_factors, biases[:, None]])
        return queries.astype(np.float32), items.astype(np.float32), "ip"
    if isinstance(model, SequentialTransformer):
        chosen = np.arange(model.seen.shape[0]) if users is None else np.asarray(users)
        metric = "ip" if model.temperature is None else "cosine"
        return model.user_vectors(chosen), model.item_vectors(), metric
    raise ParetorecError(
        f"model must be an embedding-based model (BPRModel, SequentialTransformer), got "
        f"{type(model).__name__}; for text vectors build ANNIndex(metric='cosine') directly"
    )
