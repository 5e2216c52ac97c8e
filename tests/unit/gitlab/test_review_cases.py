"""``saltpipe review`` against recorded GitLab answers, one JSON case per situation (cases/review/*.json).

Each case lists exactly the endpoints the gate must call (``responses`` fails the test if one is not called,
and answers a call to any other with a connection error, which would show as exit 2), the CI variables it
changes, and what the gate must decide: exit code, the outcome of named checks, substrings of the reasons.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
from gitlab_helpers import serve

CASES = sorted((Path(__file__).parent / "cases" / "review").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_situation_of_the_brief_has_a_case() -> None:
    names = {p.stem for p in CASES}
    assert {
        "approved",
        "self_approval_only",
        "too_few",
        "approval_before_last_push",
        "security_path_without_security_approver",
        "pipeline_failed",
        "pipeline_missing",
        "unauthorized_401",
        "server_error_500",
        "connection_error",
    } <= names


@pytest.mark.parametrize("case_path", CASES, ids=lambda p: p.stem)
def test_review_case(case_path: Path, review_case: Callable[..., dict[str, Any] | None]) -> None:
    case = _load(case_path)
    result = review_case(case, [])
    if result is None:
        return
    for want in case["expect"].get("approvers", []):
        got = next(a for a in result["approvers"] if a["username"] == want["username"])
        assert got["counts"] is want["counts"]
        if "why" in want:
            assert want["why"] in got["why"]


def test_text_output_lists_every_check_and_reason(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    """The default output a person reads in the job log: verdict, each check, why an approval was ignored."""
    case = _load(Path(__file__).parent / "cases" / "review" / "approval_before_last_push.json")
    ci_env({})
    for key, spec in case["routes"].items():
        serve(gitlab_api, key, spec)
    code, out, _ = run_saltpipe(["--config", str(write_config()), "review"])
    assert code == 1
    assert out.splitlines()[0] == "review gate for !42 at 3f2c0d9e7a41: NOT APPROVED"
    for check in ("merge-request-state", "head-sha", "approvals", "gitlab-rules", "security-approval", "pipeline"):
        assert check in out
    assert "FAIL  approvals" in out
    assert "ignored  @bob approved at 2025-03-03T16:40:21+00:00" in out


def test_mr_option_and_sha_option_override_ci(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    """By hand, outside a merge request pipeline: --mr and --sha give what CI would."""
    ci_env({"CI_MERGE_REQUEST_IID": None, "CI_COMMIT_SHA": None, "CI_PIPELINE_ID": None, "CI_JOB_ID": None})
    for key in ("mr", "approvals", "versions", "version"):
        serve(gitlab_api, key)
    serve(gitlab_api, "pipelines", {"patch": {"0": {"status": "success"}}})
    code, out, err = run_saltpipe(
        ["--config", str(write_config()), "review", "--mr", "42", "--sha", "3f2c0d9e7a41b6c58e2d9f0a1b3c4d5e6f708192"]
    )
    assert code == 0, out + err
    assert "APPROVED" in out


def test_missing_variables_are_named_and_gitlab_is_not_called(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    ci_env({"SALTPIPE_GITLAB_TOKEN": None, "CI_MERGE_REQUEST_IID": None})
    code, _, err = run_saltpipe(["--config", str(write_config()), "review"])
    assert code == 2
    assert "SALTPIPE_GITLAB_TOKEN" in err and "CI_MERGE_REQUEST_IID (or --mr)" in err
    assert len(gitlab_api.calls) == 0
