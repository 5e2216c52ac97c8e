"""Validate YAML loaded with line numbers (pipeline.yamlsrc) against a pydantic model; errors name file, line, key.

The one place that turns validation errors into messages (``file:line: key.path: message (hint)``): used by
``salt/pipeline.yaml`` (pipeline.config), the topology spec (``salt/daemons/local-topology.yaml``) and the
runtime policy (``salt/daemons/runtime-policy.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigError
from pipeline.yamlsrc import SourcedYaml

M = TypeVar("M", bound=BaseModel)


#: One problem of a file: its line (``None`` when unknown), the key path (``a.b[0]``) and the message.
Problem = tuple[int | None, str, str]


def format_loc(loc: tuple[Any, ...]) -> str:
    """``("syndics", "a", "minions", 0)`` -> ``syndics.a.minions[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _yaml_loc(loc: tuple[Any, ...], tags: frozenset[str]) -> tuple[str | int, ...]:
    # pydantic adds validator/union tags to locations ('function-after[...]', a tagged union's member name);
    # keep only what names a place in the YAML.
    return tuple(
        p for p in loc if not (isinstance(p, str) and (p.startswith(("function-", "tagged-union")) or p in tags))
    )


def validation_problems(
    exc: ValidationError,
    src: SourcedYaml,
    *,
    hints: Mapping[str, str] | None = None,
    union_tags: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every error of ``exc`` located in ``src``; ``hints`` (by pydantic error type) are appended to the message
    in parentheses; ``union_tags`` are the member names of the model's tagged unions (not YAML keys)."""
    errors = [(err, _yaml_loc(err["loc"], union_tags)) for err in exc.errors()]
    problems: list[Problem] = []
    for err, loc in errors:
        # A container error beside an error inside it (a tuple item failed, so the tuple is "too short")
        # only repeats it less precisely.
        if any(len(other) > len(loc) and other[: len(loc)] == loc for _, other in errors):
            continue
        msg = "required key is missing" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
        hint = (hints or {}).get(err["type"])
        problems.append((src.line_of(loc), format_loc(loc) or "(top level)", msg + (f" ({hint})" if hint else "")))
    return problems


def problems_error(src: SourcedYaml, problems: list[Problem], *, hint: str, hint_many: str | None = None) -> ConfigError:
    """One :class:`ConfigError` for ``problems`` (at least one), by line: the problem itself when there is one,
    else ``N problems:`` and a ``file:line: key.path: message`` line each (``hint_many`` then, if given)."""
    problems = sorted(problems, key=lambda p: p[0] or 0)
    line, key, msg = problems[0]
    if len(problems) == 1:
        return ConfigError(msg, path=src.path, line=line, key=key, hint=hint)
    listing = "\n  ".join(f"{src.path}:{ln or '?'}: {k}: {m}" for ln, k, m in problems)
    return ConfigError(f"{len(problems)} problems:\n  {listing}", path=src.path, line=line, hint=hint_many or hint)


def validate_sourced(model: type[M], src: SourcedYaml, *, hint: str) -> M:
    """``model.model_validate(src.data)``, or a :class:`ConfigError` listing every problem with its line."""
    if not isinstance(src.data, dict):
        raise ConfigError("expected a mapping at the top of the file", path=src.path, line=1, hint=hint)
    try:
        return model.model_validate(src.data)
    except ValidationError as exc:
        raise problems_error(src, validation_problems(exc, src), hint=hint) from None


def fail_at(src: SourcedYaml, loc: tuple[str | int, ...], message: str, *, hint: str) -> ConfigError:
    """A :class:`ConfigError` for a problem found after validation, located at ``loc`` in ``src``."""
    return ConfigError(message, path=src.path, line=src.line_of(loc), key=format_loc(loc) or None, hint=hint)
