"""``saltpipe serve``: the read-only status page over the state directory (docs/status-page.md).

Thin: resolve the bind address and the token, build :class:`~pipeline.web.data.StatusData`, serve. Exit 2 when
bound off loopback without a token, or when the token file or master config cannot be read.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from pipeline.cli_options import file_option
from pipeline.context import AppContext
from pipeline.errors import UsageError
from pipeline.web.server import DEFAULT_BIND, TOKEN_ENV, check_bind, parse_bind, serve_forever


def read_token(token_file: Path | None) -> str | None:
    """The token from ``--token-file`` or ``SALTPIPE_SERVE_TOKEN`` (never from the command line: ps shows it)."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: {exc.strerror}", hint="give a readable file") from None
        if not token:
            raise UsageError(f"--token-file {token_file} is empty", hint="write a long random string into it")
        return token
    return os.environ.get(TOKEN_ENV, "").strip() or None


def status_app(app: AppContext, master_config: Path | None, token: str | None):  # type: ignore[no-untyped-def]
    """The ASGI app for ``app``'s config and state directory (also what ``saltpipe demo --serve`` serves)."""
    from pipeline.web.app import create_app  # pylint: disable=import-outside-toplevel
    from pipeline.web.data import StatusData  # pylint: disable=import-outside-toplevel

    job_cache = None
    master = master_config or (app.config.salt.master_config if app.config.salt else None)
    if master is not None:
        from pipeline.web.jobcache import MasterJobCache  # pylint: disable=import-outside-toplevel

        job_cache = MasterJobCache(master)
    return create_app(StatusData(app.config, app.state_dir(), app.repo, job_cache), token=token)


@click.command("serve")
@click.option("--bind", default=DEFAULT_BIND, show_default=True, metavar="HOST:PORT",
              help="Where to listen. Off loopback a token is required.")
@file_option("--token-file",
             help=f"File holding the access token (default: ${TOKEN_ENV}). Required off loopback.")
@file_option("--master-config", default=lambda: os.environ.get("SALTPIPE_MASTER_CONFIG"),
             help="The MoM's master config: show each cell's state output from its job cache "
                  "(default: salt.master_config of the config). [env SALTPIPE_MASTER_CONFIG]")
@click.pass_obj
def serve(app: AppContext, bind: str, token_file: Path | None, master_config: Path | None) -> None:
    """Serve the read-only status page: environments, releases, rollouts (batch x minion grid), audit.

    Reads the state directory on every request; never changes anything. Binds to loopback by default; any
    other address needs a token (clients send `Authorization: Bearer TOKEN`, a browser opens `/?token=TOKEN`
    once). Runs until Ctrl-C.
    """
    host, port = parse_bind(bind)
    token = read_token(token_file)
    check_bind(host, token)
    asgi = status_app(app, master_config, token)
    click.echo(f"saltpipe status page: http://{host}:{port}/  (state directory {app.state_dir()}; Ctrl-C stops)",
               err=True)
    serve_forever(asgi, host, port)


def demo_page(repo: Path, workdir: Path, keep_serving: bool, echo=click.echo, wait=None) -> None:  # type: ignore[no-untyped-def]
    """The end of ``saltpipe demo``: the URL of its run's page (the last production rollout), and with
    ``keep_serving`` the page itself on loopback until Ctrl-C (``wait(url)`` instead, in tests). Nothing when the
    demo made no topology config."""
    from pipeline.rollout import RolloutStore  # pylint: disable=import-outside-toplevel
    from pipeline.web.server import ServerThread  # pylint: disable=import-outside-toplevel

    config = workdir / "topo" / "pipeline.yaml"
    if not config.is_file():
        return
    app = AppContext.create(repo, config)
    latest = RolloutStore(app.state_dir()).latest("production")
    path = f"/rollouts/production/{latest}" if latest else "/"
    if not keep_serving:
        # Two short lines: a terminal (or rich, at 120 columns) must not wrap the URL.
        echo(f"status page of this run: http://{DEFAULT_BIND}{path}")
        echo(f"  (serve it: saltpipe --config {config} serve)")
        return
    try:
        server = ServerThread(status_app(app, None, None), "127.0.0.1", 8080).start()
    except Exception:  # pylint: disable=broad-except  # port 8080 taken: any free port will do
        server = ServerThread(status_app(app, None, None), "127.0.0.1", 0).start()
    echo(f"status page of this run: {server.url}{path}")
    echo("  (saltpipe demo --serve: Ctrl-C stops it)")
    try:
        if wait is not None:
            wait(server.url + path)
        else:
            while server.thread.is_alive():
                server.thread.join(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


COMMANDS = [serve]
