"""The judging table: one row per kind of return Salt gives, and the gate's ratio arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import Gates
from pipeline.rollout import decide_gate, judge_return
from pipeline.salt_client.base import MinionReturn
from scripted_client import failed_state_return, ok_state_return

OK_STATE = ok_state_return()
FAILED_STATE = failed_state_return()
NESTED_FAILURE = {
    "salt_|-orchestrate_|-orch_|-state": {
        "result": True,
        "changes": {"ret": {"minion-1": {"cmd_|-x_|-x_|-run": {"result": False, "comment": "inner failure"}}}},
        "duration": 1.0,
    }
}

# fun, return, retcode, success, health, expected ok, a reason fragment
CASES: list[tuple[str, Any, int | None, bool | None, bool, bool, str]] = [
    ("state.apply", OK_STATE, 0, True, False, True, ""),
    ("state.apply", OK_STATE, None, None, False, True, ""),  # salt-api without retcodes: judged on content
    ("state.apply", FAILED_STATE, 2, None, False, False, "service.running ops_node failed"),
    ("state.apply", FAILED_STATE, 0, None, False, False, "failed: Service ops_node failed to start"),  # a lying retcode
    ("state.apply", OK_STATE, 2, None, False, False, "retcode 2"),  # a retcode on its own is enough
    ("state.apply", ["Rendering SLS 'base:ops_node' failed: mapping values are not allowed"], 1, None, False, False,
     "render error: Rendering SLS"),
    ("state.apply", "'state.apply' is not available.", 254, False, False, False, "error: 'state.apply' is not available."),
    ("state.apply", NESTED_FAILURE, 0, True, False, False, "inner failure"),
    ("state.apply", {"no_|-states_|-states_|-None": {"result": False, "comment": "No Top file or master_tops data matches found."}},
     2, None, False, False, "No Top file"),
    ("state.apply", {"x_|-y_|-z_|-w": "not a dict"}, 0, None, False, False, "malformed state return"),
    ("state.apply", {"test_|-t_|-t_|-nop": {"result": None, "changes": {}, "duration": 0}}, 0, None, False, True, ""),
    ("state.apply", OK_STATE, 0, False, False, False, "success False"),
    ("state.apply", None, 0, None, False, False, "empty return"),
    ("ops_app.restart", False, 0, True, False, False, "returned False"),  # a bare False with a lying retcode
    ("ops_app.restart", False, None, None, False, False, "returned False"),  # salt-api without retcodes
    ("ops_app.restart", True, 0, True, False, True, ""),
    ("saltutil.sync_all", {"modules": ["modules.ops_app"], "states": []}, 0, True, False, True, ""),
    ("saltutil.sync_all", "Exception occurred in sync_all", 1, False, False, False, "error: Exception occurred"),
    ("ops_app.health", True, 0, True, True, True, ""),
    ("ops_app.health", False, 0, True, True, False, "health check returned False"),
    ("ops_app.health", None, 0, None, True, False, "health check returned None"),
    ("ops_app.health", "ERROR: No URL given", 1, False, True, False, "retcode 1"),
    ("ops_app.health", {"healthy": True}, 0, True, True, True, ""),
    ("ops_app.health", {}, 0, True, True, False, "health check returned nothing"),
]


@pytest.mark.parametrize("fun,ret,retcode,success,health,ok,reason", CASES)
def test_judge_table(fun: str, ret: Any, retcode: int | None, success: bool | None, health: bool, ok: bool,
                     reason: str) -> None:
    verdict = judge_return(fun, MinionReturn("m1", "1", ret, retcode, success), health=health)
    assert verdict.ok is ok, verdict.reasons
    if reason:
        assert any(reason in r for r in verdict.reasons), verdict.reasons
    else:
        assert verdict.reasons == ()


def test_judge_counts_durations_and_changes() -> None:
    ret = {
        "a_|-1_|-1_|-x": {"result": True, "changes": {"diff": "..."}, "duration": 10.5},
        "b_|-2_|-2_|-y": {"result": True, "changes": {}, "duration": 2.0},
    }
    verdict = judge_return("state.apply", MinionReturn("m1", "1", ret, 0))
    assert verdict.ok and verdict.duration_ms == 12.5 and verdict.changes == 1


def test_reasons_are_clipped() -> None:
    verdict = judge_return("state.apply", MinionReturn("m1", "1", ["x" * 5000] * 50, 1))
    assert len(verdict.reasons) <= 10 and all(len(r) <= 400 for r in verdict.reasons)


# size, failed, missing, max failure ratio, max missing ratio, passes
GATES = [
    (1, 0, 0, 0.0, 0.0, True),
    (1, 1, 0, 0.0, 0.0, False),
    (1, 0, 1, 0.0, 0.0, False),
    (10, 1, 0, 0.1, 0.0, True),
    (10, 2, 0, 0.1, 0.0, False),
    (3, 1, 0, 0.34, 0.0, True),
    (3, 1, 0, 0.33, 0.0, False),
    (100, 29, 0, 0.29, 0.0, True),  # 0.29 * 100 is 28.999999999999996 in floats
    (100, 0, 5, 0.0, 0.05, True),
    (100, 0, 6, 0.0, 0.05, False),
    (100, 10, 10, 0.1, 0.1, True),
    (7, 7, 0, 1.0, 0.0, True),
]


@pytest.mark.parametrize("size,failed,missing,max_fail,max_missing,passes", GATES)
def test_gate_table(size: int, failed: int, missing: int, max_fail: float, max_missing: float, passes: bool) -> None:
    gate = decide_gate(0, size, failed, missing, Gates(max_failure_ratio=max_fail, max_missing_ratio=max_missing))
    assert gate.passed is passes
    assert gate.to_json()["passed"] is passes
    assert ("passed" if passes else "FAILED") in gate.describe()


def test_a_failed_highstate_keeps_its_failed_states_and_output_for_the_report() -> None:
    from pipeline.rollout.judge import MAX_OUTPUT
    from pipeline.salt_client.base import MinionReturn as Ret

    key = "file_|-base-chrony-sources_|-/etc/chrony/saltpipe.sources_|-managed"
    ret = {key: {"result": False, "comment": "Source file salt://base/files/chrony-sha1.sources not found",
                 "changes": {}, "__id__": "base-chrony-sources", "name": "/etc/chrony/saltpipe.sources"},
           "pkg_|-nginx_|-nginx_|-installed": {"result": True, "comment": "ok", "changes": {"nginx": {"new": "1"}}},
           "huge_|-x_|-x_|-run": {"result": False, "comment": "y" * 9000, "changes": {}}}
    verdict = judge_return("state.apply", Ret("m1", "jid", ret, retcode=2))
    assert not verdict.ok
    first = verdict.states[0]
    assert (first["state"], first["id"], first["name"]) == ("file.managed", "base-chrony-sources",
                                                            "/etc/chrony/saltpipe.sources")
    assert "not found" in first["comment"] and first["changes"] == ""
    assert verdict.output is not None and len(verdict.output) <= MAX_OUTPUT
    assert key in verdict.output and "nginx" not in verdict.output  # the failed states only
    good = judge_return("state.apply", Ret("m1", "jid", {"pkg_|-nginx_|-nginx_|-installed": ret["pkg_|-nginx_|-nginx_|-installed"]}))
    assert good.ok and good.states == () and good.output is None


def test_files_and_files_changed_of_a_highstate_count_the_first_max_files_file_states():
    from pipeline.rollout.judge import MAX_FILES

    def state(changed: bool) -> dict:
        return {"result": True, "changes": {"diff": "x"} if changed else {}, "comment": "", "duration": 1.0}

    ret = {"pkg_|-nginx_|-nginx_|-installed": state(True), "file_|-gone_|-/etc/gone_|-absent": state(True)}
    for i in range(MAX_FILES + 5):
        # Only the last file state past the limit changes: it must not count, as for ``files``.
        ret[f"file_|-f{i}_|-/etc/f{i}_|-managed"] = state(i in (3, MAX_FILES + 4))
    verdict = judge_return("state.apply", MinionReturn("m1", "1", ret, 0))
    assert verdict.ok and verdict.changes == 4
    assert verdict.files == tuple(f"/etc/f{i}" for i in range(MAX_FILES))
    assert verdict.files_changed == ("/etc/f3",)
    small = judge_return("state.apply", MinionReturn("m1", "1", dict(list(ret.items())[:6]), 0))
    assert small.files == ("/etc/f0", "/etc/f1", "/etc/f2", "/etc/f3") and small.files_changed == ("/etc/f3",)
    assert judge_return("test.ping", MinionReturn("m1", "1", True, 0)).files == ()
