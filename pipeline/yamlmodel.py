"""Validate YAML loaded with line numbers (pipeline.yamlsrc) against a pydantic model; errors name file, line, key.

Shared by the topology spec (``salt/daemons/local-topology.yaml``) and the runtime policy
(``salt/daemons/runtime-policy.yaml``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigError
from pipeline.yamlsrc import SourcedYaml

M = TypeVar("M", bound=BaseModel)


def format_loc(loc: tuple[Any, ...]) -> str:
    """``("syndics", "a", "minions", 0)`` -> ``syndics.a.minions[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _yaml_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    # pydantic adds validator/union tags to locations; keep only what names a place in the YAML.
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith(("function-", "tagged-union"))))


def validate_sourced(model: type[M], src: SourcedYaml, *, hint: str) -> M:
    """``model.model_validate(src.data)``, or a :class:`ConfigError` listing every problem with its line."""
    if not isinstance(src.data, dict):
        raise ConfigError("expected a mapping at the top of the file", path=src.path, line=1, hint=hint)
    try:
        return model.model_validate(src.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _yaml_loc(err["loc"])
            msg = "required key is missing" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
            problems.append((src.line_of(loc), format_loc(loc) or "(top level)", msg))
        line, key, msg = problems[0]
        if len(problems) == 1:
            raise ConfigError(msg, path=src.path, line=line, key=key, hint=hint) from None
        listing = "\n  ".join(f"{src.path}:{ln or '?'}: {k}: {m}" for ln, k, m in problems)
        raise ConfigError(f"{len(problems)} problems:\n  {listing}", path=src.path, line=line, hint=hint) from None


def fail_at(src: SourcedYaml, loc: tuple[str | int, ...], message: str, *, hint: str) -> ConfigError:
    """A :class:`ConfigError` for a problem found after validation, located at ``loc`` in ``src``."""
    return ConfigError(message, path=src.path, line=src.line_of(loc), key=format_loc(loc) or None, hint=hint)
