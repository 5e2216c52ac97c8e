"""Recording rollouts in GitLab's environments/deployments API (the "GitLab" link of the audit chain).

Driven by the rollout's journal, so a rollout that crashes and is resumed by another process keeps *one*
deployment record::

    start (before anything is exposed)  POST /projects/:id/deployments status=running   -> journal "deployment_recorded"
    halted (a gate failed, or rollback)  PUT  /projects/:id/deployments/:id status=failed
    rollout_finished                     PUT  ... status=success (succeeded) or failed (halted, rolled back)
    resumed                              nothing: the record made at the start is still running

Creating the record is a gate: it happens before anything changes, so a failure there stops the rollout with
exit 2 (fail closed - a production change must be visible in GitLab). Updating it later is bookkeeping: the
rollout has already happened, so a failure is journaled (``deployment_record_failed``), printed with the
rollout's result and says how to set the status by hand; the outcome and exit code stay the rollout's own.

Only when this run reaches GitLab (CI_SERVER_URL, CI_PROJECT_ID, SALTPIPE_GITLAB_TOKEN); without it nothing is
recorded and the report says so. The rollout jobs of ``.gitlab-ci.yml`` declare ``environment: {name: ...,
action: prepare}``: with the default ``action: start`` GitLab would record a second deployment for the job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import GitLabError
from pipeline.gitlab.client import GitLabClient
from pipeline.gitlab.models import Deployment

#: What a journal record means for the deployment's status (``rollout_finished`` depends on its outcome).
_FINAL = {"succeeded": "success", "halted": "failed", "rolled_back": "failed"}

Write = Callable[..., Any]


@dataclass(frozen=True)
class DeploymentTrail:
    """Deployment records of one project: ``ref`` is the branch or tag the released commits come from."""

    client: GitLabClient
    ref: str
    tag: bool = False
    #: Shown in a failure's hint: where the project's deployments are (``<project URL>/-/environments``).
    where: str = "GitLab (Operate > Environments)"

    def open(self, environment: str, sha: str) -> Deployment:
        """Create the ``running`` deployment of ``sha`` to ``environment``; :class:`GitLabError` when GitLab
        cannot record it (the caller stops before changing anything)."""
        try:
            return self.client.create_deployment(environment=environment, sha=sha, ref=self.ref, tag=self.tag,
                                                  status="running")
        except GitLabError as exc:
            raise GitLabError(
                f"cannot record the deployment of {sha[:12]} to {environment} in GitLab, so the rollout does not "
                f"start: {exc.message}",
                hint=exc.hint or "retry when GitLab answers; nothing was changed",
            ) from None

    def follow(self, record: Mapping[str, Any], recorded: Mapping[str, Any] | None, write: Write) -> None:
        """Bring the deployment ``recorded`` (its journal record, ``None`` when none was made) in line with the
        journal ``record`` just written; ``write`` journals what happened."""
        if recorded is None:
            return
        event = record.get("event")
        if event == "halted":
            status = "failed"
        elif event == "rollout_finished":
            status = _FINAL.get(str(record.get("outcome")), "failed")
        else:
            return
        if recorded.get("status") == status:
            return
        deployment_id = int(recorded["deployment_id"])
        try:
            final = self.client.update_deployment(deployment_id, status)
        except GitLabError as exc:
            write("deployment_record_failed", deployment_id=deployment_id, status=status, message=exc.message,
                  hint=f"the rollout's own outcome stands; set deployment {deployment_id} to {status} by hand "
                       f"(PUT /projects/:id/deployments/{deployment_id} status={status}) or see it in {self.where}")
            return
        write("deployment_updated", deployment_id=final.id, iid=final.iid, status=final.status)


def trail_from_environ(environ: Mapping[str, str]) -> DeploymentTrail | None:
    """A trail for the project the environment points at (a CI job's variables, or the same exported by
    hand), ``None`` when it does not reach GitLab."""
    from pipeline.gitlab import CiEnvironment, client_from_ci

    ci = CiEnvironment.from_environ(environ)
    if not ci.can_reach_gitlab:
        return None
    client = client_from_ci(ci)
    return DeploymentTrail(client, ci.ref or client.default_branch(), ci.is_tag)
