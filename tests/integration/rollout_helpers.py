"""Helpers of the rollout integration tests (and of bench/rollout.py): a pipeline config for the topology, small
releases whose highstate leaves a trace on each minion, a RolloutContext on the real MoM, and killing /
restarting one minion.

Also a script: ``python rollout_helpers.py start WORKDIR CONFIG RELEASE`` runs :func:`start_rollout` in its own
process (the resume test kills it with SIGKILL mid-batch).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit" / "sync"))
from sync_helpers import make_release  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.release import Release, ReleaseStore  # noqa: E402
from pipeline.rollout import Recovery, RolloutContext, SyncServing  # noqa: E402
from pipeline.salt_client.local import LocalSaltClient  # noqa: E402
from pipeline.topology import Topology  # noqa: E402
from pipeline.topology import daemons as procs  # noqa: E402
from pipeline.topology import load as load_topology  # noqa: E402

ENV = "production"

#: Short waits: a minion that does not answer is looked up once, quickly (the topology answers in ~2 s).
FAST = Recovery(job_timeout=20.0, poll_interval=0.2, retries=1, interval=1.0, find_job_timeout=5.0,
                max_wait=30.0, resolve_timeout=15.0)

TOP = "{{ saltenv }}:\n  '*':\n    - it_rollout\n"

#: Every release writes ``<minion root>/sandbox/saltpipe-it/applied`` (the label of the last release applied)
#: and ``<label>.marker`` (this release reached the minion once), and records its release id in the grain
#: ``saltpipe_release`` (the state docs/rollout.md asks every highstate to carry; the rollout's reconcile reads
#: it). ``fail_on`` minions get a state whose source does not exist - a real failed state.
SLS = """\
{%- set dir = opts['root_dir'] ~ '/sandbox/saltpipe-it' %}
{%- set marker = salt['cp.get_file_str']('salt://saltpipe-release.json', saltenv=saltenv) %}
it_rollout_release_grain:
  grains.present:
    - name: saltpipe_release
    - value: {{ (marker | load_json)['release'] if marker else 'unknown' }}
it_rollout_applied:
  file.managed:
    - name: {{ dir }}/applied
    - makedirs: True
    - contents: __LABEL__
