"""Render BENCHMARKS.md from benchmarks/results/*.json (so the page never drifts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import (
    _amazon_scientific,
    _fullsort,
    _ml100k_multitask,
    _ml100k_pareto,
    _movielens100k,
    _simulator_funnel,
    _text_encoding,
)

HEADER = """# Benchmarks

Generated from `benchmarks/results/*.json` by `python benchmarks/render.py`; every figure
below was measured by the command shown with it, on the commit shown. Machines are shared
and noisy: speed figures are medians of repeats.
"""

DIRTY_TITLE = " [dirty tree]"
OTHER_COMMIT_TITLE = " [other commit]"
DIRTY_NOTE = (
    "> **From a dirty tree**: these figures were written with uncommitted changes to tracked "
    "files (`--allow-dirty`), so the commit below does not fully name the code that produced "
    "them. Rerun at a clean commit before relying on them."
)

SECTIONS: dict[str, dict[str, Any]] = {
    "movielens100k": {
        "title": "MovieLens-100k, the published Microsoft Recommenders table's protocol",
        "tables": [
            ("Accuracy (test)", _movielens100k.ACCURACY_COLUMNS),
            ("Beyond accuracy and fairness (test)", _movielens100k.BEYOND_COLUMNS),
        ],
    },
    "ml100k_pareto": {
        "title": "Pareto fronts of re-ranking policies, MovieLens-100k",
        "tables": [("Fronts on test, same search budget per space", _ml100k_pareto.FRONT_COLUMNS)],
    },
    "amazon_scientific": {
        "title": "Amazon-Scientific next-item ranking: ID, text, hybrid vs RecBole SASRec",
        "tables": [
            (
                "Test, full ranking: mean over seeds (sd of nDCG@10), paretorec and RecBole",
                _amazon_scientific.MEAN_COLUMNS,
                {"table": "main"},
            ),
            (
                "Test, full ranking: each seed, paretorec and RecBole",
                _amazon_scientific.COLUMNS,
                {"table": "seeds"},
            ),
        ],
    },
    "text_encoding": {
        "title": "Item-text encoding speed: PyTorch fp32, ONNX Runtime fp32 and int8",
        "tables": [
            ("Texts per second (median of repeats)", _text_encoding.COLUMNS, {"kind": "encode"}),
            (
                "Weight MatMuls alone on this CPU: the int8 ceiling (median of repeats)",
                _text_encoding.GEMM_COLUMNS,
                {"kind": "gemm"},
            ),
        ],
    },
    "simulator_funnel": {
        "title": "Funnel simulator: CVR over the entire space (known truth)",
        "tables": [("Test impressions, mean over seeds", _simulator_funnel.COLUMNS)],
    },
    "ml100k_multitask": {
        "title": "MovieLens-100k funnel: multi-task rankers, single-task models, torch-rechub",
        "tables": [
            (
                "Test: engage / like AUC, rating RMSE; nDCG@10 re-ranking EASE's top 100",
                _ml100k_multitask.COLUMNS,
            ),
            (
                "Training throughput, same MMoE in both libraries (median of repeats)",
                _ml100k_multitask.SPEED_COLUMNS,
                {"kind": "throughput"},
            ),
        ],
    },
    "fullsort": {
        "title": "Full-catalogue ranking speed, MovieLens-1M",
        "tables": [("Score + top-10 + metrics, every user x every item", _fullsort.SPEED_COLUMNS)],
    },
}


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()) + "}"
    return str(value)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """A markdown table; rows holding none of the columns are left out, absent cells are -."""
    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        metrics = row["metrics"]
        if not any(c in metrics for c in columns):
            continue
        cells = [_cell(metrics[c]) if c in metrics else "-" for c in columns]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return lines


def _published(protocol: dict[str, Any]) -> list[str]:
    published = protocol.get("published")
    if not published:
        return []
    columns = sorted({key for figures in published.values() for key in figures})
    lines = [
        "",
        "Published figures on the same protocol (Microsoft Recommenders README; not rerun here):",
        "",
    ]
    lines += ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, figures in published.items():
        lines.append(f"| {name} | " + " | ".join(_cell(figures.get(c, "")) for c in columns) + " |")
    return lines


def _generic_section(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """A benchmark without its own layout: its rows' metrics (first 10 columns, in order)."""
    columns: list[str] = []
    for row in result.get("rows", []):
        for key in row.get("metrics", {}):
            if key not in columns:
                columns.append(key)
    return {"title": str(result.get("benchmark", name)), "tables": [("Rows", columns[:10])]}


