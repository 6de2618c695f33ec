"""One place that decides how many CPU threads paretorec's computations use.

A machine shared with other busy processes punishes oversubscription badly: torch's and
BLAS's spinning OpenMP workers wait on cores that another process holds (10-45x slower
steps were measured here). So the thread count is a single setting, applied everywhere:

- :func:`configured_threads` is the setting: the last :func:`configure_threads` call (the
  ``paretorec --threads N`` option), else ``$PARETOREC_THREADS``, else the number of cores
  this process may run on.
- :func:`configure_threads` applies it process-wide: torch intra-op threads, torch
  inter-op threads (torch allows that only before its first parallel work, so the CLI does
  it first thing), and the BLAS / OpenMP pools numpy and scipy use (``threadpoolctl``).
- :func:`thread_limit` applies a count (default: the setting) inside a block and restores
  every pool afterwards; every trainer, encoder and model that computes uses it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Any

from ._validation import ParetorecError

ENV_VAR = "PARETOREC_THREADS"

_configured: int | None = None
#: The count of the innermost :func:`thread_limit` block (per thread / async context).
_active: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "paretorec_threads", default=None
)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_threads(value: Any, name: str = "threads") -> int:
    """A positive thread count, or a :class:`ParetorecError` naming ``name`` and the value."""
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise ParetorecError(f"{name} must be a positive integer, got {value!r}")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParetorecError(f"{name} must be a positive integer, got {value!r}")
    return value


def configured_threads() -> int:
    """The thread setting: the enclosing :func:`thread_limit` block's count, else
    :func:`configure_threads`' value, else ``$PARETOREC_THREADS``, else the cores."""
    active = _active.get()
    if active is not None:
        return active
    if _configured is not None:
        return _configured
    raw = os.environ.get(ENV_VAR)
    if raw is not None and raw.strip():
        return check_threads(raw, ENV_VAR)
    return available_cores()


def configure_threads(n: int | None = None) -> int:
    """Make ``n`` (default: :func:`configured_threads`) the process-wide thread count.

    Sets torch's intra-op threads, its inter-op threads when torch still allows it (only
    before its first inter-op parallel work; later calls keep the earlier value), and the
    BLAS / OpenMP pools through ``threadpoolctl``. Returns the count applied.
    """
    global _configured
    count = configured_threads() if n is None else check_threads(n)
    _configured = count
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(count)
    if torch.get_num_interop_threads() != count:
        with contextlib.suppress(RuntimeError):  # torch: "cannot set ... after parallel work"
            torch.set_num_interop_threads(count)
    threadpool_limits(limits=count)
    return count


def reset_configuration() -> None:
    """Forget :func:`configure_threads`' value (the environment and cores decide again)."""
    global _configured
    _configured = None


def pool_threads() -> dict[str, Any]:
    """Current thread counts of every pool: torch intra- and inter-op, each BLAS / OpenMP."""
    import torch
    from threadpoolctl import threadpool_info

    pools: dict[str, Any] = {
        "torch_intra_op": torch.get_num_threads(),
        "torch_inter_op": torch.get_num_interop_threads(),
    }
    for info in threadpool_info():
        key = f"{info['user_api']}:{info['internal_api']}:{os.path.basename(info['filepath'])}"
        pools[key] = info["num_threads"]
    return pools


@contextlib.contextmanager
def thread_limit(n: int | None = None) -> Iterator[int]:
    """Run the block with ``n`` threads (default: :func:`configured_threads`, so a block
    inside another keeps the outer count) in torch's intra-op pool and every BLAS / OpenMP
    pool; restore each pool's count afterwards.

    Yields the count applied. Torch's inter-op pool is process-wide and fixed after its
    first use, so it is set once by :func:`configure_threads`, not here.
    """
    import torch
    from threadpoolctl import threadpool_limits

    count = configured_threads() if n is None else check_threads(n)
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    token = _active.set(count)
    try:
        with threadpool_limits(limits=count):
            yield count
    finally:
        _active.reset(token)
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
