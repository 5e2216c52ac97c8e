"""Who approves a rollout, proven by GitLab: an approval is a GitLab identity that GitLab allows to deploy.

An approval counts only when both halves are established through GitLab's API (never from a typed name):

* **identity** - in CI, the user who played the environment's manual gate job (``approve:<env>``) in this
  pipeline (``/pipelines/:id/jobs``, the job's ``user``); outside CI, the owner of the token the approver runs
  ``saltpipe rollout approve ENV --release ID`` with (``/user``);
* **allowed** - that user may deploy to the environment: one of the protected environment's deploy access
  levels (a user, a group they belong to, a role they hold), or a project member with at least the configured
  role (``approvers`` in salt/pipeline.yaml).

The user who *starts* the rollout never counts as an approver of it: in CI the user who started the pipeline
(``/pipelines/:id``: the merge or push that a non-manual job such as ``rollout:production`` runs for), outside
CI the token's owner. GitLab unreachable, or an answer of unexpected shape, raises :class:`GitLabError`
(exit 2): an approval that cannot be checked is refused, never assumed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.config import ACCESS_LEVELS, Environment, PipelineConfig
from pipeline.errors import GitLabError
from pipeline.gitlab.ci import CiEnvironment
from pipeline.gitlab.client import GitLabClient
from pipeline.gitlab.models import User
from pipeline.rollout.journal import RolloutStore
from pipeline.rollout.model import PromotionRefused
from pipeline.rollout.promotion import Approval, ApprovalStore, PromotionCheck, VerifiedApprover, check_promotion


def _refused(message: str, hint: str) -> PromotionRefused:
    return PromotionRefused(message, hint=hint)


class GitLabApprovals:
    """Approvals checked against ``client``'s project, for the CI job ``ci`` describes (or outside CI)."""

    def __init__(self, client: GitLabClient, ci: CiEnvironment) -> None:
        self.client = client
        self.ci = ci

    @property
    def in_ci(self) -> bool:
        return self.ci.pipeline_id is not None

    def starter(self) -> str:
        """Who starts this rollout: the pipeline's user in CI, else the token's owner."""
        if self.in_ci:
            assert self.ci.pipeline_id is not None
            pipeline = self.client.pipeline(self.ci.pipeline_id)
            if pipeline.user is None:
                raise GitLabError(
                    f"GitLab does not say who started pipeline {pipeline.id}",
                    hint="the token needs read access to the project's pipelines (Reporter role or more)",
                )
            return pipeline.user.username
        return self.client.current_user().username

    def approver(self, env: Environment, claimed: str | None) -> VerifiedApprover:
        """Establish the approver (``claimed``: the name given with ``--approve``; ``None``: whoever GitLab says)
        and check they may approve ``env``. :class:`PromotionRefused` when not."""
        if self.in_ci:
            user, proof = self._gate_player(env, claimed)
        else:
            user = self.client.current_user()
            if claimed is not None and claimed != user.username:
                raise _refused(
                    f"--approve {claimed}: outside CI an approval is given with the approver's own GitLab token, and "
                    f"this one belongs to {user.username}",
                    hint=f"{claimed} runs `saltpipe rollout approve {env.name} --release ID` with their token "
                         "(SALTPIPE_GITLAB_TOKEN)",
                )
            proof = f"GitLab token of {user.username}"
        return VerifiedApprover(user.username, user.id, proof, self.allowed(env, user))

    def _gate_player(self, env: Environment, claimed: str | None) -> tuple[User, str]:
        assert self.ci.pipeline_id is not None
        job_name = env.approvers.gate_job.format(environment=env.name)
        jobs = [j for j in self.client.pipeline_jobs(self.ci.pipeline_id) if j.name == job_name]
        played = [j for j in jobs if j.status == "success" and j.user is not None]
        if not played:
            raise _refused(
                f"pipeline {self.ci.pipeline_id} has no played {job_name} job: nobody approved this rollout in GitLab",
                hint=f"an allowed approver plays the manual job {job_name} (approvers in salt/pipeline.yaml)",
            )
        player = played[-1].user
        assert player is not None
        if claimed is not None and claimed != player.username:
            raise _refused(
                f"--approve {claimed}: {job_name} of pipeline {self.ci.pipeline_id} was played by {player.username}",
                hint="pass the gate job's APPROVED_BY (GITLAB_USER_LOGIN of the job) unchanged",
            )
        return player, f"played {job_name} (job {played[-1].id}) in pipeline {self.ci.pipeline_id}"

    def allowed(self, env: Environment, user: User) -> str:
        """Why ``user`` may approve ``env`` (a short description), or :class:`PromotionRefused`."""
        if user.state != "active":
            raise _refused(f"approver {user.username} is {user.state} in GitLab", hint="an active user must approve")
        cfg = env.approvers
        if cfg.source == "project_members":
            need = ACCESS_LEVELS[cfg.min_access_level]
            level = self.client.member_access_level(user.id)
            if level is None or level < need:
                raise _refused(
                    f"{user.username} may not approve rollouts to {env.name}: project role "
                    f"{_role(level)}, at least {cfg.min_access_level} is required",
                    hint=f"approvers.min_access_level of {env.name} in salt/pipeline.yaml says who may approve",
                )
            return f"project {_role(level)}"
        protected = self.client.protected_environment(env.name)
        if protected is None:
            raise _refused(
                f"{env.name} is not a protected environment in GitLab, so GitLab names nobody who may approve it",
                hint="protect it (Settings > CI/CD > Protected environments) or set approvers.source: "
                     f"project_members for {env.name} in salt/pipeline.yaml",
            )
        level: int | None = None
        for access in protected.deploy_access:
            if access.user_id is not None and access.user_id == user.id:
                return f"deploy access to protected environment {env.name} (user)"
            if access.group_id is not None:
                if any(m.id == user.id and m.state == "active" for m in self.client.group_members(str(access.group_id))):
                    return f"deploy access to protected environment {env.name} (group {access.group_id})"
            elif access.access_level is not None and access.user_id is None:
                level = self.client.member_access_level(user.id) if level is None else level
                if level is not None and level >= access.access_level:
                    return f"deploy access to protected environment {env.name} ({access.description or _role(access.access_level)})"
        raise _refused(
            f"{user.username} may not approve rollouts to {env.name}: not among the deploy access levels of the "
            "protected environment",
            hint=f"GitLab's protected environment {env.name} says who may deploy and approve",
        )


