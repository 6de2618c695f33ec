"""Language-model text layer: item-text templates, sentence encoders, embedding cache.

::

    from paretorec.text import TextEncoder, item_texts

    texts = item_texts(dataset)              # "Toy Story (1995) | Animation, Children's, Comedy"
    vectors = TextEncoder().encode(texts)    # float32 (n_items, 384), unit rows, cached
    fielded = encode_items(dataset, fields=True)  # title, genres, ... encoded apart: (n, 384 * k)

``TextEncoder(backend="onnx", quantize="int8")`` runs the same model through ONNX Runtime
with dynamic int8 quantisation (``pip install 'paretorec[onnx]'``).
"""

from ._cache import (
    EmbeddingCache,
    cache_root,
    default_embedding_cache_dir,
    text_digest,
)
from ._encoder import (
    BACKENDS,
    DEFAULT_CACHE,
    DEFAULT_MODEL,
    QUANTIZATIONS,
    EncodeStats,
    TextEncoder,
    default_model_path,
    encode_items,
    quantization_target,
)
from ._templates import (
    EMPTY_TEXT_POLICIES,
    amazon_fields,
    default_fields,
    default_texts,
    format_texts,
    item_fields,
    item_texts,
    movielens_text,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_CACHE",
    "DEFAULT_MODEL",
    "EMPTY_TEXT_POLICIES",
    "QUANTIZATIONS",
    "EmbeddingCache",
    "EncodeStats",
    "TextEncoder",
    "amazon_fields",
    "cache_root",
    "default_embedding_cache_dir",
    "default_fields",
    "default_model_path",
    "default_texts",
    "encode_items",
    "format_texts",
    "item_fields",
    "item_texts",
    "movielens_text",
    "quantization_target",
    "text_digest",
]
