"""A topology's state file, ``<workdir>/topology.json``: what ``up`` started (spec, ports, launch pids, the
job cache) so that :func:`load` rebuilds the same :class:`~pipeline.topology.model.Topology` from another
process (``topology status``/``down``, the demo, the integration tests' helpers)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.errors import TopologyError
from pipeline.topology.build import Ports, master_handle, minion_handle, write_file
from pipeline.topology.daemons import Daemon
from pipeline.topology.handles import SyndicHandle
from pipeline.topology.model import Topology
from pipeline.topology.redis import RedisServer
from pipeline.topology.spec import TopologySpec

STATE_FILE = "topology.json"


def save_state(topo: Topology, *, repo: Path, ports: Ports, ready: bool) -> None:
    """Write ``topo``'s state file (atomically: a concurrent ``status`` reads the old one or the new one)."""
    data = {
        "version": 1,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "repo": str(repo),
        "bindir": str(topo.bindir),
        "spec": topo.spec.model_dump(mode="json"),
        "ports": ports,
        "launch_pids": topo.launch_pids,
        "timings": topo.timings,
        "ready": ready,
        "job_cache": (
            {"host": topo.job_cache.host, "port": topo.job_cache.port, "directory": str(topo.job_cache.directory)}
            if topo.job_cache else None
        ),
    }
    write_file(topo.workdir / STATE_FILE, json.dumps(data, indent=2) + "\n")


def read_state(workdir: Path) -> dict[str, Any]:
    """The state file of ``workdir``; :class:`TopologyError` saying what to do when it is missing or unreadable."""
    path = workdir / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TopologyError(
            f"{workdir} holds no topology ({STATE_FILE} is missing)",
            hint=f"start one with 'saltpipe topology up --workdir {workdir}'",
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise TopologyError(
            f"{path}: unreadable ({exc})", hint=f"'saltpipe topology down --workdir {workdir}' and 'up' again"
        ) from exc


def load(workdir: Path) -> Topology:
    """Handles on the topology ``up`` built in ``workdir`` (running or not), from another process."""
    workdir = workdir.resolve()
    state = read_state(workdir)
    spec = TopologySpec.model_validate(state["spec"])
    bindir = Path(state["bindir"])
    ports = state["ports"]
    mom = master_handle(workdir, spec.mom, ports, bindir)
    daemons = [Daemon(spec.mom, "master", mom.root_dir, mom.config_dir)]
    syndics = []
    for s in spec.syndics:
        master = master_handle(workdir, s.id, ports, bindir)
        daemons += [
            Daemon(s.id, "master", master.root_dir, master.config_dir),
            Daemon(s.id, "syndic", master.root_dir, master.config_dir),
        ]
        minions = tuple(minion_handle(workdir, m, s.id, bindir) for m in s.minions)
        daemons += [Daemon(m.id, "minion", m.root_dir, m.config_dir) for m in minions]
        root = master.root_dir
        syndics.append(SyndicHandle(s.id, s.env, s.datacenter, master, root / "file_roots", root / "pillar", minions))
    return Topology(
        workdir=workdir,
        spec=spec,
        mom=mom,
        syndics=tuple(syndics),
        daemons=tuple(daemons),
        pipeline_config=workdir / "pipeline.yaml",
        bindir=bindir,
        launch_pids=dict(state.get("launch_pids", {})),
        timings=dict(state.get("timings", {})),
        job_cache=_job_cache_of(state),
    )


def _job_cache_of(state: dict[str, Any]) -> RedisServer | None:
    cache = state.get("job_cache")
    if not cache:
        return None
    return RedisServer(str(cache["host"]), int(cache["port"]), Path(cache["directory"]))
