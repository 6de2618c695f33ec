"""Serving: a verified bundle, the ``Recommender`` library object, the HTTP service.

::

    from paretorec.serving import Recommender, export_bundle

    export_bundle("runs/pareto_ml100k", "runs/pareto_ml100k/bundle")
    recommender = Recommender.load("runs/pareto_ml100k/bundle")
    recommender.recommend("196", preference={"ndcg": 2, "ild": 1}, k=10)

The HTTP app (``create_app``) needs the ``fastapi`` stack; it is imported lazily.
"""

from typing import Any

from ._bundle import Bundle, FrontPoint, export_bundle, load_bundle, verify_bundle, write_bundle
from ._explain import explanation_fidelity, history_contributions
from ._feedback import FEEDBACK_KINDS, FeedbackStore, StoreResult
from ._online import BanditChooser
from ._recommender import Constraint, Recommendation, RecommendedItem, Recommender, fold_in

__all__ = [
    "FEEDBACK_KINDS",
    "BanditChooser",
    "Bundle",
    "Constraint",
    "FeedbackStore",
    "FrontPoint",
    "Recommendation",
    "RecommendedItem",
    "Recommender",
    "ServiceSettings",
    "StoreResult",
    "create_app",
    "explanation_fidelity",
    "export_bundle",
    "fold_in",
    "history_contributions",
    "load_bundle",
    "verify_bundle",
    "write_bundle",
]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "ServiceSettings"):
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'paretorec.serving' has no attribute {name!r}")
