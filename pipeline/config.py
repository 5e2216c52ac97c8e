"""The typed model of ``salt/pipeline.yaml``, validated once at load.

Every later stage takes a :class:`PipelineConfig` and never looks at raw YAML again. Validation errors name the
file, the line, the key path and what to do (see :func:`load_config`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError
from pipeline.freeze import FreezeWindow
from pipeline.notify import NotifySettings
from pipeline.yamlmodel import format_loc, problems_error, validation_problems
from pipeline.yamlsrc import SourcedYaml, load_yaml

DEFAULT_CONFIG = Path("salt/pipeline.yaml")
#: Where a lint-only config (no environments) finds its fixtures unless ``fixtures:`` says otherwise.
LINT_FIXTURES = Path("salt/fixtures/lint")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_MINION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------------------------
# Sizes: "a count or a percentage", used by the canary and the batch schedule.


class Size(_Model):
    """A number of minions: an absolute ``count`` or a ``percent`` of a population (rounded up, at least 1)."""

    count: int | None = None
    percent: float | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Size":
        if (self.count is None) == (self.percent is None):
            raise ValueError("give either a count or a percentage")
        if self.count is not None and self.count < 1:
            raise ValueError("a count must be at least 1")
        if self.percent is not None and not 0 < self.percent <= 100:
            raise ValueError("a percentage must be in (0%, 100%]")
        return self

    @classmethod
    def parse(cls, value: Any) -> "Size":
        """Accept ``3``, ``"3"``, ``"5%"`` or ``{"count": 3}`` / ``{"percent": 5}``."""
        if isinstance(value, Size):
            return value
        if isinstance(value, bool):
            raise ValueError(f"expected a count like 3 or a percentage like '5%', got {value!r}")
        if isinstance(value, int):
            return cls(count=value)
        if isinstance(value, str):
            match = _PERCENT_RE.match(value)
            if match:
                return cls(percent=float(match.group(1)))
            if value.strip().isdigit():
                return cls(count=int(value))
        if isinstance(value, dict):
            return cls(**value)
        raise ValueError(f"expected a count like 3 or a percentage like '5%', got {value!r}")

    def of(self, population: int) -> int:
        """How many of ``population`` minions this size means: at least 1 (if any), at most all of them."""
        if population <= 0:
            return 0
        if self.count is not None:
            return min(self.count, population)
        assert self.percent is not None
        # Ceiling without float drift: 1% of 10,000 is 100, not 101.
        n = -(-round(self.percent * 1000) * population // 100_000)
        return max(1, min(n, population))

    def __str__(self) -> str:
        if self.count is not None:
            return str(self.count)
        pct = f"{self.percent:g}"
        return f"{pct}%"


# --------------------------------------------------------------------------------------------------------------
# How a syndic master's file_roots is reached.


class LocalFileRoots(_Model):
    """The syndic's file_roots is a directory on this host."""

    type: Literal["local"] = "local"
    path: Path
    salt_cachedir: Path | None = None

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"must be an absolute path, got {str(value)!r}")
        return value

    @field_validator("salt_cachedir")
    @classmethod
    def _absolute_cachedir(cls, value: Path | None) -> Path | None:
        return _absolute_path(value, "the syndic master's cachedir, e.g. /var/cache/salt/master")

    def describe(self) -> str:
        return f"local:{self.path}"


