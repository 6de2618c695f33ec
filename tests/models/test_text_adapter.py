"""Adapting the language model inside the sequential transformer: LoRA and last layers.

Every fit here uses the bundled all-MiniLM-L6-v2 (offline), 24 items and 1-3 epochs, so
a fit takes about a second on one CPU thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from paretorec import ParetorecError
from paretorec.data import Dataset, leave_one_out
from paretorec.models import CandidateModel, SequentialTransformer
from paretorec.models._sequential import _TextTower
from paretorec.text import TextEncoder, default_model_path
from tests._float32 import assert_close_f32

from .test_sequential import cold_codes, topic_dataset

# Deliberately tiny models (seconds, not minutes): the convergence warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore::paretorec.models.ConvergenceWarning")

FAST: dict[str, Any] = {
    "hidden": 16,
    "n_layers": 1,
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.02,
    "text_learning_rate": 1e-3,
    "seed": 0,
}
# item_mode and adapter settings of the two fitted models the tests share
ADAPTED: dict[str, dict[str, Any]] = {
    "lora": {"item_mode": "hybrid", "lora_rank": 4, "lora_alpha": 8.0},
    "last_layers": {"item_mode": "text", "unfreeze_layers": 2},
}


def topic_texts(dataset: Dataset) -> list[str]:
    """Texts that name each item's topic (items i00-i11 vs i12-i23), one blank."""
    texts = []
    for item_id in dataset.item_ids:
        number = int(item_id[1:])
        topic = "space rocket launch, astronauts in orbit" if number < 12 else "home cooking, bread"
        texts.append(f"{topic} #{number}")
    texts[dataset.item_index(["i03"])[0]] = ""  # no text: a zero vector, never encoded
    return texts


@pytest.fixture(scope="module", autouse=True)
def _offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reaches the Hugging Face hub or writes to the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("PARETOREC_CACHE_DIR", str(tmp_path_factory.mktemp("paretorec-cache")))
        yield


@pytest.fixture(scope="module")
def topics() -> tuple[Dataset, list[str]]:
    dataset, _ = topic_dataset()
    return dataset, topic_texts(dataset)


@pytest.fixture(scope="module")
def fitted(topics: tuple[Dataset, list[str]]) -> dict[str, SequentialTransformer]:
    dataset, texts = topics
    return {
        adapter: SequentialTransformer(text_adapter=adapter, **settings, **FAST).fit(
            dataset, item_texts=texts
        )
        for adapter, settings in ADAPTED.items()
    }


@pytest.fixture(scope="module")
def base_weights() -> dict[str, torch.Tensor]:
    """The bundled model's parameters before any training."""
    model = TextEncoder(cache_dir=None, show_progress=False).model
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.fixture(scope="module")
def frozen_vectors(topics: tuple[Dataset, list[str]]) -> np.ndarray:
    return TextEncoder(cache_dir=None, show_progress=False).encode(topics[1])


def tower_of(model: SequentialTransformer) -> _TextTower:
    tower = model._text_tower
    assert tower is not None
    return tower


def test_frozen_leaves_the_language_model_alone(
    topics: tuple[Dataset, list[str]], frozen_vectors: np.ndarray
) -> None:
    dataset, texts = topics
    model = SequentialTransformer("hybrid", **FAST).fit(dataset, item_texts=texts)
    assert model._text_tower is None
    assert not any(key.startswith("text_model.") for key in model._state())
    # the table is the frozen encoder's vectors of the given texts, before and after training
    assert model._text_vectors is not None
    assert_close_f32(model._text_vectors, frozen_vectors)
    network = model._network
    assert network is not None
    buffer = network.text_vectors
    assert isinstance(buffer, torch.Tensor)
    assert_close_f32(buffer.numpy(), frozen_vectors)


