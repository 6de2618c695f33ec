"""Reports: plots and a self-contained HTML page."""

from ._report import write_baseline_report

__all__ = ["write_baseline_report"]
