"""After the merge: which merge request brought a commit to the default branch (:func:`find_merge`, pure)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.gitlab.models import MergeRequest
from pipeline.review.model import Check, MergedCommit, short_sha


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
            others.append(f"!{mr.iid} contains {short_sha(sha)} but landed on {branch} as {short_sha(landed)}")
        else:
            kept.append((mr, how))
    if len(kept) == 1:
        mr, how = kept[0]
        merged = MergedCommit(sha=sha, branch=branch, iid=mr.iid, how=how)
        check = Check("merged-commit", True, merged.describe(mr.sha))
        return MergeLookup(sha, branch, merged, mr.sha, check)
    if kept:
        names = ", ".join(f"!{mr.iid} ({how})" for mr, how in kept)
        check = Check(
            "merged-commit",
            False,
            f"commit {short_sha(sha)} on {branch} is claimed by several merge requests ({names}): ambiguous, "
            "so none is trusted",
            ("deploy a commit that exactly one merge request brought to the branch",),
        )
        return MergeLookup(sha, branch, None, None, check)
    details = tuple(others) + (
        "only a merge request merged into the default branch (merge commit, squash commit or fast-forward) "
        "can deploy; open one for this change and merge it",
    )
    check = Check("merged-commit", False, f"commit {short_sha(sha)} reached {branch} without a merge request", details)
    return MergeLookup(sha, branch, None, None, check)
