"""The model of a local topology: :class:`Topology` (handles on its MoM, syndics, minions and daemons) and
:class:`TopologyStatus` (each daemon's pid and state), shared by both launchers (``up`` in
:mod:`pipeline.topology.local`, the integration tests' :mod:`pipeline.topology.factories`) and by
:func:`~pipeline.topology.state.load`, which rebuilds a :class:`Topology` from its work directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pipeline.topology.daemons as procs
from pipeline.config import PipelineConfig, load_config
from pipeline.errors import TopologyError
from pipeline.topology.daemons import Daemon, DaemonStatus
from pipeline.topology.handles import MasterHandle, MinionHandle, SaltResult, SyndicHandle
from pipeline.topology.pillar import write_overrides
from pipeline.topology.redis import RedisServer, inspect_redis, stop_redis
from pipeline.topology.spec import TopologySpec

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A :data:`Progress` that says nothing."""


def master_key_cache(daemon: Daemon) -> Path:
    """Where a minion (``minion_master.pub``) or a syndic (``syndic_master.pub``, the MoM's) keeps its master's
    public key once it has authenticated."""
    name = "syndic_master.pub" if daemon.kind == "syndic" else "minion_master.pub"
    return daemon.root_dir / "etc" / "salt" / "pki" / "minion" / name


def master_key_cached(daemon: Daemon) -> bool:
    return master_key_cache(daemon).exists()


def log_tail(daemon: Daemon, lines: int = 15) -> str:
    """The last ``lines`` of the daemon's console output and log, for an error message."""
    chunks = []
    for path in (daemon.console_log, daemon.log_file):
        try:
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            continue
        if text:
            chunks.append(f"--- {path}\n" + "\n".join(text))
    return "\n".join(chunks) or "(no output)"


@dataclass(frozen=True)
class TopologyStatus:
    """Every daemon's pid and state (the job cache's redis-server among them, when the topology runs one);
    ``running`` when all run, ``stopped`` when none does."""

    workdir: Path
    daemons: tuple[DaemonStatus, ...]

    @property
    def running(self) -> bool:
        return bool(self.daemons) and all(d.state == "running" for d in self.daemons)

    @property
    def stopped(self) -> bool:
        return all(d.state in ("stopped", "stale", "zombie") for d in self.daemons)

    @property
    def summary(self) -> str:
        if self.running:
            return "running"
        if self.stopped:
            return "stopped"
        return "degraded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "state": self.summary,
            "daemons": [d.as_dict() for d in self.daemons],
        }


