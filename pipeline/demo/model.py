"""The demo's data: what it is given (:class:`DemoContext`), what its steps hand each other (:class:`DemoState`,
:class:`FlowState`) and what it reports (:class:`StepResult`, :class:`DemoResult`).

Imports nothing of the demo's steps: the steps (``mr_checks``, ``flow``) and the runner (``run``) import this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import git

from pipeline.config import PipelineConfig

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pipeline.demo.health import HealthServer
    from pipeline.topology import Topology


@dataclass(frozen=True)
class DemoContext:
    """Inputs of the demo: the checkout to take content from, a work directory to build in (short: the local
    topology's Salt sockets live below it), whether to leave the topology running, and where live progress
    lines go (a long step prints while it runs; ``None``: quiet)."""

    source: Path
    workdir: Path
    keep_topology: bool = False
    topology_timeout: float = 120.0
    progress: Callable[[str], None] | None = None


@dataclass
class FlowState:
    """What the delivery steps hand each other: the topology, the health server, release ids by label, the
    rollout reports written so far and the production canary."""

    topology: Topology | None = None
    health: HealthServer | None = None
    gitlab: Any = None  # pipeline.gitlab.loopback.LoopbackGitLab: the demo's GitLab
    tokens: dict[str, str] = field(default_factory=dict)  # user -> token on the demo's GitLab
    releases: dict[str, str] = field(default_factory=dict)  # label -> release id
    reports: list[tuple[str, Path, Path]] = field(default_factory=list)  # (what, json, html)
    canary: str | None = None


@dataclass
class DemoState:
    """What steps hand to later steps (the throwaway repo, its config, the commits, the delivery flow's state)."""

    repo: git.Repo | None = None
    config: PipelineConfig | None = None
    commits: dict[str, str] = field(default_factory=dict)
    flow: FlowState = field(default_factory=FlowState)


@dataclass(frozen=True)
class StepResult:
    """One step's outcome: ``ok`` and a few human lines about what it did."""

    name: str
    ok: bool
    lines: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class DemoResult:
    """All steps in order; ``ok`` when every one passed."""

    workdir: Path
    steps: tuple[StepResult, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)


#: A step: reads the context, reads and extends the state, returns whether it behaved as intended and its lines.
Step = Callable[[DemoContext, DemoState], tuple[bool, list[str]]]
