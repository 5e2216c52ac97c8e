"""A real ``redis-server`` (the Debian package) on loopback: the external job cache of a local topology.

:func:`start_redis` runs it in the foreground of its own process group (no persistence: a job cache of a
throwaway topology), with its pid file, log and socket files in one directory, and returns once it answers
``PING``. :func:`stop_redis` stops it from the pid file, from any process (``topology down``).
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

from pipeline.errors import TopologyError

LOOPBACK = "127.0.0.1"
INSTALL_HINT = "apt-get install redis-server (the Debian package; .ci/run installs it)"


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server: where it listens and where its files are."""

    host: str
    port: int
    directory: Path

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


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
        "--pidfile", str(server.pidfile), "--logfile", str(server.directory / "redis.log"),
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
                hint=f"see {server.directory / 'redis.log'}",
            )
        time.sleep(0.05)
    # The pid file is written right after the listening socket: wait for it so stop_redis finds the server.
    while not server.pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


def stop_redis(server: RedisServer, *, timeout: float = 10.0) -> None:
    """Stop the server of ``server.pidfile`` (SIGTERM, then SIGKILL after ``timeout``); nothing running is fine."""
    try:
        pid = int(server.pidfile.read_text().strip())
    except (OSError, ValueError):
        return
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