@dataclass(frozen=True)
class Topology:
    """A local topology in ``workdir``: handles on its MoM, syndics and minions, and its daemons.

    Frozen: starting and stopping go through :func:`up` / :meth:`stop`, which work from the files in
    ``workdir``, so a handle built by :func:`load` in another process is as good as the one :func:`up` returned.
    """

    workdir: Path
    spec: TopologySpec
    mom: MasterHandle
    syndics: tuple[SyndicHandle, ...]
    daemons: tuple[Daemon, ...]
    pipeline_config: Path
    bindir: Path
    launch_pids: dict[str, int] = field(default_factory=dict, compare=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    #: The redis-server the minions return to (Salt's ``redis`` returner), when the topology runs one.
    job_cache: RedisServer | None = None

    # ---- lookups -------------------------------------------------------------------------------------
    @property
    def minions(self) -> tuple[MinionHandle, ...]:
        return tuple(m for s in self.syndics for m in s.minions)

    @property
    def minion_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.minions)

    @property
    def masters(self) -> tuple[MasterHandle, ...]:
        """The MoM first, then each syndic's master."""
        return (self.mom, *(s.master for s in self.syndics))

    def minion(self, minion_id: str) -> MinionHandle:
        for minion in self.minions:
            if minion.id == minion_id:
                return minion
        raise KeyError(f"no minion {minion_id!r} in the topology ({', '.join(self.minion_ids)})")

    def syndic(self, syndic_id: str) -> SyndicHandle:
        for syndic in self.syndics:
            if syndic.id == syndic_id:
                return syndic
        raise KeyError(f"no syndic {syndic_id!r} in the topology ({', '.join(s.id for s in self.syndics)})")

    def env_minions(self, env: str) -> tuple[str, ...]:
        return tuple(m.id for m in self.minions if m.env == env)

    def set_pillar(self, minion_id: str, overrides: dict[str, Any]) -> None:
        """Replace the pillar overrides of ``minion_id`` (merged over the generated sandbox pillar). Applied
        from the next pillar compilation; publish ``saltutil.refresh_pillar`` to make it immediate."""
        minion = self.minion(minion_id)
        write_overrides(self.syndic(minion.syndic).pillar_dir, minion_id, overrides)

    def load_pipeline_config(self) -> PipelineConfig:
        """The derived ``<workdir>/pipeline.yaml`` (local file_roots), validated."""
        return load_config(self.pipeline_config)

    # ---- processes -----------------------------------------------------------------------------------
    def status(self) -> TopologyStatus:
        """Each daemon's pid and state, the job cache's redis-server (when the topology runs one) last."""
        salt = tuple(procs.inspect(d, self.launch_pids.get(d.name)) for d in self.daemons)
        cache = (inspect_redis(self.job_cache),) if self.job_cache is not None else ()
        return TopologyStatus(self.workdir, salt + cache)

    def stop(self, *, timeout: float = 10.0) -> TopologyStatus:
        """Stop every daemon (minions and syndics first, then the masters) and return the final status.

        A salt-minion takes about 10 s to exit on SIGTERM (its process manager waits out its children); a
        local minion holds nothing worth that wait, so minions and syndics get at most 5 s before SIGKILL,
        masters ``timeout``."""
        first = [(d, self.launch_pids.get(d.name)) for d in self.daemons if d.kind != "master"]
        masters = [(d, self.launch_pids.get(d.name)) for d in self.daemons if d.kind == "master"]
        procs.stop(first, timeout=min(timeout, 5.0))
        procs.stop(masters, timeout=timeout)
        if self.job_cache is not None:
            stop_redis(self.job_cache, timeout=timeout)
        return self.status()

    def ping(self, *, timeout: int = 10) -> SaltResult:
        """``test.ping`` of every minion, published from the MoM (list target)."""
        return self.mom.salt(list(self.minion_ids), "test.ping", timeout=timeout)

    def wait_ready(self, *, timeout: float = 60.0, progress: Progress = quiet) -> float:
        """Return the seconds it took until every minion answered ``test.ping`` from the MoM through its
        syndic; :class:`TopologyError` naming the silent minions (and dead daemons) after ``timeout``."""
        started = time.monotonic()
        deadline = started + timeout
        answered: set[str] = set()
        last: SaltResult | None = None
        while True:
            remaining = deadline - time.monotonic()
            attempt_timeout = int(max(3, min(5, remaining)))
            last = self.mom.salt(sorted(set(self.minion_ids) - answered), "test.ping", timeout=attempt_timeout)
            answered |= {mid for mid, ret in last.returns.items() if ret is True}
            missing = sorted(set(self.minion_ids) - answered)
            if not missing:
                return time.monotonic() - started
            progress(f"waiting for {len(missing)} minion(s): {', '.join(missing)}")
            states = {d: procs.inspect(d, self.launch_pids.get(d.name)).state for d in self.daemons}
            dead = [d for d, state in states.items() if state != "running"]
            if dead:
                raise TopologyError(
                    "daemon(s) exited while waiting for the topology: "
                    + ", ".join(f"{d.name} ({states[d]})" for d in dead),
                    hint="see " + ", ".join(str(d.console_log) for d in dead),
                )
            if time.monotonic() >= deadline:
                raise TopologyError(
                    f"not ready after {timeout:.0f}s: no test.ping answer through the MoM from {', '.join(missing)} "
                    f"(last call: {last})",
                    hint=f"look at the syndic and minion logs under {self.workdir}; "
                    "'saltpipe topology status' shows which daemons run",
                )

    def wait_authenticated(self, *, timeout: float) -> None:
        """Wait until every syndic and minion has authenticated with its master (it has cached the master's
        public key, which :func:`up` removes before starting it); :class:`TopologyError` if one exits or
        ``timeout`` passes. Publishing before that would only lose the job and wait out its timeout."""
        deadline = time.monotonic() + timeout
        pending = [d for d in self.daemons if d.kind != "master"]
        while True:
            pending = [d for d in pending if not master_key_cached(d)]
            if not pending:
                return
            dead = [d for d in pending if procs.inspect(d, self.launch_pids.get(d.name)).state != "running"]
            if dead:
                raise TopologyError(
                    f"{dead[0].name} exited while starting:\n{log_tail(dead[0])}",
                    hint=f"fix the cause above; its config is in {dead[0].config_dir}",
                )
            if time.monotonic() >= deadline:
                raise TopologyError(
                    f"not authenticated with their masters after {timeout:.0f}s: {', '.join(d.name for d in pending)}",
                    hint=f"see their logs ({', '.join(str(d.log_file) for d in pending[:3])})",
                )
            time.sleep(0.2)  # polling interval of the check above

    def daemon(self, name: str) -> Daemon:
        """The daemon called ``name`` (``<node>/<kind>``); :class:`KeyError` when there is none."""
        for daemon in self.daemons:
            if daemon.name == name:
                return daemon
        raise KeyError(name)
