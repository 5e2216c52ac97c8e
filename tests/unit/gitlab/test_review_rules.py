"""The review gate's decision as a pure function: tables of facts in, checks out (no HTTP)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.config import ReviewSettings
from pipeline.gitlab.models import (
    Approval,
    Approvals,
    ChangedFiles,
    DiffVersion,
    Job,
    MergeRequest,
    Pipeline,
    User,
)
from pipeline.review import ReviewContext, ReviewFacts, evaluate, touched_security_paths

HEAD = "3f2c0d9e7a41b6c58e2d9f0a1b3c4d5e6f708192"
PUSHED = datetime(2025, 3, 4, 9, 12, 41, 503000, tzinfo=timezone.utc)
ALICE, BOB, CAROL = User(11, "alice"), User(12, "bob"), User(13, "carol")
SETTINGS = ReviewSettings(approvals_required=1, security_group="ops/salt-security")


def _facts(**changes: object) -> ReviewFacts:
    base = ReviewFacts(
        merge_request=MergeRequest(42, "t", "opened", ALICE, HEAD, "topic", "main", "https://x/42"),
        approvals=Approvals((Approval(BOB, PUSHED + timedelta(hours=1)),), True, 0),
        versions=(DiffVersion(301, HEAD, "base", PUSHED, "collected"),),
        changed=ChangedFiles(("states/web/nginx.sls",), True),
        pipelines=(Pipeline(9001, HEAD, "success", "merge_request_event", "https://x/p/9001"),),
    )
    return replace(base, **changes)


def _checks(facts: ReviewFacts, settings: ReviewSettings = SETTINGS, **ctx: object) -> dict[str, bool]:
    result = evaluate(ReviewContext(facts=facts, settings=settings, head_sha=HEAD, **ctx))  # type: ignore[arg-type]
    return {c.id: c.ok for c in result.checks}


@pytest.mark.parametrize(
    ("path", "hit"),
    [
        ("_modules/ops_app.py", True),
        ("salt/_modules/x.py", True),
        ("my_modules/x.py", False),
        ("_states/ops_node.py", True),
        ("salt/policy.yaml", True),
        ("salt/policy.yaml.bak", False),
        ("states/web/nginx.sls", False),
        ("docs/_modules.md", False),
    ],
)
def test_security_path_patterns(path: str, hit: bool) -> None:
    patterns = ("salt/policy.yaml", "_modules/", "_states/")
    assert bool(touched_security_paths((path,), patterns)) is hit


def test_glob_patterns() -> None:
    assert touched_security_paths(("salt/waivers/web.yaml", "a.sls"), ("salt/waivers/*.yaml",)) == (
        "salt/waivers/web.yaml",
    )


def test_an_approval_at_the_very_moment_of_the_push_is_void() -> None:
    """Equal timestamps cannot be ordered: fail closed."""
    facts = _facts(approvals=Approvals((Approval(BOB, PUSHED),), True, 0))
    assert _checks(facts)["approvals"] is False
    facts = _facts(approvals=Approvals((Approval(BOB, PUSHED + timedelta(milliseconds=1)),), True, 0))
    assert _checks(facts)["approvals"] is True


def test_a_blocked_approver_does_not_count() -> None:
    blocked = User(12, "bob", state="blocked")
    facts = _facts(approvals=Approvals((Approval(blocked, PUSHED + timedelta(hours=1)),), True, 0))
    assert _checks(facts)["approvals"] is False


def test_closed_merge_request_is_refused() -> None:
    facts = _facts(merge_request=MergeRequest(42, "t", "closed", ALICE, HEAD, "topic", "main", ""))
    assert _checks(facts)["merge-request-state"] is False


def test_gitlab_own_rules_unsatisfied_is_a_reason() -> None:
    facts = _facts(approvals=Approvals((Approval(BOB, PUSHED + timedelta(hours=1)),), False, 1))
    checks = _checks(facts)
    assert checks["gitlab-rules"] is False and checks["approvals"] is True


def test_security_change_without_a_configured_group_is_refused() -> None:
    facts = _facts(changed=ChangedFiles(("_modules/ops_app.py",), True))
    assert _checks(facts, ReviewSettings(approvals_required=1, security_group=None))["security-approval"] is False


def test_zero_approvals_required_still_needs_a_security_approver() -> None:
    facts = _facts(
        approvals=Approvals((), True, 0),
        changed=ChangedFiles(("salt/policy.yaml",), True),
        security_members=(CAROL,),
    )
    checks = _checks(facts, ReviewSettings(approvals_required=0, security_group="ops/salt-security"))
    assert checks["approvals"] is True and checks["security-approval"] is False


def test_the_author_in_the_security_group_does_not_qualify() -> None:
    facts = _facts(
        approvals=Approvals((Approval(ALICE, PUSHED + timedelta(hours=1)), Approval(BOB, PUSHED + timedelta(hours=1))), True, 0),
        changed=ChangedFiles(("_states/ops_node.py",), True),
        security_members=(ALICE,),
    )
    assert _checks(facts)["security-approval"] is False


# --------------------------------------------------------------------------------------------------------------
# Inside the merge request pipeline: which jobs must have passed before the gate.

JOBS = (
    Job(5, "rollout:test", "rollout:test", "created", False),
    Job(4, "release", "release", "created", False),
    Job(3, "review", "review", "running", False),
    Job(2, "unit", "test", "success", False),
    Job(1, "lint", "lint", "success", False),
)


def _pipeline_ok(jobs: tuple[Job, ...], job_id: int | None = 3) -> bool:
    facts = _facts(
        pipelines=(Pipeline(9001, HEAD, "running", "merge_request_event", ""),),
        current_jobs=jobs,
    )
    return _checks(facts, pipeline_id=9001, job_id=job_id)["pipeline"]


def test_current_pipeline_with_earlier_stages_passed() -> None:
    assert _pipeline_ok(JOBS) is True


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        (Job(2, "unit", "test", "failed", False), False),
        (Job(2, "unit", "test", "failed", True), True),  # allowed to fail: GitLab counts it as passed
        (Job(2, "unit", "test", "canceled", False), False),
        (Job(2, "unit", "test", "running", False), False),
        (Job(2, "unit", "test", "skipped", False), True),
        (Job(2, "unit", "test", "manual", True), True),  # optional manual job
        (Job(2, "unit", "test", "manual", False), False),  # blocking manual job nobody played
        (Job(2, "unit", "test", "scheduled", False), False),  # delayed job still waiting
        (Job(2, "unit", "test", "created", False), True),  # its stage is not reached: a later stage
    ],
)
def test_current_pipeline_job_states(change: Job, ok: bool) -> None:
    jobs = tuple(change if j.id == change.id else j for j in JOBS)
    assert _pipeline_ok(jobs) is ok


def test_a_job_not_run_in_a_reached_stage_fails() -> None:
    """With needs: the gate could start while a job of a started stage waits: that is not 'passed'."""
    jobs = JOBS + (Job(6, "integration", "test", "created", False),)
    assert _pipeline_ok(jobs) is False


def test_another_job_in_the_gate_stage_still_running_fails() -> None:
    jobs = JOBS + (Job(7, "review:extra", "review", "pending", False),)
    assert _pipeline_ok(jobs) is False


def test_a_gate_that_is_not_a_job_of_the_pipeline_fails() -> None:
    assert _pipeline_ok(JOBS, job_id=999) is False


def test_nothing_passed_before_the_gate_fails() -> None:
    jobs = tuple(j for j in JOBS if j.status != "success")
    assert _pipeline_ok(jobs) is False


def test_outside_ci_the_newest_pipeline_for_the_head_decides() -> None:
    pipelines = (
        Pipeline(9002, HEAD, "failed", "merge_request_event", ""),
        Pipeline(9001, HEAD, "success", "merge_request_event", ""),
    )
    assert _checks(_facts(pipelines=pipelines))["pipeline"] is False
    assert _checks(_facts(pipelines=tuple(reversed(pipelines))))["pipeline"] is False
