"""On-disk embedding cache: vectors keyed by encoder identity and the sha256 of each text.

Layout (``cache_dir`` defaults to ``$PARETOREC_CACHE_DIR/embeddings``, else
``~/.cache/paretorec/embeddings``)::

    <cache_dir>/
      <identity key>/                  16 hex chars: sha256 of the encoder identity JSON
        identity.json                  the identity (model fingerprint, backend,
                                       quantisation, normalisation, max_seq_length) + dim
        <time>-<random>.safetensors    shards: "keys" uint8 (n, 32) sha256 digests of the
                                       texts, "vectors" float32 (n, dim); the header
                                       metadata holds a sha256 of both arrays

Each encode call that computes new vectors appends one shard (written to a temporary
file, then renamed: readers never see half a shard, and concurrent writers never
overwrite each other). Many small shards are merged into one once they pass
:data:`MAX_SHARDS`.

Corrupt shards (unreadable, wrong shapes, checksum mismatch) are not fatal: a cache only
saves time, so the shard is deleted with a :class:`~paretorec.ParetorecWarning` and its
texts are encoded again. Texts themselves are never stored, only their digests.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import ParetorecError, ParetorecWarning
from ..data._download import CACHE_ENV, default_cache_dir

CACHE_FORMAT = 1
MAX_SHARDS = 32
IDENTITY_FILE = "identity.json"
_DIGEST_BYTES = 32


def cache_root() -> Path:
    """paretorec's cache folder: ``$PARETOREC_CACHE_DIR``, else ``~/.cache/paretorec``.

    ``XDG_CACHE_HOME`` is honoured as by the dataset cache (which lives in ``datasets/``).
    """
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return default_cache_dir().parent


def default_embedding_cache_dir() -> Path:
    """Where embeddings are cached unless told otherwise (``<cache root>/embeddings``)."""
    return cache_root() / "embeddings"


def text_digest(text: str) -> bytes:
    """sha256 of the UTF-8 text: the per-text cache key."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def identity_key(identity: Mapping[str, Any]) -> str:
    """Short stable key of an identity mapping (its canonical JSON, hashed)."""
    canonical = json.dumps(dict(identity), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class EmbeddingCache:
    """The cached vectors of one encoder identity (one folder of shards).

    Args:
        root: the cache folder holding one sub-folder per identity.
        identity: JSON-able mapping that determines the vectors (see :class:`TextEncoder`).
    """

    def __init__(self, root: str | Path, identity: Mapping[str, Any]) -> None:
        self.identity = dict(identity)
        self.key = identity_key(self.identity)
        self.directory = Path(root).expanduser() / self.key
        self._rows: dict[bytes, tuple[int, int]] = {}  # digest -> (block, row)
        self._blocks: list[np.ndarray] = []
        self._loaded: dict[str, int] = {}  # shard file name -> block
        self._dimension: int | None = None

    def __repr__(self) -> str:
        return f"EmbeddingCache(directory={str(self.directory)!r}, vectors={len(self._rows)})"

    def __len__(self) -> int:
        self.refresh()
        return len(self._rows)

    @property
    def dimension(self) -> int | None:
        """Vector size recorded in the cache, or None while it holds nothing."""
        if self._dimension is None:
            self._dimension = self._read_identity_dimension()
        return self._dimension

    # ------------------------------------------------------------------ reading
    def refresh(self) -> None:
        """Load shards written since the last look (by this or another process)."""
        if not self.directory.is_dir():
            return
        for file in sorted(self.directory.glob("*.safetensors")):
            if file.name not in self._loaded:
                self._load_shard(file)

    def get(self, digests: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Which digests are cached, and their vectors (in the order of the found ones)."""
        self.refresh()
        found = np.fromiter((d in self._rows for d in digests), dtype=bool, count=len(digests))
        if not found.any():
            return found, np.zeros((0, self.dimension or 0), dtype=np.float32)
        vectors = np.stack([self._vector(d) for d, hit in zip(digests, found, strict=True) if hit])
        return found, vectors

    def _vector(self, digest: bytes) -> np.ndarray:
        block, row = self._rows[digest]
        return self._blocks[block][row]

    # ------------------------------------------------------------------ writing
    def put(self, digests: Sequence[bytes], vectors: np.ndarray) -> None:
        """Add vectors (one row per digest); digests already cached are skipped."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(digests):
            raise ParetorecError(
                f"vectors must have shape ({len(digests)}, dim), got {vectors.shape}"
            )
        self.refresh()
        fresh: dict[bytes, int] = {}
        for row, digest in enumerate(digests):
            if digest not in self._rows and digest not in fresh:
                fresh[digest] = row
        if not fresh:
            return
        self._ensure_identity(vectors.shape[1])
        keys = np.frombuffer(b"".join(fresh), dtype=np.uint8).reshape(len(fresh), _DIGEST_BYTES)
        file = self._write_shard(keys, vectors[list(fresh.values())])
        self._load_shard(file)
        if len(self._loaded) > MAX_SHARDS:
            self.compact()

    def compact(self) -> None:
        """Merge every shard into one (fewer files to open on the next run)."""
        self.refresh()
        if len(self._loaded) <= 1:
            return
        digests = list(self._rows)
        keys = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, _DIGEST_BYTES)
        vectors = np.stack([self._vector(d) for d in digests])
        merged = self._write_shard(keys, vectors)
        for name in list(self._loaded):
            (self.directory / name).unlink(missing_ok=True)
        self._reset()
        self._load_shard(merged)

    def clear(self) -> None:
        """Delete every cached vector of this identity."""
        if self.directory.is_dir():
            for file in self.directory.glob("*.safetensors"):
                file.unlink(missing_ok=True)
        self._reset()

    # ------------------------------------------------------------------ internals
    def _reset(self) -> None:
        self._rows.clear()
        self._blocks.clear()
        self._loaded.clear()

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        from safetensors.numpy import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.safetensors"
        target = self.directory / name
        staging = self.directory / f".{name}.tmp"
        metadata = {
            "format": str(CACHE_FORMAT),
            "sha256": _checksum(keys, vectors),
        }
        try:
            save_file({"keys": keys, "vectors": vectors}, str(staging), metadata=metadata)
            os.replace(staging, target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        return target

    def _load_shard(self, file: Path) -> None:
        try:
            keys, vectors = _read_shard(file, self.dimension)
        except FileNotFoundError:  # merged away by another process meanwhile
            return
        except _CorruptShard as exc:
            warnings.warn(
                f"embedding cache file {file} is corrupt ({exc}); it was removed and its "
                "texts will be encoded again",
                ParetorecWarning,
                stacklevel=4,
            )
            file.unlink(missing_ok=True)
            return
        block = len(self._blocks)
        self._blocks.append(vectors)
        self._loaded[file.name] = block
        for row, digest in enumerate(keys):
            self._rows.setdefault(digest.tobytes(), (block, row))
        if self._dimension is None:
            self._dimension = int(vectors.shape[1])

    def _ensure_identity(self, dimension: int) -> None:
        recorded = self.dimension
        if recorded is not None and recorded != dimension:
            raise ParetorecError(
                f"the embedding cache {self.directory} holds {recorded}-dimensional vectors, "
                f"got {dimension}; delete that folder if the model changed in place"
            )
        path = self.directory / IDENTITY_FILE
        if recorded is not None and path.is_file():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = {**self.identity, "dimension": dimension, "cache_format": CACHE_FORMAT}
        staging = path.with_name(f".{IDENTITY_FILE}.{uuid.uuid4().hex[:8]}.tmp")
        staging.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        os.replace(staging, path)
        self._dimension = dimension

    def _read_identity_dimension(self) -> int | None:
        path = self.directory / IDENTITY_FILE
        if not path.is_file():
            return None
        try:
            value = json.loads(path.read_text()).get("dimension")
        except (OSError, ValueError, AttributeError):
            return None  # rewritten on the next put; shards carry their own shapes
        return int(value) if isinstance(value, int) and value > 0 else None


class _CorruptShard(Exception):
    pass


def _checksum(keys: np.ndarray, vectors: np.ndarray) -> str:
    digest = hashlib.sha256(keys.tobytes())
    digest.update(vectors.tobytes())
    return digest.hexdigest()


def _read_shard(file: Path, dimension: int | None) -> tuple[np.ndarray, np.ndarray]:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            names = set(handle.keys())
            if names != {"keys", "vectors"}:
                raise _CorruptShard(f"holds tensors {sorted(names)}, expected keys and vectors")
            keys = handle.get_tensor("keys")
            vectors = handle.get_tensor("vectors")
    except FileNotFoundError:
        raise
    except _CorruptShard:
        raise
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise _CorruptShard(f"unreadable: {exc}") from exc
    if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != _DIGEST_BYTES:
        raise _CorruptShard(f"keys have shape {keys.shape} and dtype {keys.dtype}")
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != keys.shape[0]:
        raise _CorruptShard(f"vectors have shape {vectors.shape} and dtype {vectors.dtype}")
    if dimension is not None and vectors.shape[1] != dimension:
        raise _CorruptShard(f"vectors have dimension {vectors.shape[1]}, expected {dimension}")
    if metadata.get("sha256") != _checksum(keys, vectors):
        raise _CorruptShard("checksum mismatch")
    return keys, vectors
