"""The text_encoding benchmark: the int8 GEMM ceiling and a quick end-to-end run."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretorec.benchmarks import BENCHMARKS
from paretorec.benchmarks import _text_encoding as text_encoding

pytest.importorskip("onnxruntime")
pytest.importorskip("optimum.onnxruntime")


def test_gemm_ceiling_times_each_weight_shape_of_a_layer() -> None:
    rows, speedup = text_encoding._gemm_ceiling(hidden=32, threads=1, repeats=2)
    shapes = [(row["metrics"]["inner"], row["metrics"]["outer"]) for row in rows]
    assert shapes == [(32, 32), (32, 128), (128, 32)]
    for row in rows:
        assert row["kind"] == "gemm"
        metrics = row["metrics"]
        assert metrics["rows"] == text_encoding.GEMM_ROWS
        assert metrics["fp32_gflops"] > 0 and metrics["int8_gflops"] > 0
        assert metrics["speedup"] == pytest.approx(
            metrics["int8_gflops"] / metrics["fp32_gflops"], rel=0.05
        )
    assert speedup > 0


@pytest.mark.slow
def test_text_encoding_quick_writes_speed_cosine_and_ceiling(
    ml100k_dir: Path, amazon_dir: Path, tmp_path: Path
) -> None:
    if ml100k_dir.parent != amazon_dir.parent:
        pytest.skip("MovieLens-100k and Amazon-Scientific are not in one data folder")
    result = BENCHMARKS["text_encoding"](
        tmp_path / "results", data_dir=ml100k_dir.parent, quick=True, threads=1
    )
    summary = result["summary"]
    assert summary["int8_mean_cosine"] >= 0.99
    assert summary["int8_speedup"] > 0 and summary["int8_gemm_speedup"] > 0
    assert summary["cpu_int8_instructions"] in ("avx512_vnni", "avx512", "avx2", "arm64")
    kinds = [row["kind"] for row in result["rows"]]
    assert kinds.count("encode") == 6 and kinds.count("gemm") == 3
    backends = {row["backend"] for row in result["rows"] if row["kind"] == "encode"}
    assert backends == {"torch fp32", "onnx fp32", "onnx int8"}
    # same precision, another runtime: the vectors agree far more closely than int8's
    assert summary["onnx_fp32_mean_cosine"] >= 0.9999
    # the two steps compose to the whole int8 gain (each a ratio of the same medians)
    assert summary["onnx_fp32_speedup"] * summary["int8_vs_onnx_fp32_speedup"] == pytest.approx(
        summary["int8_speedup"], rel=0.01
    )
    assert (tmp_path / "results" / "text_encoding.json").is_file()