def machine(environment: dict[str, Any]) -> str:
    """One line about the machine a result was measured on, from its ``environment``."""
    parts = [str(environment.get("cpu") or "CPU model not recorded")]
    if environment.get("cpu_vector_isa"):
        parts.append(str(environment["cpu_vector_isa"]))
    if environment.get("cpu_count"):
        parts.append(f"{environment['cpu_count']} cores")
    for key in ("platform", "torch", "python"):
        if environment.get(key):
            parts.append(f"{key} {environment[key]}")
    return ", ".join(parts)


def main_commit(results: dict[str, dict[str, Any]]) -> str | None:
    """The commit most results name (a clean one first on a tie); ``None`` with no results."""
    counts: dict[str, int] = {}
    for result in results.values():
        commit = str(result["commit"])
        counts[commit] = counts.get(commit, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda c: (counts[c], not c.endswith("+dirty")))


def provenance_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """Which commit the results come from: one line when every result names the same
    commit, else the commit most of them name and the results that differ (their sections'
    titles are marked ``[other commit]``)."""
    main = main_commit(results)
    if main is None:
        return []
    differ = [
        f"`{name}` ({str(result['commit'])[:12]})"
        for name, result in results.items()
        if str(result["commit"]) != main
    ]
    if not differ:
        return [f"All {len(results)} results come from one commit: `{main}`.", ""]
    return [
        f"{len(results) - len(differ)} of {len(results)} results come from commit `{main}`; "
        f"from other commits (marked{OTHER_COMMIT_TITLE}): " + ", ".join(differ) + ".",
        "",
    ]


def render_markdown(results_dir: str | Path) -> str:
    directory = Path(results_dir)
    out = [HEADER]
    others = sorted(p.stem for p in directory.glob("*.json") if p.stem not in SECTIONS)
    results = {
        name: json.loads((directory / f"{name}.json").read_text())
        for name in [*SECTIONS, *others]
        if (directory / f"{name}.json").is_file()
    }
    out += provenance_lines(results)
    main = main_commit(results)
    for name, result in results.items():
        section = SECTIONS.get(name) or _generic_section(name, result)
        dirty = bool(result.get("dirty")) or str(result["commit"]).endswith("+dirty")
        other = OTHER_COMMIT_TITLE if str(result["commit"]) != main else ""
        out += [f"## {section['title']} (`{name}`){DIRTY_TITLE if dirty else ''}{other}", ""]
        if dirty:
            out += [DIRTY_NOTE, ""]
        out += [
            f"- command: `{result['command']}`",
            f"- commit: `{result['commit']}`, date: {result['date']}",
            f"- machine: {machine(result.get('environment') or {})}",
        ]
        for key, value in result["protocol"].items():
            if key != "published":
                out.append(f"- {key}: {value}")
        for title, columns, *where in section["tables"]:
            # an optional third entry keeps the rows whose fields match it
            rows = [
                r for r in result["rows"] if all(r.get(k) == v for w in where for k, v in w.items())
            ]
            out += ["", f"**{title}**", ""]
            out += _table(rows, columns)
        out += _published(result["protocol"])
        out += [
            "",
            "Summary: " + ", ".join(f"`{k}` = {_cell(v)}" for k, v in result["summary"].items()),
            "",
        ]
    return "\n".join(out).rstrip() + "\n"
