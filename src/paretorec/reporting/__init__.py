"""Reports: plots and a self-contained HTML page."""

from ._pareto_report import write_pareto_report
from ._report import write_baseline_report

__all__ = ["write_baseline_report", "write_pareto_report"]
