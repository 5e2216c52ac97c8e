"""``saltpipe fixtures import``: real grains and pillar of sample minions as lint fixtures (docs/adopting.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from pipeline.commands.rollout import _salt_options
from pipeline.context import AppContext
from pipeline.errors import SaltError, UsageError

#: Read-only functions ``fixtures import`` adds to the client's allow list for its one job.
IMPORT_FUNCTIONS = ("grains.items", "pillar.items")


class _Clock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@click.group()
def fixtures() -> None:
    """Lint fixtures: the grains and pillar every SLS is rendered against."""


@fixtures.command("import")
@click.argument("minions", nargs=-1)
@click.option("--from", "grains_files", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Grains from a file of `salt-call grains.items --out json` (or `salt M grains.items --out json`). Repeatable.")
@click.option("--pillar-from", "pillar_files", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Pillar from a file of `salt-call pillar.items --out json`. Repeatable. Secrets are redacted.")
@click.option("--env", "environment", default=None, help="Write this environment's fixtures (default: the lint-only fixtures).")
@click.option("--replace", is_flag=True, help="Drop the fixture minions not imported now (e.g. those saltpipe init wrote).")
@_salt_options
@click.pass_obj
def import_command(app: AppContext, minions: tuple[str, ...], grains_files: tuple[Path, ...], pillar_files: tuple[Path, ...],
                   environment: str | None, replace: bool, **opts: Any) -> None:
    """Make real minions fixture minions: MINION... asks the MoM (grains.items and pillar.items, one job to
    exactly those ids; pick one or two per role), --from / --pillar-from read salt's JSON output instead.

    Pillar values under keys like password, secret, token, key, private and every PEM block are replaced by a
    placeholder before anything is written. Exit 0; 2 when a minion did not answer or a file is not salt JSON.
    """
    from pipeline.adopt.importer import read_files, write_fixtures

    if bool(minions) == bool(grains_files):
        raise UsageError("give either MINION ids (asked through the MoM) or --from FILE, not both or neither",
                         hint="saltpipe fixtures import web-1 db-1   or   saltpipe fixtures import --from web-1.json")
    cfg = app.config
    fx = cfg.fixtures_for(environment, app.repo) if environment else cfg.lint_fixtures(app.repo)
    if minions:
        grains, pillars = _ask(app, minions, opts)
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


def _ask(app: AppContext, minions: tuple[str, ...], opts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from pipeline.commands.rollout import mom_client
    from pipeline.impact import collect_returns

    with mom_client(app, opts, IMPORT_FUNCTIONS) as client:
        published = client.publish_chain(list(minions), [(fun, (), {}) for fun in IMPORT_FUNCTIONS])
        got = collect_returns(client, published.jid, minions, timeout=opts["job_timeout"], poll_interval=opts["poll_interval"], clock=_Clock())
    missing = sorted(set(minions) - set(got))
    if missing:
        raise SaltError(f"no return from {', '.join(missing)} (jid {published.jid})",
                        hint="check the ids (salt-key -L on the syndics) and that the minions are up, or use --from FILE")
    grains = {m: r.part("grains.items", 0).ret for m, r in got.items()}
    pillars = {m: r.part("pillar.items", 1).ret for m, r in got.items()}
    bad = sorted(m for m in got if not isinstance(grains[m], dict) or not isinstance(pillars[m], dict))
    if bad:
        raise SaltError(f"grains.items / pillar.items failed on {', '.join(bad)}", hint="run them on that minion with salt-call to see why")
    return grains, pillars


COMMANDS = [fixtures]
