"""Named ranker settings shared by the demo, the benchmarks and the example configs."""

from __future__ import annotations

from ._config import FeaturesSection, ModelSection, RankerSettings, StrategySection, TrainerSection

#: The MovieLens-100k ranker: ``examples/train_ml100k_mmoe.toml``'s rows, tasks, model,
#: strategy and trainer (a test keeps the two equal). The demo's Pareto run, the
#: ``ml100k_pareto`` benchmark and the ``ml100k_multitask`` benchmark all start from it.
ML100K_RANKER = RankerSettings(
    model=ModelSection(
        architecture="mmoe",
        embedding_dim=32,
        embedding_dropout=0.1,
        tower_units=(32,),
        dropout=0.1,
        features=FeaturesSection(user_history="rated"),
    ),
    strategy=StrategySection(name="uncertainty"),
    trainer=TrainerSection(
        epochs=40, batch_size=1024, lr=2e-3, patience=3, monitor_task="rating", seed=0
    ),
)
#: A small two-epoch MMoE for smoke runs (``--quick``): not a result.
ML100K_RANKER_QUICK = RankerSettings(
    model=ModelSection(architecture="mmoe", embedding_dim=8, tower_units=(8,)),
    strategy=StrategySection(name="uncertainty"),
    trainer=TrainerSection(epochs=2, batch_size=4096, patience=None, seed=0),
)
