"""Data layer: the dataset object, loaders and registry, downloads, splits, sampling."""

from ._config import ColumnsConfig, DataConfig, SideTableConfig
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
    TiedTimestampsWarning,
    carve_validation,
    cold_item_split,
    leave_one_out,
    merge_parts,
    random_split,
    stratified_split,
    temporal_split,
)
from ._tables import (
    SideTable,
    describe_dataset,
    item_text_from_training,
    load_events,
    read_side_table,
    read_table,
)

__all__ = [
    "DATASETS",
    "DUPLICATE_POLICIES",
    "ITEM",
    "OBJECTIVES",
    "TIMESTAMP",
    "USER",
    "ColumnsConfig",
    "DataConfig",
    "Dataset",
    "DatasetSource",
    "SegmentedUsers",
    "SideTable",
    "SideTableConfig",
    "SimulatedFunnel",
    "Split",
    "TiedTimestampsWarning",
    "carve_validation",
    "cold_item_split",
    "dataset_layout",
    "describe_dataset",
    "download_dataset",
    "item_text_from_training",
    "leave_one_out",
    "list_datasets",
    "load_amazon_scientific",
    "load_dataset",
    "load_events",
    "load_movielens_1m",
    "load_movielens_100k",
    "load_table",
    "locate_dataset",
    "merge_parts",
    "random_split",
    "read_side_table",
    "read_table",
    "register_dataset",
    "sample_negatives",
    "simulate_funnel",
    "simulate_segmented_users",
    "stratified_split",
    "temporal_split",
    "verify_dataset",
]
