"""report stage: one self-contained report.html, report.md and results.json per study."""

from __future__ import annotations


def write_report(study_dir, out_html=None, **options):
    """See :func:`taskdistill.report.build.write_report`."""
    from taskdistill.report.build import write_report as impl

    return impl(study_dir, out_html, **options)


def build_report(study_dir, out_dir=None, study=None, **options):
    """See :func:`taskdistill.report.build.build_report`."""
    from taskdistill.report.build import build_report as impl

    return impl(study_dir, out_dir, study, **options)
