"""``saltpipe lint``: all MR static checks (pylint, SLS render and structure, policy)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.cli_options import file_option
from pipeline.context import AppContext
from pipeline.findings import Report
from pipeline.formatters import get_formatter, names
from pipeline.userfiles import write_file


def format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--format`` and ``--output``, shared with ``saltpipe policy check``."""
    func = file_option(
        "--output", help="Write the report in --format to FILE; the text report still goes to stdout for the job log."
    )(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(names()),
        default="text",
        show_default=True,
        help="text (grouped by file), json, codequality (GitLab Code Quality), junit.",
    )(func)


def emit(report: Report, fmt: str, output: Path | None) -> None:
    """Print (or write) the report; never decides the exit code."""
    text = get_formatter(fmt).format(report)
    if output is None:
        click.echo(text, nl=False)
        return
    write_file(output, text, what="the report", hint="choose a writable --output path")
    click.echo(get_formatter("text").format(report), nl=False)
    click.echo(f"{fmt} report written to {output}")


@click.command("lint")
@format_option
@click.option("--changed-since", metavar="REF", default=None, help="MR mode: check what changed since REF (and the SLS around it).")
@click.option("--env", "envs", multiple=True, metavar="ENV", help="Render with this environment's fixtures only (repeatable; default: all).")
@file_option("--policy", "policy_path", help="Policy file (default: salt/policy.yaml).")
@click.option("--no-pylint", is_flag=True, help="Skip pylint (render, structure and policy checks only).")
@click.option("--render-timeout", type=click.FloatRange(min=0), default=10.0, show_default=True, metavar="SECONDS",
              help="Time one render may take; a render that takes longer is a render-limit finding (0: no limit).")
@click.pass_obj
def lint(
    app: AppContext, fmt: str, output: Path | None, changed_since: str | None, envs: tuple[str, ...], policy_path: Path | None, no_pylint: bool,
    render_timeout: float,
) -> None:
    """All merge-request static checks: pylint + saltpylint on Python, every SLS rendered by Salt for every
    fixture minion (Jinja/YAML errors, top.sls, includes, duplicate IDs, state functions, requisites), and the
    policy (no cmd.* and no way around it). The report ends with the render coverage: per fixture minion the
    SLS rendered and not, the SLS no minion rendered and the Jinja branches none took (docs/lint.md).

    Exit 0 with no error-severity finding, 1 with any, 2 on a usage or configuration error.
    """
    from pipeline.lint import LintOptions, run_lint  # imported on use: keeps `saltpipe --help` fast
    from pipeline.lint.bounds import RenderLimits

    cfg = app.config
    for env in envs:
        cfg.environment(env)  # UsageError naming the known environments
    result = run_lint(
        LintOptions(repo=app.repo, config=cfg, policy_path=policy_path, environments=envs, changed_since=changed_since, pylint=not no_pylint,
                    limits=RenderLimits(timeout=render_timeout))
    )
    emit(result.report, fmt, output)
    raise click.exceptions.Exit(result.report.exit_code)


COMMANDS = [lint]
