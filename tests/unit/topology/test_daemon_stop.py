"""Stopping a daemon takes its whole process group, also a worker that was orphaned and ignores SIGTERM
(seen: a salt-minion's engine process left running after the minion stopped)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from pipeline.topology import daemons as procs
from pipeline.topology.daemons import Daemon


def _fake_minion(tmp_path: Path) -> tuple[Daemon, Path, Path]:
    root = tmp_path / "node"
    daemon = Daemon(node="node-1", kind="minion", root_dir=root, config_dir=root / "conf")
    daemon.config_dir.mkdir(parents=True)
    daemon.pidfile.parent.mkdir(parents=True, exist_ok=True)
    orphan_pidfile = tmp_path / "orphan.pid"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / daemon.script
    # The daemon: writes its pid file, leaves a grandchild that ignores SIGTERM and whose parent exits at once
    # (so it is reparented and is no child of the daemon), then waits.
    script.write_text(
        "#!/bin/sh\n"
        f"echo $$ > '{daemon.pidfile}'\n"
        f"( sh -c 'trap \"\" TERM; echo $$ > \"{orphan_pidfile}\"; while :; do sleep 0.2; done' & )\n"
        "while :; do sleep 0.2; done\n"
    )
    script.chmod(0o755)
    return daemon, bindir, orphan_pidfile


def _wait_for(path: Path) -> int:
    deadline = time.monotonic() + 10
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    return int(path.read_text())


def test_stop_kills_an_orphaned_worker_that_ignores_sigterm(tmp_path: Path) -> None:
    daemon, bindir, orphan_pidfile = _fake_minion(tmp_path)
    launched = procs.spawn(daemon, bindir)
    try:
        main_pid = _wait_for(daemon.pidfile)
        orphan = psutil.Process(_wait_for(orphan_pidfile))
        assert orphan.ppid() != main_pid and os.getpgid(orphan.pid) == os.getpgid(main_pid)
        procs.stop([(daemon, launched.pid)], timeout=1)
        launched.wait(timeout=10)
        gone, _ = psutil.wait_procs([orphan], timeout=5)
        assert gone, "the orphaned worker survived the stop"
        assert procs.inspect(daemon).state == "stopped"
    finally:
        for pid_file in (daemon.pidfile, orphan_pidfile):
            try:
                os.kill(int(pid_file.read_text()), 9)
            except (OSError, ValueError):
                pass
