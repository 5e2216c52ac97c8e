"""``saltpipe fixtures import``: real grains and pillar of sample minions as lint fixtures (docs/adopting.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline.cli_options import file_option
from pipeline.commands.salt_options import salt_flags, salt_options
from pipeline.context import AppContext
from pipeline.errors import UsageError
from pipeline.salt_client.polling import SystemClock


@click.group()
def fixtures() -> None:
    """Lint fixtures: the grains and pillar every SLS is rendered against."""


@fixtures.command("import")
@click.argument("minions", nargs=-1)
@file_option("--from", "grains_files", multiple=True, exists=True,
             help="Grains from a file of `salt-call grains.items --out json` (or `salt M grains.items --out json`). Repeatable.")
@file_option("--pillar-from", "pillar_files", multiple=True, exists=True,
             help="Pillar from a file of `salt-call pillar.items --out json`. Repeatable. Secrets are redacted.")
@click.option("--target", default=None, metavar="EXPR",
              help="Sample the minions of this compound target instead of naming them: --per-role per grain `roles`.")
@click.option("--per-role", type=click.IntRange(min=1), default=1, show_default=True, help="Minions sampled per role with --target.")
@click.option("--env", "environment", default=None, help="Write this environment's fixtures (default: the lint-only fixtures).")
@click.option("--replace", is_flag=True, help="Drop the fixture minions not imported now (e.g. those saltpipe init wrote).")
@salt_options
@click.pass_obj
def import_command(app: AppContext, minions: tuple[str, ...], grains_files: tuple[Path, ...], pillar_files: tuple[Path, ...],
                   target: str | None, per_role: int, environment: str | None, replace: bool, **opts: Any) -> None:
    """Make real minions fixture minions: MINION... asks the MoM (grains.items and pillar.items, one job to
    exactly those ids), --target EXPR samples --per-role minions per grain `roles` of a target, --from /
    --pillar-from read salt's JSON output instead.

    Pillar values under keys like password, secret, token, key, private and every PEM block are replaced by a
    placeholder before anything is written. Exit 0; 2 when a minion did not answer or a file is not salt JSON.
    """
    from pipeline.adopt.importer import read_files, write_fixtures

    if sum((bool(minions), bool(grains_files), target is not None)) != 1:
        raise UsageError("give one of: MINION ids, --target EXPR (both asked through the MoM) or --from FILE",
                         hint="saltpipe fixtures import web-1 db-1   or   --target 'G@env:test' --per-role 1   or   --from web-1.json")
    cfg = app.config
    fx = cfg.fixtures_for(environment, app.repo) if environment else cfg.lint_fixtures(app.repo)
    if minions or target:
        from pipeline.adopt.importer import IMPORT_FUNCTIONS, fetch_from_salt
        from pipeline.salt_access import make_client

        with make_client(app.config, salt_flags(opts), extra_functions=IMPORT_FUNCTIONS) as client:
            fetched = fetch_from_salt(client, SystemClock(), minions=minions, target=target, per_role=per_role,
                                      timeout=opts["job_timeout"], poll_interval=opts["poll_interval"])
        grains, pillars = fetched.grains, fetched.pillars
        for role, ids in fetched.sampled.items():
            click.echo(f"  {role}: {', '.join(ids)}")
    else:
        grains, pillars = read_files(grains_files), read_files(pillar_files)
    result = write_fixtures(fx.grains, fx.pillar, grains, pillars, replace=replace)
    click.echo(f"imported {len(result.minions)} minion(s): {', '.join(result.minions)}")
    if result.dropped:
        click.echo(f"dropped: {', '.join(result.dropped)}")
    click.echo(f"pillar values redacted: {result.redacted}")
    for path in result.files:
        click.echo(f"wrote {path.relative_to(app.repo) if path.is_relative_to(app.repo) else path}")
    click.echo("next: saltpipe lint")


COMMANDS = [fixtures]
