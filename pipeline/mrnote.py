"""One saltpipe note per merge request: lint and policy findings, test results, impact analysis.

Three parts, kept apart:

* reading the inputs - the JSON of ``saltpipe lint --format json`` (``{"findings": [...]}``), JUnit XML
  files, and the JSON of ``saltpipe impact`` (contract: :class:`ImpactReport`, docs/review.md) - into a
  frozen :class:`MrReport` (:func:`build_report`); bad input raises :class:`~pipeline.errors.UsageError`
  naming the file (and line, where the format has lines);
* rendering it as GitLab-flavoured markdown (:func:`render_markdown`), which starts with :data:`MARKER`;
* publishing (:func:`publish_note`): the note written by the token's user that carries the marker is found
  again and edited in place; a note is created only when there is none. Running it twice changes nothing.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import UsageError
from pipeline.findings import line_span, plural
from pipeline.gitlab.client import GitLabClient
from pipeline.impact import in_role_order

#: Hidden first line of the note; how saltpipe finds its own note again. Never change it: old notes would
#: be orphaned and a second note created.
MARKER = "<!-- saltpipe:mr-note -->"

#: Table rows shown per section; the rest is counted ("and 12 more") - a note is read, not searched.
MAX_FINDINGS = 50
MAX_TEST_FAILURES = 20
MAX_IMPACT_STATES = 50
MAX_COVERAGE_ITEMS = 20

_BLOCKING = ("blocker", "critical", "error", "high", "major", "very_high")
_WARNING = ("warning", "medium", "minor", "low")


# --------------------------------------------------------------------------------------------------------------
# Inputs


class _Input(BaseModel):
    # Unknown keys are ignored: the producers (lint, impact) may add fields without breaking the note.
    model_config = ConfigDict(extra="ignore", frozen=True)


class LintFinding(_Input):
    """One finding as ``saltpipe lint --format json`` writes it (decoupled from :mod:`pipeline.findings`)."""

    rule: str
    severity: str
    path: str
    line: int | None = None
    message: str


class CoverageMinion(_Input):
    """One fixture minion's renders in the ``coverage`` of ``saltpipe lint --format json``."""

    minion: str
    rendered: int
    text: int
    limited: int = 0


class CoverageBranch(_Input):
    """A Jinja branch no fixture minion rendered."""

    path: str
    line: int
    end_line: int | None = None
    kind: str = ""

    @property
    def where(self) -> str:
        return line_span(self.path, self.line, self.end_line)


class LintCoverage(_Input):
    """The ``coverage`` of ``saltpipe lint --format json``: what the fixture renders covered (docs/lint.md)."""

    sls: int
    minions: tuple[CoverageMinion, ...] = ()
    never_rendered: tuple[str, ...] = ()
    unrendered_branches: tuple[CoverageBranch, ...] = ()


class _FindingsFile(_Input):
    findings: tuple[LintFinding, ...]
    waived: tuple[dict[str, Any], ...] = ()  # findings a policy waiver covers: counted, not listed
    coverage: LintCoverage | None = None


class ImpactState(_Input):
    """One state ID of the impact analysis: the sampled minions on which it would change or fail."""

    id: str = Field(description="the state ID")
    function: str | None = Field(default=None, description="e.g. file.managed")
    sls: str | None = None
    changed: tuple[str, ...] = Field(default=(), description="minions where test=True reports changes")
    failed: tuple[str, ...] = Field(default=(), description="minions where the state would fail")
    comment: str | None = Field(default=None, description="a failure comment, for the note")


class ImpactReport(_Input):
    """The JSON ``saltpipe impact ENV`` writes: a ``state.apply test=True`` of the release saltenv on a sample
    of minions per role, aggregated per state ID. ``sampled`` maps role -> minion ids; minions that did not
    answer are listed in ``missing``."""

    environment: str
    saltenv: str | None = None
    sha: str | None = None
    sampled: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    missing: tuple[str, ...] = ()
    states: tuple[ImpactState, ...] = ()

    @property
    def minions(self) -> tuple[str, ...]:
        """Every sampled minion once, in role order."""
        return in_role_order(self.sampled)


@dataclass(frozen=True)
class TestCaseFailure:
    """A failed or erroring test case."""

    __test__ = False  # not a pytest class

    name: str
    kind: Literal["failure", "error"]
    message: str


@dataclass(frozen=True)
class TestSummary:
    """The counts of one JUnit XML file, taken from its test cases (not its possibly stale attributes)."""

    __test__ = False

    source: str
    total: int
    failures: int
    errors: int
    skipped: int
    failed_cases: tuple[TestCaseFailure, ...]

    @property
    def passed(self) -> int:
        """Cases that neither failed, erred nor were skipped."""
        return self.total - self.failures - self.errors - self.skipped


