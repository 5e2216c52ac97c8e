"""The review gate's reads: :func:`gather_facts` asks GitLab everything the decision needs, once.

GitLab failing raises :class:`~pipeline.errors.GitLabError` (exit 2): the gate fails closed.
"""

from __future__ import annotations

from pipeline.config import ReviewSettings
from pipeline.gitlab.client import GitLabClient
from pipeline.gitlab.models import Note
from pipeline.review.model import ReviewFacts
from pipeline.review.rules import touched_security_paths

#: The body of the system note GitLab writes when someone approves (every version since approvals exist).
APPROVED_NOTE = "approved this merge request"


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
