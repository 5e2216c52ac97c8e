"""The local topology on pytest-salt-factories: the integration tests' session topology.

Same shape, same configs, same :class:`~pipeline.topology.local.Topology` API as :func:`pipeline.topology.up`,
but every daemon is a pytest-salt-factories daemon (a child of the pytest process, started and checked through
factories' event listener). Imported only from the tests: it needs the ``salt_factories`` fixture's manager.

One source of truth: each daemon's config is rendered from the same ``salt/daemons/*.j2`` templates with the
same values :func:`~pipeline.topology.local.up` passes (``pipeline.topology.render.local_*_values``: ids,
loopback ports, work-directory paths, ``LOCAL_TUNING``), parsed, and handed to factories as ``overrides``. Factories
*merges* overrides into its own defaults (nested mappings and lists merged), which would leave its
``peer: {'.*': ['test.*']}`` under the template's ``peer: {}`` and add its state-tree directories to the
template's ``file_roots``; the factory classes below therefore *replace* every key the template sets. What
factories adds on top (keys the templates do not set; docs/topology.md, "Integration tests"):

* paths below each daemon's root dir: ``conf_file``, ``pki_dir`` (``pki``), ``cachedir`` (``cache``),
  ``sock_dir`` (``run/<role>``), ``token_dir``, the syndic's ``syndic_dir``, and a minion's local
  ``file_roots``/``pillar_roots`` (``state-tree``, ``pillar-tree``; only ``salt-call --local`` reads them);
  the pid and log files (``pidfile``/``log_file``, ``syndic_pidfile``/``syndic_log_file``) are set back to
  where Salt's scripts put them below root_dir, where ``up``'s daemons have them;
* ports Salt's zeromq transport does not use here (``tcp_master_*``, a minion's ``tcp_pub_port``/``tcp_pull_port``);
* its engine and log handler (``engines: [pytest]``, ``engines_dirs``, ``log_handlers_dirs``, ``pytest-<role>``)
  that report start events and logs to the pytest process, and ``enable_legacy_startup_events: False``;
* tuning: ``fileserver_backend: [roots]`` (Salt's default), ``pillar_opts: False`` (Salt's default),
  ``max_open_files: 10240``, ``file_buffer_size: 8192``, a minion's ``loop_interval: 0.05``, log formats.

Each daemon runs Salt's own script under a small supervisor (:data:`_WRAPPER`) in a session of its own, as
``up`` starts them, so ``procs`` and ``saltpipe topology status`` find it by its pid file, and signalling its
process group never reaches pytest. Two things differ from factories' own syndic recipe: the syndic node runs no salt-minion of its own (factories
starts one before each salt-syndic; production syndic nodes run none and the spec has none), and keys are
pre-seeded as :func:`~pipeline.topology.up` does (each pair generated, the public key placed in the master's
accepted set - what ``salt-key -a`` leaves behind; ``auto_accept`` stays False, as in the templates), so
factories' auth-event handler, which would run ``salt-key --accept`` on a pending key, has nothing to do.
"""

from __future__ import annotations

import copy
import getpass
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from saltfactories.daemons.master import SaltMaster
from saltfactories.daemons.minion import SaltMinion
from saltfactories.daemons.syndic import SaltSyndic

from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.config.runtime_policy import DEFAULT_POLICY, load_runtime_policy
from pipeline.errors import TopologyError
import pipeline.topology.daemons as procs
from pipeline.topology.build import assemble, check_socket_paths, fresh_ports, master_handle, minion_handle, seed_key
from pipeline.topology.daemons import Daemon
from pipeline.topology.handles import SyndicHandle
from pipeline.topology.model import Topology, TopologyStatus
from pipeline.topology.pillar import write_local_pillar
from pipeline.topology.redis import RedisServer
from pipeline.topology.render import (
    DaemonTemplates,
    Role,
    local_minion_values,
    local_mom_values,
    local_syndic_master_values,
    local_syndic_minion_values,
)
from pipeline.topology.spec import DEFAULT_SPEC, load_spec
from pipeline.topology.state import save_state

Progress = Callable[[str], None]