class SshFileRoots(_Model):
    """The syndic's file_roots is a directory on a remote host, reached with SSH and rsync."""

    type: Literal["ssh"] = "ssh"
    host: str = Field(min_length=1)
    path: Path
    user: str | None = None
    port: int = Field(default=22, ge=1, le=65535)
    identity_file: Path | None = None
    salt_cachedir: Path | None = None
    #: Attestation asks the syndic master's own Salt fileserver on that host, with this config file ...
    salt_master_config: Path = Path("/etc/salt/master")
    #: ... and this interpreter (default: the one its ``salt-run`` runs with).
    salt_python: str | None = None

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"must be an absolute path on the remote host, got {str(value)!r}")
        return value

    @field_validator("salt_cachedir")
    @classmethod
    def _absolute_cachedir(cls, value: Path | None) -> Path | None:
        return _absolute_path(value, "the syndic master's cachedir on that host, e.g. /var/cache/salt/master")

    def describe(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{self.host}:{self.port}{self.path}"


FileRoots = Annotated[Union[LocalFileRoots, SshFileRoots], Field(discriminator="type")]


def _absolute_path(value: Path | None, what: str) -> Path | None:
    if value is not None and not value.is_absolute():
        raise ValueError(f"must be an absolute path ({what}), got {str(value)!r}")
    return value


class Syndic(_Model):
    """One syndic master: its minion id (as the MoM sees it), where its file_roots lives and, optionally, the
    path of its master config on the host saltpipe runs on.

    ``master_config`` lets saltpipe read that master directly: lost returns are looked up in its job cache,
    and attestation asks its fileserver what it serves (instead of reading the marker through file_roots).
    """

    name: str
    file_roots: FileRoots
    master_config: Path | None = None

    @field_validator("master_config")
    @classmethod
    def _absolute_config(cls, value: Path | None) -> Path | None:
        return _absolute_path(value, "the syndic master's config file, e.g. /etc/salt/master")

    @field_validator("name")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _MINION_ID_RE.match(value):
            raise ValueError(f"{value!r} is not a valid Salt id (letters, digits, '.', '_', '-')")
        return value


# --------------------------------------------------------------------------------------------------------------
# Canary, schedule, gates.


class Canary(_Model):
    """The first batch: explicit minion ``ids``, or a ``size`` (count or percentage) of the target."""

    ids: tuple[str, ...] = ()
    size: Size | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return {"ids": tuple(value)}
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            return {"size": Size.parse(value)}
        if isinstance(value, dict) and "size" in value:
            return {**value, "size": Size.parse(value["size"])}
        return value

    @model_validator(mode="after")
    def _one_of(self) -> "Canary":
        if bool(self.ids) == (self.size is not None):
            raise ValueError("give the canary as a list of minion ids, a count (1) or a percentage ('1%')")
        for minion in self.ids:
            if not _MINION_ID_RE.match(minion):
                raise ValueError(f"{minion!r} is not a valid minion id")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("canary ids must be unique")
        return self

    def describe(self) -> str:
        return ", ".join(self.ids) if self.ids else str(self.size)


class HealthCheck(_Model):
    """Checked on every minion of a batch after it passes its gate: a Salt function, or an HTTP URL.

    ``url`` may contain ``{minion}`` and ``{host}`` (the minion's ``fqdn`` grain).
    """

    function: str | None = None
    args: tuple[Any, ...] = ()
    url: str | None = None
    expect_status: int = Field(default=200, ge=100, le=599)
    timeout_seconds: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> "HealthCheck":
        if (self.function is None) == (self.url is None):
            raise ValueError("give either 'function' (a Salt function) or 'url' (an HTTP URL)")
        if self.function is not None and not re.match(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$", self.function):
            raise ValueError(f"{self.function!r} is not a Salt function name like 'ops_app.health'")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{self.url!r} must start with http:// or https://")
        return self


class Gates(_Model):
    """When a batch counts as passed."""

    max_failure_ratio: float = Field(default=0.0, ge=0, le=1)
    max_missing_ratio: float = Field(default=0.0, ge=0, le=1)
    bake_seconds: float = Field(default=0, ge=0)
    health_check: HealthCheck | None = None


class Fixtures(_Model):
    """Grains and pillar that lint renders every SLS against, for one environment."""

    grains: Path
    pillar: Path


class Layout(_Model):
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
        return _repo_relative(value, "the directory Salt serves as salt://, e.g. states, salt or .")

    @field_validator("roots")
    @classmethod
    def _roots(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_repo_relative(v, "a directory of the repository, e.g. formulas") for v in value)

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(_repo_relative(v, "a directory like _modules or ext/_states") for v in value)
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


def _repo_relative(value: str, what: str) -> str:
    """A normalised POSIX path inside the repository (``.`` for the top)."""
    path = Path(value.strip() or ".")
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"must be a path inside the repository ({what}), got {value!r}")
    return path.as_posix()

#: GitLab's project roles by name (``approvers.min_access_level``).
ACCESS_LEVELS = {"developer": 30, "maintainer": 40, "owner": 50}


class Approvers(_Model):
    """Who may approve a rollout to an environment, as GitLab says (checked through its API at every rollout):

    * ``protected_environment`` (default): the users GitLab allows to deploy to the protected environment of
      the same name (its deploy access levels: users, groups, roles) - the same people who may play its manual
      gate job. Protected environments are a GitLab Premium feature.
    * ``project_members``: project members with at least ``min_access_level`` (any tier).
    """

    source: Literal["protected_environment", "project_members"] = "protected_environment"
    min_access_level: Literal["developer", "maintainer", "owner"] = "maintainer"
    gate_job: str = Field(default="approve:{environment}", min_length=1,
                          description="the manual job whose player is the approval in CI")


class JobCache(_Model):
    """Where the environment's minions also send their returns: Salt's own ``redis`` returner (an external job
    cache, docs/job-cache.md). saltpipe asks for it on every job it publishes (``ret: redis``) and reads the
    ``ret:<jid>`` hashes before the MoM's returns and lookups. The minions need the same server in their config
    (``redis.host`` / ``redis.port`` / ``redis.db``)."""

    type: Literal["redis"]
    host: str = Field(min_length=1)
    port: int = Field(default=6379, ge=1, le=65535)
    db: int = Field(default=0, ge=0)
    #: Seconds a connection or a read may take before the cache counts as unreachable (an error, not "no return").
    timeout_seconds: float = Field(default=5, gt=0)


class Environment(_Model):
    """One deployment environment (``test``, ``production``)."""

    name: str
    description: str = ""
    tier: Literal["production", "staging", "testing", "development", "other"] = "other"
    syndics: tuple[Syndic, ...] = Field(min_length=1)
    target: str = Field(min_length=1, description="Salt compound expression resolving the environment's minions")
    canary: Canary
    batches: tuple[Size, ...] = Field(min_length=1)
    gates: Gates = Gates()
    approvals_required: int = Field(default=0, ge=0)
    approvers: Approvers = Approvers()
    requires: tuple[str, ...] = ()
    fixtures: Fixtures | None = None
    #: Freeze windows (pipeline/freeze.py): no rollout and no sync of base while one is active.
    freeze: tuple[FreezeWindow, ...] = ()
    #: Off by default: small sites rely on the syndics delivering returns plus lookups.
    job_cache: JobCache | None = None

    @field_validator("batches", mode="before")
    @classmethod
    def _parse_batches(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise ValueError("expected a list such as [1, '5%', '25%', '100%']")
        return tuple(Size.parse(item) for item in value)

    @field_validator("batches")
    @classmethod
    def _last_is_everything(cls, value: tuple[Size, ...]) -> tuple[Size, ...]:
        last = value[-1]
        if last.percent != 100:
            raise ValueError(
                "the last batch must be '100%' so that the rollout reaches every minion "
                f"(it is {last}); append '100%'"
            )
        return value

    @model_validator(mode="after")
    def _unique_syndics(self) -> "Environment":
        names = [s.name for s in self.syndics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"syndic listed twice: {', '.join(dupes)}")
        windows = [w.name for w in self.freeze]
        twice = sorted({n for n in windows if windows.count(n) > 1})
        if twice:
            raise ValueError(f"freeze window name used twice: {', '.join(twice)}")
        return self

    def describe_schedule(self) -> str:
        return "canary(" + self.canary.describe() + ") -> " + " -> ".join(str(b) for b in self.batches)


class SaltApi(_Model):
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
        return _absolute_path(value, "a CA bundle file")


class SaltAccess(_Model):
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
        return _absolute_path(value, "the MoM's master config file, e.g. /etc/salt/master")

    @model_validator(mode="after")
    def _one_of(self) -> "SaltAccess":
        if (self.master_config is None) == (self.api is None):
            raise ValueError(
                "give exactly one way to reach the master-of-masters: 'master_config' (its config file, for "
                "Salt's LocalClient on the MoM host) or 'api' (salt-api: url, user, eauth)"
            )
        return self


class ReleaseSettings(_Model):
    """How releases are built and kept."""

    keep: int = Field(default=5, ge=1, description="releases kept on each syndic, the served one included")


class ReviewSettings(_Model):
    """What the review gate asks of GitLab."""

    approvals_required: int = Field(default=1, ge=0)
    security_group: str | None = None
    security_paths: tuple[str, ...] = ("salt/policy.yaml", "_modules/", "_states/")


class PipelineConfig(_Model):
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
            if not _NAME_RE.match(name):
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
            problems += _schedule_problems(name, env.batches)
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


def _schedule_problems(name: str, batches: tuple[Size, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    """A percentage is a cumulative share of the fleet (docs/rollout.md), so each must be above every earlier
    one: ``50%, 25%`` would make the 25% batch add nobody - the schedule was surely meant otherwise."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    highest: Size | None = None
    for i, size in enumerate(batches):
        if size.percent is None:
            continue
        if highest is not None and highest.percent is not None and size.percent <= highest.percent:
            problems.append((
                ("environments", name, "batches", i),
                f"batch {size} does not grow the rollout: percentages are cumulative shares of the fleet and "
                f"{highest} came earlier; give increasing percentages (e.g. '5%', '25%', '100%') or a count",
            ))
        else:
            highest = size
    return problems


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
