"""The small GitLab interface saltpipe needs, and its real implementation over python-gitlab.

:class:`GitLabClient` is what the review gate, the MR note and deployment recording call; it speaks in the
frozen types of :mod:`pipeline.gitlab.models`. :class:`PythonGitLabClient` implements it with python-gitlab's
HTTP layer (authentication, pagination, rate-limit handling) against the REST API v4 of one project; reading
GitLab's JSON into those types is :mod:`pipeline.gitlab.payload`.

Failure contract (the review gate fails closed on it): every way GitLab can fail - unreachable, token
refused, an HTTP error, an answer that is not the JSON shape we expect - raises
:class:`pipeline.errors.GitLabError` (exit code 2). Nothing is retried silently except GitLab's own
``429 Too Many Requests`` (python-gitlab obeys ``Retry-After``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import gitlab
import gitlab.exceptions
import requests

from pipeline.errors import GitLabError
from pipeline.gitlab.models import (
    Approval,
    Approvals,
    ChangedFiles,
    Deployment,
    DeployAccess,
    DiffVersion,
    Job,
    MergeRequest,
    Note,
    Pipeline,
    ProtectedEnvironment,
    User,
)
from pipeline.gitlab.payload import (
    Payload,
    optional_int,
    parse_deployment,
    parse_diff_version,
    parse_job,
    parse_merge_request,
    parse_note,
    parse_pipeline,
    parse_user,
    payload_list,
)

T = TypeVar("T")

#: Deployment statuses GitLab accepts when a deployment is created or updated through the API.
DEPLOYMENT_STATUSES = ("running", "success", "failed", "canceled")


class GitLabClient(abc.ABC):
    """What saltpipe asks of GitLab, for one project. Every method may raise :class:`GitLabError`."""

    @abc.abstractmethod
    def current_user(self) -> User:
        """The user the token belongs to (the author of saltpipe's notes)."""

    @abc.abstractmethod
    def merge_request(self, iid: int) -> MergeRequest:
        """The merge request ``iid`` of the project."""

    @abc.abstractmethod
    def default_branch(self) -> str:
        """The project's default branch (what the deploy pipeline runs on)."""

    @abc.abstractmethod
    def commit_merge_requests(self, sha: str) -> tuple[MergeRequest, ...]:
        """The merge requests GitLab relates to commit ``sha``: those whose diff contains it, and those whose
        merge or squash commit it is (``/repository/commits/:sha/merge_requests``), in any state and target."""

    @abc.abstractmethod
    def approvals(self, iid: int) -> Approvals:
        """Who approves merge request ``iid`` now (``/approvals``; available in every tier since 13.2)."""

    @abc.abstractmethod
    def diff_versions(self, iid: int) -> tuple[DiffVersion, ...]:
        """Every diff version of merge request ``iid``, newest first."""

    @abc.abstractmethod
    def changed_files(self, iid: int, version_id: int) -> ChangedFiles:
        """The files diff version ``version_id`` of merge request ``iid`` changes."""

    @abc.abstractmethod
    def notes(self, iid: int) -> tuple[Note, ...]:
        """Every note of merge request ``iid`` (system notes included), oldest first."""

    @abc.abstractmethod
    def merge_request_pipelines(self, iid: int) -> tuple[Pipeline, ...]:
        """Every pipeline GitLab lists for merge request ``iid``, newest first."""

    @abc.abstractmethod
    def pipeline_jobs(self, pipeline_id: int) -> tuple[Job, ...]:
        """The jobs of pipeline ``pipeline_id`` (latest attempt of each)."""

    @abc.abstractmethod
    def group_members(self, group: str) -> tuple[User, ...]:
        """Members of ``group`` (id or full path), inherited memberships included."""

    @abc.abstractmethod
    def pipeline(self, pipeline_id: int) -> Pipeline:
        """Pipeline ``pipeline_id`` of the project, with the user who started it."""

    @abc.abstractmethod
    def user_by_username(self, username: str) -> User | None:
        """The user whose username is ``username`` (``/users?username=``), ``None`` when there is none."""

    @abc.abstractmethod
    def member_access_level(self, user_id: int) -> int | None:
        """The user's access level in the project, inherited memberships included (``/members/all/:id``);
        ``None`` when the user is no member."""

    @abc.abstractmethod
    def protected_environment(self, name: str) -> ProtectedEnvironment | None:
        """Who may deploy to environment ``name``; ``None`` when it is not protected (GitLab answers 404, as
        it does on tiers without protected environments)."""

    @abc.abstractmethod
    def create_note(self, iid: int, body: str) -> Note:
        """Add a note to merge request ``iid``."""

    @abc.abstractmethod
    def update_note(self, iid: int, note_id: int, body: str) -> Note:
        """Replace the body of note ``note_id`` on merge request ``iid``."""

    def create_commit_comment(self, sha: str, body: str) -> None:
        """Comment on commit ``sha`` (rollout notifications of a commit no merge request relates to)."""
        raise GitLabError(f"{type(self).__name__} cannot comment on commits")

    @abc.abstractmethod
    def create_deployment(self, *, environment: str, sha: str, ref: str, tag: bool, status: str) -> Deployment:
        """Record a deployment of ``sha`` to ``environment`` (GitLab creates the environment if needed)."""

    @abc.abstractmethod
    def update_deployment(self, deployment_id: int, status: str) -> Deployment:
        """Set the status of deployment ``deployment_id``."""


class PythonGitLabClient(GitLabClient):
    """:class:`GitLabClient` for project ``project_id`` on ``url``, authenticated with ``token``.

    ``token`` is a personal, project or group access token (``read_api`` for the review gate; ``api`` to write
    notes and deployments). The CI job token cannot read approvals, so it is not enough.
    """

    def __init__(self, url: str, token: str, project_id: str | int, *, timeout: float = 30.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise GitLabError(
                f"GitLab URL {url!r} must start with http:// or https://", hint="set CI_SERVER_URL to GitLab's URL"
            )
        if not token:
            raise GitLabError("no GitLab token", hint="set SALTPIPE_GITLAB_TOKEN (a masked CI/CD variable)")
        self.url = url.rstrip("/")
        self.project_id = str(project_id)
        # retry_transient_errors stays off: a 5xx must surface as an error now (the gate fails closed and the
        # job can be retried), not stretch the job over minutes of back-off.
        self._gl = gitlab.Gitlab(self.url, private_token=token, timeout=timeout, retry_transient_errors=False)
        self._project = f"/projects/{quote(self.project_id, safe='')}"

    # -- transport ---------------------------------------------------------------------------------------------

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn every failure of python-gitlab/requests into a :class:`GitLabError` that says what to do."""
        try:
            yield
        except gitlab.exceptions.GitlabAuthenticationError as exc:
            raise GitLabError(
                f"GitLab at {self.url} refused the token ({what}): {exc.error_message}",
                hint="check SALTPIPE_GITLAB_TOKEN: it must be valid, unexpired and have the api or read_api scope",
            ) from None
        except gitlab.exceptions.GitlabError as exc:
            code = exc.response_code
            if code == 403:
                hint = "the token's user lacks permission on the project: give it at least the Reporter role"
            elif code == 404:
                hint = (
                    f"check CI_PROJECT_ID ({self.project_id}) and the merge request IID; a 404 also means the "
                    "token cannot see the project"
                )
            elif code is not None and code >= 500:
                hint = "GitLab itself failed; retry the job when GitLab is healthy (the review gate refuses meanwhile)"
            else:
                hint = "see GitLab's message above"
            status = f"HTTP {code}" if code is not None else "an error"
            raise GitLabError(
                f"GitLab at {self.url} answered {status} ({what}): {exc.error_message}", hint=hint
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise GitLabError(
                f"cannot reach GitLab at {self.url} ({what}): {type(exc).__name__}",
                hint="check CI_SERVER_URL and the network from the runner; retry the job",
            ) from None
        except requests.RequestException as exc:
            raise GitLabError(f"request to GitLab at {self.url} failed ({what}): {exc}") from None

    @staticmethod
    def _json(data: Any, what: str) -> Any:
        # python-gitlab hands back the raw response when the answer is not JSON (a proxy's login page).
        if isinstance(data, requests.Response):
            raise GitLabError(
                f"GitLab answered {what} with {data.headers.get('Content-Type', 'no content type')}, expected JSON",
                hint="check CI_SERVER_URL points at GitLab itself (not a proxy or login page)",
            )
        return data

    def _get(self, path: str, what: str, query: dict[str, Any] | None = None) -> Payload:
        with self._errors(what):
            data = self._gl.http_get(path, query_data=query or {})
        return Payload(self._json(data, what), what)

    def _list(self, path: str, what: str, query: dict[str, Any] | None = None) -> list[Payload]:
        with self._errors(what):
            data = self._gl.http_list(path, query_data=query or {}, get_all=True, per_page=100)
        return payload_list(data, what)

    def _get_or_none(self, path: str, what: str, query: dict[str, Any] | None = None) -> Payload | None:
        """Like :meth:`_get`, but a 404 is an answer (``None``): the thing does not exist."""
        with self._errors(what):
            try:
                data = self._gl.http_get(path, query_data=query or {})
            except gitlab.exceptions.GitlabHttpError as exc:
                if exc.response_code == 404:
                    return None
                raise  # every other failure as _errors says
        return Payload(self._json(data, what), what)

    def _send(self, method: Callable[..., Any], path: str, what: str, body: dict[str, Any]) -> Payload:
        with self._errors(what):
            data = method(path, post_data=body)
        return Payload(self._json(data, what), what)

    # -- reads -------------------------------------------------------------------------------------------------

    def current_user(self) -> User:
        return parse_user(self._get("/user", "the token's user"))

    def merge_request(self, iid: int) -> MergeRequest:
        return parse_merge_request(self._get(f"{self._project}/merge_requests/{iid}", f"merge request !{iid}"))

    def default_branch(self) -> str:
        what = f"project {self.project_id}"
        branch = self._get(self._project, what).str("default_branch")
        if not branch:
            raise GitLabError(f"GitLab reports no default branch for {what}", hint="push a branch to the project")
        return branch

    def commit_merge_requests(self, sha: str) -> tuple[MergeRequest, ...]:
        what = f"the merge requests of commit {sha[:12]}"
        path = f"{self._project}/repository/commits/{quote(sha, safe='')}/merge_requests"
        return tuple(parse_merge_request(p, listed=True) for p in self._list(path, what))

    def approvals(self, iid: int) -> Approvals:
        what = f"the approvals of merge request !{iid}"
        p = self._get(f"{self._project}/merge_requests/{iid}/approvals", what)
        approved_by = p.data.get("approved_by")
        entries = payload_list(approved_by if approved_by is not None else [], what + " (approved_by)")
        left = p.data.get("approvals_left")
        return Approvals(
            approved_by=tuple(
                Approval(user=parse_user(e.obj("user")), approved_at=e.time("approved_at", optional=True)) for e in entries
            ),
            gitlab_approved=p.bool("approved", optional=True),
            gitlab_approvals_left=left if isinstance(left, int) and not isinstance(left, bool) else None,
        )

    def diff_versions(self, iid: int) -> tuple[DiffVersion, ...]:
        what = f"the diff versions of merge request !{iid}"
        versions = [parse_diff_version(p) for p in self._list(f"{self._project}/merge_requests/{iid}/versions", what)]
        return tuple(sorted(versions, key=lambda v: v.id, reverse=True))

    def changed_files(self, iid: int, version_id: int) -> ChangedFiles:
        what = f"diff version {version_id} of merge request !{iid}"
        p = self._get(f"{self._project}/merge_requests/{iid}/versions/{version_id}", what)
        paths: list[str] = []
        for diff in payload_list(p.data.get("diffs"), what + " (diffs)"):
            for key in ("old_path", "new_path"):
                path = diff.str(key)
                if path not in paths:
                    paths.append(path)
        # 'overflow' and 'without_files' versions list only some or none of the files.
        complete = p.str("state", optional=True) in ("collected", "empty", "")
        return ChangedFiles(paths=tuple(paths), complete=complete)

    def notes(self, iid: int) -> tuple[Note, ...]:
        what = f"the notes of merge request !{iid}"
        payloads = self._list(
            f"{self._project}/merge_requests/{iid}/notes", what, {"sort": "asc", "order_by": "created_at"}
        )
        return tuple(parse_note(p) for p in payloads)

    def merge_request_pipelines(self, iid: int) -> tuple[Pipeline, ...]:
        what = f"the pipelines of merge request !{iid}"
        pipelines = [parse_pipeline(p) for p in self._list(f"{self._project}/merge_requests/{iid}/pipelines", what)]
        return tuple(sorted(pipelines, key=lambda pl: pl.id, reverse=True))

    def pipeline_jobs(self, pipeline_id: int) -> tuple[Job, ...]:
        what = f"the jobs of pipeline {pipeline_id}"
        return tuple(parse_job(p) for p in self._list(f"{self._project}/pipelines/{pipeline_id}/jobs", what))

    def group_members(self, group: str) -> tuple[User, ...]:
        what = f"the members of group {group!r}"
        members = []
        for p in self._list(f"/groups/{quote(str(group), safe='')}/members/all", what):
            user = parse_user(p)
            # An invitation not yet accepted (or a membership awaiting a seat) is not a member who can review.
            membership = p.str("membership_state", optional=True) or "active"
            members.append(user if membership == "active" else User(user.id, user.username, user.name, membership))
        return tuple(members)

    def pipeline(self, pipeline_id: int) -> Pipeline:
        what = f"pipeline {pipeline_id}"
        return parse_pipeline(self._get(f"{self._project}/pipelines/{pipeline_id}", what), with_user=True)

    def user_by_username(self, username: str) -> User | None:
        what = f"the user {username!r}"
        found = [parse_user(p) for p in self._list("/users", what, {"username": username})]
        return next((u for u in found if u.username.lower() == username.lower()), None)

    def member_access_level(self, user_id: int) -> int | None:
        what = f"the project membership of user {user_id}"
        p = self._get_or_none(f"{self._project}/members/all/{int(user_id)}", what)
        if p is None:
            return None
        if (p.str("membership_state", optional=True) or "active") != "active":
            return None  # an invitation not accepted yet grants nothing
        return p.int("access_level")

    def protected_environment(self, name: str) -> ProtectedEnvironment | None:
        what = f"the protected environment {name!r}"
        p = self._get_or_none(f"{self._project}/protected_environments/{quote(name, safe='')}", what)
        if p is None:
            return None
        levels = payload_list(p.data.get("deploy_access_levels"), what + " (deploy_access_levels)")
        return ProtectedEnvironment(
            name=p.str("name"),
            deploy_access=tuple(
                DeployAccess(
                    access_level=optional_int(a.data.get("access_level")),
                    user_id=optional_int(a.data.get("user_id")),
                    group_id=optional_int(a.data.get("group_id")),
                    description=a.str("access_level_description", optional=True),
                )
                for a in levels
            ),
        )

    # -- writes ------------------------------------------------------------------------------------------------

    def create_note(self, iid: int, body: str) -> Note:
        what = f"a new note on merge request !{iid}"
        path = f"{self._project}/merge_requests/{iid}/notes"
        return parse_note(self._send(self._gl.http_post, path, what, {"body": body}))

    def update_note(self, iid: int, note_id: int, body: str) -> Note:
        what = f"note {note_id} of merge request !{iid}"
        path = f"{self._project}/merge_requests/{iid}/notes/{note_id}"
        return parse_note(self._send(self._gl.http_put, path, what, {"body": body}))

    def create_commit_comment(self, sha: str, body: str) -> None:
        what = f"a new comment on commit {sha[:12]}"
        path = f"{self._project}/repository/commits/{quote(sha, safe='')}/comments"
        with self._errors(what):
            self._json(self._gl.http_post(path, post_data={"note": body}), what)

    def create_deployment(self, *, environment: str, sha: str, ref: str, tag: bool, status: str) -> Deployment:
        if status not in DEPLOYMENT_STATUSES:
            raise ValueError(f"deployment status must be one of {DEPLOYMENT_STATUSES}, not {status!r}")
        what = f"a new deployment to {environment!r}"
        body = {"environment": environment, "sha": sha, "ref": ref, "tag": tag, "status": status}
        return parse_deployment(self._send(self._gl.http_post, f"{self._project}/deployments", what, body))

    def update_deployment(self, deployment_id: int, status: str) -> Deployment:
        if status not in DEPLOYMENT_STATUSES:
            raise ValueError(f"deployment status must be one of {DEPLOYMENT_STATUSES}, not {status!r}")
        what = f"deployment {deployment_id}"
        return parse_deployment(
            self._send(self._gl.http_put, f"{self._project}/deployments/{deployment_id}", what, {"status": status})
        )
