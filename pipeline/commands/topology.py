"""``saltpipe topology up|status|down``: a local MoM -> syndics -> minions topology on loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from pipeline.cli_options import dir_option, text_or_json
from pipeline.context import AppContext
from pipeline.errors import EXIT_FINDINGS, UsageError
from pipeline.topology import Topology, TopologyStatus
from pipeline.topology import down as topology_down
from pipeline.topology import load as topology_load
from pipeline.topology import up as topology_up
from pipeline.topology.scale import DEFAULT_SYNDICS, ready_timeout

#: Short on purpose: Salt's unix sockets live below it and their paths stop at 107 bytes.
DEFAULT_WORKDIR = Path("/tmp/saltpipe-topology")

_workdir_option = dir_option(
    "--workdir",
    default=lambda: os.environ.get("SALTPIPE_TOPOLOGY_WORKDIR", str(DEFAULT_WORKDIR)),
    show_default=f"$SALTPIPE_TOPOLOGY_WORKDIR or {DEFAULT_WORKDIR}",
    help="Directory holding the topology's configs, keys, logs, file_roots and derived pipeline.yaml.",
)


@click.group()
def topology() -> None:
    """A local Salt topology (MoM -> syndic masters -> minions) on loopback, for the demo and for trying saltpipe.

    The shape comes from salt/daemons/local-topology.yaml and salt/pipeline.yaml, the daemon configs from the
    templates in salt/daemons/ (docs/topology.md).
    """


def _status_dict(topo: Topology, status: TopologyStatus) -> dict[str, object]:
    data = status.as_dict()
    data["pipeline_config"] = str(topo.pipeline_config)
    data["mom"] = {"id": topo.mom.id, "config_dir": str(topo.mom.config_dir), "ret_port": topo.mom.ret_port}
    data["syndics"] = [
        {
            "id": s.id,
            "env": s.env,
            "config_dir": str(s.master.config_dir),
            "file_roots": str(s.file_roots),
            "minions": list(s.minion_ids),
        }
        for s in topo.syndics
    ]
    data["job_cache"] = (
        {"url": topo.job_cache.url, "directory": str(topo.job_cache.directory)} if topo.job_cache else None
    )
    data["timings"] = topo.timings
    return data


def _echo_status(topo: Topology, status: TopologyStatus, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(_status_dict(topo, status), indent=2))
        return
    click.echo(f"topology in {status.workdir}: {status.summary}")
    for d in status.daemons:
        pid = str(d.pid) if d.pid is not None else "-"
        click.echo(f"  {d.name:28} {d.state:8} pid {pid:>7}  {d.log_file}")


@topology.command("up")
@_workdir_option
@click.option("--timeout", type=float, default=None,
              help="Seconds until every minion must answer.  [default: 60; with --minions, 60 + 3 per minion]")
@click.option("--minions", type=click.IntRange(min=1), default=None,
              help="A larger fleet instead of salt/daemons/local-topology.yaml: this many light minions over "
                   "--syndics syndic masters (docs/topology.md, 'A larger fleet'). Tests and the demo use the default.")
@click.option("--syndics", type=click.IntRange(min=1), default=None,
              help=f"With --minions: syndic masters in all; production gets the added ones.  "
                   f"[default: {DEFAULT_SYNDICS}]")
@click.option("--job-cache", is_flag=True, default=False,
              help="Run a redis-server as every environment's external job cache (docs/job-cache.md). Without "
                   "it, one runs only when an environment of the config has a job_cache.")
@text_or_json
@click.pass_obj
def up(  # pylint: disable=too-many-arguments
    app: AppContext, workdir: Path, timeout: float | None, minions: int | None, syndics: int | None, job_cache: bool,
    fmt: str,
) -> None:
    """Start the topology and return once every minion answers test.ping from the MoM through its syndic.

    The daemons keep running after this command exits; 'status' and 'down' find them again. Exit 0 when
    ready, 2 when it could not be started (everything it started is stopped again).
    """
    if syndics is not None and minions is None:
        # The default topology's shape is salt/daemons/local-topology.yaml's: a syndic count alone would be
        # silently ignored, and the operator would measure a fleet other than the one asked for.
        raise UsageError("--syndics is only meaningful with --minions",
                         hint="add --minions N, or drop --syndics for the default topology")
    progress = (lambda msg: click.echo(msg, err=True)) if fmt == "text" else (lambda msg: None)
    if timeout is None:
        timeout = ready_timeout(minions)
    topo = topology_up(
        workdir, repo=app.repo, config_path=app.config_path, timeout=timeout, job_cache=job_cache,
        minions=minions, syndics=DEFAULT_SYNDICS if syndics is None else syndics, progress=progress,
    )
    status = topo.status()
    _echo_status(topo, status, fmt)
    if fmt == "text":
        click.echo(
            "\nTry:\n"
            f"  saltpipe --config {topo.pipeline_config} config check\n"
            f"  {topo.bindir / 'salt'} -c {topo.mom.config_dir} -C 'G@saltpipe_env:test' test.ping\n"
            f"  saltpipe topology down --workdir {topo.workdir}"
        )


@topology.command("status")
@_workdir_option
@text_or_json
def status(workdir: Path, fmt: str) -> None:
    """Each daemon, its pid and its state (running, stopped, stale, zombie); the job cache's redis-server too
    when the topology runs one.

    Exit 0 when every daemon runs, 1 when some or all do not, 2 when there is no topology in the directory.
    """
    topo = topology_load(workdir)
    current = topo.status()
    _echo_status(topo, current, fmt)
    if not current.running:
        raise click.exceptions.Exit(EXIT_FINDINGS)


@topology.command("down")
@_workdir_option
@text_or_json
def down(workdir: Path, fmt: str) -> None:
    """Stop every daemon of the topology (its files stay: a later 'up' reuses keys and ports)."""
    topo = topology_load(workdir)
    final = topology_down(workdir)
    _echo_status(topo, final, fmt)
    if not final.stopped:
        raise click.exceptions.Exit(EXIT_FINDINGS)


COMMANDS = [topology]
