"""MovieLens-100k read as a funnel: multi-task rankers vs single-task models and torch-rechub.

Tasks (``funnel_rows``): *engage* (a rated pair vs a sampled unrated one), *like* (rating >= 4,
on rated pairs), *rating* (squared error, on rated pairs). Every model is trained on the same
rows of the Microsoft Recommenders 75/25 split; torch-rechub's MMoE, PLE and ESMM get the
same rows as files and run in the peers' environment in the same run. A ranker's fused
score also re-ranks EASE's top-100 candidates per test user (nDCG@10), and the two
libraries' training throughput is timed side by side on the same MMoE size.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import Dataset, carve_validation, load_dataset, stratified_split
from ..evaluation import mean_over_users, ndcg_at_k
from ..models import create_model
from ..multitask import (
    ML100K_RANKER,
    FeatureSpec,
    MultiTaskRanker,
    TaskSpec,
    fit_with_refit,
    funnel_rows,
    funnel_tasks,
)
from ..ranking import CandidateSet
from ..ranking._fusion import minmax_rows
from . import _peers
from ._harness import make_result, print_rows, write_result

COLUMNS = (
    "engage_auc",
    "like_auc",
    "rating_rmse",
    "ndcg@10",
    "ndcg@10_blend",
    "like_auc_before_refit",
    "rating_rmse_before_refit",
    "epochs",
    "fit_seconds",
)
SPEED_COLUMNS = ("samples_per_second", "samples_per_second_repeats")

#: Published test RMSE on this split (Microsoft Recommenders README; not rerun here).
PUBLISHED = {"SVD": {"rating_rmse": 0.9387}, "FastAI": {"rating_rmse": 0.9431}}

#: Our rankers: the shared MovieLens-100k ranker (``multitask.ML100K_RANKER``, equal to
#: ``examples/train_ml100k_mmoe.toml``), architecture, tasks and strategy aside.
_MODEL, _TRAINER = ML100K_RANKER.model, ML100K_RANKER.trainer
RANKER_OPTIONS: dict[str, Any] = {
    "embedding_dim": _MODEL.embedding_dim,
    "embedding_dropout": _MODEL.embedding_dropout,
    "tower_units": tuple(_MODEL.tower_units),
    "dropout": _MODEL.dropout,
    "lr": _TRAINER.lr,
    "batch_size": _TRAINER.batch_size,
    "epochs": _TRAINER.epochs,
    "patience": _TRAINER.patience,
    "seed": _TRAINER.seed,
    "device": "cpu",
}
#: The MMoE size both libraries share (quality runs and throughput): 4 experts of 64 units,
#: towers of 32, embeddings of 32.
MMOE_PARAMS: dict[str, Any] = {"n_experts": 4, "expert_units": [64]}
#: Our PLE default: 2 extraction levels, 1 expert per task and 2 shared ones of 64 units.
PLE_PARAMS: dict[str, Any] = {
    "n_levels": 2,
    "n_task_experts": 1,
    "n_shared_experts": 2,
    "expert_units": [64],
}
ARCHITECTURE_PARAMS: dict[str, dict[str, Any]] = {"mmoe": MMOE_PARAMS, "ple": PLE_PARAMS}

#: (architecture, strategy) pairs trained on the three tasks.
MULTI_TASK = (
    ("shared_bottom", "uncertainty"),
    ("mmoe", "fixed"),
    ("mmoe", "uncertainty"),
    ("mmoe", "dwa"),
    ("mmoe", "pcgrad"),
    ("ple", "uncertainty"),
    ("esmm", "uncertainty"),
)
QUICK_MULTI_TASK = (("mmoe", "uncertainty"),)
SINGLE_TASK = ("engage", "like", "rating")
QUICK_SINGLE_TASK = ("like",)
PEER_MODELS = ("mmoe", "ple", "esmm")
QUICK_PEER_MODELS = ("mmoe",)
#: The ranker's fused score for re-ranking: P(engage) x P(like), the probability that the
#: user rates the item *and* likes it (the funnel's end-to-end probability).
FUSED = "p_engage * p_like"
EASE_REGULARIZATION = 600.0  # chosen on validation by the movielens100k benchmark
#: Weights of the ranker's score in its blend with EASE's (0 = EASE's own order).
BLEND_WEIGHTS = tuple(round(0.1 * j, 1) for j in range(11))
N_CANDIDATES = 100
QUICK_USERS = 150
#: The row trained as torch-rechub's MMoE is: its fields, its strategy, no refit.
LIKE_FOR_LIKE = "like-for-like: mmoe / fixed (peer's fields, no user history, no refit)"


@dataclass
class Rows:
    """The funnel rows of one split, with the parts they were drawn from."""

    dataset: Dataset
    train_part: Dataset  # the 75 % training part (the candidate model fits on it)
    test_part: Dataset
    fit_part: Dataset  # 80 % of the training part (per user)
    valid_part: Dataset  # the other 20 %
    train: pd.DataFrame  # 80 % of the training part (per user)
    valid: pd.DataFrame  # the other 20 %
    test: pd.DataFrame


def build_rows(dataset: Dataset) -> Rows:
    """The rows ``paretorec train`` builds for this split (``TrainConfig`` defaults)."""
    split = stratified_split(dataset, ratio=0.75, seed=42)
    carved = carve_validation(split, ratio=0.8, seed=1)
    if carved.valid is None:  # carve_validation always sets it
        raise RuntimeError("carve_validation returned no validation part")
    return Rows(
        dataset=dataset,
        train_part=split.train,
        test_part=split.test,
        fit_part=carved.train,
        valid_part=carved.valid,
        train=funnel_rows(carved.train, negatives_per_positive=1, seed=0),
        # evaluation negatives are pairs the user rated nowhere
        valid=funnel_rows(carved.valid, negatives_per_positive=1, exclude=dataset, seed=1),
        test=funnel_rows(carved.test, negatives_per_positive=1, exclude=dataset, seed=2),
    )


# --------------------------------------------------------------------------- candidates
@dataclass
class Candidates:
    """EASE's top-100 unseen items for every user of a held-out part, and its relevance."""

    set: CandidateSet
    relevant: sp.csr_matrix  # every test rating (rows aligned with set.users)
    liked: sp.csr_matrix  # test ratings >= 4
    seconds: float

    def ndcg(self, scores: np.ndarray) -> dict[str, float]:
        """nDCG@10 of the candidates re-ordered by ``scores`` (n_users, n_candidates)."""
        order = np.argsort(-scores, axis=1, kind="stable")
        ranked = np.take_along_axis(self.set.items, order, axis=1)[:, :10]
        return {
            "ndcg@10": mean_over_users(ndcg_at_k(ranked, self.relevant)),
            "ndcg@10_liked": mean_over_users(ndcg_at_k(ranked, self.liked)),
        }

    def blend(self, ranker_scores: np.ndarray, weight: float) -> np.ndarray:
        """``(1 - weight) * minmax(EASE) + weight * minmax(ranker)`` per user (policy "sum")."""
        return (1 - weight) * minmax_rows(self.set.scores) + weight * minmax_rows(ranker_scores)


