"""Pareto run report: front.json, 2-D projection plots, a parallel-coordinates view, HTML.

Every plot marks the same operating points: the plain candidate ranking, the knee, the
preference picks and the accuracy-max policy. The picks are made on validation (as an
operator would) and drawn at their test values. A 2-D projection of a front over more than
two objectives shows many points as dominated (they win on an objective not drawn), so each
front's own 2-D non-dominated subset for the pair is joined by a line.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..pareto._front import ParetoFront, non_dominated_mask
from ..pareto._pipeline import ANCHOR_SHARE, GUARD_Z, HEADLINES, guarded_pick
from ..ranking import Policy

if TYPE_CHECKING:
    from ..pareto._pipeline import ParetoRun

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")

#: marker style per operating point kind: (matplotlib marker, colour, size)
_MARKERS = {
    "plain": ("s", "#555555", 70),
    "accuracy_max": ("*", "black", 170),
    "knee": ("D", "#e377c2", 70),
    "equal_preference": ("P", "#17becf", 110),
    "accuracy_first": ("X", "#bcbd22", 110),
    "guarded_ild": ("v", "#ff7f0e", 90),
    "guarded_coverage": ("^", "#8c564b", 90),
    "guarded_novelty": ("<", "#9467bd", 90),
}

_OBJECTIVE_WORDS = {
    "ndcg": "accuracy (nDCG)",
    "recall": "accuracy (recall)",
    "precision": "accuracy (precision)",
    "ild": "intra-list diversity",
    "coverage": "catalogue coverage",
    "novelty": "novelty",
}


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


# ---------------------------------------------------------------------------- words
def _number(value: float) -> str:
    return f"{value:.3g}"


def _fusion_words(policy: Policy) -> str:
    active = {source: w for source, w in policy.weights.items() if w > 0}
    if set(active) == {"candidate"}:
        return "the candidate model's score alone"
    total = sum(active.values())
    shares = ", ".join(f"{source} {w / total:.0%}" for source, w in active.items())
    if policy.fusion == "product":
        return f"a weighted product of probabilities ({shares})"
    return f"a weighted sum of per-user normalised scores ({shares})"


def explain_policy(policy: Policy | Mapping[str, Any]) -> str:
    """A policy in words, for people who do not read ``Policy.describe()`` strings.

    For example ``"MMR (mean similarity, lambda 0.35): trades relevance for intra-list
    diversity"``. Only what affects the result is mentioned.
    """
    if not isinstance(policy, Policy):
        policy = Policy.from_dict(policy)
    default = Policy(k=policy.k)
    if policy == default:
        return f"the plain ranking: the top {policy.k} candidates by the candidate model's score"
    parts = [f"top {policy.k} by {_fusion_words(policy)}"]
    if policy.depth is not None:
        parts.append(f"chosen among the {policy.depth} best candidates only")
    if policy.novelty_boost:
        parts.append(
            f"novelty boost +{_number(policy.novelty_boost)}: lifts rarely seen items "
            "(self-information), trading accuracy for novelty"
        )
    if policy.long_tail_boost:
        parts.append(
            f"long-tail boost +{_number(policy.long_tail_boost)}: lifts items outside the "
            "popular head"
        )
    if policy.popularity_penalty:
        parts.append(
            f"popularity penalty -{_number(policy.popularity_penalty)}: pushes popular items down"
        )
    if policy.exposure_penalty:
        parts.append(
            f"exposure penalty -{_number(policy.exposure_penalty)}: items already placed in "
            "other users' lists are pushed down, spreading exposure over the catalogue"
        )
    if policy.reranker == "mmr":
        parts.append(
            f"MMR ({policy.mmr_similarity} similarity, lambda {_number(policy.mmr_lambda)}): "
            "trades relevance for intra-list diversity (lambda 1 = relevance only)"
        )
    elif policy.reranker == "dpp":
        parts.append(
            f"DPP (theta {_number(policy.dpp_theta)}): picks a relevant set of mutually "
            "dissimilar items (theta near 1 = relevance only)"
        )
    elif policy.reranker == "fair":
        parts.append(
            f"fair re-ranking: every prefix of the list holds at least "
            f"{policy.fair_min_share:.0%} items of group {policy.fair_group} (1 = long tail)"
        )
    if policy.order == "score" and policy.reranker != "none":
        parts.append("the chosen set is shown best score first, which keeps more accuracy")
    return "; ".join(parts)


# ---------------------------------------------------------------------------- records
def front_records(run: ParetoRun, space: str = "full") -> list[dict[str, Any]]:
    check = run.holdout[space]
    policies = run.front_policies(space)
    se = check.validation_ndcg_share_se
    return [
        {
            "policy": policy.to_dict(),
            "describe": policy.describe(),
            "explain": explain_policy(policy),
            "validation": dict(zip(run.objectives, check.validation[i].tolist(), strict=True)),
            "test": dict(zip(run.objectives, check.test[i].tolist(), strict=True)),
            # standard error of the validation nDCG share of the plain ranking (guarded picks)
            **({"validation_ndcg_share_se": float(se[i])} if se is not None else {}),
        }
        for i, policy in enumerate(policies)
    ]


@dataclass(frozen=True)
class OperatingPoint:
    """A marked point: picked on validation, drawn at its test values."""

    key: str
    label: str
    how: str
    policy: Policy
    validation: dict[str, float]
    test: dict[str, float]
    #: row in the full front, ``None`` for the plain ranking when it is not on the front
    index: int | None


def preference_weights(objectives: Sequence[str]) -> dict[str, dict[str, float]]:
    """The preference picks the report marks: equal weights, and accuracy first (3:1)."""
    picks = {"equal_preference": {name: 1.0 for name in objectives}}
    accuracy = next((o for o in ("ndcg", "recall", "precision") if o in objectives), None)
    if accuracy is not None and len(objectives) > 1:
        picks["accuracy_first"] = {name: 3.0 if name == accuracy else 1.0 for name in objectives}
    return picks


def operating_points(run: ParetoRun) -> list[OperatingPoint]:
    """The plain ranking, the accuracy-max policy, the knee, the preference picks and, where
    the run measured how sure validation is of each policy's nDCG share, the guarded floor
    picks (the summary's ``*_valsel_guarded`` policies).

    Computed here from the run's validation front rather than read from ``run.summary``, so
    the report does not depend on which headline keys the summary carries.
    """
    objectives = list(run.objectives)
    full = run.holdout["full"]
    policies = run.front_policies()
    points: list[OperatingPoint] = []

    def row(i: int) -> tuple[dict[str, float], dict[str, float]]:
        return (
            dict(zip(objectives, full.validation[i].tolist(), strict=True)),
            dict(zip(objectives, full.test[i].tolist(), strict=True)),
        )

    plain_test = dict(run.baseline_test)
    plain_validation = dict(getattr(run.searches.get("full"), "baseline", None) or {})
    if plain_test and all(o in plain_test for o in objectives):
        plain = Policy(k=policies[0].k if policies else run.config.objectives.k)
        index = next((i for i, p in enumerate(policies) if p == plain), None)
        points.append(
            OperatingPoint(
                "plain",
                "plain ranking",
                "the candidate model's own top-k, no fusion, boost or re-ranking",
                plain,
                plain_validation,
                {o: float(plain_test[o]) for o in objectives},
                index,
            )
        )
    if not policies:
        return points
    validation_front = ParetoFront(values=full.validation, directions=run.directions)
    accuracy = next((o for o in ("ndcg", "recall", "precision") if o in objectives), None)
    if accuracy is not None:
        i = int(np.argmax(full.validation[:, objectives.index(accuracy)]))
        points.append(
            OperatingPoint(
                "accuracy_max",
                "accuracy-max",
                f"the front policy with the best validation {accuracy}",
                policies[i],
                *row(i),
                i,
            )
        )
    i = validation_front.knee()
    points.append(
        OperatingPoint(
            "knee",
            "knee",
            "the point bulging furthest towards the ideal (validation, normalised)",
            policies[i],
            *row(i),
            i,
        )
    )
    for key, weights in preference_weights(objectives).items():
        i = validation_front.pick([weights[o] for o in objectives])
        shown = ", ".join(f"{o}={_number(w)}" for o, w in weights.items())
        points.append(
            OperatingPoint(
                key,
                key.replace("_", " "),
                f"weighted Chebyshev pick on validation with weights {shown}",
                policies[i],
                *row(i),
                i,
            )
        )
    if "ndcg" in objectives and plain_validation.get("ndcg"):
        for objective in (o for o, _, _ in HEADLINES if o in objectives):
            guarded = guarded_pick(
                full,
                objectives,
                run.directions,
                objective,
                float(plain_validation["ndcg"]),
                ANCHOR_SHARE,
            )
            if guarded is None:
                continue
            points.append(
                OperatingPoint(
                    f"guarded_{objective}",
                    f"guarded {objective}",
                    f"the best validation {objective} among policies whose validation nDCG "
                    f"share of the plain ranking's, less {GUARD_Z} standard errors, is at "
                    f"least {ANCHOR_SHARE:.0%}",
                    policies[guarded],
                    *row(guarded),
                    guarded,
                )
            )
    return _name_duplicates(points)


def _name_duplicates(points: list[OperatingPoint]) -> list[OperatingPoint]:
    """Label a point that is the same policy as an earlier one (its marker hides it)."""
    out: list[OperatingPoint] = []
    for point in points:
        same = next((p.label for p in out if p.policy == point.policy), None)
        if same is not None:
            point = replace(point, label=f"{point.label} (= {same.split(' (=')[0]})")
        out.append(point)
    return out


# ---------------------------------------------------------------------------- plots
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _projection_png(
    run: ParetoRun, x: int, y: int, points: Sequence[OperatingPoint], path: Path
) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.3), dpi=110)
    pair = [run.directions[x], run.directions[y]]
    for color, (name, check) in zip(COLORS, run.holdout.items(), strict=False):
        values = check.test[:, [x, y]]
        if not len(values):
            continue
        own = non_dominated_mask(values, pair)
        ax.scatter(
            values[~own, 0],
            values[~own, 1],
            s=10 if name != "full" else 16,
            color=color,
            alpha=0.3,
            linewidths=0,
        )
        subset = values[own][np.argsort(values[own, 0], kind="stable")]
        ax.plot(
            subset[:, 0],
            subset[:, 1],
            "-o",
            color=color,
            markersize=4 if name != "full" else 5,
            linewidth=1.2,
            label=f"{name}: {len(values)} pts, {int(own.sum())} non-dominated in 2-D",
        )
    names = run.objectives
    for point in points:
        marker, color, size = _MARKERS.get(point.key, ("o", "black", 60))
        ax.scatter(
            [point.test[names[x]]],
            [point.test[names[y]]],
            marker=marker,
            s=size,
            color=color,
            edgecolors="white",
            linewidths=0.8,
            zorder=5,
            label=point.label,
        )
    arrow = {"maximize": "↑ better", "minimize": "↓ better"}
    ax.set_xlabel(f"{names[x]} (test, {arrow.get(run.directions[x], run.directions[x])})")
    ax.set_ylabel(f"{names[y]} (test, {arrow.get(run.directions[y], run.directions[y])})")
    for objective, marker in (("ild", "^"), ("coverage", "v"), ("novelty", ">")):
        pick = run.summary.get(f"{objective}_valsel_pick")
        if pick and pick.get("test"):
            ax.scatter(
                [pick["test"][names[x]]],
                [pick["test"][names[y]]],
                marker=marker,
                s=60,
                facecolors="none",
                edgecolors="black",
                zorder=6,
                label=f"best {objective} on validation at 95% nDCG",
            )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="best")
    ax.set_title(f"{names[y]} vs {names[x]} (line: each front's 2-D non-dominated set)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _parallel_png(run: ParetoRun, points: Sequence[OperatingPoint], path: Path) -> None:
    """All objectives side by side, each axis min-max scaled over the front with up = better."""
    plt = _pyplot()
    values = run.holdout["full"].test
    names = list(run.objectives)
    m = len(names)
    extra = np.array([[p.test[o] for o in names] for p in points]).reshape(-1, m)
    everything = np.vstack([values, extra]) if len(values) else extra
    low, high = everything.min(axis=0), everything.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    minimize = np.array([d == "minimize" for d in run.directions])

    def scaled(rows: np.ndarray) -> np.ndarray:
        out = (rows - low) / span
        return np.where(minimize, 1.0 - out, out)

    fig, ax = plt.subplots(figsize=(max(5.6, 1.7 * m), 4.3), dpi=110)
    xs = np.arange(m)
    for line in scaled(values):
        ax.plot(xs, line, color="#1f77b4", alpha=0.25, linewidth=0.9)
    for point in points:
        marker, color, _ = _MARKERS.get(point.key, ("o", "black", 60))
        line = scaled(np.array([[point.test[o] for o in names]]))[0]
        ax.plot(xs, line, marker=marker, color=color, linewidth=2.0, label=point.label)
    for j in range(m):
        ax.axvline(j, color="#999999", linewidth=0.8)
        top, bottom = (low[j], high[j]) if minimize[j] else (high[j], low[j])
        ax.annotate(_tick(top), (j, 1.0), xytext=(0, 6), textcoords="offset points",
                    ha="center", fontsize=7)  # fmt: skip
        ax.annotate(_tick(bottom), (j, 0.0), xytext=(0, -12), textcoords="offset points",
                    ha="center", fontsize=7)  # fmt: skip
    ax.set_xticks(xs, [f"{n}\n({'↓' if minimize[j] else '↑'})" for j, n in enumerate(names)])
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.12)
    ax.set_title(
        "Parallel coordinates (test; each axis scaled to the front, up = better)", fontsize=9
    )
    ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _tick(value: float) -> str:
    return "0" if abs(value) < 1e-12 else f"{value:.4g}"


# ---------------------------------------------------------------------------- page
def _validation_gap_note(run: ParetoRun) -> str:
    """Why validation nDCG sits below test nDCG, with this run's split fractions."""
    accuracy = next((o for o in ("ndcg", "recall", "precision") if o in run.objectives), None)
    if accuracy is None or not len(run.holdout["full"].test):
        return ""
    column = run.objectives.index(accuracy)
    full = run.holdout["full"]
    mean_val = float(full.validation[:, column].mean())
    mean_test = float(full.test[:, column].mean())
    data = run.config.data
    test_share = 1.0 - data.ratio
    valid_share = data.ratio * (1.0 - data.validation_ratio)
    train_valid = data.ratio * data.validation_ratio
    return (
        f"<p><b>Why validation {accuracy} is lower than test {accuracy}</b> (front means: "
        f"validation {mean_val:.4f}, test {mean_test:.4f}). Test holds {test_share:.0%} of "
        f"each user's interactions; validation is carved from the training part and holds "
        f"{valid_share:.0%}, so a user has about {valid_share / test_share:.2f}x as many "
        f"held-out items on validation. With fewer relevant items, fewer of the k slots can "
        f"hit one, so nDCG@k (and recall/precision) are lower for the same ranking quality. "
        f"The validation models are also fitted on {train_valid:.0%} of the interactions "
        f"instead of {data.ratio:.0%}. The level shifts, the ordering of policies is what "
        f"validation is for (Spearman of validation vs test nDCG over the front: "
        f"{_fmt(full.spearman_ndcg)}).</p>"
    )


def _table(rows: Sequence[Sequence[str]], head: Sequence[str]) -> str:
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _values(values: Mapping[str, float], objectives: Sequence[str]) -> list[str]:
    return [f"{values[o]:.4f}" if o in values else "" for o in objectives]


def _summary_items(summary: Mapping[str, Any]) -> str:
    """Every summary key, whatever the pipeline's version writes (nested dicts inline)."""
    items = "".join(
        f"<li><code>{html.escape(str(k))}</code>: {html.escape(_fmt(v))}</li>"
        for k, v in summary.items()
    )
    if any(str(k).endswith("_valsel") for k in summary):
        items += (
            "<li><small>Keys ending in <code>_valsel</code>: the policy was selected on "
            "validation and the figure measured on test.</small></li>"
        )
    return items


def write_pareto_report(run: ParetoRun, directory: str | Path) -> Path:
    """Write front.json, front_<y>_vs_<x>.png per objective pair, parallel.png, report.html."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    records = front_records(run)
    points = operating_points(run)
    marked = [
        {
            "key": p.key,
            "label": p.label,
            "how": p.how,
            "policy": p.policy.to_dict(),
            "describe": p.policy.describe(),
            "explain": explain_policy(p.policy),
            "validation": p.validation,
            "test": p.test,
            "front_index": p.index,
        }
        for p in points
    ]
    payload = {
        "objectives": list(run.objectives),
        "directions": run.directions,
        "summary": run.summary,
        "features": run.features,
        "operating_points": marked,
        "front": records,
        "compared": {name: front_records(run, name) for name in run.holdout if name != "full"},
        "config": run.config.model_dump(mode="json"),
    }
    (out / "front.json").write_text(json.dumps(_json_safe(payload), indent=2) + "\n")
    images = []
    for x, y in itertools.combinations(range(len(run.objectives)), 2):
        name = f"front_{run.objectives[y]}_vs_{run.objectives[x]}.png"
        _projection_png(run, x, y, points, out / name)
        images.append(name)
    parallel = "parallel.png"
    _parallel_png(run, points, out / parallel)

    objectives = list(run.objectives)
    value_head = [f"{html.escape(o)} ({t})" for o in objectives for t in ("val", "test")]

    def both(validation: Mapping[str, float], test: Mapping[str, float]) -> list[str]:
        return [c for pair in zip(_values(validation, objectives), _values(test, objectives),
                                  strict=True) for c in pair]  # fmt: skip

    front_rows = [
        [html.escape(r["describe"]), html.escape(r["explain"]), *both(r["validation"], r["test"])]
        for r in sorted(records, key=lambda r: -r["test"].get(objectives[0], 0.0))
    ]
    point_rows = [
        [
            f"<b>{html.escape(p.label)}</b><br><small>{html.escape(p.how)}</small>",
            html.escape(p.policy.describe()),
            html.escape(explain_policy(p.policy)),
            *both(p.validation, p.test),
        ]
        for p in points
    ]

    def embed(name: str) -> str:
        data = base64.b64encode((out / name).read_bytes()).decode()
        source = f"data:image/png;base64,{data}"
        return f'<figure><img alt="{html.escape(name)}" src="{source}"/></figure>'

    pairs = zip(run.objectives, run.directions, strict=True)
    objective_list = ", ".join(
        f"{_OBJECTIVE_WORDS.get(name, name)} ({direction})" for name, direction in pairs
    )
    n_objectives = len(objectives)
    projection_note = (
        f"<p>The front is non-dominated in all {n_objectives} objectives together. Drawn in "
        "two of them, many of its points look dominated: they are better in an objective "
        "this plot does not show. Faded dots are such points; the line joins each front's "
        "own 2-D non-dominated subset for the pair shown. Markers: the plain ranking "
        "(square), the accuracy-max policy (star), the knee (diamond) and the preference "
        "picks (plus: equal weights; cross: accuracy weighted 3:1) and, where the run "
        "measured them, the guarded floor picks (triangles: ILD down, coverage up, novelty "
        "left), all chosen on validation and drawn at their test values.</p>"
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paretorec: {html.escape(run.config.name)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1400px}}
table{{border-collapse:collapse;font-size:.8rem}}
td,th{{border:1px solid #ccc;padding:.2rem .45rem;text-align:right;vertical-align:top}}
td:nth-child(-n+3){{text-align:left}} figure{{display:inline-block;margin:.4rem}}
small{{color:#555}}
</style></head><body>
<h1>Pareto front: {html.escape(run.config.name)}</h1>
<p>Policies searched on validation (carved from training), re-evaluated on test.
Objectives: {html.escape(objective_list)}.</p>
{_validation_gap_note(run)}
<h2>Operating points (picked on validation)</h2>
{_table(point_rows, ["point", "policy", "in words", *value_head])}
{_features_html(run)}
<h2>Summary</h2>
<p>Every policy below was chosen on validation; its figures are measured on test.
<code>*_valsel</code>: for each of ILD, coverage and novelty, the policy with the best
validation value among those keeping 95% of the plain candidate ranking's validation nDCG,
on test, relative to the plain ranking's test value (<code>*_vs_top_ndcg</code>: the same
against the search's top-nDCG policy).</p>
<ul>{_summary_items({k: v for k, v in run.summary.items() if not k.endswith("_test_oracle")})}</ul>
<p>Test oracle (filtered and picked on test, each objective possibly a different policy:
an optimistic bound, not a result):</p>
<ul>{_summary_items({k: v for k, v in run.summary.items() if k.endswith("_test_oracle")})}</ul>
<h2>All objectives at once</h2><div>{embed(parallel)}</div>
<h2>Projections (test; compared fronts overlaid)</h2>{projection_note}
<div>{"".join(embed(n) for n in images)}</div>
<h2>Front ({len(records)} policies)</h2>
{_table(front_rows, ["policy", "in words", *value_head])}
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
