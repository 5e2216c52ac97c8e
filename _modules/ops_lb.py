"""
Load-balancer pool membership of this node, as an atomic operation.

The node's load-balancer agent (an HAProxy ``agent-check`` or a health endpoint
the LB polls) reports the node as draining while a *drain flag* file exists.
This module only manages that flag, through Salt's own ``file`` module, so it
works the same for any LB that can read a file on the node:

- the node is **out** of pool ``<pool>`` when ``<drain_dir>/<pool>.drain`` exists;
- the first line of the flag is the reason it was pulled out (shown by
  :py:func:`status`, useful when a run stops half-way and someone has to look).

:configuration: Read with ``config.get``, so pillar, grains or minion options
    can set it (integration tests point it into the minion's ``root_dir``):

    .. code-block:: yaml

        ops:
          lb:
            drain_dir: /etc/ops/lb-drain   # the default

Return shapes: :py:func:`status` returns a description of the pool membership;
:py:func:`pull_out` and :py:func:`pull_in` return ``{"result", "changes",
"comment"}`` like a state does (``result`` is ``None`` for a dry run). Invalid
arguments or configuration raise ``CommandExecutionError``; a failing file
operation gives ``result: False``. Salt sets the job's retcode to 1 whenever
``result`` is falsy, so a dry run (``result: None``) also exits 1 under
``salt-call``; that is Salt's rule for dict returns, not an error.
"""

import functools
import logging
import os
import re
from collections.abc import Callable
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "ops_lb"

# The loader's reason when the shared utils module has not been synced to this minion.
_NEEDS_UTILS = "needs _utils/ops_common.py on the minion: run saltutil.sync_all (it syncs utils with the modules)"

DEFAULT_DRAIN_DIR = "/etc/ops/lb-drain"
DEFAULT_REASON = "saltpipe"
FLAG_SUFFIX = ".drain"

# A pool name becomes a file name: keep it to one safe path component so a
# caller can never make the module write outside drain_dir ("../x", "a/b").
_POOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def __virtual__() -> str | tuple[bool, str]:
    """
    Always available: the module only needs Salt's ``file`` and ``config``
    execution modules, which every minion has.
    Needs ``_utils/ops_common.py`` (synced with the modules).
    """
    return __virtualname__ if "ops_common.answered" in __utils__ else (False, f"{__virtualname__}: {_NEEDS_UTILS}")


def _answer_is_the_return(func: Callable[..., Any]) -> Callable[..., Any]:
    """Clear the job's retcode once ``func`` has returned (why: ``ops_common.answered``)."""
    return functools.wraps(func)(lambda *a, **kw: __utils__["ops_common.answered"](__context__, func(*a, **kw)))


def _drain_dir() -> str:
    """The configured drain directory (``ops:lb:drain_dir``), validated."""
    drain_dir = __salt__["config.get"]("ops:lb:drain_dir", DEFAULT_DRAIN_DIR)
    if not isinstance(drain_dir, str) or not drain_dir:
        raise CommandExecutionError(
            f"ops:lb:drain_dir must be a non-empty path, got {drain_dir!r}; "
            "set it in pillar, grains or the minion config"
        )
    if not os.path.isabs(drain_dir):
        raise CommandExecutionError(
            f"ops:lb:drain_dir must be an absolute path, got {drain_dir!r}"
        )
    return drain_dir


