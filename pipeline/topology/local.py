"""The local topology: one MoM, the syndics of ``salt/pipeline.yaml``, minions under each - on loopback.

:func:`up` renders every daemon's config from ``salt/daemons/`` into a work directory, pre-seeds and accepts
the keys (as an operator would, so ``auto_accept`` stays off), starts the masters in parallel, then the
syndics and minions in parallel, and returns once readiness is *proven*: every minion answers ``test.ping``
published from the MoM through its syndic. It also writes ``<workdir>/pipeline.yaml``: the same environments
with each syndic's ``file_roots`` a local directory of the work directory.

The daemons are detached: :func:`load`, :func:`status` and :func:`down` find them again from
``<workdir>/topology.json`` and Salt's pid files, from another process. Layout: docs/topology.md.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import DEFAULT_CONFIG, PipelineConfig, load_config
from pipeline.errors import TopologyError
from pipeline.runtime_policy import DEFAULT_POLICY, load_runtime_policy
from pipeline.saltlib import import_salt
from pipeline.topology import daemons as procs
from pipeline.topology.daemons import Daemon, DaemonStatus
from pipeline.topology.handles import MasterHandle, MinionHandle, SaltResult, SyndicHandle
from pipeline.topology.pillar import write_local_pillar, write_overrides
from pipeline.topology.redis import RedisServer, start_redis, stop_redis
from pipeline.topology.render import (
    DaemonTemplates,
    local_minion_values,
    local_mom_values,
    local_syndic_master_values,
    local_syndic_minion_values,
)
from pipeline.topology.spec import DEFAULT_SPEC, TopologySpec, load_spec

STATE_FILE = "topology.json"
LOOPBACK = "127.0.0.1"
# Salt's longest socket below a root_dir (a minion's event pull socket); unix socket paths stop at 107 bytes.
_LONGEST_SOCKET = "/var/run/salt/minion/minion_event_0123456789_pull.ipc"
_MAX_SOCKET_PATH = 107

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class TopologyStatus:
    """Every daemon's pid and state; ``running`` when all run, ``stopped`` when none does."""

    workdir: Path
    daemons: tuple[DaemonStatus, ...]

    @property
    def running(self) -> bool:
        return bool(self.daemons) and all(d.state == "running" for d in self.daemons)

    @property
    def stopped(self) -> bool:
        return all(d.state in ("stopped", "stale", "zombie") for d in self.daemons)

    @property
    def summary(self) -> str:
        if self.running:
            return "running"
        if self.stopped:
            return "stopped"
        return "degraded"

    def as_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "state": self.summary,
            "daemons": [d.as_dict() for d in self.daemons],
        }


