"""Helpers for the rollout engine's unit tests: a config, a fake clock, an in-memory sync stage, a context.

The Salt side is :class:`scripted_client.ScriptedSaltClient` (tests/unit/scripted_client.py, a test double); the
integration tests run the same engine against real daemons.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Environment, PipelineConfig
from doubles import FakeClock
from pipeline.errors import SyncError
from pipeline.gitlab.models import User
from pipeline.rollout.promotion import VerifiedApprover
from pipeline.rollout.model import PromotionRefused
from pipeline.rollout import Recovery, RolloutContext
from scripted_client import ScriptedSaltClient

RELEASE = "rel-0123456789ab"
PREVIOUS = "rel-ba9876543210"


class Crash(BaseException):
    """Stands for the rollout process being killed (not an exception the executor may catch)."""


def crash_at(event: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    """Returns a rollout observer that raises :class:`Crash` on a journal record of ``event`` whose ``fields``
    (e.g. ``batch=1, step="apply"``) all equal the given values: the rollout process killed at that point."""

    def observe(record: dict[str, Any]) -> None:
        if record["event"] == event and all(record[key] == value for key, value in fields.items()):
            raise Crash()

    return observe


def make_config(test: Mapping[str, Any] | None = None, production: Mapping[str, Any] | None = None) -> PipelineConfig:
    """The shape of salt/pipeline.yaml, with per-test overrides of each environment."""
    envs = {
        "test": {
            "tier": "testing",
            "syndics": [{"name": "syndic-test", "file_roots": {"type": "local", "path": "/srv/t"}}],
            "target": "G@saltpipe_env:test",
            "canary": ["test-web-1"],
            "batches": ["50%", "100%"],
            "gates": {"max_failure_ratio": 0.0, "max_missing_ratio": 0.0, "bake_seconds": 0},
            "approvals_required": 0,
            **(test or {}),
        },
        "production": {
            "tier": "production",
            "syndics": [
                {"name": "syndic-prod-a", "file_roots": {"type": "local", "path": "/srv/a"}},
                {"name": "syndic-prod-b", "file_roots": {"type": "local", "path": "/srv/b"}},
            ],
            "target": "G@saltpipe_env:production",
            "canary": 1,
            "batches": [1, "5%", "25%", "100%"],
            "gates": {"max_failure_ratio": 0.0, "max_missing_ratio": 0.0, "bake_seconds": 0},
            "approvals_required": 1,
            "requires": ["test"],
            **(production or {}),
        },
    }
    return PipelineConfig.model_validate({"version": 1, "environments": envs})


TEST_FLEET = {"test-web-1": "syndic-test", "test-web-2": "syndic-test", "test-db-1": "syndic-test"}
PROD_FLEET = {
    **{f"prod-a-{i}": "syndic-prod-a" for i in range(1, 4)},
    **{f"prod-b-{i}": "syndic-prod-b" for i in range(1, 4)},
}


@dataclass
class FakeServing:
    """The sync stage in memory: what base serves, which releases are exposed, every promotion."""

    base: str | None = PREVIOUS
    exposed: set[str] = field(default_factory=set)
    promotions: list[tuple[str, str]] = field(default_factory=list)
    fail_attest: bool = False
    fail_retire: bool = False
    retired: list[str] = field(default_factory=list)
    top: str | None = "{{ saltenv }}:\n  '*':\n    - base\n"

    def saltenv_for(self, release_id: str) -> str:
        return release_id

    def expose(self, env: Environment, release_id: str) -> Mapping[str, str]:
        self.exposed.add(release_id)
        return self.attest(env, release_id)

    def attest(self, env: Environment, release_id: str) -> Mapping[str, str]:
        if self.fail_attest or release_id not in self.exposed:
            raise SyncError(f"syndic {env.syndics[0].name}: serves nothing for {release_id}")
        return {s.name: release_id for s in env.syndics}

    def served_base(self, env: Environment) -> str | None:
        return self.base

    def promote(self, env: Environment, release_id: str) -> None:
        self.promotions.append((env.name, release_id))
        self.base = release_id

    def retire(self, env: Environment, release_id: str) -> None:
        if self.fail_retire:
            raise SyncError(f"syndic {env.syndics[0].name}: remove envs/{release_id}: Permission denied")
        self.exposed.discard(release_id)
        self.retired.append(release_id)

    def top_file(self, release_id: str) -> str | None:
        return self.top


@dataclass
class StaticApprovals:
    """GitLab's answers about approvals, fixed: ``starter`` starts every rollout, ``allowed`` may approve.
    (:class:`pipeline.rollout.approvals.GitLabApprovals` itself is tested on recorded API shapes.)"""

    starter_name: str = "carol"
    allowed_names: frozenset[str] = frozenset({"alice", "bob", "carol"})

    def starter(self) -> str:
        return self.starter_name

    def approver(self, env: Environment, claimed: str | None) -> VerifiedApprover:
        assert claimed is not None
        return VerifiedApprover(claimed, 100 + len(claimed), f"played approve:{env.name} (job 1) in pipeline 1",
                                self.allowed(env, User(0, claimed)))

    def allowed(self, env: Environment, user: User) -> str:
        if user.username not in self.allowed_names:
            raise PromotionRefused(f"{user.username} may not approve rollouts to {env.name}")
        return "project maintainer"


@dataclass
class Harness:
    config: PipelineConfig
    state_dir: Path
    clock: FakeClock
    serving: FakeServing
    records: list[dict[str, Any]]
    authority: Any = field(default_factory=StaticApprovals)

    def ctx(
        self,
        env: str,
        client: ScriptedSaltClient,
        *,
        recovery: Recovery | None = None,
        observer: Callable[[dict[str, Any]], None] | None = None,
        http_get: Callable[[str, float], int] | None = None,
    ) -> RolloutContext:
        def observe(record: dict[str, Any]) -> None:
            self.records.append(record)
            if observer:
                observer(record)

        kwargs: dict[str, Any] = {}
        if http_get is not None:
            kwargs["http_get"] = http_get
        return RolloutContext(
            config=self.config,
            environment=self.config.environment(env),
            client=client,
            serving=self.serving,
            state_dir=self.state_dir,
            recovery=recovery or Recovery(job_timeout=5, poll_interval=1, retries=3, interval=2, find_job_timeout=1,
                                          max_wait=60),
            clock=self.clock,
            observer=observe,
            authority=self.authority,
            **kwargs,
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["event"] == name]
