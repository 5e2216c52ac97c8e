"""``--format json``: ``{"findings": [{"rule", "severity", "path", "line", "message"}, ...], ...}``."""

from __future__ import annotations

import json

from pipeline.findings import Report
from pipeline.formatters.base import Formatter


class JsonFormatter(Formatter):
    """The report as JSON: ``findings`` (each with ``rule``, ``severity``, ``path``, ``line``, ``message`` and
    ``state_id`` when known), ``waived``, ``summary``, ``stats``, ``notes``, ``security_review_required``."""

    name = "json"
    suffix = ".json"

    def format(self, report: Report) -> str:
        return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


FORMATTERS = [JsonFormatter]
