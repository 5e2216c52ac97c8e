"""Which Salt functions the policy forbids, and which functions run other functions.

A *forbidden function* is an execution (or runner) function no state, orchestration, template or module may
call: ``cmd.*`` and the functions that run arbitrary state data (``state.single``, ``state.high``...). The
list is set by ``forbidden_functions`` in ``salt/policy.yaml`` (globs).

A *dispatcher* is a function whose argument names another function (``saltutil.cmd(tgt, 'cmd.run')``,
runner ``salt.cmd('cmd.run', ...)``); calling a forbidden function through one is the same as calling it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

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
    """The compiled ``forbidden_functions`` globs."""

    patterns: tuple[str, ...] = DEFAULT_FORBIDDEN

    @classmethod
    def of(cls, patterns: Iterable[str]) -> FunctionPolicy:
        return cls(tuple(patterns))

    def _regex(self) -> re.Pattern[str]:
        cached = self.__dict__.get("_re")
        if cached is None:
            cached = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns) or "(?!)")
            object.__setattr__(self, "_re", cached)
        return cached

    def forbidden(self, function: str | None) -> bool:
        """True when ``function`` (``"cmd.run"``) matches a forbidden glob."""
        return bool(function) and bool(self._regex().match(function.strip()))

    def forbidden_module(self, module: str) -> bool:
        """True when some function of ``module`` is forbidden (``cmd`` for ``cmd.*``)."""
        return any(p.split(".", 1)[0] == module for p in self.patterns)
