"""Text-layer fixtures: the bundled model loaded once, caches in temporary folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paretorec.text import TextEncoder


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes to the user's cache, and none reaches the Hugging Face hub."""
    monkeypatch.setenv("PARETOREC_CACHE_DIR", str(tmp_path / "paretorec-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def encoder() -> TextEncoder:
    """The default model (PyTorch fp32), loaded once per run, cache off."""
    return TextEncoder(cache_dir=None, show_progress=False).load()


@pytest.fixture
def counting(encoder: TextEncoder) -> Iterator[Callable[[TextEncoder], list[list[str]]]]:
    """Make an encoder share the session's loaded model and record every model call."""
    patched: list[tuple[TextEncoder, Any]] = []

    def attach(target: TextEncoder) -> list[list[str]]:
        calls: list[list[str]] = []
        model = encoder.model
        original = model.encode

        def recording(texts: list[str], *args: Any, **kwargs: Any) -> Any:
            calls.append(list(texts))
            return original(texts, *args, **kwargs)

        target._model = model  # share the session model instead of loading it again
        patched.append((target, original))
        model.encode = recording
        return calls

    yield attach
    for _, original in reversed(patched):
        encoder.model.encode = original