@dataclass(frozen=True)
class Topology:
    """A local topology in ``workdir``: handles on its MoM, syndics and minions, and its daemons.

    Frozen: starting and stopping go through :func:`up` / :meth:`stop`, which work from the files in
    ``workdir``, so a handle built by :func:`load` in another process is as good as the one :func:`up` returned.
    """

    workdir: Path
    spec: TopologySpec
    mom: MasterHandle
    syndics: tuple[SyndicHandle, ...]
    daemons: tuple[Daemon, ...]
    pipeline_config: Path
    bindir: Path
    launch_pids: dict[str, int] = field(default_factory=dict, compare=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    #: The redis-server the minions return to (Salt's ``redis`` returner), when the topology runs one.
    job_cache: RedisServer | None = None

    # ---- lookups -------------------------------------------------------------------------------------
    @property
    def minions(self) -> tuple[MinionHandle, ...]:
        return tuple(m for s in self.syndics for m in s.minions)

    @property
    def minion_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.minions)

    @property
    def masters(self) -> tuple[MasterHandle, ...]:
        """The MoM first, then each syndic's master."""
        return (self.mom, *(s.master for s in self.syndics))

    def minion(self, minion_id: str) -> MinionHandle:
        for minion in self.minions:
            if minion.id == minion_id:
                return minion
        raise KeyError(f"no minion {minion_id!r} in the topology ({', '.join(self.minion_ids)})")

    def syndic(self, syndic_id: str) -> SyndicHandle:
        for syndic in self.syndics:
            if syndic.id == syndic_id:
                return syndic
        raise KeyError(f"no syndic {syndic_id!r} in the topology ({', '.join(s.id for s in self.syndics)})")

    def env_minions(self, env: str) -> tuple[str, ...]:
        return tuple(m.id for m in self.minions if m.env == env)

    def set_pillar(self, minion_id: str, overrides: dict[str, Any]) -> None:
        """Replace the pillar overrides of ``minion_id`` (merged over the generated sandbox pillar). Applied
        from the next pillar compilation; publish ``saltutil.refresh_pillar`` to make it immediate."""
        minion = self.minion(minion_id)
        write_overrides(self.syndic(minion.syndic).pillar_dir, minion_id, overrides)

    def load_pipeline_config(self) -> PipelineConfig:
        """The derived ``<workdir>/pipeline.yaml`` (local file_roots), validated."""
        return load_config(self.pipeline_config)

    # ---- processes -----------------------------------------------------------------------------------
    def status(self) -> TopologyStatus:
        return TopologyStatus(
            self.workdir, tuple(procs.inspect(d, self.launch_pids.get(d.name)) for d in self.daemons)
        )

    def stop(self, *, timeout: float = 10.0) -> TopologyStatus:
        """Stop every daemon (minions and syndics first, then the masters) and return the final status.

        A salt-minion takes about 10 s to exit on SIGTERM (its process manager waits out its children); a
        local minion holds nothing worth that wait, so minions and syndics get at most 5 s before SIGKILL,
        masters ``timeout``."""
        first = [(d, self.launch_pids.get(d.name)) for d in self.daemons if d.kind != "master"]
        masters = [(d, self.launch_pids.get(d.name)) for d in self.daemons if d.kind == "master"]
        procs.stop(first, timeout=min(timeout, 5.0))
        procs.stop(masters, timeout=timeout)
        if self.job_cache is not None:
            stop_redis(self.job_cache, timeout=timeout)
        return self.status()

    def ping(self, *, timeout: int = 10) -> SaltResult:
        """``test.ping`` of every minion, published from the MoM (list target)."""
        return self.mom.salt(list(self.minion_ids), "test.ping", timeout=timeout)

    def wait_ready(self, *, timeout: float = 60.0, progress: Progress = _quiet) -> float:
        """Return the seconds it took until every minion answered ``test.ping`` from the MoM through its
        syndic; :class:`TopologyError` naming the silent minions (and dead daemons) after ``timeout``."""
        started = time.monotonic()
        deadline = started + timeout
        answered: set[str] = set()
        last: SaltResult | None = None
        while True:
            remaining = deadline - time.monotonic()
            attempt_timeout = int(max(3, min(5, remaining)))
            last = self.mom.salt(sorted(set(self.minion_ids) - answered), "test.ping", timeout=attempt_timeout)
            answered |= {mid for mid, ret in last.returns.items() if ret is True}
            missing = sorted(set(self.minion_ids) - answered)
            if not missing:
                return time.monotonic() - started
            progress(f"waiting for {len(missing)} minion(s): {', '.join(missing)}")
            dead = [s for s in self.status().daemons if s.state != "running"]
            if dead:
                raise TopologyError(
                    "daemon(s) exited while waiting for the topology: "
                    + ", ".join(f"{d.name} ({d.state})" for d in dead),
                    hint="see " + ", ".join(str(self._daemon(d.name).console_log) for d in dead),
                )
            if time.monotonic() >= deadline:
                raise TopologyError(
                    f"not ready after {timeout:.0f}s: no test.ping answer through the MoM from {', '.join(missing)} "
                    f"(last call: {last})",
                    hint=f"look at the syndic and minion logs under {self.workdir}; "
                    "'saltpipe topology status' shows which daemons run",
                )

    def wait_authenticated(self, *, timeout: float) -> None:
        """Wait until every syndic and minion has authenticated with its master (it has cached the master's
        public key, which :func:`up` removes before starting it); :class:`TopologyError` if one exits or
        ``timeout`` passes. Publishing before that would only lose the job and wait out its timeout."""
        deadline = time.monotonic() + timeout
        pending = [d for d in self.daemons if d.kind != "master"]
        while True:
            pending = [d for d in pending if not _master_key_cached(d)]
            if not pending:
                return
            dead = [d for d in pending if procs.inspect(d, self.launch_pids.get(d.name)).state != "running"]
            if dead:
                raise TopologyError(
                    f"{dead[0].name} exited while starting:\n{_log_tail(dead[0])}",
                    hint=f"fix the cause above; its config is in {dead[0].config_dir}",
                )
            if time.monotonic() >= deadline:
                raise TopologyError(
                    f"not authenticated with their masters after {timeout:.0f}s: {', '.join(d.name for d in pending)}",
                    hint=f"see their logs ({', '.join(str(d.log_file) for d in pending[:3])})",
                )
            time.sleep(0.2)  # polling interval of the check above

    def _daemon(self, name: str) -> Daemon:
        for daemon in self.daemons:
            if daemon.name == name:
                return daemon
        raise KeyError(name)


