"""report stage: one self-contained report.html, report.md and results.json per study.

``build_report(study_dir)`` reads a study folder and writes the three files into it;
``compute_results`` / ``write_outputs`` do the same from plain rows (see ``build.py``).
"""

from taskdistill.lazy import exports

_NAMES = {"build_report": "build", "compute_results": "build", "write_outputs": "build"}
__all__ = list(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
