"""report stage: one self-contained report.html, report.md and results.json per study.

``build_report(study_dir)`` reads a study folder and writes the three files into it;
``compute_results`` / ``write_outputs`` do the same from plain rows (see ``build.py``).
"""

from taskdistill.report.build import build_report, compute_results, write_outputs

__all__ = ["build_report", "compute_results", "write_outputs"]