def ease_candidates(train: Dataset, test: Dataset) -> Candidates:
    """EASE fitted on ``train``; candidates for the users with a rating in ``test``."""
    started = time.perf_counter()
    model = create_model("ease", regularization=EASE_REGULARIZATION).fit(train)
    relevant = sp.csr_matrix(test.to_csr())
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    candidates = CandidateSet.from_model(model, users, N_CANDIDATES)
    liked = sp.csr_matrix(test.to_csr("rating"))
    liked.data = (liked.data >= 4).astype(np.float32)
    liked.eliminate_zeros()
    return Candidates(
        set=candidates,
        relevant=relevant[users],
        liked=liked[users],
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- our rankers
def _fused(predictions: dict[str, np.ndarray]) -> np.ndarray:
    if "engage" in predictions and "like" in predictions:
        return predictions["engage"] * predictions["like"]
    # a single-task model ranks by its own output
    (only,) = predictions.values()
    return only


def ranker_for(
    architecture: str,
    tasks: Sequence[TaskSpec],
    strategy: str,
    *,
    features: FeatureSpec,
    threads: int,
    epochs: int | None = None,
) -> MultiTaskRanker:
    """The shared MovieLens-100k ranker with this architecture, tasks, strategy and fields.

    Early stopping watches the rating RMSE when the rating task is there (as
    ``examples/train_ml100k_mmoe.toml``), else the single task's own metric.
    """
    names = [t.name for t in tasks]
    params = {
        **ML100K_RANKER.ranker().get_params(),
        "architecture": architecture,
        "tasks": [t.to_dict() for t in tasks],
        "strategy": strategy,
        "architecture_params": ARCHITECTURE_PARAMS.get(architecture),
        "features": features,
        "monitor_task": "rating" if "rating" in names else names[0],
        "num_threads": threads,
        "device": "cpu",
        "progress": False,
    }
    if epochs is not None:
        params["epochs"] = epochs
    return MultiTaskRanker(**params)


def fit_row(
    name: str,
    architecture: str,
    tasks: Sequence[TaskSpec],
    strategy: str,
    rows: Rows,
    candidates: Candidates,
    valid_candidates: Candidates,
    *,
    features: FeatureSpec,
    threads: int,
    epochs: int | None = None,
    refit: bool = True,
    kind: str | None = None,
) -> dict[str, Any]:
    """Fit on train (early stopping on validation), refit on train + validation, test.

    As ``paretorec train`` with ``refit = true`` (:func:`multitask.fit_with_refit`):
    validation picks the epoch count, a new model trains that many epochs on train +
    validation rows; its test figures are the row's, the first model's are kept as
    ``*_before_refit``. Without ``refit`` the early-stopped model is the row's. The first
    model's validation figures (``valid_*``) are what rows are chosen by; it also picks, on
    the validation candidates, the weight of the ranker's score in its blend with EASE's
    (``ndcg@10_blend``).
    """
    names = [t.name for t in tasks]
    ranker = ranker_for(
        architecture, tasks, strategy, features=features, threads=threads, epochs=epochs
    )
    started = time.perf_counter()
    first, final = fit_with_refit(
        ranker,
        rows.train,
        rows.valid,
        dataset=rows.dataset,
        refit_rows=(lambda: pd.concat([rows.train, rows.valid], ignore_index=True))
        if refit
        else None,
        refit_without_early_stop=True,
    )
    history = first.history
    before = first.evaluate(rows.test)
    valid = first.evaluate(rows.valid)
    valid_scores = _fused(
        first.predict_pairs(valid_candidates.set.users, valid_candidates.set.items)
    )
    on_valid = [
        valid_candidates.ndcg(valid_candidates.blend(valid_scores, w))["ndcg@10"]
        for w in BLEND_WEIGHTS
    ]
    weight = BLEND_WEIGHTS[int(np.argmax(on_valid))]  # ties: the weight nearest EASE
    epochs_used = history.best_epoch or len(history.epochs)
    fit_seconds = time.perf_counter() - started
    test = final.evaluate(rows.test)
    scores = _fused(final.predict_pairs(candidates.set.users, candidates.set.items))
    metrics: dict[str, Any] = {k: v for k, v in test.items() if not k.endswith("logloss")}
    metrics.update(candidates.ndcg(scores))
    metrics["ndcg@10_blend"] = candidates.ndcg(candidates.blend(scores, weight))["ndcg@10"]
    metrics["blend_weight"] = weight
    if refit:
        for key in ("like_auc", "rating_rmse"):
            if key in before:
                metrics[f"{key}_before_refit"] = before[key]
    metrics.update({f"valid_{k}": v for k, v in valid.items() if not k.endswith("logloss")})
    metrics["valid_ndcg@10"] = valid_candidates.ndcg(valid_scores)["ndcg@10"]
    metrics.update(
        epochs=epochs_used,
        fit_seconds=round(fit_seconds, 1),
        samples_per_second=round(history.samples_per_second),
    )
    print(f"{name}: " + ", ".join(f"{k} {_short(v)}" for k, v in metrics.items()), flush=True)
    return {
        "name": name,
        "library": "paretorec",
        "kind": kind or ("multi-task" if len(tasks) > 1 else "single-task"),
        "architecture": architecture,
        "strategy": strategy if len(tasks) > 1 else None,
        "tasks": names,
        "refit": refit,
        "features": features.to_dict(),
        "metrics": metrics,
        "history": {
            "monitor": history.monitor,
            "best_epoch": history.best_epoch,
            "epochs_run": len(history.epochs),
            "valid_at_best": history.epochs[epochs_used - 1].valid if history.epochs else {},
        },
        "test_before_refit": before,
    }


def _short(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- peers
#: The columns the peers read: integer codes (``--sparse-cols``), a padded bag of codes
#: (``--sequence-cols``: every genre of the item, mean-pooled by torch-rechub's
#: ``SequenceFeature``), standardised numbers (``--dense-cols``), labels and masks: the
#: fields of ``FeatureSpec.infer`` on MovieLens-100k, without our user-history field.
PEER_SPARSE = ("user", "item", "age_band", "gender", "occupation")
PEER_SEQUENCE = ("genres",)
PEER_DENSE = ("age", "year")


def export_peer_tables(rows: Rows, directory: Path) -> dict[str, Path]:
    """Write the train / valid / test rows as ``.npz`` tables for the peer script.

    Same rows, same labels and masks as ours; the side features become one integer code per
    column (0 = missing) and standardised numbers (training rows' mean and standard
    deviation, missing values at the mean). An item's genres become one padded row of
    genre codes (0 = padding) that torch-rechub mean-pools as a ``SequenceFeature``, as our
    genre bag; it gets no user-history field.
    """
    dataset = rows.dataset
    users, items = dataset.users, dataset.items

    def codes(values: pd.Series) -> np.ndarray:
        coded, _ = pd.factorize(values.astype("string"), use_na_sentinel=True)
        return (coded + 1).astype(np.int64)  # -1 (missing) -> 0

    genre_lists = [tuple(g) if isinstance(g, tuple) else () for g in items["genres"]]
    vocabulary = {
        g: code for code, g in enumerate(sorted({g for gs in genre_lists for g in gs}), 1)
    }
    genre_codes = np.zeros((len(genre_lists), max(1, max(map(len, genre_lists)))), np.int64)
    for row, genres in enumerate(genre_lists):
        genre_codes[row, : len(genres)] = [vocabulary[g] for g in genres]
    side = {
        "age_band": ("user", codes(users["age_band"])),
        "gender": ("user", codes(users["gender"])),
        "occupation": ("user", codes(users["occupation"])),
        "genres": ("item", genre_codes),
    }
    numbers = {
        "age": ("user", pd.to_numeric(users["age"], errors="coerce").to_numpy(np.float64)),
        "year": ("item", pd.to_numeric(items["year"], errors="coerce").to_numpy(np.float64)),
    }
    stats = {}
    for column, (key, values) in numbers.items():
        on_train = values[rows.train[key].to_numpy()]
        on_train = on_train[np.isfinite(on_train)]
        stats[column] = (float(on_train.mean()), float(on_train.std()) or 1.0)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part, frame in (("train", rows.train), ("valid", rows.valid), ("test", rows.test)):
        table: dict[str, np.ndarray] = {
            "user": frame["user"].to_numpy(np.int64),
            "item": frame["item"].to_numpy(np.int64),
        }
        for column, (key, values) in side.items():
            table[column] = values[frame[key].to_numpy()]
        for column, (key, values) in numbers.items():
            mean, std = stats[column]
            standard = (values[frame[key].to_numpy()] - mean) / std
            table[column] = np.nan_to_num(standard, nan=0.0).astype(np.float32)
        for label in ("engage", "like", "rating"):
            table[label] = frame[label].to_numpy(np.float32)
        rated = frame["rated"].to_numpy().astype(np.int8)
        table["like_mask"] = rated
        table["rating_mask"] = rated
        path = directory / f"{part}.npz"
        save: Any = np.savez  # its typed ``allow_pickle`` keyword clashes with ``**table``
        save(path, **table)
        paths[part] = path
    return paths


def peer_options(model: str, *, epochs: int, patience: int) -> dict[str, Any]:
    """torch-rechub's options: the sizes and optimiser settings of our rankers."""
    options: dict[str, Any] = {
        "model": model,
        "mask_mode": "masked",
        "loader": "rechub",
        "sparse_cols": list(PEER_SPARSE),
        "sequence_cols": list(PEER_SEQUENCE),
        "esmm_item_cols": "item,genres",
        "dense_cols": [] if model == "esmm" else list(PEER_DENSE),  # its ESMM: sparse only
        "label_cols": ["engage", "like", "rating"],
        "embed_dim": RANKER_OPTIONS["embedding_dim"],
        "expert_dims": MMOE_PARAMS["expert_units"],
        "n_experts": MMOE_PARAMS["n_experts"],
        "tower_dims": list(RANKER_OPTIONS["tower_units"]),
        "dropout": RANKER_OPTIONS["dropout"],
        "epochs": epochs,
        "batch_size": RANKER_OPTIONS["batch_size"],
        "lr": RANKER_OPTIONS["lr"],
        "weight_decay": 0.0,
        "patience": patience,
        # the same rule as ours: lowest validation rating error (ESMM has no rating task)
        "earlystop_label": "engage" if model == "esmm" else "rating",
        "seed": 0,
    }
    if model == "ple":
        options.update(
            ple_levels=PLE_PARAMS["n_levels"],
            ple_specific_experts=PLE_PARAMS["n_task_experts"],
            ple_shared_experts=PLE_PARAMS["n_shared_experts"],
            expert_dims=PLE_PARAMS["expert_units"],
        )
    return options


def run_rechub(
    model: str, paths: dict[str, Path], *, epochs: int, patience: int, threads: int, out: Path
) -> dict[str, Any]:
    started = time.perf_counter()
    run = _peers.run_rechub_multitask(
        paths["train"],
        paths["valid"],
        paths["test"],
        **peer_options(model, epochs=epochs, patience=patience),
        out=out,
        threads=threads,
        env={"OMP_WAIT_POLICY": "PASSIVE"},
        stream=False,
    )
    result = run.result
    scores = result["metrics"]
    metrics: dict[str, Any] = {
        "engage_auc": scores["engage"]["auc"],
        "like_auc": scores["like"]["auc"],
    }
    if "rating" in scores:
        metrics["rating_rmse"] = scores["rating"]["rmse"]
    metrics.update(_peer_validation(result))
    metrics.update(
        epochs=result["epochs_run"],
        fit_seconds=round(time.perf_counter() - started, 1),
        samples_per_second=round(result["samples_per_second"]),
    )
    name = f"torch-rechub {model}"
    print(f"{name}: " + ", ".join(f"{k} {_short(v)}" for k, v in metrics.items()), flush=True)
    return {
        "name": name,
        "library": "torch-rechub",
        "library_version": result.get("library_version"),
        "kind": "multi-task",
        "architecture": model,
        "strategy": "fixed",
        "metrics": metrics,
        "n_params": result.get("n_params"),
        "config": result.get("config"),
        "valid_scores": result.get("valid_scores"),
    }


def _peer_validation(result: dict[str, Any]) -> dict[str, float]:
    """The peer's validation AUCs of the model it tested: the early-stopping epoch's when it
    stopped early (its trainer then restores those weights), else the last epoch's."""
    history = np.asarray(result.get("valid_scores") or [], dtype=np.float64)
    config = result.get("config") or {}
    if history.ndim != 2 or not len(history):
        return {}
    tasks = list(result["tasks"])  # ESMM: cvr (= like), ctr (= engage), ctcvr
    names = {"cvr": "like", "ctr": "engage"} if config.get("model") == "esmm" else {}
    stop = tasks.index(next(t for t in tasks if names.get(t, t) == config.get("earlystop_label")))
    epoch = len(history) - 1
    if len(history) < int(config.get("epochs", len(history))):
        column = history[:, stop]
        epoch = int(
            np.argmin(column) if config.get("earlystop_mode") == "min" else np.argmax(column)
        )
    out = {}
    for index, task in enumerate(tasks):
        label = names.get(task, task)
        if label in ("engage", "like"):
            out[f"valid_{label}_auc"] = float(history[epoch, index])
    return out


# --------------------------------------------------------------------------- throughput
def throughput(
    rows: Rows,
    paths: dict[str, Path],
    *,
    threads: int,
    repeats: int,
    epochs: int,
    directory: Path,
    loaders: Sequence[str] = ("rechub", "tensor"),
) -> list[dict[str, Any]]:
    """Training samples per second, both libraries as a user runs them, side by side.

    Each repeat trains torch-rechub's MMoE with its ``MTLTrainer`` and ``DataGenerator``
    (the library untouched: ``--mask-mode zero``, its own losses), the same model fed
    pre-built tensor batches (the model's compute alone), then our MMoE of the same size with
    our ``Trainer``, for ``epochs`` epochs each at ``threads`` threads. Validation and data
    loading are outside the timed part for both.
    """
    features = FeatureSpec.infer(rows.dataset)  # the same fields the peer files carry
    timings: dict[str, list[float]] = {"ours": [], **{loader: [] for loader in loaders}}
    for repeat in range(repeats):
        for loader in loaders:
            options = peer_options("mmoe", epochs=epochs, patience=0)
            options.update(mask_mode="zero", loader=loader)
            run = _peers.run_rechub_multitask(
                paths["train"],
                paths["valid"],
                paths["test"],
                **options,
                out=directory / f"throughput_{loader}_{repeat}.json",
                threads=threads,
                env={"OMP_WAIT_POLICY": "PASSIVE"},
                stream=False,
            )
            timings[loader].append(float(run.result["samples_per_second"]))
        ranker = MultiTaskRanker(
            "mmoe",
            funnel_tasks(),
            strategy="fixed",
            features=features,
            architecture_params=MMOE_PARAMS,
            num_threads=threads,
            **{**RANKER_OPTIONS, "epochs": epochs, "patience": None},
        )
        ranker.fit(rows.train, dataset=rows.dataset)
        timings["ours"].append(ranker.history.samples_per_second)
        print(
            f"throughput repeat {repeat + 1}/{repeats} at {threads} threads: "
            + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in timings.items()),
            flush=True,
        )
    labels = {
        "ours": "throughput: paretorec MMoE (Trainer)",
        "rechub": "throughput: torch-rechub MMoE (MTLTrainer + DataGenerator)",
        "tensor": "throughput: torch-rechub MMoE (MTLTrainer, tensor batches)",
    }
    return [
        {
            "name": labels[key],
            "library": "paretorec" if key == "ours" else "torch-rechub",
            "kind": "throughput",
            "metrics": {
                "samples_per_second": round(statistics.median(values)),
                "samples_per_second_repeats": [round(v) for v in values],
            },
        }
        for key, values in timings.items()
    ]


# --------------------------------------------------------------------------- run
def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    threads: int = 2,
    train_threads: int = 1,
    repeats: int | None = None,
    peers: bool = True,
) -> dict[str, Any]:
    """Train every row, time both libraries, write ``<output_dir>/ml100k_multitask.json``.

    ``threads`` is the thread count of the throughput comparison; ``train_threads`` that of
    the quality runs (both libraries; one thread is the faster on a shared 2-core machine).
    ``quick`` keeps the first 150 users, two epochs, one model of each kind and one
    throughput repeat (a smoke test, not a result). ``peers=False`` leaves torch-rechub out.
    """
    started = time.perf_counter()
    dataset = load_dataset("movielens-100k", data_dir)
    if quick:
        inter = dataset.interactions
        dataset = dataset.with_interactions(inter[inter["user"] < QUICK_USERS])
    rows = build_rows(dataset)
    candidates = ease_candidates(rows.train_part, rows.test_part)
    valid_candidates = ease_candidates(rows.fit_part, rows.valid_part)
    ease_metrics = candidates.ndcg(candidates.set.scores)
    print(f"EASE top-{N_CANDIDATES}: {ease_metrics}", flush=True)
    epochs = 2 if quick else ML100K_RANKER.trainer.epochs
    patience = ML100K_RANKER.trainer.patience or 0
    # the shared ranker's fields (inferred, plus the user-history field)
    features = ML100K_RANKER.model.features.spec(dataset) or FeatureSpec.infer(dataset)
    tasks = {t.name: t for t in funnel_tasks()}
    out_rows: list[dict[str, Any]] = [
        {
            "name": f"candidates: EASE top-{N_CANDIDATES} (own order)",
            "library": "paretorec",
            "kind": "candidates",
            "metrics": {
                **ease_metrics,
                "ndcg@10_blend": ease_metrics["ndcg@10"],
                "blend_weight": 0.0,
                "fit_seconds": round(candidates.seconds, 1),
            },
        }
    ]
    # (name, architecture, tasks, strategy): single-task models first, then multi-task ones
    runs = [
        (f"single-task {task}", "shared_bottom", [tasks[task]], "fixed")
        for task in (QUICK_SINGLE_TASK if quick else SINGLE_TASK)
    ] + [
        (f"{architecture} / {strategy}", architecture, list(tasks.values()), strategy)
        for architecture, strategy in (QUICK_MULTI_TASK if quick else MULTI_TASK)
    ]
    for name, architecture, run_tasks, strategy in runs:
        out_rows.append(
            fit_row(
                name,
                architecture,
                run_tasks,
                strategy,
                rows,
                candidates,
                valid_candidates,
                features=features,
                threads=train_threads,
                epochs=epochs,
            )
        )
    # Like for like with torch-rechub's MMoE: its fields (no user history), its strategy
    # (fixed equal weights) and no refit (the early-stopped model is tested, as the peer's).
    out_rows.append(
        fit_row(
            LIKE_FOR_LIKE,
            "mmoe",
            list(tasks.values()),
            "fixed",
            rows,
            candidates,
            valid_candidates,
            features=FeatureSpec.infer(dataset),
            threads=train_threads,
            epochs=epochs,
            refit=False,
            kind="like-for-like",
        )
    )

    peer_versions: dict[str, Any] = {}
    if peers:
        peer_versions = _peers.check_peers(("torch_rechub",))
        with tempfile.TemporaryDirectory(prefix="ml100k_multitask_") as scratch:
            directory = Path(scratch)
            paths = export_peer_tables(rows, directory)
            for model in QUICK_PEER_MODELS if quick else PEER_MODELS:
                out_rows.append(
                    run_rechub(
                        model,
                        paths,
                        epochs=epochs,
                        patience=patience,
                        threads=train_threads,
                        out=directory / f"{model}.json",
                    )
                )
            out_rows += throughput(
                rows,
                paths,
                threads=threads,
                repeats=repeats or (1 if quick else 3),
                epochs=1 if quick else 2,
                directory=directory,
                loaders=("rechub",) if quick else ("rechub", "tensor"),
            )

    summary = summarise(out_rows)
    summary["total_seconds"] = round(time.perf_counter() - started)
    protocol = {
        "dataset": "movielens-100k"
        + (f" (quick: users with code < {QUICK_USERS})" if quick else ""),
        "split": "Microsoft Recommenders per-user stratified 75/25 (seed 42); validation = "
        "per-user 20% of the training part (seed 1)",
        "rows": f"funnel_rows: every rating is a row (engage 1, like = rating >= 4, rating) "
        f"plus one sampled unrated pair per rating (engage 0; like and rating masked); "
        f"test/validation negatives are pairs rated nowhere. train {len(rows.train):,}, "
        f"valid {len(rows.valid):,}, test {len(rows.test):,} rows",
        "metrics": "test AUC of engage (all rows) and like (rated rows), RMSE of rating "
        "(rated rows, predictions clipped to 1..5)",
        "paretorec": "embedding 32 (dropout 0.1), towers [32], dropout 0.1, AdamW lr 2e-3, "
        "batch 1024, features: user/item ids, gender, occupation, age band, genres (bag), age, "
        "year, user history (mean embedding of the user's rated training items, the row's own "
        "item left out); MMoE 4 experts [64]; PLE 2 levels, 1 task + 2 shared experts [64]; "
        "shared-bottom [128, 64]; ESMM: CTR = engage, CVR = like, rating on its own tower. "
        f"Up to {epochs} epochs, early stopping (patience 3) on validation rating "
        "RMSE (single-task models: their own task's AUC/RMSE), then refit on train + "
        "validation for the best epoch count (`paretorec train` with refit = true); "
        "*_before_refit = the early-stopped model on test. Single-task models: shared-bottom "
        "with one task, same features and settings",
        "strategies": "on MMoE: fixed (equal weights), uncertainty (Kendall et al.), dwa "
        "(dynamic weight average) and pcgrad (torchjd); shared-bottom, PLE and ESMM with "
        "uncertainty (the example config's strategy). Not the full cross product: one fit "
        "with its refit takes 2-4 minutes on this shared 2-core CPU, and the benchmark is "
        "kept near 25 minutes",
        "torch-rechub": "torch-rechub "
        + str(peer_versions.get("torch_rechub", "(not run)"))
        + ": MMOE/PLE/ESMM with its MTLTrainer and DataGenerator on the same rows "
        "(exported as files); labels masked like ours (its losses over the rows where each "
        "label exists); same embedding size, experts, towers, dropout, optimiser settings "
        "(Adam lr 2e-3, no weight decay), batch, epoch cap and early stopping (patience 3 on "
        "validation rating MSE; ESMM on engage AUC); fields: ids, gender, occupation, age "
        "band, every genre of the item (its SequenceFeature, mean-pooled over the item's "
        "genres, as our genre bag), age and year (not for its ESMM, sparse only); no "
        "user-history field and no refit (the library has neither). Its ESMM trains CTR "
        "(engage) and CTCVR only and has no rating output",
        "selection": "rows are chosen on validation, reported on test: "
        "best_mtl_like_auc_valsel = the test like AUC of our multi-task row (architecture x "
        "strategy) with the best validation like AUC (early-stopped model on the validation "
        "rows); torchrechub_like_auc_valsel likewise among the peer's models (its validation "
        "AUC at the epoch it tested); rating_rmse_valsel and rerank_ndcg@10_valsel by "
        "validation rating RMSE and validation-candidate nDCG@10. *_test_oracle = the best "
        "test value over rows, for comparison only",
        "like_for_like": "like_for_like_* = our MMoE trained as torch-rechub's is: its "
        "fields exactly (ids, gender, occupation, age band, every genre, age, year; no "
        "user-history field), fixed equal task weights, the same sizes, optimiser, epoch cap "
        "and early stopping, and no refit (the early-stopped model is tested); "
        "torchrechub_mmoe_* beside it",
        "re-ranking": f"EASE (lambda {EASE_REGULARIZATION:g}) fitted on the training part; its "
        f"top-{N_CANDIDATES} unseen items per test user are re-ordered by the ranker's fused "
        f"score {FUSED} (single-task models: their own output): ndcg@10. ndcg@10_blend "
        "orders them by (1 - w) minmax(EASE score) + w minmax(fused score) per user (the "
        "policy's 'sum' fusion), w in 0, 0.1, ..., 1 chosen by the early-stopped model on "
        "validation candidates (EASE fitted on the other 80 % of the training part); "
        "blend_weight in the JSON. nDCG@10 with binary gains, relevant = every test rating "
        "(the Microsoft Recommenders protocol; ndcg@10_liked in the JSON: ratings >= 4); "
        "users without test ratings skipped",
        "throughput": f"training samples per second at {threads} threads, median of "
        f"{repeats or (1 if quick else 3)} interleaved repeats of "
        f"{1 if quick else 2} epochs on the training rows; the same MMoE (embedding 32, "
        "4 experts [64], towers [32], same fields, no user history) in each library as a "
        "user runs it: our Trainer vs torch-rechub's MTLTrainer with its DataGenerator "
        "(out of the box, unmasked losses); torch-rechub fed pre-built tensor batches shows "
        "its model compute alone. Validation and data loading are not timed",
        "threads": f"quality runs: {train_threads} thread(s) in both libraries; throughput: "
        f"{threads}",
        "quick": quick,
        "published": PUBLISHED,
    }
    output = make_result("ml100k_multitask", protocol=protocol, rows=out_rows, summary=summary)
    print_rows(
        "MovieLens-100k funnel: test metrics",
        [r for r in out_rows if r["kind"] != "throughput"],
        COLUMNS,
    )
    print_rows(
        f"Training throughput at {threads} threads",
        [r for r in out_rows if r["kind"] == "throughput"],
        SPEED_COLUMNS,
    )
    print("summary:", summary)
    path = write_result(output, output_dir)
    print(f"wrote {path}")
    return output


