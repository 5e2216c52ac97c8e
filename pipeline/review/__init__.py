"""The review gate: is this exact commit reviewed, and did its merge request pipeline pass?

Two halves, so the decision is a pure function that tests can drive with data (the data: :mod:`.model`):

* :func:`gather_facts` (:mod:`.facts`) asks GitLab (through :class:`~pipeline.gitlab.client.GitLabClient`) for
  everything the decision needs and returns :class:`ReviewFacts`. GitLab failing raises
  :class:`~pipeline.errors.GitLabError` (exit 2): the gate fails closed.
* :func:`evaluate` (:mod:`.rules`) decides from a :class:`ReviewContext` and returns a :class:`ReviewResult`
  holding every check, passed or not, with every reason (exit 0 approved, 1 not).

The rules (``review`` in ``salt/pipeline.yaml``):

1. the merge request is open (or merged), and its head is the commit under review, and GitLab has recorded the
   push of that head (its newest diff version is for that SHA);
2. at least ``approvals_required`` users other than the author approve, each approval given *after* the push
   of the head (a push after an approval voids it; an approval whose time cannot be told does not count);
3. GitLab's own approval rules, if the project has any, are satisfied too;
4. when the change touches ``security_paths`` (or GitLab cannot list all its files), one of those approvers is
   a member of ``security_group``;
5. the merge request pipeline for the head passed (inside that pipeline: every job before the gate passed).

:func:`review` runs both for a :class:`ReviewRequest`. After the merge, :func:`review_merged` runs the same gate
for a commit of the default branch: it finds the merge request that brought the commit there (:func:`find_merge`,
:mod:`.merged`) and evaluates it at the head it was merged with, so nothing reaches a deployment without the
review the merge request passed (docs/review.md, "After the merge").

Why approval time is compared with the diff version's ``created_at``: docs/review.md.
"""

from __future__ import annotations

from pipeline.config import ReviewSettings
from pipeline.gitlab.client import GitLabClient
from pipeline.review.facts import APPROVED_NOTE, gather_facts
from pipeline.review.merged import MergeLookup, find_merge
from pipeline.review.model import (
    ApproverVerdict,
    Check,
    MergedCommit,
    ReviewContext,
    ReviewFacts,
    ReviewRequest,
    ReviewResult,
    ReviewSubject,
)
from pipeline.review.rules import evaluate, touched_security_paths

__all__ = [
    "APPROVED_NOTE",
    "ApproverVerdict",
    "Check",
    "MergeLookup",
    "MergedCommit",
    "ReviewContext",
    "ReviewFacts",
    "ReviewRequest",
    "ReviewResult",
    "ReviewSubject",
    "evaluate",
    "find_merge",
    "gather_facts",
    "review",
    "review_merged",
    "touched_security_paths",
]


def review(request: ReviewRequest) -> ReviewResult:
    """Gather and evaluate: the whole gate for merge request ``request.iid`` at ``request.head_sha``."""
    facts = gather_facts(request.client, request.iid, head_sha=request.head_sha, settings=request.settings,
                         pipeline_id=request.pipeline_id)
    return evaluate(ReviewContext(facts=facts, **request.subject()))


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
        ReviewRequest(client=client, iid=lookup.merged.iid, head_sha=lookup.head_sha, settings=settings,
                      commit_sha=sha, merged=lookup.merged)
    )
