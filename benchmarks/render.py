"""Regenerate BENCHMARKS.md from benchmarks/results/*.json."""

from __future__ import annotations

from pathlib import Path

from paretorec.benchmarks._render import render_markdown

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    (ROOT / "BENCHMARKS.md").write_text(render_markdown(ROOT / "benchmarks" / "results"))
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")
