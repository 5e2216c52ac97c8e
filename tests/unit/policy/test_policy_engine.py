"""The engine: crash isolation, severities, waivers (incl. expired and unused), the security-review marker,
and the policy file's validation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.findings import Finding, Severity
from pipeline.lint.run import known_rule_ids
from pipeline.policy.config import PolicyConfig, load_policy
from pipeline.policy.engine import PolicyEngine, finalize
from pipeline.policy.rule import Rule, RuleContext
from pipeline.policy.model import Hit, SlsDoc, SourceText, StateDecl
from pipeline.policy.rules.no_cmd_module import NoCmdModule
from pipeline.policy.states import states_from_high

TODAY = dt.date(2026, 6, 1)


def sls_doc(text: str, data: dict, path: str = "states/app/init.sls") -> SlsDoc:
    source = SourceText(path, text)
    return SlsDoc(source=source, sls="app", renderers=("jinja", "yaml"), states=tuple(states_from_high(data, source, "app")), rendered=True)


CMD_TEXT = "restart:\n  cmd.run:\n    - name: systemctl restart app\n"
CMD_DATA = {"restart": {"cmd.run": [{"name": "systemctl restart app"}]}}


class Exploding(Rule):
    """Crashes on every state."""

    id = "exploding-rule"

    def match_state(self, decl: StateDecl, ctx: RuleContext) -> Iterable[Hit]:
        raise RuntimeError("boom")


def test_crashing_rule_becomes_internal_error_and_the_run_goes_on() -> None:
    engine = PolicyEngine(PolicyConfig(), rules=[Exploding, NoCmdModule])
    findings = engine.check_sls(sls_doc(CMD_TEXT, CMD_DATA))
    rules = sorted(f.rule for f in findings)
    assert rules == ["internal-error", "no-cmd-module"]
    crash = next(f for f in findings if f.rule == "internal-error")
    assert crash.severity is Severity.ERROR and crash.path == "states/app/init.sls" and crash.line == 1
    assert "exploding-rule" in crash.message and "RuntimeError: boom" in crash.message


def test_finding_line_is_the_state_id_line_in_the_source() -> None:
    text = "# header\n\n{% set x = 1 %}\nrestart:\n  cmd.run:\n    - name: x\n"
    [finding] = PolicyEngine(PolicyConfig(), rules=[NoCmdModule]).check_sls(sls_doc(text, CMD_DATA))
    assert (finding.line, finding.state_id) == (4, "restart")


def _policy(tmp_path: Path, body: str) -> PolicyConfig:
    path = tmp_path / "policy.yaml"
    path.write_text(body)
    return load_policy(path, known_rule_ids())


def _finding(rule: str = "no-cmd-module", path: str = "states/app/init.sls", state_id: str | None = "restart") -> Finding:
    return Finding(rule, Severity.ERROR, path, 2, "cmd.run", state_id=state_id)


WAIVER = """
waivers:
  - rule: no-cmd-module
    path: states/app/*.sls
    state_id: restart
    justification: vendor restart script until OPS-1 lands
    owner: wli@example.net
    expires: {expires}
"""


def test_active_waiver_moves_the_finding_to_waived(tmp_path: Path) -> None:
    policy = _policy(tmp_path, WAIVER.format(expires="2026-12-31"))
    result = finalize([_finding()], policy, policy_path="salt/policy.yaml", today=TODAY, checked=["states/app/init.sls"])
    assert result.findings == ()
    [waived] = result.waived
    assert waived.owner == "wli@example.net" and waived.expires == "2026-12-31" and waived.finding.rule == "no-cmd-module"


def test_waiver_for_another_state_id_does_not_cover(tmp_path: Path) -> None:
    policy = _policy(tmp_path, WAIVER.format(expires="2026-12-31"))
    result = finalize([_finding(state_id="other")], policy, policy_path="salt/policy.yaml", today=TODAY, checked=["states/app/init.sls"])
    rules = sorted(f.rule for f in result.findings)
    assert rules == ["no-cmd-module", "unused-waiver"]
    unused = next(f for f in result.findings if f.rule == "unused-waiver")
    assert unused.severity is Severity.WARNING and unused.path == "salt/policy.yaml" and unused.line == 3


def test_expired_waiver_is_an_error_and_waives_nothing(tmp_path: Path) -> None:
    policy = _policy(tmp_path, WAIVER.format(expires="2026-05-31"))
    result = finalize([_finding()], policy, policy_path="salt/policy.yaml", today=TODAY, checked=["states/app/init.sls"])
    by_rule = {f.rule: f for f in result.findings}
    assert set(by_rule) == {"no-cmd-module", "expired-waiver"}
    expired = by_rule["expired-waiver"]
    assert expired.severity is Severity.ERROR and expired.line == 3 and "2026-05-31" in expired.message
    assert result.waived == ()


def test_waiver_is_valid_through_its_expiry_day(tmp_path: Path) -> None:
    policy = _policy(tmp_path, WAIVER.format(expires=TODAY.isoformat()))
    result = finalize([_finding()], policy, policy_path="salt/policy.yaml", today=TODAY)
    assert result.findings == () and len(result.waived) == 1


def test_unused_waiver_for_a_file_not_checked_is_not_reported(tmp_path: Path) -> None:
    policy = _policy(tmp_path, WAIVER.format(expires="2026-12-31"))
    result = finalize([], policy, policy_path="salt/policy.yaml", today=TODAY, checked=["states/web/init.sls"])
    assert result.findings == ()


def test_severity_override_applies_to_any_finding_id(tmp_path: Path) -> None:
    policy = _policy(tmp_path, "severities:\n  no-cmd-module: warning\n  pylint-unused-import: info\n")
    pylint = Finding("pylint-unused-import", Severity.WARNING, "_modules/x.py", 3, "unused")
    result = finalize([_finding(), pylint], policy, policy_path="salt/policy.yaml", today=TODAY)
    assert {f.rule: f.severity for f in result.findings} == {"no-cmd-module": Severity.WARNING, "pylint-unused-import": Severity.INFO}


def test_policy_change_needs_security_review() -> None:
    result = finalize([], PolicyConfig(), policy_path="salt/policy.yaml", today=TODAY, policy_changed=True)
    [marker] = result.findings
    assert marker.rule == "security-review-required" and marker.severity is Severity.INFO
    assert result.security_review_required


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("severities:\n  no-cmd-modul: warning\n", 2, "unknown rule id 'no-cmd-modul'"),
        ("severities:\n  no-cmd-module: fatal\n", 2, "'error', 'warning' or 'info'"),
        ("waivers:\n  - rule: no-cmd-module\n    path: x\n    owner: me\n    expires: 2026-01-01\n", 2, "justification"),
        ("waivers:\n  - rule: no-cmd-module\n    path: x\n    owner: me\n    justification: long enough text\n    expires: soon\n", 6, "expires"),
        ("renderers: [jinja, 'py; rm']\n", 1, "renderer name"),
        ("nonsense: 1\n", 1, "nonsense"),
    ],
)
def test_invalid_policy_file_names_file_line_and_key(tmp_path: Path, body: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        _policy(tmp_path, body)
    assert excinfo.value.line == line, str(excinfo.value)
    assert words in str(excinfo.value) and "policy.yaml" in str(excinfo.value)


def test_bundled_policy_file_is_valid() -> None:
    policy = load_policy(Path(__file__).resolve().parents[3] / "salt" / "policy.yaml", known_rule_ids())
    assert "cmd.*" in policy.forbidden_functions and policy.renderers == ("jinja", "yaml")



def _imports(path: Path) -> set[str]:
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):  # function-level imports count too
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_import_cycle_between_the_engine_and_the_rules() -> None:
    """The engine is given its rules; Rule/RuleContext live in policy/rule.py, which imports neither."""
    import pipeline.policy

    root = Path(pipeline.policy.__file__).parent
    assert not {m for m in _imports(root / "engine.py") if m.startswith("pipeline.policy.rules")}
    assert not {m for m in _imports(root / "rule.py") if m.startswith(("pipeline.policy.rules", "pipeline.policy.engine"))}
    for module in sorted((root / "rules").glob("*.py")):
        assert "pipeline.policy.engine" not in _imports(module), module.name


def test_rule_catalog_declares_each_id_once_and_kebab_case():
    from pipeline.findings import RuleCatalog
    from pipeline.lint.structure import LINT_RULES, SLS_RENDER_ERROR
    from pipeline.policy.engine import META_RULES, SECURITY_REVIEW

    catalog = RuleCatalog()
    assert catalog.add("some-check", "what it means") == "some-check" and catalog == {"some-check": "what it means"}
    with pytest.raises(ValueError, match="declared twice"):
        catalog.add("some-check", "another meaning")
    with pytest.raises(ValueError, match="not kebab-case"):
        catalog.add("Some_Check", "what it means")
    assert SLS_RENDER_ERROR in LINT_RULES and SECURITY_REVIEW in META_RULES and not set(LINT_RULES) & set(META_RULES)
    assert len(LINT_RULES) == 14 and len(META_RULES) == 4
