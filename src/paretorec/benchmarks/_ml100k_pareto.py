"""MovieLens-100k Pareto benchmark: full policy space vs single re-rankers, same budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from ..config import ParetoConfig, SearchConfig
from ..multitask import ML100K_RANKER, ML100K_RANKER_QUICK
from ..pareto import run_pareto
from ..reporting import write_pareto_report
from ._harness import make_result, print_rows, write_result

#: ``best_*_test_oracle``: the largest test value on each front (each its own policy): how
#: far the front reaches, not a figure any one policy chosen on validation achieves.
FRONT_COLUMNS = (
    "hypervolume_test",
    "hypervolume_test_offset_ref",
    "front_size",
    "best_ndcg_test_oracle",
    "best_ild_test_oracle",
    "best_coverage_test_oracle",
    "best_novelty_test_oracle",
    "search_seconds",
)
#: The result's summary: validation-selected headlines first (one policy per objective,
#: chosen on validation, measured on test, relative to the plain ranking), then the second
#: reference, the hypervolume ratios and the test oracle, labelled as such.
SUMMARY_KEYS = (
    "ild_gain_at_95pct_ndcg_valsel",
    "coverage_ratio_at_95pct_ndcg_valsel",
    "novelty_gain_at_95pct_ndcg_valsel",
    "ild_valsel_ndcg_share",
    "coverage_valsel_ndcg_share",
    "novelty_valsel_ndcg_share",
    "ild_gain_at_95pct_ndcg_valsel_guarded",
    "coverage_ratio_at_95pct_ndcg_valsel_guarded",
    "novelty_gain_at_95pct_ndcg_valsel_guarded",
    "ild_valsel_guarded_ndcg_share",
    "coverage_valsel_guarded_ndcg_share",
    "novelty_valsel_guarded_ndcg_share",
    "hv_ratio_vs_best_single_reranker",
    "hv_ratio_vs_best_single_reranker_offset_ref",
    "ild_gain_at_95pct_ndcg_valsel_vs_top_ndcg",
    "coverage_ratio_at_95pct_ndcg_valsel_vs_top_ndcg",
    "novelty_gain_at_95pct_ndcg_valsel_vs_top_ndcg",
    "search_seconds_1000_evals",
    "val_test_spearman",
    "ndcg_share_drift_median",
    "ndcg_share_drift_by_reranker",
    "ild_valsel_top10_drift",
    "coverage_valsel_top10_drift",
    "novelty_valsel_top10_drift",
    "front_size",
    "ild_gain_at_95pct_ndcg_test_oracle",
    "coverage_ratio_at_95pct_ndcg_test_oracle",
    "novelty_gain_at_95pct_ndcg_test_oracle",
    "ild_valsel_pick",
    "coverage_valsel_pick",
    "novelty_valsel_pick",
    "ild_valsel_guarded_pick",
    "coverage_valsel_guarded_pick",
    "novelty_valsel_guarded_pick",
    "plain_test",
    "plain_validation",
    "top_ndcg_test",
)
COMPARED = {
    "mmr_only": {"rerankers": ["mmr"], "boosts": []},
    "dpp_only": {"rerankers": ["dpp"], "boosts": []},
    "popularity_penalty_only": {"rerankers": ["none"], "boosts": ["popularity"]},
}


#: The multi-task ranker fused with the candidate score: the shared MovieLens-100k ranker
#: (examples/train_ml100k_mmoe.toml's rows, tasks, model, strategy and trainer).
RANKER = ML100K_RANKER
#: Policies must keep 90 % of the plain candidate ranking's validation nDCG@10 (as in
#: examples/pareto_ml100k.toml), in every compared space: the budget goes to policies an
#: operator would serve.
CONSTRAINTS = [{"objective": "ndcg", "min": 0.9, "relative": True}]


#: The search storage: the Pareto config's default (a journal file in the run folder).
STORAGE = SearchConfig().storage or "study.journal"


def config(
    n_trials: int, data_dir: str | Path | None, output_dir: Path, *, quick: bool = False
) -> ParetoConfig:
    return ParetoConfig.from_dict(
        {
            "name": "ml100k_pareto",
            "output_dir": str(output_dir),
            "data": {"dataset": "movielens-100k", "data_dir": str(data_dir) if data_dir else None},
            "candidates": {"model": "ease", "params": {"regularization": 600.0}},
            "objectives": {"names": ["ndcg", "ild", "coverage", "novelty"], "k": 10},
            "search": {
                "n_trials": n_trials,
                "sampler": "nsga2",
                # the default resumable storage (a journal file in the run folder): the
                # timing includes what a user pays for resumability
                "storage": STORAGE,
                "compare": COMPARED,
                "constraints": CONSTRAINTS,
            },
            "ranker": (ML100K_RANKER_QUICK if quick else RANKER).model_dump(),
        }
    )


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    n_trials: int | None = None,
) -> dict[str, Any]:
    trials = n_trials or (60 if quick else 1000)
    run_dir = Path("runs") / "ml100k_pareto"
    # a fresh study: a stored one would be resumed and its trials not timed again
    (run_dir / STORAGE).unlink(missing_ok=True)
    pareto = run_pareto(config(trials, data_dir, run_dir, quick=quick), console=Console())
    report = write_pareto_report(pareto, run_dir)
    rows = []
    for name, check in pareto.holdout.items():
        search = pareto.searches[name]
        rows.append(
            {
                "name": name,
                "metrics": {
                    "hypervolume_test": pareto.summary["hypervolume_test"][name],
                    "hypervolume_test_offset_ref": pareto.summary["hypervolume_test_offset_ref"][
                        name
                    ],
                    "front_size": len(check.test),
                    "evaluations": len(search.policies),
                    "search_seconds": round(search.seconds, 3),
                    **{
                        f"best_{o}_test_oracle": float(check.test[:, i].max())
                        for i, o in enumerate(pareto.objectives)
                    },
                },
            }
        )
    summary: dict[str, Any] = {
        key: pareto.summary[key] for key in SUMMARY_KEYS if key in pareto.summary
    }
    protocol = {
        "dataset": "movielens-100k",
        "split": "Microsoft Recommenders per-user stratified 75/25 (seed 42); validation = "
        "per-user 20% of training (seed 1)",
        "candidates": "EASE (lambda 600) top-100 unseen items; refitted on the whole training "
        "part for test",
        "ranker": "MMoE over engage / like / rating (uncertainty weighting, embedding 32, "
        "user-history field), fitted on each training part alone (early stopping on a "
        "per-user 20 % carve, then refit on the whole part); its engage and like "
        "probabilities are fusion sources next to the EASE score, in every space"
        + (" (quick: a small 2-epoch MMoE)" if quick else ""),
        "ranker_test": pareto.ranker_metrics.get("test"),
        "constraint": "validation nDCG@10 >= 0.9 x the plain EASE ranking's, in every space",
        "objectives": "nDCG@10, ILD@10 (genre cosine), coverage@10, novelty@10 (all maximised)",
        "search": f"Optuna NSGA-II, {trials} evaluations per space, seed 0, default resumable "
        f"storage (journal file {STORAGE} in the run folder, started empty)",
        "spaces": {
            "full": "re-ranker in {none, MMR (max or mean), DPP, fair} + novelty and long-tail "
            "boosts, popularity and exposure penalties; the chosen set presented in the "
            "re-ranker's order or by fused score",
            **{k: str(v) for k, v in COMPARED.items()},
        },
        "hypervolume": "on test, objectives normalised to [0,1] by the ideal and nadir of the "
        "union of every compared front; reference point = that nadir (hypervolume_test, "
        "hv_ratio_vs_best_single_reranker) or the nadir moved 10 % of each objective's range "
        "further (hypervolume_test_offset_ref, *_offset_ref), which credits extreme points",
        "selection": "*_valsel: for each of ILD, coverage and novelty, ONE front policy chosen "
        "on validation (best validation value of that objective among the feasible policies "
        "with validation nDCG@10 >= 0.95 x the plain EASE ranking's, evaluation 0), reported "
        "on test relative to the plain ranking's test value; *_valsel_pick holds that "
        "policy, its validation and test vectors and its test nDCG share of the plain "
        "ranking's. *_valsel_vs_top_ndcg: the same choice against the search's top "
        "validation-nDCG policy, relative to its test values. *_valsel_guarded: the same choice "
        "with a noise guard, among the policies whose validation nDCG@10 share of the plain "
        "ranking's, less 1.645 standard errors over validation users (paired, delta method; "
        "a one-sided 95 % lower bound), is >= 0.95; *_valsel_guarded_pick holds that policy, "
        "its share, standard error and bound. *_test_oracle: filtered and "
        "picked on test, each objective its own policy (an optimistic bound, not a result)",
        "drift": "ndcg_share_drift_*: median over the front policies with validation nDCG@10 "
        ">= 0.95 x the plain ranking's (those *_valsel may pick) of test share - validation "
        "share of the plain ranking's nDCG@10, overall and per re-ranker; "
        "*_valsel_top10_drift: the same median over the 10 of them with the best validation "
        "value of that objective (the pick and its runners-up); negative: validation "
        "overstates what those policies keep on test (a diagnostic; it chooses nothing)",
        "report": str(report),
    }
    output = make_result("ml100k_pareto", protocol=protocol, rows=rows, summary=summary)
    print_rows("MovieLens-100k Pareto fronts on test (same search budget)", rows, FRONT_COLUMNS)
    print("summary:", summary)
    path = write_result(output, output_dir)
    print(f"wrote {path}; report: {report}")
    return output
