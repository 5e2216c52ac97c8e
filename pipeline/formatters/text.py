"""``--format text``: findings grouped by file, for people (the default)."""

from __future__ import annotations

from pipeline.findings import Coverage, Report, group_by_path, plural
from pipeline.formatters.base import Formatter

#: Paths and branches listed per coverage list; the rest is counted ("… and 12 more"). JSON lists them all.
MAX_COVERAGE_ITEMS = 10


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
        if report.coverage is not None:
            lines += coverage_lines(report.coverage)
        for note in report.notes:
            lines.append(f"note: {note}")
        if report.security_review_required:
            lines.append("security review required: this change touches the policy or its waivers")
        verdict = "passed" if report.ok else "FAILED"
        lines.append(f"{report.tool}: {verdict}: {report.summary()}")
        return "\n".join(lines) + "\n"


def _bounded(items: list[str], limit: int) -> list[str]:
    shown = [f"    {item}" for item in items[:limit]]
    if len(items) > limit:
        shown.append(f"    … and {len(items) - limit} more (--format json lists them all)")
    return shown


def coverage_lines(coverage: Coverage, limit: int = MAX_COVERAGE_ITEMS) -> list[str]:
    """The coverage block: SLS rendered and read as text per fixture minion, the SLS no minion rendered and
    the Jinja branches no render reached (at most ``limit`` of each, then a count), then a blank line."""
    lines = [f"coverage: {coverage.sls} SLS, rendered for {plural(len(coverage.minions), 'fixture minion')}"]
    width = max((len(m.minion) for m in coverage.minions), default=0)
    for m in coverage.minions:
        limited = f", {m.limited} stopped by a render limit" if m.limited else ""
        lines.append(f"  {m.minion:<{width}}  {m.rendered} rendered, {m.text} not rendered (checked from text){limited}")
    never = list(coverage.never_rendered)
    lines.append(f"  never rendered by any fixture minion: {plural(len(never), 'file') if never else 'none'}")
    lines += _bounded(never, limit)
    branches = [f"{b.where} ({b.kind})" for b in coverage.unrendered_branches]
    lines.append(f"  Jinja branches no fixture minion rendered (checked from their text): {len(branches) or 'none'}")
    lines += _bounded(branches, limit)
    if coverage.unmapped:
        lines.append(f"  branches not mapped (whole text checked): {', '.join(coverage.unmapped[:limit])}"
                     + (f" … and {len(coverage.unmapped) - limit} more" if len(coverage.unmapped) > limit else ""))
    lines.append("")
    return lines


FORMATTERS = [TextFormatter]
