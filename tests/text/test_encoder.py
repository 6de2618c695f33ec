"""TextEncoder with the bundled default model: shape, norms, meaning, errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset
from paretorec.text import TextEncoder, encode_items, item_texts, quantization_target
from tests._float32 import assert_close_f32


def test_default_model_is_offline_384d_and_unit_norm(encoder: TextEncoder) -> None:
    vectors = encoder.encode(["Star Wars (1977) | Action, Sci-Fi", "a quiet romance"])
    assert encoder.dimension == 384
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embeddings_carry_meaning(encoder: TextEncoder) -> None:
    query, star_wars, romance = encoder.encode(
        [
            "a sci-fi space movie",
            "Star Wars (1977) | Action, Sci-Fi",
            "Sleepless in Seattle (1993) | Comedy, Romance",
        ]
    )
    assert query @ star_wars > query @ romance + 0.1


def test_blank_texts_are_zero_vectors_and_never_reach_the_model(
    counting: Callable[[TextEncoder], list[list[str]]],
) -> None:
    target = TextEncoder(cache_dir=None)
    calls = counting(target)
    vectors = target.encode(["", "Heat (1995) | Action", "   ", "Heat (1995) | Action"])
    assert calls == [["Heat (1995) | Action"]]  # blanks skipped, duplicates encoded once
    assert not vectors[0].any() and not vectors[2].any()
    np.testing.assert_array_equal(vectors[1], vectors[3])
    assert target.last_stats is not None and target.last_stats.blank == 2
    assert target.last_stats.unique == 1 and target.last_stats.encoded == 1


def test_all_blank_input_needs_no_forward_pass(
    counting: Callable[[TextEncoder], list[list[str]]],
) -> None:
    target = TextEncoder(cache_dir=None)
    calls = counting(target)
    assert target.encode(["", " "]).shape == (2, 384)
    assert target.encode([]).shape == (0, 384)
    assert calls == []


def test_unnormalised_vectors(encoder: TextEncoder) -> None:
    raw = TextEncoder(cache_dir=None, normalize=False)
    raw._model = encoder.model  # same weights, no second load
    text = ["The Usual Suspects (1995) | Crime, Thriller"]
    unit, plain = encoder.encode(text)[0], raw.encode(text)[0]
    assert_close_f32(plain / np.linalg.norm(plain), unit)


def test_encode_items_follows_the_empty_text_policy(encoder: TextEncoder) -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "text": ["", "Gorilla Glue, 8 ounce"]})
    frame = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"]})
    dataset = Dataset.from_frames("shop", frame, items=items)
    zero = encode_items(dataset, encoder)
    assert zero.shape == (2, 384) and not zero[0].any() and zero[1].any()
    placeholder = encode_items(dataset, encoder, empty_text="placeholder")
    assert_close_f32(placeholder[0], encoder.encode(["a"])[0])
    assert item_texts(dataset, empty_text="placeholder") == ["a", "Gorilla Glue, 8 ounce"]


def test_repr_and_identity_are_readable() -> None:
    encoder = TextEncoder(batch_size=32, threads=2, cache_dir=None)
    assert repr(encoder) == (
        "TextEncoder('sentence-transformers/all-MiniLM-L6-v2', backend='torch', batch_size=32, "
        "normalize=True, threads=2, cache_dir=None)"
    )
    assert encoder.identity.startswith("sentence-transformers/all-MiniLM-L6-v2 [sha256:")
    assert encoder.identity.endswith("| torch fp32 | normalize | max_seq_length=256")
    assert not encoder.is_loaded  # describing an encoder never loads the model


def test_quantization_target_is_a_known_instruction_set() -> None:
    assert quantization_target() in ("avx512_vnni", "avx512", "avx2", "arm64")


def test_unknown_model_fails_fast_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    started = time.perf_counter()
    with pytest.raises(
        ParetorecError,
        match=r"model 'paretorec-tests/no-such-model' is not a local folder and is not in the "
        r"Hugging Face cache, and HF_HUB_OFFLINE is set",
    ):
        TextEncoder("paretorec-tests/no-such-model")
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "tensorflow"}, r"backend must be one of 'torch', 'onnx'; got 'tensorflow'"),
        ({"quantize": "int4", "backend": "onnx"}, r"quantize must be one of 'int8'; got 'int4'"),
        ({"quantize": "int8"}, r"quantize='int8' needs backend='onnx'; got backend='torch'"),
        ({"batch_size": 0}, r"batch_size must be a positive int, got 0"),
        ({"batch_size": 2.5}, r"batch_size must be a positive int, got 2.5 \(float\)"),
        ({"max_seq_length": -1}, r"max_seq_length must be a positive int, got -1"),
        ({"threads": 0}, r"threads must be a positive int, got 0"),
        ({"normalize": "yes"}, r"normalize must be True or False, got 'yes'"),
        ({"device": 0}, r"device must be a str such as 'cpu' or None, got 0"),
        (
            {"backend": "onnx", "device": "cuda"},
            r"device must be None or 'cpu' with backend='onnx'",
        ),
        ({"cache_dir": 3}, r"cache_dir must be a folder path or None, got 3"),
        (
            {"model": ""},
            r"model must be 'default', a local folder or a Hugging Face model id; got ''",
        ),
        (
            {"model": "bad id!"},
            r"model 'bad id!' is neither a local folder nor a valid Hugging Face",
        ),
        ({"model": "./no/such/folder"}, r"model './no/such/folder': no such folder"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        TextEncoder(**kwargs)


def test_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ParetorecError, match=r"is not a sentence-transformers model folder"):
        TextEncoder(tmp_path)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("one text", r"texts must be a sequence of strings, got a single str; wrap it in a list"),
        (["ok", 3], r"texts\[1\] is 3 \(int\)"),
        ([None], r"texts\[0\] is None \(NoneType\)"),
        (5, r"texts must be a sequence of strings, got int"),
    ],
)
def test_bad_texts(encoder: TextEncoder, texts: Any, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        encoder.encode(texts)


def test_local_model_folder_works(encoder: TextEncoder) -> None:
    path = encoder.model_path
    assert path is not None
    local = TextEncoder(str(path), cache_dir=None)
    assert local.config["fingerprint"] == encoder.config["fingerprint"]


def test_encode_items_fields_concatenates_one_unit_block_per_field(encoder: TextEncoder) -> None:
    items = pd.DataFrame(
        {"item_id": ["a", "b"], "text": ["Rye Malt (5 lb). . Briess.", "Gorilla Glue. . ."]}
    )
    frame = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"]})
    dataset = Dataset.from_frames("amazon-scientific", frame, items=items)
    vectors = encode_items(dataset, encoder, fields=True)
    assert vectors.shape == (2, 3 * 384) and vectors.dtype == np.float32
    blocks = vectors.reshape(2, 3, 384)
    assert_close_f32(blocks[0, 0], encoder.encode(["Rye Malt (5 lb)"])[0])
    assert_close_f32(blocks[0, 2], encoder.encode(["Briess"])[0])
    norms = np.linalg.norm(blocks, axis=2)
    np.testing.assert_allclose(norms[[0, 0, 1], [0, 2, 0]], 1.0, atol=1e-5)
    assert not blocks[0, 1].any() and not blocks[1, 1:].any()  # empty fields are zero blocks
    custom = encode_items(dataset, encoder, fields={"all": "{text}"})
    assert_close_f32(custom, encode_items(dataset, encoder))
    with pytest.raises(ParetorecError, match=r"pass template .* or fields .*, not both"):
        encode_items(dataset, encoder, "{text}", fields=True)
    with pytest.raises(ParetorecError, match=r"fields must be False, True .*got 'title'"):
        encode_items(dataset, encoder, fields="title")  # type: ignore[arg-type]