#: The keys factories writes into a daemon's config file on top of the rendered template, by file (``master``:
#: conf/master of the MoM and the syndic masters; ``minion``: conf/minion of a minion and of a syndic node's
#: minion side; ``syndic``: a syndic node's conf/master.d/syndic.conf). The integration tests assert that a
#: running config holds every template key unchanged and nothing else but these (docs/topology.md).
FACTORIES_KEYS: dict[str, frozenset[str]] = {
    "master": frozenset(
        {
            # paths below the daemon's root dir
            "api_logfile", "api_pidfile", "cachedir", "key_logfile", "log_file", "pidfile", "pki_dir",
            "sock_dir", "token_dir", "token_file",
            # its pytest engine and log handler, which report start events and logs to the pytest process
            "engines", "engines_dirs", "log_handlers_dirs", "pytest-master", "enable_legacy_startup_events",
            # ports of the tcp transport (unused: zeromq, Salt's default, which factories writes out)
            "tcp_master_pub_port", "tcp_master_publish_pull", "tcp_master_pull_port", "tcp_master_workers",
            "transport",
            # tuning and formats; values equal to Salt's defaults except where noted
            "file_buffer_size", "fileserver_backend", "log_fmt_console", "log_fmt_logfile", "max_open_files",
            "pillar_opts",
            # only where the template does not set them: the MoM (which serves no content or pillar) gets
            # fileserver_list_cache_time 0 and factories' pillar_roots; syndic masters get order_masters False
            "fileserver_list_cache_time", "pillar_roots", "order_masters",
        }
    ),
    "minion": frozenset(
        {
            "cachedir", "log_file", "pidfile", "pki_dir", "sock_dir",
            "engines", "engines_dirs", "log_handlers_dirs", "pytest-minion", "enable_legacy_startup_events",
            "tcp_pub_port", "tcp_pull_port", "transport",
            "log_fmt_console", "log_fmt_logfile", "loop_interval",
            # a minion's local state and pillar trees (read only by `salt-call --local`)
            "file_roots", "pillar_roots",
            # only a syndic node's minion side, whose template sets identity and publish_port alone
            "acceptance_wait_time", "acceptance_wait_time_max", "interface", "log_level_logfile", "master",
            "master_port",
        }
    ),
    "syndic": frozenset(
        {
            "id", "master_id", "root_dir", "user",  # the node's own values again
            "syndic_dir", "syndic_log_file", "syndic_log_level_logfile", "syndic_pidfile",
            "engines", "engines_dirs", "log_handlers_dirs", "pytest-syndic", "enable_legacy_startup_events",
            "transport",
        }
    ),
}


