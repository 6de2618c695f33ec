"""Candidate models: score the whole catalogue for a user."""

from ._base import (
    CandidateModel,
    ConvergenceWarning,
    create_model,
    get_model_class,
    list_models,
    mask_seen,
    register_model,
    top_k_indices,
)
from ._bpr import BPRModel
from ._ease import EASEModel
from ._itemknn import ItemKNNModel
from ._sequential import SequentialTransformer
from ._simple import PopularityModel, RandomModel

__all__ = [
    "BPRModel",
    "CandidateModel",
    "ConvergenceWarning",
    "EASEModel",
    "ItemKNNModel",
    "PopularityModel",
    "RandomModel",
    "SequentialTransformer",
    "create_model",
    "get_model_class",
    "list_models",
    "mask_seen",
    "register_model",
    "top_k_indices",
]
