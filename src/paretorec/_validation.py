"""Validation helpers: every user-facing check lives here so messages stay uniform.

Each helper names the argument, shows the value received and says what was expected,
e.g. ``k must be a positive int, got -3``. Never use ``assert`` for user input.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


class ParetorecError(ValueError):
    """Base class for errors raised on bad user input."""


class ParetorecWarning(UserWarning):
    """Base class for paretorec's own warnings (tests run with them as errors)."""


class DataFileError(ParetorecError, FileNotFoundError):
    """A data file is missing, unreadable or malformed."""


class ChecksumError(ParetorecError):
    """A downloaded or cached file does not match its expected sha256."""


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (messages read ``11``, not ``np.int64(11)``)."""
    return value.item() if isinstance(value, np.generic) else value


def show(value: Any) -> str:
    """Short repr of a user-supplied value for error messages."""
    text = repr(plain(value))
    return text if len(text) <= 80 else text[:77] + "..."


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int if it is a positive integer (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParetorecError(
            f"{name} must be a positive int, got {show(value)} ({type(value).__name__})"
        )
    if value <= 0:
        raise ParetorecError(f"{name} must be a positive int, got {value}")
    return int(value)


def check_nonnegative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParetorecError(
            f"{name} must be a non-negative int, got {show(value)} ({type(value).__name__})"
        )
    if value < 0:
        raise ParetorecError(f"{name} must be a non-negative int, got {value}")
    return int(value)


def check_fraction(
    value: Any, name: str, *, low_open: bool = True, high_open: bool = True
) -> float:
    """Check ``value`` is a real number in (0, 1) (ends open or closed as asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParetorecError(f"{name} must be a number in (0, 1), got {show(value)}")
    v = float(value)
    lo_ok = v > 0 if low_open else v >= 0
    hi_ok = v < 1 if high_open else v <= 1
    if not (lo_ok and hi_ok) or np.isnan(v):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ParetorecError(f"{name} must be in {interval}, got {value}")
    return v


def check_nonnegative_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) >= 0:
        raise ParetorecError(f"{name} must be a non-negative number, got {show(value)}")
    return float(value)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    options = list(choices)
    if value not in options:
        raise ParetorecError(
            f"{name} must be one of {', '.join(repr(c) for c in options)}; got {show(value)}"
        )
    return str(value)


def check_file(path: str | Path, name: str) -> Path:
    """Check ``path`` names an existing, readable regular file."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{name}: file not found: {p}")
    if not p.is_file():
        raise DataFileError(f"{name}: not a regular file: {p}")
    try:
        with p.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read {p}: {exc.strerror or exc}") from exc
    return p


def check_index_array(values: Any, name: str, upper: int) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array of indices in ``[0, upper)``."""
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ParetorecError(f"{name} must be a 1-D array of indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ParetorecError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size:
        bad = (arr < 0) | (arr >= upper)
        if bad.any():
            raise ParetorecError(
                f"{name} holds unknown index {int(arr[bad][0])}; valid indices are 0..{upper - 1}"
            )
    return arr
