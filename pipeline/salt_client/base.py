"""The Salt client interface: the few things the rollout engine asks of the master-of-masters.

A :class:`SaltClient` publishes jobs to an explicit *list* of minions, reports the returns that have arrived,
and looks up jobs whose returns did not arrive (the master's job cache, a syndic's job cache, the minion's own
``saltutil.find_job``). It never judges a result and never waits on its own beyond one bounded call: deciding
whether a minion succeeded, and how long to wait for it, is the engine's business (:mod:`pipeline.rollout`).

Contract shared by every implementation:

* Only allow-listed functions are published (:data:`ALLOWED_FUNCTIONS`, plus the few a caller adds explicitly,
  e.g. an environment's health-check function) and only allow-listed runners are called
  (:data:`ALLOWED_RUNNERS`). Anything else raises :class:`FunctionNotAllowed` before a byte leaves the process:
  ``cmd.*`` can never be published through saltpipe, whatever the master's ACL says.
* Jobs are published to a list target (``tgt_type=list``), so the set of minions that may run new code is
  exactly the set the engine chose. The one exception is :meth:`SaltClient.resolve`, which runs ``test.ping``
  against the environment's compound target to find that set in the first place.
* Returns are data (:class:`MinionReturn`): the function's return as Salt gives it, and the ``retcode`` and
  ``success`` flags when the transport carries them. Salt's own exit codes are never consulted.
* Transport failures (master down, salt-api refusing the login, an ACL refusal) raise
  :class:`~pipeline.errors.SaltError` with what to do; a minion that does not answer is not an error.

Implementations: :class:`pipeline.salt_client.local.LocalSaltClient` (Salt's LocalClient, on the master),
:class:`pipeline.salt_client.api.SaltApiClient` (salt-api rest_cherrypy over HTTP), and the test double
``ScriptedSaltClient`` (unit tests only: tests/unit/scripted_client.py).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.errors import SaltError, UsageError

#: Execution functions saltpipe may publish. ``test.ping`` resolves the target and checks reachability;
#: ``saltutil.sync_all`` and ``state.apply`` are a rollout's two steps; ``saltutil.find_job`` asks a minion
#: whether it still runs a job; ``grains.item`` reads the ``fqdn`` grain for an HTTP health check's ``{host}``.
#: Nothing else - in particular nothing from ``cmd.*``.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {"test.ping", "saltutil.sync_all", "state.apply", "saltutil.find_job", "grains.item"}
)
#: Runner functions saltpipe may call on a master (read-only job-cache lookups).
ALLOWED_RUNNERS: frozenset[str] = frozenset({"jobs.list_job", "jobs.lookup_jid"})
#: Functions no caller may add to the allow list, whatever the config says.
NEVER_ALLOWED = re.compile(r"^(cmd|saltutil\.(cmd|runner|wheel)|state\.(single|high|low)|file\.|ssh\.|event\.fire)")
_FUNCTION_RE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_RETURNER_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
_MINION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class FunctionNotAllowed(UsageError):
    """saltpipe was asked to publish a function outside its allow list."""


def check_extra_functions(functions: Iterable[str]) -> frozenset[str]:
    """Validate functions a caller wants allowed in addition to :data:`ALLOWED_FUNCTIONS` (a health check).

    Raises :class:`FunctionNotAllowed` for anything that is not a plain ``module.function`` name or that could
    run arbitrary commands.
    """
    extra = frozenset(functions)
    for fun in sorted(extra):
        if not _FUNCTION_RE.match(fun) or NEVER_ALLOWED.match(fun):
            raise FunctionNotAllowed(
                f"{fun!r} cannot be published by saltpipe",
                hint="health checks must be a reviewed, read-only execution function such as ops_app.health",
            )
    return extra


@dataclass(frozen=True)
class MinionReturn:
    """One minion's return for one job, as the transport delivered it.

    ``ret`` is the function's return unchanged (a dict of state results, a list of render errors, a string ...).
    ``retcode`` and ``success`` are ``None`` when the transport did not carry them. ``source`` says where the
    return was found: ``event`` (it arrived), ``master_cache`` (the MoM's job cache), ``syndic_cache:<id>`` (a
    syndic master's job cache) - so a report can show which returns were recovered.
    """

    minion: str
    jid: str
    ret: Any
    retcode: int | None = None
    success: bool | None = None
    source: str = "event"
    #: A multi-function job's per-function retcodes / successes as Salt sent them (keyed by function, or a list
    #: with ``multifunc_ordered``); ``retcode`` then holds the highest. ``None`` for a single-function job.
    retcodes: Any = None
    successes: Any = None

    def part(self, fun: str, index: int) -> "MinionReturn":
        """The share of function ``fun`` (position ``index``) of this multi-function job's return, judged like
        the return of a job of ``fun`` alone. A return that is not per function (the whole job failed: an error
        string) is every function's return; a function missing from it (it raised) has no return."""

        def pick(value: Any) -> Any:
            if isinstance(value, Mapping):
                return value.get(fun)
            if isinstance(value, (list, tuple)):
                return value[index] if index < len(value) else None
            return None

        ret = pick(self.ret) if isinstance(self.ret, (Mapping, list, tuple)) else self.ret
        retcode = _int_or_none(pick(self.retcodes)) if self.retcodes is not None else self.retcode
        success = pick(self.successes) if self.successes is not None else self.success
        return replace(
            self, ret=ret, retcode=retcode, success=success if isinstance(success, bool) else None,
            retcodes=None, successes=None,
        )


#: One function call of a multi-function job: (function, positional args, keyword args).
Call = tuple[str, Sequence[Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Published:
    """A published job: its ``jid`` and the minions the MoM itself expects (syndics add theirs as they answer)."""

    jid: str
    fun: str
    targets: tuple[str, ...]
    expected: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunningJob:
    """What ``saltutil.find_job`` said: the minion still runs ``jid`` (with this pid)."""

    minion: str
    jid: str
    pid: int | None = None


@dataclass(frozen=True)
class Resolution:
    """Which minions a target expression reaches, and through which syndic.

    ``minions`` maps every minion that answered ``test.ping`` to its syndic (``None`` when it is attached to the
    MoM directly, or when the transport cannot tell). ``silent`` holds minions a master expected but that did not
    answer within the timeout: unreachable, or (with a grain target and a stale minion data cache) not matching
    after all. ``jid`` is the ping job, for the journal.
    """

    minions: Mapping[str, str | None]
    silent: Mapping[str, str | None] = field(default_factory=dict)
    jid: str | None = None

    def by_syndic(self) -> dict[str | None, list[str]]:
        out: dict[str | None, list[str]] = {}
        for minion, syndic in self.minions.items():
            out.setdefault(syndic, []).append(minion)
        for ids in out.values():
            ids.sort()
        return out


class SaltClient(ABC):
    """A connection to the master-of-masters that publishes only allow-listed functions to list targets.

    ``extra_functions`` adds functions to the allow list for this client only (validated by
    :func:`check_extra_functions`). Implementations must call :meth:`_check_function` / :meth:`_check_runner`
    before doing anything with a function name.
    """

    #: Human-readable description of where this client publishes (for the plan and the journal).
    name: str = "salt"

    def __init__(self, extra_functions: Iterable[str] = ()) -> None:
        self.allowed_functions: frozenset[str] = ALLOWED_FUNCTIONS | check_extra_functions(extra_functions)
        #: Salt returner every job of :meth:`publish` / :meth:`publish_chain` is also returned to (``ret``), or
        #: ``None``; set by :meth:`return_also_to`.
        self.returner: str | None = None

    def return_also_to(self, returner: str) -> None:
        """Have every job :meth:`publish` / :meth:`publish_chain` publishes from now on also returned through
        Salt's returner ``returner`` on each minion (``ret=`` of the publish; an external job cache)."""
        if not _RETURNER_RE.match(returner):
            raise UsageError(f"{returner!r} is not a Salt returner name")
        self.returner = returner

    # -- allow list --------------------------------------------------------------------------------------------

    def _check_function(self, fun: str) -> None:
        if fun not in self.allowed_functions:
            raise FunctionNotAllowed(
                f"saltpipe does not publish {fun!r}",
                hint=f"allowed: {', '.join(sorted(self.allowed_functions))}",
            )

    @staticmethod
    def _check_runner(fun: str) -> None:
        if fun not in ALLOWED_RUNNERS:
            raise FunctionNotAllowed(
                f"saltpipe does not call the runner {fun!r}", hint=f"allowed: {', '.join(sorted(ALLOWED_RUNNERS))}"
            )

    @staticmethod
    def _check_targets(targets: Sequence[str]) -> tuple[str, ...]:
        """A list target must be non-empty and made of plain minion ids (a ',' would widen a list target)."""
        if not targets:
            raise UsageError("refusing to publish to an empty list of minions")
        for minion in targets:
            if not isinstance(minion, str) or not _MINION_RE.match(minion):
                raise UsageError(f"{minion!r} is not a minion id; saltpipe publishes to explicit lists of ids only")
        return tuple(targets)

    # -- operations --------------------------------------------------------------------------------------------

    @abstractmethod
    def resolve(self, expression: str, *, timeout: float, syndics: Collection[str] = ()) -> Resolution:
        """Run ``test.ping`` on the compound ``expression`` from the MoM and say who answered, through which syndic.

        Waits at most ``timeout`` seconds (plus the master's ``syndic_wait``). ``syndics``: the syndics the
        target's minions sit behind (the environment's); a transport that sees each syndic announce its minion
        list may stop as soon as all of them did and every announced minion answered, instead of always waiting
        out ``syndic_wait`` for syndics it does not know of.
        """

    def wait(self, seconds: float, sleep: Callable[[float], None]) -> None:
        """Wait before the next :meth:`returns` poll: at most ``seconds``, less when the transport learns that
        something arrived (the LocalClient wakes on the master's event bus). This default just calls
        ``sleep(seconds)`` - the engine's clock, so tests that fake time stay exact."""
        sleep(seconds)

    @abstractmethod
    def publish(
        self, targets: Sequence[str], fun: str, arg: Sequence[Any] = (), kwarg: Mapping[str, Any] | None = None
    ) -> Published:
        """Publish ``fun`` to exactly ``targets`` (list targeting) and return at once with the jid."""

    @abstractmethod
    def publish_chain(self, targets: Sequence[str], calls: Sequence[Call]) -> Published:
        """Publish ``calls`` (function, args, kwargs) to exactly ``targets`` as ONE multi-function job: each
        minion runs them in order and sends one return holding every function's (see
        :meth:`MinionReturn.part`). One publish and one return per minion instead of one per function; Salt runs
        every function of the job even when an earlier one failed."""

    @abstractmethod
    def returns(self, jid: str) -> dict[str, MinionReturn]:
        """Every return of ``jid`` that has arrived so far, by minion. Never blocks for long; call it repeatedly."""

    @abstractmethod
    def find_job(self, minions: Sequence[str], jid: str, *, timeout: float) -> dict[str, RunningJob]:
        """Ask ``minions`` (``saltutil.find_job``) whether they still run ``jid``; the ones that do.

        A minion that does not answer, or answers that it does not run the job, is simply absent.
        """

    @abstractmethod
    def lookup_job(self, jid: str, *, syndic: str | None = None) -> dict[str, MinionReturn]:
        """The returns of ``jid`` in a job cache: the MoM's (``syndic=None``) or that syndic master's.

        Raises :class:`LookupUnavailable` when this client has no way to reach that syndic's job cache.
        """

    def close(self) -> None:
        """Release connections. Safe to call more than once."""

    def __enter__(self) -> "SaltClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LookupUnavailable(SaltError):
    """The client cannot read that syndic master's job cache (no access configured)."""


def returns_from_list_job(jid: str, data: Any, source: str) -> dict[str, MinionReturn]:
    """Parse the result of the ``jobs.list_job`` runner (also salt-api's ``/jobs/<jid>`` ``info``) into returns.

    ``data`` looks like ``{"Result": {minion: {"return": ..., "retcode": 0, "success": True}}, "Minions": [...]}``;
    older job caches store the bare return instead of the dict, which is accepted too.
    """
    out: dict[str, MinionReturn] = {}
    if not isinstance(data, Mapping):
        return out
    result = data.get("Result") or {}
    if not isinstance(result, Mapping):
        return out
    for minion, item in result.items():
        if isinstance(item, Mapping) and "return" in item:
            out[str(minion)] = return_of(str(minion), jid, item.get("return"), item.get("retcode"),
                                         item.get("success"), source)
        else:
            out[str(minion)] = MinionReturn(minion=str(minion), jid=jid, ret=item, source=source)
    return out


def return_of(minion: str, jid: str, ret: Any, retcode: Any, success: Any, source: str) -> MinionReturn:
    """A :class:`MinionReturn` from the raw ``return``/``retcode``/``success`` of a job return; the
    per-function ones of a multi-function job are kept for :meth:`MinionReturn.part`."""
    multi = isinstance(retcode, (Mapping, list)) or isinstance(success, (Mapping, list))
    if multi:
        flags = success.values() if isinstance(success, Mapping) else success if isinstance(success, list) else ()
        overall = all(f is True for f in flags) if flags else None
    else:
        overall = success if isinstance(success, bool) else None
    return MinionReturn(
        minion=minion,
        jid=jid,
        ret=ret,
        retcode=_int_or_none(retcode),
        success=overall,
        source=source,
        retcodes=retcode if multi else None,
        successes=success if multi else None,
    )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (Mapping, list)):
        # Salt reports retcodes of some orchestrations per minion, and of multi-function jobs per function;
        # any non-zero one is the retcode.
        codes = [v for v in (value.values() if isinstance(value, Mapping) else value) if isinstance(v, int)]
        return max(codes, default=0) if codes else None
    return None


def running_from_find_job(jid: str, data: Mapping[str, Any]) -> dict[str, RunningJob]:
    """Parse ``saltutil.find_job`` returns (``{minion: {"jid": ..., "pid": ...}}`` or ``{}``) into running jobs."""
    out: dict[str, RunningJob] = {}
    for minion, ret in data.items():
        if isinstance(ret, Mapping) and ret.get("jid") == jid:
            pid = ret.get("pid")
            out[str(minion)] = RunningJob(minion=str(minion), jid=jid, pid=pid if isinstance(pid, int) else None)
    return out
