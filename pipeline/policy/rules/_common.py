"""Helpers shared by several rules (not a rule module: the leading underscore keeps it out of discovery)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pipeline.policy.functions import DISPATCHERS, FunctionPolicy
from pipeline.policy.inventory import Kind
from pipeline.policy.model import Hit, StateDecl


def state_hit(decl: StateDecl, message: str) -> Hit:
    """The finding about a state function itself: at its state ID, keyed by ``module.function``."""
    return Hit(line=decl.line, message=message, state_id=decl.state_id, key=decl.fun)


def short(value: Any, limit: int = 60) -> str:
    """``value`` as a one-line string of at most ``limit`` characters, for messages."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def nested_function(function: str, positional: Sequence[Any], keywords: Mapping[str, Any]) -> tuple[bool, Any]:
    """For a dispatcher ``function`` called with these arguments: ``(is_dispatcher, the function it runs)``."""
    spec = DISPATCHERS.get(function)
    if spec is None:
        return False, None
    keyword, position = spec
    if keyword in keywords:
        return True, keywords[keyword]
    if position < len(positional):
        return True, positional[position]
    return True, None


def split_args(value: Any) -> tuple[list[Any], dict[str, Any]]:
    """A Salt argument list (``[pos, {kw: v}, ...]``, or a mapping) as positional and keyword arguments."""
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    if isinstance(value, Mapping):
        keywords.update(value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and len(item) == 1:
                keywords.update(item)
            else:
                positional.append(item)
    elif value is not None:
        positional.append(value)
    return positional, keywords


def forbidden_calls(
    function: Any,
    positional: Sequence[Any],
    keywords: Mapping[str, Any],
    functions: FunctionPolicy,
    kind: Kind = "execution",
) -> Iterator[tuple[str, str]]:
    """``(call, why)`` for each forbidden function that calling ``function`` (of ``kind``) with these
    arguments would run: the function itself, or what a dispatcher (``saltutil.cmd``, runner ``salt.cmd``...)
    runs for it (an execution function)."""
    if not isinstance(function, str):
        return
    why = functions.why(function, kind)
    if why:
        yield function, why
        return
    is_dispatcher, inner = nested_function(function, positional, keywords)
    if is_dispatcher and isinstance(inner, str):
        why = functions.why(inner)
        if why:
            yield f"{inner} (through {function})", why
