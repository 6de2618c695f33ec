"""A self-contained HTML report (plots embedded as PNG) plus the figures as JSON."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PLOTS = (
    ("ndcg@10", "coverage@10", "Accuracy vs catalogue coverage"),
    ("ndcg@10", "novelty@10", "Accuracy vs novelty"),
    ("ndcg@10", "ild_genres@10", "Accuracy vs genre diversity"),
)


def _scatter_png(rows: Sequence[dict[str, Any]], x: str, y: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.6), dpi=110)
    for row in rows:
        metrics = row["metrics"]
        if x in metrics and y in metrics:
            ax.scatter(metrics[x], metrics[y], s=40)
            ax.annotate(row["name"], (metrics[x], metrics[y]), textcoords="offset points",
                        xytext=(5, 4), fontsize=8)  # fmt: skip
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots_with_data(
    rows: Sequence[dict[str, Any]], plots: Sequence[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    """The plots at least one row has both metrics for."""
    return [
        (x, y, title)
        for x, y, title in plots
        if any(x in row["metrics"] and y in row["metrics"] for row in rows)
    ]


def write_baseline_report(
    directory: str | Path,
    *,
    title: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    notes: Sequence[str] = (),
    plots: Sequence[tuple[str, str, str]] | None = None,
) -> Path:
    """Write ``metrics.json`` and ``report.html`` (table + trade-off plots) to ``directory``.

    ``plots`` lists ``(x metric, y metric, title)``; default: accuracy against coverage,
    novelty and diversity. A plot whose metrics no row has is left out (never drawn empty).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(list(rows), indent=2, default=float) + "\n")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("model", *columns))
    body = "".join(
        "<tr><td>" + html.escape(row["name"]) + "</td>"
        + "".join(f"<td>{row['metrics'].get(c, float('nan')):.4f}</td>" for c in columns)
        + "</tr>"
        for row in rows
    )  # fmt: skip
    images = "".join(
        f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,'
        f'{_scatter_png(rows, x, y, t)}"/></figure>'
        for x, y, t in plots_with_data(rows, PLOTS if plots is None else plots)
    )
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px}}
table{{border-collapse:collapse;font-size:.85rem}}
td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
figure{{display:inline-block;margin:.5rem}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{items}</ul>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<div>{images}</div>
</body></html>
"""
    target = out / "report.html"
    target.write_text(page)
    return target
