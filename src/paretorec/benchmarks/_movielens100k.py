"""MovieLens-100k under the published Microsoft Recommenders table's protocol.

The README table of Microsoft Recommenders (BPR nDCG@10 0.4420, BiVAE 0.4751, ...) comes from
its benchmark notebook, which splits MovieLens-100k **by item** with the released
``python_stratified_split(ratio=0.75, filter_by="item", seed=42)``. This benchmark runs that
protocol over five split seeds (42 first, the published one) and, in the same run and on the
same splits, trains the notebook's Cornac BPR and BiVAE (in the ``.venv-msr`` environment, see
``benchmarks/peers/cornac_movielens.py``), scoring every model with our own metric code.

Every setting of ours is chosen on a validation part carved from each split's training part
(item-stratified 80/20, seed 1) and refitted on the whole training part; ``best_model`` is
the model with the best mean validation nDCG@10.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..data import Dataset, Split, carve_validation, load_dataset, stratified_split
from ..evaluation import evaluate_ranking
from ..models import CandidateModel, create_model
from ._harness import make_result, print_rows, write_result
from ._peers import PeerError, PeersUnavailable, msr_python, run_peer

# Microsoft Recommenders README (recommenders-team/recommenders), ML-100k, the notebook's
# protocol; kept for reference only: the protocol check is against Cornac run here.
PUBLISHED = {
    "BiVAE": {"ndcg@10": 0.4751, "precision@10": 0.4118, "recall@10": 0.2191, "map": 0.1461},
    "BPR": {"ndcg@10": 0.4420, "precision@10": 0.3882, "recall@10": 0.2125, "map": 0.1325},
    "LightGCN": {"ndcg@10": 0.4198},
    "NCF": {"ndcg@10": 0.3961},
    "SAR": {"ndcg@10": 0.3825},
}

RATIO = 0.75
FILTER_BY = "item"
#: 42 is the published split; the others measure split noise.
SPLIT_SEEDS = (42, 1, 2, 3, 4)
VALIDATION_RATIO = 0.8
VALIDATION_SEED = 1

# Hyper-parameter grids searched on the validation carve (never on test).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "ease": [{"regularization": r} for r in (100.0, 200.0, 300.0, 400.0, 600.0, 900.0)],
    "itemknn": [
        {"neighbors": n, "shrink": s}
        for n in (50, 100, 150, 200, 300)
        for s in (10.0, 25.0, 50.0, 100.0)
    ],
    # One axis at a time around BPRModel's defaults (40 epochs, lr 0.05, regularisation
    # 0.01): each BPR fit costs seconds, a full cube would dominate the run.
    "bpr": [
        *({"epochs": e, "learning_rate": 0.05, "regularization": 0.01} for e in (20, 40, 80)),
        *({"epochs": 40, "learning_rate": lr, "regularization": 0.01} for lr in (0.025, 0.1)),
        *({"epochs": 40, "learning_rate": 0.05, "regularization": r} for r in (0.003, 0.03)),
    ],
}
QUICK_GRIDS: dict[str, list[dict[str, Any]]] = {
    "ease": [{"regularization": r} for r in (200.0, 400.0)],
    "itemknn": [{"neighbors": 100, "shrink": 10.0}],
    "bpr": [{"epochs": e, "learning_rate": 0.05, "regularization": 0.01} for e in (5, 10)],
}
QUICK_SPLIT_SEEDS = (42,)
MODELS = ("random", "popularity", "itemknn", "ease", "bpr")
#: Fixed (not tuned) settings of ours.
FIXED: dict[str, dict[str, Any]] = {"random": {"seed": 0}, "bpr": {"seed": 0}}

#: The notebook's Cornac settings (``examples/06_benchmarks/movielens.ipynb``), seed 42.
CORNAC: dict[str, dict[str, Any]] = {
    "bpr": {"k": 200, "max_iter": 200, "learning_rate": 0.01, "lambda_reg": 1e-3},
    "bivae": {
        "k": 100, "encoder_structure": [200], "act_fn": "tanh", "likelihood": "pois",
        "n_epochs": 500, "batch_size": 1024, "learning_rate": 1e-3,
    },
}  # fmt: skip
QUICK_CORNAC_OPTIONS = {"bpr_iter": 20, "bivae_epochs": 20}

ACCURACY_COLUMNS = ("ndcg@10", "ndcg@10_sd", "precision@10", "recall@10", "map@10", "mrr@10")
BEYOND_COLUMNS = (
    "coverage@10", "novelty@10", "avg_popularity@10", "long_tail_share@10", "gini@10",
    "ild_genres@10", "ndcg@10_gap[gender]", "ndcg@10_gap[age_band]",
)  # fmt: skip


class PrecomputedScores(CandidateModel):
    """A peer's score matrix (users x items, our codes) behind the candidate-model interface,
    so that the peer is ranked (training items removed, ties by item code) and scored by the
    same code as our models."""

    name = "precomputed"

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__()
        self.scores = np.asarray(scores, dtype=np.float32)

    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        if self.scores.shape != matrix.shape:
            raise ValueError(f"scores {self.scores.shape} do not match the data {matrix.shape}")

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.scores[users].copy()


def validation_score(model: CandidateModel, valid: Dataset) -> float:
    return float(evaluate_ranking(model, valid, k=10, beyond_accuracy=False)["ndcg@10"])


def tune(
    name: str, inner: Split, grid: list[dict[str, Any]]
) -> tuple[dict[str, Any], float, list[dict[str, Any]]]:
    """The grid point with the best validation nDCG@10, its score, and every trial."""
    valid = _valid(inner)
    trials: list[dict[str, Any]] = []
    for params in grid:
        model = create_model(name, **{**FIXED.get(name, {}), **params}).fit(inner.train)
        trials.append({"params": params, "valid_ndcg@10": validation_score(model, valid)})
    best = max(trials, key=lambda t: t["valid_ndcg@10"])
    return best["params"], best["valid_ndcg@10"], trials


def _valid(split: Split) -> Dataset:
    if split.valid is None:  # carve_validation always sets it
        raise RuntimeError("the split has no validation part")
    return split.valid


def _interactions_file(dataset: Dataset, path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "user": dataset.user_ids[dataset.interactions["user"].to_numpy()],
            "item": dataset.item_ids[dataset.interactions["item"].to_numpy()],
        }
    )
    if "rating" in dataset.interactions:
        frame["rating"] = dataset.interactions["rating"].to_numpy()
    frame.to_csv(path, index=False)


def _train_rows(dataset: Dataset, seed: int) -> np.ndarray:
    """Row numbers of ``dataset.interactions`` that :func:`stratified_split` puts in train."""
    import pandas as pd

    tagged = dataset.with_interactions(
        dataset.interactions.assign(_row=np.arange(dataset.n_interactions))
    )
    rows = stratified_split(tagged, ratio=RATIO, seed=seed, filter_by=FILTER_BY).train
    return np.sort(pd.Series(rows.interactions["_row"]).to_numpy())


def _peer_scores(path: Path, dataset: Dataset) -> np.ndarray:
    """The peer's matrix (ascending raw ids) re-indexed to our user and item codes."""
    raw = np.load(path)
    users = np.unique(dataset.user_ids[dataset.interactions["user"].to_numpy()])
    items = np.unique(dataset.item_ids[dataset.interactions["item"].to_numpy()])
    out = np.full((dataset.n_users, dataset.n_items), -np.inf, dtype=np.float32)
    user_rows = np.searchsorted(users, dataset.user_ids)
    item_cols = np.searchsorted(items, dataset.item_ids)
    known_users = users[np.minimum(user_rows, len(users) - 1)] == dataset.user_ids
    known_items = items[np.minimum(item_cols, len(items) - 1)] == dataset.item_ids
    block = raw[user_rows[known_users]][:, item_cols[known_items]]
    out[np.ix_(np.flatnonzero(known_users), np.flatnonzero(known_items))] = block
    return out


