"""``saltpipe review --merged``: the gate in the default branch's pipeline, one JSON case per situation
(cases/merged/*.json).

The job runs for commit 7d4e2a91 on main (pipeline 9100, no merge request variables). Each case lists exactly
the endpoints the gate must call (``responses`` fails the test if one is not called, and answers any other
with a connection error, which would show as exit 2): notably the jobs of a pipeline are never read, because
the gate does not run inside a merge request pipeline any more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses
from gitlab_helpers import HEAD, MERGE_SHA, serve

from pipeline.gitlab.models import MergeRequest, User
from pipeline.review import find_merge

CASES = sorted((Path(__file__).parent / "cases" / "merged").glob("*.json"))

#: The CI variables of the `release` job in default-branch pipeline 9100, on top of conftest's.
DEPLOY_JOB = {
    "CI_MERGE_REQUEST_IID": None,
    "CI_COMMIT_SHA": MERGE_SHA,
    "CI_COMMIT_REF_NAME": "main",
    "CI_PIPELINE_ID": "9100",
    "CI_PIPELINE_URL": "https://gitlab.example.net/ops/salt-states/-/pipelines/9100",
    "CI_JOB_ID": "55300",
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_situation_of_the_brief_has_a_case() -> None:
    assert {
        "merge_commit",
        "squash_commit",
        "fast_forward",
        "direct_push",
        "merged_into_another_branch",
        "approvals_reset",
        "gitlab_unreachable",
    } <= {p.stem for p in CASES}


@pytest.mark.parametrize("case_path", CASES, ids=lambda p: p.stem)
def test_merged_case(case_path: Path, review_case: Callable[..., dict[str, Any] | None]) -> None:
    case = _load(case_path)
    result = review_case(case, ["--merged"], DEPLOY_JOB)
    if result is None:
        return
    expect = case["expect"]
    assert result["branch"] == "main"
    assert result["merged_sha"] == case.get("env", {}).get("CI_COMMIT_SHA", MERGE_SHA)
    if "merge_request" in expect:
        assert result["merge_request"] == expect["merge_request"]
    if "head_sha" in expect:
        assert result["head_sha"] == expect["head_sha"]


def test_text_output_names_the_commit_the_branch_and_the_merge_request(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    ci_env(DEPLOY_JOB)
    serve(gitlab_api, "project")
    serve(gitlab_api, "commit_mrs", {"json": []})
    code, out, _ = run_saltpipe(["--config", str(write_config()), "review", "--merged"])
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "review gate for 7d4e2a91c3b5 on main (no merge request): NOT APPROVED"
    assert "FAIL  merged-commit  commit 7d4e2a91c3b5 reached main without a merge request" in out


def test_sha_option_overrides_ci_commit_sha(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    """By hand: --sha names the default branch's commit; here the fast-forwarded head of !42."""
    ci_env({**DEPLOY_JOB, "CI_COMMIT_SHA": None, "CI_PIPELINE_ID": None, "CI_JOB_ID": None})
    serve(gitlab_api, "project")
    serve(gitlab_api, "commit_mrs_head", {"patch": {"0": {"merge_commit_sha": None}}})
    serve(gitlab_api, "mr", {"patch": {"state": "merged"}})
    for key in ("approvals", "versions", "version"):
        serve(gitlab_api, key)
    serve(gitlab_api, "pipelines", {"patch": {"0": {"status": "success"}}})
    code, out, err = run_saltpipe(["--config", str(write_config()), "review", "--merged", "--sha", HEAD])
    assert code == 0, out + err
    assert out.splitlines()[0] == "review gate for 3f2c0d9e7a41 on main (merged by !42, head 3f2c0d9e7a41): APPROVED"


def test_missing_token_is_exit_2_and_gitlab_is_not_called(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    ci_env({**DEPLOY_JOB, "SALTPIPE_GITLAB_TOKEN": None, "CI_COMMIT_SHA": None})
    code, _, err = run_saltpipe(["--config", str(write_config()), "review", "--merged"])
    assert code == 2
    assert "SALTPIPE_GITLAB_TOKEN" in err and "CI_COMMIT_SHA (or --sha)" in err
    assert len(gitlab_api.calls) == 0


def test_mr_and_merged_exclude_each_other(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    ci_env(DEPLOY_JOB)
    code, _, err = run_saltpipe(["--config", str(write_config()), "review", "--merged", "--mr", "42"])
    assert code == 2 and "--mr and --merged exclude each other" in err
    assert len(gitlab_api.calls) == 0


def test_a_merge_request_merged_since_the_lookup_must_still_say_so(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    """The merge request is read again in full: if it no longer names the commit (or is not merged), refuse."""
    ci_env(DEPLOY_JOB)
    for key in ("project", "commit_mrs", "approvals", "versions", "version"):
        serve(gitlab_api, key)
    serve(gitlab_api, "mr")  # the recorded !42 is still `opened`, without a merge commit
    serve(gitlab_api, "pipelines", {"patch": {"0": {"status": "success"}}})
    code, out, _ = run_saltpipe(["--config", str(write_config()), "review", "--merged", "--format", "json"])
    assert code == 1
    outcomes = {c["id"]: c["ok"] for c in json.loads(out)["checks"]}
    assert outcomes["merged-commit"] is False and outcomes["merge-request-state"] is False


# -- find_merge on its own: the table of who brought a commit to the branch ------------------------------------

_AUTHOR = User(11, "alice")


def _mr(iid: int, *, state: str = "merged", target: str = "main", sha: str = HEAD, merge: str | None = None,
        squash: str | None = None) -> MergeRequest:
    return MergeRequest(iid, "t", state, _AUTHOR, sha, f"b{iid}", target, "", False, merge, squash)


@pytest.mark.parametrize(
    ("mrs", "iid", "how"),
    [
        ((_mr(1, merge=MERGE_SHA),), 1, "merge commit"),
        ((_mr(1, squash=MERGE_SHA),), 1, "squash commit"),
        ((_mr(1, sha=MERGE_SHA),), 1, "fast-forward"),
        # an open MR containing the commit, next to the MR that merged it: the merged one is the answer
        ((_mr(2, state="opened", sha=MERGE_SHA), _mr(1, merge=MERGE_SHA)), 1, "merge commit"),
        ((), None, None),
        ((_mr(1, state="closed", sha=MERGE_SHA),), None, None),
        ((_mr(1, target="develop", merge=MERGE_SHA),), None, None),
        ((_mr(1, merge="0" * 40),), None, None),
        ((_mr(1, merge=MERGE_SHA), _mr(2, squash=MERGE_SHA)), None, None),
    ],
    ids=["merge", "squash", "ff", "open-and-merged", "none", "closed", "other-branch", "other-merge-commit",
         "ambiguous"],
)
def test_find_merge(mrs: tuple[MergeRequest, ...], iid: int | None, how: str | None) -> None:
    lookup = find_merge(mrs, MERGE_SHA, "main")
    assert lookup.check.ok is (iid is not None)
    if iid is None:
        assert lookup.merged is None and lookup.head_sha is None
    else:
        assert lookup.merged is not None
        assert (lookup.merged.iid, lookup.merged.how, lookup.merged.branch) == (iid, how, "main")
