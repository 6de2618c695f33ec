"""Pareto run report: front.json, 2-D projection plots (compared fronts overlaid), HTML."""

from __future__ import annotations

import base64
import html
import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..pareto._pipeline import ParetoRun

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def front_records(run: ParetoRun, space: str = "full") -> list[dict[str, Any]]:
    check = run.holdout[space]
    policies = run.front_policies(space)
    return [
        {
            "policy": policy.to_dict(),
            "describe": policy.describe(),
            "validation": dict(zip(run.objectives, check.validation[i].tolist(), strict=True)),
            "test": dict(zip(run.objectives, check.test[i].tolist(), strict=True)),
        }
        for i, policy in enumerate(policies)
    ]


def _projection_png(run: ParetoRun, x: int, y: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.0), dpi=110)
    for color, (name, check) in zip(COLORS, run.holdout.items(), strict=False):
        values = check.test
        order = np.argsort(values[:, x])
        ax.scatter(
            values[order, x],
            values[order, y],
            s=16 if name != "full" else 26,
            color=color,
            alpha=0.8,
            label=f"{name} ({len(values)})",
        )
    marked = [
        (run.summary.get("plain_test"), "X", "plain candidate ranking"),
        (run.summary.get("top_ndcg_test"), "*", "top validation nDCG policy"),
    ] + [
        (pick["test"], marker, f"best {objective} on validation at 95% nDCG")
        for objective, marker in (("ild", "^"), ("coverage", "s"), ("novelty", "D"))
        if (pick := run.summary.get(f"{objective}_valsel_pick"))
    ]
    for point, marker, label in marked:
        if point:
            ax.scatter(
                [point[run.objectives[x]]],
                [point[run.objectives[y]]],
                marker=marker,
                s=110 if marker == "*" else 60,
                facecolors="none" if marker in "^sD" else "black",
                edgecolors="black",
                label=label,
            )
    ax.set_xlabel(f"{run.objectives[x]} (test, {run.directions[x]})")
    ax.set_ylabel(f"{run.objectives[y]} (test, {run.directions[y]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"Front projections: {run.objectives[y]} vs {run.objectives[x]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_pareto_report(run: ParetoRun, directory: str | Path) -> Path:
    """Write front.json, front_<y>_vs_<x>.png for each objective pair, and report.html."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    records = front_records(run)
    payload = {
        "objectives": list(run.objectives),
        "directions": run.directions,
        "summary": run.summary,
        "features": run.features,
        "front": records,
        "compared": {name: front_records(run, name) for name in run.holdout if name != "full"},
        "config": run.config.model_dump(mode="json"),
    }
    (out / "front.json").write_text(json.dumps(_json_safe(payload), indent=2) + "\n")
    images = []
    for x, y in itertools.combinations(range(len(run.objectives)), 2):
        name = f"front_{run.objectives[y]}_vs_{run.objectives[x]}.png"
        _projection_png(run, x, y, out / name)
        images.append(name)
    head = "".join(
        f"<th>{html.escape(o)} (val)</th><th>{html.escape(o)} (test)</th>" for o in run.objectives
    )
    body = "".join(
        "<tr><td>"
        + html.escape(r["describe"])
        + "</td>"
        + "".join(
            f"<td>{r['validation'][o]:.4f}</td><td>{r['test'][o]:.4f}</td>" for o in run.objectives
        )
        + "</tr>"
        for r in sorted(records, key=lambda r: -r["test"].get(run.objectives[0], 0.0))
    )
    summary = "".join(
        f"<li><code>{html.escape(str(k))}</code>: {html.escape(_fmt(v))}</li>"
        for k, v in run.summary.items()
        if not k.endswith("_test_oracle")
    )
    oracle = "".join(
        f"<li><code>{html.escape(str(k))}</code>: {html.escape(_fmt(v))}</li>"
        for k, v in run.summary.items()
        if k.endswith("_test_oracle")
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(n)}" src="data:image/png;base64,'
        f'{base64.b64encode((out / n).read_bytes()).decode()}"/></figure>'
        for n in images
    )
    pairs = zip(run.objectives, run.directions, strict=True)
    objective_list = ", ".join(f"{name} ({direction})" for name, direction in pairs)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paretorec: {html.escape(run.config.name)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1400px}}
table{{border-collapse:collapse;font-size:.8rem}}
td,th{{border:1px solid #ccc;padding:.2rem .45rem;text-align:right}}
td:first-child{{text-align:left}} figure{{display:inline-block;margin:.4rem}}
</style></head><body>
<h1>Pareto front: {html.escape(run.config.name)}</h1>
<p>Policies searched on validation (carved from training), re-evaluated on test.
Objectives: {html.escape(objective_list)}.</p>
{_features_html(run)}
<h2>Summary</h2>
<p>Every policy below was chosen on validation; its figures are measured on test.
<code>*_valsel</code>: for each of ILD, coverage and novelty, the policy with the best
validation value among those keeping 95% of the plain candidate ranking's validation nDCG,
on test, relative to the plain ranking's test value (<code>*_vs_top_ndcg</code>: the same
against the search's top-nDCG policy).</p><ul>{summary}</ul>
<p>Test oracle (filtered and picked on test, each objective possibly a different policy:
an optimistic bound, not a result):</p><ul>{oracle}</ul>
<h2>Projections (test; compared fronts overlaid)</h2><div>{figures}</div>
<h2>Front ({len(records)} policies)</h2>
<table><thead><tr><th>policy</th>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""
    target = out / "report.html"
    target.write_text(page)
    return target


def _features_html(run: ParetoRun) -> str:
    """Where diversity, item groups and user groups came from (the config's choice)."""
    features = getattr(run, "features", None) or {}
    if not features:
        return ""
    items = "".join(
        f"<li>{html.escape(label)}: {html.escape(_fmt(features[key]))}</li>"
        for key, label in (
            ("data", "data"),
            ("item_vectors", "ILD computed from"),
            ("item_groups", "item groups (fair exposure, long-tail boost)"),
            ("user_groups", "user groups (gap metrics)"),
        )
        if key in features
    )
    return f"<h2>Features from the data</h2><ul>{items}</ul>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)
