"""Waiting for a job's returns: the one :class:`Clock` protocol and the one poll loop every stage uses.

Contract:

* :class:`Clock` is how the engine reads and spends time (``monotonic``, ``sleep``). :class:`SystemClock` is the
  real one; tests pass a clock that only moves when something sleeps, so waits cost nothing and are exact.
* :func:`poll_returns` polls ``client.returns(jid)`` until every wanted minion returned or the deadline passed,
  handing each round's new returns to a callback; between rounds it waits through ``client.wait`` (the
  LocalClient wakes on the master's event bus, so a round ends when a return arrives, not a poll interval
  later). It never looks in a job cache and never publishes: lookups of lost returns belong to the caller (the
  rollout's lookup rounds, :mod:`pipeline.rollout.steps`; one MoM-cache look in :func:`collect_returns`).
* :func:`collect_returns` is the common case: the returns of ``targets`` within ``timeout``, then one look in the
  MoM's job cache for the rest (a return published through a syndic can miss the event bus).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from pipeline.errors import SaltError
from pipeline.salt_client.base import MinionReturn, SaltClient


class Clock(Protocol):
    """Monotonic time and sleeping, injected so that tests never spend real seconds."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock (``time.monotonic`` / ``time.sleep``; a sleep of zero or less returns at once)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def poll_returns(
    client: SaltClient,
    jid: str,
    pending: set[str],
    *,
    deadline: float,
    poll_interval: float,
    clock: Clock,
    take: Callable[[Mapping[str, MinionReturn]], object],
) -> None:
    """Poll ``jid`` until ``pending`` is empty or ``clock`` reaches ``deadline`` (at least one round is polled).

    ``take`` gets each round's returns (all of them, for every minion the transport saw) and removes from
    ``pending`` the minions it took; the loop ends as soon as nothing is pending."""
    while pending:
        take(client.returns(jid))
        if not pending or clock.monotonic() >= deadline:
            return
        client.wait(min(poll_interval, max(0.0, deadline - clock.monotonic())), clock.sleep)


def collect_returns(
    client: SaltClient,
    jid: str,
    targets: Sequence[str] | Collection[str],
    *,
    timeout: float,
    poll_interval: float,
    clock: Clock,
    look_in_cache: bool = True,
) -> dict[str, MinionReturn]:
    """The returns of ``targets`` for ``jid``: polled until all answered or ``timeout`` passed, then (with
    ``look_in_cache``) the rest looked up once in the MoM's job cache. A minion absent from the result did not
    return; a job cache that cannot be read counts as holding nothing (the caller decides what missing means)."""
    got: dict[str, MinionReturn] = {}
    pending = set(targets)

    def take(found: Mapping[str, MinionReturn]) -> None:
        for minion in found.keys() & pending:
            got[minion] = found[minion]
            pending.discard(minion)

    poll_returns(client, jid, pending, deadline=clock.monotonic() + timeout, poll_interval=poll_interval,
                 clock=clock, take=take)
    if pending and look_in_cache:
        # A return published through a syndic can miss the event bus and still reach the MoM's job cache.
        try:
            take(client.lookup_job(jid))
        except SaltError:
            pass
    return got
