"""``up``, ``status`` and ``down`` of the local topology: one MoM, the syndics of ``salt/pipeline.yaml``,
minions under each - on loopback.

:func:`up` builds the work directory (:mod:`pipeline.topology.build`: every daemon's config rendered from
``salt/daemons/``, keys pre-seeded and accepted, pillar, ``<workdir>/pipeline.yaml``), starts the masters in
parallel, then the syndics and minions in parallel, and returns once readiness is *proven*: every minion
answers ``test.ping`` published from the MoM through its syndic.

The daemons are detached: :func:`~pipeline.topology.state.load`, :func:`status` and :func:`down` find them
again from ``<workdir>/topology.json`` and Salt's pid files, from another process. Layout: docs/topology.md.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pipeline.topology.daemons as procs
from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.errors import TopologyError
from pipeline.topology.build import LOOPBACK, Ports, build, check_socket_paths, fresh_ports, port_free
from pipeline.topology.daemons import Daemon
from pipeline.topology.model import Progress, Topology, TopologyStatus, log_tail, master_key_cache, quiet
from pipeline.topology.redis import start_redis, stop_redis
from pipeline.topology.scale import DEFAULT_SYNDICS, scaled_files
from pipeline.topology.spec import DEFAULT_SPEC, TopologySpec, load_spec
from pipeline.topology.state import STATE_FILE, load, read_state, save_state


def status(workdir: Path) -> TopologyStatus:
    """Every daemon's pid and state."""
    return load(workdir).status()


def down(workdir: Path, *, timeout: float = 10.0) -> TopologyStatus:
    """Stop every daemon of the topology in ``workdir``; its files stay (``up`` again reuses keys and ports)."""
    return load(workdir).stop(timeout=timeout)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _choose_ports(workdir: Path, spec: TopologySpec) -> Ports:
    nodes = [spec.mom, *(s.id for s in spec.syndics)]
    try:
        previous = read_state(workdir).get("ports", {})
    except TopologyError:
        previous = {}
    # Keep the previous ports when they are still free: minions and syndics of a restarted topology then
    # find their masters where they were.
    if all(n in previous for n in nodes) and all(
        port_free(p) for n in nodes for p in previous[n].values()
    ):
        return {n: dict(previous[n]) for n in nodes}
    return fresh_ports(spec)


def _start(topo: Topology, daemons: list[Daemon]) -> dict[str, subprocess.Popen[bytes]]:
    started = {}
    for daemon in daemons:
        started[daemon.name] = procs.spawn(daemon, topo.bindir)
        topo.launch_pids[daemon.name] = started[daemon.name].pid
    return started


def _wait_masters(topo: Topology, started: dict[str, subprocess.Popen[bytes]], deadline: float) -> None:
    pending = {m.id: m for m in topo.masters}
    while pending:
        for node, master in list(pending.items()):
            proc = started[f"{node}/master"]
            if proc.poll() is not None:
                daemon = topo.daemon(f"{node}/master")
                raise TopologyError(
                    f"{daemon.name} exited with {proc.returncode} while starting:\n{log_tail(daemon)}",
                    hint=f"fix the cause above; its config is {master.config_file}",
                )
            if _listening(master.ret_port) and _listening(master.publish_port):
                del pending[node]
        if pending and time.monotonic() > deadline:
            raise TopologyError(
                f"master(s) not listening in time: {', '.join(pending)}",
                hint=f"see their logs under {topo.workdir}",
            )
        if pending:
            time.sleep(0.2)  # polling interval of a readiness check, not a wait standing in for one


@contextmanager
def _stop_on_error(topo: Topology) -> Iterator[None]:
    try:
        yield
    except BaseException:
        # Leave nothing half-started behind; the error says what went wrong.
        topo.stop(timeout=10)
        raise


