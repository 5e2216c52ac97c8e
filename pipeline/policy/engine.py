"""The policy engine: runs every rule on every document, isolates crashing rules, applies the policy file.

A rule is a small class (:class:`~pipeline.policy.rule.Rule`) with a stable kebab-case ``id``, a default
``severity``, a one-line docstring, and one or more ``match_*`` hooks; the engine is given the rules it runs
(``pipeline.policy.rules.all_rules()``), so it never imports them. The engine turns the rule's :class:`~pipeline.policy.model.Hit`
objects into :class:`~pipeline.findings.Finding` objects. A rule that raises becomes one ``internal-error``
finding for that file and the run goes on. :func:`finalize` then applies the policy file to *all* findings of
a run (lint's included): severity overrides, waivers, expired and unused waivers, and the security-review
marker when the policy file itself changed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.findings import Finding, RuleCatalog, Severity, WaivedFinding
from pipeline.policy.config import PolicyConfig
from pipeline.policy.inventory import Kind
from pipeline.policy.model import Hit, PythonDoc, SlsDoc, StateDecl, TemplateDoc
from pipeline.policy.rule import Rule, RuleContext

#: Findings the engine itself reports, with their meaning (docs/policy.md lists them too).
META_RULES = RuleCatalog()
INTERNAL_ERROR = META_RULES.add("internal-error", "a rule or check crashed on a file; the other rules still ran")
EXPIRED_WAIVER = META_RULES.add("expired-waiver", "a waiver in the policy file is past its expiry date")
UNUSED_WAIVER = META_RULES.add("unused-waiver", "a waiver matched no finding in the files checked")
SECURITY_REVIEW = META_RULES.add(
    "security-review-required", "the change touches the policy or waiver file: the security group must approve it"
)
_UNWAIVABLE = frozenset(META_RULES)


class PolicyEngine:
    """Runs rules on documents. Stateless between calls; the same engine serves a whole run."""

    def __init__(
        self, policy: PolicyConfig, rules: Sequence[type[Rule]], custom: Mapping[Kind, frozenset[str]] | None = None
    ) -> None:
        """``rules`` are the rule classes to run (``pipeline.policy.rules.all_rules()`` for the policy);
        ``custom`` the repository's own module functions (allowed where Salt's allow-list does not know them)."""
        self.policy = policy
        self.ctx = RuleContext.of(policy, custom)
        self.rules: tuple[Rule, ...] = tuple(cls() for cls in rules)

    def check_sls(self, doc: SlsDoc) -> list[Finding]:
        """Findings of ``match_sls`` and of ``match_state`` on each of the document's states."""
        out: list[Finding] = []
        for rule in self.rules:
            out += self._run(rule, doc.path, lambda r=rule: r.match_sls(doc, self.ctx))
            out += self._states(rule, doc)
        return out

    def check_states(self, doc: SlsDoc) -> list[Finding]:
        """Findings of ``match_state`` alone on the document's states (a part of a file read from its text)."""
        return [finding for rule in self.rules for finding in self._states(rule, doc)]

    def check_template(self, doc: TemplateDoc) -> list[Finding]:
        return [f for rule in self.rules for f in self._run(rule, doc.path, lambda r=rule: r.match_template(doc, self.ctx))]

    def check_python(self, doc: PythonDoc) -> list[Finding]:
        return [f for rule in self.rules for f in self._run(rule, doc.path, lambda r=rule: r.match_python(doc, self.ctx))]

    def _states(self, rule: Rule, doc: SlsDoc) -> list[Finding]:
        """``match_state`` of ``rule`` on each state of ``doc`` (nothing for a rule without that hook)."""
        if type(rule).match_state is Rule.match_state:
            return []
        return self._run(rule, doc.path, lambda: _each(doc.states, rule, self.ctx))

    def _run(self, rule: Rule, path: str, hook: Callable[[], Iterable[Hit]]) -> list[Finding]:
        try:
            return [
                Finding(
                    rule=rule.id,
                    severity=rule.severity,
                    path=hit.path or path,
                    line=max(1, int(hit.line)),
                    message=hit.message,
                    state_id=hit.state_id,
                    key=hit.key,
                )
                for hit in hook()
            ]
        except Exception as exc:  # pylint: disable=broad-except  # crash isolation is the point
            return [internal_error(path, f"rule {rule.id}", exc)]


