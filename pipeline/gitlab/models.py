"""What saltpipe reads from and writes to GitLab, as frozen data.

The client (:mod:`pipeline.gitlab.client`, through :mod:`pipeline.gitlab.payload`) turns GitLab's JSON into
these types once, checking the fields the pipeline relies on; stages never see raw payloads. Timestamps are timezone-aware :class:`datetime` values as
GitLab's server stamped them, so they can be compared with each other (never with a local clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class User:
    """A GitLab user as embedded in other objects (``author``, ``approved_by[].user``, members).

    ``state`` is GitLab's account state (``active``, ``blocked``, ``deactivated`` ...).
    """

    id: int
    username: str
    name: str = ""
    state: str = "active"

    @property
    def handle(self) -> str:
        """``@username``, as GitLab shows it."""
        return f"@{self.username}"


@dataclass(frozen=True)
class MergeRequest:
    """The facts of a merge request the review gate needs.

    ``sha`` is the head commit of the source branch as GitLab currently knows it (once merged: the head at the
    merge). ``merge_commit_sha``/``squash_commit_sha`` are the commits the merge wrote on the target branch
    (``None`` when there is none: not merged yet, a fast-forward merge, no squash).
    """

    iid: int
    title: str
    state: str  # opened, closed, locked, merged
    author: User
    sha: str
    source_branch: str
    target_branch: str
    web_url: str
    draft: bool = False
    merge_commit_sha: str | None = None
    squash_commit_sha: str | None = None


@dataclass(frozen=True)
class Approval:
    """One current approval. ``approved_at`` is ``None`` when GitLab does not say (before GitLab 17.x)."""

    user: User
    approved_at: datetime | None


@dataclass(frozen=True)
class Approvals:
    """The ``/merge_requests/:iid/approvals`` answer: who approves now, and GitLab's own verdict.

    ``gitlab_approved``/``gitlab_approvals_left`` are GitLab's approval rules (which know nothing of SHAs);
    saltpipe's gate is stricter and only uses them as an additional condition.
    """

    approved_by: tuple[Approval, ...]
    gitlab_approved: bool | None
    gitlab_approvals_left: int | None


@dataclass(frozen=True)
class DiffVersion:
    """One merge request diff version (``/merge_requests/:iid/versions``): GitLab creates one per push.

    ``created_at`` is when GitLab recorded the push that made ``head_sha`` the head: the server-side moment
    after which an approval counts for that head. ``state`` is ``collected`` when every changed file is listed.
    """

    id: int
    head_sha: str
    base_sha: str
    created_at: datetime
    state: str


@dataclass(frozen=True)
class ChangedFiles:
    """The files a diff version touches (old and new paths of renames both listed).

    ``complete`` is ``False`` when GitLab could not list every file (an ``overflow`` diff): callers must then
    assume the change touches everything.
    """

    paths: tuple[str, ...]
    complete: bool


@dataclass(frozen=True)
class Note:
    """A merge request note (comment). ``system`` notes are written by GitLab itself (approvals, pushes)."""

    id: int
    body: str
    author: User
    system: bool
    created_at: datetime


@dataclass(frozen=True)
class Pipeline:
    """A pipeline as listed for a merge request."""

    id: int
    sha: str
    status: str  # created, pending, running, success, failed, canceled, skipped, manual, scheduled ...
    source: str
    web_url: str
    created_at: datetime | None = None
    user: User | None = None  # who started it (``/pipelines/:id``; listed pipelines may not say)


@dataclass(frozen=True)
class Job:
    """A job of a pipeline (the latest attempt; retried attempts are not listed)."""

    id: int
    name: str
    stage: str
    status: str
    allow_failure: bool
    web_url: str = ""
    user: User | None = None  # who started the job: for a manual job, who played it


@dataclass(frozen=True)
class Deployment:
    """A deployment record in an environment (``/projects/:id/deployments``)."""

    id: int
    iid: int
    environment: str
    sha: str
    ref: str
    status: str  # created, running, success, failed, canceled, blocked


@dataclass(frozen=True)
class DeployAccess:
    """One entry of a protected environment's ``deploy_access_levels``: exactly one of a user, a group or a
    project role (``access_level`` 30 Developer, 40 Maintainer, 60 Admin) may deploy and play its manual jobs."""

    access_level: int | None
    user_id: int | None
    group_id: int | None
    description: str = ""


@dataclass(frozen=True)
class ProtectedEnvironment:
    """``/projects/:id/protected_environments/:name`` (GitLab Premium): who may deploy to the environment."""

    name: str
    deploy_access: tuple[DeployAccess, ...]
