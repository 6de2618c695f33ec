"""Shared fixtures: seeding, the shared data folder, a tiny synthetic dataset."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from paretorec.data import Dataset

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$PARETOREC_DATA_DIR``, else ``<repo>/../shared/data`` when it exists."""
    env = os.environ.get("PARETOREC_DATA_DIR")
    if env:
        return Path(env).resolve()  # tests may change the working directory
    default = REPO.parent / "shared" / "data"
    return default if default.is_dir() else None


def dataset_folder(folder: str, probe: str) -> Path:
    root = shared_data_dir()
    if root is None or not (root / folder / probe).is_file():
        pytest.skip(
            f"{folder} not available: set PARETOREC_DATA_DIR to a folder holding {folder}/{probe}"
        )
    return root / folder


# Tests run as `pytest -n 2` on 2 cores: one thread per worker (torch and BLAS) avoids
# oversubscription, which makes small torch ops up to 100x slower. The environment variable
# reaches the in-process CLI (its --threads default) and subprocesses too.
os.environ["PARETOREC_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds code that still uses the legacy global state
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    return dataset_folder("movielens-100k", "u.data")


@pytest.fixture(scope="session")
def ml100k(ml100k_dir: Path) -> Dataset:
    from paretorec.data import load_movielens_100k

    return load_movielens_100k(ml100k_dir)


@pytest.fixture(scope="session")
def ml1m_dir() -> Path:
    return dataset_folder("movielens-1m-partial", "ratings_user_movie_pairs.parquet")


@pytest.fixture(scope="session")
def amazon_dir() -> Path:
    return dataset_folder("amazon-scientific-unisrec", "Scientific.text")


def make_tiny(n_users: int = 30, n_items: int = 40, per_user: int = 8, seed: int = 0) -> Dataset:
    """Two user communities with disjoint tastes: items 0..19 vs 20..39 (a known answer)."""
    rng = np.random.default_rng(seed)
    rows = []
    half = n_items // 2
    for user in range(n_users):
        block = np.arange(half) if user % 2 == 0 else np.arange(half, n_items)
        chosen = rng.choice(block, size=per_user, replace=False)
        for position, item in enumerate(chosen):
            rows.append((f"u{user:03d}", f"i{item}", float(rng.integers(1, 6)), float(position)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n_items)],
            "genres": [("A",) if i < half else ("B", "C") for i in range(n_items)],
        }
    )
    return Dataset.from_frames(
        "tiny",
        frame,
        timestamp_col="timestamp",
        label_columns=["rating"],
        items=items,
        label_ranges={"rating": (1, 5)},
    )


@pytest.fixture
def tiny() -> Dataset:
    return make_tiny()
