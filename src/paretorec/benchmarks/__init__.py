"""Benchmarks: each prints a table and writes ``benchmarks/results/NAME.json``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    _amazon_scientific,
    _fullsort,
    _incremental_ml100k,
    _ml100k_multitask,
    _ml100k_pareto,
    _movielens100k,
    _online_simulation,
    _ope_obd,
    _scale,
    _serving,
    _simulator_funnel,
    _text_encoding,
    _threads,
)

BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "movielens100k": _movielens100k.run,
    "fullsort": _fullsort.run,
    "ml100k_pareto": _ml100k_pareto.run,
    "amazon_scientific": _amazon_scientific.run,
    "text_encoding": _text_encoding.run,
    "simulator_funnel": _simulator_funnel.run,
    "ml100k_multitask": _ml100k_multitask.run,
    "threads": _threads.run,
    "ope_obd": _ope_obd.run,
    "online_simulation": _online_simulation.run,
    "incremental_ml100k": _incremental_ml100k.run,
    "scale": _scale.run,
    "serving": _serving.run,
}

__all__ = ["BENCHMARKS"]
