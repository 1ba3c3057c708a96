"""`prox report OUT`: a static, self-contained HTML page of a refine (or baseline) run — the numbers, plots
of what was removed, and every sampled document before and after."""

from proxkit.report.build import build_report

__all__ = ["build_report"]
