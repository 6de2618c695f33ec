"""One ranker definition: the example config, the demo and both benchmarks agree."""

from __future__ import annotations

from pathlib import Path

from paretorec.benchmarks import _ml100k_multitask, _ml100k_pareto
from paretorec.demo import DEMO_RANKER
from paretorec.multitask import ML100K_RANKER, FeatureSpec, TrainConfig, funnel_tasks

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_ml100k_mmoe.toml"
PARTS = ("rows", "tasks", "model", "strategy", "trainer")


def test_the_example_config_is_the_shared_definition() -> None:
    example = TrainConfig.from_toml(EXAMPLE)
    for part in PARTS:
        assert getattr(example, part) == getattr(ML100K_RANKER, part), part
    assert example.refit  # as the Pareto ranker and the multi-task benchmark do


def test_the_demo_and_the_pareto_benchmark_fuse_the_shared_ranker(tmp_path: Path) -> None:
    assert ML100K_RANKER.model_dump() == DEMO_RANKER
    ranker = _ml100k_pareto.config(10, None, tmp_path).ranker
    for part in PARTS:
        assert getattr(ranker, part) == getattr(ML100K_RANKER, part), part


def test_the_multitask_benchmark_builds_the_shared_ranker() -> None:
    features = FeatureSpec(user_history="rated")
    ours = _ml100k_multitask.ranker_for(
        "mmoe", funnel_tasks(), "uncertainty", features=features, threads=1
    ).get_params()
    shared = ML100K_RANKER.ranker().get_params()
    local = {"num_threads", "device", "progress", "features", "architecture_params"}
    assert {k: v for k, v in ours.items() if k not in local} == {
        k: v for k, v in shared.items() if k not in local
    }
    # the MMoE size both libraries share is the MMoE default the example config gets
    import inspect

    from paretorec.multitask import MMoE

    defaults = inspect.signature(MMoE.__init__).parameters
    assert ours["architecture_params"]["n_experts"] == defaults["n_experts"].default
    assert tuple(ours["architecture_params"]["expert_units"]) == tuple(
        defaults["expert_units"].default
    )
