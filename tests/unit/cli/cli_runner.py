"""Running ``saltpipe`` as a user does (``pipeline.cli.main``: errors and hints formatted, exit codes set) inside
click's test runner, which captures stdout and stderr apart."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from pipeline.cli import main


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


def saltpipe(*argv: str, env: dict[str, str] | None = None) -> Ran:
    """``saltpipe ARGV`` through :func:`pipeline.cli.main` in a :class:`click.testing.CliRunner` isolation."""
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    with runner.isolation(env=env) as streams:
        code = 0
        try:
            main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        out, err = streams[0], streams[1]
        return Ran(code, out.getvalue().decode(), err.getvalue().decode() if err is not None else "")
