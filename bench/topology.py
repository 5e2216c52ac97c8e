"""Cost of the local topology (issue 4, point 3). Prints one JSON document.

Usage: ``python bench/topology.py [--workdir DIR] [--idle-seconds S] [--minions N [--syndics S] [--no-restart]]``

Starts the local topology of this checkout (salt/daemons/local-topology.yaml: 1 MoM, 3 syndic masters + their
salt-syndics, 8 minions) in a fresh work directory and reports:

* ``ready_seconds`` - ``up`` until every minion answered test.ping from the MoM through its syndic, with the
  phases ``masters_seconds`` (4 masters listening) and ``authenticated_seconds`` (every syndic and minion
  authenticated); ``restart_ready_seconds`` - the same after ``down`` (keys and ports reused);
* ``pss_mib`` - proportional set size per daemon (its whole process group: a master is 9 processes, a minion 2),
  per kind (``avg``/``max``) and in total, idle and right after a highstate-sized job (``test.ping`` +
  ``grains.items`` from the MoM, so every minion has loaded its modules);
* ``idle_cpu_percent`` - CPU of all daemons together over ``--idle-seconds``, in % of one core;
* ``down_seconds`` - ``down`` until every daemon is gone.

With ``--minions N`` (``--syndics`` default 4) it measures the larger fleet of ``saltpipe topology up --minions N
--syndics S`` instead, started by that command in a subprocess: ``cli_up_seconds`` is the command's wall time (start
to exit 0, which it reaches once every minion answered through the MoM), beside ``up``'s own ``ready_seconds``;
``rss_mib_*`` adds the resident set size per daemon (the sum over its process group, which shares pages, so it is
higher than PSS), ``per_minion`` being the minions' total / N.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from pipeline.topology import Topology, down, load, up

REPO = Path(__file__).resolve().parents[1]


def _groups() -> dict[int, list[psutil.Process]]:
    groups: dict[int, list[psutil.Process]] = {}
    for proc in psutil.process_iter():
        try:
            groups.setdefault(os.getpgid(proc.pid), []).append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return groups


def _members(topo: Topology) -> dict[str, list[psutil.Process]]:
    groups = _groups()
    return {d.name: groups.get(topo.launch_pids[d.name], []) for d in topo.daemons}


def _memory(topo: Topology, field: str = "pss") -> dict[str, Any]:
    per_daemon: dict[str, float] = {}
    for name, procs in _members(topo).items():
        total = 0
        for proc in procs:
            try:
                info = proc.memory_full_info() if field == "pss" else proc.memory_info()
                total += getattr(info, field)
            except psutil.Error:
                continue
        per_daemon[name] = round(total / 2**20, 1)
    kinds: dict[str, list[float]] = {}
    for daemon in topo.daemons:
        kinds.setdefault(daemon.kind, []).append(per_daemon[daemon.name])
    return {
        "total": round(sum(per_daemon.values()), 1),
        "by_kind": {k: {"count": len(v), "avg": round(sum(v) / len(v), 1), "max": max(v)} for k, v in kinds.items()},
        "by_daemon": per_daemon,
        "per_minion": round(sum(kinds.get("minion", [0.0])) / max(1, len(kinds.get("minion", []))), 1),
    }


def _fleet_up(workdir: Path, minions: int, syndics: int) -> tuple[Topology, float]:
    """``saltpipe topology up --minions N --syndics S`` as an operator runs it; its wall time."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(REPO), "topology", "up", "--workdir", str(workdir),
         "--minions", str(minions), "--syndics", str(syndics), "--format", "json"],
        capture_output=True, text=True, check=False,
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"topology up exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return load(workdir), seconds


def _cpu_seconds(topo: Topology) -> float:
    total = 0.0
    for procs in _members(topo).values():
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--minions", type=int, default=None, help="the larger fleet: topology up --minions N")
    parser.add_argument("--syndics", type=int, default=4, help="with --minions: syndics in all")
    parser.add_argument("--no-restart", action="store_true", help="skip restart_ready_seconds")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sp-bench-", dir="/tmp"))
    result: dict[str, Any] = {"daemons": None, "workdir": str(workdir), "cpus": os.cpu_count()}
    try:
        if args.minions is None:
            topo = up(workdir, repo=REPO, timeout=120)
        else:
            result.update(minions=args.minions, syndics=args.syndics)
            topo, result["cli_up_seconds"] = _fleet_up(workdir, args.minions, args.syndics)
            result["cli_up_seconds"] = round(result["cli_up_seconds"], 1)
        result["daemons"] = len(topo.daemons)
        result.update({k: topo.timings[k] for k in ("masters_seconds", "authenticated_seconds", "ready_seconds")})
        result["pss_mib_idle"] = _memory(topo)
        result["rss_mib_idle"] = _memory(topo, "rss")
        before = _cpu_seconds(topo)
        time.sleep(args.idle_seconds)  # the measurement window itself, not a wait for readiness
        result["idle_cpu_percent"] = round(100 * (_cpu_seconds(topo) - before) / args.idle_seconds, 1)
        topo.mom.salt(list(topo.minion_ids), "grains.items", timeout=30)
        result["pss_mib_after_jobs"] = _memory(topo)
        result["rss_mib_after_jobs"] = _memory(topo, "rss")
        started = time.monotonic()
        down(workdir)
        result["down_seconds"] = round(time.monotonic() - started, 1)
        if not args.no_restart:
            kw = {} if args.minions is None else {"minions": args.minions, "syndics": args.syndics}
            topo = up(workdir, repo=REPO, timeout=120 + 3 * (args.minions or 0), **kw)
            result["restart_ready_seconds"] = topo.timings["ready_seconds"]
    finally:
        if (workdir / "topology.json").exists():
            down(workdir)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
