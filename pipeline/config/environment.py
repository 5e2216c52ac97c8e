"""One environment of ``salt/pipeline.yaml``: its syndics and how their file_roots is reached, who approves, its
job cache, and the rollout it gets (:mod:`pipeline.config.schedule`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, field_validator, model_validator

from pipeline.config.base import MINION_ID_RE, Model, absolute_path
from pipeline.config.schedule import Canary, Gates, Size
from pipeline.freeze import FreezeWindow


class _RootsModel(Model):
    """What both file_roots types check: ``path`` and the syndic master's ``salt_cachedir`` are absolute paths
    (on the host that holds them: ``where`` says which, in the error)."""

    where: ClassVar[str] = ""
    cachedir_where: ClassVar[str] = ""

    @field_validator("path", check_fields=False)
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"must be an absolute path{cls.where}, got {str(value)!r}")
        return value

    @field_validator("salt_cachedir", check_fields=False)
    @classmethod
    def _absolute_cachedir(cls, value: Path | None) -> Path | None:
        return absolute_path(value, f"the syndic master's cachedir{cls.cachedir_where}, e.g. /var/cache/salt/master")


class LocalFileRoots(_RootsModel):
    """The syndic's file_roots is a directory on this host."""

    type: Literal["local"] = "local"
    path: Path
    salt_cachedir: Path | None = None

    def describe(self) -> str:
        return f"local:{self.path}"


class SshFileRoots(_RootsModel):
    """The syndic's file_roots is a directory on a remote host, reached with SSH and rsync."""

    where: ClassVar[str] = " on the remote host"
    cachedir_where: ClassVar[str] = " on that host"

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

    def describe(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{self.host}:{self.port}{self.path}"


FileRoots = Annotated[Union[LocalFileRoots, SshFileRoots], Field(discriminator="type")]


class Syndic(Model):
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
        return absolute_path(value, "the syndic master's config file, e.g. /etc/salt/master")

    @field_validator("name")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not MINION_ID_RE.match(value):
            raise ValueError(f"{value!r} is not a valid Salt id (letters, digits, '.', '_', '-')")
        return value


class Fixtures(Model):
    """Grains and pillar that lint renders every SLS against, for one environment."""

    grains: Path
    pillar: Path


#: GitLab's project roles by name (``approvers.min_access_level``).
ACCESS_LEVELS = {"developer": 30, "maintainer": 40, "owner": 50}


class Approvers(Model):
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


class JobCache(Model):
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


class Environment(Model):
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