def up(
    workdir: Path,
    *,
    repo: Path,
    config_path: Path | None = None,
    spec_path: Path | None = None,
    timeout: float = 60.0,
    job_cache: bool = False,
    minions: int | None = None,
    syndics: int = DEFAULT_SYNDICS,
    progress: Progress = quiet,
) -> Topology:
    """Build and start the local topology in ``workdir`` and return once every minion answers ``test.ping``
    from the MoM through its syndic.

    ``repo`` is the saltpipe checkout whose ``salt/`` holds the templates, the runtime policy, the topology
    spec and (unless ``config_path``) ``pipeline.yaml``. Raises :class:`TopologyError` when the topology is
    already running in ``workdir`` or does not become ready in ``timeout`` seconds (everything it started is
    stopped again). Reuses keys and, when free, ports of an earlier ``up`` in the same ``workdir``.

    A redis-server (the external job cache, docs/job-cache.md) runs beside the daemons when an environment of
    the config has a ``job_cache`` (it is pointed at this server in the derived config), or for every
    environment with ``job_cache``; the minions' configs name it for Salt's ``redis`` returner.

    ``minions``: a larger fleet instead of the spec's - ``minions`` light minions over ``syndics`` syndics
    (:mod:`pipeline.topology.scale`; the scaled config and spec are written below ``workdir``).
    """
    t0 = time.monotonic()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / STATE_FILE).exists():
        current = status(workdir)
        if not current.stopped:
            raise TopologyError(
                f"a topology is already {current.summary} in {workdir}",
                hint=f"'saltpipe topology status --workdir {workdir}', or 'down' it first",
            )
    config_file, spec_file = config_path or repo / DEFAULT_CONFIG, spec_path or repo / DEFAULT_SPEC
    if minions is not None:
        config_file, spec_file = scaled_files(workdir, config_file, spec_file, minions=minions, syndics=syndics)
    config = load_config(config_file)
    spec = load_spec(spec_file, config)
    check_socket_paths(workdir, spec)
    ports = _choose_ports(workdir, spec)
    bindir = procs.salt_bindir()

    cache = None
    if job_cache or any(env.job_cache for env in config.environments.values()):
        progress("starting redis-server (the external job cache)")
        cache = start_redis(workdir / "redis")
    progress(f"rendering configs from {repo / 'salt' / 'daemons'} into {workdir}")
    try:
        topo = build(
            workdir, repo, config, spec, ports, bindir, job_cache=cache, job_cache_everywhere=job_cache,
            light_minions=minions is not None,
        )
    except BaseException:
        if cache is not None:
            stop_redis(cache)
        raise
    topo.timings["build_seconds"] = round(time.monotonic() - t0, 2)
    deadline = t0 + timeout

    with _stop_on_error(topo):
        masters = [d for d in topo.daemons if d.kind == "master"]
        progress(f"starting {len(masters)} masters: {', '.join(d.node for d in masters)}")
        started = _start(topo, masters)
        save_state(topo, repo=repo, ports=ports, ready=False)
        _wait_masters(topo, started, deadline)
        topo.timings["masters_seconds"] = round(time.monotonic() - t0, 2)

        rest = [d for d in topo.daemons if d.kind != "master"]
        for daemon in rest:
            # Its re-appearance is the evidence that the daemon authenticated (wait_authenticated); the
            # masters keep their keys across restarts, so nothing is lost by learning them again.
            master_key_cache(daemon).unlink(missing_ok=True)
        progress(f"starting {sum(d.kind == 'syndic' for d in rest)} syndics and {len(topo.minions)} minions")
        started.update(_start(topo, rest))
        save_state(topo, repo=repo, ports=ports, ready=False)
        topo.wait_authenticated(timeout=max(5.0, deadline - time.monotonic()))
        topo.timings["authenticated_seconds"] = round(time.monotonic() - t0, 2)
        progress("every syndic and minion authenticated; pinging every minion from the MoM")
        topo.wait_ready(timeout=max(5.0, deadline - time.monotonic()), progress=progress)
        topo.timings["ready_seconds"] = round(time.monotonic() - t0, 2)
    save_state(topo, repo=repo, ports=ports, ready=True)
    progress(f"ready in {topo.timings['ready_seconds']:.1f}s")
    return topo
