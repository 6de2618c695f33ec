"""Ranking: candidate lists, policies (fusion + boosts + re-ranking) and re-rankers."""

from ._ann import (
    ANNIndex,
    exact_top_k,
    is_embedding_model,
    recall_at_k,
    retrieval_items,
    retrieval_queries,
    retrieval_scale,
    retrieval_vectors,
)
from ._candidates import CandidateSet, ItemContext
from ._fusion import fused_scores
from ._policy import Policy
from ._rerankers import ItemSimilarity, apply_policy, dpp, fair_exposure, mmr

__all__ = [
    "ANNIndex",
    "CandidateSet",
    "ItemContext",
    "ItemSimilarity",
    "Policy",
    "apply_policy",
    "dpp",
    "exact_top_k",
    "fair_exposure",
    "fused_scores",
    "is_embedding_model",
    "mmr",
    "recall_at_k",
    "retrieval_items",
    "retrieval_queries",
    "retrieval_scale",
    "retrieval_vectors",
]
