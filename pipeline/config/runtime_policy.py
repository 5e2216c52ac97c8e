"""The runtime policy's model: what every master refuses to publish (``salt/daemons/runtime-policy.yaml``).

The local topology renders it into each master's ``publisher_acl_blacklist``; :mod:`pipeline.runtime_policy`
checks running masters against it (``policy verify-runtime``). Rationale and format: docs/runtime-policy.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.saltlib import import_salt
from pipeline.yamlmodel import fail_at, validate_sourced
from pipeline.yamlsrc import load_yaml

#: Default location of the policy, relative to the repository.
DEFAULT_POLICY = Path("salt/daemons/runtime-policy.yaml")

_HINT = "fix salt/daemons/runtime-policy.yaml (rationale and format: docs/runtime-policy.md)"


def salt_pattern_match(function: str, pattern: str) -> bool:
    """Whether Salt's blacklist matching (a glob, else a full-match regular expression) matches ``function``."""
    stringutils = import_salt("salt.utils.stringutils")
    return bool(stringutils.expr_match(function, pattern))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlacklistEntry(_Model):
    """One refused pattern, a concrete function it must refuse (``probe``) and why it is refused."""

    function: str = Field(min_length=1)
    probe: str = Field(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
    why: str = Field(min_length=1)


class RuntimePolicy(_Model):
    """The whole of ``salt/daemons/runtime-policy.yaml``."""

    version: Literal[1] = 1
    blacklist: tuple[BlacklistEntry, ...] = Field(min_length=1)
    allowed: tuple[str, ...] = ()
    settings: dict[str, Any] = Field(default_factory=dict)
    source: Path | None = Field(default=None, exclude=True)

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(e.function for e in self.blacklist)

    def refuses(self, function: str) -> bool:
        """Whether a master enforcing this policy refuses to publish ``function``."""
        return any(salt_pattern_match(function, p) for p in self.patterns)

    def publisher_acl_blacklist(self) -> dict[str, list[str]]:
        """The value of ``publisher_acl_blacklist`` in every master's config."""
        return {"users": [], "modules": list(self.patterns)}


def load_runtime_policy(path: Path) -> RuntimePolicy:
    """Load and check ``path``: each probe is refused by its own pattern, no allowed function is refused."""
    src = load_yaml(path)
    policy = validate_sourced(RuntimePolicy, src, hint=_HINT)
    for i, entry in enumerate(policy.blacklist):
        if not salt_pattern_match(entry.probe, entry.function):
            raise fail_at(
                src,
                ("blacklist", i, "probe"),
                f"probe {entry.probe!r} is not matched by its pattern {entry.function!r}",
                hint="give a function the pattern refuses",
            )
    for i, function in enumerate(policy.allowed):
        hits = [p for p in policy.patterns if salt_pattern_match(function, p)]
        if hits:
            raise fail_at(
                src,
                ("allowed", i),
                f"{function!r} must stay publishable but the blacklist refuses it ({', '.join(hits)})",
                hint="narrow the blacklist pattern, or remove the function from 'allowed'",
            )
    return policy.model_copy(update={"source": src.path})
