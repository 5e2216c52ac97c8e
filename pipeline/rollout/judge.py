"""Judging one minion's return, and a batch's gate. Pure functions over data: the rule table of docs/rollout.md.

A return is judged on what the minion sent, never on an exit code of the ``salt`` CLI (which is 0 when states
fail and when minions never return). A minion **failed** a step when any of these holds:

=====================================  ===============================================================
``retcode`` is set and not 0           Salt's own verdict (2 = a state failed, 1 = an exception/compile error)
``success`` is ``False``               the job could not run (unknown function, exception)
the return is a list of strings        render / compile errors (``state.apply`` returns them as a list)
the return is a string                 an error message instead of data ("'state.apply' is not available.")
``result: False`` anywhere             a failed state, at any depth of a state's ``changes`` (module.run,
                                       orchestration) and of any other function's return
a state entry is not a mapping         a malformed highstate return
the return is ``False``                a function that answers False did not do its job (any function)
(health) the return is falsy           ``ops_app.health`` and friends answer ``False`` when unhealthy
=====================================  ===============================================================

Everything else succeeded. ``result: None`` (test mode) is not a failure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from pipeline.config import Gates
from pipeline.rollout.model import GateDecision
from pipeline.salt_client.base import MinionReturn

#: Reasons are clipped so one minion's traceback cannot blow up the journal.
MAX_REASON = 400
MAX_REASONS = 10
#: What a failed return keeps for the report's per-host output (only failed returns keep any).
MAX_OUTPUT = 4000


class Verdict(NamedTuple):
    """The judgement of one return (a NamedTuple: built 200,000 times for 100,000 minions)."""

    ok: bool
    reasons: tuple[str, ...] = ()
    duration_ms: float | None = None
    changes: int = 0
    #: ``state.apply``: the paths of the ``file.*`` states in the return that made changes (see :attr:`files`).
    files_changed: tuple[str, ...] = ()
    #: Each failed state of a highstate return: ``{state, id, name, comment, changes}`` (at most MAX_REASONS).
    states: tuple[dict[str, Any], ...] = ()
    #: A failed return as the minion sent it (a highstate: its failed states only), JSON, clipped to MAX_OUTPUT.
    output: str | None = None
    #: ``state.apply``: the highstate return as judged, kept (a reference, not a copy) for :attr:`files`.
    highstate: dict[str, Any] | None = None

    @property
    def files(self) -> tuple[str, ...]:
        """``state.apply``: the paths of the ``file.*`` states in the return (:attr:`files_changed`: those with
        changes) - what the rollback report compares to name the files a release added and its rollback left
        behind. Computed on access: only a rollback's apply needs it, and most of 100,000 verdicts never do."""
        return _file_paths(self.highstate)[0] if self.highstate else ()


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _find_false_results(value: Any, path: str, out: list[str], depth: int = 0) -> None:
    """Collect ``result: False`` at any depth (bounded, returns can be deep).

    Salt returns are plain dicts and lists (msgpack/JSON), so exact type checks are used: ABC isinstance checks
    cost more than the rest of the judging at 100,000 minions.
    """
    if depth > 12 or len(out) >= MAX_REASONS:
        return
    if type(value) is dict:  # pylint: disable=unidiomatic-typecheck
        if value.get("result") is False:
            comment = value.get("comment")
            out.append(_clip(f"{path or 'return'}: result False" + (f": {comment}" if comment else "")))
        for key, sub in value.items():
            if sub and type(sub) in _CONTAINERS:
                _find_false_results(sub, f"{path}.{key}" if path else str(key), out, depth + 1)
    elif type(value) is list:  # pylint: disable=unidiomatic-typecheck
        for i, sub in enumerate(value):
            if sub and type(sub) in _CONTAINERS:
                _find_false_results(sub, f"{path}[{i}]", out, depth + 1)


_CONTAINERS = (dict, list)
_PLAIN_TYPES = frozenset({dict, list, str, bool, int, float, type(None)})


def _plain(value: Any) -> Any:
    """``value`` with any Mapping/Sequence subclass turned into plain dicts/lists (rare: Salt sends plain ones)."""
    if isinstance(value, Mapping) and type(value) is not dict:  # pylint: disable=unidiomatic-typecheck
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _state_id(key: str) -> str:
    # "file_|-ops_node_|-/srv/x_|-managed" -> "file.managed ops_node"
    parts = str(key).split("_|-")
    if len(parts) == 4:
        return f"{parts[0]}.{parts[3]} {parts[1]}"
    return str(key)


#: File states that leave something on the minion (``file.absent`` removes; it never leaves anything behind).
_FILE_STATE = "file_|-"
MAX_FILES = 100


def _failed_state(key: str, state: dict[str, Any]) -> dict[str, Any]:
    """A failed state as the report shows it: ``file.managed``, its id and name, Salt's comment, its changes."""
    parts = str(key).split("_|-")
    fun = f"{parts[0]}.{parts[3]}" if len(parts) == 4 else str(key)
    changes = state.get("changes") or {}
    text = json.dumps(changes, sort_keys=True, default=str) if changes else ""
    return {
        "state": fun,
        "id": state.get("__id__") or (parts[1] if len(parts) == 4 else str(key)),
        "name": state.get("name") or (parts[2] if len(parts) == 4 else None),
        "comment": _clip(str(state.get("comment", ""))),
        "changes": text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "...",
    }


def _output(value: Any) -> str:
    text = json.dumps(value, indent=1, sort_keys=True, default=str)
    return text if len(text) <= MAX_OUTPUT else text[: MAX_OUTPUT - 20] + "\n... (clipped)"


