"""Reports of a rollout: JSON (:mod:`.rollout`) and a self-contained HTML page (:mod:`.html`).

Both are built from the rollout's plan and journal only, so ``saltpipe rollout status`` can rebuild them for any
rollout in the state directory, finished or not.
"""

from pipeline.report.html import render_html, sibling_reports
from pipeline.report.rollout import REPORT_SCHEMA, build_report, release_commits, write_json

__all__ = ["REPORT_SCHEMA", "build_report", "release_commits", "render_html", "sibling_reports", "write_json"]
