"""Data layer: the dataset object, loaders and registry, downloads, splits, sampling."""

from ._dataset import DUPLICATE_POLICIES, ITEM, TIMESTAMP, USER, Dataset
from ._download import (
    DATASETS,
    DatasetSource,
    dataset_layout,
    download_dataset,
    locate_dataset,
    verify_dataset,
)
from ._loaders import (
    list_datasets,
    load_amazon_scientific,
    load_dataset,
    load_movielens_1m,
    load_movielens_100k,
    load_table,
    register_dataset,
)
from ._sampling import sample_negatives
from ._simulator import (
    OBJECTIVES,
    SegmentedUsers,
    SimulatedFunnel,
    simulate_funnel,
    simulate_segmented_users,
)
from ._splits import (
    Split,
    carve_validation,
    cold_item_split,
    leave_one_out,
    random_split,
    stratified_split,
    temporal_split,
)

__all__ = [
    "DATASETS",
    "DUPLICATE_POLICIES",
    "ITEM",
    "OBJECTIVES",
    "TIMESTAMP",
    "USER",
    "Dataset",
    "DatasetSource",
    "SegmentedUsers",
    "SimulatedFunnel",
    "Split",
    "carve_validation",
    "cold_item_split",
    "dataset_layout",
    "download_dataset",
    "leave_one_out",
    "list_datasets",
    "load_amazon_scientific",
    "load_dataset",
    "load_movielens_1m",
    "load_movielens_100k",
    "load_table",
    "locate_dataset",
    "random_split",
    "register_dataset",
    "sample_negatives",
    "simulate_funnel",
    "simulate_segmented_users",
    "stratified_split",
    "temporal_split",
    "verify_dataset",
]
