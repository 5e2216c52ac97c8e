"""The ``saltpipe`` command line: thin. It parses, calls a stage, formats the result, sets the exit code.

Exit codes: 0 ok; 1 findings or a failed gate; 2 usage, configuration or infrastructure error.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from pathlib import Path

import click

from pipeline import __version__
from pipeline.cli_options import dir_option, file_option
from pipeline.errors import EXIT_ERROR, SaltpipeError

#: Every top-level command: name -> "module:attribute", imported only when that command runs (or for --help).
#: Importing every area up front cost ~0.8 s per invocation (Salt, pydantic, gitpython, rich); a command only
#: pays for what it uses. THE place to add an area: one line here. A module under pipeline/commands/ with a
#: ``COMMANDS`` list that this table does not name still works (it is imported when the table cannot answer),
#: and tests/unit/cli/test_cli.py fails until it is added here.
COMMAND_TABLE: dict[str, str] = {
    "config": "pipeline.commands.config:config",
    "demo": "pipeline.commands.demo:demo",
    "fixtures": "pipeline.commands.fixtures:fixtures",
    "impact": "pipeline.commands.impact:impact",
    "init": "pipeline.commands.init:init",
    "lint": "pipeline.commands.lint:lint",
    "policy": "pipeline.commands.policy:policy",
    "release": "pipeline.commands.release:release",
    "report": "pipeline.commands.review:report_group",
    "review": "pipeline.commands.review:review_command",
    "rollback": "pipeline.commands.rollout:rollback",
    "rollout": "pipeline.commands.rollout:rollout",
    "serve": "pipeline.commands.serve:serve",
    "status": "pipeline.commands.release:status",
    "sync": "pipeline.commands.release:sync",
    "topology": "pipeline.commands.topology:topology",
}


#: ``-v`` count -> level of the root logger (and so of every logger, Salt's included, that sets none).
_LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (click's and pytest's captures swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(verbosity: int = 0) -> None:
    """Log to stderr, warnings and above (``verbosity`` 1: info, 2 or more: debug); idempotent.

    Run before Salt is imported: Salt, finding the root logger without a handler, sets it to its lowest level
    (GARBAGE), so every ``log.trace`` of the loader builds a record - and the first ``logging.warning`` anywhere
    would then install a handler that prints them all. With a handler in place Salt leaves the root alone.
    """
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("saltpipe: %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(_LOG_LEVELS[min(max(verbosity, 0), len(_LOG_LEVELS) - 1)])


def _load(target: str) -> click.Command:
    module_name, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module_name), attr)
    if not isinstance(command, click.Command):  # a typo in the table must not surface as an AttributeError later
        raise TypeError(f"{target} is not a click command")
    return command


class LazyGroup(click.Group):
    """A click group whose subcommands come from :data:`COMMAND_TABLE` and are imported on first use.

    Commands added the usual way (``add_command``) still win. Modules of :mod:`pipeline.commands` that the
    table does not name are imported, and their ``COMMANDS`` registered, only when a lookup misses or when all
    commands are listed - the slow path that keeps a new area working before it is added to the table.
    """

    def __init__(self, *args: object, table: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.table = table
        self._discovered = False

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        from pipeline import commands

        named = {target.partition(":")[0] for target in self.table.values()}
        for info in pkgutil.iter_modules(commands.__path__):
            module_name = f"{commands.__name__}.{info.name}"
            if module_name in named or info.name.startswith("_"):
                continue
            module = importlib.import_module(module_name)
            for command in getattr(module, "COMMANDS", ()):
                if command.name not in self.table:
                    self.commands.setdefault(command.name, command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._discover()
        return sorted(set(self.commands) | set(self.table))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self.table:
            command = _load(self.table[cmd_name])
            self.commands[cmd_name] = command
            return command
        self._discover()
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    table=COMMAND_TABLE,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@dir_option("--repo", help="The saltpipe checkout to work on (default: the Git checkout around the current directory).")
@file_option("--config", "config_path", help="Pipeline config file (default: salt/pipeline.yaml in the checkout).")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log more to stderr: -v info, -vv debug (default: warnings and errors only).",
)
@click.version_option(__version__, prog_name="saltpipe")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, config_path: Path | None, verbose: int) -> None:
    """saltpipe: Git is the only way into the Salt fleet.

    MR checks (lint, policy, tests) -> review gate -> immutable release -> sync to every syndic's
    file_roots -> canary-first rollout in gated batches, with halt and rollback.
    """
    configure_logging(verbose)
    from pipeline.context import AppContext  # pydantic and the config model: only once a command runs

    ctx.obj = AppContext.create(repo, config_path)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn :class:`SaltpipeError` into exit code 2 with a clear message."""
    # Before anything imports Salt (a command module may, while click resolves the command; see configure_logging).
    configure_logging()
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
