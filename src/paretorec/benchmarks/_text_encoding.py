"""Item-text encoding speed: PyTorch fp32, ONNX Runtime fp32 and ONNX Runtime dynamic int8.

The ONNX Runtime fp32 row separates the two changes int8 brings: the runtime (PyTorch to
ONNX Runtime, same precision) and the quantisation (ONNX Runtime fp32 to int8).

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
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._threads import thread_limit
from ..data import load_dataset
from ..text import TextEncoder, item_texts
from ._harness import make_result, print_rows, write_result

CORPORA = ("movielens-100k", "amazon-scientific")
BACKENDS: dict[str, dict[str, Any]] = {
    "torch fp32": {"backend": "torch"},
    "onnx fp32": {"backend": "onnx"},
    "onnx int8": {"backend": "onnx", "quantize": "int8"},
}
COLUMNS = ("texts", "mean_tokens", "seconds", "texts_per_second", "speedup", "mean_cosine")
GEMM_COLUMNS = ("rows", "inner", "outer", "fp32_gflops", "int8_gflops", "speedup")
TARGETS = {"int8_speedup": 2.5, "int8_mean_cosine": 0.99}
QUICK_TEXTS = 96  # per corpus in quick mode
GEMM_ROWS = 64 * 48  # one batch of 64 texts of about the Amazon corpus's mean length
GEMM_REPEATS = 30


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
    """Run the benchmark with ``threads`` threads in torch and every BLAS / OpenMP pool
    (restored afterwards)."""
    with thread_limit(threads):
        return _run(
            output_dir,
            data_dir=data_dir,
            quick=quick,
            repeats=repeats,
            threads=threads,
            batch_size=batch_size,
            max_seq_length=max_seq_length,
        )


def _run(
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
    cosines: dict[str, list[np.ndarray]] = {label: [] for label in encoders}
    gemm_rows, gemm_speedup = _gemm_ceiling(
        encoders["torch fp32"].dimension, threads, 3 if quick else GEMM_REPEATS
    )
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
                cosines[label].append(cosine)
                metrics["mean_cosine"] = round(float(cosine.mean()), 5)
                metrics["min_cosine"] = round(float(cosine.min()), 5)
            rows.append(
                {
                    "name": f"{corpus} / {label}",
                    "kind": "encode",
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
    mean_cosine = round(float(np.concatenate(cosines["onnx int8"]).mean()), 5)
    summary: dict[str, Any] = {
        "int8_speedup": speedup,
        "int8_mean_cosine": mean_cosine,
        # the int8 speed-up split in two: runtime change (same precision), then quantisation
        "onnx_fp32_speedup": round(total["torch fp32"] / total["onnx fp32"], 3),
        "int8_vs_onnx_fp32_speedup": round(total["onnx fp32"] / total["onnx int8"], 3),
        "onnx_fp32_mean_cosine": round(float(np.concatenate(cosines["onnx fp32"]).mean()), 5),
        "fp32_texts_per_second": round(total_texts / total["torch fp32"], 1),
        "onnx_fp32_texts_per_second": round(total_texts / total["onnx fp32"], 1),
        "int8_texts_per_second": round(total_texts / total["onnx int8"], 1),
        "int8_gemm_speedup": gemm_speedup,
        "cpu_int8_instructions": encoders["onnx int8"].quantization_target,
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
        "speedup": "sum over corpora of torch fp32 median seconds / same for the row's back "
        "end (ratio of total texts per second); int8_vs_onnx_fp32_speedup: ONNX Runtime fp32 "
        "over int8, the quantisation's own gain",
        "cosine": "mean over all texts of cos(back end's vector, torch fp32 vector)",
        "gemm_ceiling": f"ONNX Runtime MatMul alone, {GEMM_ROWS} rows x the model's weight "
        "shapes (hidden x hidden, hidden x 4 hidden, 4 hidden x hidden), fp32 vs dynamic int8 "
        "(activation quantisation included), same threads; int8_gemm_speedup = fp32 / int8 "
        "time of one transformer layer's weight MatMuls (4 + 1 + 1 of these shapes), medians "
        f"of {3 if quick else GEMM_REPEATS} interleaved repeats",
        "quick": quick,
    }
    output = make_result("text_encoding", protocol=protocol, rows=rows + gemm_rows, summary=summary)
    print_rows("Item-text encoding, texts per second (median of repeats)", rows, COLUMNS)
    print_rows(
        "Weight MatMuls alone, fp32 vs dynamic int8 (median of repeats)", gemm_rows, GEMM_COLUMNS
    )
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


def _gemm_ceiling(hidden: int, threads: int, repeats: int) -> tuple[list[dict[str, Any]], float]:
    """fp32 vs dynamic-int8 ONNX Runtime MatMul speed on the model's weight shapes.

    Returns one row per shape and the speed-up of one layer's weight MatMuls (four
    ``hidden x hidden`` projections, the feed-forward ``hidden x 4 hidden`` and back).
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..text._encoder import quantization_target, reduced_range

    rng = np.random.default_rng(0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    shapes = {(hidden, hidden): 4, (hidden, 4 * hidden): 1, (4 * hidden, hidden): 1}
    rows: list[dict[str, Any]] = []
    layer = {"fp32": 0.0, "int8": 0.0}
    with tempfile.TemporaryDirectory(prefix="gemm_") as folder:
        for (inner, outer), count in shapes.items():
            weight = numpy_helper.from_array(
                (rng.standard_normal((inner, outer)) * 0.05).astype(np.float32), "w"
            )
            graph = helper.make_graph(
                [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")],
                "gemm",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", inner])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", outer])],
                [weight],
            )
            fp32_file = f"{folder}/fp32_{inner}x{outer}.onnx"
            int8_file = f"{folder}/int8_{inner}x{outer}.onnx"
            onnx.save(
                helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), fp32_file
            )
            quantize_dynamic(
                fp32_file,
                int8_file,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=reduced_range(quantization_target()),
            )
            sessions = {
                label: ort.InferenceSession(file, options, providers=["CPUExecutionProvider"])
                for label, file in (("fp32", fp32_file), ("int8", int8_file))
            }
            x = rng.standard_normal((GEMM_ROWS, inner)).astype(np.float32)
            times: dict[str, list[float]] = {label: [] for label in sessions}
            for session in sessions.values():
                session.run(None, {"x": x})
            for _ in range(repeats):
                for label, session in sessions.items():
                    started = time.perf_counter()
                    session.run(None, {"x": x})
                    times[label].append(time.perf_counter() - started)
            medians = {label: statistics.median(values) for label, values in times.items()}
            flops = 2.0 * GEMM_ROWS * inner * outer
            for label in layer:
                layer[label] += count * medians[label]
            rows.append(
                {
                    "name": f"MatMul {GEMM_ROWS} x {inner} x {outer}",
                    "kind": "gemm",
                    "metrics": {
                        "rows": GEMM_ROWS,
                        "inner": inner,
                        "outer": outer,
                        "fp32_gflops": round(flops / medians["fp32"] / 1e9, 1),
                        "int8_gflops": round(flops / medians["int8"] / 1e9, 1),
                        "speedup": round(medians["fp32"] / medians["int8"], 3),
                    },
                }
            )
    return rows, round(layer["fp32"] / layer["int8"], 3)
