"""Shared benchmark plumbing: the results JSON shape, printing, provenance.

A result names the commit that produced it. A working tree with uncommitted changes to
tracked files (other than the benchmark outputs themselves, :data:`RESULT_PATHS`) cannot
name its code, so writing a result from one is refused unless it is
allowed explicitly (``paretorec bench NAME --allow-dirty``, :func:`provenance` or
``write_result(..., allow_dirty=True)``); the result then says ``"dirty": true`` and
BENCHMARKS.md marks its section.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .._validation import ParetorecError

#: Set by :func:`provenance` for the duration of a benchmark run: the commit at its start,
#: and whether a dirty tree is allowed.
_RUN: ContextVar[tuple[str, bool] | None] = ContextVar("benchmark_run", default=None)


#: What benchmark runs write (outputs, not code): changes here do not make a tree dirty, so
#: every benchmark can run at one commit, each leaving its result file uncommitted for the next.
RESULT_PATHS = ("benchmarks/results", "BENCHMARKS.md")


def git_commit(cwd: str | Path | None = None) -> str:
    """HEAD commit of the repository (with ``+dirty`` when tracked files other than the
    benchmark outputs in :data:`RESULT_PATHS` have local changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=cwd
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":(top)",
                *(f":(top,exclude){path}" for path in RESULT_PATHS),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def is_dirty(commit: str) -> bool:
    return commit.endswith("+dirty")


def check_clean(commit: str, allow_dirty: bool) -> None:
    """Refuse a result from a dirty tree unless ``allow_dirty``."""
    if is_dirty(commit) and not allow_dirty:
        raise ParetorecError(
            f"the working tree has uncommitted changes to tracked files (commit {commit}), "
            "so a benchmark result could not name the code that produced it; commit first, "
            "or pass --allow-dirty (allow_dirty=True) to write it marked as from a dirty tree"
        )


@contextmanager
def provenance(allow_dirty: bool = False, cwd: str | Path | None = None) -> Iterator[str]:
    """Pin the commit for a benchmark run, checked before any work starts.

    Results made inside take this commit (the code that was loaded), not the tree's state
    when the run ends; a dirty tree raises here unless ``allow_dirty``.
    """
    commit = git_commit(cwd)
    check_clean(commit, allow_dirty)
    token = _RUN.set((commit, allow_dirty))
    try:
        yield commit
    finally:
        _RUN.reset(token)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    import numpy
    import torch

    from ..text._encoder import quantization_target

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_vector_isa": quantization_target(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }


def data_folder(name: str, data_dir: str | Path | None) -> Path:
    """``<data_dir>/<name>``: the folder of a data set read straight from its files, with
    ``data_dir`` defaulting to ``$PARETOREC_DATA_DIR``, else ``../shared/data``."""
    root = (
        Path(data_dir) if data_dir else Path(os.environ.get("PARETOREC_DATA_DIR", "../shared/data"))
    )
    return root / name


def make_result(
    benchmark: str,
    *,
    protocol: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    command: str | None = None,
) -> dict[str, Any]:
    """The results shape every benchmark writes (``benchmarks/results/NAME.json``).

    ``commit`` is the one :func:`provenance` pinned at the start of the run, else HEAD now;
    ``dirty`` says whether the tree had uncommitted changes to tracked files.
    """
    pinned = _RUN.get()
    commit = pinned[0] if pinned is not None else git_commit()
    return {
        "benchmark": benchmark,
        "command": command or "paretorec bench " + benchmark,
        "commit": commit,
        "dirty": is_dirty(commit),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "protocol": protocol,
        "rows": list(rows),
        "summary": summary,
    }


def write_result(
    result: dict[str, Any], output_dir: str | Path, *, allow_dirty: bool | None = None
) -> Path:
    """Write ``<output_dir>/<benchmark>.json`` atomically.

    A result from a dirty tree is refused unless ``allow_dirty`` (default: what
    :func:`provenance` allowed for this run, else no).
    """
    if allow_dirty is None:
        pinned = _RUN.get()
        allow_dirty = pinned[1] if pinned is not None else False
    check_clean(str(result.get("commit", "")), allow_dirty)
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{result['benchmark']}.json"
    staging = target.with_suffix(".json.tmp")
    staging.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    os.replace(staging, target)
    return target


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_rows(
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    console: Console | None = None,
) -> None:
    """Print rows (``{"name", "metrics": {...}}``) as a table of the given metric columns."""
    table = Table(title=title, show_lines=False)
    table.add_column("model", style="bold")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        metrics = row.get("metrics", {})
        table.add_row(row["name"], *(_fmt(metrics.get(c)) for c in columns))
    (console or Console(file=sys.stdout, width=max(120, Console().width))).print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
