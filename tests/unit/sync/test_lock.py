"""The per-environment lock: exclusive, never waits, names its holder, recovers from a dead holder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import LockError
from pipeline.lock import EnvironmentLock, lock_path, read_lock

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pipeline.lock import EnvironmentLock
    lock = EnvironmentLock(Path(sys.argv[1]), sys.argv[2], "rollout")
    lock.acquire()
    print("held", flush=True)
    time.sleep(300)
    """
)


@pytest.fixture
def holder(tmp_path: Path):
    """Start another process that takes the lock of 'production' and keeps it until killed."""
    procs: list[subprocess.Popen] = []

    def start(env: str = "production") -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path), env], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"  # blocks until the lock is taken, no sleeping
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_second_acquire_is_refused_with_holder_and_since(tmp_path):
    with EnvironmentLock(tmp_path, "test", "sync") as first:
        with pytest.raises(LockError) as info:
            EnvironmentLock(tmp_path, "test", "rollout").acquire()
        message = str(info.value)
        assert "environment 'test' is locked" in message
        assert f"sync by {first.info.user}@{socket.gethostname()} (pid {os.getpid()})" in message
        assert f"since {first.info.since}" in message
    # released: a new holder gets it
    with EnvironmentLock(tmp_path, "test", "rollout") as again:
        assert again.info.took_over is None
    assert not lock_path(tmp_path, "test").exists()


def test_environments_are_independent(tmp_path):
    with EnvironmentLock(tmp_path, "test", "sync"), EnvironmentLock(tmp_path, "production", "sync"):
        assert read_lock(tmp_path, "test").operation == "sync"
        assert read_lock(tmp_path, "production") is not None


def test_lock_held_by_another_process_then_taken_over_after_it_dies(tmp_path, holder):
    proc = holder("production")
    with pytest.raises(LockError, match=rf"rollout by .* \(pid {proc.pid}\) since "):
        EnvironmentLock(tmp_path, "production", "sync").acquire()
    assert read_lock(tmp_path, "production").pid == proc.pid

    proc.send_signal(signal.SIGKILL)  # dies without releasing: its note stays behind, its flock goes
    proc.wait()
    assert lock_path(tmp_path, "production").exists()
    assert read_lock(tmp_path, "production") is None, "a dead holder on this host does not count"
    lock = EnvironmentLock(tmp_path, "production", "sync")
    info = lock.acquire()
    try:
        assert info.took_over is not None and info.took_over.pid == proc.pid
        on_disk = json.loads(lock_path(tmp_path, "production").read_text())
        assert on_disk["pid"] == os.getpid() and on_disk["operation"] == "sync"
    finally:
        lock.release()


def test_note_from_another_host_is_refused_and_names_the_file(tmp_path):
    path = lock_path(tmp_path, "production")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "environment": "production", "operation": "rollout", "user": "ci", "host": "runner-7.example.net",
        "pid": 4242, "since": "2024-05-01T10:00:00+00:00",
    }))
    with pytest.raises(LockError) as info:
        EnvironmentLock(tmp_path, "production", "sync").acquire()
    assert "rollout by ci@runner-7.example.net (pid 4242) since 2024-05-01T10:00:00+00:00" in str(info.value)
    assert str(path) in str(info.value)
    assert read_lock(tmp_path, "production").host == "runner-7.example.net"


def test_not_reentrant_and_release_is_idempotent(tmp_path):
    lock = EnvironmentLock(tmp_path, "test", "sync")
    lock.acquire()
    with pytest.raises(LockError, match="re-entrant"):
        lock.acquire()
    lock.release()
    lock.release()
    assert read_lock(tmp_path, "test") is None
