"""``saltpipe config ...``"""

from __future__ import annotations

import json

import click
import yaml

from pipeline.config import config_summary
from pipeline.context import AppContext


@click.group()
def config() -> None:
    """Inspect and validate salt/pipeline.yaml."""


@config.command("check")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.pass_obj
def check(app: AppContext, fmt: str) -> None:
    """Validate the config and print the effective configuration (defaults filled in).

    Exit 0 when valid; 2 with file, line, key and what to do when not.
    """
    cfg = app.config
    data = config_summary(cfg)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"# {app.config_path}: valid")
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


@config.command("schema")
@click.option("--write", is_flag=True, help="Write it to salt/pipeline.schema.json instead of printing it.")
@click.pass_obj
def schema(app: AppContext, write: bool) -> None:
    """Print the JSON Schema of salt/pipeline.yaml, generated from the config model.

    After a change to the config model, run it with --write and commit the file (a unit test fails while the
    committed schema is stale).
    """
    from pipeline.schema import SCHEMA_PATH, schema_text  # pylint: disable=import-outside-toplevel

    text = schema_text()
    if write:
        target = app.repo / SCHEMA_PATH
        target.write_text(text, encoding="utf-8")
        click.echo(f"wrote {target}")
    else:
        click.echo(text, nl=False)


COMMANDS = [config]