# ----------------------------------------------------------------------------------------------------------
# Building the topology's files


def _free_ports(count: int) -> list[int]:
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


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _seed_key(pki_dir: Path) -> str:
    """The public key of ``pki_dir/minion.pem``, generating the pair if it does not exist yet."""
    crypt = import_salt("salt.crypt")
    pki_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pki_dir, 0o700)
    if not (pki_dir / "minion.pem").exists():
        crypt.gen_keys(str(pki_dir), "minion", 2048)
    return (pki_dir / "minion.pub").read_text(encoding="ascii")


def _accept(master_root: Path, minion_id: str, pub: str) -> None:
    # Exactly what `salt-key -a` leaves behind: the minion's public key under pki/master/minions/<id>.
    accepted = master_root / "etc" / "salt" / "pki" / "master" / "minions"
    accepted.mkdir(parents=True, exist_ok=True)
    (accepted / minion_id).write_text(pub, encoding="ascii")


def _master_key_cache(daemon: Daemon) -> Path:
    # Where a minion (minion_master.pub) or a syndic (syndic_master.pub, the MoM's) keeps its master's public
    # key once it has authenticated.
    name = "syndic_master.pub" if daemon.kind == "syndic" else "minion_master.pub"
    return daemon.root_dir / "etc" / "salt" / "pki" / "minion" / name


def _master_key_cached(daemon: Daemon) -> bool:
    return _master_key_cache(daemon).exists()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


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


