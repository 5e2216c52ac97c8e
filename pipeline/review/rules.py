"""The review gate's rules (pure): :func:`evaluate` decides from a :class:`ReviewContext` alone.

Every check is run and reported, none short-circuits; the rules themselves are listed in :mod:`pipeline.review`.
Why approval time is compared with the diff version's ``created_at``: docs/review.md.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime

from pipeline.gitlab.models import Approvals, Job, MergeRequest, Note, Pipeline, User
from pipeline.review.model import ApproverVerdict, Check, MergedCommit, ReviewContext, ReviewResult, short_sha

#: Job statuses of jobs waiting for their stage to be reached. A manual or delayed job is ``created`` until
#: then and only becomes ``manual``/``scheduled`` once its stage (or its ``needs``) is reached.
_NOT_STARTED = frozenset({"created"})


def touched_security_paths(paths: tuple[str, ...], patterns: tuple[str, ...]) -> tuple[str, ...]:
    """The ``paths`` (repository-relative) that ``patterns`` cover, in order.

    A pattern ending in ``/`` is a directory, matched at the top or at any depth (``_modules/`` covers
    ``_modules/ops_app.py`` and ``salt/_modules/x.py``); one with ``*?[`` is a glob on the whole path; any
    other is a file, matched exactly or as a trailing path (``salt/policy.yaml``).
    """
    hits: list[str] = []
    for path in paths:
        norm = path.lstrip("/")
        for pattern in patterns:
            pat = pattern.lstrip("/")
            if any(c in pat for c in "*?["):
                hit = fnmatch.fnmatchcase(norm, pat)
            elif pat.endswith("/"):
                hit = norm.startswith(pat) or f"/{pat}" in f"/{norm}"
            else:
                hit = norm == pat or norm.endswith(f"/{pat}")
            if hit:
                hits.append(path)
                break
    return tuple(hits)


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def _check_merged(merged: MergedCommit, mr: MergeRequest) -> Check:
    """After the merge: the merge request (as fetched again now) still says it wrote this commit there."""
    wrote = {"merge commit": mr.merge_commit_sha, "squash commit": mr.squash_commit_sha, "fast-forward": mr.sha}
    if mr.target_branch == merged.branch and wrote.get(merged.how) == merged.sha:
        return Check("merged-commit", True, merged.describe(mr.sha))
    return Check(
        "merged-commit",
        False,
        f"merge request !{mr.iid} no longer says it wrote {short_sha(merged.sha)} on {merged.branch} "
        f"(target {mr.target_branch}, head {short_sha(mr.sha)}, merge commit {mr.merge_commit_sha}, "
        f"squash commit {mr.squash_commit_sha})",
    )


def _check_state(mr: MergeRequest, merged: MergedCommit | None) -> Check:
    if merged is not None:
        # After the merge only `merged` is right: an MR still open (or closed) did not put this commit on the
        # default branch, whatever its approvals say.
        if mr.state == "merged":
            return Check("merge-request-state", True, f"merge request !{mr.iid} is merged")
        return Check(
            "merge-request-state",
            False,
            f"merge request !{mr.iid} is {mr.state}, not merged: it did not bring {short_sha(merged.sha)} to "
            f"{merged.branch}",
        )
    if mr.state in ("opened", "merged"):
        return Check("merge-request-state", True, f"merge request !{mr.iid} is {mr.state}")
    return Check(
        "merge-request-state",
        False,
        f"merge request !{mr.iid} is {mr.state}: only an open (or merged) merge request can pass review",
    )


def _check_head(ctx: ReviewContext) -> tuple[Check, datetime | None]:
    """The head under review is the MR's head and GitLab recorded its push; returns when it was pushed."""
    facts, head = ctx.facts, ctx.head_sha
    mr = facts.merge_request
    if mr.sha != head:
        return (
            Check(
                "head-sha",
                False,
                f"the merge request's head is {short_sha(mr.sha)}, not {short_sha(head)}: a newer push exists, and "
                "approvals are judged for the newest head only (its own pipeline runs this gate again)",
            ),
            None,
        )
    if not facts.versions:
        return (
            Check(
                "head-sha",
                False,
                f"GitLab lists no diff versions for !{mr.iid}: cannot tell when {short_sha(head)} was pushed",
            ),
            None,
        )
    newest = facts.versions[0]
    if newest.head_sha != head:
        return (
            Check(
                "head-sha",
                False,
                f"GitLab's newest diff version of !{mr.iid} is for {short_sha(newest.head_sha)}, not {short_sha(head)}: "
                "GitLab has not finished processing the push; retry the job in a minute",
            ),
            None,
        )
    return (
        Check(
            "head-sha", True, f"head {short_sha(head)} pushed at {_stamp(newest.created_at)} (diff version {newest.id})"
        ),
        newest.created_at,
    )


def _approval_time(user: User, given: datetime | None, notes: tuple[Note, ...]) -> tuple[datetime | None, str]:
    """When ``user`` approved: GitLab's ``approved_at``, else their latest "approved" system note."""
    if given is not None:
        return given, "approved_at"
    mine = [n.created_at for n in notes if n.author.id == user.id]
    if mine:
        return max(mine), "system note"
    return None, ""


def _judge_approvals(ctx: ReviewContext, pushed_at: datetime | None) -> tuple[ApproverVerdict, ...]:
    facts = ctx.facts
    author = facts.merge_request.author
    members = {u.id for u in facts.security_members or () if u.state == "active"}
    verdicts = []
    for approval in facts.approvals.approved_by:
        user = approval.user
        when, source = _approval_time(user, approval.approved_at, facts.approval_notes)
        member = user.id in members
        if user.id == author.id:
            verdict = ApproverVerdict(user, when, False, f"{user.handle} is the author: a self-approval does not count")
        elif user.state != "active":
            verdict = ApproverVerdict(user, when, False, f"{user.handle}'s account is {user.state}")
        elif when is None:
            verdict = ApproverVerdict(
                user,
                None,
                False,
                f"{user.handle}'s approval has no time (no approved_at, no 'approved this merge request' system "
                "note): cannot tell whether it predates the last push, so it does not count",
            )
        elif pushed_at is None:
            verdict = ApproverVerdict(
                user, when, False, f"{user.handle}'s approval cannot be checked against the head's push (see head-sha)"
            )
        elif when <= pushed_at:
            verdict = ApproverVerdict(
                user,
                when,
                False,
                f"{user.handle} approved at {_stamp(when)}, before {short_sha(ctx.head_sha)} was pushed at "
                f"{_stamp(pushed_at)}: the push voided it; {user.handle} must approve again",
            )
        else:
            verdict = ApproverVerdict(
                user, when, True, f"{user.handle} approved at {_stamp(when)} ({source}), after the push", member
            )
        verdicts.append(verdict)
    return tuple(verdicts)


def _check_approvals(ctx: ReviewContext, verdicts: tuple[ApproverVerdict, ...]) -> Check:
    required = ctx.settings.approvals_required
    valid = [v for v in verdicts if v.counts]
    names = ", ".join(v.user.handle for v in valid) or "nobody"
    details = tuple(v.why for v in verdicts if not v.counts)
    if len(valid) >= required:
        return Check("approvals", True, f"{len(valid)} valid approval(s) of {required} required ({names})", details)
    if not verdicts:
        details = ("nobody has approved the merge request",)
    return Check(
        "approvals",
        False,
        f"{len(valid)} valid approval(s) for {short_sha(ctx.head_sha)}, {required} required from users other "
        f"than the author ({names})",
        details,
    )


def _check_gitlab_rules(approvals: Approvals) -> Check:
    if approvals.gitlab_approved is False:
        left = approvals.gitlab_approvals_left
        more = f" ({left} approval(s) left)" if left is not None else ""
        return Check(
            "gitlab-rules", False, f"GitLab's own approval rules for this merge request are not satisfied{more}"
        )
    return Check("gitlab-rules", True, "GitLab's own approval rules are satisfied (or the project has none)")


def _check_security(
    ctx: ReviewContext, verdicts: tuple[ApproverVerdict, ...]
) -> tuple[Check, tuple[str, ...]]:
    settings, changed = ctx.settings, ctx.facts.changed
    group = settings.security_group
    if changed is None:
        touched: tuple[str, ...] = ()
        why = f"cannot tell which files {short_sha(ctx.head_sha)} changes (it is not GitLab's newest diff version)"
    else:
        touched = touched_security_paths(changed.paths, settings.security_paths)
        if not changed.complete:
            why = "GitLab lists only part of the change (the diff overflowed its limits)"
        elif touched:
            shown = ", ".join(touched[:5]) + (f" and {len(touched) - 5} more" if len(touched) > 5 else "")
            why = f"the change touches security paths: {shown}"
        else:
            return Check("security-approval", True, "the change touches no security path"), touched
    if not group:
        return (
            Check(
                "security-approval",
                False,
                f"{why}, but review.security_group is not set in pipeline.yaml, so no approver can qualify",
                ("set review.security_group to the GitLab group whose members approve such changes",),
            ),
            touched,
        )
    members = ctx.facts.security_members
    if members is None:
        return Check("security-approval", False, f"{why}, and the members of {group!r} are unknown"), touched
    qualified = [v for v in verdicts if v.counts and v.security_member]
    if qualified:
        names = ", ".join(v.user.handle for v in qualified)
        return Check("security-approval", True, f"{why}; approved by {group!r} member(s) {names}"), touched
    valid = ", ".join(v.user.handle for v in verdicts if v.counts) or "none"
    return (
        Check(
            "security-approval",
            False,
            f"{why}, and no valid approver is a member of {group!r} (valid approvers: {valid})",
            (f"ask a member of {group!r} to review and approve this head",),
        ),
        touched,
    )


def _check_current_pipeline(ctx: ReviewContext, pipeline: Pipeline, jobs: tuple[Job, ...]) -> Check:
    """Inside the merge request pipeline: every job before the gate's stage passed, none is still going.

    The REST API gives no stage order, so "before" is read from the jobs themselves: a job still ``created``
    waits for its stage, and a stage with a job past ``created`` has been reached; a ``created`` job in a
    reached stage (or in the gate's own stage) is a failure. This is exact for stage-ordered pipelines; the
    gate job must not use ``needs:`` (docs/review.md).
    """
    sha_ok = pipeline.sha in {ctx.head_sha, ctx.commit_sha}
    own = [j for j in jobs if j.id == ctx.job_id]
    others = [j for j in jobs if j.id != ctx.job_id]
    problems: list[str] = []
    if not sha_ok:
        problems.append(f"pipeline {pipeline.id} runs {short_sha(pipeline.sha)}, not the head {short_sha(ctx.head_sha)}")
    if ctx.job_id is not None and not own:
        problems.append(f"job {ctx.job_id} (this gate) is not a job of pipeline {pipeline.id}")
    reached = {j.stage for j in others if j.status not in _NOT_STARTED} | {j.stage for j in own}
    for job in others:
        label = f"job {job.name!r} ({job.stage})"
        if job.status in ("success", "skipped"):
            continue
        if job.allow_failure and job.status in ("failed", "manual"):
            continue  # GitLab itself counts an allowed failure, or an optional manual job, as passing
        if job.status == "manual":
            problems.append(f"{label} is a blocking manual job nobody has played")
            continue
        if job.status in _NOT_STARTED:
            if job.stage in reached:
                problems.append(f"{label} has not run ({job.status}) although its stage has been reached")
            continue
        problems.append(f"{label} is {job.status}" + (f": {job.web_url}" if job.web_url else ""))
    if not any(j.status == "success" for j in others):
        problems.append(f"no job of pipeline {pipeline.id} other than this gate has passed")
    if problems:
        return Check(
            "pipeline",
            False,
            f"merge request pipeline {pipeline.id} has not passed the jobs before the review gate",
            tuple(problems),
        )
    return Check("pipeline", True, f"every job of pipeline {pipeline.id} before the review gate passed")


def _check_pipeline(ctx: ReviewContext) -> Check:
    facts = ctx.facts
    current = next((p for p in facts.pipelines if p.id == ctx.pipeline_id), None)
    if ctx.merged is None and current is not None and facts.current_jobs is not None:
        return _check_current_pipeline(ctx, current, facts.current_jobs)
    # After the merge the gate runs in the default branch's pipeline, never one of the MR's: the evidence is
    # the MR's own pipeline, finished. A merge train's pipeline runs on the very commit that lands on the
    # branch, so a pipeline of the MR for the merged commit counts as well as one for the head.
    shas = {ctx.head_sha} | ({ctx.merged.sha} if ctx.merged is not None else set())
    for_head = [p for p in facts.pipelines if p.sha in shas]
    if not for_head:
        return Check(
            "pipeline",
            False,
            f"no pipeline of merge request !{facts.merge_request.iid} ran for {short_sha(ctx.head_sha)}",
            ("run the merge request pipeline for this head",),
        )
    latest = max(for_head, key=lambda p: p.id)
    if latest.status != "success":
        return Check(
            "pipeline",
            False,
            f"the latest pipeline for {short_sha(ctx.head_sha)} ({latest.id}) is {latest.status}, not success",
            (latest.web_url,) if latest.web_url else (),
        )
    return Check("pipeline", True, f"pipeline {latest.id} for {short_sha(ctx.head_sha)} passed")


def evaluate(ctx: ReviewContext) -> ReviewResult:
    """Decide the gate from ``ctx`` alone: every check is run and reported, none short-circuits."""
    head_check, pushed_at = _check_head(ctx)
    verdicts = _judge_approvals(ctx, pushed_at)
    security_check, touched = _check_security(ctx, verdicts)
    merged = () if ctx.merged is None else (_check_merged(ctx.merged, ctx.facts.merge_request),)
    checks = (
        *merged,
        _check_state(ctx.facts.merge_request, ctx.merged),
        head_check,
        _check_approvals(ctx, verdicts),
        _check_gitlab_rules(ctx.facts.approvals),
        security_check,
        _check_pipeline(ctx),
    )
    return ReviewResult(
        iid=ctx.facts.merge_request.iid,
        head_sha=ctx.head_sha,
        checks=checks,
        approvers=verdicts,
        pushed_at=pushed_at,
        security_paths=touched,
        merged_sha=ctx.merged.sha if ctx.merged is not None else None,
        branch=ctx.merged.branch if ctx.merged is not None else None,
        title=ctx.facts.merge_request.title,
        web_url=ctx.facts.merge_request.web_url,
    )
