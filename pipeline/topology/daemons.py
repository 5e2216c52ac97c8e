"""Salt daemons as processes: start one detached, find it again by its pid file, stop it and its children.

A daemon is started in its own session (``start_new_session``), so it outlives the ``saltpipe topology up``
that started it and has a process group of its own to stop. Its pid is found from Salt's own pid file, and a
pid is only trusted when the live process's command line names the daemon's config directory (pids get
reused).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from pipeline.errors import TopologyError
from pipeline.jsonfile import field_json

Kind = Literal["master", "syndic", "minion"]
#: What ``topology status`` lists: the Salt daemons and the redis-server of the job cache (pipeline/topology/redis.py).
StatusKind = Literal["master", "syndic", "minion", "redis-server"]
State = Literal["running", "stopped", "stale", "zombie"]

_SCRIPTS: dict[Kind, str] = {"master": "salt-master", "syndic": "salt-syndic", "minion": "salt-minion"}
# Salt's defaults (salt/syspaths.py, salt/config), which it prefixes with root_dir.
_PIDFILES: dict[Kind, str] = {
    "master": "var/run/salt-master.pid",
    "syndic": "var/run/salt-syndic.pid",
    "minion": "var/run/salt-minion.pid",
}
_LOGS: dict[Kind, str] = {"master": "var/log/salt/master", "syndic": "var/log/salt/syndic", "minion": "var/log/salt/minion"}


def salt_bindir() -> Path:
    """Directory of the Salt scripts that belong to this Python (the virtualenv saltpipe runs from)."""
    here = Path(sys.executable).parent
    if (here / "salt-master").exists():
        return here
    found = shutil.which("salt-master")
    if found:
        return Path(found).parent
    raise TopologyError(
        "salt-master is not installed next to this Python nor on PATH",
        hint="install saltpipe with its dependencies (pip install -e .) in the virtualenv you run it from",
    )


@dataclass(frozen=True)
class Daemon:
    """One Salt daemon of the topology: which node it belongs to, what it is, where its files are."""

    node: str
    kind: Kind
    root_dir: Path
    config_dir: Path

    @property
    def name(self) -> str:
        return f"{self.node}/{self.kind}"

    @property
    def script(self) -> str:
        return _SCRIPTS[self.kind]

    @property
    def pidfile(self) -> Path:
        return self.root_dir / _PIDFILES[self.kind]

    @property
    def log_file(self) -> Path:
        return self.root_dir / _LOGS[self.kind]

    @property
    def console_log(self) -> Path:
        """Where the daemon's stdout/stderr go (start-up tracebacks land here, not in ``log_file``)."""
        return self.root_dir / "var" / "log" / "saltpipe" / f"{self.kind}.console"

    def argv(self, bindir: Path) -> list[str]:
        return [str(bindir / self.script), "-c", str(self.config_dir)]


@dataclass(frozen=True)
class DaemonStatus:
    """What ``saltpipe topology status`` shows for one daemon (or the job cache's redis-server)."""

    name: str
    node: str
    kind: StatusKind
    pid: int | None
    state: State
    log_file: Path

    def as_dict(self) -> dict[str, object]:
        return field_json(self, log_file=str(self.log_file))


def spawn(daemon: Daemon, bindir: Path) -> subprocess.Popen[bytes]:
    """Start ``daemon`` detached in its own session, its output appended to its console log."""
    daemon.console_log.parent.mkdir(parents=True, exist_ok=True)
    with daemon.console_log.open("ab") as console:
        return subprocess.Popen(  # pylint: disable=consider-using-with  # it must outlive this call
            daemon.argv(bindir),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            cwd=daemon.root_dir,
            start_new_session=True,
            close_fds=True,
        )


def _owns(proc: psutil.Process, daemon: Daemon) -> bool:
    # Salt rewrites its process title but keeps the original arguments, config dir included.
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return daemon.script in cmdline and str(daemon.config_dir) in cmdline


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def owned_process(pids: Iterable[int | None], owns: Callable[[psutil.Process], bool]) -> psutil.Process | None:
    """The first live process among ``pids`` that ``owns`` recognises (a reused pid is another program)."""
    for pid in pids:
        if pid is None:
            continue
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        if owns(proc):
            return proc
    return None


def find_process(daemon: Daemon, launch_pid: int | None = None) -> psutil.Process | None:
    """The live main process of ``daemon``: from Salt's pid file, else the pid it was launched with."""
    return owned_process((read_pidfile(daemon.pidfile), launch_pid), lambda proc: _owns(proc, daemon))


def status_of(name: str, node: str, kind: str, proc: psutil.Process | None, pidfile: Path,
              log_file: Path) -> DaemonStatus:
    """The state of a process found as its own (``proc``, else None): ``running``; ``zombie`` (exited, not
    reaped); ``stale`` (a pid file whose process is gone or is another program); ``stopped`` (no pid file)."""
    if proc is not None:
        try:
            zombie = proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            zombie = True
        state: State = "zombie" if zombie else "running"
        return DaemonStatus(name, node, kind, proc.pid, state, log_file)
    pid = read_pidfile(pidfile)
    return DaemonStatus(name, node, kind, pid, "stale" if pid is not None else "stopped", log_file)


def inspect(daemon: Daemon, launch_pid: int | None = None) -> DaemonStatus:
    """The daemon's pid and state (:func:`status_of`)."""
    return status_of(daemon.name, daemon.node, daemon.kind, find_process(daemon, launch_pid), daemon.pidfile,
                     daemon.log_file)


def _group_members(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop(daemons: Iterable[tuple[Daemon, int | None]], *, timeout: float = 15.0) -> None:
    """Stop each ``(daemon, launch_pid)`` that is running: SIGTERM to its process group, then SIGKILL to
    whatever is left after ``timeout`` seconds. Salt's pid files are removed so status reads ``stopped``."""
    victims: list[tuple[Daemon, psutil.Process, list[psutil.Process], int | None]] = []
    for daemon, launch_pid in daemons:
        proc = find_process(daemon, launch_pid)
        if proc is None:
            continue
        members = _group_members(proc)
        victims.append((daemon, proc, members, _own_group(proc)))
        _signal(proc, members, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for daemon, proc, members, group in victims:
        _, alive = psutil.wait_procs(members, timeout=max(0.1, deadline - time.monotonic()))
        alive = [p for p in alive if _is_alive(p)]
        if alive:
            _signal(proc, alive, signal.SIGKILL)
            psutil.wait_procs(alive, timeout=5)
        if group is not None:
            # A worker whose parent died before it (Salt's engine process was seen left behind, reparented to
            # init) is no child of the daemon any more, and may not have heeded SIGTERM: the daemon's own
            # process group (its session, see spawn) still names it.
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for daemon, _, _, _ in victims:
        daemon.pidfile.unlink(missing_ok=True)


def _own_group(proc: psutil.Process) -> int | None:
    """The daemon's process group when it leads one of its own (started by spawn), else ``None``."""
    try:
        pgid = os.getpgid(proc.pid)
    except (ProcessLookupError, PermissionError):
        return None
    return pgid if pgid == proc.pid and pgid != os.getpgrp() else None


def _is_alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal(leader: psutil.Process, members: list[psutil.Process], sig: signal.Signals) -> None:
    # The daemon leads its own session and process group (spawn); signal the group so worker processes that
    # lost their parent go too. Fall back to the individual processes if the group is not what we expect.
    try:
        if os.getpgid(leader.pid) == leader.pid:
            os.killpg(leader.pid, sig)
            return
    except (ProcessLookupError, PermissionError):
        pass
    for member in members:
        try:
            member.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
