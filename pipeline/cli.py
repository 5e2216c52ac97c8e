"""The ``saltpipe`` command line: thin. It parses, calls a stage, formats the result, sets the exit code.

Exit codes: 0 ok; 1 findings or a failed gate; 2 usage, configuration or infrastructure error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline import __version__
from pipeline.context import AppContext
from pipeline.errors import EXIT_ERROR, SaltpipeError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The saltpipe checkout to work on (default: the Git checkout around the current directory).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Pipeline config file (default: salt/pipeline.yaml in the checkout).",
)
@click.version_option(__version__, prog_name="saltpipe")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, config_path: Path | None) -> None:
    """saltpipe: Git is the only way into the Salt fleet.

    MR checks (lint, policy, tests) -> review gate -> immutable release -> sync to every syndic's
    file_roots -> canary-first rollout in gated batches, with halt and rollback.
    """
    ctx.obj = AppContext.create(repo, config_path)


def _register() -> None:
    """Add every command module's ``COMMANDS`` to the group.

    One module per area under :mod:`pipeline.commands`; a new area needs no edit here.
    """
    import importlib
    import pkgutil

    from pipeline import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn :class:`SaltpipeError` into exit code 2 with a clear message."""
    try:
        # In non-standalone mode click returns the code of a command that raised click.exceptions.Exit.
        rc = cli.main(args=argv, prog_name="saltpipe", standalone_mode=False)
    except SaltpipeError as exc:
        click.echo(click.style("error: ", fg="red", bold=True) + str(exc), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_ERROR if exc.exit_code != 0 else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(rc if isinstance(rc, int) else 0)
