"""Shared benchmark plumbing: the results JSON shape, printing, provenance."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def git_commit(cwd: str | Path | None = None) -> str:
    """HEAD commit of the repository (with ``+dirty`` when there are local changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=cwd
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            cwd=cwd,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def environment() -> dict[str, Any]:
    import numpy
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }


def make_result(
    benchmark: str,
    *,
    protocol: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    command: str | None = None,
) -> dict[str, Any]:
    """The results shape every benchmark writes (``benchmarks/results/NAME.json``)."""
    return {
        "benchmark": benchmark,
        "command": command or "paretorec bench " + benchmark,
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "protocol": protocol,
        "rows": list(rows),
        "summary": summary,
    }


def write_result(result: dict[str, Any], output_dir: str | Path) -> Path:
    """Write ``<output_dir>/<benchmark>.json`` atomically."""
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
