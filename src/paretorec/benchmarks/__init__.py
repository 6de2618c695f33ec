"""Benchmarks: each prints a table and writes ``benchmarks/results/NAME.json``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    _amazon_scientific,
    _fullsort,
    _ml100k_multitask,
    _ml100k_pareto,
    _movielens100k,
    _serving,
    _simulator_funnel,
    _text_encoding,
)

BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "movielens100k": _movielens100k.run,
    "fullsort": _fullsort.run,
    "ml100k_pareto": _ml100k_pareto.run,
    "amazon_scientific": _amazon_scientific.run,
    "text_encoding": _text_encoding.run,
    "simulator_funnel": _simulator_funnel.run,
    "ml100k_multitask": _ml100k_multitask.run,
    "serving": _serving.run,
}

__all__ = ["BENCHMARKS"]
