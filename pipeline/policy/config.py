"""The typed model of ``salt/policy.yaml``: allowed renderers, forbidden functions, severities, waivers.

Validated once at load. Errors name the file, the line and the key, like ``salt/pipeline.yaml``'s, and a rule
id that does not exist (a typo in ``severities`` or a waiver) is an error, not a silently ignored entry.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.errors import ConfigError
from pipeline.findings import Severity
from pipeline.policy.functions import DEFAULT_FORBIDDEN
from pipeline.yamlsrc import SourcedYaml, load_yaml

DEFAULT_POLICY = Path("salt/policy.yaml")

#: Functions lint may really execute while rendering (read-only, host-independent given the fixture grains
#: and pillar). Any other ``salt[...]`` call during a lint render returns an empty placeholder instead.
DEFAULT_RENDER_FUNCTIONS: tuple[str, ...] = (
    "pillar.get",
    "pillar.item",
    "pillar.items",
    "pillar.fetch",
    "pillar.keys",
    "grains.get",
    "grains.item",
    "grains.items",
    "grains.filter_by",
    "config.get",
    "config.option",
    "match.filter_by",
    "defaults.*",
    "slsutil.merge",
    "slsutil.merge_all",
    "slsutil.update",
    "slsutil.boolstr",
    "slsutil.serialize",
    "slsutil.deserialize",
    "slsutil.banner",
    "file.basename",
    "file.dirname",
    "file.join",
    "hashutil.*",
    "test.ping",
    "test.true",
    "test.false",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Waiver(_Model):
    """An accepted exception: ``rule`` findings in ``path`` (a glob; optionally only ``state_id``) are waived
    until ``expires``, for the ``justification`` given, with ``owner`` accountable for it."""

    rule: str = Field(min_length=1)
    path: str = Field(min_length=1)
    state_id: str | None = None
    justification: str = Field(min_length=10)
    owner: str = Field(min_length=1)
    expires: dt.date
    line: int | None = Field(default=None, exclude=True)

    def covers(self, rule: str, path: str, state_id: str | None) -> bool:
        """True when this waiver applies to a finding of ``rule`` at ``path`` (about ``state_id``)."""
        if rule != self.rule:
            return False
        if path != self.path and not fnmatch.fnmatchcase(path, self.path):
            return False
        return self.state_id is None or self.state_id == state_id

    def expired(self, today: dt.date) -> bool:
        """A waiver is valid through its expiry date and expired the day after."""
        return today > self.expires


class PolicyConfig(_Model):
    """The whole of ``salt/policy.yaml``."""

    version: Literal[1] = 1
    renderers: tuple[str, ...] = ("jinja", "yaml")
    templates: tuple[str, ...] = ("jinja",)
    forbidden_functions: tuple[str, ...] = DEFAULT_FORBIDDEN
    render_functions: tuple[str, ...] = DEFAULT_RENDER_FUNCTIONS
    severities: dict[str, Severity] = Field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("renderers", "templates")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or not name.replace("_", "").isalnum():
                raise ValueError(f"{name!r} is not a renderer name like 'jinja' or 'yaml'")
        return value


def validate_policy(src: SourcedYaml, known_rules: Collection[str] | None = None) -> PolicyConfig:
    """Validate loaded YAML; with ``known_rules``, every rule id in ``severities`` and ``waivers`` must be one
    of them (``pylint-*`` ids are always accepted). Raises :class:`ConfigError` with file, line and key."""
    data = src.data if src.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping (renderers, forbidden_functions, severities, waivers)", path=src.path, line=1)
    try:
        policy = PolicyConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = "required key is missing" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigError(
            msg + more, path=src.path, line=src.line_of(loc), key=key, hint="see docs/policy.md for the format"
        ) from None
    waivers = tuple(w.model_copy(update={"line": src.line_of(("waivers", i))}) for i, w in enumerate(policy.waivers))
    if known_rules is not None:
        known = set(known_rules)

        def check(rule: str, loc: tuple[str | int, ...]) -> None:
            if rule not in known and not rule.startswith("pylint-"):
                close = [k for k in sorted(known) if k.split("-")[0] == rule.split("-")[0]][:5]
                raise ConfigError(
                    f"unknown rule id {rule!r}",
                    path=src.path,
                    line=src.line_of(loc),
                    key=".".join(str(p) for p in loc),
                    hint="rule ids are listed in docs/policy.md" + (f"; did you mean one of: {', '.join(close)}" if close else ""),
                )

        for rule in policy.severities:
            check(rule, ("severities", rule))
        for i, waiver in enumerate(waivers):
            check(waiver.rule, ("waivers", i, "rule"))
    return policy.model_copy(update={"waivers": waivers, "source": src.path})


def load_policy(path: Path | None, known_rules: Collection[str] | None = None) -> PolicyConfig:
    """Load ``path`` (normally ``salt/policy.yaml``); the built-in defaults when ``path`` is None."""
    if path is None:
        return PolicyConfig()
    return validate_policy(load_yaml(path), known_rules)
