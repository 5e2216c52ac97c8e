"""The typed model of ``salt/pipeline.yaml``, validated once at load.

Every later stage takes a :class:`PipelineConfig` and never looks at raw YAML again. Validation errors name the
file, the line, the key path and what to do (see :func:`load_config`).

Here: the whole file (:class:`PipelineConfig`), its repository layout, Salt access, release and review settings,
and loading. An environment's model is :mod:`pipeline.config.environment` (syndics, file_roots, approvers, job
cache), the rollout's shape :mod:`pipeline.config.schedule` (sizes, canary, gates), what they share
:mod:`pipeline.config.base`; every model is importable from ``pipeline.config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from pipeline.config.base import NAME_RE, Model, absolute_path, repo_relative
from pipeline.config.environment import (
    ACCESS_LEVELS,
    Approvers,
    Environment,
    FileRoots,
    Fixtures,
    JobCache,
    LocalFileRoots,
    SshFileRoots,
    Syndic,
)
from pipeline.config.notify import NotifySettings
from pipeline.config.schedule import Canary, Gates, HealthCheck, Size, schedule_problems
from pipeline.errors import ConfigError
from pipeline.yamlmodel import format_loc, problems_error, validation_problems
from pipeline.yamlsrc import SourcedYaml, load_yaml

DEFAULT_CONFIG = Path("salt/pipeline.yaml")
#: Where a lint-only config (no environments) finds its fixtures unless ``fixtures:`` says otherwise.
LINT_FIXTURES = Path("salt/fixtures/lint")


class Layout(Model):
    """Where the Salt tree lives in the repository: docs/configuration.md, "layout".

    ``states_root`` is the directory Salt serves as ``salt://`` (the root of the release tree); ``roots`` are
    more directories of the same saltenv after it, in Salt's file_roots order (their files are merged into the
    release; a path that two roots both hold is refused rather than shadowed). ``extensions`` names the
    ``_modules``/``_states``/``_utils``/``_grains``... directories released under their own name at the top of
    the tree; empty means every ``_*/`` at the top of the repository (those inside a root are part of it
    anyway). ``exclude`` keeps files under a root out of lint and releases: ``dir/`` a directory at that
    repository path, ``*.md`` a glob on the repository path or the file name. saltpipe's own files
    (``salt/pipeline.yaml``, ``salt/policy.yaml``, ``salt/fixtures/``) are always excluded. The defaults are
    the saltpipe repository's own layout: ``states/``, ``_modules/``, ``_states/`` at the top.
    """

    states_root: str = "states"
    roots: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @field_validator("states_root")
    @classmethod
    def _root(cls, value: str) -> str:
        return repo_relative(value, "the directory Salt serves as salt://, e.g. states, salt or .")

    @field_validator("roots")
    @classmethod
    def _roots(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(repo_relative(v, "a directory of the repository, e.g. formulas") for v in value)

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(repo_relative(v, "a directory like _modules or ext/_states") for v in value)
        for item in out:
            if not Path(item).name.startswith("_"):
                raise ValueError(f"{item!r}: an extension directory's name starts with '_' (_modules, _states, ...)")
        names = [Path(item).name for item in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two extension directories both land on {', '.join(dupes)}/ in the release")
        return out

    @model_validator(mode="after")
    def _distinct_roots(self) -> "Layout":
        all_roots = self.file_roots()
        if len(set(all_roots)) != len(all_roots):
            raise ValueError("a directory is listed twice between states_root and roots")
        for a in all_roots:
            for b in all_roots:
                if a != b and (a == "." or b.startswith(a + "/")):
                    raise ValueError(f"root {b!r} is inside root {a!r}; list only one of them")
        return self

    def file_roots(self) -> tuple[str, ...]:
        """Every root of saltenv ``base`` (repository-relative, POSIX), in Salt's order."""
        return (self.states_root, *self.roots)


class SaltApi(Model):
    """salt-api (rest_cherrypy) in front of the master-of-masters. The password is never in the file: it comes
    from the environment variable ``SALTPIPE_SALT_API_PASSWORD``."""

    url: str
    user: str = Field(min_length=1)
    eauth: str = Field(default="pam", min_length=1)
    ca_bundle: Path | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError(f"{value!r} must be an http:// or https:// URL of salt-api")
        return value.rstrip("/")

    @field_validator("ca_bundle")
    @classmethod
    def _absolute_ca(cls, value: Path | None) -> Path | None:
        return absolute_path(value, "a CA bundle file")


