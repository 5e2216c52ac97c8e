"""The review gate: is this exact commit reviewed, and did its merge request pipeline pass?

Two halves, so the decision is a pure function that tests can drive with data:

* :func:`gather_facts` asks GitLab (through :class:`~pipeline.gitlab.client.GitLabClient`) for everything the
  decision needs and returns :class:`ReviewFacts`. GitLab failing raises :class:`~pipeline.errors.GitLabError`
  (exit 2): the gate fails closed.
* :func:`evaluate` decides from a :class:`ReviewContext` and returns a :class:`ReviewResult` holding every
  check, passed or not, with every reason (exit 0 approved, 1 not).

The rules (``review`` in ``salt/pipeline.yaml``):

1. the merge request is open (or merged), and its head is the commit under review, and GitLab has recorded the
   push of that head (its newest diff version is for that SHA);
2. at least ``approvals_required`` users other than the author approve, each approval given *after* the push
   of the head (a push after an approval voids it; an approval whose time cannot be told does not count);
3. GitLab's own approval rules, if the project has any, are satisfied too;
4. when the change touches ``security_paths`` (or GitLab cannot list all its files), one of those approvers is
   a member of ``security_group``;
5. the merge request pipeline for the head passed (inside that pipeline: every job before the gate passed).

After the merge, :func:`review_merged` runs the same gate for a commit of the default branch: it finds the merge
request that brought the commit there (:func:`find_merge`) and evaluates it at the head it was merged with, so
nothing reaches a deployment without the review the merge request passed (docs/review.md, "After the merge").

Why approval time is compared with the diff version's ``created_at``: docs/review.md.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.config import ReviewSettings
from pipeline.gitlab.client import GitLabClient
from pipeline.gitlab.models import (
    Approvals,
    ChangedFiles,
    DiffVersion,
    Job,
    MergeRequest,
    Note,
    Pipeline,
    User,
)

#: The body of the system note GitLab writes when someone approves (every version since approvals exist).
APPROVED_NOTE = "approved this merge request"

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


# --------------------------------------------------------------------------------------------------------------
# Facts and context


@dataclass(frozen=True)
class MergedCommit:
    """A commit of ``branch`` (the default branch) and how merge request ``iid`` wrote it there.

    ``how`` is ``merge commit``, ``squash commit`` or ``fast-forward`` (the commit is the MR's head itself).
    """

    sha: str
    branch: str
    iid: int
    how: str


@dataclass(frozen=True)
class ReviewFacts:
    """What GitLab said, fetched once by :func:`gather_facts`.

    ``changed`` is ``None`` when GitLab has no diff version for the head; ``approval_notes`` holds GitLab's
    "approved this merge request" system notes (fetched only when an approval lacks ``approved_at``);
    ``current_jobs`` the jobs of the pipeline the gate runs in, when that is one of the merge request's
    pipelines; ``security_members`` the security group's members, when the change needs one of them.
    """

    merge_request: MergeRequest
    approvals: Approvals
    versions: tuple[DiffVersion, ...]
    changed: ChangedFiles | None
    pipelines: tuple[Pipeline, ...]
    approval_notes: tuple[Note, ...] = ()
    current_jobs: tuple[Job, ...] | None = None
    security_members: tuple[User, ...] | None = None


@dataclass(frozen=True)
class ReviewContext:
    """Everything :func:`evaluate` decides from.

    ``head_sha`` is the commit the approvals must stand for; ``commit_sha`` the commit the current pipeline
    runs (differs only in merged results pipelines); ``pipeline_id``/``job_id`` locate the gate's own job
    when it runs in CI. ``merged`` is set when the gate judges a merge request *after* its merge, for the
    commit it wrote on the default branch (:func:`review_merged`).
    """

    facts: ReviewFacts
    settings: ReviewSettings
    head_sha: str
    commit_sha: str | None = None
    pipeline_id: int | None = None
    job_id: int | None = None
    merged: MergedCommit | None = None


# --------------------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class Check:
    """One rule's outcome: stable ``id``, ``ok``, a one-line ``message`` and the ``details`` behind it."""

    id: str
    ok: bool
    message: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApproverVerdict:
    """How one current approval was judged: ``counts`` toward the gate or not, and ``why``."""

    user: User
    approved_at: datetime | None
    counts: bool
    why: str
    security_member: bool = False


@dataclass(frozen=True)
class ReviewResult:
    """The gate's decision. ``approved`` only when every check passed; ``reasons`` say why not."""

    iid: int | None
    head_sha: str
    checks: tuple[Check, ...]
    approvers: tuple[ApproverVerdict, ...] = ()
    pushed_at: datetime | None = None
    security_paths: tuple[str, ...] = field(default=())
    #: ``--merged``: the default branch's commit under review and its branch (``iid`` is ``None`` when no
    #: merge request brought it there).
    merged_sha: str | None = None
    branch: str | None = None
    title: str = ""
    web_url: str = ""

    @property
    def approved(self) -> bool:
        """True only when every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every reason the gate refused, most important first (a failing check, then its details)."""
        out: list[str] = []
        for check in self.checks:
            if not check.ok:
                out.append(check.message)
                out.extend(f"  {d}" for d in check.details)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        return {
            "approved": self.approved,
            "merge_request": self.iid,
            "title": self.title,
            "web_url": self.web_url,
            "head_sha": self.head_sha,
            "merged_sha": self.merged_sha,
            "branch": self.branch,
            "pushed_at": self.pushed_at.isoformat() if self.pushed_at else None,
            "security_paths_touched": list(self.security_paths),
            "checks": [
                {"id": c.id, "ok": c.ok, "message": c.message, "details": list(c.details)} for c in self.checks
            ],
            "approvers": [
                {
                    "username": v.user.username,
                    "approved_at": v.approved_at.isoformat() if v.approved_at else None,
                    "counts": v.counts,
                    "security_member": v.security_member,
                    "why": v.why,
                }
                for v in self.approvers
            ],
            "reasons": list(self.reasons),
        }


# --------------------------------------------------------------------------------------------------------------
# Gathering (impure: talks to GitLab)


def gather_facts(
    client: GitLabClient,
    iid: int,
    *,
    head_sha: str,
    settings: ReviewSettings,
    pipeline_id: int | None = None,
) -> ReviewFacts:
    """Ask GitLab for the facts of merge request ``iid``. Raises :class:`~pipeline.errors.GitLabError`.

    Optional reads are made only when the decision needs them: system notes when an approval carries no
    ``approved_at``, the current pipeline's jobs when the gate runs inside one of the merge request's
    pipelines, the security group's members when the change touches security paths (or cannot be listed).
    """
    mr = client.merge_request(iid)
    approvals = client.approvals(iid)
    versions = client.diff_versions(iid)
    newest = versions[0] if versions else None
    changed = client.changed_files(iid, newest.id) if newest is not None and newest.head_sha == head_sha else None
    pipelines = client.merge_request_pipelines(iid)

    notes: tuple[Note, ...] = ()
    if any(a.approved_at is None for a in approvals.approved_by):
        notes = tuple(n for n in client.notes(iid) if n.system and n.body.strip().lower() == APPROVED_NOTE)

    jobs = None
    if pipeline_id is not None and any(p.id == pipeline_id for p in pipelines):
        jobs = client.pipeline_jobs(pipeline_id)

    members = None
    needs_security = (
        changed is None
        or not changed.complete
        or bool(touched_security_paths(changed.paths, settings.security_paths))
    )
    if settings.security_group and needs_security:
        members = client.group_members(settings.security_group)

    return ReviewFacts(
        merge_request=mr,
        approvals=approvals,
        versions=versions,
        changed=changed,
        pipelines=pipelines,
        approval_notes=notes,
        current_jobs=jobs,
        security_members=members,
    )


# --------------------------------------------------------------------------------------------------------------
# Deciding (pure)


def _short(sha: str) -> str:
    return sha[:12]


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def _check_merged(merged: MergedCommit, mr: MergeRequest) -> Check:
    """After the merge: the merge request (as fetched again now) still says it wrote this commit there."""
    wrote = {"merge commit": mr.merge_commit_sha, "squash commit": mr.squash_commit_sha, "fast-forward": mr.sha}
    if mr.target_branch == merged.branch and wrote.get(merged.how) == merged.sha:
        return Check(
            "merged-commit",
            True,
            f"{_short(merged.sha)} on {merged.branch} is the {merged.how} of !{mr.iid} (head {_short(mr.sha)})",
        )
    return Check(
        "merged-commit",
        False,
        f"merge request !{mr.iid} no longer says it wrote {_short(merged.sha)} on {merged.branch} "
        f"(target {mr.target_branch}, head {_short(mr.sha)}, merge commit {mr.merge_commit_sha}, "
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
            f"merge request !{mr.iid} is {mr.state}, not merged: it did not bring {_short(merged.sha)} to "
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
                f"the merge request's head is {_short(mr.sha)}, not {_short(head)}: a newer push exists, and "
                "approvals are judged for the newest head only (its own pipeline runs this gate again)",
            ),
            None,
        )
    if not facts.versions:
        return (
            Check(
                "head-sha",
                False,
                f"GitLab lists no diff versions for !{mr.iid}: cannot tell when {_short(head)} was pushed",
            ),
            None,
        )
    newest = facts.versions[0]
    if newest.head_sha != head:
        return (
            Check(
                "head-sha",
                False,
                f"GitLab's newest diff version of !{mr.iid} is for {_short(newest.head_sha)}, not {_short(head)}: "
                "GitLab has not finished processing the push; retry the job in a minute",
            ),
            None,
        )
    return (
        Check(
            "head-sha", True, f"head {_short(head)} pushed at {_stamp(newest.created_at)} (diff version {newest.id})"
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
                f"{user.handle} approved at {_stamp(when)}, before {_short(ctx.head_sha)} was pushed at "
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
        f"{len(valid)} valid approval(s) for {_short(ctx.head_sha)}, {required} required from users other "
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
        why = f"cannot tell which files {_short(ctx.head_sha)} changes (it is not GitLab's newest diff version)"
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
        problems.append(f"pipeline {pipeline.id} runs {_short(pipeline.sha)}, not the head {_short(ctx.head_sha)}")
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
            f"no pipeline of merge request !{facts.merge_request.iid} ran for {_short(ctx.head_sha)}",
            ("run the merge request pipeline for this head",),
        )
    latest = max(for_head, key=lambda p: p.id)
    if latest.status != "success":
        return Check(
            "pipeline",
            False,
            f"the latest pipeline for {_short(ctx.head_sha)} ({latest.id}) is {latest.status}, not success",
            (latest.web_url,) if latest.web_url else (),
        )
    return Check("pipeline", True, f"pipeline {latest.id} for {_short(ctx.head_sha)} passed")


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


def review(
    client: GitLabClient,
    iid: int,
    *,
    head_sha: str,
    settings: ReviewSettings,
    commit_sha: str | None = None,
    pipeline_id: int | None = None,
    job_id: int | None = None,
    merged: MergedCommit | None = None,
) -> ReviewResult:
    """Gather and evaluate: the whole gate for merge request ``iid`` at ``head_sha``."""
    facts = gather_facts(client, iid, head_sha=head_sha, settings=settings, pipeline_id=pipeline_id)
    ctx = ReviewContext(
        facts=facts,
        settings=settings,
        head_sha=head_sha,
        commit_sha=commit_sha,
        pipeline_id=pipeline_id,
        job_id=job_id,
        merged=merged,
    )
    return evaluate(ctx)


# --------------------------------------------------------------------------------------------------------------
# After the merge: which merge request brought this commit to the default branch?


@dataclass(frozen=True)
class MergeLookup:
    """What :func:`find_merge` found: the one merge request that wrote ``sha`` on ``branch`` (``merged``, with
    the head it was merged with), or why there is none (``check`` failed, its details judge each candidate)."""

    sha: str
    branch: str
    merged: MergedCommit | None
    head_sha: str | None
    check: Check


def _how_merged(mr: MergeRequest, sha: str) -> str | None:
    """How ``mr`` wrote ``sha`` on its target, or ``None`` if it did not."""
    if mr.merge_commit_sha == sha:
        return "merge commit"
    if mr.squash_commit_sha == sha:
        return "squash commit"
    if mr.sha == sha:
        # Fast-forward merge (or the head pushed to the target by hand, which GitLab marks as merging the MR):
        # the commit is the reviewed head itself.
        return "fast-forward"
    return None


def find_merge(merge_requests: tuple[MergeRequest, ...], sha: str, branch: str) -> MergeLookup:
    """Pick, among the merge requests GitLab relates to ``sha``, the one that merged it into ``branch``.

    Kept: state ``merged``, target ``branch``, and ``sha`` is its merge commit, its squash commit or (a
    fast-forward) its head. A merge request that merely *contains* ``sha`` did not bring it: an open one, one
    merged elsewhere, or one whose merge commit is another. None kept: the commit reached the branch without
    a merge request; more than one: ambiguous. Both refuse.
    """
    kept: list[tuple[MergeRequest, str]] = []
    others: list[str] = []
    for mr in merge_requests:
        how = _how_merged(mr, sha)
        if mr.state != "merged":
            others.append(f"!{mr.iid} is {mr.state} (target {mr.target_branch})")
        elif mr.target_branch != branch:
            others.append(f"!{mr.iid} was merged into {mr.target_branch}, not {branch}")
        elif how is None:
            landed = mr.merge_commit_sha or mr.squash_commit_sha or mr.sha
            others.append(f"!{mr.iid} contains {_short(sha)} but landed on {branch} as {_short(landed)}")
        else:
            kept.append((mr, how))
    if len(kept) == 1:
        mr, how = kept[0]
        merged = MergedCommit(sha=sha, branch=branch, iid=mr.iid, how=how)
        check = Check(
            "merged-commit", True, f"{_short(sha)} on {branch} is the {how} of !{mr.iid} (head {_short(mr.sha)})"
        )
        return MergeLookup(sha, branch, merged, mr.sha, check)
    if kept:
        names = ", ".join(f"!{mr.iid} ({how})" for mr, how in kept)
        check = Check(
            "merged-commit",
            False,
            f"commit {_short(sha)} on {branch} is claimed by several merge requests ({names}): ambiguous, "
            "so none is trusted",
            ("deploy a commit that exactly one merge request brought to the branch",),
        )
        return MergeLookup(sha, branch, None, None, check)
    details = tuple(others) + (
        "only a merge request merged into the default branch (merge commit, squash commit or fast-forward) "
        "can deploy; open one for this change and merge it",
    )
    check = Check("merged-commit", False, f"commit {_short(sha)} reached {branch} without a merge request", details)
    return MergeLookup(sha, branch, None, None, check)


def review_merged(client: GitLabClient, sha: str, *, settings: ReviewSettings) -> ReviewResult:
    """The gate after the merge: ``sha`` (a commit of the default branch) must come from a merge request that
    passes :func:`evaluate` at the head it was merged with. Raises :class:`~pipeline.errors.GitLabError`.

    The gate runs in the default branch's pipeline, not in one of the merge request's, so it is not given a
    pipeline or job id: the pipeline check judges the merge request's own finished pipeline.
    """
    branch = client.default_branch()
    lookup = find_merge(client.commit_merge_requests(sha), sha, branch)
    if lookup.merged is None or lookup.head_sha is None:
        return ReviewResult(iid=None, head_sha=sha, checks=(lookup.check,), merged_sha=sha, branch=branch)
    return review(
        client,
        lookup.merged.iid,
        head_sha=lookup.head_sha,
        settings=settings,
        commit_sha=sha,
        merged=lookup.merged,
    )