def _replace_keys(config: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    # Factories merged ``overrides`` into its defaults; put the template's values back exactly.
    for key, value in (overrides or {}).items():
        config[key] = copy.deepcopy(value)
    return config


class _TemplateKeys:  # pylint: disable=too-few-public-methods
    """Mixin of a factories daemon class: its ``overrides`` (the rendered template) replace factories' values."""

    # The daemon's id and the other parameters pass through unchanged (positional or by keyword).
    @classmethod
    def default_config(cls, root_dir, *args, overrides=None, **kwargs):  # type: ignore[no-untyped-def]
        config = super().default_config(root_dir, *args, overrides=overrides, **kwargs)  # type: ignore[misc]
        return _replace_keys(config, overrides)


class TemplateMaster(_TemplateKeys, SaltMaster):
    """A factories salt-master whose ``overrides`` (the rendered template) replace factories' values."""


class TemplateMinion(_TemplateKeys, SaltMinion):
    """A factories salt-minion whose ``overrides`` (the rendered template) replace factories' values."""


class TemplateSyndic(_TemplateKeys, SaltSyndic):
    """A factories salt-syndic that starts its node's salt-master before it, but no salt-minion.

    Factories registers both as start callbacks; the minion config it writes for the syndic's minion side
    (``conf/minion``, read by salt-syndic) is all the node needs.
    """

    def before_start(self, callback, *args, **kwargs):  # type: ignore[no-untyped-def]
        if getattr(callback, "__self__", None) is self.minion:
            return
        super().before_start(callback, *args, **kwargs)


_WRAPPER = """#!{python}
# saltpipe: {script} of the local topology in a session of its own; written by pipeline/topology/factories.py.
# Factories starts its daemons as children of pytest, in pytest's process group. The daemon runs as a child of
# this small supervisor instead, in its own session as `up` starts it (pipeline/topology/daemons.py): signalling
# a daemon's process group (down, a test's SIGKILL) never reaches pytest, and a killed daemon is reaped here at
# once, so Salt does not mistake its zombie for a running instance when it is started again.
import os
import signal
import sys

pid = os.fork()
if pid == 0:
    os.setsid()
    os.execv({target!r}, [{target!r}, *sys.argv[1:]])


def forward(signum, _frame):
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, forward)
while True:
    try:
        _, status = os.waitpid(pid, 0)
        break
    except InterruptedError:
        continue
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def _write_wrappers(bindir: Path, dest: Path) -> dict[str, str]:
    """One wrapper per Salt daemon script in ``dest``: a supervisor that runs the real script in a session of
    its own and waits for it (:data:`_WRAPPER`)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for script in ("salt-master", "salt-syndic", "salt-minion"):
        path = dest / script
        path.write_text(
            _WRAPPER.format(python=sys.executable, script=script, target=str(bindir / script)), encoding="utf-8"
        )
        path.chmod(0o755)
        out[script] = str(path)
    return out


def _salt_paths(daemon: Daemon) -> dict[str, str]:
    # Pid file and log file where Salt's scripts put them below root_dir (pipeline/topology/daemons.py), instead
    # of factories' run/<role>.pid and logs/<role>.log: `status`/`down` and tests find the daemons there.
    if daemon.kind == "syndic":
        return {"syndic_pidfile": str(daemon.pidfile), "syndic_log_file": str(daemon.log_file)}
    return {"pidfile": str(daemon.pidfile), "log_file": str(daemon.log_file)}


def _rendered(templates: DaemonTemplates, role: Role, **values: Any) -> dict[str, Any]:
    data = yaml.safe_load(templates.render(role, **values))
    assert isinstance(data, dict), role
    return data


def _pki_dir(factory: Any) -> Path:
    # Factories writes pki_dir relative ("pki"); Salt resolves it below root_dir (an absolute one survives the join).
    return Path(factory.config["root_dir"]) / factory.config["pki_dir"]


def _seed_and_accept(master: Any, node: Any, node_id: str) -> None:
    """Generate ``node``'s key pair and accept its public key on ``master``, as ``salt-key -a`` would.

    Without it each daemon generates its key at start, waits for factories' auth-event handler to run
    ``salt-key --accept`` and retries after ``acceptance_wait_time``: on 2 cores that doubled the start time.
    """
    pub = seed_key(_pki_dir(node))
    accepted = _pki_dir(master) / "minions"
    accepted.mkdir(parents=True, exist_ok=True)
    (accepted / node_id).write_text(pub, encoding="ascii")


@dataclass(frozen=True)
class FactoriesTopology(Topology):
    """A :class:`Topology` whose daemons are pytest-salt-factories daemons of this process.

    Everything but :meth:`stop` is inherited: each daemon runs Salt's own script (under a small supervisor that
    gives it a session of its own, as ``up`` does) with its pid file and log where ``up`` puts them, so
    :meth:`status`, ``saltpipe topology status`` from another process and ``procs`` (tests that kill and start a
    minion again) find it like any daemon of ``up``.
    """

    factories: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: Each config file factories wrote -> the rendered template it was given (what the file must contain).
    rendered: dict[Path, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    def stop(self, *, timeout: float = 10.0) -> TopologyStatus:
        """Terminate every daemon through factories: minions, then syndics, then the masters; each group in
        parallel (a salt-minion takes seconds to exit on SIGTERM). Then stop, by pid file, whatever still runs:
        a daemon a test killed and started again with Salt's script (``procs.spawn``) is no factories child."""
        groups: list[list[str]] = [
            [d.name for d in self.daemons if d.kind == "minion"],
            [d.name for d in self.daemons if d.kind == "syndic"],
            [d.name for d in self.daemons if d.kind == "master" and d.node != self.mom.id],
            [f"{self.mom.id}/master"],
        ]
        for group in groups:
            _in_parallel([self.factories[name].terminate for name in group])
        return super().stop(timeout=timeout)


def _in_parallel(calls: Iterable[Callable[[], Any]]) -> None:
    """Run ``calls`` in threads; re-raise the first failure once all have finished."""
    calls = list(calls)
    if not calls:
        return
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
    for future in futures:
        future.result()


def factories_up(
    salt_factories: Any,
    workdir: Path,
    *,
    repo: Path,
    timeout: float = 120.0,
    start_timeout: float = 120.0,
    job_cache: RedisServer | None = None,
    progress: Progress = lambda _: None,
) -> FactoriesTopology:
    """Build the topology of ``repo``'s ``salt/`` in ``workdir`` on pytest-salt-factories (``salt_factories``:
    the fixture's manager), start it, and return once every minion answers ``test.ping`` from the MoM
    through its syndic (:meth:`Topology.wait_ready`).

    The four masters start in parallel, then the salt-syndics and minions in parallel; factories checks each
    daemon's start event. Layout of ``workdir`` as with
    :func:`~pipeline.topology.up` (``<id>/conf/...``, ``<syndic>/file_roots``, ``<syndic>/pillar``,
    ``pipeline.yaml``, ``topology.json``), so ``load(workdir)`` finds the masters' configs from another
    process. ``job_cache``: a running redis-server the minions' configs name for Salt's ``redis`` returner
    (stopped with the topology). On failure everything started is terminated again and :class:`TopologyError` says why.
    """
    t0 = time.monotonic()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config = load_config(repo / DEFAULT_CONFIG)
    spec = load_spec(repo / DEFAULT_SPEC, config)
    check_socket_paths(workdir, spec)
    templates = DaemonTemplates(repo / DEFAULT_POLICY.parent, load_runtime_policy(repo / DEFAULT_POLICY))
    bindir = procs.salt_bindir()
    user = getpass.getuser()
    ports = fresh_ports(spec)
    factories: dict[str, Any] = {}
    wrappers = _write_wrappers(bindir, workdir / "bin")
    mom = master_handle(workdir, spec.mom, ports, bindir)
    (mom.root_dir / "file_roots").mkdir(parents=True, exist_ok=True)
    mom_config = _rendered(templates, "mom", **local_mom_values(mom, user=user, file_roots=mom.root_dir / "file_roots"))
    daemons = [Daemon(mom.id, "master", mom.root_dir, mom.config_dir)]
    mom_factory = salt_factories.salt_master_daemon(
        mom.id,
        defaults={"root_dir": str(mom.root_dir)},
        overrides={**mom_config, **_salt_paths(daemons[0])},
        factory_class=TemplateMaster,
        start_timeout=start_timeout,
    )
    factories[f"{mom.id}/master"] = mom_factory
    rendered = {mom.config_file: mom_config}

    syndics: list[SyndicHandle] = []
    minion_factories: list[Any] = []
    for s in spec.syndics:
        master = master_handle(workdir, s.id, ports, bindir)
        file_roots = master.root_dir / "file_roots"
        (file_roots / "envs").mkdir(parents=True, exist_ok=True)
        pillar_dir = master.root_dir / "pillar"
        master_config = _rendered(
            templates,
            "syndic-master",
            **local_syndic_master_values(master, mom, user=user, file_roots=file_roots, pillar_dir=pillar_dir),
        )
        # Factories drops syndic_* keys from a syndic node's master config and gives them to the salt-syndic
        # (conf/master.d/syndic.conf, which the node's master config includes): pass the template's there.
        syndic_config = {k: master_config[k] for k in master_config if k.startswith("syndic_")}
        minion_side = _rendered(templates, "syndic-minion", **local_syndic_minion_values(master, mom, user=user))
        node_daemons = [
            Daemon(s.id, "master", master.root_dir, master.config_dir),
            Daemon(s.id, "syndic", master.root_dir, master.config_dir),
        ]
        daemons += node_daemons
        syndic_factory = mom_factory.salt_syndic_daemon(
            s.id,
            defaults={"root_dir": str(master.root_dir)},
            overrides={**syndic_config, **_salt_paths(node_daemons[1])},
            factory_class=TemplateSyndic,
            master_overrides={**master_config, **_salt_paths(node_daemons[0])},
            master_factory_class=TemplateMaster,
            minion_overrides=minion_side,
            minion_factory_class=TemplateMinion,
            start_timeout=start_timeout,
        )
        # The salt-syndic authenticates with the MoM using its node's minion-side key (conf/minion's pki_dir).
        _seed_and_accept(mom_factory, syndic_factory.minion, s.id)
        factories[f"{s.id}/master"] = syndic_factory.master
        rendered[master.config_file] = {k: v for k, v in master_config.items() if k not in syndic_config}
        rendered[master.config_dir / "minion"] = minion_side
        rendered[master.config_dir / "master.d" / "syndic.conf"] = syndic_config
        factories[f"{s.id}/syndic"] = syndic_factory
        # Factories' state-tree helper creates every file_roots directory of the config. `current` and
        # `envs/<saltenv>` are symlinks the sync switches atomically (a directory cannot be replaced by one):
        # remove the empty directories it made, as `up` never creates them.
        for made in (file_roots / "current", file_roots / "envs" / "__env__"):
            if made.is_dir() and not made.is_symlink() and not any(made.iterdir()):
                made.rmdir()

        minions = []
        for m in s.minions:
            minion = minion_handle(workdir, m, s.id, bindir)
            minion_config = _rendered(
                templates, "minion",
                **local_minion_values(
                    minion, master, user=user, job_cache=(job_cache.host, job_cache.port) if job_cache else None
                ),
            )
            minion_daemon = Daemon(m.id, "minion", minion.root_dir, minion.config_dir)
            daemons.append(minion_daemon)
            minion_factory = syndic_factory.master.salt_minion_daemon(
                m.id,
                defaults={"root_dir": str(minion.root_dir)},
                overrides={**minion_config, **_salt_paths(minion_daemon)},
                factory_class=TemplateMinion,
                start_timeout=start_timeout,
            )
            _seed_and_accept(syndic_factory.master, minion_factory, m.id)
            minion.sandbox.mkdir(parents=True, exist_ok=True)
            factories[f"{m.id}/minion"] = minion_factory
            rendered[minion.config_file] = minion_config
            minion_factories.append(minion_factory)
            minions.append(minion)
        syndics.append(SyndicHandle(s.id, s.env, s.datacenter, master, file_roots, pillar_dir, tuple(minions)))
        write_local_pillar(pillar_dir, tuple(minions), config=config, repo=repo)

    for daemon in daemons:
        factories[daemon.name].script_name = wrappers[daemon.script]

    topo = assemble(
        FactoriesTopology, workdir, config, spec, (mom, tuple(syndics), tuple(daemons), bindir),
        job_cache=job_cache, factories=factories, rendered=rendered,
    )
    topo.timings["build_seconds"] = round(time.monotonic() - t0, 2)

    try:
        # Masters first, all four together (a syndic node's master does not need the MoM); then the
        # salt-syndics and the minions together: each needs only its own master(s) listening.
        masters = [mom_factory, *(factories[f"{s.id}/master"] for s in syndics)]
        progress(f"starting {len(masters)} masters")
        _in_parallel(f.start for f in masters)
        topo.timings["masters_seconds"] = round(time.monotonic() - t0, 2)
        progress(f"starting {len(syndics)} salt-syndics and {len(minion_factories)} minions")
        _in_parallel(f.start for f in [*(factories[f"{s.id}/syndic"] for s in syndics), *minion_factories])
        topo.timings["started_seconds"] = round(time.monotonic() - t0, 2)
        # The daemons' own pids (their pid files), never the supervisors': a supervisor is in pytest's process
        # group, and callers signal the process group of the pid they find.
        topo.launch_pids.update(
            {d.name: pid for d in daemons if (pid := procs.read_pidfile(d.pidfile)) is not None}
        )
        topo.wait_ready(timeout=max(10.0, timeout - (time.monotonic() - t0)), progress=progress)
        topo.timings["ready_seconds"] = round(time.monotonic() - t0, 2)
    except BaseException as exc:
        topo.stop()
        if isinstance(exc, Exception) and not isinstance(exc, TopologyError):
            raise TopologyError(
                f"the factories topology did not start: {exc}", hint=f"see the daemons' logs under {workdir}"
            ) from exc
        raise
    # load(workdir) from another process (saltpipe policy verify-runtime --workdir) needs the spec and ports.
    save_state(topo, repo=repo, ports=ports, ready=True)
    return topo
