"""Salt's LocalClient on the master-of-masters (saltpipe runs on the MoM, as a user allowed to publish).

Publishing is asynchronous (``LocalClient.pub`` with ``tgt_type=list``); returns are read from the MoM's event
bus without blocking, so one engine loop can poll, look jobs up and show progress. Two kinds of events matter:

* ``salt/job/<jid>/ret/<minion>`` - a minion's return (for a minion behind a syndic, forwarded by the syndic);
* ``syndic/<syndic-id>/<jid>`` with ``{"minions": [...]}`` - the minions a syndic master expects to answer
  ``<jid>``. This is how Salt itself learns who sits behind which syndic, and how :meth:`resolve` maps each
  minion to its syndic.

Job-cache lookups run the ``jobs.list_job`` runner with the MoM's options; a syndic master's job cache is read
the same way with that master's options when its config file is given (``syndic_configs``), which needs this
process to run where that master's cache lives (true for the local topology; in production use the salt-api
client with a per-syndic URL, or leave the syndic lookup out and rely on the MoM's cache and ``find_job``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import SaltError
from pipeline.salt_client.base import Call, LookupUnavailable, MinionReturn, Published, Resolution, RunningJob
from pipeline.salt_client.base import SaltClient, return_of, returns_from_list_job, running_from_find_job

log = logging.getLogger(__name__)

_RET_TAG = re.compile(r"^salt/job/(?P<jid>\d+)/ret/(?P<minion>[^/]+)$")
_SYNDIC_TAG = re.compile(r"^syndic/(?P<syndic>[^/]+)/(?P<jid>\d+)$")


class _Job:
    """What the event bus told us about one jid so far."""

    __slots__ = ("returns", "syndic_of", "expected", "announced")

    def __init__(self, expected: Sequence[str]) -> None:
        self.returns: dict[str, MinionReturn] = {}
        self.syndic_of: dict[str, str] = {}
        self.expected: set[str] = set(expected)
        self.announced: set[str] = set()  # syndics that sent their minion list for the jid


class EventRouter:
    """Sorts raw master events into per-jid returns and per-syndic expected minion lists.

    Kept apart from the LocalClient so the parsing can be unit-tested with recorded events. Events of jids that
    were not registered are dropped (saltpipe does not buffer the whole bus of a busy MoM).
    """

    def __init__(self) -> None:
        self.jobs: dict[str, _Job] = {}

    def register(self, jid: str, expected: Sequence[str] = ()) -> None:
        self.jobs.setdefault(jid, _Job(expected))

    def forget(self, jid: str) -> None:
        self.jobs.pop(jid, None)

    def feed(self, event: Mapping[str, Any]) -> None:
        """Take one event as ``SaltEvent.get_event(full=True)`` gives it: ``{"tag": ..., "data": {...}}``."""
        tag = str(event.get("tag", ""))
        data = event.get("data")
        if not isinstance(data, Mapping):
            return
        match = _RET_TAG.match(tag)
        if match:
            job = self.jobs.get(match["jid"])
            if job is None or "return" not in data:
                return
            minion = str(data.get("id") or match["minion"])
            retcode = data.get("retcode")
            if isinstance(retcode, bool):
                retcode = None
            job.returns[minion] = return_of(minion, match["jid"], data["return"], retcode, data.get("success"), "event")
            return
        match = _SYNDIC_TAG.match(tag)
        if match:
            job = self.jobs.get(match["jid"])
            if job is None:
                return
            job.announced.add(match["syndic"])
            for minion in data.get("minions") or ():
                job.syndic_of[str(minion)] = match["syndic"]
                job.expected.add(str(minion))


class LocalSaltClient(SaltClient):
    """Publish from the MoM with ``salt.client.LocalClient``.

    ``master_config`` is the MoM's master config file (``c_path``); ``mopts`` ready-made master options instead.
    ``syndic_configs`` maps syndic ids to their master config files, for job-cache lookups on the syndic.
    """

    def __init__(
        self,
        master_config: Path | None = None,
        *,
        mopts: Mapping[str, Any] | None = None,
        syndic_configs: Mapping[str, Path] | None = None,
        extra_functions: Sequence[str] = (),
        poll_wait: float = 0.2,
    ) -> None:
        super().__init__(extra_functions)
        import salt.client  # pylint: disable=import-outside-toplevel
        import salt.config  # pylint: disable=import-outside-toplevel

        if mopts is None:
            if master_config is None:
                raise SaltError("LocalSaltClient needs the MoM's master config file", hint="pass --master-config")
            if not Path(master_config).is_file():
                raise SaltError(
                    f"{master_config}: no such master config file",
                    hint="point --master-config (or SALTPIPE_MASTER_CONFIG) at the master-of-masters' config",
                )
            mopts = salt.config.client_config(str(master_config))
        self._opts = dict(mopts)
        self.name = f"LocalClient({master_config or self._opts.get('conf_file', 'mopts')})"
        try:
            self._local = salt.client.LocalClient(mopts=self._opts)
        except Exception as exc:  # pylint: disable=broad-except
            raise SaltError(
                f"cannot open Salt's LocalClient on the master: {exc}",
                hint="run saltpipe on the master-of-masters as a user allowed to publish (publisher_acl)",
            ) from exc
        self._syndic_configs = {k: Path(v) for k, v in (syndic_configs or {}).items()}
        self._router = EventRouter()
        self._poll_wait = poll_wait
        self._runners: dict[str | None, Any] = {}

    # -- publishing --------------------------------------------------------------------------------------------

    def _pub(
        self, tgt: str | list[str], tgt_type: str, fun: str, arg: Sequence[Any], kwarg: Mapping[str, Any] | None,
        ret: str = "",
    ) -> dict[str, Any]:
        import salt.utils.args  # pylint: disable=import-outside-toplevel

        return self._pub_conditioned(
            tgt, tgt_type, fun, salt.utils.args.condition_input(list(arg), dict(kwarg or {})), ret
        )

    def _pub_conditioned(
        self, tgt: str | list[str], tgt_type: str, fun: str | list[str], args: list[Any], ret: str = ""
    ) -> dict[str, Any]:
        """Publish with Salt's own argument list (kwargs already folded in as ``__kwarg__`` dicts); a list
        ``fun`` with one argument list per function is a multi-function job. ``ret``: returners the minions
        also return to."""
        fun_name = fun if isinstance(fun, str) else ",".join(fun)
        try:
            pub = self._local.pub(tgt, fun, args, tgt_type, ret=ret, listen=True)
        except Exception as exc:  # pylint: disable=broad-except
            raise SaltError(
                f"publishing {fun_name} from the master-of-masters failed: {exc}",
                hint="check that the salt-master runs and that this user may publish (publisher_acl)",
            ) from exc
        if not pub:
            raise SaltError(
                f"the master refused to publish {fun_name} (authentication failed)",
                hint="check publisher_acl / client_acl on the master-of-masters for this user",
            )
        if "error" in pub:
            error = pub["error"]
            message = error.get("message") if isinstance(error, Mapping) else str(error)
            raise SaltError(
                f"the master refused to publish {fun_name}: {message}",
                hint="check publisher_acl / publisher_acl_blacklist on the master-of-masters",
            )
        if "jid" not in pub or str(pub["jid"]) == "0":
            raise SaltError(f"the master did not assign a jid to {fun_name}", hint="is the salt-master running?")
        jid = str(pub["jid"])
        # Syndics announce their minions on syndic/<id>/<jid>; a plain master only on salt/job/<jid>.
        if self._opts.get("order_masters"):
            self._local.event.subscribe(f"syndic/.*/{jid}", "regex")
        self._local.event.subscribe(f"salt/job/{jid}")
        self._router.register(jid, [str(m) for m in pub.get("minions") or ()])
        return {"jid": jid, "minions": list(pub.get("minions") or ())}

    def publish(
        self, targets: Sequence[str], fun: str, arg: Sequence[Any] = (), kwarg: Mapping[str, Any] | None = None
    ) -> Published:
        self._check_function(fun)
        tgt = list(self._check_targets(targets))
        pub = self._pub(tgt, "list", fun, arg, kwarg, ret=self.returner or "")
        return Published(jid=pub["jid"], fun=fun, targets=tuple(tgt), expected=tuple(pub["minions"]))

    def publish_chain(self, targets: Sequence[str], calls: Sequence[Call]) -> Published:
        import salt.utils.args  # pylint: disable=import-outside-toplevel

        for fun, _, _ in calls:
            self._check_function(fun)
        tgt = list(self._check_targets(targets))
        funs = [fun for fun, _, _ in calls]
        args = [salt.utils.args.condition_input(list(arg), dict(kwarg or {})) for _, arg, kwarg in calls]
        pub = self._pub_conditioned(tgt, "list", funs, args, ret=self.returner or "")
        return Published(jid=pub["jid"], fun=",".join(funs), targets=tuple(tgt), expected=tuple(pub["minions"]))

    def _drain(self, block: float = 0.0) -> None:
        """Feed every pending event to the router; with ``block`` > 0 first wait up to that long for one (the
        loops of resolve/find_job must not spin)."""
        event = self._local.event
        if block > 0:
            # wait=0 without no_block would mean "forever" to SaltEvent.get_event.
            raw = event.get_event(wait=block, tag="", full=True)
            if raw is None:
                return
            self._router.feed(raw)
        while True:
            raw = event.get_event(wait=0.01, tag="", full=True, no_block=True)
            if raw is None:
                return
            self._router.feed(raw)

    def returns(self, jid: str) -> dict[str, MinionReturn]:
        # Non-blocking: the engine's poll loop sleeps between calls. A jid published by an earlier process (a
        # resumed rollout) is registered now, so its late returns are caught from here on.
        self._router.register(jid)
        self._drain()
        return dict(self._router.jobs[jid].returns)

    def wait(self, seconds: float, sleep: Callable[[float], None]) -> None:
        # Block on the event bus instead of sleeping: the poll loop wakes the moment a return (or any event)
        # arrives, so a step ends when its last minion returns, not up to one poll interval later.
        if seconds > 0:
            self._drain(block=seconds)

    def resolve(self, expression: str, *, timeout: float, syndics: Collection[str] = ()) -> Resolution:
        self._check_function("test.ping")
        pub = self._pub(expression, "compound", "test.ping", (), None)
        jid = pub["jid"]
        job = self._router.jobs[jid]
        # Wait until every expected minion answered and syndic_wait has passed (syndics announce their lists
        # within it), or the timeout. When the caller names the syndics, and each of them has announced its
        # list, nobody else is waited for: syndic_wait only exists for syndics the MoM cannot know of.
        syndic_wait = float(self._opts.get("syndic_wait", 5)) if self._opts.get("order_masters") else 0.0
        wanted = set(syndics)
        started = time.monotonic()
        deadline = started + timeout + syndic_wait
        while time.monotonic() < deadline:
            self._drain(block=self._poll_wait)
            answered = set(job.returns)
            settled = time.monotonic() - started >= syndic_wait or bool(wanted and wanted <= job.announced)
            if job.expected and job.expected <= answered and settled:
                break
        self._drain()
        minions = {m: job.syndic_of.get(m) for m, r in job.returns.items() if r.ret is True}
        silent = {m: job.syndic_of.get(m) for m in job.expected if m not in minions}
        self._router.forget(jid)
        return Resolution(minions=minions, silent=silent, jid=jid)

    def find_job(self, minions: Sequence[str], jid: str, *, timeout: float) -> dict[str, RunningJob]:
        self._check_function("saltutil.find_job")
        pub = self.publish(minions, "saltutil.find_job", [jid])
        deadline = time.monotonic() + timeout
        wanted = set(minions)
        got: dict[str, MinionReturn] = {}
        while time.monotonic() < deadline:
            self._drain(block=self._poll_wait)
            got = dict(self._router.jobs[pub.jid].returns)
            if wanted <= set(got):
                break
        self._router.forget(pub.jid)
        return running_from_find_job(jid, {m: r.ret for m, r in got.items()})

    # -- job caches ----------------------------------------------------------------------------------------------

    def _runner(self, syndic: str | None) -> Any:
        if syndic in self._runners:
            return self._runners[syndic]
        import salt.config  # pylint: disable=import-outside-toplevel
        import salt.runner  # pylint: disable=import-outside-toplevel

        if syndic is None:
            opts = salt.config.master_config(self._opts["conf_file"]) if self._opts.get("conf_file") else self._opts
        else:
            path = self._syndic_configs.get(syndic)
            if path is None:
                raise LookupUnavailable(
                    f"no access to the job cache of syndic {syndic}",
                    hint=f"give --syndic-config {syndic}=PATH (its master config) to look returns up there",
                )
            opts = salt.config.master_config(str(path))
        runner = salt.runner.RunnerClient(opts)
        self._runners[syndic] = runner
        return runner

    def lookup_job(self, jid: str, *, syndic: str | None = None) -> dict[str, MinionReturn]:
        self._check_runner("jobs.list_job")
        runner = self._runner(syndic)
        try:
            data = runner.cmd("jobs.list_job", [jid], print_event=False)
        except Exception as exc:  # pylint: disable=broad-except
            where = f"syndic {syndic}" if syndic else "the master-of-masters"
            raise SaltError(f"jobs.list_job {jid} on {where} failed: {exc}", hint="check that master's job cache") from exc
        return returns_from_list_job(jid, data, "master_cache" if syndic is None else f"syndic_cache:{syndic}")

    def close(self) -> None:
        local, self._local = getattr(self, "_local", None), None
        if local is not None:
            try:
                local.destroy()
            except Exception:  # pylint: disable=broad-except
                log.debug("LocalClient.destroy failed", exc_info=True)
