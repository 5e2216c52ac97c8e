"""Where saltpipe finds GitLab when it runs in a CI job: GitLab's predefined variables plus one secret.

Read once from the environment into a frozen :class:`CiEnvironment`; commands pass it on, stages never read
``os.environ`` themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.errors import UsageError

#: The token variable: a masked (and protected, for deploy jobs) CI/CD variable, never the job token.
TOKEN_VARIABLE = "SALTPIPE_GITLAB_TOKEN"


def _int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise UsageError(f"{name}={raw!r} is not a number", hint=f"unset {name} or give GitLab's numeric value")
    return int(raw)


@dataclass(frozen=True)
class CiEnvironment:
    """The GitLab facts of the current job. Every field may be missing outside CI.

    ``head_sha`` is the commit approvals must stand for: ``CI_MERGE_REQUEST_SOURCE_BRANCH_SHA`` in a merged
    results pipeline (where ``CI_COMMIT_SHA`` is GitLab's temporary merge commit), else ``CI_COMMIT_SHA``.
    """

    server_url: str | None
    project_id: str | None
    mr_iid: int | None
    commit_sha: str | None
    head_sha: str | None
    ref: str | None
    is_tag: bool
    pipeline_id: int | None
    pipeline_url: str | None
    job_id: int | None
    token: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "CiEnvironment":
        """Read the job's variables from ``environ`` (``os.environ`` in the CLI, a dict in tests)."""
        commit = environ.get("CI_COMMIT_SHA") or None
        source_head = environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or None
        tag = environ.get("CI_COMMIT_TAG") or None
        return cls(
            server_url=environ.get("CI_SERVER_URL") or None,
            project_id=environ.get("CI_PROJECT_ID") or None,
            mr_iid=_int(environ, "CI_MERGE_REQUEST_IID"),
            commit_sha=commit,
            head_sha=source_head or commit,
            ref=tag or environ.get("CI_COMMIT_REF_NAME") or None,
            is_tag=tag is not None,
            pipeline_id=_int(environ, "CI_PIPELINE_ID"),
            pipeline_url=environ.get("CI_PIPELINE_URL") or None,
            job_id=_int(environ, "CI_JOB_ID"),
            token=environ.get(TOKEN_VARIABLE) or None,
        )

    @property
    def can_reach_gitlab(self) -> bool:
        """True when server, project and token are all known (the condition for talking to GitLab at all)."""
        return bool(self.server_url and self.project_id and self.token)

    def require(self, *names: str) -> None:
        """Raise one :class:`UsageError` naming every missing variable among ``names`` (field names)."""
        variables = {
            "server_url": "CI_SERVER_URL",
            "project_id": "CI_PROJECT_ID",
            "mr_iid": "CI_MERGE_REQUEST_IID (or --mr)",
            "commit_sha": "CI_COMMIT_SHA (or --sha)",
            "head_sha": "CI_COMMIT_SHA (or --sha)",
            "ref": "CI_COMMIT_REF_NAME",
            "token": TOKEN_VARIABLE,
        }
        missing = [variables.get(n, n) for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise UsageError(
                f"missing {', '.join(missing)}",
                hint="run it in a GitLab CI job (merge request or default-branch pipeline) or export these variables; "
                f"{TOKEN_VARIABLE} is a masked CI/CD variable holding an access token with the api scope",
            )
