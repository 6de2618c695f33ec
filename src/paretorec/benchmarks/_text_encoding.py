"""Item-text encoding speed: PyTorch fp32 vs ONNX Runtime dynamic int8, same model.

Both sides encode the same item texts (MovieLens-100k and Amazon-Scientific defaults of
:func:`paretorec.text.item_texts`) through :class:`paretorec.text.TextEncoder` with the
embedding cache off: same batch size, same ``max_seq_length``, tokenisation and pooling
included, the same length-sorted batching (sentence-transformers sorts each call's texts
by length), the same number of threads (``torch.set_num_threads`` and ONNX Runtime
intra-op threads). Repeats of the two back ends are interleaved so that a change in
machine load hits both alike; the statistic is the median over repeats after a warm-up
run (the ONNX export and quantisation happen before any timing).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import load_dataset
from ..text import TextEncoder, item_texts
from ._harness import make_result, print_rows, write_result

CORPORA = ("movielens-100k", "amazon-scientific")
BACKENDS: dict[str, dict[str, Any]] = {
    "torch fp32": {"backend": "torch"},
    "onnx int8": {"backend": "onnx", "quantize": "int8"},
}
COLUMNS = ("texts", "mean_tokens", "seconds", "texts_per_second", "speedup", "mean_cosine")
TARGETS = {"int8_speedup": 2.5, "int8_mean_cosine": 0.99}
QUICK_TEXTS = 96  # per corpus in quick mode


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    repeats: int = 5,
    threads: int = 2,
    batch_size: int = 64,
    max_seq_length: int = 256,
) -> dict[str, Any]:
    """Time both back ends on both corpora and write ``<output_dir>/text_encoding.json``.

    ``quick`` encodes an evenly spaced subset of each corpus once (a smoke run, < 60 s
    once the ONNX export exists); its figures are noisy and not comparable.
    """
    torch.set_num_threads(threads)
    if quick:
        repeats = 1
    corpora = {name: _corpus(name, data_dir, quick) for name in CORPORA}
    encoders = {
        label: TextEncoder(
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            threads=threads,
            cache_dir=None,  # time the model, not the cache
            show_progress=False,
            **options,
        ).load()
        for label, options in BACKENDS.items()
    }
    tokenizer = encoders["torch fp32"].model.tokenizer
    # Warm-up: a spread of lengths from each corpus, so every kernel and buffer size the
    # timed runs need has been seen once.
    warmup = [
        text for texts in corpora.values() for text in texts[:: max(1, len(texts) // 32)][:32]
    ]
    for encoder in encoders.values():
        encoder.encode(warmup)

    timings: dict[tuple[str, str], list[float]] = {
        (corpus, label): [] for corpus in corpora for label in encoders
    }
    vectors: dict[tuple[str, str], np.ndarray] = {}
    for _ in range(repeats):
        for corpus, texts in corpora.items():
            for label, encoder in encoders.items():
                started = time.perf_counter()
                vectors[corpus, label] = encoder.encode(texts)
                timings[corpus, label].append(time.perf_counter() - started)

    rows: list[dict[str, Any]] = []
    cosines: list[np.ndarray] = []
    for corpus, texts in corpora.items():
        encoded = tokenizer(texts, truncation=True, max_length=max_seq_length)
        tokens = [len(ids) for ids in encoded["input_ids"]]
        reference = statistics.median(timings[corpus, "torch fp32"])
        for label in encoders:
            seconds = statistics.median(timings[corpus, label])
            metrics: dict[str, Any] = {
                "texts": len(texts),
                "mean_tokens": round(float(np.mean(tokens)), 1),
                "seconds": round(seconds, 3),
                "texts_per_second": round(len(texts) / seconds, 1),
                "speedup": round(reference / seconds, 3),
            }
            if label != "torch fp32":
                cosine = np.sum(vectors[corpus, label] * vectors[corpus, "torch fp32"], axis=1)
                cosines.append(cosine)
                metrics["mean_cosine"] = round(float(cosine.mean()), 5)
                metrics["min_cosine"] = round(float(cosine.min()), 5)
            rows.append(
                {
                    "name": f"{corpus} / {label}",
                    "corpus": corpus,
                    "backend": label,
                    "identity": encoders[label].identity,
                    "seconds_runs": [round(t, 4) for t in timings[corpus, label]],
                    "metrics": metrics,
                }
            )

    total_texts = sum(len(texts) for texts in corpora.values())
    total = {
        label: sum(statistics.median(timings[c, label]) for c in corpora) for label in encoders
    }
    speedup = round(total["torch fp32"] / total["onnx int8"], 3)
    mean_cosine = round(float(np.concatenate(cosines).mean()), 5)
    summary: dict[str, Any] = {
        "int8_speedup": speedup,
        "int8_mean_cosine": mean_cosine,
        "fp32_texts_per_second": round(total_texts / total["torch fp32"], 1),
        "int8_texts_per_second": round(total_texts / total["onnx int8"], 1),
        "targets": TARGETS,
    }
    summary["targets_met"] = bool(
        speedup >= TARGETS["int8_speedup"] and mean_cosine >= TARGETS["int8_mean_cosine"]
    )
    protocol = {
        "corpora": {
            name: f"default item texts of {name} (item_texts), blank ones excluded"
            for name in CORPORA
        },
        "timed": "TextEncoder.encode(texts) with the cache off: tokenisation, length-sorted "
        "batches, forward pass, mean pooling, L2 normalisation",
        "backends": {label: encoders[label].identity for label in encoders},
        "quantization": "ONNX Runtime dynamic int8 (weight MatMuls, per-channel int8 weights, "
        f"uint8 activations), tuned for {encoders['onnx int8'].quantization_target}",
        "batch_size": batch_size,
        "max_seq_length": max_seq_length,
        "threads": threads,
        "repeats": repeats,
        "statistic": "median of repeats after a warm-up (64 texts of all lengths) per back end; "
        "back ends interleaved",
        "speedup": "sum over corpora of fp32 median seconds / same for int8 "
        "(ratio of total texts per second)",
        "cosine": "mean over all texts of cos(int8 vector, fp32 vector)",
        "quick": quick,
    }
    output = make_result("text_encoding", protocol=protocol, rows=rows, summary=summary)
    print_rows("Item-text encoding, texts per second (median of repeats)", rows, COLUMNS)
    print("summary:", summary)
    path = write_result(output, output_dir)
    print(f"wrote {path}")
    return output


def _corpus(name: str, data_dir: str | Path | None, quick: bool) -> list[str]:
    texts = [text for text in item_texts(load_dataset(name, data_dir)) if text]
    if quick:
        step = max(1, len(texts) // QUICK_TEXTS)
        texts = texts[::step][:QUICK_TEXTS]
    return texts
