"""A real ``redis-server`` (the Debian package) on loopback: the external job cache of a local topology.

:func:`start_redis` runs it in the foreground of its own process group (no persistence: a job cache of a
throwaway topology), with its pid file, log and socket files in one directory, and returns once it answers
``PING``. :func:`inspect_redis` (``topology status``) and :func:`stop_redis` (``topology down``) find it from
its pid file, from any process, trusting a pid only when that process is a redis-server on the server's port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from pipeline.errors import TopologyError
from pipeline.topology.daemons import DaemonStatus, owned_process, read_pidfile, status_of

LOOPBACK = "127.0.0.1"
INSTALL_HINT = "apt-get install redis-server (the Debian package; .ci/run installs it)"


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server: where it listens and where its files are."""

    host: str
    port: int
    #: Holds its pid file and its log; nothing is persisted.
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    @property
    def name(self) -> str:
        """Its name in ``topology status``, shaped like a Salt daemon's ``<node>/<kind>``."""
        return f"{self.directory.name}/redis-server"


def redis_server_binary() -> str:
    """The ``redis-server`` executable; :class:`TopologyError` saying what to install when there is none."""
    found = shutil.which("redis-server")
    if not found:
        raise TopologyError("redis-server is not installed (the external job cache needs it)", hint=INSTALL_HINT)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(directory: Path, *, port: int | None = None, timeout: float = 20.0) -> RedisServer:
    """Start redis-server on loopback (``port``, or a free one) with its files in ``directory``; return once it
    answers PING, else :class:`TopologyError` (and nothing left running)."""
    binary = redis_server_binary()
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(LOOPBACK, port or _free_port(), directory.resolve())
    args = [
        binary, "--bind", server.host, "--port", str(server.port), "--dir", str(server.directory),
        "--pidfile", str(server.pidfile), "--logfile", str(server.log_file),
        # A job cache of a throwaway topology: nothing to persist, nothing to fork for.
        "--save", "", "--appendonly", "no", "--daemonize", "no",
    ]
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while not _ping(server.host, server.port):
        if proc.poll() is not None or time.monotonic() >= deadline:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            raise TopologyError(
                f"redis-server did not answer on {server.host}:{server.port} within {timeout:.0f}s",
                hint=f"see {server.log_file}",
            )
        time.sleep(0.05)
    # The pid file is written right after the listening socket: wait for it so stop_redis finds the server.
    while not server.pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


def _owns(proc: psutil.Process, server: RedisServer) -> bool:
    # redis-server sets its process title to "redis-server <host>:<port>"; a reused pid is another program.
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "redis-server" in cmdline and f":{server.port}" in cmdline


def _find(server: RedisServer) -> psutil.Process | None:
    return owned_process((read_pidfile(server.pidfile),), lambda proc: _owns(proc, server))


def inspect_redis(server: RedisServer) -> DaemonStatus:
    """The server's pid and state, as :func:`pipeline.topology.daemons.inspect` gives a Salt daemon's
    (:func:`~pipeline.topology.daemons.status_of`; ``stopped``: no pid file, which redis-server removes when it
    shuts down)."""
    return status_of(server.name, server.directory.name, "redis-server", _find(server), server.pidfile,
                     server.log_file)


def stop_redis(server: RedisServer, *, timeout: float = 10.0) -> None:
    """Stop the server of ``server.pidfile`` (SIGTERM, then SIGKILL after ``timeout``); nothing running is fine.
    Its pid file goes too, so :func:`inspect_redis` reads ``stopped``."""
    proc = _find(server)
    if proc is not None:
        _terminate(proc.pid, timeout)
    server.pidfile.unlink(missing_ok=True)


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            # Our own child (started by this process): reap it, or it stays a zombie that os.kill still finds.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
