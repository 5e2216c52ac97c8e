"""One sync or rollout per environment at a time.

The lock is a file, ``<state_dir>/locks/<environment>.lock``, held with ``flock`` for as long as the holder runs,
and holding a small JSON note of who holds it (operation, user@host, pid, since when). Contract:

* :meth:`EnvironmentLock.acquire` either takes the lock or raises :class:`~pipeline.errors.LockError` naming the
  holder and since when. It never waits: a second sync must not queue behind a rollout it knows nothing about.
* A holder that died releases its ``flock`` with its process, so its note is *stale*: the next acquirer on the
  same host takes the lock over and says so (:attr:`LockInfo.took_over`). A note written by another host cannot
  be checked from here (``flock`` over NFS is not to be trusted): it is refused, and the hint says which file to
  remove once that host's process is known to be gone.
* Locks are not re-entrant. A rollout that syncs as one of its steps takes the lock once and calls the sync stage
  (:func:`pipeline.sync.sync_release`), which never locks by itself; only the CLI commands lock.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.errors import LockError
from pipeline.jsonfile import field_json


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or held) an environment's lock."""

    environment: str
    operation: str
    user: str
    host: str
    pid: int
    since: str
    #: The stale note this lock replaced, if any (its holder had died).
    took_over: "LockInfo | None" = field(default=None, compare=False)

    @property
    def holder(self) -> str:
        return f"{self.operation} by {self.user}@{self.host} (pid {self.pid})"

    def to_json(self) -> dict[str, Any]:
        return field_json(self, leave_out={"took_over"})

    @classmethod
    def from_json(cls, data: Any) -> "LockInfo | None":
        try:
            return cls(
                environment=str(data["environment"]),
                operation=str(data["operation"]),
                user=str(data["user"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                since=str(data["since"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _age(since: str) -> str:
    try:
        seconds = int((datetime.now(timezone.utc) - datetime.fromisoformat(since)).total_seconds())
    except ValueError:
        return "unknown time"
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m ago"


def lock_path(state_dir: Path, environment: str) -> Path:
    return Path(state_dir) / "locks" / f"{environment}.lock"


def read_lock(state_dir: Path, environment: str) -> LockInfo | None:
    """The current holder of ``environment``'s lock, or ``None`` when it is free.

    Read-only: it takes no ``flock`` (that could make a concurrent acquire fail). A note from this host whose pid
    is gone counts as free; a note from another host is reported as held, as :meth:`EnvironmentLock.acquire`
    would treat it.
    """
    path = lock_path(state_dir, environment)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        note = _read_note(fd)
    finally:
        os.close(fd)
    if note is None:
        return None
    if note.host == socket.gethostname() and not _alive(note.pid):
        return None
    return note


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_note(fd: int) -> LockInfo | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    if not raw.strip():
        return None
    try:
        return LockInfo.from_json(json.loads(raw))
    except ValueError:
        return None


class EnvironmentLock:
    """``with EnvironmentLock(state_dir, "production", "rollout"):`` - exclusive per environment, never waits."""

    def __init__(self, state_dir: Path, environment: str, operation: str) -> None:
        self.path = lock_path(state_dir, environment)
        self.environment = environment
        self.operation = operation
        self._fd: int | None = None
        self.info: LockInfo | None = None

    def acquire(self) -> LockInfo:
        """Take the lock or raise :class:`LockError` naming the holder and since when."""
        if self._fd is not None:
            raise LockError(f"{self.path}: already held by this object", hint="locks are not re-entrant")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                note = _read_note(fd)
                os.close(fd)
                raise self._held_error(note) from None
            # The previous holder unlinks the file before unlocking; if we locked an unlinked inode, retry on
            # the file that is there now, or two processes could each hold "the" lock on different inodes.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _read_note(fd)
        if stale is not None and stale.host != socket.gethostname():
            os.close(fd)
            raise self._held_error(stale, other_host=True)
        info = LockInfo(
            environment=self.environment,
            operation=self.operation,
            user=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            since=_now(),
            took_over=stale,
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info.to_json()) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        self.info = info
        return info

    def release(self) -> None:
        """Give the lock up: remove the note, then unlock. Safe to call twice."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        finally:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def _held_error(self, note: LockInfo | None, other_host: bool = False) -> LockError:
        if note is None:
            return LockError(
                f"environment {self.environment!r} is locked ({self.path}; the holder is just starting)",
                hint="wait for the other sync or rollout to finish, then run this again",
            )
        hint = "wait for it to finish, then run this again"
        if other_host:
            hint = (
                f"it was taken on another host ({note.host}), so saltpipe cannot tell whether pid {note.pid} is "
                f"still running; once you know it is not, remove {self.path}"
            )
        return LockError(
            f"environment {self.environment!r} is locked: {note.holder} since {note.since} ({_age(note.since)})",
            hint=hint,
        )

    def __enter__(self) -> "EnvironmentLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