def _build(
    workdir: Path, repo: Path, config: PipelineConfig, spec: TopologySpec, ports: dict[str, dict[str, int]], bindir: Path,
    *, job_cache: RedisServer | None = None, job_cache_everywhere: bool = False,
) -> Topology:
    """Render every config, seed keys, write pillar and the derived pipeline.yaml; return the handles."""
    policy = load_runtime_policy(repo / DEFAULT_POLICY)
    templates = DaemonTemplates(repo / DEFAULT_POLICY.parent, policy)
    user = getpass.getuser()

    mom_root = workdir / spec.mom
    mom = MasterHandle(
        id=spec.mom,
        root_dir=mom_root,
        config_dir=mom_root / "conf",
        interface=LOOPBACK,
        publish_port=ports[spec.mom]["publish"],
        ret_port=ports[spec.mom]["ret"],
        bindir=bindir,
    )
    (mom_root / "file_roots").mkdir(parents=True, exist_ok=True)
    _write(
        mom.config_file,
        templates.render("mom", **local_mom_values(mom, user=user, file_roots=mom_root / "file_roots")),
    )
    daemons = [Daemon(spec.mom, "master", mom_root, mom.config_dir)]

    syndics = []
    for s in spec.syndics:
        root = workdir / s.id
        master = MasterHandle(
            id=s.id,
            root_dir=root,
            config_dir=root / "conf",
            interface=LOOPBACK,
            publish_port=ports[s.id]["publish"],
            ret_port=ports[s.id]["ret"],
            bindir=bindir,
        )
        file_roots = root / "file_roots"
        (file_roots / "envs").mkdir(parents=True, exist_ok=True)
        pillar_dir = root / "pillar"
        _write(
            master.config_file,
            templates.render(
                "syndic-master",
                **local_syndic_master_values(master, mom, user=user, file_roots=file_roots, pillar_dir=pillar_dir),
            ),
        )
        _write(
            master.config_dir / "minion",
            templates.render("syndic-minion", **local_syndic_minion_values(master, mom, user=user)),
        )
        _accept(mom_root, s.id, _seed_key(root / "etc" / "salt" / "pki" / "minion"))
        daemons += [Daemon(s.id, "master", root, master.config_dir), Daemon(s.id, "syndic", root, master.config_dir)]

        minions = []
        for m in s.minions:
            mroot = workdir / m.id
            minion = MinionHandle(
                id=m.id,
                syndic=s.id,
                env=m.env,
                roles=m.roles,
                datacenter=m.datacenter,
                root_dir=mroot,
                config_dir=mroot / "conf",
                bindir=bindir,
            )
            values = local_minion_values(
                minion, master, user=user, job_cache=(job_cache.host, job_cache.port) if job_cache else None
            )
            _write(minion.config_file, templates.render("minion", **values))
            _accept(root, m.id, _seed_key(mroot / "etc" / "salt" / "pki" / "minion"))
            minion.sandbox.mkdir(parents=True, exist_ok=True)
            daemons.append(Daemon(m.id, "minion", mroot, minion.config_dir))
            minions.append(minion)
        syndics.append(
            SyndicHandle(
                id=s.id,
                env=s.env,
                datacenter=s.datacenter,
                master=master,
                file_roots=file_roots,
                pillar_dir=pillar_dir,
                minions=tuple(minions),
            )
        )
        write_local_pillar(pillar_dir, tuple(minions), config=config, repo=repo)

    assert config.source is not None
    derived = workdir / "pipeline.yaml"
    _write(
        derived,
        derive_pipeline_config(
            config.source, workdir, spec, job_cache=job_cache, job_cache_everywhere=job_cache_everywhere
        ),
    )
    (workdir / "state").mkdir(exist_ok=True)
    load_config(derived)  # the derived file must validate like the original; fail here, not in a later stage
    return Topology(
        workdir=workdir,
        spec=spec,
        mom=mom,
        syndics=tuple(syndics),
        daemons=tuple(daemons),
        pipeline_config=derived,
        bindir=bindir,
        job_cache=job_cache,
    )


# ----------------------------------------------------------------------------------------------------------
# State file


def _save(topo: Topology, *, repo: Path, ports: dict[str, dict[str, int]], ready: bool) -> None:
    data = {
        "version": 1,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "repo": str(repo),
        "bindir": str(topo.bindir),
        "spec": topo.spec.model_dump(mode="json"),
        "ports": ports,
        "launch_pids": topo.launch_pids,
        "timings": topo.timings,
        "ready": ready,
        "job_cache": (
            {"host": topo.job_cache.host, "port": topo.job_cache.port, "directory": str(topo.job_cache.directory)}
            if topo.job_cache else None
        ),
    }
    _write(topo.workdir / STATE_FILE, json.dumps(data, indent=2) + "\n")


