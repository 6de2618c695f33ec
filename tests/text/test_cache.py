"""Embedding cache: hits, partial hits, identity keys, corruption, layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from paretorec import ParetorecError, ParetorecWarning
from paretorec.text import (
    EmbeddingCache,
    TextEncoder,
    default_embedding_cache_dir,
    text_digest,
)
from paretorec.text import _cache as cache_module
from paretorec.text._encoder import folder_fingerprint
from tests._float32 import assert_close_f32

TITLES = [
    "Toy Story (1995) | Animation, Children's, Comedy",
    "GoldenEye (1995) | Action, Adventure, Thriller",
    "Four Rooms (1995) | Thriller",
    "Get Shorty (1995) | Action, Comedy, Drama",
]
Counting = Callable[[TextEncoder], list[list[str]]]


def test_second_run_encodes_nothing(tmp_path: Path, counting: Counting) -> None:
    first = TextEncoder(cache_dir=tmp_path)
    first_calls = counting(first)
    vectors = first.encode(TITLES)
    assert first_calls == [TITLES]

    second = TextEncoder(cache_dir=tmp_path)  # a new process would see the same files
    second_calls = counting(second)
    again = second.encode(TITLES)
    assert second_calls == []
    np.testing.assert_array_equal(again, vectors)
    assert second.last_stats is not None and second.last_stats.cached == len(TITLES)


def test_partial_hits_encode_only_new_texts(tmp_path: Path, counting: Counting) -> None:
    TextEncoder(cache_dir=tmp_path).encode(TITLES[:2])  # loads its own model once
    encoder = TextEncoder(cache_dir=tmp_path)
    calls = counting(encoder)
    vectors = encoder.encode(TITLES)
    assert calls == [TITLES[2:]]
    fresh = TextEncoder(cache_dir=None)
    counting(fresh)
    assert_close_f32(vectors, fresh.encode(TITLES))


def test_cache_disabled_encodes_every_time(tmp_path: Path, counting: Counting) -> None:
    encoder = TextEncoder(cache_dir=None)
    calls = counting(encoder)
    encoder.encode(TITLES[:1])
    encoder.encode(TITLES[:1])
    assert len(calls) == 2 and encoder.cache is None


def test_default_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARETOREC_CACHE_DIR", str(tmp_path / "c"))
    assert default_embedding_cache_dir() == tmp_path / "c" / "embeddings"
    assert TextEncoder().cache_dir == tmp_path / "c" / "embeddings"
    monkeypatch.delenv("PARETOREC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_embedding_cache_dir() == tmp_path / "xdg" / "paretorec" / "embeddings"


def test_layout_identity_file_and_no_temporary_files(tmp_path: Path, counting: Counting) -> None:
    encoder = TextEncoder(cache_dir=tmp_path)
    counting(encoder)
    encoder.encode(TITLES)
    folders = [p for p in tmp_path.iterdir()]
    assert len(folders) == 1 and folders[0].name == encoder.cache.key
    identity = json.loads((folders[0] / "identity.json").read_text())
    assert identity["dimension"] == 384 and identity["backend"] == "torch"
    assert identity["fingerprint"] == encoder.config["fingerprint"]
    shards = list(folders[0].glob("*.safetensors"))
    assert len(shards) == 1
    assert not list(tmp_path.rglob("*.tmp"))


# --------------------------------------------------------------------------- identity
def fake_model(folder: Path, weights: bytes = b"w") -> Path:
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]")
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_identity_changes_with_model_backend_and_settings(tmp_path: Path) -> None:
    base = TextEncoder(cache_dir=tmp_path)
    variants = [
        TextEncoder(fake_model(tmp_path / "other"), cache_dir=tmp_path),
        TextEncoder(backend="onnx", cache_dir=tmp_path),
        TextEncoder(backend="onnx", quantize="int8", cache_dir=tmp_path),
        TextEncoder(normalize=False, cache_dir=tmp_path),
        TextEncoder(max_seq_length=64, cache_dir=tmp_path),
    ]
    keys = {base.cache.key} | {v.cache.key for v in variants}
    assert len(keys) == 1 + len(variants)
    # Settings that do not change the vectors do not change the key.
    same = TextEncoder(batch_size=7, threads=1, show_progress=False, cache_dir=tmp_path)
    assert same.cache.key == base.cache.key
    assert TextEncoder(max_seq_length=256, cache_dir=tmp_path).config == base.config
    assert not any(e.is_loaded for e in (base, *variants, same))


def test_fingerprint_follows_the_weights_not_the_exports(tmp_path: Path) -> None:
    folder = fake_model(tmp_path / "m")
    before = folder_fingerprint(folder)
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"export")
    (folder / "README.md").write_text("notes")
    assert folder_fingerprint(folder) == before
    (folder / "model.safetensors").write_bytes(b"retrained")
    assert folder_fingerprint(folder) != before
    assert TextEncoder(folder, cache_dir=None).config["max_seq_length"] == 128


# --------------------------------------------------------------------------- store
def random_rows(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_store_round_trip_and_duplicates(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, {"model": "m"})
    digests = [text_digest(t) for t in ("a", "b", "c")]
    vectors = random_rows(3)
    cache.put(digests[:2], vectors[:2])
    cache.put(digests, vectors)  # "a" and "b" already there: one new row stored
    reopened = EmbeddingCache(tmp_path, {"model": "m"})
    found, hits = reopened.get([digests[2], text_digest("zzz"), digests[0]])
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(hits, vectors[[2, 0]])
    assert len(reopened) == 3 and reopened.dimension == 8
    assert "vectors=3" in repr(reopened)


def test_many_shards_are_merged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MAX_SHARDS", 3)
    cache = EmbeddingCache(tmp_path, {"model": "m"})
    vectors = random_rows(5)
    for i in range(5):
        cache.put([text_digest(str(i))], vectors[i : i + 1])
    assert len(list(cache.directory.glob("*.safetensors"))) <= 3
    found, hits = EmbeddingCache(tmp_path, {"model": "m"}).get(
        [text_digest(str(i)) for i in range(5)]
    )
    assert found.all()
    np.testing.assert_array_equal(hits, vectors)


def test_clear(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, {"model": "m"})
    cache.put([text_digest("a")], random_rows(1))
    cache.clear()
    assert len(cache) == 0 and not list(cache.directory.glob("*.safetensors"))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b"not a safetensors file"), "unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:-4]), "unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:-4] + b"\x00\x00\x80\x7f"), "checksum mismatch"),
    ],
)
def test_corrupt_shard_is_rebuilt_with_a_warning(
    tmp_path: Path, damage: Callable[[Path], object], reason: str
) -> None:
    cache = EmbeddingCache(tmp_path, {"model": "m"})
    digests = [text_digest("a"), text_digest("b")]
    cache.put(digests, random_rows(2))
    (shard,) = cache.directory.glob("*.safetensors")
    damage(shard)
    reopened = EmbeddingCache(tmp_path, {"model": "m"})
    with pytest.warns(ParetorecWarning, match=rf"embedding cache file .* is corrupt \({reason}"):
        found, _ = reopened.get(digests)
    assert not found.any() and not shard.exists()
    reopened.put(digests, random_rows(2, seed=1))  # rebuilt
    assert EmbeddingCache(tmp_path, {"model": "m"}).get(digests)[0].all()


def test_corrupt_shard_through_the_encoder(tmp_path: Path, counting: Counting) -> None:
    first = TextEncoder(cache_dir=tmp_path)
    counting(first)
    first.encode(TITLES)
    (shard,) = tmp_path.rglob("*.safetensors")
    shard.write_bytes(b"garbage")
    second = TextEncoder(cache_dir=tmp_path)
    calls = counting(second)
    with pytest.warns(ParetorecWarning, match="is corrupt"):
        second.encode(TITLES)
    assert calls == [TITLES]


def test_shape_errors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, {"model": "m"})
    with pytest.raises(ParetorecError, match=r"vectors must have shape \(2, dim\), got \(3, 8\)"):
        cache.put([text_digest("a"), text_digest("b")], random_rows(3))
    cache.put([text_digest("a")], random_rows(1))
    with pytest.raises(ParetorecError, match="holds 8-dimensional vectors, got 4"):
        cache.put([text_digest("b")], random_rows(1, dim=4))
