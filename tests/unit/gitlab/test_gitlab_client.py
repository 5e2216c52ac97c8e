"""The python-gitlab client: GitLab's answers become typed facts, or a GitLabError that says what to do."""

from __future__ import annotations

import pytest
import responses
from gitlab_helpers import HEAD, MERGE_SHA, SERVER, TOKEN, serve

from pipeline.errors import GitLabError, UsageError
from pipeline.gitlab import CiEnvironment, PythonGitLabClient, client_from_ci


def _client() -> PythonGitLabClient:
    return PythonGitLabClient(SERVER, TOKEN, "1234")


def test_recorded_payloads_become_facts(gitlab_api: responses.RequestsMock) -> None:
    for key in ("mr", "approvals", "versions", "version", "pipelines", "jobs", "members"):
        serve(gitlab_api, key)
    client = _client()
    mr = client.merge_request(42)
    assert (mr.iid, mr.author.username, mr.sha, mr.state) == (42, "alice", HEAD, "opened")
    approvals = client.approvals(42)
    assert [a.user.username for a in approvals.approved_by] == ["bob"]
    assert approvals.approved_by[0].approved_at is not None and approvals.approved_by[0].approved_at.tzinfo
    versions = client.diff_versions(42)
    assert [v.id for v in versions] == [301, 300] and versions[0].head_sha == HEAD
    assert client.changed_files(42, 301).paths == ("states/web/nginx.sls",)
    assert [p.id for p in client.merge_request_pipelines(42)] == [9001, 8950]
    jobs = client.pipeline_jobs(9001)
    assert {j.name: j.status for j in jobs}["review"] == "running"
    members = {u.username: u.state for u in client.group_members("ops/salt-security")}
    assert members == {"carol": "active", "dave": "active", "erin": "awaiting"}


def test_renamed_files_list_both_paths(gitlab_api: responses.RequestsMock) -> None:
    """Moving a module out of _modules/ touches _modules/ too."""
    serve(
        gitlab_api,
        "version",
        {"patch": {"diffs": {"0": {"old_path": "_modules/ops_app.py", "new_path": "lib/ops_app.py", "renamed_file": True}}}},
    )
    assert _client().changed_files(42, 301).paths == ("_modules/ops_app.py", "lib/ops_app.py")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"author": {"id": None}}, "no usable 'id'"),
        ({"sha": 12}, "no usable 'sha'"),
        ({"author": None}, "expected a JSON object"),
    ],
)
def test_unexpected_shapes_are_errors_not_defaults(
    gitlab_api: responses.RequestsMock, patch: dict[str, object], message: str
) -> None:
    serve(gitlab_api, "mr", {"patch": patch})
    with pytest.raises(GitLabError, match=message):
        _client().merge_request(42)


def test_a_timestamp_without_timezone_is_refused(gitlab_api: responses.RequestsMock) -> None:
    """Comparing an approval with a push needs both on one clock: a naive time cannot be placed."""
    serve(gitlab_api, "approvals", {"patch": {"approved_by": {"0": {"approved_at": "2025-03-04T10:05:13"}}}})
    with pytest.raises(GitLabError, match="without a timezone"):
        _client().approvals(42)


def test_404_says_which_project(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "mr", {"status": 404, "json": {"message": "404 Not found"}})
    with pytest.raises(GitLabError) as err:
        _client().merge_request(42)
    assert "HTTP 404" in str(err.value) and "CI_PROJECT_ID (1234)" in str(err.value)


def test_timeout_is_unreachable(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "mr", {"error": "timeout"})
    with pytest.raises(GitLabError, match="cannot reach GitLab"):
        _client().merge_request(42)


def test_client_needs_url_and_token() -> None:
    with pytest.raises(GitLabError, match="must start with http"):
        PythonGitLabClient("gitlab.example.net", TOKEN, "1234")
    with pytest.raises(UsageError, match="SALTPIPE_GITLAB_TOKEN"):
        client_from_ci(CiEnvironment.from_environ({"CI_SERVER_URL": SERVER, "CI_PROJECT_ID": "1234"}))


def test_merged_results_pipeline_reviews_the_source_head() -> None:
    """In a merged results pipeline CI_COMMIT_SHA is GitLab's merge commit; approvals stand for the MR head."""
    ci = CiEnvironment.from_environ(
        {"CI_COMMIT_SHA": "merge0000", "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": HEAD, "CI_MERGE_REQUEST_IID": "42"}
    )
    assert (ci.head_sha, ci.commit_sha, ci.mr_iid) == (HEAD, "merge0000", 42)
    with pytest.raises(UsageError, match="CI_JOB_ID"):
        CiEnvironment.from_environ({"CI_JOB_ID": "abc"})


def test_commit_merge_requests_and_default_branch(gitlab_api: responses.RequestsMock) -> None:
    """The basic merge request shape of commit lookups carries the commits the merge wrote."""
    serve(gitlab_api, "project")
    serve(gitlab_api, "commit_mrs")
    client = _client()
    assert client.default_branch() == "main"
    (mr,) = client.commit_merge_requests(MERGE_SHA)
    assert (mr.iid, mr.state, mr.target_branch, mr.sha) == (42, "merged", "main", HEAD)
    assert (mr.merge_commit_sha, mr.squash_commit_sha) == (MERGE_SHA, None)


def test_a_project_without_default_branch_is_an_error(gitlab_api: responses.RequestsMock) -> None:
    """An empty repository has no default branch: nothing can have been merged into it."""
    serve(gitlab_api, "project", {"patch": {"default_branch": None}})
    with pytest.raises(GitLabError, match="default_branch"):
        _client().default_branch()


def test_a_listed_merge_request_without_sha_matches_nothing(gitlab_api: responses.RequestsMock) -> None:
    serve(gitlab_api, "commit_mrs", {"patch": {"0": {"sha": None, "state": "closed", "merge_commit_sha": None}}})
    (mr,) = _client().commit_merge_requests(MERGE_SHA)
    assert mr.sha == "" and mr.state == "closed"
