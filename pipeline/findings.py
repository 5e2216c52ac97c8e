"""Findings are data: what a check found, where, and how bad it is.

Every static check of saltpipe (pylint, SLS rendering and structure, the policy) reports
:class:`Finding` objects; formatters (:mod:`pipeline.formatters`) turn a :class:`Report` of them into text,
JSON, GitLab Code Quality, JUnit XML or an MR note. Nothing here prints or decides exit codes beyond
:meth:`Report.exit_code`, which the CLI uses as is.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.errors import EXIT_FINDINGS, EXIT_OK

_RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
# "line 12", "lines 3-4", ":12" inside a message would make a fingerprint move with unrelated edits.
_LINE_REF_RE = re.compile(r"\b(lines?|line_num)\s*\d+(\s*-\s*\d+)?|:\d+\b")


class Severity(str, enum.Enum):
    """How bad a finding is. Only ``error`` fails a check (exit code 1)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for error, 1 for warning, 2 for info: sorts the worst first."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """``"error"``/``"warning"``/``"info"`` (any case) to a :class:`Severity`; ``ValueError`` otherwise."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"severity must be one of error, warning, info; got {value!r}") from None

    def __str__(self) -> str:
        return self.value


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


class RuleCatalog(dict[str, str]):
    """Finding ids a check reports besides the policy rules (lint's own, the policy engine's), with their meaning.

    :meth:`add` declares an id and its meaning in one statement and returns the id, so a module's constant and
    its documented meaning cannot drift apart; a malformed or twice-declared id fails at import.
    """

    def add(self, rule_id: str, meaning: str) -> str:
        if not _RULE_ID_RE.match(rule_id):
            raise ValueError(f"rule id {rule_id!r} is not kebab-case")
        if rule_id in self:
            raise ValueError(f"rule id {rule_id!r} is declared twice")
        self[rule_id] = meaning
        return rule_id


@dataclass(frozen=True)
class Finding:
    """One problem at one place.

    ``rule`` is a stable kebab-case id (``no-cmd-module``, ``pylint-unused-import``); ``path`` is relative to
    the checked repository when the file is inside it (POSIX separators), else as given; ``line`` is 1-based.
    ``state_id`` names the Salt state the finding is about, when there is one. ``key`` is an optional stable
    identity of the finding inside its file (for example ``"cmd.run"``); fingerprints use it instead of the
    message when set, so rewording a message does not reopen Code Quality issues.
    """

    rule: str
    severity: Severity
    path: str
    line: int
    message: str
    state_id: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if not _RULE_ID_RE.match(self.rule):
            raise ValueError(f"rule id {self.rule!r} is not kebab-case")
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        if not isinstance(self.line, int) or isinstance(self.line, bool) or self.line < 1:
            raise ValueError(f"line must be an int >= 1, got {self.line!r} ({self.rule} in {self.path})")
        if not self.path:
            raise ValueError(f"finding of {self.rule} has no path")

    def with_severity(self, severity: Severity | str) -> Finding:
        """The same finding at another severity (policy overrides)."""
        return replace(self, severity=Severity.parse(severity))

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``rule``, ``severity``, ``path``, ``line``, ``message`` and ``state_id`` when set."""
        data: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.value,
            "path": self.path,
            "line": self.line,
            "message": self.message,
        }
        if self.state_id is not None:
            data["state_id"] = self.state_id
        return data

    def fingerprint(self) -> str:
        """A stable hex digest of rule, path, state id and key (or message without line references).

        No line numbers go in, so adding unrelated lines above a finding keeps its fingerprint. Two findings
        that differ only by line get the same fingerprint; :func:`unique_fingerprints` tells them apart.
        """
        what = self.key if self.key is not None else _LINE_REF_RE.sub("", self.message)
        raw = "\x1f".join((self.rule, self.path, self.state_id or "", what))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.severity.rank, self.rule, self.message)


@dataclass(frozen=True)
class WaivedFinding:
    """A finding that a waiver in the policy file covers: kept for the record, never fails a check."""

    finding: Finding
    justification: str
    owner: str
    expires: str
    waiver_line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.finding.to_dict()
        data["waiver"] = {
            "justification": self.justification,
            "owner": self.owner,
            "expires": self.expires,
        }
        return data


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """By path, line, severity (worst first), rule, message; duplicates removed."""
    return sorted(set(findings), key=lambda f: f.sort_key)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    """``{"error": n, "warning": n, "info": n}``, every key present."""
    counts = Counter(f.severity.value for f in findings)
    return {s.value: counts.get(s.value, 0) for s in Severity}


def has_errors(findings: Iterable[Finding]) -> bool:
    """True when any finding has severity ``error``."""
    return any(f.severity is Severity.ERROR for f in findings)


def group_by_path(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    """Findings per path, paths and findings in :func:`sort_findings` order."""
    out: dict[str, list[Finding]] = {}
    for finding in sort_findings(findings):
        out.setdefault(finding.path, []).append(finding)
    return out


def unique_fingerprints(findings: Iterable[Finding]) -> list[tuple[Finding, str]]:
    """Each finding with a fingerprint unique within the list.

    The n-th finding (in line order) sharing a base fingerprint gets ``sha256(base + ":n")``: stable as long as
    the order of identical findings in a file does not change, and still free of line numbers.
    """
    seen: Counter[str] = Counter()
    out = []
    for finding in sort_findings(findings):
        base = finding.fingerprint()
        n = seen[base]
        seen[base] += 1
        fp = base if n == 0 else hashlib.sha256(f"{base}:{n}".encode()).hexdigest()
        out.append((finding, fp))
    return out


def plural(n: int, word: str) -> str:
    """``1 file``, ``3 files``; ``info`` stays ``info`` (``2 info``)."""
    return f"{n} {word}{'' if n == 1 or word == 'info' else 's'}"


def line_span(path: str, line: int, end_line: int | None) -> str:
    """``path:line``, or ``path:line-end`` when ``end_line`` is another line."""
    return f"{path}:{line}" + (f"-{end_line}" if end_line and end_line != line else "")


@dataclass(frozen=True)
class MinionCoverage:
    """What lint's renders produced for one fixture minion: ``rendered`` SLS rendered by Salt, ``text`` SLS
    that did not render for it (a render error, a renderer the policy refuses, a blocked template; the policy
    read their text where no minion rendered them) and ``limited`` SLS stopped by a render bound. The three add
    up to the run's SLS count."""

    minion: str
    rendered: int
    text: int
    limited: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"minion": self.minion, "rendered": self.rendered, "text": self.text, "limited": self.limited}