def test_lora_trains_only_the_adapters(
    fitted: dict[str, SequentialTransformer], base_weights: dict[str, torch.Tensor]
) -> None:
    tower = tower_of(fitted["lora"])
    trainable = {n: p for n, p in tower.model.named_parameters() if p.requires_grad}
    # query, key and value of each of the 6 layers: an A and a B matrix each
    assert len(trainable) == 6 * 3 * 2
    assert all(".lora_A." in n or ".lora_B." in n for n in trainable)
    # B starts at zero, so a non-zero B means the next-item loss reached the adapters
    lora_b = [p for n, p in trainable.items() if ".lora_B." in n]
    assert all(float(p.detach().abs().max()) > 0 for p in lora_b)
    for name, parameter in tower.model.named_parameters():
        if name not in trainable:
            base = base_weights[name.replace(".base_layer.", ".")]
            assert torch.equal(parameter, base), name


def test_last_layers_trains_only_the_last_layers(
    fitted: dict[str, SequentialTransformer], base_weights: dict[str, torch.Tensor]
) -> None:
    tower = tower_of(fitted["last_layers"])
    trainable = {n for n, p in tower.model.named_parameters() if p.requires_grad}
    last_two = {
        n
        for n in base_weights
        if n.startswith(("0.model.encoder.layer.4.", "0.model.encoder.layer.5."))
    }
    assert trainable == last_two
    for name, parameter in tower.model.named_parameters():
        changed = not torch.equal(parameter, base_weights[name])
        if name in trainable and name.endswith("dense.weight"):
            assert changed, name
        if name not in trainable:
            assert not changed, name


@pytest.mark.parametrize("adapter", list(ADAPTED))
def test_cold_items_get_vectors_from_the_adapted_model(
    adapter: str,
    fitted: dict[str, SequentialTransformer],
    topics: tuple[Dataset, list[str]],
    frozen_vectors: np.ndarray,
) -> None:
    dataset, texts = topics
    model = fitted[adapter]
    cold = np.r_[cold_codes(dataset)]
    assert model.seen[:, cold].sum() == 0  # never seen in training
    adapted = model.encode_texts([texts[i] for i in cold])
    assert model._text_vectors is not None
    assert_close_f32(model._text_vectors[cold], adapted)
    assert np.abs(adapted - frozen_vectors[cold]).max() > 1e-4  # not the frozen model's
    network = model._network
    assert network is not None
    with torch.no_grad():
        projected = network.text_projection(network.text_norm(torch.from_numpy(adapted)))
    # a cold item's vector is its text part only, in hybrid mode too
    assert_close_f32(model.item_vectors()[cold], projected.numpy())
    blank = dataset.item_index(["i03"])[0]
    assert not model._text_vectors[blank].any()


@pytest.mark.parametrize("adapter", list(ADAPTED))
def test_save_load_round_trip(
    adapter: str,
    fitted: dict[str, SequentialTransformer],
    topics: tuple[Dataset, list[str]],
    tmp_path: Path,
) -> None:
    model = fitted[adapter]
    users = np.arange(model.n_users)
    loaded = CandidateModel.load(model.save(tmp_path / adapter))
    assert isinstance(loaded, SequentialTransformer)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    # only the adapted weights are stored; the rest comes from the installed model
    saved = [k for k in loaded._state() if k.startswith("text_model.")]
    assert len(saved) == len(tower_of(model).trainable_state())
    assert loaded._text_tower is None  # scoring needed no language model
    texts = ["a brand-new rocket documentary", "sourdough for beginners"]
    assert_close_f32(loaded.encode_texts(texts), model.encode_texts(texts))


def test_early_stopping_restores_the_adapted_weights_with_their_table(
    topics: tuple[Dataset, list[str]],
) -> None:
    dataset, texts = topics
    split = leave_one_out(dataset)
    assert split.valid is not None
    model = SequentialTransformer(
        "hybrid", text_adapter="lora", patience=1, **{**FAST, "epochs": 3}
    ).fit(split.train, valid=split.valid, item_texts=texts)
    best = max(h["valid_ndcg@10"] for h in model.history_)
    frame = split.valid.interactions
    assert model._ndcg_at_10(frame["user"].to_numpy(), frame["item"].to_numpy()) == pytest.approx(
        best, abs=1e-9
    )
    # the scored table is what the restored weights produce
    assert model._text_vectors is not None
    assert_close_f32(model._text_vectors, tower_of(model).encode_all())


