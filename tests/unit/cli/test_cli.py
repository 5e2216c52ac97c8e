"""The CLI contract: --help on every command, exit codes 0 / 1 / 2, errors that name the file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pipeline.cli import cli, main

REPO = Path(__file__).resolve().parents[3]


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # list_commands/get_command, not group.commands: the top-level group loads its commands lazily.
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = prefix + (name,)
        out.append(path)
        if isinstance(command, click.Group):
            out.extend(_all_commands(command, path))
    return out


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    out, err = capsys.readouterr()
    return int(excinfo.value.code or 0), out, err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _all_commands(cli)
    assert ("config", "check") in commands and ("demo",) in commands
    for path in commands:
        code, out, _ = run(["--repo", str(REPO), *path, "--help"], capsys)
        assert code == 0, path
        assert "Usage: saltpipe" in out and " ".join(path) in out, path


def test_config_check_prints_effective_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--repo", str(REPO), "config", "check", "--format", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["promotion_order"] == ["test", "production"]
    assert data["environments"]["production"]["batches"] == ["1", "5%", "25%", "100%"]
    assert data["environments"]["test"]["gates"]["max_missing_ratio"] == 0.0  # defaults filled in


@pytest.mark.parametrize(
    ("line_from", "line_to", "where", "words"),
    [
        pytest.param("    canary: 1", "    canary: 0", "environments.production.canary", "", id="canary-0"),
        # Issue 17: ``50%, 25%, 100%`` passed ``config check`` (the 25% batch would add no minion).
        pytest.param('    batches: [1, "5%", "25%", "100%"]', '    batches: ["50%", "25%", "100%"]',
                     "environments.production.batches[1]", "does not grow the rollout", id="decreasing-batches"),
    ],
)
def test_config_check_invalid_exits_2_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line_from: str, line_to: str, where: str, words: str
) -> None:
    bad = tmp_path / "pipeline.yaml"
    lines = (REPO / "salt" / "pipeline.yaml").read_text().splitlines(keepends=True)
    line = [text.rstrip("\n") for text in lines].index(line_from) + 1
    lines[line - 1] = line_to + "\n"
    bad.write_text("".join(lines))
    code, out, err = run(["--repo", str(REPO), "--config", str(bad), "config", "check"], capsys)
    assert code == 2
    assert out == ""
    assert f"{bad}:{line}: {where}" in err
    assert words in err and "hint:" in err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--repo", str(REPO), "no-such-command"], capsys)
    assert code == 2
    assert "No such command" in err


def test_python_m_pipeline_is_the_same_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(REPO), "--help"],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: saltpipe" in proc.stdout


def test_command_exit_code_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """A command that exits 1 (findings, a failed gate) must make saltpipe exit 1, not 0."""

    @cli.command("exit-one-for-test", hidden=True)
    def _exit_one() -> None:
        raise click.exceptions.Exit(1)

    try:
        code, _, _ = run(["--repo", str(REPO), "exit-one-for-test"], capsys)
    finally:
        del cli.commands["exit-one-for-test"]
    assert code == 1


def test_command_table_names_every_area() -> None:
    """Every click command a module of pipeline/commands exports in ``COMMANDS`` is in the lazy table (the one
    place to add an area), under its own name and pointing at that very object."""
    import importlib
    import pkgutil

    from pipeline import commands
    from pipeline.cli import COMMAND_TABLE, _load

    exported = {}
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            exported[command.name] = command
    assert set(exported) == set(COMMAND_TABLE), "add the missing area to pipeline/cli.py COMMAND_TABLE"
    for name, target in COMMAND_TABLE.items():
        assert _load(target) is exported[name], name


def test_startup_imports_no_command_module() -> None:
    """`saltpipe --version` (and any single command) must not import every area: that cost ~0.8 s a call."""
    code = (
        "import sys; from pipeline.cli import cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('pipeline.commands.', 'salt', 'pydantic', 'git'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert proc.stdout.strip() == "[]", proc.stdout


#: A command that imports Salt in-process as the commands do, then logs as Salt and a library would.
_PROBE = """
import logging, sys
import click
from pipeline.cli import cli, main

@cli.command("probe")
def probe() -> None:
    from pipeline.saltlib import import_salt
    import_salt("salt.config")
    logging.warning("library-warning")  # a root-level call: without a handler it would install one for all
    logging.getLogger("salt.loader").debug("salt-debug")
    logging.getLogger("salt.loader").info("salt-info")
    click.echo(logging.getLogger("salt.loader").getEffectiveLevel())

main(sys.argv[1:])
"""


@pytest.mark.parametrize(
    ("flags", "level", "shown", "hidden"),
    [
        pytest.param([], 30, ["library-warning"], ["salt-info", "salt-debug"], id="default-warnings"),
        pytest.param(["-v"], 20, ["library-warning", "salt-info"], ["salt-debug"], id="v-info"),
        pytest.param(["--verbose", "-v"], 10, ["salt-info", "salt-debug"], [], id="vv-debug"),
    ],
)
def test_salt_import_does_not_flood_the_cli_log(flags: list[str], level: int, shown: list[str], hidden: list[str]) -> None:
    """Salt sets an unconfigured root logger to its lowest level; the CLI's logging must keep warnings-only
    (Salt's records below it are not even built) unless -v/-vv asks for more."""
    argv = [sys.executable, "-c", _PROBE, "--repo", str(REPO), *flags, "probe"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(level)
    for text in shown:
        assert text in proc.stderr
    for text in hidden:
        assert text not in proc.stderr