def _flag_path(pool: Any) -> str:
    """Path of the drain flag of ``pool``; raises on a name that is not a safe file name."""
    if not isinstance(pool, str) or not _POOL_RE.match(pool):
        raise CommandExecutionError(
            f"Invalid pool name {pool!r}: use letters, digits, '.', '_' and '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return os.path.join(_drain_dir(), pool + FLAG_SUFFIX)


def _reason_line(reason: Any) -> str:
    """The reason as one line of text (it is stored as the flag's first line)."""
    if reason is None:
        reason = DEFAULT_REASON
    reason = str(reason).strip()
    if not reason:
        raise CommandExecutionError("reason must not be empty")
    if "\n" in reason or "\r" in reason:
        raise CommandExecutionError("reason must be a single line of text")
    return reason


def _read_reason(flag: str) -> str | None:
    """First line of an existing flag, or None if unreadable (status must not fail on it)."""
    try:
        content = __salt__["file.read"](flag)
    except (CommandExecutionError, OSError) as exc:
        log.warning("Cannot read drain flag %s: %s", flag, exc)
        return None
    first = str(content).splitlines()[0].strip() if content else ""
    return first or None


@_answer_is_the_return
def status(pool: str) -> dict[str, Any]:
    """
    Report whether this node is in the load-balancer pool ``pool``.

    pool
        Name of the pool (a safe file name: letters, digits, ``.``, ``_``, ``-``).

    Returns ``{"pool": str, "in_pool": bool, "flag": str, "reason": str|None}``
    where ``flag`` is the drain flag's path and ``reason`` the first line of
    the flag when the node is out of the pool.

    CLI Example:

    .. code-block:: bash

        salt '*' ops_lb.status web
    """
    flag = _flag_path(pool)
    out = bool(__salt__["file.file_exists"](flag))
    return {
        "pool": pool,
        "in_pool": not out,
        "flag": flag,
        "reason": _read_reason(flag) if out else None,
    }


@_answer_is_the_return
def pull_out(pool: str, reason: str = DEFAULT_REASON, test: bool = False) -> dict[str, Any]:
    """
    Take this node out of the load-balancer pool ``pool`` by writing its drain flag.

    Idempotent: when the node is already out, nothing changes (the existing
    flag and its reason are kept, so the first reason stays visible).

    pool
        Name of the pool.

    reason : saltpipe
        One line stored in the flag, shown by :py:func:`status`.

    test : False
        Only report what would change. The minion's ``test: True`` also
        makes this a dry run.

    Returns ``{"result": bool|None, "changes": dict, "comment": str}``;
    ``changes`` is ``{"pool": {"old": "in", "new": "out"}, "flag": <path>,
    "reason": <reason>}`` when the node was (or would be) pulled out.

    CLI Example:

    .. code-block:: bash

        salt '*' ops_lb.pull_out web
        salt '*' ops_lb.pull_out web reason="patch 2024-06" test=True
    """
    reason = _reason_line(reason)
    current = status(pool)
    flag = current["flag"]
    if not current["in_pool"]:
        return __utils__["ops_common.outcome"](
            True, {}, f"Node is already out of pool {pool} (flag {flag}, reason: {current['reason'] or 'unknown'})"
        )
    changes = {"pool": {"old": "in", "new": "out"}, "flag": flag, "reason": reason}
    if __utils__["ops_common.test_mode"](test, __opts__):
        return __utils__["ops_common.outcome"](None, changes, f"Node would be pulled out of pool {pool} (flag {flag})")
    try:
        __salt__["file.mkdir"](os.path.dirname(flag))
        __salt__["file.write"](flag, reason)
    except (CommandExecutionError, OSError) as exc:
        log.error("Failed to write drain flag %s: %s", flag, exc)
        return __utils__["ops_common.outcome"](
            False, {}, f"Failed to pull node out of pool {pool}: cannot write {flag}: {exc}"
        )
    log.info("Pulled node out of pool %s (%s)", pool, reason)
    return __utils__["ops_common.outcome"](True, changes, f"Node pulled out of pool {pool} (flag {flag})")


@_answer_is_the_return
def pull_in(pool: str, test: bool = False) -> dict[str, Any]:
    """
    Put this node back into the load-balancer pool ``pool`` by removing its drain flag.

    Idempotent: when the node is already in the pool, nothing changes.

    pool
        Name of the pool.

    test : False
        Only report what would change. The minion's ``test: True`` also
        makes this a dry run.

    Returns ``{"result": bool|None, "changes": dict, "comment": str}``;
    ``changes`` is ``{"pool": {"old": "out", "new": "in"}, "flag": <path>}``
    when the node was (or would be) pulled in.

    CLI Example:

    .. code-block:: bash

        salt '*' ops_lb.pull_in web
        salt '*' ops_lb.pull_in web test=True
    """
    current = status(pool)
    flag = current["flag"]
    if current["in_pool"]:
        return __utils__["ops_common.outcome"](True, {}, f"Node is already in pool {pool}")
    changes = {"pool": {"old": "out", "new": "in"}, "flag": flag}
    if __utils__["ops_common.test_mode"](test, __opts__):
        return __utils__["ops_common.outcome"](
            None, changes, f"Node would be pulled back into pool {pool} (removing {flag})"
        )
    try:
        __salt__["file.remove"](flag)
    except (CommandExecutionError, OSError) as exc:
        log.error("Failed to remove drain flag %s: %s", flag, exc)
        return __utils__["ops_common.outcome"](
            False, {}, f"Failed to pull node into pool {pool}: cannot remove {flag}: {exc}"
        )
    log.info("Pulled node back into pool %s", pool)
    return __utils__["ops_common.outcome"](True, changes, f"Node pulled back into pool {pool}")
