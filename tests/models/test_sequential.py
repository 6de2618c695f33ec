"""The sequential transformer: item modes, cold items through text, history, early stopping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset, leave_one_out
from paretorec.models import CandidateModel, SequentialTransformer
from paretorec.models._sequential import user_sequences
from tests._float32 import assert_close_f32

# Deliberately tiny models (seconds, not minutes): the convergence warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore::paretorec.models.ConvergenceWarning")

FAST = {"hidden": 16, "n_layers": 1, "epochs": 15, "batch_size": 16, "learning_rate": 0.02}


def topic_dataset(
    n_users: int = 40, per_topic: int = 12, cold: int = 2, item_text: bool = False
) -> tuple[Dataset, np.ndarray]:
    """Two topics of items; users walk inside one topic in a fixed cyclic order.

    The last ``cold`` items of each topic never occur in the interactions; their text
    vectors sit in their topic's direction, so only a text-aware model can place them.
    """
    rng = np.random.default_rng(0)
    n_items = 2 * per_topic
    rows = []
    warm = per_topic - cold
    for user in range(n_users):
        topic = user % 2
        start = int(rng.integers(warm))
        for step in range(8):
            item = topic * per_topic + (start + step) % warm
            rows.append((f"u{user:02d}", f"i{item:02d}", float(step)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": [f"i{i:02d}" for i in range(n_items)]})
    if item_text:  # a title and the topic's name, for models that read item text
        items["title"] = [f"item number {i}" for i in range(n_items)]
        items["kind"] = ["garden tools"] * per_topic + ["kitchen knives"] * per_topic
    dataset = Dataset.from_frames(
        "topics", frame, timestamp_col="timestamp", items=items, duplicates="keep"
    )
    vectors = np.zeros((n_items, 8), dtype=np.float32)
    vectors[:per_topic, 0] = 1.0
    vectors[per_topic:, 1] = 1.0
    vectors += rng.normal(scale=0.05, size=vectors.shape).astype(np.float32)
    return dataset, vectors


def cold_codes(
    dataset: Dataset, per_topic: int = 12, cold: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    first = np.arange(per_topic - cold, per_topic)
    return dataset.item_index([f"i{i:02d}" for i in first]), dataset.item_index(
        [f"i{i:02d}" for i in first + per_topic]
    )


@pytest.mark.parametrize("mode", ["text", "hybrid"])
def test_text_modes_place_never_seen_items_by_their_text(mode: str) -> None:
    dataset, vectors = topic_dataset()
    model = SequentialTransformer(mode, seed=0, **FAST).fit(dataset, item_vectors=vectors)
    cold_a, cold_b = cold_codes(dataset)
    users = np.arange(dataset.n_users)
    topic = np.array([int(uid[1:]) % 2 for uid in dataset.user_ids])
    scores = model.score(users)
    a_pref = scores[:, cold_a].mean(axis=1) > scores[:, cold_b].mean(axis=1)
    assert (a_pref == (topic == 0)).mean() >= 0.9


def test_id_mode_learns_the_walk_but_cannot_place_cold_items() -> None:
    dataset, _ = topic_dataset()
    model = SequentialTransformer("id", seed=0, **FAST).fit(dataset)
    sequences = user_sequences(dataset)
    top = model.recommend(np.arange(dataset.n_users), 1, exclude_seen=False)[:, 0]
    # the next item of the cyclic walk is predictable from the last one
    last = np.array([s[-1] for s in sequences])
    item_ids = np.array(dataset.item_ids)
    nxt = []
    for item in last:
        number = int(item_ids[item][1:])
        topic = number // 12
        nxt.append(dataset.item_index([f"i{topic * 12 + (number % 12 + 1) % 10:02d}"])[0])
    assert (top == np.array(nxt)).mean() >= 0.6


def test_hybrid_cold_items_have_no_id_part() -> None:
    dataset, vectors = topic_dataset()
    model = SequentialTransformer("hybrid", seed=0, **FAST).fit(dataset, item_vectors=vectors)
    text_only = SequentialTransformer("text", seed=0, **FAST)
    cold_a, cold_b = cold_codes(dataset)
    table = model.item_vectors()
    network = model._network
    assert network is not None
    projected = network.text_projection(network.text_norm(network.text_vectors)).detach().numpy()
    cold = np.r_[cold_a, cold_b]
    assert_close_f32(table[cold], projected[cold])
    warm = np.setdiff1d(np.arange(dataset.n_items), cold)
    assert not np.allclose(table[warm], projected[warm])
    assert text_only.item_mode == "text"


def test_early_stopping_restores_the_best_epoch() -> None:
    dataset, vectors = topic_dataset()
    split = leave_one_out(dataset)
    assert split.valid is not None
    model = SequentialTransformer("hybrid", seed=0, patience=3, **{**FAST, "epochs": 40})
    model.fit(split.train, valid=split.valid, item_vectors=vectors)
    scores = [h["valid_ndcg@10"] for h in model.history_]
    assert len(scores) <= 40
    best = max(scores)
    assert model._ndcg_at_10(
        split.valid.interactions["user"].to_numpy(), split.valid.interactions["item"].to_numpy()
    ) == pytest.approx(best, abs=1e-9)


def test_set_history_scores_from_the_new_sequences() -> None:
    dataset, _ = topic_dataset()
    split = leave_one_out(dataset, validation=False)
    model = SequentialTransformer("id", seed=0, **FAST).fit(split.train)
    before = model.score([0, 1])
    model.set_history(dataset)
    after = model.score([0, 1])
    assert not np.allclose(before, after)
    assert model.seen.nnz == dataset.to_csr().nnz
    other, _ = topic_dataset(n_users=10)
    with pytest.raises(ParetorecError, match=r"dataset must share the model's id maps \(40 users"):
        model.set_history(other)


def test_save_load_keeps_text_vectors_and_history(tmp_path: Path) -> None:
    dataset, vectors = topic_dataset()
    model = SequentialTransformer("hybrid", seed=0, **FAST).fit(dataset, item_vectors=vectors)
    loaded = CandidateModel.load(model.save(tmp_path / "seq"))
    users = np.arange(dataset.n_users)
    assert_close_f32(loaded.score(users), model.score(users))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"item_mode": "image"}, r"item_mode must be one of 'id', 'text', 'hybrid'; got 'image'"),
        ({"hidden": 10, "n_heads": 3}, r"hidden \(10\) must be divisible by n_heads \(3\)"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"temperature": 0}, r"temperature must be a positive number or None, got 0"),
        ({"loss": "bpr"}, r"loss must be one of 'full', 'sampled'; got 'bpr'"),
        ({"learning_rate": -1}, r"learning_rate must be a positive number, got -1"),
        ({"epochs": 0}, r"epochs must be a positive int, got 0"),
    ],
)
def test_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        SequentialTransformer(**params)  # type: ignore[arg-type]


def test_bad_item_vectors_and_valid() -> None:
    dataset, vectors = topic_dataset()
    with pytest.raises(
        ParetorecError, match=r"item_vectors must have shape \(n_items=24, dim\), got \(3, 8\)"
    ):
        SequentialTransformer("text", **FAST).fit(dataset, item_vectors=vectors[:3])
    bad = vectors.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ParetorecError, match=r"item_vectors contains NaN"):
        SequentialTransformer("text", **FAST).fit(dataset, item_vectors=bad)
    with pytest.raises(ParetorecError, match=r"valid must be a paretorec Dataset, got dict"):
        SequentialTransformer("id", **FAST).fit(dataset, valid={})  # type: ignore[arg-type]


def test_sampled_softmax_trains_too() -> None:
    dataset, vectors = topic_dataset()
    model = SequentialTransformer("hybrid", loss="sampled", n_negatives=8, seed=0, **FAST).fit(
        dataset, item_vectors=vectors
    )
    losses = [h["loss"] for h in model.history_]
    assert losses[-1] < losses[0]


def test_text_fields_encode_each_field_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PARETOREC_CACHE_DIR", str(tmp_path / "cache"))
    described, _ = topic_dataset(item_text=True)
    n = described.n_items
    fields = {"title": "{title}", "kind": "{kind}"}
    model = SequentialTransformer("text", seed=0, text_fields=fields, **{**FAST, "epochs": 2})
    model.fit(described)
    from paretorec.text import TextEncoder, encode_items

    expected = encode_items(described, TextEncoder(show_progress=False), fields=fields)
    assert model._text_vectors is not None and model._text_vectors.shape == (n, 2 * 384)
    assert_close_f32(model._text_vectors, expected)
    loaded = CandidateModel.load(model.save(tmp_path / "seq"))
    assert loaded.get_params()["text_fields"] == fields
    with pytest.raises(ParetorecError, match=r"item_texts .* cannot be used with text_fields"):
        model.fit(described, item_texts=["x"] * n)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"text_fields": "title"}, r"text_fields must be False, True .*got 'title'"),
        ({"text_fields": {}}, r"text_fields must be False, True .*got \{\}"),
        (
            {"text_fields": True, "text_template": "{title}"},
            r"text_template .* and text_fields .* exclude each other",
        ),
        (
            {"text_fields": True, "text_adapter": "lora"},
            r"text_fields=True needs text_adapter='frozen'",
        ),
    ],
)
def test_bad_text_fields(params: dict[str, object], message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        SequentialTransformer(**params)  # type: ignore[arg-type]