def _role(level: int | None) -> str:
    names = {10: "guest", 15: "planner", 20: "reporter", 30: "developer", 40: "maintainer", 50: "owner", 60: "admin"}
    return "none (not a member)" if level is None else names.get(level, f"level {level}")


def check_approvals(
    authority: GitLabApprovals | None,
    config: PipelineConfig,
    env: Environment,
    release: str,
    approve: Sequence[str],
    rollouts: RolloutStore,
    store: ApprovalStore,
) -> PromotionCheck:
    """Record the approvals given with this rollout (``approve``: the names passed with ``--approve``) once GitLab
    vouched for them, then check ``env``'s promotion rules with the recorded ones. Without GitLab
    (``authority`` ``None``) an environment that needs approvals, or an ``--approve``, fails closed (exit 2)."""
    if not approve and not env.approvals_required:
        return check_promotion(config, env, release, rollouts, store)  # nothing to ask GitLab
    if authority is None:
        if approve or env.approvals_required:
            raise GitLabError(
                f"approvals of rollouts to {env.name} are checked against GitLab, and this run cannot reach it",
                hint="set CI_SERVER_URL, CI_PROJECT_ID and SALTPIPE_GITLAB_TOKEN (in CI the deploy jobs have them)",
            )
        return check_promotion(config, env, release, rollouts, store)
    starter = authority.starter()
    for name in approve:
        verified = authority.approver(env, name.strip())
        if verified.name == starter:
            raise PromotionRefused(
                f"{verified.name} starts this rollout of {release} to {env.name} and cannot approve it too",
                hint="someone else allowed to deploy to the environment approves it",
            )
        store.record(env.name, release, verified)

    def still_allowed(approval: Approval) -> None:
        assert approval.user_id is not None
        authority.allowed(env, User(id=approval.user_id, username=approval.name))

    return check_promotion(config, env, release, rollouts, store, starter=starter, still_allowed=still_allowed)
