"""Multi-task rankers: Shared-Bottom, MMoE, PLE and ESMM trained with multi-objective strategies.

``MultiTaskRanker`` is the entry point: tasks (:class:`TaskSpec`), features
(:class:`FeatureSpec`), an architecture and a strategy in, per-task predictions out.
``funnel_rows`` reads explicit ratings as an engage / like / rating funnel.
"""

from ._config import (
    RankerSection,
    RankerSettings,
    TrainConfig,
    evaluate_ranker,
    fit_ranker,
    fit_with_refit,
    run_training,
)
from ._features import (
    EncodedFeatures,
    FeatureSpec,
    TaskSpec,
    encode_features,
    funnel_rows,
    funnel_tasks,
)
from ._models import (
    ARCHITECTURES,
    ESMM,
    PLE,
    Batch,
    MMoE,
    MultiTaskModel,
    SharedBottom,
    build_model,
)
from ._presets import ML100K_RANKER, ML100K_RANKER_QUICK
from ._ranker import MultiTaskRanker
from ._regularizers import (
    diversity_regularized_loss,
    exposure_fairness,
    negative_entropy,
    popularity_groups,
)
from ._strategies import STRATEGIES, Strategy, get_strategy
from ._trainer import EpochRecord, History, Regularizer, Trainer, encode_rows, task_metrics

__all__ = [
    "ARCHITECTURES",
    "ESMM",
    "ML100K_RANKER",
    "ML100K_RANKER_QUICK",
    "PLE",
    "STRATEGIES",
    "Batch",
    "EncodedFeatures",
    "EpochRecord",
    "FeatureSpec",
    "History",
    "MMoE",
    "MultiTaskModel",
    "MultiTaskRanker",
    "RankerSection",
    "RankerSettings",
    "Regularizer",
    "SharedBottom",
    "Strategy",
    "TaskSpec",
    "TrainConfig",
    "Trainer",
    "build_model",
    "diversity_regularized_loss",
    "encode_features",
    "encode_rows",
    "evaluate_ranker",
    "exposure_fairness",
    "fit_ranker",
    "fit_with_refit",
    "funnel_rows",
    "funnel_tasks",
    "get_strategy",
    "negative_entropy",
    "popularity_groups",
    "run_training",
    "task_metrics",
]