@dataclass(frozen=True)
class MrReport:
    """Everything one note shows. ``findings`` is ``None`` when no lint JSON was given (section omitted);
    ``coverage`` holds the render coverage of each lint JSON that has one."""

    head_sha: str | None
    pipeline_url: str | None
    findings: tuple[LintFinding, ...] | None
    tests: tuple[TestSummary, ...]
    impact: ImpactReport | None
    waived: int = 0
    coverage: tuple[LintCoverage, ...] = ()


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"{path}: {what} not found", hint="check the path, and that the job producing it ran"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc}") from None


def _json(path: Path, what: str) -> Any:
    text = _read(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: {what} is not valid JSON: {exc.msg} (column {exc.colno})") from None


def _validation_error(path: Path, what: str, exc: ValidationError) -> UsageError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return UsageError(f"{path}: {what}: {loc}: {first['msg']}{more}", hint=f"see docs/review.md for the {what} format")


def load_findings(path: Path) -> tuple[tuple[LintFinding, ...], int, LintCoverage | None]:
    """Findings from a ``saltpipe lint --format json`` file, how many findings waivers cover, and its render
    coverage (None when the file has none)."""
    data = _json(path, "lint JSON")
    try:
        parsed = _FindingsFile.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, "lint JSON", exc) from None
    return parsed.findings, len(parsed.waived), parsed.coverage


def load_impact(path: Path) -> ImpactReport:
    """The impact analysis from a ``saltpipe impact`` JSON file."""
    data = _json(path, "impact JSON")
    try:
        return ImpactReport.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, "impact JSON", exc) from None


