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
COMMANDS = [config]
