"""``saltpipe init``: adopt an existing Salt repository (docs/adopting.md)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.context import AppContext


@click.command("init")
@click.option(
    "--layout",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "states", "salt", "srv", "root"]),
    help="Where Salt's file_roots is: detect it, states/, salt/, srv/salt/, or the repository's top (gitfs).",
)
@click.option("--force", is_flag=True, help="Rewrite the config and fixtures saltpipe init wrote before (default: keep them).")
@click.pass_obj
def init(app: AppContext, layout: str, force: bool) -> None:
    """Adopt this repository: detect where the SLS, _modules/, _states/, top files and pillar live, and write a
    lint-only salt/pipeline.yaml (no environments needed until you deploy), fixture grains for common OS
    families and a fixture pillar from the formulas' pillar.example / defaults.yaml.

    Files that exist are kept unless --force. Prints what it found and the next command. Exit 0, or 2 when
    the repository holds no SLS.
    """
    from pipeline.adopt.init import InitOptions, init_repo

    result = init_repo(InitOptions(repo=app.repo, layout=layout, force=force))
    det = result.detection

    def rel(path: Path) -> str:
        return path.relative_to(app.repo).as_posix()

    click.echo(f"file roots (saltenv base): {', '.join(r + '/' if r != '.' else '. (the repository top)' for r in det.roots)}")
    if det.formulas:
        click.echo(f"formulas ({len(det.formulas)}):")
        for f in det.formulas:
            parts = [f"{f.sls} SLS"] + (["map.jinja"] if f.map_jinja else []) + (["defaults.yaml"] if f.defaults else [])
            parts += [rel(p) for p in f.pillar_examples]
            click.echo(f"  {rel(f.path)}/: {', '.join(parts)}")
    if det.loose_sls:
        click.echo(f"SLS at the top of a root: {det.loose_sls}")
    click.echo(f"top files: {', '.join(rel(p) for p in det.top_files) or 'none (lint renders every SLS, no top.sls check)'}")
    click.echo(f"extension modules: {', '.join(e + '/' for e in det.extensions) or 'none'}")
    if det.pillar_dirs:
        click.echo(f"pillar trees (not served, not linted as states): {', '.join(p + '/' for p in det.pillar_dirs)}")
    if det.exclude:
        click.echo(f"kept out of lint and releases: {', '.join(det.exclude)}")
    click.echo(f"fixture minions: {', '.join(result.fixture_minions)} (OS families mentioned: {', '.join(det.os_families) or 'none'})")
    click.echo(f"fixture pillar keys: {', '.join(sorted(result.pillar_sources)) or 'none'}")
    for line in result.skipped:
        click.echo(f"  not used: {line}")
    for path in result.written:
        click.echo(f"wrote {rel(path)}")
    for path in result.kept:
        click.echo(f"kept {rel(path)} (exists; --force rewrites it)")
    click.echo("next: saltpipe lint    (then commit salt/, and see docs/adopting.md for real fixtures and a first release)")


COMMANDS = [init]
