"""The review gate's data: what GitLab said (:class:`ReviewFacts`), what the gate decides from
(:class:`ReviewContext`), what it is asked (:class:`ReviewRequest`) and what it decides (:class:`ReviewResult`).

Plain frozen data; the rules are in :mod:`pipeline.review.rules`, the GitLab reads in :mod:`pipeline.review.facts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from pipeline.config import ReviewSettings
from pipeline.gitlab.client import GitLabClient
from pipeline.gitlab.models import Approvals, ChangedFiles, DiffVersion, Job, MergeRequest, Note, Pipeline, User


def short_sha(sha: str) -> str:
    """The 12 characters of a commit SHA every message of the gate shows."""
    return sha[:12]


@dataclass(frozen=True)
class MergedCommit:
    """A commit of ``branch`` (the default branch) and how merge request ``iid`` wrote it there.

    ``how`` is ``merge commit``, ``squash commit`` or ``fast-forward`` (the commit is the MR's head itself).
    """

    sha: str
    branch: str
    iid: int
    how: str

    def describe(self, head_sha: str) -> str:
        """The one line that says how the merge request wrote the commit (the ``merged-commit`` check's)."""
        return f"{short_sha(self.sha)} on {self.branch} is the {self.how} of !{self.iid} (head {short_sha(head_sha)})"


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


@dataclass(frozen=True, kw_only=True)
class ReviewSubject:
    """What the gate judges, shared by :class:`ReviewRequest` (asked) and :class:`ReviewContext` (decided).

    ``head_sha`` is the commit the approvals must stand for; ``commit_sha`` the commit the current pipeline
    runs (differs only in merged results pipelines); ``pipeline_id``/``job_id`` locate the gate's own job
    when it runs in CI. ``merged`` is set when the gate judges a merge request *after* its merge, for the
    commit it wrote on the default branch (:func:`pipeline.review.review_merged`).
    """

    settings: ReviewSettings
    head_sha: str
    commit_sha: str | None = None
    pipeline_id: int | None = None
    job_id: int | None = None
    merged: MergedCommit | None = None

    def subject(self) -> dict[str, Any]:
        """The :class:`ReviewSubject` fields, to build the other kind from this one."""
        return {f.name: getattr(self, f.name) for f in fields(ReviewSubject)}


@dataclass(frozen=True, kw_only=True)
class ReviewRequest(ReviewSubject):
    """The gate for merge request ``iid``, asked of GitLab through ``client`` (:func:`pipeline.review.review`)."""

    client: GitLabClient
    iid: int


@dataclass(frozen=True, kw_only=True)
class ReviewContext(ReviewSubject):
    """Everything :func:`~pipeline.review.rules.evaluate` decides from: the subject and what GitLab said."""

    facts: ReviewFacts


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
            **{name: getattr(self, name) for name in ("title", "web_url", "head_sha", "merged_sha", "branch")},
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