def _each(states: Iterable[StateDecl], rule: Rule, ctx: RuleContext) -> Iterable[Hit]:
    for decl in states:
        yield from rule.match_state(decl, ctx)


def internal_error(path: str, what: str, exc: BaseException) -> Finding:
    """The ``internal-error`` finding for ``what`` (a rule, a check) crashing on ``path``."""
    return Finding(
        rule=INTERNAL_ERROR,
        severity=Severity.ERROR,
        path=path,
        line=1,
        message=(
            f"{what} crashed on this file ({type(exc).__name__}: {exc}); the other checks still ran. "
            "This is a saltpipe bug: report it with this file"
        ),
        key=what,
    )


@dataclass(frozen=True)
class Finalized:
    """The findings of a run after the policy file was applied."""

    findings: tuple[Finding, ...]
    waived: tuple[WaivedFinding, ...]
    security_review_required: bool


def finalize(
    findings: Iterable[Finding],
    policy: PolicyConfig,
    *,
    policy_path: str,
    today: dt.date | None = None,
    checked: Collection[str] = (),
    policy_changed: bool = False,
) -> Finalized:
    """Apply ``policy`` to a run's findings.

    * ``severities`` overrides each matching finding's severity;
    * an expired waiver is itself an ``expired-waiver`` error (at its line in ``policy_path``) and waives
      nothing; an active waiver moves the findings it covers to ``waived``;
    * an active waiver whose path matches a ``checked`` file but covered nothing is an ``unused-waiver``
      warning (waivers for files not checked in this run, say in ``--changed-since`` mode, are left alone);
    * ``policy_changed`` adds a ``security-review-required`` info finding and sets the result's flag.
    """
    today = today or dt.date.today()
    out: list[Finding] = []
    waived: list[WaivedFinding] = []
    active = []
    for waiver in policy.waivers:
        if waiver.expired(today):
            scope = waiver.path + (f" state {waiver.state_id}" if waiver.state_id else "")
            out.append(
                Finding(
                    rule=EXPIRED_WAIVER,
                    severity=Severity.ERROR,
                    path=policy_path,
                    line=waiver.line or 1,
                    message=(
                        f"the waiver of {waiver.rule} for {scope} (owner {waiver.owner}) expired on "
                        f"{waiver.expires.isoformat()}: fix the finding, or renew the waiver with a new expiry "
                        "and justification (needs security review)"
                    ),
                    key=f"{waiver.rule}|{waiver.path}|{waiver.state_id or ''}",
                )
            )
        else:
            active.append(waiver)
    used: set[int] = set()
    for finding in findings:
        severity = policy.severities.get(finding.rule)
        if severity is not None and severity is not finding.severity:
            finding = finding.with_severity(severity)
        cover = None
        if finding.rule not in _UNWAIVABLE:
            cover = next((w for w in active if w.covers(finding.rule, finding.path, finding.state_id)), None)
        if cover is None:
            out.append(finding)
            continue
        used.add(id(cover))
        waived.append(
            WaivedFinding(
                finding=finding,
                justification=cover.justification,
                owner=cover.owner,
                expires=cover.expires.isoformat(),
                waiver_line=cover.line,
            )
        )
    for waiver in active:
        if id(waiver) in used:
            continue
        if any(p == waiver.path or fnmatch.fnmatchcase(p, waiver.path) for p in checked):
            out.append(
                Finding(
                    rule=UNUSED_WAIVER,
                    severity=policy.severities.get(UNUSED_WAIVER, Severity.WARNING),
                    path=policy_path,
                    line=waiver.line or 1,
                    message=f"the waiver of {waiver.rule} for {waiver.path} matches no finding: remove it",
                    key=f"{waiver.rule}|{waiver.path}|{waiver.state_id or ''}",
                )
            )
    if policy_changed:
        out.append(
            Finding(
                rule=SECURITY_REVIEW,
                severity=Severity.INFO,
                path=policy_path,
                line=1,
                message="this change modifies the policy or its waivers: a member of the security group must approve it",
            )
        )
    return Finalized(findings=tuple(out), waived=tuple(waived), security_review_required=policy_changed)
