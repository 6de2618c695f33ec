"""``paretorec demo``: what exists, end to end, on MovieLens-100k."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .data import Dataset, cold_item_split, load_dataset, stratified_split
from .evaluation import evaluate_ranking
from .models import ConvergenceWarning, SequentialTransformer, create_model
from .multitask import ML100K_RANKER, ML100K_RANKER_QUICK
from .reporting import write_baseline_report

DEMO_MODELS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("random", {"seed": 0}),
    ("popularity", {}),
    ("itemknn", {}),
    ("ease", {}),
    # the tuned schedule (40 epochs, no early-stopping carve): the published-protocol figure
    ("bpr", {"seed": 0, "epochs": 40, "validation_share": None}),
)
COLUMNS = (
    "ndcg@10",
    "precision@10",
    "recall@10",
    "map@10",
    "coverage@10",
    "novelty@10",
    "long_tail_share@10",
    "gini@10",
    "ild_genres@10",
    "ndcg@10_gap[gender]",
)

#: The multi-task ranker the demo's Pareto run fuses: the shared MovieLens-100k ranker
#: (examples/train_ml100k_mmoe.toml's rows, tasks, model, strategy and trainer).
DEMO_RANKER: dict[str, Any] = ML100K_RANKER.model_dump()
DEMO_RANKER_QUICK: dict[str, Any] = ML100K_RANKER_QUICK.model_dump()

COLD_COLUMNS = ("warm_ndcg@10", "warm_recall@10", "cold_ndcg@10", "cold_recall@10")
#: The cold-start report's plots: what text buys on cold items against warm accuracy.
COLD_PLOTS = (
    ("warm_ndcg@10", "cold_ndcg@10", "nDCG@10: warm vs cold items"),
    ("warm_recall@10", "cold_recall@10", "Recall@10: warm vs cold items"),
    ("warm_ndcg@10", "warm_recall@10", "Warm items: nDCG@10 vs recall@10"),
)


def run_demo(
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    output_dir: str | Path = "runs/demo",
    quick: bool = False,
    console: Console | None = None,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """The whole pipeline on MovieLens-100k (see ``paretorec demo``).

    ``threads``: CPU threads while the demo runs (torch and BLAS, restored after); None:
    paretorec's setting (``paretorec --threads N demo``, ``$PARETOREC_THREADS``, else the
    cores). On cores shared with other work, ``--threads 1`` is much faster: with a load
    average about 20 on 2 cores, an MMoE epoch took 8 s with one thread and 410-490 s with
    two, and a cold-start sequential fit 60-70 s instead of 370-390 s.
    """
    from ._threads import thread_limit

    with thread_limit(threads):
        return _run_demo(
            data_dir=data_dir,
            download=download,
            output_dir=output_dir,
            quick=quick,
            console=console,
        )


def _run_demo(
    *,
    data_dir: str | Path | None,
    download: bool,
    output_dir: str | Path,
    quick: bool,
    console: Console | None,
) -> list[dict[str, Any]]:
    console = console or Console(width=max(140, Console().width))
    console.rule("[bold]paretorec demo: MovieLens-100k")
    dataset = load_dataset("movielens-100k", data_dir, download=download)
    console.print(repr(dataset), markup=False)
    split = stratified_split(dataset, ratio=0.75, seed=42)
    console.print(f"split: {split}  (per-user stratified 75/25, seed 42)", markup=False)
    genres, _ = dataset.item_multi_hot("genres")
    groups = {"gender": dataset.users["gender"].to_numpy()}
    rows: list[dict[str, Any]] = []
    for name, params in DEMO_MODELS:
        if quick and name == "bpr":
            params = {**params, "epochs": 7}  # 7 x 74 steps: the fewest that converge
        started = time.perf_counter()
        with console.status(f"training {name} ..."):
            model = create_model(name, **params).fit(split.train)
        fit_seconds = time.perf_counter() - started
        result = evaluate_ranking(
            model, split.test, k=10, item_features={"genres": genres}, user_groups=groups
        )
        console.print(
            f"  {name:<11s} fitted in {fit_seconds:5.1f}s  nDCG@10 {result['ndcg@10']:.4f}"
        )
        rows.append({"name": name, "fit_seconds": fit_seconds, "metrics": result.metrics})

    table = Table(
        title="Test metrics (full catalogue, training items excluded, K=10)", expand=False
    )
    table.add_column("model", style="bold")
    for column in COLUMNS:
        table.add_column(column.replace("@10", ""), justify="right")
    for row in rows:
        table.add_row(row["name"], *(f"{row['metrics'][c]:.4f}" for c in COLUMNS))
    console.print(table)
    report = write_baseline_report(
        output_dir,
        title="paretorec demo: MovieLens-100k baselines",
        rows=rows,
        columns=COLUMNS,
        notes=[
            "Per-user stratified 75/25 split (Microsoft Recommenders protocol, seed 42).",
            "Full-catalogue ranking with training items excluded; K = 10.",
            "Published on this protocol: BiVAE nDCG@10 0.4751, BPR 0.4420 "
            "(Microsoft Recommenders README).",
        ],
    )
    console.print(f"baseline report: {report.resolve()}")

    console.rule("[bold]Language-model item vectors: warm and cold items")
    cold_rows = run_cold_start(dataset, quick=quick, console=console)
    cold_report = write_baseline_report(
        Path(output_dir) / "cold_start",
        title="paretorec demo: warm vs cold items (MovieLens-100k cold-item split)",
        rows=cold_rows,
        columns=COLD_COLUMNS,
        plots=COLD_PLOTS,
        notes=[
            "10 % of the items are held out of training entirely (seed 0); the other "
            "interactions are split per user 75/25.",
            "Warm: ranking among warm items; cold: ranking among cold items only.",
            "Text: all-MiniLM-L6-v2 vectors of 'Title (Year) | Genres' (cached on disk).",
        ],
    )
    console.print(f"cold-start report: {cold_report.resolve()}")

    console.rule("[bold]Pareto front: EASE candidates, fused with the multi-task ranker, re-ranked")
    from .config import ParetoConfig
    from .pareto import print_front, run_pareto
    from .reporting import write_pareto_report

    settings = ParetoConfig.from_dict(
        {
            "name": "demo",
            "data": {"data_dir": str(data_dir) if data_dir else None, "download": download},
            "search": {
                "n_trials": 40 if quick else 200,
                "storage": None,
                "compare": {"mmr_only": {"rerankers": ["mmr"], "boosts": []}},
            },
            "ranker": DEMO_RANKER_QUICK if quick else DEMO_RANKER,
        }
    )
    console.print(
        "multi-task ranker: MMoE over engage / like / rating with uncertainty weighting, "
        "trained on each training part; its engage and like probabilities are fusion sources"
    )
    pareto_dir = Path(output_dir) / "pareto"
    run = run_pareto(settings, output_dir=pareto_dir, console=console)
    print_front(run, console=console, limit=12)
    pareto_report = write_pareto_report(run, pareto_dir)
    console.print(f"report: {pareto_report.resolve()}")
    console.rule("[bold]Learning online: a simulated A/B test and a bandit over operating points")
    from .online import demo_simulation, write_simulation_report

    online_dir = Path(output_dir) / "online"
    simulated, figure = demo_simulation(online_dir, n_rounds=2_000 if quick else 5_000)
    for key in ("arm_a", "arm_b", "a_reward", "b_reward", "lift", "ope_b_from_a_logs"):
        console.print(f"  {key}: {_short(simulated[key])}", markup=False)
    console.print(
        f"  bandit: regret / uniform random's {_short(simulated['bandit_regret_vs_random'])}, "
        f"reward lift over the best fixed point "
        f"{_short(simulated['bandit_reward_lift_vs_best_fixed_point'])}",
        markup=False,
    )
    page = write_simulation_report(simulated, figure, online_dir)
    console.print(f"online report (reward over rounds per arm): {page.resolve()}")

    from .serving import export_bundle

    bundle = export_bundle(run, pareto_dir / "bundle")
    console.rule("[bold]Serve it")
    console.print(f"serving bundle (checksummed): {bundle.resolve()}", markup=False)
    console.print(f"paretorec serve {bundle}", markup=False)
    return rows


def _short(value: Any) -> str:
    """A figure (or a dict of figures) on one line."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def run_cold_start(
    dataset: Dataset, *, quick: bool = False, console: Console | None = None
) -> list[dict[str, Any]]:
    """Warm vs cold items on a cold-item split: ID-only models cannot rank unseen items.

    10 % of the items are held out of training entirely. Warm figures rank the warm items
    (the user's warm test items are the targets); cold figures rank the cold items only
    (the user's cold test items are the targets), so a model that knows nothing about cold
    items scores like random there.
    """
    from .text import TextEncoder, encode_items

    console = console or Console()
    split = cold_item_split(dataset, item_fraction=0.1, ratio=0.75, seed=0)
    assert split.cold_items is not None
    cold = split.cold_items
    warm = np.setdiff1d(np.arange(dataset.n_items), cold)
    console.print(
        f"cold-item split: {split}; {len(cold)} items never seen in training", markup=False
    )
    encoder = TextEncoder(show_progress=True)
    started = time.perf_counter()
    vectors = encode_items(dataset, encoder)
    stats = encoder.last_stats
    assert stats is not None  # set by every encode call
    console.print(
        f"item texts ({stats.texts:,}, e.g. {_first_text(dataset)!r}) -> {encoder.model_name} "
        f"({vectors.shape[1]}-d): {stats.encoded:,} encoded, {stats.cached:,} from the cache, "
        f"{time.perf_counter() - started:.1f}s",
        markup=False,
    )
    # 3 epochs: validation nDCG is flat after the first few on this split, and the warm /
    # cold contrast (ID models cannot rank cold items, hybrid ones can) is there from epoch 1
    epochs = 2 if quick else 3
    candidates: list[tuple[str, Any]] = [
        ("random", create_model("random", seed=0)),
        ("ease", create_model("ease")),
        # batches of 64: 28 Adam steps per epoch (1,785 windows), enough to converge in 3
        (
            "sequential id",
            SequentialTransformer("id", epochs=epochs, batch_size=64, seed=0, show_progress=True),
        ),
        (
            "sequential hybrid",
            SequentialTransformer(
                "hybrid", epochs=epochs, batch_size=64, seed=0, show_progress=True
            ),
        ),
    ]
    rows: list[dict[str, Any]] = []
    # Shuffled pools: ties (a model that knows nothing about cold items scores them all
    # alike) are broken at random rather than towards low item codes, which in MovieLens
    # are the older, more popular films.
    rng = np.random.default_rng(0)
    pools = {"warm": rng.permutation(warm), "cold": rng.permutation(cold)}
    for name, model in candidates:
        started = time.perf_counter()
        with warnings.catch_warnings():
            if quick:  # a smoke test: too few epochs to converge, by design
                warnings.simplefilter("ignore", ConvergenceWarning)
            if isinstance(model, SequentialTransformer):  # shows its own progress bar
                model.fit(split.train, item_vectors=vectors)
            else:
                model.fit(split.train)
        seconds = time.perf_counter() - started
        metrics: dict[str, float] = {}
        for part, pool in pools.items():
            result = evaluate_ranking(model, split.test, k=10, items=pool, beyond_accuracy=False)
            metrics[f"{part}_ndcg@10"] = result["ndcg@10"]
            metrics[f"{part}_recall@10"] = result["recall@10"]
        rows.append({"name": name, "fit_seconds": seconds, "metrics": metrics})
    table = Table(
        title="Warm items (ranked among warm) vs cold items (ranked among cold), K=10",
        expand=False,
    )
    table.add_column("model", style="bold")
    columns = COLD_COLUMNS
    for column in columns:
        table.add_column(column.replace("@10", ""), justify="right")
    table.add_column("fit s", justify="right")
    for row in rows:
        table.add_row(
            row["name"],
            *(f"{row['metrics'][c]:.4f}" for c in columns),
            f"{row['fit_seconds']:.1f}",
        )
    console.print(table)
    return rows


def _first_text(dataset: Dataset) -> str:
    from .text import item_texts

    return item_texts(dataset)[0]
