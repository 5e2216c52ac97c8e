"""Building a local topology's files: ports, keys, every daemon's config, pillar and the derived pipeline.yaml.

:func:`build` renders every daemon's config from ``salt/daemons/`` into a work directory and pre-seeds and
accepts the keys (as an operator would, so ``auto_accept`` stays off); :func:`assemble` writes the derived
``<workdir>/pipeline.yaml`` - the same environments with each syndic's ``file_roots`` a local directory - and
returns the :class:`~pipeline.topology.model.Topology`. Both launchers (``up``, the factories topology) use
the helpers here, so a work directory has one layout (docs/topology.md).
"""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipeline.config import PipelineConfig, load_config
from pipeline.config.runtime_policy import DEFAULT_POLICY, load_runtime_policy
from pipeline.errors import TopologyError
from pipeline.saltlib import import_salt
from pipeline.topology.daemons import Daemon
from pipeline.topology.handles import MasterHandle, MinionHandle, SyndicHandle
from pipeline.topology.model import Topology
from pipeline.topology.pillar import write_local_pillar
from pipeline.topology.redis import RedisServer
from pipeline.topology.render import (
    DaemonTemplates,
    local_minion_values,
    local_mom_values,
    local_syndic_master_values,
    local_syndic_minion_values,
)
from pipeline.topology.spec import MinionSpec, TopologySpec

LOOPBACK = "127.0.0.1"
# Salt's longest socket below a root_dir (a minion's event pull socket); unix socket paths stop at 107 bytes.
_LONGEST_SOCKET = "/var/run/salt/minion/minion_event_0123456789_pull.ipc"
_MAX_SOCKET_PATH = 107

Ports = dict[str, dict[str, int]]
T = TypeVar("T", bound=Topology)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on loopback."""
    # Hold every socket open until all are chosen so the kernel never hands out the same port twice.
    socks, ports = [], []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            socks.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in socks:
            sock.close()
    return ports


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def fresh_ports(spec: TopologySpec) -> Ports:
    """A publish and a ret port for the MoM and each syndic master."""
    nodes = [spec.mom, *(s.id for s in spec.syndics)]
    fresh = iter(free_ports(2 * len(nodes)))
    return {n: {"publish": next(fresh), "ret": next(fresh)} for n in nodes}


def master_handle(workdir: Path, node: str, ports: Ports, bindir: Path) -> MasterHandle:
    """The handle on the master of ``node`` (the MoM or a syndic node) in ``workdir``."""
    root = workdir / node
    return MasterHandle(
        node, root, root / "conf", bindir, interface=LOOPBACK, publish_port=ports[node]["publish"],
        ret_port=ports[node]["ret"],
    )


def minion_handle(workdir: Path, minion: MinionSpec, syndic: str, bindir: Path) -> MinionHandle:
    """The handle on ``minion`` under ``syndic`` in ``workdir``."""
    root = workdir / minion.id
    return MinionHandle(
        minion.id, root, root / "conf", bindir, syndic=syndic, env=minion.env, roles=minion.roles,
        datacenter=minion.datacenter,
    )


def seed_key(pki_dir: Path) -> str:
    """The public key of ``pki_dir/minion.pem``, generating the pair if it does not exist yet."""
    crypt = import_salt("salt.crypt")
    pki_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pki_dir, 0o700)
    if not (pki_dir / "minion.pem").exists():
        crypt.gen_keys(str(pki_dir), "minion", 2048)
    return (pki_dir / "minion.pub").read_text(encoding="ascii")


def accept(accepted_dir: Path, minion_id: str, pub: str) -> None:
    """Exactly what ``salt-key -a`` leaves behind: the public key under ``<pki_dir>/minions/<id>``."""
    accepted_dir.mkdir(parents=True, exist_ok=True)
    (accepted_dir / minion_id).write_text(pub, encoding="ascii")


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def check_socket_paths(workdir: Path, spec: TopologySpec) -> None:
    """:class:`TopologyError` when Salt's unix sockets below ``workdir`` would exceed the path limit."""
    longest = max([spec.mom, *(s.id for s in spec.syndics), *(m.id for m in spec.minions)], key=len)
    path = f"{workdir}/{longest}{_LONGEST_SOCKET}"
    if len(path.encode()) > _MAX_SOCKET_PATH:
        raise TopologyError(
            f"work directory {workdir} is too long: Salt's sockets below it ({path}) would exceed "
            f"the {_MAX_SOCKET_PATH}-byte limit of unix socket paths",
            hint="use a shorter --workdir, e.g. /tmp/saltpipe",
        )


