"""``saltpipe policy ...``: the policy alone."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli_options import file_option
from pipeline.commands.lint import emit, format_option
from pipeline.commands.runtime_policy import verify_runtime_command
from pipeline.context import AppContext


@click.group("policy")
def policy() -> None:
    """The MR policy: no cmd.*, and no way around it (see docs/policy.md); and the runtime policy the running
    masters must enforce (verify-runtime, docs/runtime-policy.md)."""


@policy.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option
@click.option("--env", "envs", multiple=True, metavar="ENV", help="Render SLS with this environment's fixtures (default: all, when in a repository).")
@file_option("--policy", "policy_path", help="Policy file (default: salt/policy.yaml of the repository).")
@click.pass_obj
def check(app: AppContext, paths: tuple[Path, ...], fmt: str, output: Path | None, envs: tuple[str, ...], policy_path: Path | None) -> None:
    """Check PATHS (files or directories, from anywhere) against the policy alone.

    Files are classified by extension: .sls (rendered by Salt where possible, else read as text), .py, and
    .jinja/.j2 templates. Without PATHS: the repository's states/ and _*/ directories.
    Exit 0 with no error-severity finding, 1 with any, 2 on a usage or configuration error.
    """
    from pipeline.lint.policy_check import PolicyCheckOptions, check_paths  # imported on use

    cfg = app.config if app.config_path.is_file() else None
    if cfg is not None:
        for env in envs:
            cfg.environment(env)
    report = check_paths(PolicyCheckOptions(paths=paths, repo=app.repo, config=cfg, policy_path=policy_path, environments=envs))
    emit(report, fmt, output)
    raise click.exceptions.Exit(report.exit_code)


@policy.command("rules")
def rules() -> None:
    """List the policy rules: id, default severity, what each catches."""
    from pipeline.policy.rules import all_rules

    width = max(len(cls.id) for cls in all_rules())
    for cls in all_rules():
        click.echo(f"{cls.id:<{width}} {cls.severity.value:<8} {cls.description()}")


policy.add_command(verify_runtime_command)

COMMANDS = [policy]
