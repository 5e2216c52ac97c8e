"""Rollout notifications as GitLab notes (recorded API shapes): on the merge request a commit belongs to, else
on the commit; a GitLab failure is handed back, never raised."""

from __future__ import annotations

import json
from types import SimpleNamespace

import responses
from gitlab_helpers import API, CI_VARIABLES, HEAD, MERGE_SHA, PROJECT, payload

from pipeline.config.notify import NotifySettings
from pipeline.notify import GitLabNotesChannel, Notifier, notifier_from_environ


def plan(commit: str | None) -> SimpleNamespace:
    batch = SimpleNamespace(name="canary", minions=("test-web-1",))
    return SimpleNamespace(kind="rollout", rollout_id="20250304T110000-rel-0123456789ab", release="rel-0123456789ab",
                           environment="production", commit=commit, population=1, batches=[batch],
                           previous_release="rel-ba9876543210")


STARTED = {"event": "rollout_started", "user": "deploy", "host": "runner-1"}


def notes_notifier() -> Notifier:
    found = notifier_from_environ(NotifySettings(), CI_VARIABLES)
    assert found is not None and [c.name for c in found.channels] == ["gitlab"]
    return found


def test_note_on_the_merged_merge_request_of_the_commit(gitlab_api: responses.RequestsMock) -> None:
    gitlab_api.add("GET", f"{API}{PROJECT}/repository/commits/{MERGE_SHA}/merge_requests",
                   json=payload("commit_merge_requests.json"))
    note = payload("notes.json")[0]
    gitlab_api.add("POST", f"{API}{PROJECT}/merge_requests/42/notes", json=note, status=201)
    assert notes_notifier().notify(STARTED, plan(MERGE_SHA)) == []
    body = json.loads(gitlab_api.calls[-1].request.body)
    assert body["body"].startswith("saltpipe: rollout 20250304T110000-rel-0123456789ab of rel-0123456789ab to "
                                   "production started by deploy@runner-1")
    assert gitlab_api.calls[-1].request.headers["PRIVATE-TOKEN"] == CI_VARIABLES["SALTPIPE_GITLAB_TOKEN"]


def test_comment_on_the_commit_when_no_merge_request_has_it(gitlab_api: responses.RequestsMock) -> None:
    sha = "0" * 40
    gitlab_api.add("GET", f"{API}{PROJECT}/repository/commits/{sha}/merge_requests", json=[])
    gitlab_api.add("POST", f"{API}{PROJECT}/repository/commits/{sha}/comments",
                   json=payload("commit_comment.json"), status=201)
    halted = {"event": "halted", "batch": 0, "reason": "batch canary: 1 of 1 failed (max 0%)"}
    assert notes_notifier().notify(halted, plan(sha)) == []
    body = json.loads(gitlab_api.calls[-1].request.body)
    assert body == {"note": "saltpipe: rollout 20250304T110000-rel-0123456789ab of rel-0123456789ab to production "
                            "HALTED at batch canary: batch canary: 1 of 1 failed (max 0%)"}


def test_a_merge_request_that_only_contains_the_commit_gets_no_note(gitlab_api: responses.RequestsMock) -> None:
    # HEAD is !42's source head, also listed; its merge commit is another: notes go to the MR GitLab relates.
    gitlab_api.add("GET", f"{API}{PROJECT}/repository/commits/{HEAD}/merge_requests",
                   json=[{**payload("commit_merge_requests.json")[0], "sha": "f" * 40}])
    gitlab_api.add("POST", f"{API}{PROJECT}/repository/commits/{HEAD}/comments",
                   json=payload("commit_comment.json"), status=201)
    assert notes_notifier().notify(STARTED, plan(HEAD)) == []


def test_gitlab_refusing_the_token_is_returned_as_a_failure(gitlab_api: responses.RequestsMock) -> None:
    gitlab_api.add("GET", f"{API}{PROJECT}/repository/commits/{MERGE_SHA}/merge_requests",
                   json={"message": "401 Unauthorized"}, status=401)
    failures = notes_notifier().notify(STARTED, plan(MERGE_SHA))
    assert len(failures) == 1 and failures[0]["channel"] == "gitlab" and failures[0]["notification"] == "started"
    assert "GitLabError" in failures[0]["error"]


def test_no_commit_no_call() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False):  # any HTTP call would fail here
        assert Notifier([GitLabNotesChannel(object())]).notify(STARTED, plan(None)) == []


def test_no_token_no_gitlab_channel() -> None:
    env = {k: v for k, v in CI_VARIABLES.items() if k != "SALTPIPE_GITLAB_TOKEN"}
    assert notifier_from_environ(NotifySettings(), env) is None
    assert notifier_from_environ(NotifySettings(gitlab=False), CI_VARIABLES) is None
