"""Freeze windows: times when an environment takes no rollout and no sync of ``base``.

Declared per environment in ``salt/pipeline.yaml`` (``environments.<env>.freeze``), validated at load (errors
name the file, line and key like every other config error)::

    freeze:
      - name: weekend                 # cron-like: starts at every match of `cron`, lasts `duration`
        cron: "0 18 * * fri"
        duration: 62h
        timezone: Europe/Berlin
      - name: year-end                # a date range: [start, end) in `timezone`
        start: 2026-12-20T00:00
        end: 2027-01-04T00:00
        timezone: Europe/Berlin

Times are wall-clock times of ``timezone`` (an IANA name; ``UTC`` by default). A cron window's ``duration`` is
elapsed time: a 62 h weekend freeze that spans a DST change still lasts 62 h. Where the cron time does not
exist on a spring-forward day (02:30 in Europe/Berlin), the window starts at the first time that does (03:00,
what croniter answers); on a fall-back day it starts at the first of the two 02:30s.

:func:`check_freeze` is the gate: inside a window the caller is refused with :class:`FreezeRefused` (exit 1,
naming the window) unless it passes an override reason, which it must record (the rollout journals a
``freeze_overridden`` event; every override is also appended to ``<state_dir>/freeze-overrides.jsonl``).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.errors import EXIT_FINDINGS, SaltpipeError

_DURATION_RE = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*$")
OVERRIDES_FILE = "freeze-overrides.jsonl"


class FreezeRefused(SaltpipeError):
    """A rollout or sync was asked for inside a freeze window. A gate decision: exit 1."""

    exit_code = EXIT_FINDINGS


def parse_duration(value: Any) -> timedelta:
    """``"62h"``, ``"1d 2h"``, ``"90m"`` (or a number of minutes) -> timedelta; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '62h' or '1d 12h', got {value!r}")
    if isinstance(value, int):
        minutes = value
    else:
        match = _DURATION_RE.match(str(value))
        if not match or not any(match.groups()):
            raise ValueError(f"expected a duration like '62h', '1d 12h' or '90m', got {value!r}")
        days, hours, mins = (int(g or 0) for g in match.groups())
        minutes = days * 1440 + hours * 60 + mins
    if minutes <= 0:
        raise ValueError("a freeze window must last at least one minute")
    return timedelta(minutes=minutes)


class FreezeWindow(BaseModel):
    """One freeze window: ``cron`` + ``duration``, or ``start`` + ``end``; times in ``timezone``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    timezone: str = "UTC"
    cron: str | None = None
    duration: timedelta | None = None
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as 'Europe/Berlin' or 'UTC'") from None
        return value

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and (len(value.split()) != 5 or not croniter.is_valid(value)):
            raise ValueError(f"{value!r} is not a 5-field cron expression such as '0 18 * * fri'")
        return value

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("give a local time without an offset (e.g. 2026-12-20T00:00); set 'timezone' instead")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> "FreezeWindow":
        cron_kind = self.cron is not None or self.duration is not None
        range_kind = self.start is not None or self.end is not None
        if cron_kind == range_kind:
            raise ValueError("give either 'cron' and 'duration', or 'start' and 'end'")
        if cron_kind and (self.cron is None or self.duration is None):
            raise ValueError("a cron window needs both 'cron' (when it starts) and 'duration' (how long it lasts)")
        if range_kind:
            if self.start is None or self.end is None:
                raise ValueError("a date range needs both 'start' and 'end'")
            if self.end <= self.start:
                raise ValueError(f"'end' ({self.end.isoformat()}) must be after 'start' ({self.start.isoformat()})")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def active_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The (start, end) of this window's occurrence that contains ``now`` (an aware datetime), else None."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        zone = self.zone
        if self.start is not None and self.end is not None:
            start, end = self.start.replace(tzinfo=zone), self.end.replace(tzinfo=zone)
            return (start, end) if start <= now < end else None
        assert self.cron is not None and self.duration is not None
        # Frozen iff some start lies in (now - duration, now]. Two questions to croniter, because it does its
        # arithmetic on wall-clock times: the latest start before now (get_prev, strictly before its base, so
        # asked from a second later), and the first start after now - duration (get_next) - the one get_prev
        # misses during a repeated fall-back hour, where "before 02:29 (second pass)" is yesterday's 02:30.
        local = now.astimezone(zone)
        starts = [
            croniter(self.cron, local + timedelta(seconds=1)).get_prev(datetime),
            croniter(self.cron, (now - self.duration).astimezone(zone)).get_next(datetime),
        ]
        spans = []
        for began in starts:
            end = (began.astimezone(timezone.utc) + self.duration).astimezone(zone)  # elapsed time, across DST
            if began <= now < end:
                spans.append((began, end))
        return max(spans, key=lambda span: span[1]) if spans else None

    def describe(self) -> str:
        if self.cron is not None:
            return f"{self.name} (cron '{self.cron}' for {self.duration}, {self.timezone})"
        return f"{self.name} ({self.start} to {self.end}, {self.timezone})"


@dataclass(frozen=True)
class FreezeDecision:
    """What :func:`check_freeze` decided: ``window`` is the active window (None: not frozen)."""

    environment: str
    window: FreezeWindow | None
    start: datetime | None = None
    end: datetime | None = None
    override: str | None = None

    @property
    def overridden(self) -> bool:
        return self.window is not None and self.override is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "window": self.window.name if self.window else None,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "reason": self.override,
        }


def active_window(windows: tuple[FreezeWindow, ...], now: datetime) -> tuple[FreezeWindow, datetime, datetime] | None:
    """The first of ``windows`` active at ``now`` with its occurrence's start and end."""
    for window in windows:
        span = window.active_at(now)
        if span is not None:
            return window, span[0], span[1]
    return None


def check_freeze(
    environment: str,
    windows: tuple[FreezeWindow, ...],
    *,
    action: str,
    override: str | None = None,
    now: datetime | None = None,
) -> FreezeDecision:
    """Refuse ``action`` (``rollout``, ``sync``) inside a freeze window of ``environment``.

    Returns the decision (not frozen, or frozen and overridden with ``override`` as the reason); raises
    :class:`FreezeRefused` naming the window and its end when frozen and not overridden. An empty override
    reason is refused too: an override must say why.
    """
    now = now or datetime.now(timezone.utc)
    found = active_window(windows, now)
    if found is None:
        return FreezeDecision(environment, None)
    window, start, end = found
    if override is not None and override.strip():
        return FreezeDecision(environment, window, start, end, override.strip())
    raise FreezeRefused(
        f"{environment} is frozen: freeze window {window.name!r} runs from {start.isoformat()} to "
        f"{end.isoformat()} ({window.timezone}); the {action} is refused",
        hint=f"wait until {end.isoformat()}, or override it with --override-freeze 'REASON' (the reason and "
        "who gave it are recorded)",
    )


def record_override(state_dir: Path, decision: FreezeDecision, *, action: str, release: str | None) -> dict[str, Any]:
    """Append an override to ``<state_dir>/freeze-overrides.jsonl`` (fsynced); returns the record."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    record = {
        "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "action": action,
        "release": release,
        "by": user,
        "host": socket.gethostname(),
        **decision.to_json(),
    }
    path = Path(state_dir) / OVERRIDES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return record


def read_overrides(state_dir: Path) -> list[dict[str, Any]]:
    """Every recorded override, oldest first (unreadable lines are skipped: this is a display helper)."""
    path = Path(state_dir) / OVERRIDES_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
