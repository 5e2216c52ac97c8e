"""Test doubles shared by the unit tests of every stage (importable as ``doubles``: tests/unit/conftest.py puts
this directory on sys.path)."""

from __future__ import annotations


class FakeClock:
    """:class:`pipeline.salt_client.polling.Clock` whose time only moves when someone sleeps: waits cost nothing
    and are exact. ``slept`` lists every sleep asked for, in order."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
