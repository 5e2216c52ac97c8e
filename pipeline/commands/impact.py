"""``saltpipe impact ENV --release ID``: dry-run a release (exposed as its canary saltenv) on a sample per role.

Thin: build the Salt client and the syndic masters' configs (:func:`pipeline.salt_access.make_client`: the
config's ``salt:`` section and each syndic's ``master_config``, the same flags as ``saltpipe rollout``
overriding), call
:func:`pipeline.impact.analyse_impact`, format, set the exit code - 0 nothing would fail; 1 a state would fail
or a sampled minion did not answer; 2 usage, configuration or infrastructure error (release not exposed, master
unreachable).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pipeline.cli_options import file_option, text_or_json
from pipeline.commands.salt_options import salt_flags, salt_options
from pipeline.context import AppContext
from pipeline.errors import EXIT_FINDINGS
from pipeline.impact import ImpactContext, analyse_impact, format_text
from pipeline.salt_access import make_client, syndic_configs


@click.command("impact")
@click.argument("environment")
@click.option("--release", "release_id", required=True,
              help="The release to dry-run; it must be exposed first: saltpipe sync ENV --release ID --canary.")
@click.option("--sample-per-role", type=int, default=2, show_default=True,
              help="Minions dry-run per role (grain `roles`).")
@text_or_json
@file_option("--output",
             help="Write the JSON here (for `saltpipe report mr-note --impact-json`), whatever --format says.")
@salt_options
@click.pass_obj
def impact(app: AppContext, environment: str, release_id: str, sample_per_role: int, fmt: str,
           output: Path | None, **opts: Any) -> None:
    """What a release would change: state.apply test=True of its saltenv on a sample of minions per role.

    Aggregates per state ID the sampled minions where it would change and where it would fail. Nothing is
    applied. Exit 0 when no state would fail; 1 when one would, or a sampled minion did not answer; 2 on errors.
    """
    from pipeline.release import ReleaseStore
    from pipeline.rollout import SyncServing
    from pipeline.sync import saltenv_for

    env = app.config.environment(environment)
    release = ReleaseStore.for_state_dir(app.state_dir()).get(release_id)
    # Each syndic's master config (the config's, or --syndic-config): attestation then asks Salt's fileserver.
    serving = SyncServing(app.state_dir(), app.config.release.keep,
                          syndic_configs(app.config, environment, opts["syndic_configs"]))
    with make_client(app.config, salt_flags(opts), environment=environment) as client:
        result = analyse_impact(
            ImpactContext(
                environment=env,
                release_id=release.id,
                saltenv=saltenv_for(release.id),
                client=client,
                sample_per_role=sample_per_role,
                serving=serving,
                sha=release.commit,
                timeout=opts["job_timeout"],
                poll_interval=opts["poll_interval"],
            )
        )
    data = result.to_json()
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        format_text(result, click.echo)
    if not result.ok:
        # SystemExit, not click's Exit: pipeline.cli.main runs click with standalone_mode=False.
        sys.exit(EXIT_FINDINGS)


COMMANDS = [impact]
