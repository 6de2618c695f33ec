"""Candidate retrieval over large catalogues: an approximate nearest-neighbour index (faiss).

The embedding-based candidate models score a user by an inner product with every item
vector: BPR (user factors . item factors + item bias), the sequential model (the last
state . the item table; cosine when it has a temperature) and language-model text vectors
(cosine). :func:`retrieval_vectors` gives those queries and item vectors, an
:class:`ANNIndex` retrieves the top items without scoring the whole catalogue.

Index kinds (``kind="auto"`` picks by catalogue size):

* ``flat``: exact (brute-force) inner product, below ``flat_below`` items (default 50,000):
  at that size a full scan costs a few milliseconds per user, so approximation buys
  little.
* ``ivf_sq8``: the default above ``flat_below``. An inverted file whose cells hold 8-bit
  scalar-quantised codes (``IndexIVFScalarQuantizer``, a byte per dimension), and an exact
  re-rank of the ``refine_factor * k`` best candidates with the float vectors
  (``IndexRefineFlat``), so the returned scores are exact inner products and the codes only
  have to get the right items into the short list. A query scans a quarter of the bytes
  IVF-flat does, at the same recall (measured on 200k simulator items x 384: recall@100
  0.958 at ``nprobe`` 32 of 1,788 cells either way, 0.67 ms vs 1.12 ms median on one
  thread). Memory: ``d`` bytes of codes + ``4 d`` bytes of floats per item (1M x 384:
  0.4 + 1.5 GB).
* ``ivf``: the same inverted file with float vectors in the cells (``IndexIVFFlat``).
* ``hnsw``: a navigable small-world graph (``IndexHNSWFlat``, ``M`` links per item,
  ``ef_search`` at query time). Fast single queries, but the build is graph insertions:
  64 s for 50k x 384 items on two (shared) cores, so about half an hour for a million;
  IVF builds that in two to three minutes. On request only.

IVF cells: ``nlist`` defaults to ``4 sqrt(n)`` (4,000 for a million items; 2 sqrt(n) cells
needed twice the scanned share for the same recall on 200k x 384, and 8 sqrt(n) gained
nothing per scanned item but took 5x longer to train). k-means is spherical (faiss's
default for inner product: unit centroids, so a cell is a direction), 10 iterations on a
random sample of ``train_size`` items (default 32 per cell, at least 64,000). ``nprobe``
(cells scanned per query) trades recall for time: choose it on validation queries
(:meth:`ANNIndex.set_nprobe`; ``paretorec bench scale`` takes the smallest reaching
recall@100 0.97 on 200 validation users). The default, ``nlist // 32``, scans about 3% of
the catalogue.

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

KINDS = ("auto", "flat", "ivf", "ivf_sq8", "hnsw")
IVF_KINDS = ("ivf", "ivf_sq8")
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
        kind: ``"auto"`` (flat below ``flat_below`` items, else ``ivf_sq8``), ``"flat"``,
            ``"ivf"``, ``"ivf_sq8"`` or ``"hnsw"``.
        metric: ``"ip"`` (inner product) or ``"cosine"``.
        nlist: IVF cells (default ``4 sqrt(n)``, at most ``n / 39``, at least 1).
        nprobe: IVF cells scanned per query (default ``max(1, nlist // 32)``: 1/32 of
            the catalogue); choose it on validation queries (:meth:`set_nprobe`).
        refine_factor: ``ivf_sq8`` re-ranks the best ``refine_factor * k`` candidates of
            the codes exactly.
        hnsw_m: HNSW links per item; ``ef_construction`` / ``ef_search``: HNSW breadth at
            build and query time.
        flat_below: catalogue size under which ``auto`` is exact.
        train_size: items k-means trains on (IVF), a random sample when the catalogue is
            larger (default 32 per cell, at least 64,000).
        seed: the k-means and sampling seed.
    """

    def __init__(
        self,
        kind: str = "auto",
        *,
        metric: str = "ip",
        nlist: int | None = None,
        nprobe: int | None = None,
        refine_factor: int = 2,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        flat_below: int = 50_000,
        train_size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.kind = check_choice(kind, "kind", KINDS)
        self.metric = check_choice(metric, "metric", METRICS)
        self.nlist = None if nlist is None else check_positive_int(nlist, "nlist")
        self.nprobe = None if nprobe is None else check_positive_int(nprobe, "nprobe")
        self.refine_factor = check_positive_int(refine_factor, "refine_factor")
        self.hnsw_m = check_positive_int(hnsw_m, "hnsw_m")
        self.ef_construction = check_positive_int(ef_construction, "ef_construction")
        self.ef_search = check_positive_int(ef_search, "ef_search")
        self.flat_below = check_positive_int(flat_below, "flat_below")
        self.train_size = (
            None if train_size is None else check_positive_int(train_size, "train_size")
        )
        self.seed = int(seed)
        self.index_: Any = None
        self.built_kind_: str | None = None
        self.n_items_ = 0
        self.dim_ = 0
        self.nlist_: int | None = None  # IVF cells of the built index
        self.build_seconds_ = math.nan
        self.max_norm_ = 0.0  # squared largest item norm (the inner-product reduction)
        self.tuned_recall_: float | None = None  # recall reached by tune_nprobe

    def get_params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "refine_factor": self.refine_factor,
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
            kind = "flat" if n < self.flat_below else "ivf_sq8"
        started = time.perf_counter()
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
            index.add(vectors)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim + 1, self.hnsw_m)
            index.hnsw.efConstruction = self.ef_construction
            index.add(self._augment_items(vectors))
        else:
            index = self._build_ivf(faiss, vectors, kind)
        self.build_seconds_ = time.perf_counter() - started
        self.index_, self.built_kind_, self.n_items_, self.dim_ = index, kind, n, dim
        self._set_query_params()
        return self

    def _build_ivf(self, faiss: Any, vectors: np.ndarray, kind: str) -> Any:
        n, dim = vectors.shape
        nlist = self.nlist or max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
        quantizer = faiss.IndexFlatIP(dim)
        ivf: Any
        if kind == "ivf_sq8":
            ivf = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            index = faiss.IndexRefineFlat(ivf)  # adds the float vectors beside the codes
        else:
            ivf = index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = self.seed
        ivf.cp.niter = 10  # k-means converges enough for cell assignment
        train_size = self.train_size or max(64_000, 32 * nlist)
        # faiss warns below 39 items per cell; on 200k x 384 items 36 per cell gave the
        # recall 39 did (0.958 at nprobe 32 of 1,788 cells)
        ivf.cp.min_points_per_centroid = min(39, max(1, train_size // nlist))
        sample = vectors
        if n > train_size:
            rng = np.random.default_rng(self.seed)
            sample = vectors[np.sort(rng.choice(n, train_size, replace=False))]
        index.train(sample)
        del sample
        index.add(vectors)
        return index

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

    def set_nprobe(self, nprobe: int) -> ANNIndex:
        """Scan ``nprobe`` IVF cells per query from now on (kept by :meth:`save`); choose it
        on validation queries, the smallest reaching the recall wanted."""
        self.nprobe = check_positive_int(nprobe, "nprobe")
        if self.index_ is not None:
            self._set_query_params()
        return self

    def tune_nprobe(
        self, queries: Any, item_vectors: Any, k: int, *, target: float = 0.97
    ) -> tuple[int, float]:
        """Set ``nprobe`` to the smallest of 1, 2, 4, ... (up to every cell) whose recall@k
        of ``queries`` against their exact top ``k`` over ``item_vectors`` (the vectors the
        index was built from) reaches ``target``; returns (nprobe, that recall). IVF only."""
        if self.index_ is None or self.built_kind_ not in IVF_KINDS or self.nlist_ is None:
            raise ParetorecError(
                f"tune_nprobe needs a built IVF index, got kind {self.built_kind_!r}"
            )
        matrix = _as_matrix(queries, "queries", self.dim_)
        items = _as_matrix(item_vectors, "item_vectors", self.dim_)
        if self.metric == "cosine":
            matrix, items = _normalised(matrix), _normalised(items)
        k = min(check_positive_int(k, "k"), self.n_items_)
        exact = exact_top_k(matrix, items, k)
        nprobe, recall = 1, 0.0
        while True:
            self.set_nprobe(min(nprobe, self.nlist_))
            recall = recall_at_k(self.search(matrix, k)[0], exact)
            if recall >= target or nprobe >= self.nlist_:
                self.tuned_recall_ = recall
                return int(self.nprobe or 1), recall
            nprobe *= 2

    def _set_query_params(self) -> None:
        if self.built_kind_ in IVF_KINDS:
            ivf = _faiss().extract_index_ivf(self.index_)
            self.nlist_ = int(ivf.nlist)
            ivf.nprobe = self.nprobe or max(1, self.nlist_ // 32)
            if self.built_kind_ == "ivf_sq8":
                self.index_.k_factor = float(self.refine_factor)
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


def _top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest scores (unordered)."""
    if scores.shape[1] <= k:
        return np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    return np.argpartition(scores, scores.shape[1] - k, axis=1)[:, scores.shape[1] - k :]


def exact_top_k(queries: np.ndarray, item_vectors: np.ndarray, k: int) -> np.ndarray:
    """The exact top ``k`` items by inner product (brute force): the reference an ANN
    index's recall is measured against.

    Blocked both ways: 256 queries x 65,536 items per matrix product (64 MB of scores),
    each block's top ``k`` kept and merged, so the item vectors are read once per 256
    queries (not once per query) and no score row of the whole catalogue is held; no copy
    of the items is made."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    items = np.ascontiguousarray(item_vectors, dtype=np.float32)
    k = min(check_positive_int(k, "k"), len(items))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 256):
        block = queries[start : start + 256]
        kept_items, kept_scores = [], []
        for first in range(0, len(items), 65_536):
            scores = block @ items[first : first + 65_536].T
            top = _top_k_rows(scores, k)
            kept_items.append(top + first)
            kept_scores.append(np.take_along_axis(scores, top, axis=1))
        candidates, values = np.hstack(kept_items), np.hstack(kept_scores)
        best = _top_k_rows(values, k)
        # best first; ties by the smaller item id, as a full sort would order them
        values, candidates = (np.take_along_axis(a, best, axis=1) for a in (values, candidates))
        order = np.lexsort((candidates, -values), axis=1)
        out[start : start + 256] = np.take_along_axis(candidates, order, axis=1)
    return out


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact top-k that ``found`` retrieved."""
    hits = [len(np.intersect1d(f[f >= 0], e)) / len(e) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits))


def is_embedding_model(model: Any) -> bool:
    """Whether ``model`` scores by inner products of user and item vectors (BPR, the
    sequential model), so an :class:`ANNIndex` over its item vectors can retrieve for it."""
    from ..models import BPRModel, SequentialTransformer

    return isinstance(model, (BPRModel, SequentialTransformer))


def _refuse(model: Any) -> ParetorecError:
    return ParetorecError(
        f"model must be an embedding-based model (BPRModel, SequentialTransformer), got "
        f"{type(model).__name__}; for text vectors build ANNIndex(metric='cosine') directly"
    )


def retrieval_items(model: Any) -> tuple[np.ndarray, str]:
    """The item vectors of ``model`` and the metric under which their inner products with
    the model's queries rank as it scores (see :func:`retrieval_vectors`)."""
    from ..models import BPRModel, SequentialTransformer

    if isinstance(model, BPRModel):
        if model.user_factors is None or model.item_factors is None:
            raise ParetorecError("BPRModel is not fitted; call fit(train) first")
        biases = (
            model.item_biases
            if model.item_biases is not None
            else np.zeros(len(model.item_factors), dtype=np.float32)
        )
        items = np.hstack([model.item_factors, biases[:, None]])
        return items.astype(np.float32), "ip"
    if isinstance(model, SequentialTransformer):
        return model.item_vectors(), "ip" if model.temperature is None else "cosine"
    raise _refuse(model)


def retrieval_queries(model: Any, users: Any = None, *, histories: Any = None) -> np.ndarray:
    """Query vectors of ``users`` (codes of trained users; default every user) or, with
    ``histories`` (lists of item codes, most recent last), of users known only by their
    histories: BPR's folded-in user vectors, the sequential model's last state over the
    history (:func:`retrieval_vectors` gives the matching item vectors)."""
    from ..models import BPRModel, SequentialTransformer

    if isinstance(model, BPRModel):
        if model.user_factors is None or model.item_factors is None:
            raise ParetorecError("BPRModel is not fitted; call fit(train) first")
        if histories is not None:
            factors = model.fold_in([np.asarray(h, dtype=np.int64) for h in histories])
        else:
            chosen = np.arange(len(model.user_factors)) if users is None else np.asarray(users)
            factors = model.user_factors[chosen]
        ones = np.ones((len(factors), 1), dtype=np.float32)
        return np.hstack([factors, ones]).astype(np.float32)
    if isinstance(model, SequentialTransformer):
        if histories is not None:
            return model.history_vectors([np.asarray(h, dtype=np.int64) for h in histories])
        chosen = np.arange(model.seen.shape[0]) if users is None else np.asarray(users)
        return model.user_vectors(chosen)
    raise _refuse(model)


def retrieval_scale(model: Any) -> float:
    """What an index's scores are multiplied by to equal the model's own scores: the
    sequential model with a temperature scores cosines divided by it; others 1."""
    temperature = getattr(model, "temperature", None)
    from ..models import SequentialTransformer

    if isinstance(model, SequentialTransformer) and temperature is not None:
        return 1.0 / float(temperature)
    return 1.0


def retrieval_vectors(model: Any, users: Any = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Queries (one row per user in ``users``, default every user), item vectors and the
    metric under which their inner products rank as ``model`` scores.

    BPR: ``[user factors, 1]`` against ``[item factors, item bias]``; the sequential
    model: the last state against the item table (cosine when it has a temperature, as it
    scores). Other models have no vectors: refused with a message.
    """
    items, metric = retrieval_items(model)
    return retrieval_queries(model, users), items, metric
