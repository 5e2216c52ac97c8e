"""GitLab's JSON -> the frozen types of :mod:`pipeline.gitlab.models`, for :class:`~pipeline.gitlab.client.PythonGitLabClient`.

A missing or mistyped field is a :class:`~pipeline.errors.GitLabError` naming the endpoint and the field, never
a default, because a gate that guesses is not a gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline.errors import GitLabError
from pipeline.gitlab.models import DiffVersion, Deployment, Job, MergeRequest, Note, Pipeline, User




class Payload:
    """Typed access to one JSON object; errors name the endpoint and the field."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise GitLabError(
                f"GitLab answered {where} with {type(data).__name__}, expected a JSON object",
                hint="check CI_SERVER_URL points at GitLab itself (not a proxy or login page)",
            )
        self.data = data
        self.where = where

    def _get(self, key: str, types: tuple[type, ...], optional: bool) -> Any:
        value = self.data.get(key)
        if value is None and optional:
            return None
        # bool is an int in Python; an id must not be True.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise GitLabError(
                f"GitLab's answer to {self.where} has no usable {key!r} (got {value!r})",
                hint="this GitLab version answers in a shape saltpipe does not know; report it with the version",
            )
        return value

    def int(self, key: str) -> int:
        return self._get(key, (int,), False)

    def str(self, key: str, *, optional: bool = False) -> str:
        value = self._get(key, (str,), optional)
        return "" if value is None else value

    def bool(self, key: str, *, optional: bool = False) -> bool | None:
        return self._get(key, (bool,), optional)

    def time(self, key: str, *, optional: bool = False) -> datetime | None:
        raw = self._get(key, (str,), optional)
        if raw is None:
            return None
        try:
            stamp = datetime.fromisoformat(raw)
        except ValueError:
            raise GitLabError(f"GitLab's answer to {self.where} has an unreadable {key!r}: {raw!r}") from None
        if stamp.tzinfo is None:
            raise GitLabError(f"GitLab's answer to {self.where} has {key!r} without a timezone: {raw!r}")
        return stamp

    def obj(self, key: str) -> "Payload":
        return Payload(self.data.get(key), f"{self.where} ({key})")


def parse_user(p: Payload) -> User:
    return User(
        id=p.int("id"),
        username=p.str("username"),
        name=p.str("name", optional=True),
        state=p.str("state", optional=True) or "active",
    )


def parse_note(p: Payload) -> Note:
    return Note(
        id=p.int("id"),
        body=p.str("body", optional=True),
        author=parse_user(p.obj("author")),
        system=bool(p.bool("system", optional=True)),
        created_at=p.time("created_at"),  # type: ignore[arg-type]
    )


def parse_merge_request(p: Payload, *, listed: bool = False) -> MergeRequest:
    """A merge request from its full (``/merge_requests/:iid``) or basic (``listed``) representation.

    A listed merge request may lack a ``sha`` (one whose diff GitLab never built): it is then ``""``, which
    matches no commit, rather than an error that would stop the judging of the others.
    """
    return MergeRequest(
        iid=p.int("iid"),
        title=p.str("title"),
        state=p.str("state"),
        author=parse_user(p.obj("author")),
        sha=p.str("sha", optional=listed),
        source_branch=p.str("source_branch"),
        target_branch=p.str("target_branch"),
        web_url=p.str("web_url", optional=True),
        draft=bool(p.bool("draft", optional=True) or p.bool("work_in_progress", optional=True)),
        merge_commit_sha=p.str("merge_commit_sha", optional=True) or None,
        squash_commit_sha=p.str("squash_commit_sha", optional=True) or None,
    )


def parse_optional_user(p: Payload) -> User | None:
    return parse_user(p.obj("user")) if isinstance(p.data.get("user"), Mapping) else None


def parse_deployment(p: Payload) -> Deployment:
    env = p.obj("environment")
    return Deployment(
        id=p.int("id"),
        iid=p.int("iid"),
        environment=env.str("name"),
        sha=p.str("sha"),
        ref=p.str("ref"),
        status=p.str("status"),
    )


def optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def payload_list(data: Any, where: str) -> list[Payload]:
    if not isinstance(data, list):
        raise GitLabError(f"GitLab answered {where} with {type(data).__name__}, expected a JSON list")
    return [Payload(item, where) for item in data]


def parse_pipeline(p: Payload, *, with_user: bool = False) -> Pipeline:
    """A pipeline from ``/pipelines/:id`` (``with_user``: its ``user``) or from a merge request's pipeline list."""
    return Pipeline(
        id=p.int("id"),
        sha=p.str("sha"),
        status=p.str("status"),
        source=p.str("source", optional=True),
        web_url=p.str("web_url", optional=True),
        created_at=p.time("created_at", optional=True),
        **({"user": parse_optional_user(p)} if with_user else {}),
    )


def parse_diff_version(p: Payload) -> DiffVersion:
    return DiffVersion(
        id=p.int("id"),
        head_sha=p.str("head_commit_sha"),
        base_sha=p.str("base_commit_sha", optional=True),
        created_at=p.time("created_at"),  # type: ignore[arg-type]
        state=p.str("state", optional=True),
    )


def parse_job(p: Payload) -> Job:
    return Job(
        id=p.int("id"),
        name=p.str("name"),
        stage=p.str("stage"),
        status=p.str("status"),
        allow_failure=bool(p.bool("allow_failure", optional=True)),
        web_url=p.str("web_url", optional=True),
        user=parse_optional_user(p),
    )