def _file_paths(value: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The paths of the first MAX_FILES ``file.*`` states of a highstate return (``file.absent`` excluded), and
    those of them whose state made changes."""
    files: list[str] = []
    changed: list[str] = []
    for key, state in value.items():
        if len(files) >= MAX_FILES:
            break
        if type(state) is not dict:  # pylint: disable=unidiomatic-typecheck
            continue  # a malformed state (judged failed) names no file
        path = _file_path(key)
        if path is not None:
            files.append(path)
            if state.get("changes"):
                changed.append(path)
    return tuple(files), tuple(changed)


def _file_path(key: Any) -> str | None:
    """The path a ``file.*`` state key names (``file.absent`` and keys of another shape: None)."""
    if type(key) is str and key.startswith(_FILE_STATE) and not key.endswith("_|-absent"):  # pylint: disable=unidiomatic-typecheck
        # "file_|-<id>_|-<name>_|-<function>": the name is the path the state manages.
        parts = key.split("_|-")
        if len(parts) == 4:
            return parts[2]
    return None


def _judge_highstate(
    value: dict[str, Any],
    reasons: list[str],
    failed: list[tuple[str, dict[str, Any]]],
) -> tuple[float, int, tuple[str, ...]]:
    """Duration, states with changes and :attr:`Verdict.files_changed` of a highstate return; reasons and failed
    states are appended. The paths of file states are looked at only for states with changes (most re-applied
    states have none): :attr:`Verdict.files` is computed from the return when asked for."""
    duration = 0.0
    changes = 0
    files_changed: list[str] = []
    for key, state in value.items():
        if type(state) is not dict:  # pylint: disable=unidiomatic-typecheck
            reasons.append(_clip(f"{_state_id(key)}: malformed state return {state!r}"))
            continue
        if state.get("result") is False:
            reasons.append(_clip(f"{_state_id(key)} failed: {state.get('comment', '')}"))
            if len(failed) < MAX_REASONS:
                failed.append((key, state))
        changed = state.get("changes")
        if changed:
            changes += 1
            path = _file_path(key)
            if path is not None:
                files_changed.append(path)
            if type(changed) in _CONTAINERS:
                # Nested returns (module.run's ``ret``, an orchestration's per-minion states) live in ``changes``
                # and can hide a failure below the state's own result.
                _find_false_results(changed, f"{_state_id(key)}.changes", reasons)
        spent = state.get("duration")
        if type(spent) is float or type(spent) is int:  # pylint: disable=unidiomatic-typecheck
            duration += spent
    if files_changed and len(value) > MAX_FILES:
        # Only the first MAX_FILES file states count (as for ``files``): past that many states, count exactly.
        return duration, changes, _file_paths(value)[1]
    return duration, changes, tuple(files_changed)


def judge_return(fun: str, ret: MinionReturn, *, health: bool = False) -> Verdict:
    """The verdict on one minion's return of ``fun`` (see the module table)."""
    reasons: list[str] = []
    value = ret.ret
    if type(value) not in _PLAIN_TYPES:  # the rare non-plain container: normalise once
        value = _plain(value)
    if ret.retcode not in (None, 0):
        reasons.append(f"retcode {ret.retcode}")
    if ret.success is False:
        reasons.append("success False")
    duration = None
    changes = 0
    files_changed: tuple[str, ...] = ()
    highstate = None
    failed: list[tuple[str, dict[str, Any]]] = []
    kind = type(value)
    if kind is list:
        if value and all(type(v) is str for v in value):  # pylint: disable=unidiomatic-typecheck
            reasons.extend(_clip(f"render error: {v}") for v in value[:MAX_REASONS])
        else:
            _find_false_results(value, "", reasons)
            if health and not value:
                reasons.append("health check returned an empty list")
    elif kind is str:
        if not (health and value.strip().lower() in ("true", "ok", "healthy")):
            reasons.append(_clip(f"error: {value}"))
    elif kind is dict:
        if fun == "state.apply":
            duration, changes, files_changed = _judge_highstate(value, reasons, failed)
            highstate = value
        elif fun == "saltutil.sync_all":
            # {"modules": ["modules.ops_app"], "states": [], ...}: lists of synced module names cannot carry a
            # result; sync failures arrive as a string, a retcode or success False (checked above).
            for synced in value.values():
                if type(synced) is not list:  # pylint: disable=unidiomatic-typecheck
                    _find_false_results(value, "", reasons)
                    break
        else:
            _find_false_results(value, "", reasons)
        if health and not value:
            reasons.append("health check returned nothing")
    elif health and not value:
        reasons.append(f"health check returned {value!r}")
    elif value is False:
        reasons.append("returned False")
    elif value is None and not health:
        reasons.append("empty return")
    if not reasons:
        return Verdict(True, (), duration, changes, files_changed, (), None, highstate)
    # Only a failed return keeps details (100,000 good ones must stay cheap): the report shows them per host.
    return Verdict(
        ok=False,
        reasons=tuple(reasons[:MAX_REASONS]),
        duration_ms=duration,
        changes=changes,
        files_changed=files_changed,
        states=tuple(_failed_state(k, s) for k, s in failed),
        output=_output({k: s for k, s in failed} if failed else value),
        highstate=highstate,
    )


def decide_gate(batch: int, size: int, failed: int, missing: int, gates: Gates, health_failed: int = 0) -> GateDecision:
    """The gate of a batch of ``size`` minions with ``failed`` (health failures included) and ``missing`` ones."""
    return GateDecision(
        batch=batch,
        size=size,
        failed=failed,
        missing=missing,
        max_failure_ratio=gates.max_failure_ratio,
        max_missing_ratio=gates.max_missing_ratio,
        health_failed=health_failed,
    )