class SaltAccess(Model):
    """How saltpipe reaches the master-of-masters (MoM): exactly one of

    * ``master_config``: the MoM's master config file; saltpipe publishes with Salt's LocalClient, so it runs on
      the MoM host as a user allowed to publish;
    * ``api``: salt-api in front of the MoM (URL, eauth user and backend; password from the environment).

    Command-line flags (``--master-config``, ``--salt-api``) override this section.
    """

    master_config: Path | None = None
    api: SaltApi | None = None

    @field_validator("master_config")
    @classmethod
    def _absolute_config(cls, value: Path | None) -> Path | None:
        return absolute_path(value, "the MoM's master config file, e.g. /etc/salt/master")

    @model_validator(mode="after")
    def _one_of(self) -> "SaltAccess":
        if (self.master_config is None) == (self.api is None):
            raise ValueError(
                "give exactly one way to reach the master-of-masters: 'master_config' (its config file, for "
                "Salt's LocalClient on the MoM host) or 'api' (salt-api: url, user, eauth)"
            )
        return self


class ReleaseSettings(Model):
    """How releases are built and kept."""

    keep: int = Field(default=5, ge=1, description="releases kept on each syndic, the served one included")


class ReviewSettings(Model):
    """What the review gate asks of GitLab."""

    approvals_required: int = Field(default=1, ge=0)
    security_group: str | None = None
    security_paths: tuple[str, ...] = ("salt/policy.yaml", "_modules/", "_states/")