def run_cornac(
    dataset: Dataset, seed: int, scratch: Path, *, quick: bool = False
) -> dict[str, Any]:
    """Cornac BPR and BiVAE on the released splitter's split for ``seed`` (in .venv-msr)."""
    data_file = scratch / "interactions.csv"
    if not data_file.exists():
        _interactions_file(dataset, data_file)
    rows_file = scratch / f"train_rows_{seed}.txt"
    np.savetxt(rows_file, _train_rows(dataset, seed), fmt="%d")
    options: dict[str, Any] = {
        "interactions": data_file,
        "scores_prefix": scratch / f"scores_{seed}",
        "ratio": RATIO,
        "split_seed": seed,
        "filter_by": FILTER_BY,
        "expect_train_rows": rows_file,
        "models": "bpr,bivae",
        **(QUICK_CORNAC_OPTIONS if quick else {}),
    }
    run = run_peer(
        "cornac_movielens", options, python=msr_python(), threads=1, stream=False, timeout=7200
    )
    return run.result


def _aggregate(per_seed: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each metric over seeds, and the sample sd of nDCG@10."""
    keys = [k for k in per_seed[0]["metrics"] if all(k in s["metrics"] for s in per_seed)]
    out = {k: float(np.mean([s["metrics"][k] for s in per_seed])) for k in keys}
    ndcg = [s["metrics"]["ndcg@10"] for s in per_seed]
    out["ndcg@10_sd"] = float(np.std(ndcg, ddof=1)) if len(ndcg) > 1 else 0.0
    return {k: round(v, 6) for k, v in out.items()}


def _own_session() -> None:
    """Worker initializer: a session of its own, like the peer processes (under Linux's
    autogroup scheduling the workers would otherwise share one process's CPU time)."""
    if hasattr(os, "setsid"):
        with contextlib.suppress(OSError):  # already a session leader
            os.setsid()


def _our_models(
    dataset_name: str,
    data_dir: str | Path | None,
    seed: int,
    models: tuple[str, ...],
    grids: dict[str, list[dict[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """Tune (on the validation carve), refit and test each of our models on one split seed."""
    dataset = load_dataset(dataset_name, data_dir)
    genres, _ = dataset.item_multi_hot("genres")
    groups = {
        "gender": dataset.users["gender"].to_numpy(),
        "age_band": dataset.users["age_band"].to_numpy(),
    }
    split = stratified_split(dataset, ratio=RATIO, seed=seed, filter_by=FILTER_BY)
    inner = carve_validation(
        split, ratio=VALIDATION_RATIO, seed=VALIDATION_SEED, filter_by=FILTER_BY
    )
    out: dict[str, dict[str, Any]] = {}
    for name in models:
        params: dict[str, Any] = dict(FIXED.get(name, {}))
        tuning: list[dict[str, Any]] = []
        if name in grids:
            best, valid_ndcg, tuning = tune(name, inner, grids[name])
            params.update(best)
        else:
            valid_ndcg = validation_score(
                create_model(name, **params).fit(inner.train), _valid(inner)
            )
        started = time.perf_counter()
        model = create_model(name, **params).fit(split.train)
        fit_seconds = time.perf_counter() - started
        result = evaluate_ranking(
            model, split.test, k=10, item_features={"genres": genres}, user_groups=groups
        )
        out[name] = {
            "split_seed": seed,
            "params": model.get_params(),
            "valid_ndcg@10": round(valid_ndcg, 6),
            "tuning": tuning,
            "fit_seconds": round(fit_seconds, 3),
            "metrics": {k: round(v, 6) for k, v in result.metrics.items()},
        }
    return out


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    models: tuple[str, ...] = MODELS,
    quick: bool = False,
    split_seeds: tuple[int, ...] | None = None,
    peers: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Run the protocol over the split seeds; ``workers`` (default: one per split seed) is
    how many seeds run side by side."""
    dataset = load_dataset("movielens-100k", data_dir)
    seeds = split_seeds or (QUICK_SPLIT_SEEDS if quick else SPLIT_SEEDS)
    genres, _ = dataset.item_multi_hot("genres")
    groups = {
        "gender": dataset.users["gender"].to_numpy(),
        "age_band": dataset.users["age_band"].to_numpy(),
    }
    grids = QUICK_GRIDS if quick else GRIDS
    per_model: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
    peer_runs: dict[str, list[dict[str, Any]]] = {"cornac_bpr": [], "cornac_bivae": []}
    peer_note = ""
    if peers and msr_python(required=False) is None:
        peer_note = "skipped: no .venv-msr (set $PARETOREC_MSR_PYTHON); see benchmarks/peers"
    elif not peers:
        peer_note = "skipped: peers=False"
    scratch = tempfile.TemporaryDirectory(prefix="ml100k_cornac_")
    # The split seeds are independent: with ``workers`` > 1 they run side by side, ours in
    # worker processes and the peers in their own processes; with 1, one after another
    # (the peers always beside ours).
    n_workers = max(1, min(workers or len(seeds), len(seeds)))
    peer_pool = ThreadPoolExecutor(max_workers=n_workers)
    futures = (
        {}
        if peer_note
        else {
            s: peer_pool.submit(run_cornac, dataset, s, Path(scratch.name), quick=quick)
            for s in seeds
        }
    )
    splits = {
        seed: stratified_split(dataset, ratio=RATIO, seed=seed, filter_by=FILTER_BY)
        for seed in seeds
    }
    sizes = {s: (sp_.train.n_interactions, sp_.test.n_interactions) for s, sp_ in splits.items()}
    jobs = [("movielens-100k", data_dir, seed, models, grids) for seed in seeds]
    try:
        if n_workers == 1:
            outcomes = [_our_models(*job) for job in tqdm(jobs, desc="split seeds")]
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=n_workers, mp_context=context, initializer=_own_session
            ) as pool:
                outcomes = list(
                    tqdm(pool.map(_our_models, *zip(*jobs, strict=True)), total=len(jobs),
                         desc="split seeds")
                )  # fmt: skip
        for outcome in outcomes:
            for name, record in outcome.items():
                per_model[name].append(record)
        for seed, future in futures.items():
            if peer_note:
                future.cancel()
                continue
            try:
                peer = future.result()
            except (PeerError, PeersUnavailable) as exc:
                peer_note = f"failed: {str(exc).splitlines()[0]}"
                continue
            split = splits[seed]
            for key, info in peer["models"].items():
                cornac_model = PrecomputedScores(_peer_scores(Path(info["scores"]), dataset))
                cornac_model.fit(split.train)
                result = evaluate_ranking(
                    cornac_model,
                    split.test,
                    k=10,
                    item_features={"genres": genres},
                    user_groups=groups,
                )
                peer_runs[f"cornac_{key}"].append(
                    {
                        "split_seed": seed,
                        "split_matches_released": peer.get("split_matches"),
                        "params": {**CORNAC[key], "seed": 42, **info["params"]},
                        "fit_seconds": info["fit_seconds"],
                        "referee_metrics": {
                            k: round(v, 6) for k, v in info["referee_metrics"].items()
                        },
                        "metrics": {k: round(v, 6) for k, v in result.metrics.items()},
                        "versions": {
                            "recommenders": peer["recommenders"],
                            "cornac": peer["cornac"],
                        },
                    }
                )
    finally:
        peer_pool.shutdown(cancel_futures=True)
        scratch.cleanup()

    rows: list[dict[str, Any]] = []
    for name, runs in [*per_model.items(), *peer_runs.items()]:
        if not runs:
            continue
        rows.append(
            {
                "name": name,
                "kind": "peer" if name.startswith("cornac_") else "ours",
                "split_seeds": [r["split_seed"] for r in runs],
                "metrics": _aggregate(runs),
                "per_seed": runs,
            }
        )
    summary = summarize(rows, seeds)
    if peer_note:
        summary["cornac_peers"] = peer_note
    protocol = {
        "dataset": "movielens-100k",
        "split": f"item-stratified random {RATIO:.0%}/{1 - RATIO:.0%}: the released "
        "recommenders 1.2.1 python_stratified_split(ratio=0.75, filter_by='item', seed), as "
        "the benchmark notebook behind the published table; paretorec's stratified_split "
        "reproduces it row for row (checked again in this run by the peer)",
        "split_seeds": list(seeds),
        "n_train_test": {str(s): list(v) for s, v in sizes.items()},
        "interactions": "every rating is an interaction (binary relevance)",
        "ranking": "full catalogue, training items removed, top-10, ties by item code",
        "metrics": "ours for every row (nDCG@10 binary gains; users with no test items "
        "skipped); Cornac rows also carry recommenders' python_evaluation figures "
        "(referee_metrics)",
        "tuning": f"grids searched on an item-stratified {VALIDATION_RATIO:.0%} carve of "
        f"each split's training part (seed {VALIDATION_SEED}); the chosen point is refitted "
        "on the whole training part; best_model is the best mean validation nDCG@10",
        "peers": "Cornac BPR and BiVAE with the notebook's settings (seed 42, CPU, one "
        "thread) on the released splitter's split, in the .venv-msr environment",
        "cornac_settings": CORNAC if not quick else {**CORNAC, "quick": QUICK_CORNAC_OPTIONS},
        "workers": f"{n_workers} split seed(s) side by side (ours in worker processes, each "
        "on one thread; the peers in their own processes, one thread each)",
        "quick": quick,
        "published": PUBLISHED,
    }
    output = make_result("movielens100k", protocol=protocol, rows=rows, summary=summary)
    print_rows(
        f"MovieLens-100k, item-stratified, {len(seeds)} split seed(s): accuracy (test, mean)",
        rows,
        ACCURACY_COLUMNS,
    )
    print_rows("Beyond accuracy and fairness (test, mean)", rows, BEYOND_COLUMNS)
    print("published (MS Recommenders README):", PUBLISHED)
    print("summary:", summary)
    path = write_result(output, output_dir)
    print(f"wrote {path}")
    return output


def summarize(rows: list[dict[str, Any]], seeds: tuple[int, ...]) -> dict[str, Any]:
    """Headline figures: means and sds over the split seeds, best model chosen on validation."""
    by_name = {r["name"]: r for r in rows}
    summary: dict[str, Any] = {"split_seeds": len(seeds)}
    ours = [r for r in rows if r["kind"] == "ours"]
    if ours:
        best = max(ours, key=lambda r: np.mean([s["valid_ndcg@10"] for s in r["per_seed"]]))
        summary["best_model"] = best["name"]
        summary["best_model_chosen_on"] = "mean validation nDCG@10"
        summary["best_ndcg@10"] = best["metrics"]["ndcg@10"]
        summary["best_ndcg@10_sd"] = best["metrics"]["ndcg@10_sd"]
    # EASE as ``_mean``; BPR (ours, validation-chosen settings) and the Cornac peers as the
    # plain key; every mean with its sd over the split seeds.
    for name, mean_key in (("ease", "ease_ndcg@10_mean"), ("bpr", "bpr_ndcg@10"),
                           ("cornac_bpr", "cornac_bpr_ndcg@10"),
                           ("cornac_bivae", "cornac_bivae_ndcg@10")):  # fmt: skip
        if name not in by_name:
            continue
        metrics = by_name[name]["metrics"]
        summary[mean_key] = metrics["ndcg@10"]
        summary[f"{name}_ndcg@10_sd"] = metrics["ndcg@10_sd"]
        first = by_name[name]["per_seed"][0]
        summary[f"{name}_ndcg@10_seed{first['split_seed']}"] = first["metrics"]["ndcg@10"]
    if "cornac_bpr" in by_name:
        matches = [s["split_matches_released"] for s in by_name["cornac_bpr"]["per_seed"]]
        summary["split_matches_released_splitter"] = all(m is True for m in matches)
    if "ease" in by_name and "cornac_bivae" in by_name:
        diff = _paired(by_name["ease"], by_name["cornac_bivae"])
        summary["ease_minus_bivae_ndcg@10_mean"] = diff[0]
        summary["ease_minus_bivae_ndcg@10_sd"] = diff[1]
    if "bpr" in by_name and "cornac_bpr" in by_name:
        diff = _paired(by_name["bpr"], by_name["cornac_bpr"])
        summary["bpr_minus_cornac_bpr_ndcg@10_mean"] = diff[0]
        summary["bpr_minus_cornac_bpr_ndcg@10_sd"] = diff[1]
    return summary


def _paired(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Mean and sample sd over the shared split seeds of ``a``'s nDCG@10 minus ``b``'s."""
    b_by_seed = {s["split_seed"]: s["metrics"]["ndcg@10"] for s in b["per_seed"]}
    diffs = [
        s["metrics"]["ndcg@10"] - b_by_seed[s["split_seed"]]
        for s in a["per_seed"]
        if s["split_seed"] in b_by_seed
    ]
    sd = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
    return round(float(np.mean(diffs)), 6), round(sd, 6)