def test_sampled_loss_encodes_at_most_text_grad_items(
    topics: tuple[Dataset, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, texts = topics
    sizes: list[int] = []
    original = _TextTower.forward

    def counting(self: _TextTower, codes: np.ndarray) -> torch.Tensor:
        sizes.append(len(codes))
        return original(self, codes)

    monkeypatch.setattr(_TextTower, "forward", counting)
    model = SequentialTransformer(
        "hybrid", text_adapter="lora", loss="sampled", n_negatives=6, text_grad_items=5, **FAST
    ).fit(dataset, item_texts=texts)
    assert sizes and max(sizes) == 5
    assert all(np.isfinite(h["loss"]) for h in model.history_)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"text_adapter": "prefix"},
            r"text_adapter must be one of 'frozen', 'lora', 'last_layers'; got 'prefix'",
        ),
        (
            {"text_adapter": "lora", "item_mode": "id"},
            r"text_adapter='lora' needs item_mode 'text' or 'hybrid' .*; got item_mode='id'",
        ),
        ({"lora_rank": 0}, r"lora_rank must be a positive int, got 0"),
        ({"lora_rank": -2}, r"lora_rank must be a positive int, got -2"),
        ({"lora_rank": 2.5}, r"lora_rank must be a positive int, got 2.5 \(float\)"),
        ({"lora_alpha": 0}, r"lora_alpha must be a positive number, got 0"),
        ({"unfreeze_layers": 0}, r"unfreeze_layers must be a positive int, got 0"),
        (
            {"text_learning_rate": -1e-4},
            r"text_learning_rate must be a positive number, got -0.0001",
        ),
        ({"text_grad_items": 0}, r"text_grad_items must be a positive int, got 0"),
    ],
)
def test_bad_options(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        SequentialTransformer(**params)


@pytest.mark.parametrize(
    ("params", "fit", "message"),
    [
        ({"text_adapter": "lora"}, {}, r"item_texts is required with text_adapter='lora'"),
        (
            {"text_adapter": "last_layers"},
            {},
            r"item_texts is required with text_adapter='last_layers'",
        ),
        (
            {"text_adapter": "lora"},
            {"item_texts": ["one", "two"]},
            r"item_texts must hold one text per item code \(n_items=24\), got 2",
        ),
        (
            {"text_adapter": "lora"},
            {"item_texts": "one text"},
            r"item_texts must be a sequence of strings, got a single str",
        ),
        (
            {"text_adapter": "lora"},
            {"item_texts": [1] * 24},
            r"item_texts must hold only strings; item_texts\[0\] is 1",
        ),
        (
            {"text_adapter": "lora"},
            {"item_vectors": np.zeros((24, 4)), "item_texts": ["x"] * 24},
            r"item_vectors cannot be used with text_adapter='lora'",
        ),
        (
            {"text_adapter": "last_layers", "unfreeze_layers": 7},
            {"item_texts": ["x"] * 24},
            r"unfreeze_layers must be at most 6 \(the transformer layers of sentence-transformers/all-MiniLM-L6-v2\), got 7",
        ),
    ],
)
def test_bad_fit_arguments(params: dict[str, Any], fit: dict[str, Any], message: str) -> None:
    dataset, _ = topic_dataset()
    with pytest.raises(ParetorecError, match=message):
        SequentialTransformer("hybrid", **params, **FAST).fit(dataset, **fit)


def test_bundled_model_is_the_default() -> None:
    # the adapters load the same offline model the frozen encoder uses
    assert SequentialTransformer().text_encoder == "default"
    assert (default_model_path() / "modules.json").is_file()


def test_a_half_precision_checkpoint_is_trained_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    """Newer transformers load weights in their stored dtype; fp16 + AdamW overflows."""
    original = TextEncoder.model.fget
    assert original is not None

    def half(self: TextEncoder) -> Any:
        return original(self).half()

    monkeypatch.setattr(TextEncoder, "model", property(half))
    model = SequentialTransformer("text", text_adapter="lora", **FAST)
    tower = model._load_text_tower()
    assert {p.dtype for p in tower.parameters()} == {torch.float32}
