"""``saltpipe policy verify-runtime``: do the running masters enforce salt/daemons/runtime-policy.yaml?

The command lives here; the ``policy`` group (pipeline/commands/policy.py) carries it, so this module registers
nothing at the top level (it has no ``COMMANDS`` list).
"""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli_options import dir_option, file_option, text_or_json
from pipeline.config.runtime_policy import DEFAULT_POLICY, load_runtime_policy
from pipeline.context import AppContext
from pipeline.errors import EXIT_FINDINGS, ConfigError, UsageError
from pipeline.runtime_policy import MasterTarget, format_json, format_text, verify_runtime


@click.command("verify-runtime")
@dir_option("--workdir", exists=True,
            help="Verify the masters (MoM and syndic masters) of the local topology in this directory.")
@dir_option("--master-config", "master_configs", multiple=True, exists=True,
            help="A master's config directory (holding 'master'); repeat for each master. On a master host: /etc/salt.")
@file_option("--policy", "policy_path", help=f"The policy to verify against (default: {DEFAULT_POLICY} in the checkout).")
@click.option("--no-probe", is_flag=True, help="Only read the effective configuration; publish nothing.")
@text_or_json
@click.pass_obj
def verify_runtime_command(
    app: AppContext,
    workdir: Path | None,
    master_configs: tuple[Path, ...],
    policy_path: Path | None,
    no_probe: bool,
    fmt: str,
) -> None:
    """Read each master's effective configuration (master.d/ included) and probe the running master: every
    blacklisted function refused, every allowed one accepted, peer publishing off.

    Probes go to a target no minion has, so even a master that fails to refuse runs nothing. Exit 0 when
    every master matches the policy, 1 on drift (or a master that cannot be probed), 2 on an error.
    """
    masters: list[MasterTarget] = [MasterTarget(p.name if p.name != "conf" else p.parent.name, p) for p in master_configs]
    if workdir is not None:
        from pipeline.topology import load as load_topology  # only the local-topology form needs it

        masters += [MasterTarget(m.id, m.config_dir) for m in load_topology(workdir).masters]
    if not masters:
        raise UsageError(
            "no master to verify", hint="pass --workdir DIR (local topology) or --master-config DIR (repeatable)"
        )
    policy_file = policy_path or app.repo / DEFAULT_POLICY
    if not policy_file.is_file():
        # --master-config names the masters; the policy they are checked against is a file of the checkout.
        raise ConfigError(
            "runtime policy not found",
            path=policy_file,
            hint=f"pass --policy FILE, or run from a saltpipe checkout (--repo DIR) holding {DEFAULT_POLICY}",
        )
    policy = load_runtime_policy(policy_file)
    report = verify_runtime(policy, masters, probe=not no_probe)
    click.echo(format_json(report) if fmt == "json" else format_text(report))
    if not report.ok:
        raise click.exceptions.Exit(EXIT_FINDINGS)


COMMANDS: list[click.Command] = []  # registered under `saltpipe policy`
