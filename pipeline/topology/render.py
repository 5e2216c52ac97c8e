"""Render Salt daemon configs from the templates in ``salt/daemons/`` - one source of truth with production.

Every template variable defaults (in the template) to its production value; production passes ids and
addresses, the local topology also passes loopback ports, work-directory paths and the few tuning values
listed in :data:`LOCAL_TUNING`; the ``local_*_values`` functions are those values, for both local launchers
(``topology up`` and the integration tests' factories topology). The runtime policy block comes from
``salt/daemons/runtime-policy.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import jinja2

from pipeline.errors import ConfigError
from pipeline.config.runtime_policy import RuntimePolicy
from pipeline.topology.handles import MasterHandle, MinionHandle

Role = Literal["mom", "syndic-master", "syndic-minion", "minion"]

#: Template file of each role, in ``salt/daemons/``.
TEMPLATES: dict[Role, str] = {
    "mom": "mom.conf.j2",
    "syndic-master": "syndic-master.conf.j2",
    "syndic-minion": "syndic-minion.conf.j2",
    "minion": "minion.conf.j2",
}

#: The salt-api user of the local topology (eauth ``auto``).
LOCAL_API_USER = "saltpipe-local"

#: Values the local topology sets on top of the production defaults, and why. Nothing else differs.
LOCAL_TUNING: dict[Role, dict[str, Any]] = {
    "mom": {
        # Every MoM call waits syndic_wait seconds for syndics to report their minions; 5 s per call makes
        # a test suite crawl, and on loopback the syndics answer within a second.
        "syndic_wait": 1,
        # 15 daemons share one machine (docs/topology.md measures them); 2 workers carry a handful of minions.
        "worker_threads": 2,
    },
    "syndic-master": {
        "worker_threads": 2,
    },
    "syndic-minion": {},
    "minion": {
        # The reverse-DNS lookups of the fqdns grain stall minion start-up where names do not resolve.
        "enable_fqdns_grains": False,
        # Keys are pre-seeded and masters are up before minions start, so a retry is rare; keep it short.
        "acceptance_wait_time": 2,
    },
}


class DaemonTemplates:
    """The templates of one ``salt/daemons/`` directory, rendered with the runtime policy of the same directory."""

    def __init__(self, daemons_dir: Path, policy: RuntimePolicy) -> None:
        self.daemons_dir = daemons_dir
        self.policy = policy
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(daemons_dir)),
            # A variable the caller forgot must fail loudly, not render as an empty string into a config.
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    def render(self, role: Role, **values: Any) -> str:
        """The config file text for ``role``; :class:`ConfigError` naming the template when it cannot render."""
        name = TEMPLATES[role]
        path = self.daemons_dir / name
        try:
            template = self._env.get_template(name)
            return template.render(runtime_policy=self.policy.model_dump(mode="json"), **values)
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(
                f"template {exc.name} not found", path=path, hint="restore it from the saltpipe repository"
            ) from exc
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"template syntax error: {exc.message}",
                path=Path(exc.filename or path),
                line=exc.lineno,
                hint="fix the Jinja syntax",
            ) from exc
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"template needs a value it was not given: {exc.message}",
                path=path,
                hint="pass it when rendering, or give it a default in the template",
            ) from exc


# ----------------------------------------------------------------------------------------------------------
# The values of the local topology: what `topology up` (pipeline.topology.local) and the integration tests'
# topology (pipeline.topology.factories) render each daemon's template with. One place, so the two cannot drift.


def local_mom_values(mom: MasterHandle, *, user: str, file_roots: Path) -> dict[str, Any]:
    """Template values of the local MoM (``mom``), which listens on its handle's interface and ports."""
    return {
        "id": mom.id,
        "user": user,
        "root_dir": str(mom.root_dir),
        "interface": mom.interface,
        "publish_port": mom.publish_port,
        "ret_port": mom.ret_port,
        "file_roots": str(file_roots),
        # salt-api on loopback (tests/integration/test_salt_api.py): Salt's `auto` eauth accepts this user with
        # any password - a local login, never a production setting.
        "api_eauth": "auto",
        "api_eauth_users": [LOCAL_API_USER],
        **LOCAL_TUNING["mom"],
    }


def local_syndic_master_values(
    master: MasterHandle, mom: MasterHandle, *, user: str, file_roots: Path, pillar_dir: Path
) -> dict[str, Any]:
    """Template values of a syndic node's master (``syndic-master``): its own interface and ports, the MoM's
    return port as its ``syndic_master``, ``file_roots`` (the sync target) and pillar directories."""
    return {
        "id": master.id,
        "user": user,
        "root_dir": str(master.root_dir),
        "interface": master.interface,
        "publish_port": master.publish_port,
        "ret_port": master.ret_port,
        "syndic_master": mom.interface,
        "syndic_master_port": mom.ret_port,
        "file_roots_dir": str(file_roots),
        "pillar_roots": str(pillar_dir),
        **LOCAL_TUNING["syndic-master"],
    }


def local_syndic_minion_values(master: MasterHandle, mom: MasterHandle, *, user: str) -> dict[str, Any]:
    """Template values of a syndic node's minion side (``syndic-minion``): subscribed to the MoM's publisher."""
    return {
        "id": master.id,
        "user": user,
        "root_dir": str(master.root_dir),
        "syndic_master_publish_port": mom.publish_port,
        **LOCAL_TUNING["syndic-minion"],
    }


def local_minion_values(
    minion: MinionHandle, master: MasterHandle, *, user: str, job_cache: tuple[str, int] | None = None,
    light: bool = False,
) -> dict[str, Any]:
    """Template values of a minion (``minion``): its syndic's master as its master, its grains from the spec;
    ``job_cache`` (host, port): the topology's redis-server, for Salt's ``redis`` returner; ``light``: the
    template's light minion, for a larger fleet (``topology up --minions N``)."""
    cache = {"redis_host": job_cache[0], "redis_port": job_cache[1], "redis_db": 0} if job_cache else {}
    return {
        **cache,
        **({"light": True} if light else {}),
        "id": minion.id,
        "user": user,
        "root_dir": str(minion.root_dir),
        "master": master.interface,
        "master_port": master.ret_port,
        "saltpipe_env": minion.env,
        "roles": list(minion.roles),
        "datacenter": minion.datacenter,
        **LOCAL_TUNING["minion"],
    }