class PipelineConfig(Model):
    """The whole of ``salt/pipeline.yaml``."""

    version: Literal[1] = 1
    state_dir: Path = Path(".saltpipe")
    release: ReleaseSettings = ReleaseSettings()
    review: ReviewSettings = ReviewSettings()
    salt: SaltAccess | None = None
    notifications: NotifySettings = NotifySettings()
    layout: Layout = Layout()
    # Lint-only fixtures, used when no environment is defined yet (written by `saltpipe init`).
    fixtures: Fixtures | None = None
    environments: dict[str, Environment] = Field(default_factory=dict)
    # Where the file was loaded from; set by load_config, not by the file.
    source: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _name_environments(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("environments"), dict):
            envs = {}
            for name, env in value["environments"].items():
                if isinstance(env, dict):
                    env = {"name": name, **env}
                envs[name] = env
            value = {**value, "environments": envs}
        return value

    def cross_check(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems that span environments, each with the location it is about (for line numbers)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, env in self.environments.items():
            if not NAME_RE.match(name):
                problems.append(
                    (("environments", name), f"environment name {name!r} must be lowercase letters, digits, '-' or '_'")
                )
            for i, req in enumerate(env.requires):
                if req not in self.environments:
                    problems.append(
                        (
                            ("environments", name, "requires", i),
                            f"{req!r}, which is not defined; known: {', '.join(sorted(self.environments))}",
                        )
                    )
        if not problems:
            try:
                self.promotion_order()
            except ValueError as exc:
                first = next(iter(self.environments))
                problems.append((("environments", first, "requires"), str(exc)))
        for name, env in self.environments.items():
            problems += schedule_problems(name, env.batches)
        owners: dict[str, str] = {}
        for name, env in self.environments.items():
            for i, syndic in enumerate(env.syndics):
                if syndic.name in owners:
                    problems.append(
                        (
                            ("environments", name, "syndics", i, "name"),
                            f"syndic {syndic.name!r} is in both {owners[syndic.name]!r} and {name!r}; "
                            "a syndic master serves one environment",
                        )
                    )
                owners.setdefault(syndic.name, name)
        return problems

    def promotion_order(self) -> list[str]:
        """Environments in an order where each comes after everything it ``requires``."""
        order: list[str] = []
        visiting: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            if name in visiting:
                cycle = " -> ".join(visiting[visiting.index(name) :] + [name])
                raise ValueError(f"promotion order has a cycle: {cycle}")
            visiting.append(name)
            for req in self.environments[name].requires:
                visit(req)
            visiting.pop()
            order.append(name)

        for name in self.environments:
            visit(name)
        return order

    def environment(self, name: str) -> Environment:
        """The environment called ``name``; a :class:`~pipeline.errors.UsageError` if there is none."""
        from pipeline.errors import UsageError

        if not self.environments:
            raise UsageError(
                f"{self.source or DEFAULT_CONFIG} defines no environments yet (a lint-only config), so there is "
                f"no {name!r} to deploy to",
                hint="add an environment (syndics, target, canary, batches) under 'environments': docs/adopting.md, "
                "step 6, and docs/configuration.md",
            )
        try:
            return self.environments[name]
        except KeyError:
            raise UsageError(
                f"unknown environment {name!r}",
                hint=f"use one of: {', '.join(self.environments)} (defined in {self.source or DEFAULT_CONFIG})",
            ) from None

    def syndic_master_configs(self, name: str) -> dict[str, Path]:
        """Syndic name -> master config file, for the syndics of environment ``name`` that set one."""
        return {s.name: s.master_config for s in self.environment(name).syndics if s.master_config is not None}

    def lint_fixtures(self, repo: Path) -> Fixtures:
        """The fixture files of a lint-only config (no environments), resolved against ``repo``."""
        fx = self.fixtures or Fixtures(grains=LINT_FIXTURES / "grains.yaml", pillar=LINT_FIXTURES / "pillar.yaml")
        return Fixtures(grains=repo / fx.grains, pillar=repo / fx.pillar)

    def fixtures_for(self, name: str, repo: Path) -> Fixtures:
        """The grains/pillar fixture files of environment ``name``, resolved against ``repo``."""
        env = self.environment(name)
        fx = env.fixtures or Fixtures(
            grains=Path("salt/fixtures") / name / "grains.yaml",
            pillar=Path("salt/fixtures") / name / "pillar.yaml",
        )
        return Fixtures(grains=repo / fx.grains, pillar=repo / fx.pillar)


# --------------------------------------------------------------------------------------------------------------
# Loading


_HINTS = {
    "missing": "add it",
    "extra_forbidden": "remove it, or check its spelling against docs/configuration.md",
    "literal_error": "use one of the allowed values",
}


def validate_config(src: SourcedYaml) -> PipelineConfig:
    """Validate data loaded by :func:`pipeline.yamlsrc.load_yaml`; raise one :class:`ConfigError` per file
    listing every problem with its line."""
    if not isinstance(src.data, dict):
        raise ConfigError(
            "expected a mapping with an 'environments' key at the top",
            path=src.path,
            line=1,
            hint="see salt/pipeline.yaml in the saltpipe repository for a complete example",
        )
    try:
        cfg = PipelineConfig.model_validate(src.data)
    except ValidationError as exc:
        # 'local' and 'ssh' are the members of the file_roots union, not keys of the file.
        problems = validation_problems(exc, src, hints=_HINTS, union_tags=frozenset({"local", "ssh"}))
    else:
        problems = [(src.line_of(loc), format_loc(loc), msg) for loc, msg in cfg.cross_check()]
    if problems:
        raise problems_error(
            src,
            problems,
            hint="fix it and run 'saltpipe config check' again",
            hint_many="fix each and run 'saltpipe config check' again",
        )
    return cfg.model_copy(update={"source": src.path})


def load_config(path: Path) -> PipelineConfig:
    """Load and validate ``path`` (normally ``salt/pipeline.yaml``)."""
    return validate_config(load_yaml(path))


def config_summary(cfg: PipelineConfig) -> dict[str, Any]:
    """The effective config as plain data (defaults filled in), for ``saltpipe config check``."""
    data = cfg.model_dump(mode="json", exclude={"source"})
    for name, env in cfg.environments.items():
        data["environments"][name]["canary"] = env.canary.describe()
        data["environments"][name]["batches"] = [str(b) for b in env.batches]
    data["promotion_order"] = cfg.promotion_order()
    return data


__all__ = [
    "ACCESS_LEVELS",
    "DEFAULT_CONFIG",
    "LINT_FIXTURES",
    "Approvers",
    "Canary",
    "Environment",
    "FileRoots",
    "Fixtures",
    "Gates",
    "HealthCheck",
    "JobCache",
    "Layout",
    "LocalFileRoots",
    "PipelineConfig",
    "ReleaseSettings",
    "ReviewSettings",
    "SaltAccess",
    "SaltApi",
    "Size",
    "SshFileRoots",
    "Syndic",
    "config_summary",
    "load_config",
    "validate_config",
]
