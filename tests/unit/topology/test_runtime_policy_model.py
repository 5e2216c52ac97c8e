"""The runtime policy file and the drift checks of verify-runtime, without daemons (the live side is in
tests/integration/test_runtime_policy.py)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.config.runtime_policy import load_runtime_policy
from pipeline.runtime_policy import (
    MasterTarget,
    check_config,
    format_json,
    format_text,
    probe_running,
    verify_runtime,
)

REPO = Path(__file__).resolve().parents[3]
POLICY = load_runtime_policy(REPO / "salt" / "daemons" / "runtime-policy.yaml")


@pytest.mark.parametrize(
    "function",
    ["cmd.run", "cmd.script", "cmd.exec_code", "state.single", "state.template_str", "schedule.add", "cron.set_job",
     "saltutil.cmd_iter", "saltutil.runner", "mine.send", "slsutil.renderer", "publish.publish", "at.at"],
)
def test_shell_capable_functions_are_refused(function: str) -> None:
    assert POLICY.refuses(function)


@pytest.mark.parametrize(
    "function",
    ["state.apply", "state.highstate", "state.sls", "saltutil.sync_all", "saltutil.sync_modules",
     "saltutil.find_job", "test.ping", "pkg.install", "file.managed", "ops_lb.pull_out", "state.sls_id"],
)
def test_pipeline_functions_stay_allowed(function: str) -> None:
    assert not POLICY.refuses(function)


def test_patterns_are_also_regular_expressions() -> None:
    """Salt tries a pattern as a glob, then as a regex: `cmd.*` also refuses any module starting with "cmd"
    (none exists; documented in docs/runtime-policy.md)."""
    assert POLICY.refuses("cmdmod.run")


def test_every_probe_and_allowed_entry_is_consistent() -> None:
    assert all(POLICY.refuses(e.probe) for e in POLICY.blacklist)
    assert not any(POLICY.refuses(f) for f in POLICY.allowed)


def _policy(tmp_path: Path, text: str):
    path = tmp_path / "runtime-policy.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_runtime_policy(path)


def test_probe_outside_its_pattern_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = """\
    version: 1
    blacklist:
      - function: "cmd.*"
        probe: state.single
        why: shell
    """
    with pytest.raises(ConfigError) as err:
        _policy(tmp_path, text)
    assert err.value.line == 4 and "not matched" in str(err.value)


def test_allowed_function_caught_by_the_blacklist_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = """\
    version: 1
    blacklist:
      - {function: "state.*", probe: state.single, why: too broad}
    allowed:
      - test.ping
      - state.apply
    """
    with pytest.raises(ConfigError) as err:
        _policy(tmp_path, text)
    assert err.value.line == 6 and "state.apply" in str(err.value)


def test_check_config_reports_missing_patterns_and_settings() -> None:
    opts = {"publisher_acl_blacklist": {"modules": ["cmd.*", "extra.*"]}, "peer": {".*": ["test.*"]}, "peer_run": {}}
    checks, drift = check_config(POLICY, "m1", opts)
    assert checks == len(POLICY.blacklist) + len(POLICY.settings)
    assert {d.subject for d in drift if d.check == "blacklist-missing"} == set(POLICY.patterns) - {"cmd.*"}
    assert [d.subject for d in drift if d.check == "setting"] == ["peer"]
    assert all(d.where == "config" for d in drift)
    assert check_config(POLICY, "m1", {"publisher_acl_blacklist": POLICY.publisher_acl_blacklist(), **POLICY.settings})[1] == []


def test_probe_running_judges_each_answer() -> None:
    accepted = {"cmd.run"}
    refused_but_allowed = {"state.apply"}

    def prober(function: str) -> bool:
        if function in accepted:
            return False
        if function in refused_but_allowed:
            return True
        return POLICY.refuses(function)

    checks, drift = probe_running(POLICY, "m1", prober)
    assert checks == len(POLICY.blacklist) + len(POLICY.allowed)
    assert [(d.check, d.subject) for d in drift] == [("probe-accepted", "cmd.run"), ("probe-refused", "state.apply")]


def test_unreachable_master_is_one_finding() -> None:
    def prober(function: str) -> bool:
        raise OSError("connection refused")

    checks, drift = probe_running(POLICY, "m1", prober)
    assert checks == 1 and [d.check for d in drift] == ["unreachable"]


def test_verify_runtime_on_a_rendered_config_and_formatters(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "master").write_text(f"root_dir: {tmp_path}\npublisher_acl_blacklist:\n  modules: ['cmd.*']\n", encoding="utf-8")
    report = verify_runtime(POLICY, [MasterTarget("m1", conf)], probe=True, prober_factory=lambda m: POLICY.refuses)
    assert not report.ok
    # Only the blacklist drifted: Salt's defaults for peer / peer_run (empty) are what the policy asks.
    assert {d.check for d in report.drift} == {"blacklist-missing"}
    data = json.loads(format_json(report))
    assert data["ok"] is False and data["masters"][0]["name"] == "m1"
    assert "DRIFT" in format_text(report)


def test_missing_master_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="master config not found"):
        verify_runtime(POLICY, [MasterTarget("m1", tmp_path)], probe=False)
