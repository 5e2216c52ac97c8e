"""TEST DOUBLE - a scripted, in-memory :class:`~pipeline.salt_client.base.SaltClient` for the unit tests (importable
as ``scripted_client``: tests/unit/conftest.py puts this directory on sys.path). Never used by the CLI.

It plays a fleet of minions behind syndics: every publish is recorded (so a test can prove which minions were
touched), and each minion answers each function as its script says - success, failed states, render errors, a
return that only shows up in the MoM's or a syndic's job cache, a job still running for a few ``find_job`` calls,
or nothing at all. Integration tests use the real clients against real daemons instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pipeline.salt_client.base import Call, LookupUnavailable, MinionReturn, Published, Resolution, RunningJob
from pipeline.salt_client.base import SaltClient, return_of

Delivery = Literal["event", "master_cache", "syndic_cache", "never"]


def ok_state_return(name: str = "ops_node") -> dict[str, Any]:
    """A highstate return in which every state succeeded."""
    return {
        f"file_|-{name}_|-/srv/{name}_|-managed": {
            "result": True,
            "comment": "File is in the correct state",
            "changes": {},
            "duration": 3.1,
            "__run_num__": 0,
        }
    }


def failed_state_return(name: str = "ops_node") -> dict[str, Any]:
    """A highstate return with one failed state."""
    return {
        f"service_|-{name}_|-{name}_|-running": {
            "result": False,
            "comment": f"Service {name} failed to start",
            "changes": {},
            "duration": 12.0,
            "__run_num__": 0,
        }
    }


def default_return(fun: str) -> Any:
    if fun == "test.ping":
        return True
    if fun == "saltutil.sync_all":
        return {"modules": [], "states": [], "grains": []}
    if fun == "state.apply":
        return ok_state_return()
    return True


@dataclass(frozen=True)
class Behavior:
    """How one minion answers one publish.

    ``delay_polls``: how many :meth:`ScriptedSaltClient.returns` calls pass before the return is visible.
    ``running_polls``: for how many ``find_job`` calls the minion says it still runs the job.
    ``delivery``: where the return ends up (``event`` = it arrives; ``master_cache``/``syndic_cache`` = only a
    lookup finds it; ``never`` = the minion is gone).
    """

    ret: Any = None
    retcode: int | None = 0
    success: bool | None = None
    delivery: Delivery = "event"
    delay_polls: int = 0
    running_polls: int = 0


Script = Callable[[str, str, Sequence[Any], Mapping[str, Any]], Behavior | None]


@dataclass
class PublishRecord:
    jid: str
    fun: str
    targets: tuple[str, ...]
    arg: tuple[Any, ...]
    kwarg: dict[str, Any]


@dataclass
class _Pending:
    minion: str
    behavior: Behavior
    ret: MinionReturn
    polls: int = 0
    find_calls: int = 0


@dataclass
class ScriptedSaltClient(SaltClient):
    """A fleet of ``minions`` (id -> syndic). ``script(minion, fun, arg, kwarg)`` returns a :class:`Behavior`
    (``None`` = the default success). ``reachable_syndic_caches`` lists syndics whose cache a lookup may read."""

    minions: Mapping[str, str | None]
    script: Script | None = None
    reachable_syndic_caches: frozenset[str] | None = None
    extra: Sequence[str] = ()
    silent: Mapping[str, str | None] = field(default_factory=dict)
    published: list[PublishRecord] = field(default_factory=list)
    lookups: list[tuple[str, str | None]] = field(default_factory=list)
    find_calls: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.extra)
        self.name = "scripted"
        self._jids = itertools.count(20250101000000000001)
        self._jobs: dict[str, dict[str, _Pending]] = {}

    # -- helpers for tests -------------------------------------------------------------------------------------

    def touched(self, fun: str | None = None) -> set[str]:
        """Minions that any publish (of ``fun``) targeted, besides ``test.ping`` and ``saltutil.find_job``."""
        out: set[str] = set()
        for rec in self.published:
            if rec.fun in ("test.ping", "saltutil.find_job"):
                continue
            if fun is None or rec.fun == fun:
                out.update(rec.targets)
        return out

    def calls(self, fun: str) -> list[PublishRecord]:
        return [r for r in self.published if r.fun == fun]

    # -- SaltClient --------------------------------------------------------------------------------------------

    def resolve(self, expression: str, *, timeout: float, syndics: Collection[str] = ()) -> Resolution:
        self._check_function("test.ping")
        return Resolution(minions=dict(self.minions), silent=dict(self.silent), jid="20250101000000000000")

    def publish(
        self, targets: Sequence[str], fun: str, arg: Sequence[Any] = (), kwarg: Mapping[str, Any] | None = None
    ) -> Published:
        self._check_function(fun)
        tgt = self._check_targets(targets)
        jid = str(next(self._jids))
        kw = dict(kwarg or {})
        self.published.append(PublishRecord(jid=jid, fun=fun, targets=tgt, arg=tuple(arg), kwarg=kw))
        job: dict[str, _Pending] = {}
        for minion in tgt:
            if minion not in self.minions:
                continue  # an unknown id: nothing answers
            behavior = (self.script(minion, fun, arg, kw) if self.script else None) or Behavior()
            ret = behavior.ret if behavior.ret is not None else default_return(fun)
            job[minion] = _Pending(
                minion=minion,
                behavior=behavior,
                ret=MinionReturn(minion=minion, jid=jid, ret=ret, retcode=behavior.retcode, success=behavior.success),
            )
        self._jobs[jid] = job
        return Published(jid=jid, fun=fun, targets=tgt, expected=tuple(m for m in tgt if m in self.minions))

    def publish_chain(self, targets: Sequence[str], calls: Sequence[Call]) -> Published:
        """One job for ``calls``: recorded as one :class:`PublishRecord` per function (same jid); each minion's
        scripted behaviours of the functions are merged into one return, as a minion returns a multi-function
        job: every function's return, retcode and success by function; it arrives as the slowest, least
        deliverable part says."""
        for fun, _, _ in calls:
            self._check_function(fun)
        tgt = self._check_targets(targets)
        jid = str(next(self._jids))
        for fun, arg, kwarg in calls:
            self.published.append(PublishRecord(jid=jid, fun=fun, targets=tgt, arg=tuple(arg), kwarg=dict(kwarg or {})))
        order = ("event", "master_cache", "syndic_cache", "never")
        job: dict[str, _Pending] = {}
        for minion in tgt:
            if minion not in self.minions:
                continue
            parts = [
                (fun, (self.script(minion, fun, arg, dict(kwarg or {})) if self.script else None) or Behavior())
                for fun, arg, kwarg in calls
            ]
            rets = {f: b.ret if b.ret is not None else default_return(f) for f, b in parts}
            codes = {f: b.retcode for f, b in parts}
            flags = {f: b.success if b.success is not None else b.retcode in (0, None) for f, b in parts}
            merged = Behavior(
                ret=rets,
                delivery=max((b.delivery for _, b in parts), key=order.index),
                delay_polls=max(b.delay_polls for _, b in parts),
                running_polls=max(b.running_polls for _, b in parts),
            )
            job[minion] = _Pending(
                minion=minion,
                behavior=merged,
                ret=return_of(minion, jid, rets, codes, flags, "event"),
            )
        self._jobs[jid] = job
        return Published(jid=jid, fun=",".join(f for f, _, _ in calls), targets=tgt,
                         expected=tuple(m for m in tgt if m in self.minions))

    def returns(self, jid: str) -> dict[str, MinionReturn]:
        out: dict[str, MinionReturn] = {}
        for minion, pending in self._jobs.get(jid, {}).items():
            if pending.behavior.delivery != "event":
                continue
            pending.polls += 1
            if pending.polls > pending.behavior.delay_polls:
                out[minion] = pending.ret
        return out

    def find_job(self, minions: Sequence[str], jid: str, *, timeout: float) -> dict[str, RunningJob]:
        self._check_function("saltutil.find_job")
        self.find_calls.append((tuple(minions), jid))
        out: dict[str, RunningJob] = {}
        for minion in minions:
            pending = self._jobs.get(jid, {}).get(minion)
            if pending is None or pending.behavior.delivery == "never":
                continue
            pending.find_calls += 1
            if pending.find_calls <= pending.behavior.running_polls:
                out[minion] = RunningJob(minion=minion, jid=jid, pid=4242)
                if pending.find_calls == pending.behavior.running_polls and pending.behavior.delivery == "event":
                    # The job finishes while we were asking: its return arrives with the next poll.
                    pending.polls = pending.behavior.delay_polls
        return out

    def lookup_job(self, jid: str, *, syndic: str | None = None) -> dict[str, MinionReturn]:
        self._check_runner("jobs.list_job")
        self.lookups.append((jid, syndic))
        if syndic is not None and self.reachable_syndic_caches is not None and syndic not in self.reachable_syndic_caches:
            raise LookupUnavailable(f"no access to the job cache of syndic {syndic}")
        out: dict[str, MinionReturn] = {}
        for minion, pending in self._jobs.get(jid, {}).items():
            where = pending.behavior.delivery
            # A return that arrives as an event is in the MoM's job cache too, once the minion has finished
            # (delay_polls elapsed, counted by returns() polls).
            if syndic is None and where in ("event", "master_cache") and (
                where == "master_cache" or pending.polls >= pending.behavior.delay_polls
            ):
                out[minion] = _with_source(pending.ret, "master_cache")
            elif syndic is not None and where == "syndic_cache" and self.minions.get(minion) == syndic:
                out[minion] = _with_source(pending.ret, f"syndic_cache:{syndic}")
        return out


def _with_source(ret: MinionReturn, source: str) -> MinionReturn:
    return replace(ret, source=source)