def load_junit(path: Path) -> TestSummary:
    """Counts and failed cases of a JUnit XML file (``<testsuites>`` or a single ``<testsuite>``)."""
    text = _read(path, "JUnit XML")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        raise UsageError(f"{path}:{line}: JUnit XML is not well-formed (column {column})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise UsageError(f"{path}:1: JUnit XML must have <testsuites> or <testsuite> at the top, not <{root.tag}>")
    total = failures = errors = skipped = 0
    failed: list[TestCaseFailure] = []
    for case in root.iter("testcase"):
        total += 1
        name = ".".join(p for p in (case.get("classname"), case.get("name")) if p) or "(unnamed)"
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                message = node.get("message") or ""
                if not message and node.text and node.text.strip():
                    message = node.text.strip().splitlines()[0]
                failed.append(TestCaseFailure(name=name, kind=kind, message=message[:300]))  # type: ignore[arg-type]
                if kind == "failure":
                    failures += 1
                else:
                    errors += 1
                break
        else:
            if case.find("skipped") is not None:
                skipped += 1
    return TestSummary(
        source=path.name, total=total, failures=failures, errors=errors, skipped=skipped, failed_cases=tuple(failed)
    )


def build_report(
    *,
    lint_json: tuple[Path, ...] = (),
    junit: tuple[Path, ...] = (),
    impact_json: Path | None = None,
    head_sha: str | None = None,
    pipeline_url: str | None = None,
) -> MrReport:
    """Read every input into one :class:`MrReport`. Findings of several lint files are merged, duplicates once."""
    findings: tuple[LintFinding, ...] | None = None
    waived = 0
    coverage: list[LintCoverage] = []
    if lint_json:
        merged: dict[LintFinding, None] = {}
        for path in lint_json:
            found, covered, rendered = load_findings(path)
            merged.update(dict.fromkeys(found))
            waived += covered
            if rendered is not None:
                coverage.append(rendered)
        findings = tuple(merged)
    return MrReport(
        head_sha=head_sha,
        pipeline_url=pipeline_url,
        findings=findings,
        tests=tuple(load_junit(p) for p in junit),
        impact=load_impact(impact_json) if impact_json is not None else None,
        waived=waived,
        coverage=tuple(coverage),
    )


# --------------------------------------------------------------------------------------------------------------
# Markdown


def _cell(text: object) -> str:
    """Text safe inside a markdown table cell: no pipes, no newlines, no HTML (so no fake marker either)."""
    out = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _code(text: object) -> str:
    return f"`{str(text).replace('`', chr(39))}`"


def _rank(severity: str) -> int:
    s = severity.lower()
    return 0 if s in _BLOCKING else 1 if s in _WARNING else 2


def _findings_summary(findings: tuple[LintFinding, ...], waived: int) -> tuple[str, str]:
    icon, text = _findings_counts(findings)
    return icon, text + (f" ({waived} waived)" if waived else "")


def _findings_counts(findings: tuple[LintFinding, ...]) -> tuple[str, str]:
    if not findings:
        return "✅", "no findings"
    counts: dict[str, int] = {}
    for f in sorted(findings, key=lambda f: (_rank(f.severity), f.severity)):
        counts[f.severity.lower()] = counts.get(f.severity.lower(), 0) + 1
    icon = "❌" if any(_rank(s) == 0 for s in counts) else "⚠️"
    return icon, ", ".join(f"{n} {s}" for s, n in counts.items())


def _tests_summary(tests: tuple[TestSummary, ...]) -> tuple[str, str]:
    total = sum(t.total for t in tests)
    bad = sum(t.failures + t.errors for t in tests)
    skipped = sum(t.skipped for t in tests)
    passed = sum(t.passed for t in tests)
    text = f"{passed} passed, {bad} failed, {skipped} skipped of {total}"
    if total == 0:
        return "⚠️", "no test cases found"
    return ("❌" if bad else "✅"), text


def _impact_summary(impact: ImpactReport) -> tuple[str, str]:
    minions = impact.minions
    changing = [s for s in impact.states if s.changed]
    failing = [s for s in impact.states if s.failed]
    text = (
        f"{plural(len(changing), 'state')} would change, {len(failing)} would fail, "
        f"on {plural(len(minions), 'sampled minion')}"
    )
    if impact.missing:
        text += f"; {len(impact.missing)} did not answer"
    icon = "❌" if failing or impact.missing else ("🔶" if changing else "✅")
    return icon, text


def _coverage_summary(coverage: LintCoverage) -> tuple[str, str]:
    renders = sum(m.rendered for m in coverage.minions)
    text = (
        f"{renders} of {coverage.sls * len(coverage.minions)} renders ({coverage.sls} SLS × {plural(len(coverage.minions), 'fixture minion')}); "
        f"{plural(len(coverage.never_rendered), 'file')} and {len(coverage.unrendered_branches)} Jinja "
        f"branch{'' if len(coverage.unrendered_branches) == 1 else 'es'} never rendered"
    )
    return ("✅" if not coverage.never_rendered and not coverage.unrendered_branches else "🔶"), text


def _coverage_section(coverage: LintCoverage) -> list[str]:
    lines = ["", "#### Render coverage", "", "| Fixture minion | Rendered | Not rendered (checked from text) |", "|---|---|---|"]
    for m in coverage.minions:
        lines.append(f"| {_code(_cell(m.minion))} | {m.rendered} | {m.text + m.limited} |")
    for title, items in (
        ("never rendered by any fixture minion", [_code(_cell(p)) for p in coverage.never_rendered]),
        ("Jinja branches no fixture minion rendered", [f"{_code(_cell(b.where))} ({_cell(b.kind)})" for b in coverage.unrendered_branches]),
    ):
        if not items:
            continue
        lines += ["", f"<details><summary>{title}: {len(items)}</summary>", ""]
        lines += [f"- {item}" for item in items[:MAX_COVERAGE_ITEMS]]
        if len(items) > MAX_COVERAGE_ITEMS:
            lines.append(f"- …and {len(items) - MAX_COVERAGE_ITEMS} more; see the lint job's JSON report")
        lines += ["", "</details>"]
    return lines


def render_markdown(report: MrReport) -> str:
    """The note's body: :data:`MARKER` first, a summary table, then one section per input."""
    lines = [MARKER, f"### saltpipe report{' for ' + _code(report.head_sha[:12]) if report.head_sha else ''}", ""]
    rows: list[tuple[str, str, str]] = []
    if report.findings is not None:
        rows.append(("Lint and policy", *_findings_summary(report.findings, report.waived)))
    for coverage in report.coverage:
        rows.append(("Render coverage", *_coverage_summary(coverage)))
    if report.tests:
        rows.append(("Tests", *_tests_summary(report.tests)))
    if report.impact is not None:
        rows.append((f"Impact on {_cell(report.impact.environment)}", *_impact_summary(report.impact)))
    if rows:
        lines += ["| Check | | Result |", "|---|---|---|"]
        lines += [f"| {name} | {icon} | {text} |" for name, icon, text in rows]
    else:
        lines.append("_No inputs were given to this report._")

    if report.findings:
        ordered = sorted(report.findings, key=lambda f: (_rank(f.severity), f.path, f.line or 0, f.rule))
        lines += ["", f"#### Lint and policy: {plural(len(ordered), 'finding')}", ""]
        lines += ["| Severity | Rule | Where | Message |", "|---|---|---|---|"]
        for f in ordered[:MAX_FINDINGS]:
            where = f"{f.path}:{f.line}" if f.line else f.path
            cells = (_cell(f.severity), _code(_cell(f.rule)), _code(_cell(where)), _cell(f.message))
            lines.append("| " + " | ".join(cells) + " |")
        if len(ordered) > MAX_FINDINGS:
            lines.append(f"\n_…and {len(ordered) - MAX_FINDINGS} more; see the lint job's report._")

    for coverage in report.coverage:
        lines += _coverage_section(coverage)

    if report.tests:
        lines += ["", "#### Tests", "", "| Report | Passed | Failed | Errors | Skipped |", "|---|---|---|---|---|"]
        for t in report.tests:
            lines.append(f"| {_code(_cell(t.source))} | {t.passed} | {t.failures} | {t.errors} | {t.skipped} |")
        failed = [c for t in report.tests for c in t.failed_cases]
        if failed:
            lines += ["", f"<details><summary>{plural(len(failed), 'failed test')}</summary>", ""]
            for case in failed[:MAX_TEST_FAILURES]:
                message = f": {_cell(case.message)}" if case.message else ""
                lines.append(f"- {_code(_cell(case.name))} ({case.kind}){message}")
            if len(failed) > MAX_TEST_FAILURES:
                lines.append(f"- …and {len(failed) - MAX_TEST_FAILURES} more")
            lines += ["", "</details>"]

    if report.impact is not None:
        impact = report.impact
        lines += ["", f"#### Impact analysis: {_cell(impact.environment)}", ""]
        sample = ", ".join(f"{_cell(role)} ({len(ids)})" for role, ids in sorted(impact.sampled.items()))
        saltenv = f" of saltenv {_code(_cell(impact.saltenv))}" if impact.saltenv else ""
        minions = plural(len(impact.minions), "minion")
        lines.append(f"`state.apply test=True`{saltenv} on {minions}: {sample or 'none'}.")
        if impact.missing:
            lines.append(f"\n**Did not answer:** {', '.join(_code(_cell(m)) for m in impact.missing)}")
        shown = sorted(
            (s for s in impact.states if s.changed or s.failed),
            key=lambda s: (-len(s.failed), -len(s.changed), s.id),
        )
        if shown:
            lines += ["", "| State ID | Function | Would change on | Would fail on |", "|---|---|---|---|"]
            for s in shown[:MAX_IMPACT_STATES]:
                fail = str(len(s.failed)) + (f": {_cell(s.comment)}" if s.failed and s.comment else "")
                lines.append(f"| {_code(_cell(s.id))} | {_cell(s.function or '')} | {len(s.changed)} | {fail} |")
            if len(shown) > MAX_IMPACT_STATES:
                lines.append(f"\n_…and {len(shown) - MAX_IMPACT_STATES} more states._")
        else:
            lines.append("\nNo state would change.")

    footer = "Updated in place by saltpipe on every pipeline"
    if report.pipeline_url:
        footer += f"; last run: {report.pipeline_url}"
    lines += ["", f"<sub>{footer}.</sub>", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Publishing


@dataclass(frozen=True)
class NoteOutcome:
    """What :func:`publish_note` did: ``created``, ``updated`` or ``unchanged`` note ``note_id``.

    ``duplicates`` lists other marker notes of ours (left by two pipelines racing); they are left alone.
    """

    action: Literal["created", "updated", "unchanged"]
    note_id: int
    duplicates: tuple[int, ...] = ()


def publish_note(client: GitLabClient, iid: int, body: str) -> NoteOutcome:
    """Create or update saltpipe's note on merge request ``iid`` so that it reads ``body``.

    Our note is the oldest non-system note written by the token's user that contains :data:`MARKER` (someone
    quoting it does not count: it must be ours). Raises :class:`~pipeline.errors.GitLabError`.
    """
    if MARKER not in body:
        raise ValueError("the note body must contain the marker, or it could never be found again")
    me = client.current_user()
    ours = [n for n in client.notes(iid) if not n.system and n.author.id == me.id and MARKER in n.body]
    if not ours:
        return NoteOutcome("created", client.create_note(iid, body).id)
    target, rest = ours[0], tuple(n.id for n in ours[1:])
    if target.body.strip() == body.strip():
        return NoteOutcome("unchanged", target.id, rest)
    client.update_note(iid, target.id, body)
    return NoteOutcome("updated", target.id, rest)