def _read_state(workdir: Path) -> dict[str, Any]:
    path = workdir / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TopologyError(
            f"{workdir} holds no topology ({STATE_FILE} is missing)",
            hint=f"start one with 'saltpipe topology up --workdir {workdir}'",
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise TopologyError(
            f"{path}: unreadable ({exc})", hint=f"'saltpipe topology down --workdir {workdir}' and 'up' again"
        ) from exc


def load(workdir: Path) -> Topology:
    """Handles on the topology ``up`` built in ``workdir`` (running or not), from another process."""
    workdir = workdir.resolve()
    state = _read_state(workdir)
    spec = TopologySpec.model_validate(state["spec"])
    bindir = Path(state["bindir"])
    ports = state["ports"]
    mom_root = workdir / spec.mom

    def master(node: str) -> MasterHandle:
        root = workdir / node
        return MasterHandle(node, root, root / "conf", LOOPBACK, ports[node]["publish"], ports[node]["ret"], bindir)

    daemons = [Daemon(spec.mom, "master", mom_root, mom_root / "conf")]
    syndics = []
    for s in spec.syndics:
        root = workdir / s.id
        daemons += [Daemon(s.id, "master", root, root / "conf"), Daemon(s.id, "syndic", root, root / "conf")]
        minions = []
        for m in s.minions:
            mroot = workdir / m.id
            minions.append(MinionHandle(m.id, s.id, m.env, m.roles, m.datacenter, mroot, mroot / "conf", bindir))
            daemons.append(Daemon(m.id, "minion", mroot, mroot / "conf"))
        syndics.append(
            SyndicHandle(s.id, s.env, s.datacenter, master(s.id), root / "file_roots", root / "pillar", tuple(minions))
        )
    return Topology(
        workdir=workdir,
        spec=spec,
        mom=master(spec.mom),
        syndics=tuple(syndics),
        daemons=tuple(daemons),
        pipeline_config=workdir / "pipeline.yaml",
        bindir=bindir,
        launch_pids=dict(state.get("launch_pids", {})),
        timings=dict(state.get("timings", {})),
        job_cache=_job_cache_of(state),
    )


def _job_cache_of(state: dict[str, Any]) -> RedisServer | None:
    cache = state.get("job_cache")
    if not cache:
        return None
    return RedisServer(str(cache["host"]), int(cache["port"]), Path(cache["directory"]))


def status(workdir: Path) -> TopologyStatus:
    """Every daemon's pid and state."""
    return load(workdir).status()


def down(workdir: Path, *, timeout: float = 10.0) -> TopologyStatus:
    """Stop every daemon of the topology in ``workdir``; its files stay (``up`` again reuses keys and ports)."""
    return load(workdir).stop(timeout=timeout)


# ----------------------------------------------------------------------------------------------------------
# Starting


def _check_socket_paths(workdir: Path, spec: TopologySpec) -> None:
    longest = max([spec.mom, *(s.id for s in spec.syndics), *(m.id for m in spec.minions)], key=len)
    path = f"{workdir}/{longest}{_LONGEST_SOCKET}"
    if len(path.encode()) > _MAX_SOCKET_PATH:
        raise TopologyError(
            f"work directory {workdir} is too long: Salt's sockets below it ({path}) would exceed "
            f"the {_MAX_SOCKET_PATH}-byte limit of unix socket paths",
            hint="use a shorter --workdir, e.g. /tmp/saltpipe",
        )


def _choose_ports(workdir: Path, spec: TopologySpec) -> dict[str, dict[str, int]]:
    nodes = [spec.mom, *(s.id for s in spec.syndics)]
    try:
        previous = _read_state(workdir).get("ports", {})
    except TopologyError:
        previous = {}
    # Keep the previous ports when they are still free: minions and syndics of a restarted topology then
    # find their masters where they were.
    if all(n in previous for n in nodes) and all(
        _port_free(p) for n in nodes for p in previous[n].values()
    ):
        return {n: dict(previous[n]) for n in nodes}
    fresh = iter(_free_ports(2 * len(nodes)))
    return {n: {"publish": next(fresh), "ret": next(fresh)} for n in nodes}


def _start(topo: Topology, daemons: list[Daemon]) -> dict[str, subprocess.Popen[bytes]]:
    started = {}
    for daemon in daemons:
        started[daemon.name] = procs.spawn(daemon, topo.bindir)
        topo.launch_pids[daemon.name] = started[daemon.name].pid
    return started


def _log_tail(daemon: Daemon, lines: int = 15) -> str:
    chunks = []
    for path in (daemon.console_log, daemon.log_file):
        try:
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            continue
        if text:
            chunks.append(f"--- {path}\n" + "\n".join(text))
    return "\n".join(chunks) or "(no output)"


def _wait_masters(topo: Topology, started: dict[str, subprocess.Popen[bytes]], deadline: float) -> None:
    pending = {m.id: m for m in topo.masters}
    while pending:
        for node, master in list(pending.items()):
            proc = started[f"{node}/master"]
            if proc.poll() is not None:
                daemon = topo._daemon(f"{node}/master")  # pylint: disable=protected-access
                raise TopologyError(
                    f"{daemon.name} exited with {proc.returncode} while starting:\n{_log_tail(daemon)}",
                    hint=f"fix the cause above; its config is {master.config_file}",
                )
            if _listening(master.ret_port) and _listening(master.publish_port):
                del pending[node]
        if pending and time.monotonic() > deadline:
            raise TopologyError(
                f"master(s) not listening in time: {', '.join(pending)}",
                hint=f"see their logs under {topo.workdir}",
            )
        if pending:
            time.sleep(0.2)  # polling interval of a readiness check, not a wait standing in for one


@contextmanager
def _stop_on_error(topo: Topology) -> Iterator[None]:
    try:
        yield
    except BaseException:
        # Leave nothing half-started behind; the error says what went wrong.
        topo.stop(timeout=10)
        raise


def up(
    workdir: Path,
    *,
    repo: Path,
    config_path: Path | None = None,
    spec_path: Path | None = None,
    timeout: float = 60.0,
    job_cache: bool = False,
    progress: Progress = _quiet,
) -> Topology:
    """Build and start the local topology in ``workdir`` and return once every minion answers ``test.ping``
    from the MoM through its syndic.

    ``repo`` is the saltpipe checkout whose ``salt/`` holds the templates, the runtime policy, the topology
    spec and (unless ``config_path``) ``pipeline.yaml``. Raises :class:`TopologyError` when the topology is
    already running in ``workdir`` or does not become ready in ``timeout`` seconds (everything it started is
    stopped again). Reuses keys and, when free, ports of an earlier ``up`` in the same ``workdir``.

    A redis-server (the external job cache, docs/job-cache.md) runs beside the daemons when an environment of
    the config has a ``job_cache`` (it is pointed at this server in the derived config), or for every
    environment with ``job_cache``; the minions' configs name it for Salt's ``redis`` returner.
    """
    t0 = time.monotonic()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / STATE_FILE).exists():
        current = status(workdir)
        if not current.stopped:
            raise TopologyError(
                f"a topology is already {current.summary} in {workdir}",
                hint=f"'saltpipe topology status --workdir {workdir}', or 'down' it first",
            )
    config = load_config(config_path or repo / DEFAULT_CONFIG)
    spec = load_spec(spec_path or repo / DEFAULT_SPEC, config)
    _check_socket_paths(workdir, spec)
    ports = _choose_ports(workdir, spec)
    bindir = procs.salt_bindir()

    cache = None
    if job_cache or any(env.job_cache for env in config.environments.values()):
        progress("starting redis-server (the external job cache)")
        cache = start_redis(workdir / "redis")
    progress(f"rendering configs from {repo / 'salt' / 'daemons'} into {workdir}")
    try:
        topo = _build(workdir, repo, config, spec, ports, bindir, job_cache=cache, job_cache_everywhere=job_cache)
    except BaseException:
        if cache is not None:
            stop_redis(cache)
        raise
    topo.timings["build_seconds"] = round(time.monotonic() - t0, 2)
    deadline = t0 + timeout

    with _stop_on_error(topo):
        masters = [d for d in topo.daemons if d.kind == "master"]
        progress(f"starting {len(masters)} masters: {', '.join(d.node for d in masters)}")
        started = _start(topo, masters)
        _save(topo, repo=repo, ports=ports, ready=False)
        _wait_masters(topo, started, deadline)
        topo.timings["masters_seconds"] = round(time.monotonic() - t0, 2)

        rest = [d for d in topo.daemons if d.kind != "master"]
        for daemon in rest:
            # Its re-appearance is the evidence that the daemon authenticated (wait_authenticated); the
            # masters keep their keys across restarts, so nothing is lost by learning them again.
            _master_key_cache(daemon).unlink(missing_ok=True)
        progress(f"starting {sum(d.kind == 'syndic' for d in rest)} syndics and {len(topo.minions)} minions")
        started.update(_start(topo, rest))
        _save(topo, repo=repo, ports=ports, ready=False)
        topo.wait_authenticated(timeout=max(5.0, deadline - time.monotonic()))
        topo.timings["authenticated_seconds"] = round(time.monotonic() - t0, 2)
        progress("every syndic and minion authenticated; pinging every minion from the MoM")
        topo.wait_ready(timeout=max(5.0, deadline - time.monotonic()), progress=progress)
        topo.timings["ready_seconds"] = round(time.monotonic() - t0, 2)
    _save(topo, repo=repo, ports=ports, ready=True)
    progress(f"ready in {topo.timings['ready_seconds']:.1f}s")
    return topo
