"""A small self-contained HTML page for the simulated A/B test and bandit run."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_simulation_report(
    summary: Mapping[str, Any], figure: str | Path, directory: str | Path
) -> Path:
    """Write ``directory/online.html``: the headline figures and the reward plot (embedded)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    image = base64.b64encode(Path(figure).read_bytes()).decode("ascii")
    a, b, lift = summary["a_reward"], summary["b_reward"], summary["lift"]
    lines = [
        f"A ({html.escape(str(summary['arm_a']))}): {a['mean']:.4f} "
        f"[{a['lower']:.4f}, {a['upper']:.4f}], true {a['true']:.4f}",
        f"B ({html.escape(str(summary['arm_b']))}): {b['mean']:.4f} "
        f"[{b['lower']:.4f}, {b['upper']:.4f}], true {b['true']:.4f}",
        f"lift B - A: {lift['mean']:+.4f} [{lift['lower']:+.4f}, {lift['upper']:+.4f}], "
        f"true {lift['true']:+.4f}",
        "OPE of B from A's logs: "
        + ", ".join(f"{k} {v:.4f}" for k, v in summary["ope_b_from_a_logs"].items()),
        f"bandit: mean reward {summary['bandit_mean_reward']:.4f}, regret / random's "
        f"{summary['bandit_regret_vs_random']:.3f}, lift vs best fixed point "
        f"{summary['bandit_reward_lift_vs_best_fixed_point']:+.1%}",
        "best point per segment: " + html.escape(json.dumps(summary["best_point_per_segment"])),
    ]
    items = "".join(f"<li>{line}</li>" for line in lines)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>paretorec: online</title>"
        "</head><body style='font-family: sans-serif; max-width: 760px'>"
        f"<h1>Simulated A/B test and bandit ({summary['n_rounds']:,} rounds)</h1>"
        f"<ul>{items}</ul><img alt='reward over rounds per arm' "
        f"src='data:image/png;base64,{image}'></body></html>"
    )
    path = target / "online.html"
    path.write_text(page)
    return path
