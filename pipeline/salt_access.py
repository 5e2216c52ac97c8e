"""How saltpipe reaches Salt: the ``salt:`` section of ``salt/pipeline.yaml`` with command-line overrides.

One place decides, for ``sync``, ``rollout``, ``rollback``, ``impact`` and ``fixtures import`` alike, and
:func:`make_client` builds the Salt client from that decision (the CLI only parses the flags into
:class:`SaltFlags`):

* the master-of-masters (MoM): ``--master-config PATH`` or ``--salt-api URL`` (flags, or their environment
  variables) win over ``salt.master_config`` / ``salt.api``; exactly one way must result;
* each syndic master's config on this host (lost-return lookups, attestation through its fileserver):
  ``environments.<env>.syndics[].master_config``, each overridable with ``--syndic-config SYNDIC=PATH``.

The salt-api password is never read from a file or a flag: only from ``SALTPIPE_SALT_API_PASSWORD``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import DEFAULT_CONFIG, PipelineConfig, SaltApi
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from pipeline.salt_client.base import SaltClient

PASSWORD_ENV = "SALTPIPE_SALT_API_PASSWORD"


@dataclass(frozen=True)
class MomAccess:
    """The one way to the MoM that applies: ``master_config`` (LocalClient) or ``api`` (salt-api), and where
    that choice came from (``"command line"`` or the config file), for messages."""

    master_config: Path | None
    api: SaltApi | None
    origin: str

    def password(self) -> str:
        """The salt-api password from the environment; a :class:`UsageError` saying what to set when absent."""
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            raise UsageError(
                f"salt-api needs a password ({self.origin} chose salt-api {self.api.url if self.api else ''})",
                hint=f"set {PASSWORD_ENV} (never a flag or a file)",
            )
        return password


@dataclass(frozen=True)
class SaltFlags:
    """What the command line says about reaching Salt (each ``None``/empty: the config decides).

    ``master_config`` / ``api_*``: the MoM (``--master-config``, ``--salt-api*``); ``syndic_configs``: the
    ``--syndic-config SYNDIC=PATH`` overrides; ``syndic_apis``: ``--syndic-api SYNDIC=URL`` (salt-api only).
    """

    master_config: Path | None = None
    api_url: str | None = None
    api_user: str | None = None
    api_eauth: str | None = None
    api_ca: Path | None = None
    syndic_configs: tuple[str, ...] = ()
    syndic_apis: tuple[str, ...] = ()


def parse_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` arguments of a repeatable option into a dict; a :class:`UsageError` naming the bad one."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise UsageError(f"{option} {value!r}: expected NAME=VALUE", hint=f"e.g. {option} syndic-prod-a=...")
        out[name] = rest
    return out


def syndic_configs(cfg: PipelineConfig, environment: str, overrides: Iterable[str] = ()) -> dict[str, Path]:
    """Syndic -> master config file for environment ``environment``: the config's ``master_config`` of each
    syndic, replaced by ``--syndic-config SYNDIC=PATH`` overrides. An override naming a syndic the environment
    does not have is a :class:`UsageError` (a typo would silently fall back to weaker evidence)."""
    env = cfg.environment(environment)
    known = [s.name for s in env.syndics]
    out = cfg.syndic_master_configs(environment)
    for name, path in parse_pairs(overrides, "--syndic-config").items():
        if name not in known:
            raise UsageError(
                f"--syndic-config {name}=...: {name!r} is not a syndic of {environment}",
                hint=f"its syndics: {', '.join(known)}",
            )
        out[name] = Path(path)
    return out


def mom_access(
    cfg: PipelineConfig,
    *,
    master_config: Path | str | None = None,
    api_url: str | None = None,
    api_user: str | None = None,
    api_eauth: str | None = None,
    api_ca: Path | None = None,
) -> MomAccess:
    """Decide how to reach the MoM. Flags first (``master_config`` or ``api_url``; giving both is an error),
    else the config's ``salt:`` section; nothing at all is a :class:`UsageError` that says what to add.

    With ``api_url`` from a flag, the user, eauth and CA come from the flags, else from ``salt.api``."""
    section = cfg.salt
    source = cfg.source or DEFAULT_CONFIG
    if master_config and api_url:
        raise UsageError(
            "give exactly one way to reach the master-of-masters, not both --master-config and --salt-api",
            hint="drop one (or the SALTPIPE_MASTER_CONFIG / SALTPIPE_SALT_API_URL variable that set it)",
        )
    if master_config:
        return MomAccess(Path(master_config), None, "the command line")
    configured = section.api if section is not None else None
    if api_url:
        user = api_user or (configured.user if configured else None)
        if not user:
            raise UsageError("salt-api needs a user", hint="--salt-api-user NAME or SALTPIPE_SALT_API_USER")
        api = SaltApi(
            url=api_url,
            user=user,
            eauth=api_eauth or (configured.eauth if configured else "pam"),
            ca_bundle=api_ca or (configured.ca_bundle if configured else None),
        )
        return MomAccess(None, api, "the command line")
    if section is None:
        raise UsageError(
            "give exactly one way to reach the master-of-masters",
            hint=f"add a `salt:` section to {source} (master_config: /etc/salt/master, or api: {{url, user, "
            "eauth}), or pass --master-config PATH (LocalClient, on the MoM) or --salt-api URL (with "
            "SALTPIPE_SALT_API_USER and SALTPIPE_SALT_API_PASSWORD); or set SALTPIPE_MASTER_CONFIG / "
            "SALTPIPE_SALT_API_URL",
        )
    if section.master_config is not None:
        return MomAccess(section.master_config, None, str(source))
    assert section.api is not None  # SaltAccess validates exactly one
    api = section.api
    if api_user or api_eauth or api_ca:
        api = api.model_copy(
            update={
                "user": api_user or api.user,
                "eauth": api_eauth or api.eauth,
                "ca_bundle": api_ca or api.ca_bundle,
            }
        )
    return MomAccess(None, api, str(source))


def make_client(
    cfg: PipelineConfig,
    flags: SaltFlags,
    *,
    environment: str | None = None,
    extra_functions: Sequence[str] = (),
) -> SaltClient:
    """The Salt client to the MoM that ``cfg`` and ``flags`` choose (:func:`mom_access`), allowed
    ``extra_functions`` besides the fixed set (a health check function, the functions ``fixtures import`` calls).

    With ``environment`` it also knows that environment's syndic masters (:func:`syndic_configs`: lost-return
    lookups in their job caches) and reads returns through its external job cache first when it has one
    (docs/job-cache.md). Nothing is contacted here; a salt-api password missing from the environment is a
    :class:`UsageError` now, not at the first call.
    """
    access = mom_access(
        cfg,
        master_config=flags.master_config,
        api_url=flags.api_url,
        api_user=flags.api_user,
        api_eauth=flags.api_eauth,
        api_ca=flags.api_ca,
    )
    syndics = syndic_configs(cfg, environment, flags.syndic_configs) if environment is not None else {}
    client: SaltClient
    if access.master_config is not None:
        from pipeline.salt_client.local import LocalSaltClient

        client = LocalSaltClient(access.master_config, syndic_configs=syndics, extra_functions=extra_functions)
    else:
        from pipeline.salt_client.api import SaltApiClient

        assert access.api is not None
        client = SaltApiClient(
            access.api.url,
            username=access.api.user,
            password=access.password(),
            eauth=access.api.eauth,
            syndic_urls=parse_pairs(flags.syndic_apis, "--syndic-api"),
            extra_functions=extra_functions,
            verify=str(access.api.ca_bundle) if access.api.ca_bundle else True,
        )
    if environment is None:
        return client
    from pipeline.salt_client.jobcache import with_job_cache

    return with_job_cache(client, cfg.environment(environment).job_cache)
