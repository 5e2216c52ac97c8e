"""The switch journal: a sync killed between the first and the last syndic's switch is finished (or undone) by
the next ``saltpipe sync`` or ``saltpipe status`` of that environment.

The switch of the syndics is one ``rename(2)`` per syndic, in parallel, and only starts once every syndic has
staged and verified the release (each tree is complete). A process killed in the middle (``kill -9``, the host
going down) would leave some syndics serving the new release and the others the old one, and nothing would say
so but the links themselves. So before the first switch the sync writes the **intent** (environment, release,
link, what each syndic served before) to ``<state_dir>/sync/<env>.switch.jsonl``, fsynced; one **switched**
line per syndic as each rename returns; and removes the file once every syndic is switched and recorded (or,
after a failed switch, switched back). A file left behind is an unfinished switch:

* :func:`recover_switch` **finishes** it when every syndic still holds the release (the intent is written only
  after every syndic verified it): the remaining links are switched and recorded, as the killed sync would have;
* it **reverts** it when a syndic no longer holds the release (removed by hand): every syndic is switched back to
  what it served before. Either way the syndics serve one release again, and the journal is removed.

A torn last line (killed mid-write) is ignored. The journal is local to the host running saltpipe, like the
state directory and the environment lock it sits beside; recovery runs under that lock.

``SALTPIPE_TEST_PAUSE_AT_SWITCH=<file>`` (tests only): the sync switches the first syndic, creates ``<file>``
and waits there, so a test can kill it at a known point of the switch.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.sync.layout import BASE_LINK
from pipeline.sync.syndic_state import record_switch
from pipeline.sync.target import FileRootsTarget, TargetError

PAUSE_ENV = "SALTPIPE_TEST_PAUSE_AT_SWITCH"


def switch_journal_path(state_dir: Path, environment: str) -> Path:
    return Path(state_dir) / "sync" / f"{environment}.switch.jsonl"


@dataclass(frozen=True)
class PendingSwitch:
    """An unfinished switch read from the journal."""

    environment: str
    release: str
    link: str
    saltenv: str
    before: dict[str, str | None]
    started_at: str | None
    by: str | None
    switched: tuple[str, ...] = ()


@dataclass(frozen=True)
class SwitchRecovery:
    """What :func:`recover_switch` did: ``finished`` or ``reverted``, and the syndics whose link it changed."""

    action: str
    pending: PendingSwitch
    changed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        p = self.pending
        what = (f"finished it: {p.link} -> {p.release} on {', '.join(self.changed) or 'no syndic left to switch'}"
                if self.action == "finished" else
                f"reverted it: {p.link} back to what each syndic served before on {', '.join(self.changed) or '-'}")
        return (f"an interrupted switch of {p.environment} to {p.release} (started {p.started_at} by {p.by}, "
                f"{len(p.switched)} syndic(s) switched) was found; {what}")


class SwitchJournal:
    """Intent + per-syndic records of one environment's switch (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps({"at": _now(), **record}, sort_keys=True) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)

    def begin(self, environment: str, release: str, link: str, saltenv: str, before: dict[str, str | None]) -> None:
        """Write the intent, fsynced with its directory. Refused while an unfinished switch is journaled: it is
        finished or undone first (``saltpipe sync ENV`` or ``saltpipe status ENV``), never overwritten."""
        from pipeline.errors import SyncError  # pylint: disable=import-outside-toplevel

        pending = self.load()
        if pending is not None:
            raise SyncError(
                f"a switch of {pending.environment} to {pending.release} (started {pending.started_at} by "
                f"{pending.by}) is unfinished: {len(pending.switched)} syndic(s) switched",
                hint=f"run `saltpipe sync {pending.environment}` or `saltpipe status {pending.environment}` to "
                "finish it, then run this again",
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self._append({"event": "intent", "environment": environment, "release": release, "link": link,
                      "saltenv": saltenv, "before": before, "by": f"{_user()}@{socket.gethostname()}",
                      "pid": os.getpid()})
        _fsync_dir(self.path.parent)

    def switched(self, syndic: str) -> None:
        self._append({"event": "switched", "syndic": syndic})

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)
        _fsync_dir(self.path.parent)

    def load(self) -> PendingSwitch | None:
        """The unfinished switch, or ``None`` when there is none."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line: the process died writing it
        intent = records[0] if records and records[0].get("event") == "intent" else None
        if intent is None:
            return None  # killed while writing the intent: nothing was switched yet
        return PendingSwitch(
            environment=str(intent["environment"]),
            release=str(intent["release"]),
            link=str(intent["link"]),
            saltenv=str(intent.get("saltenv") or "base"),
            before=dict(intent.get("before") or {}),
            started_at=intent.get("at"),
            by=intent.get("by"),
            switched=tuple(r["syndic"] for r in records[1:] if r.get("event") == "switched"),
        )

    def pause_point(self, first: bool) -> None:
        """The test hook of :data:`PAUSE_ENV`: every syndic but the first waits here before its switch."""
        marker = os.environ.get(PAUSE_ENV)
        if marker and not first:
            Path(marker).write_text(str(os.getpid()), encoding="utf-8")
            while True:  # until the test kills the process
                time.sleep(1)


def recover_switch(targets: Sequence[FileRootsTarget], journal: SwitchJournal) -> SwitchRecovery | None:
    """Finish or revert the unfinished switch in ``journal`` (``None`` when there is none). The caller holds the
    environment's lock. Raises :class:`~pipeline.sync.target.TargetError` when a syndic cannot be read or
    switched; the journal then stays, and the next run tries again."""
    pending = journal.load()
    if pending is None:
        if journal.path.exists():
            journal.finish()  # an intent torn mid-write: no syndic was switched
        return None
    snaps = {t.name: t.snapshot() for t in targets}
    finish = all(pending.release in snaps[t.name].releases for t in targets)
    changed: list[str] = []
    warnings: list[str] = []
    for target in targets:
        served = snaps[target.name].links.get(pending.link)
        before = pending.before.get(target.name) if pending.link == BASE_LINK else None
        want = pending.release if finish else before
        lagging = finish and pending.link == BASE_LINK and \
            (snaps[target.name].state.get("base") or {}).get("release") != want
        if served == want and not lagging:
            continue
        if served != want:
            if want:
                target.set_link(pending.link, want)
            else:
                target.remove_link(pending.link)
            changed.append(target.name)
        if finish:  # the killed sync's bookkeeping (saltpipe-state.json: base, previous, history)
            try:
                record_switch(target, pending.link, want, before)
            except TargetError as exc:
                warnings.append(str(exc))
        try:
            target.clear_file_list_cache(pending.saltenv)
        except TargetError as exc:
            warnings.append(str(exc))
    journal.finish()
    return SwitchRecovery("finished" if finish else "reverted", pending, tuple(changed), tuple(warnings))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user() -> str:
    import getpass  # pylint: disable=import-outside-toplevel

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