@dataclass(frozen=True)
class UnrenderedBranch:
    """A Jinja branch (``if``, ``elif``, ``else``, ``for``, ``for-else``, ``macro``, ``call``) of ``path`` that
    no fixture minion's successful render reached, from ``line`` to ``end_line``: the policy checked its text."""

    path: str
    line: int
    end_line: int
    kind: str

    @property
    def where(self) -> str:
        """``path:line`` or ``path:line-end``."""
        return line_span(self.path, self.line, self.end_line)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "end_line": self.end_line, "kind": self.kind}


@dataclass(frozen=True)
class Coverage:
    """What the fixture renders of a run covered (not findings: a gap is shown, it never fails the run).

    ``sls`` SLS files were rendered for each of ``minions``; ``never_rendered`` lists the SLS no fixture
    minion rendered (checked from their template text only); ``unrendered_branches`` the outermost Jinja
    branches of rendered SLS that no render reached; ``unmapped`` the rendered SLS whose branches could not be
    mapped (their whole text was checked again instead). Paths are sorted; branches by path and line.
    """

    sls: int
    minions: tuple[MinionCoverage, ...] = ()
    never_rendered: tuple[str, ...] = ()
    unrendered_branches: tuple[UnrenderedBranch, ...] = ()
    unmapped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "never_rendered", tuple(sorted(set(self.never_rendered))))
        object.__setattr__(self, "unmapped", tuple(sorted(set(self.unmapped))))
        object.__setattr__(self, "unrendered_branches", tuple(sorted(set(self.unrendered_branches), key=lambda b: (b.path, b.line, b.end_line, b.kind))))

    def to_dict(self) -> dict[str, Any]:
        """Everything, unbounded: ``sls``, ``minions``, ``never_rendered``, ``unrendered_branches``, ``unmapped``."""
        return {
            "sls": self.sls,
            "minions": [m.to_dict() for m in self.minions],
            "never_rendered": list(self.never_rendered),
            "unrendered_branches": [b.to_dict() for b in self.unrendered_branches],
            "unmapped": list(self.unmapped),
        }


@dataclass(frozen=True)
class Report:
    """What a check stage hands to a formatter.

    ``tool`` names the stage (``"saltpipe lint"``); ``checked`` lists the paths that were checked (JUnit shows
    a passing test case for each clean one); ``stats`` holds counters worth showing (``{"sls": 250}``);
    ``notes`` are human lines (skipped steps, fallbacks); ``security_review_required`` is set when the change
    touches the policy or waiver file, so the review gate can ask the security group. ``coverage`` is what the
    fixture renders covered (None when nothing was rendered).
    """

    tool: str
    findings: tuple[Finding, ...] = ()
    waived: tuple[WaivedFinding, ...] = ()
    checked: tuple[str, ...] = ()
    stats: Mapping[str, int | float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    security_review_required: bool = False
    coverage: Coverage | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(sort_findings(self.findings)))
        object.__setattr__(self, "checked", tuple(sorted(set(self.checked))))

    @property
    def ok(self) -> bool:
        """No error-severity finding."""
        return not has_errors(self.findings)

    @property
    def exit_code(self) -> int:
        """0 when :attr:`ok`, else 1 (errors that stop a stage raise instead and exit 2)."""
        return EXIT_OK if self.ok else EXIT_FINDINGS

    def counts(self) -> dict[str, int]:
        return count_by_severity(self.findings)

    def by_rule(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def summary(self) -> str:
        """One line: ``3 errors, 1 warning, 0 info (2 waived) in 14 files``."""
        c = self.counts()
        text = f"{plural(c['error'], 'error')}, {plural(c['warning'], 'warning')}, {plural(c['info'], 'info')}"
        if self.waived:
            text += f" ({len(self.waived)} waived)"
        if self.checked:
            text += f" in {plural(len(self.checked), 'file')}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: ``{"findings": [...], "waived": [...], "summary": {...}, ...}``; ``coverage`` when set."""
        data: dict[str, Any] = {
            "tool": self.tool,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "waived": [w.to_dict() for w in self.waived],
            "summary": {**self.counts(), "waived": len(self.waived), "checked": len(self.checked)},
            "stats": dict(self.stats),
            "notes": list(self.notes),
            "security_review_required": self.security_review_required,
        }
        if self.coverage is not None:
            data["coverage"] = self.coverage.to_dict()
        return data
