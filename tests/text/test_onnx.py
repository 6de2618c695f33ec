"""ONNX back end: exported and quantised once, int8 vectors close to fp32 ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paretorec.text import TextEncoder
from paretorec.text import _encoder as encoder_module
from tests._float32 import assert_close_f32

pytest.importorskip("onnxruntime")
pytest.importorskip("optimum.onnxruntime")

TEXTS = [
    "Star Wars (1977) | Action, Adventure, Romance, Sci-Fi, War",
    "The Usual Suspects (1995) | Crime, Thriller",
    "Sleepless in Seattle (1993) | Comedy, Romance",
    "Toy Story (1995) | Animation, Children's, Comedy",
    "Gorilla Original Gorilla Glue, Waterproof Polyurethane Glue, 8 ounce Bottle, Brown. "
    "Industrial & Scientific Tapes, Adhesives & Sealants Urethane Adhesives. Gorilla.",
    "DEWALT DW4524 4-1/2-Inch by 1/4-Inch by 7/8-Inch Concrete/Masonry Grinding Wheel. "
    "Industrial & Scientific Abrasive & Finishing Products Abrasive Wheels & Discs. DEWALT.",
    "a sci-fi space movie",
    "",
]


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-exports")


@pytest.fixture(scope="session")
def int8(export_dir: Path) -> TextEncoder:
    """Exports and quantises the default model once per run (a few seconds)."""
    return TextEncoder(
        backend="onnx", quantize="int8", threads=2, cache_dir=None, export_dir=export_dir
    ).load()


@pytest.mark.slow
def test_int8_is_close_to_fp32(int8: TextEncoder, encoder: TextEncoder) -> None:
    quantised, reference = int8.encode(TEXTS), encoder.encode(TEXTS)
    assert quantised.shape == (len(TEXTS), 384) and quantised.dtype == np.float32
    assert not quantised[-1].any()  # blank text: zero vector on every back end
    np.testing.assert_allclose(np.linalg.norm(quantised[:-1], axis=1), 1.0, atol=1e-5)
    cosine = np.sum(quantised[:-1] * reference[:-1], axis=1)
    assert cosine.min() > 0.98 and cosine.mean() > 0.99
    assert "onnx int8-" in int8.identity


@pytest.mark.slow
def test_export_happens_once(
    int8: TextEncoder, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(encoder_module, "_export_onnx", refuse)
    monkeypatch.setattr(encoder_module, "_quantize_onnx", refuse)
    again = TextEncoder(backend="onnx", quantize="int8", cache_dir=None, export_dir=export_dir)
    assert_close_f32(again.encode(TEXTS[:2]), int8.encode(TEXTS[:2]))
    (folder,) = export_dir.iterdir()
    names = sorted(p.name for p in (folder / "onnx").iterdir())
    assert names[0] == "model.onnx" and names[1].startswith("model_int8_")
    assert not [p for p in export_dir.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.slow
def test_fp32_onnx_matches_torch(int8: TextEncoder, encoder: TextEncoder, export_dir: Path) -> None:
    fp32 = TextEncoder(backend="onnx", cache_dir=None, export_dir=export_dir)
    np.testing.assert_allclose(fp32.encode(TEXTS), encoder.encode(TEXTS), atol=1e-4)


def test_missing_onnx_runtime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_onnx(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ImportError, match=r"pip install 'paretorec\[onnx\]'"):
        TextEncoder(backend="onnx", cache_dir=None).load()
