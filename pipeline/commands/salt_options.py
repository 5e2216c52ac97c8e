"""The options of every command that talks to Salt (``rollout``, ``rollback``, ``impact``, ``fixtures import``).

The command line only says what it was given (:class:`~pipeline.salt_access.SaltFlags`); which way to the
MoM results, and the client itself, is :func:`pipeline.salt_access.make_client`'s to decide. The retry and
timeout options are read by each command for its own waiting.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import click

from pipeline.cli_options import file_option
from pipeline.salt_access import SaltFlags


def salt_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the Salt options to a click command (they arrive in its ``**opts``; :func:`salt_flags` reads them)."""
    options = [
        file_option("--master-config", default=lambda: os.environ.get("SALTPIPE_MASTER_CONFIG"),
                    help="The MoM's master config: publish with Salt's LocalClient. Overrides salt.master_config / "
                         "salt.api of the config. [env SALTPIPE_MASTER_CONFIG]"),
        click.option("--salt-api", "salt_api", default=lambda: os.environ.get("SALTPIPE_SALT_API_URL"),
                     help="salt-api (rest_cherrypy) URL of the MoM; overrides the config's salt section. "
                          "[env SALTPIPE_SALT_API_URL]"),
        click.option("--salt-api-user", default=lambda: os.environ.get("SALTPIPE_SALT_API_USER"),
                     help="eauth user (default: salt.api.user). [env SALTPIPE_SALT_API_USER; password: "
                          "SALTPIPE_SALT_API_PASSWORD]"),
        click.option("--salt-api-eauth", default=lambda: os.environ.get("SALTPIPE_SALT_API_EAUTH"),
                     help="eauth backend (default: salt.api.eauth, else pam). [env SALTPIPE_SALT_API_EAUTH]"),
        file_option("--salt-api-ca", help="CA bundle for the salt-api certificate."),
        click.option("--syndic-config", "syndic_configs", multiple=True, metavar="SYNDIC=PATH",
                     help="A syndic master's config on this host: look lost returns up in its job cache and "
                          "attest through its fileserver. Overrides the syndic's master_config. Repeatable."),
        click.option("--syndic-api", "syndic_apis", multiple=True, metavar="SYNDIC=URL",
                     help="salt-api of a syndic master (same credentials), for lost-return lookups. Repeatable."),
        click.option("--job-timeout", type=float, default=300.0, show_default=True,
                     help="Seconds to wait for returns before looking them up."),
        click.option("--lookup-retries", type=int, default=5, show_default=True,
                     help="Lookup rounds (MoM cache, syndic cache, find_job) before a minion counts as missing."),
        click.option("--lookup-interval", type=float, default=10.0, show_default=True,
                     help="Seconds between lookup rounds."),
        click.option("--poll-interval", type=float, default=1.0, show_default=True,
                     help="Longest wait between polls for returns (LocalClient wakes as soon as a return "
                          "arrives on the MoM's event bus; salt-api is polled at this interval)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def salt_flags(opts: Mapping[str, Any]) -> SaltFlags:
    """The Salt flags of a command's ``**opts`` (those :func:`salt_options` added)."""
    return SaltFlags(
        master_config=opts["master_config"],
        api_url=opts["salt_api"],
        api_user=opts["salt_api_user"],
        api_eauth=opts["salt_api_eauth"],
        api_ca=opts["salt_api_ca"],
        syndic_configs=tuple(opts.get("syndic_configs", ())),
        syndic_apis=tuple(opts.get("syndic_apis", ())),
    )
