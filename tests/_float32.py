"""Comparisons of float32 results that every CPU can meet.

The same float32 computation reached by another path (a batch size, a GEMM kernel chosen
for AVX2 or AVX-512 VNNI, a summation order) differs in the last bits: about 1e-7 relative to
the operands, a little more after long reductions. An absolute tolerance fixed in advance
fails where values are large (a 1e-5 bound on values near 20 is 5e-7 relative), a purely
relative one where an element is a near-cancellation. So: ``rtol`` per element, plus an
absolute floor of ``rtol`` times the largest magnitude of the expected array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: float32 has 24 bits of mantissa (6e-8); 1e-5 leaves room for reductions over thousands.
FLOAT32_RTOL = 1e-5


def assert_close_f32(actual: Any, expected: Any, rtol: float = FLOAT32_RTOL) -> None:
    """``actual`` equals ``expected`` within ``rtol``, relative to each element and to the
    largest magnitude of ``expected`` (infinities must match exactly)."""
    got = np.asarray(actual, dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    finite = want[np.isfinite(want)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)