it_rollout_marker:
  file.managed:
    - name: {{ dir }}/__LABEL__.marker
    - makedirs: True
    - contents: __LABEL__
{%- if grains['id'] in __FAIL_ON__ %}
it_rollout_broken:
  file.managed:
    - name: {{ dir }}/broken
    - source: salt://it_rollout/does-not-exist.conf
{%- endif %}
"""


def write_config(topology: Topology, state_dir: Path, dest: Path) -> Path:
    """The topology's derived pipeline.yaml with its own state_dir, and ``production`` reduced to what these
    tests exercise: no ``requires: [test]``, no approvals, no health check (its URL answers nothing locally)."""
    data = yaml.safe_load(topology.pipeline_config.read_text())
    data["state_dir"] = str(state_dir)
    prod = data["environments"][ENV]
    prod.pop("requires", None)
    prod["approvals_required"] = 0
    prod["gates"].pop("health_check", None)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def content(label: str, fail_on: Iterable[str] = ()) -> dict[str, str]:
    """A release tree: the top file keyed ``{{ saltenv }}:``, the trace state, and the checkout's custom modules
    (so ``saltutil.sync_all saltenv=<release>`` leaves each minion the same modules the other tests use)."""
    sls = SLS.replace("__LABEL__", label).replace("__FAIL_ON__", json.dumps(sorted(fail_on)))
    files = {"top.sls": TOP, "it_rollout.sls": sls}
    for extra in sorted(REPO.glob("_*")):
        for path in sorted(extra.rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[str(path.relative_to(REPO))] = path.read_text()
    return files


def release(state_dir: Path, label: str, fail_on: Iterable[str] = ()) -> Release:
    return make_release(ReleaseStore.for_state_dir(state_dir), content(label, fail_on))


def context(topology: Topology, config_path: Path, *, recovery: Recovery = FAST, observer=None) -> RolloutContext:
    """A RolloutContext on the real MoM (LocalClient), with Salt-fileserver attestation on each syndic master."""
    cfg = load_config(config_path)
    env = cfg.environment(ENV)
    masters = {s.name: topology.syndic(s.name).master.config_file for s in env.syndics}
    return RolloutContext(
        config=cfg,
        environment=env,
        client=LocalSaltClient(topology.mom.config_file, syndic_configs=masters),
        serving=SyncServing(Path(cfg.state_dir), cfg.release.keep, masters),
        state_dir=Path(cfg.state_dir),
        recovery=recovery,
        observer=observer,
    )


def applied(topology: Topology, minions: Sequence[str]) -> dict[str, str | None]:
    """The label of the last release applied on each minion (read from its sandbox; ``None``: none yet)."""
    out: dict[str, str | None] = {}
    for minion in minions:
        path = topology.minion(minion).root_dir / "sandbox" / "saltpipe-it" / "applied"
        out[minion] = path.read_text().strip() if path.exists() else None
    return out


def reached(topology: Topology, minion: str, label: str) -> bool:
    """Whether release ``label`` was ever applied on ``minion``."""
    return (topology.minion(minion).root_dir / "sandbox" / "saltpipe-it" / f"{label}.marker").exists()


def kill_minion(topology: Topology, minion: str) -> None:
    """SIGKILL the salt-minion of ``minion`` (its whole process group) and wait until it is gone."""
    daemon = next(d for d in topology.daemons if d.node == minion and d.kind == "minion")
    proc = procs.find_process(daemon, topology.launch_pids.get(daemon.name))
    assert proc is not None, f"{minion}: no salt-minion running"
    # The pid file names a process of the minion's own process group (started in a new session): kill the
    # whole group, as the OOM killer or a dying host would take the daemon and its children at once.
    os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while procs.inspect(daemon).state == "running":
        assert time.monotonic() < deadline, f"{minion}: salt-minion survived SIGKILL"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def restart_minion(topology: Topology, minion: str, timeout: float = 90.0) -> None:
    """Start the salt-minion of ``minion`` again (as ``topology up`` does) and wait until it answers the MoM."""
    daemon = next(d for d in topology.daemons if d.node == minion and d.kind == "minion")
    if procs.inspect(daemon).state != "running":
        # A killed daemon that was a child of this process (pytest-salt-factories) stays a zombie until its
        # parent reaps it, and Salt refuses to start while its pid file names a pid that exists ("An instance
        # is already running"): a pid file naming a dead or zombie process is stale, remove it.
        pid = procs.read_pidfile(daemon.pidfile)
        if pid is not None and not _alive(pid):
            daemon.pidfile.unlink(missing_ok=True)
        procs.spawn(daemon, topology.bindir)
    deadline = time.monotonic() + timeout
    while True:
        if topology.mom.salt([minion], "test.ping", timeout=5).returns.get(minion) is True:
            return
        assert time.monotonic() < deadline, f"{minion} did not answer test.ping within {timeout}s of its restart"


def syndic_daemon(topology: Topology, syndic: str) -> procs.Daemon:
    return next(d for d in topology.daemons if d.node == syndic and d.kind == "syndic")


def signal_syndic(topology: Topology, syndic: str, signum: int) -> None:
    """Send ``signum`` to the salt-syndic of ``syndic`` and its workers (its own process group and session)."""
    daemon = syndic_daemon(topology, syndic)
    proc = procs.find_process(daemon, topology.launch_pids.get(daemon.name))
    assert proc is not None, f"{syndic}: no salt-syndic running"
    group = os.getpgid(proc.pid)
    assert group != os.getpgid(0), "the salt-syndic runs in pytest's process group"
    os.killpg(group, signum)


def restart_syndic(topology: Topology, syndic: str, timeout: float = 60.0) -> None:
    """SIGCONT (harmless when running) and, if it is gone, start the salt-syndic of ``syndic`` again; wait until
    a minion behind it answers the MoM."""
    daemon = syndic_daemon(topology, syndic)
    proc = procs.find_process(daemon, topology.launch_pids.get(daemon.name))
    if proc is not None:
        os.killpg(os.getpgid(proc.pid), signal.SIGCONT)
    else:
        daemon.pidfile.unlink(missing_ok=True)
        procs.spawn(daemon, topology.bindir)
    minion = topology.syndic(syndic).minions[0].id
    deadline = time.monotonic() + timeout
    while topology.mom.salt([minion], "test.ping", timeout=5).returns.get(minion) is not True:
        assert time.monotonic() < deadline, f"{minion} unreachable through {syndic} after the fault"


def journal(state_dir: Path, rollout_id: str) -> list[dict[str, Any]]:
    path = state_dir / "rollouts" / ENV / rollout_id / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    """``start WORKDIR CONFIG RELEASE``: run a rollout in this process (to be killed by the test)."""
    from pipeline.rollout import RolloutRequest, start_rollout

    _, workdir, config, release_id = argv
    topology = load_topology(Path(workdir))
    ctx = context(topology, Path(config))
    result = start_rollout(RolloutRequest(ctx, release_id))
    print(result.outcome.value)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
