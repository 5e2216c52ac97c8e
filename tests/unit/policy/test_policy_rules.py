"""Each rule's bad fixtures fail with the right rule id and line; its good fixtures pass.

Fixtures live beside the rules (pipeline/policy/rules/fixtures/<id>/{good,bad}/); a bad line says which rules
it expects with an ``expect: <id>[, <id>]`` marker. SLS fixtures are rendered by Salt (empty grains and pillar),
so render-time lookups and the text fallback of unrenderable files are exercised too.
"""

from __future__ import annotations

import re

import pytest

from pipeline.findings import Severity
from pipeline.policy.rule import Rule
from pipeline.policy.rules import all_rules
from policy_helpers import check_dir, expected, found

RULES = all_rules()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_bad_fixtures_fail_with_rule_id_and_line(rule: type[Rule]) -> None:
    bad = rule.fixtures_dir() / "bad"
    want = {name: lines for (name, rid), lines in expected(bad).items() if rid == rule.id}
    assert want, f"{bad} has no 'expect: {rule.id}' markers"
    report = check_dir(bad)
    assert found(report, rule.id) == want
    assert not report.ok


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_good_fixtures_pass(rule: type[Rule]) -> None:
    report = check_dir(rule.fixtures_dir() / "good")
    assert found(report, rule.id) == {}
    # Good examples are good for every rule, not just this one.
    assert [f for f in report.findings if f.severity is Severity.ERROR] == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_other_rules_markers_in_bad_fixtures_hold(rule: type[Rule]) -> None:
    """A marker naming another rule (a line two rules catch) is checked too."""
    bad = rule.fixtures_dir() / "bad"
    report = check_dir(bad)
    for (name, rid), lines in expected(bad).items():
        assert found(report, rid).get(name, set()) >= lines, (rid, name)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_carries_id_docstring_rationale_and_fixtures(rule: type[Rule]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)+", rule.id)
    assert rule.description() and "\n" not in rule.description()
    rationale = rule.rationale_path()
    assert rationale.is_file() and rationale.read_text().startswith(f"# {rule.id}\n")
    for kind in ("good", "bad"):
        assert any((rule.fixtures_dir() / kind).iterdir()), f"{rule.id} needs {kind} fixtures"


def test_rule_ids_are_the_documented_set() -> None:
    # Ids are never renamed (only deprecated): this list changes only by adding.
    assert [r.id for r in RULES] == [
        "forbidden-renderer",
        "jinja-dynamic-salt",
        "jinja-forbidden-call",
        "jinja-sandbox-escape",
        "module-run-forbidden",
        "no-cmd-module",
        "orchestrate-forbidden",
        "py-dynamic-code",
        "py-dynamic-salt",
        "py-forbidden-function",
        "py-shell-exec",
        "scheduled-command",
        "shell-requisite",
        "state-function-not-allowed",
    ]
