"""The shape of the local topology: which syndics, which minions under each, with which grains.

Read from ``salt/daemons/local-topology.yaml`` and cross-checked against ``salt/pipeline.yaml``: every syndic of
every environment is in the topology and nothing else is, each minion's ``saltpipe_env`` grain is the
environment that lists its syndic, and explicit canary ids name minions of their environment. So
``saltpipe --config <workdir>/pipeline.yaml ...`` resolves each environment onto exactly its syndics' minions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline.config import PipelineConfig
from pipeline.yamlmodel import fail_at, validate_sourced
from pipeline.yamlsrc import load_yaml

#: Default location of the spec, relative to the repository.
DEFAULT_SPEC = Path("salt/daemons/local-topology.yaml")

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HINT = "fix it in salt/daemons/local-topology.yaml (reference: docs/topology.md)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str) -> str:
    # Lowercase, digits and '-': the id becomes a directory name and a Salt minion id on loopback.
    if not _ID_RE.match(value):
        raise ValueError(f"{value!r} is not a valid id here (lowercase letters, digits and '-')")
    return value


class _MinionEntry(_Model):
    roles: tuple[str, ...] = Field(min_length=1)


class _SyndicEntry(_Model):
    datacenter: str = Field(min_length=1)
    minions: dict[str, _MinionEntry] = Field(min_length=1)


class _SpecFile(_Model):
    version: Literal[1] = 1
    mom: str
    syndics: dict[str, _SyndicEntry] = Field(min_length=1)

    @field_validator("mom")
    @classmethod
    def _mom_id(cls, value: str) -> str:
        return _check_id(value)


class MinionSpec(_Model):
    """One minion: its id, the syndic it reports to, and its grains."""

    id: str
    syndic: str
    env: str
    roles: tuple[str, ...]
    datacenter: str

    @property
    def grains(self) -> dict[str, object]:
        """The grains saltpipe sets on this minion (``saltpipe_env``, ``roles``, ``datacenter``)."""
        return {"saltpipe_env": self.env, "roles": list(self.roles), "datacenter": self.datacenter}


class SyndicSpec(_Model):
    """One syndic node (a salt-master plus a salt-syndic), the environment it belongs to, its minions."""

    id: str
    env: str
    datacenter: str
    minions: tuple[MinionSpec, ...]


class TopologySpec(_Model):
    """The whole local topology: a MoM id and its syndics, in the order of ``salt/pipeline.yaml``."""

    mom: str
    syndics: tuple[SyndicSpec, ...]

    @property
    def minions(self) -> tuple[MinionSpec, ...]:
        return tuple(m for s in self.syndics for m in s.minions)

    def syndic(self, syndic_id: str) -> SyndicSpec:
        for syndic in self.syndics:
            if syndic.id == syndic_id:
                return syndic
        raise KeyError(syndic_id)

    def env_minions(self, env: str) -> tuple[str, ...]:
        """Ids of the minions whose ``saltpipe_env`` grain is ``env``."""
        return tuple(m.id for m in self.minions if m.env == env)


def load_spec(path: Path, config: PipelineConfig) -> TopologySpec:
    """Load ``path`` and check it against ``config``; a :class:`~pipeline.errors.ConfigError` naming the file,
    line and key when it does not fit."""
    src = load_yaml(path)
    raw = validate_sourced(_SpecFile, src, hint=_HINT)

    # Ids are mapping keys: check them here so the error points at the key's own line.
    for syndic_id, entry in raw.syndics.items():
        for loc in [("syndics", syndic_id)] + [("syndics", syndic_id, "minions", m) for m in entry.minions]:
            if not _ID_RE.match(str(loc[-1])):
                raise fail_at(src, loc, f"{loc[-1]!r} is not a valid id here (lowercase letters, digits and '-')", hint=_HINT)

    owner: dict[str, str] = {s.name: env.name for env in config.environments.values() for s in env.syndics}
    for syndic_id in raw.syndics:
        if syndic_id not in owner:
            raise fail_at(
                src,
                ("syndics", syndic_id),
                f"{syndic_id!r} is not a syndic of any environment in {config.source or 'salt/pipeline.yaml'} "
                f"(syndics there: {', '.join(owner)})",
                hint="remove it here, or add it to an environment's syndics",
            )
    missing = [name for name in owner if name not in raw.syndics]
    if missing:
        raise fail_at(
            src,
            ("syndics",),
            f"syndic(s) of {config.source or 'salt/pipeline.yaml'} missing here: {', '.join(missing)}",
            hint="give each syndic a datacenter and at least one minion",
        )

    seen: dict[str, tuple[str | int, ...]] = {raw.mom: ("mom",)}
    for syndic_id, entry in raw.syndics.items():
        if syndic_id in seen:
            raise fail_at(src, ("syndics", syndic_id), f"id {syndic_id!r} is used twice", hint=_HINT)
        seen[syndic_id] = ("syndics", syndic_id)
        for minion_id in entry.minions:
            loc = ("syndics", syndic_id, "minions", minion_id)
            if minion_id in seen:
                raise fail_at(src, loc, f"id {minion_id!r} is used twice (also at {seen[minion_id]})", hint=_HINT)
            seen[minion_id] = loc

    # Keep the environments' order from pipeline.yaml: it is the order people read.
    syndics = []
    for env in config.environments.values():
        for syndic in env.syndics:
            entry = raw.syndics[syndic.name]
            minions = tuple(
                MinionSpec(id=mid, syndic=syndic.name, env=env.name, roles=m.roles, datacenter=entry.datacenter)
                for mid, m in entry.minions.items()
            )
            syndics.append(SyndicSpec(id=syndic.name, env=env.name, datacenter=entry.datacenter, minions=minions))
    spec = TopologySpec(mom=raw.mom, syndics=tuple(syndics))

    for env in config.environments.values():
        ids = set(spec.env_minions(env.name))
        for canary in env.canary.ids:
            if canary not in ids:
                raise fail_at(
                    src,
                    ("syndics",),
                    f"environment {env.name!r} names canary {canary!r}, which is not a minion of its syndics here "
                    f"({', '.join(sorted(ids))})",
                    hint="add that minion under one of the environment's syndics, or change the canary",
                )
    return spec