def derive_pipeline_config(
    source: Path, workdir: Path, spec: TopologySpec, *, job_cache: RedisServer | None = None,
    job_cache_everywhere: bool = False,
) -> str:
    """``salt/pipeline.yaml`` with each syndic's ``file_roots`` a local directory of ``workdir``, ``state_dir``
    inside ``workdir``, and how to reach Salt here: ``salt.master_config`` is the local MoM's config (Salt's
    LocalClient) and each syndic's ``master_config`` its local master's, so ``saltpipe --config
    <workdir>/pipeline.yaml sync|rollout ...`` needs no flags. An environment's ``job_cache`` points at the
    topology's redis-server ``job_cache`` (every environment gets one with ``job_cache_everywhere``); without a
    server none has one. Everything else (targets, canaries, batches, gates) is unchanged."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["state_dir"] = str(workdir / "state")
    # Replaces whatever the source says (a production salt-api URL): the local topology is reached in-process.
    data["salt"] = {"master_config": str(workdir / spec.mom / "conf" / "master")}
    for env in data["environments"].values():
        for syndic in env["syndics"]:
            syndic["file_roots"] = {"type": "local", "path": str(workdir / syndic["name"] / "file_roots")}
            syndic["master_config"] = str(workdir / syndic["name"] / "conf" / "master")
        if job_cache is not None and (job_cache_everywhere or env.get("job_cache")):
            env["job_cache"] = {"type": "redis", "host": job_cache.host, "port": job_cache.port, "db": 0}
        else:
            env.pop("job_cache", None)
    header = (
        f"# Derived by `saltpipe topology up` from {source} for the local topology in {workdir}.\n"
        "# Same environments; each syndic's file_roots is a local directory here, and Salt is reached through\n"
        "# the local masters' configs. Regenerated on every `up`.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def assemble(  # pylint: disable=too-many-arguments
    cls: type[T],
    workdir: Path,
    config: PipelineConfig,
    spec: TopologySpec,
    parts: tuple[MasterHandle, tuple[SyndicHandle, ...], tuple[Daemon, ...], Path],
    *,
    job_cache: RedisServer | None = None,
    job_cache_everywhere: bool = False,
    **extra: Any,
) -> T:
    """Write the derived ``<workdir>/pipeline.yaml`` (validated like the original: fail here, not in a later
    stage) and the state directory; return the ``cls`` topology of ``parts`` (MoM, syndics, daemons, bindir)."""
    mom, syndics, daemons, bindir = parts
    assert config.source is not None
    derived = workdir / "pipeline.yaml"
    write_file(
        derived,
        derive_pipeline_config(
            config.source, workdir, spec, job_cache=job_cache, job_cache_everywhere=job_cache_everywhere
        ),
    )
    (workdir / "state").mkdir(exist_ok=True)
    load_config(derived)
    return cls(
        workdir=workdir, spec=spec, mom=mom, syndics=syndics, daemons=daemons, pipeline_config=derived,
        bindir=bindir, job_cache=job_cache, **extra,
    )


def build(  # pylint: disable=too-many-arguments
    workdir: Path, repo: Path, config: PipelineConfig, spec: TopologySpec, ports: Ports, bindir: Path,
    *, job_cache: RedisServer | None = None, job_cache_everywhere: bool = False, light_minions: bool = False,
) -> Topology:
    """Render every config, seed keys, write pillar and the derived pipeline.yaml; return the handles.
    ``light_minions``: the template's light minion (a larger fleet, :mod:`pipeline.topology.scale`)."""
    templates = DaemonTemplates(repo / DEFAULT_POLICY.parent, load_runtime_policy(repo / DEFAULT_POLICY))
    user = getpass.getuser()

    mom = master_handle(workdir, spec.mom, ports, bindir)
    (mom.root_dir / "file_roots").mkdir(parents=True, exist_ok=True)
    write_file(
        mom.config_file,
        templates.render("mom", **local_mom_values(mom, user=user, file_roots=mom.root_dir / "file_roots")),
    )
    daemons = [Daemon(spec.mom, "master", mom.root_dir, mom.config_dir)]
    mom_accepted = mom.root_dir / "etc" / "salt" / "pki" / "master" / "minions"

    syndics = []
    for s in spec.syndics:
        master = master_handle(workdir, s.id, ports, bindir)
        root = master.root_dir
        file_roots = root / "file_roots"
        (file_roots / "envs").mkdir(parents=True, exist_ok=True)
        pillar_dir = root / "pillar"
        write_file(
            master.config_file,
            templates.render(
                "syndic-master",
                **local_syndic_master_values(master, mom, user=user, file_roots=file_roots, pillar_dir=pillar_dir),
            ),
        )
        write_file(
            master.config_dir / "minion",
            templates.render("syndic-minion", **local_syndic_minion_values(master, mom, user=user)),
        )
        accept(mom_accepted, s.id, seed_key(root / "etc" / "salt" / "pki" / "minion"))
        daemons += [Daemon(s.id, "master", root, master.config_dir), Daemon(s.id, "syndic", root, master.config_dir)]

        minions = []
        for m in s.minions:
            minion = minion_handle(workdir, m, s.id, bindir)
            values = local_minion_values(
                minion, master, user=user, job_cache=(job_cache.host, job_cache.port) if job_cache else None,
                light=light_minions,
            )
            write_file(minion.config_file, templates.render("minion", **values))
            accept(
                root / "etc" / "salt" / "pki" / "master" / "minions",
                m.id,
                seed_key(minion.root_dir / "etc" / "salt" / "pki" / "minion"),
            )
            minion.sandbox.mkdir(parents=True, exist_ok=True)
            daemons.append(Daemon(m.id, "minion", minion.root_dir, minion.config_dir))
            minions.append(minion)
        syndics.append(SyndicHandle(s.id, s.env, s.datacenter, master, file_roots, pillar_dir, tuple(minions)))
        write_local_pillar(pillar_dir, tuple(minions), config=config, repo=repo)

    return assemble(
        Topology, workdir, config, spec, (mom, tuple(syndics), tuple(daemons), bindir),
        job_cache=job_cache, job_cache_everywhere=job_cache_everywhere,
    )