def _chosen_on_validation(
    rows: Sequence[dict[str, Any]],
    kinds: Sequence[str],
    library: str,
    valid_key: str,
    test_key: str,
    *,
    lower_is_better: bool = False,
) -> dict[str, Any] | None:
    """The row of these kinds and library with the best ``valid_key``, or ``None``."""
    eligible = [
        r
        for r in rows
        if r["kind"] in kinds
        and r["library"] == library
        and np.isfinite(r["metrics"].get(valid_key, np.nan))
        and np.isfinite(r["metrics"].get(test_key, np.nan))
    ]
    if not eligible:
        return None
    sign = -1.0 if lower_is_better else 1.0
    # ties: the first row (the benchmark's order)
    return max(eligible, key=lambda r: sign * float(r["metrics"][valid_key]))


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The issue's summary figures (``None`` where a row kind was not run).

    Every ``*_valsel`` figure is the test value of the row chosen by its validation figure
    (``*_valsel_row`` names it); ``*_test_oracle`` figures take the best test value over
    rows, an optimistic bound kept for comparison only.
    """

    def metric(row: dict[str, Any] | None, key: str) -> Any:
        return None if row is None else row["metrics"].get(key)

    def name(row: dict[str, Any] | None) -> str | None:
        return None if row is None else row["name"]

    def named(title: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["name"] == title), None)

    mtl_like = _chosen_on_validation(
        rows, ("multi-task",), "paretorec", "valid_like_auc", "like_auc"
    )
    peer_like = _chosen_on_validation(
        rows, ("multi-task",), "torch-rechub", "valid_like_auc", "like_auc"
    )
    rmse = _chosen_on_validation(
        rows,
        ("multi-task", "single-task"),
        "paretorec",
        "valid_rating_rmse",
        "rating_rmse",
        lower_is_better=True,
    )
    rerank = _chosen_on_validation(rows, ("multi-task",), "paretorec", "valid_ndcg@10", "ndcg@10")
    like_for_like = next((r for r in rows if r["kind"] == "like-for-like"), None)
    peer_mmoe = named("torch-rechub mmoe")
    single_like = next(
        (r for r in rows if r["kind"] == "single-task" and r.get("tasks") == ["like"]), None
    )
    speed = {
        r["name"]: r["metrics"]["samples_per_second"] for r in rows if r["kind"] == "throughput"
    }
    ours_speed = next((v for k, v in speed.items() if "paretorec" in k), None)
    their_speed = next((v for k, v in speed.items() if "DataGenerator" in k), None)
    ease = next((r for r in rows if r["kind"] == "candidates"), None)
    mtl_test_like = [
        float(r["metrics"]["like_auc"])
        for r in rows
        if r["kind"] == "multi-task" and r["library"] == "paretorec" and "like_auc" in r["metrics"]
    ]
    return {
        "best_mtl_like_auc_valsel": metric(mtl_like, "like_auc"),
        "best_mtl_valsel_row": name(mtl_like),
        "torchrechub_like_auc_valsel": metric(peer_like, "like_auc"),
        "torchrechub_valsel_row": name(peer_like),
        "like_for_like_like_auc": metric(like_for_like, "like_auc"),
        "torchrechub_mmoe_like_auc": metric(peer_mmoe, "like_auc"),
        "like_for_like_engage_auc": metric(like_for_like, "engage_auc"),
        "torchrechub_mmoe_engage_auc": metric(peer_mmoe, "engage_auc"),
        "single_task_like_auc": metric(single_like, "like_auc"),
        "rating_rmse_valsel": metric(rmse, "rating_rmse"),
        "rating_rmse_valsel_row": name(rmse),
        "rerank_ndcg@10_valsel": metric(rerank, "ndcg@10"),
        "rerank_valsel_row": name(rerank),
        "ease_ndcg@10": metric(ease, "ndcg@10"),
        "throughput_ratio_vs_torchrechub": (
            round(ours_speed / their_speed, 3) if ours_speed and their_speed else None
        ),
        "paretorec_samples_per_second": ours_speed,
        "torchrechub_samples_per_second": their_speed,
        "best_mtl_like_auc_test_oracle": max(mtl_test_like) if mtl_test_like else None,
    }
