"""``--format junit``: JUnit XML, one test case per checked file, a failure per error finding.

GitLab shows JUnit reports in the MR's test widget. A file with no error-severity finding is a passing test
case (its warnings and info go to ``system-out``); a finding on a file that was not in ``checked`` (a waiver
in the policy file, say) still gets its own test case, so nothing is dropped. The render coverage, when the
report has one, is the suite's ``properties`` (``coverage.<minion>.rendered``/``.text``, ``coverage.never_rendered``,
``coverage.unrendered_branches``) and its ``system-out`` (the text formatter's coverage block): a gap in
coverage is not a failing test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pipeline.findings import Coverage, Finding, Report, Severity, group_by_path
from pipeline.formatters.base import Formatter
from pipeline.formatters.text import coverage_lines


class JUnitFormatter(Formatter):
    """``<testsuites><testsuite name=tool><testcase classname=tool name=path>`` with ``<failure>`` children."""

    name = "junit"
    suffix = ".xml"

    def format(self, report: Report) -> str:
        grouped = group_by_path(report.findings)
        paths = sorted(set(report.checked) | set(grouped))
        suites = ET.Element("testsuites", name=report.tool)
        failures = sum(1 for p in paths if any(f.severity is Severity.ERROR for f in grouped.get(p, ())))
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=report.tool,
            tests=str(len(paths)),
            failures=str(failures),
            errors="0",
            skipped="0",
        )
        if report.coverage is not None:
            _coverage_properties(suite, report.coverage)
        for path in paths:
            case = ET.SubElement(suite, "testcase", classname=report.tool, name=path, file=path)
            findings = grouped.get(path, [])
            errors = [f for f in findings if f.severity is Severity.ERROR]
            if errors:
                failure = ET.SubElement(
                    case,
                    "failure",
                    type=errors[0].rule,
                    message=f"{len(errors)} error(s): " + "; ".join(f"{f.rule} line {f.line}" for f in errors),
                )
                failure.text = "\n".join(_line(f) for f in errors)
            others = [f for f in findings if f.severity is not Severity.ERROR]
            if others:
                ET.SubElement(case, "system-out").text = "\n".join(_line(f) for f in others)
        if report.coverage is not None:  # after the test cases, as the JUnit schema orders a suite's children
            ET.SubElement(suite, "system-out").text = "\n".join(coverage_lines(report.coverage)).rstrip("\n")
        ET.indent(suites)
        return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _coverage_properties(suite: ET.Element, coverage: Coverage) -> None:
    properties = ET.SubElement(suite, "properties")
    values = [("coverage.sls", coverage.sls)]
    for m in coverage.minions:
        values += [(f"coverage.{m.minion}.rendered", m.rendered), (f"coverage.{m.minion}.text", m.text)]
    values += [("coverage.never_rendered", len(coverage.never_rendered)), ("coverage.unrendered_branches", len(coverage.unrendered_branches))]
    for name, value in values:
        ET.SubElement(properties, "property", name=name, value=str(value))


def _line(f: Finding) -> str:
    state = f" [state {f.state_id}]" if f.state_id else ""
    return f"{f.path}:{f.line}: {f.severity.value} {f.rule}{state}: {f.message}"


FORMATTERS = [JUnitFormatter]
