"""``--format text``: findings grouped by file, for people (the default)."""

from __future__ import annotations

from pipeline.findings import Report, group_by_path
from pipeline.formatters.base import Formatter


class TextFormatter(Formatter):
    """One block per file, one line per finding: ``  12  error    no-cmd-module  [state x] message``."""

    name = "text"
    suffix = ".txt"

    def format(self, report: Report) -> str:
        lines: list[str] = []
        for path, findings in group_by_path(report.findings).items():
            lines.append(path)
            width = max(len(str(f.line)) for f in findings)
            for f in findings:
                state = f" [state {f.state_id}]" if f.state_id else ""
                lines.append(f"  {f.line:>{width}}  {f.severity.value:<7}  {f.rule}{state}  {f.message}")
            lines.append("")
        if report.waived:
            lines.append("waived (policy waivers):")
            for w in report.waived:
                f = w.finding
                lines.append(
                    f"  {f.path}:{f.line}  {f.rule}  owner {w.owner}, expires {w.expires}: {w.justification}"
                )
            lines.append("")
        for note in report.notes:
            lines.append(f"note: {note}")
        if report.security_review_required:
            lines.append("security review required: this change touches the policy or its waivers")
        verdict = "passed" if report.ok else "FAILED"
        lines.append(f"{report.tool}: {verdict}: {report.summary()}")
        return "\n".join(lines) + "\n"


FORMATTERS = [TextFormatter]
