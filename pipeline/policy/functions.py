"""Which Salt functions the policy forbids, and which functions run other functions.

A *forbidden function* is an execution (or runner) function no state, orchestration, template or module may
call. Two sources decide it: the allow-list (:mod:`pipeline.policy.allowlist`: every Salt function classified
once, in data; a denied or unclassified function is forbidden) and the ``forbidden_functions`` globs of
``salt/policy.yaml``, which can only forbid more (a ``lookup`` such as ``cmd.which`` is forbidden by a glob
only when the glob names it exactly).

A *dispatcher* is a function whose argument names another function (``saltutil.cmd(tgt, 'cmd.run')``,
runner ``salt.cmd('cmd.run', ...)``); calling a forbidden function through one is the same as calling it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.policy.allowlist import AllowList
from pipeline.policy.inventory import Kind

#: Defaults of ``forbidden_functions``.
DEFAULT_FORBIDDEN: tuple[str, ...] = (
    "cmd.*",
    "state.single",
    "state.template",
    "state.template_str",
    "state.high",
    "state.low",
    "state.pkg",
    "state.request",
    "state.run_request",
    "state.orchestrate_high",
    "chroot.call",
    "docker.run*",
    "lxc.run*",
    "nspawn.run*",
    "at.at",
    "cron.set_job",
    "cron.set_special",
    "cron.write_cron_file*",
    "slsutil.renderer",
)

#: function -> (keyword, position) of the argument naming the function it runs.
DISPATCHERS: dict[str, tuple[str, int]] = {
    # execution modules
    "saltutil.cmd": ("fun", 1),
    "saltutil.cmd_iter": ("fun", 1),
    "saltutil.cmd_iter_no_block": ("fun", 1),
    "saltutil.runner": ("name", 0),
    "publish.publish": ("fun", 1),
    "publish.full_data": ("fun", 1),
    "publish.runner": ("fun", 0),
    "mine.send": ("mine_function", 0),
    "schedule.add": ("function", 1),
    "schedule.modify": ("function", 1),
    # runners (orchestration)
    "salt.cmd": ("fun", 0),
    "salt.execute": ("fun", 1),
    "state.orchestrate_single": ("fun", 0),
}


@dataclass(frozen=True)
class FunctionPolicy:
    """The compiled ``forbidden_functions`` globs and the allow-list (None: the globs alone)."""

    patterns: tuple[str, ...] = DEFAULT_FORBIDDEN
    allow: AllowList | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, patterns: Iterable[str], allow: AllowList | None = None) -> FunctionPolicy:
        return cls(tuple(patterns), allow)

    def _regex(self) -> re.Pattern[str]:
        cached = self.__dict__.get("_re")
        if cached is None:
            cached = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns) or "(?!)")
            object.__setattr__(self, "_re", cached)
        return cached

    def why(self, function: str | None, kind: Kind = "execution") -> str | None:
        """Why ``function`` (``"cmd.run"``) is forbidden, or None when it may be called."""
        if not function:
            return None
        function = function.strip()
        if function in self.patterns:
            return "named in forbidden_functions of salt/policy.yaml"
        verdict = self.allow.verdict(function, kind) if self.allow is not None else None
        if verdict is not None and verdict.cls == "lookup":
            return None  # a lookup runs nothing: a glob (cmd.*) names executions
        if self._regex().match(function):
            return "matches forbidden_functions of salt/policy.yaml"
        if verdict is not None and verdict.denied:
            return verdict.reason if verdict.cls is None else f"{verdict.cls}: {verdict.reason}"
        return None

    def unknown(self, function: str, kind: Kind = "execution") -> bool:
        """True when the allow-list knows ``function`` neither from Salt nor from the repository's modules."""
        return self.allow is not None and self.allow.verdict(function, kind).cls is None

    def forbidden(self, function: str | None, kind: Kind = "execution") -> bool:
        """True when ``function`` must not be called (see :meth:`why`)."""
        return self.why(function, kind) is not None

    def forbidden_module(self, module: str) -> bool:
        """True when some function of ``module`` is forbidden (``cmd`` for ``cmd.*``)."""
        if any(p.split(".", 1)[0] == module for p in self.patterns):
            return True
        return self.allow is not None and self.allow.denied_in_module(module)
