"""GitLab behind a small interface: the review gate, the MR note and deployment records use only this.

* :mod:`pipeline.gitlab.models` - frozen facts (merge request, approvals, diff versions, notes, pipelines ...)
* :mod:`pipeline.gitlab.client` - :class:`GitLabClient` and its python-gitlab implementation
* :mod:`pipeline.gitlab.payload` - GitLab's JSON read into those facts, failing on a field it cannot use
* :mod:`pipeline.gitlab.ci` - the CI job's variables (:class:`CiEnvironment`)
"""

from __future__ import annotations

from pipeline.gitlab.ci import TOKEN_VARIABLE, CiEnvironment
from pipeline.gitlab.client import GitLabClient, PythonGitLabClient
from pipeline.gitlab.models import (
    Approval,
    Approvals,
    ChangedFiles,
    Deployment,
    DiffVersion,
    Job,
    MergeRequest,
    Note,
    Pipeline,
    User,
)


def client_from_ci(ci: CiEnvironment) -> GitLabClient:
    """The real client for the job's project; a :class:`~pipeline.errors.UsageError` naming missing variables."""
    ci.require("server_url", "project_id", "token")
    assert ci.server_url and ci.project_id and ci.token
    return PythonGitLabClient(ci.server_url, ci.token, ci.project_id)


__all__ = [
    "TOKEN_VARIABLE",
    "Approval",
    "Approvals",
    "ChangedFiles",
    "CiEnvironment",
    "Deployment",
    "DiffVersion",
    "GitLabClient",
    "Job",
    "MergeRequest",
    "Note",
    "Pipeline",
    "PythonGitLabClient",
    "User",
    "client_from_ci",
]
