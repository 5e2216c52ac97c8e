"""``--format codequality``: GitLab Code Quality report (``artifacts:reports:codequality``).

GitLab matches issues between the source and target branch by ``fingerprint``; a fingerprint that moved with
the line number would show every finding below an edit as fixed-and-new. Fingerprints here come from
:func:`pipeline.findings.unique_fingerprints`: rule, path, state id and the finding's key, never a line.
"""

from __future__ import annotations

import json

from pipeline.findings import Report, Severity, unique_fingerprints
from pipeline.formatters.base import Formatter

#: GitLab's severities are info, minor, major, critical, blocker.
SEVERITY_MAP = {Severity.ERROR: "critical", Severity.WARNING: "minor", Severity.INFO: "info"}


class CodeQualityFormatter(Formatter):
    """A JSON list of Code Quality issues (``description``, ``check_name``, ``fingerprint``, ``severity``,
    ``location.path``, ``location.lines.begin``)."""

    name = "codequality"
    suffix = ".json"

    def format(self, report: Report) -> str:
        issues = []
        for finding, fingerprint in unique_fingerprints(report.findings):
            state = f" [state {finding.state_id}]" if finding.state_id else ""
            issues.append(
                {
                    "type": "issue",
                    "check_name": finding.rule,
                    "description": f"{finding.rule}{state}: {finding.message}",
                    "categories": ["Security"] if finding.severity is Severity.ERROR else ["Style"],
                    "fingerprint": fingerprint,
                    "severity": SEVERITY_MAP[finding.severity],
                    "location": {"path": finding.path, "lines": {"begin": finding.line}},
                }
            )
        return json.dumps(issues, indent=2) + "\n"


FORMATTERS = [CodeQualityFormatter]
