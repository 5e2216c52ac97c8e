"""Recording rollouts in GitLab's environments/deployments API when saltpipe runs in CI.

A rollout (owned by :mod:`pipeline.rollout`) wraps its work in :func:`DeploymentRecorder.record`::

    recorder = recorder_from_ci(ci)            # NullRecorder outside CI
    with recorder.record("production", sha=release_sha, ref="main") as deployment:
        result = run_rollout(...)
        deployment.outcome(result.ok)           # a halted rollout is 'failed' even without an exception

GitLab shows the deployment ``running`` while the rollout goes, then ``success`` or ``failed``; an exception
marks it ``failed`` (``canceled`` on Ctrl-C) and propagates. The deployment record is bookkeeping, not a
gate: if GitLab cannot record the *final* status, the rollout's own outcome still decides the exit code and
the error is reported as a warning (the rollout has already happened; failing it would lie). Creating the
record is different: it happens before anything changes, so a failure there stops the rollout (fail closed -
a production change must be visible in GitLab).

The rollout job in ``.gitlab-ci.yml`` should declare ``environment: {name: ..., action: prepare}``: with the
default ``action: start`` GitLab records a deployment for the job itself, and there would be two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pipeline.errors import GitLabError
from pipeline.gitlab.ci import CiEnvironment
from pipeline.gitlab.client import GitLabClient
from pipeline.gitlab.models import Deployment


@dataclass
class DeploymentHandle:
    """The record being written for one rollout. ``deployment`` is ``None`` when nothing is recorded."""

    environment: str
    sha: str
    deployment: Deployment | None = None
    ok: bool | None = None
    final: Deployment | None = None
    warnings: list[str] = field(default_factory=list)

    def outcome(self, ok: bool) -> None:
        """Say how the rollout ended (without it, leaving the block normally means success)."""
        self.ok = ok


class DeploymentRecorder:
    """Records deployments of this project through ``client``."""

    def __init__(self, client: GitLabClient) -> None:
        self.client = client

    @contextmanager
    def record(self, environment: str, *, sha: str, ref: str, tag: bool = False) -> Iterator[DeploymentHandle]:
        """Create a ``running`` deployment of ``sha`` (built from ``ref``) to ``environment``, yield, and set
        ``success``/``failed``/``canceled`` from the outcome. Creating it raises :class:`GitLabError`."""
        handle = DeploymentHandle(environment=environment, sha=sha)
        handle.deployment = self.client.create_deployment(
            environment=environment, sha=sha, ref=ref, tag=tag, status="running"
        )
        status = "failed"
        try:
            yield handle
            status = "success" if handle.ok is not False else "failed"
        except KeyboardInterrupt:
            status = "canceled"
            raise
        finally:
            try:
                handle.final = self.client.update_deployment(handle.deployment.id, status)
            except GitLabError as exc:
                message = f"could not mark deployment {handle.deployment.id} to {environment} as {status}: {exc}"
                handle.warnings.append(message)  # the caller prints it with the rollout's result


class NullRecorder(DeploymentRecorder):
    """Records nothing: outside CI, or when no token is configured."""

    def __init__(self) -> None:  # pylint: disable=super-init-not-called
        pass

    @contextmanager
    def record(self, environment: str, *, sha: str, ref: str, tag: bool = False) -> Iterator[DeploymentHandle]:
        yield DeploymentHandle(environment=environment, sha=sha)


def recorder_from_ci(ci: CiEnvironment, client: GitLabClient | None = None) -> DeploymentRecorder:
    """A real recorder when the job can reach GitLab (``CI_SERVER_URL``, ``CI_PROJECT_ID``,
    ``SALTPIPE_GITLAB_TOKEN`` set), else a :class:`NullRecorder`."""
    if client is not None:
        return DeploymentRecorder(client)
    if not ci.can_reach_gitlab:
        return NullRecorder()
    from pipeline.gitlab import client_from_ci

    return DeploymentRecorder(client_from_ci(ci))
