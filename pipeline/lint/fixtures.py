"""The grains and pillar that lint renders SLS against, per environment and fixture minion.

``salt/fixtures/<env>/grains.yaml`` (``salt/fixtures/lint/`` for a lint-only config) is either ``{minions: {<id>: {<grain>: value}}}`` (render once per minion)
or a plain grains mapping (one minion); ``pillar.yaml`` is the environment's pillar data. The paths come from
:meth:`pipeline.config.PipelineConfig.fixtures_for`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError
from pipeline.yamlsrc import load_yaml


#: The environment label of the fixture minions of a lint-only config (no environments yet).
LINT_ENV = "lint"


@dataclass(frozen=True)
class MinionFixture:
    """One minion to render as: its environment, id, grains and pillar."""

    env: str
    minion_id: str
    grains: dict[str, Any] = field(default_factory=dict, compare=False)
    pillar: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.env}/{self.minion_id}"


def _mapping(path: Path, key: str) -> dict[str, Any]:
    if not path.is_file():
        # load_yaml's own hint is about --config; a fixture file is named by the config's fixtures key.
        raise ConfigError(
            "fixture file not found",
            path=path,
            hint=f"create it (`saltpipe init` writes lint fixtures, `saltpipe fixtures import` real ones), or set "
            f"{key} in the pipeline config to the right file",
        )
    src = load_yaml(path)
    if src.data is None:
        return {}
    if not isinstance(src.data, dict):
        raise ConfigError("expected a mapping", path=path, line=1, hint="see docs/lint.md for the fixture format")
    return src.data


def load_minions(env: str, grains_path: Path, pillar_path: Path, key: str | None = None) -> list[MinionFixture]:
    """The fixture minions of one environment (ConfigError naming the file when one is missing or bad).

    ``key`` is where the config names these files (``environments.<env>.fixtures``), for the hint."""
    key = key or f"environments.{env}.fixtures"
    grains = _mapping(grains_path, f"{key}.grains")
    pillar = _mapping(pillar_path, f"{key}.pillar")
    if set(grains) == {"minions"}:
        minions = grains["minions"]
        if not isinstance(minions, dict) or not minions:
            raise ConfigError(
                "'minions' must map minion ids to their grains", path=grains_path, key="minions",
                hint="see docs/lint.md for the fixture format",
            )
        out = []
        for minion_id, minion_grains in minions.items():
            if not isinstance(minion_grains, dict):
                raise ConfigError("expected the minion's grains as a mapping", path=grains_path, key=f"minions.{minion_id}")
            out.append(MinionFixture(env, str(minion_id), {"id": str(minion_id), **minion_grains}, pillar))
        return out
    minion_id = str(grains.get("id") or f"{env}-fixture")
    return [MinionFixture(env, minion_id, {"id": minion_id, **grains}, pillar)]


def environment_minions(cfg: PipelineConfig | None, repo: Path, environments: tuple[str, ...] = ()) -> list[MinionFixture]:
    """Fixture minions of ``environments`` (all, in promotion order, when empty). Without a pipeline config
    (``policy check`` outside a repository) one anonymous minion with empty grains and pillar."""
    if cfg is None:
        return [MinionFixture("none", "saltpipe-lint", {"id": "saltpipe-lint"}, {})]
    if not cfg.environments:
        fx = cfg.lint_fixtures(repo)
        return load_minions(LINT_ENV, fx.grains, fx.pillar, key="fixtures")
    names = list(environments) or cfg.promotion_order()
    out: list[MinionFixture] = []
    for name in names:
        fx = cfg.fixtures_for(name, repo)
        out += load_minions(name, fx.grains, fx.pillar)
    return out
