"""Reports of a rollout: JSON (:mod:`.document`) and a self-contained HTML page (:mod:`.html`).

Both are built from the rollout's plan and journal only, so ``saltpipe rollout status`` can rebuild them for any
rollout in the state directory, finished or not.
"""

from pipeline.rollout.report.document import REPORT_SCHEMA, build_report, release_commits, write_json
from pipeline.rollout.report.html import render_html, sibling_reports

__all__ = ["REPORT_SCHEMA", "build_report", "release_commits", "render_html", "sibling_reports", "write_json"]
