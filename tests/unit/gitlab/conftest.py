"""Fixtures for the GitLab tests: recorded API payloads served by ``responses`` (gitlab_helpers.py), a clean CI
environment, the CLI."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from gitlab_helpers import CI_VARIABLES, CONFIG, serve


@pytest.fixture
def gitlab_api() -> Iterator[responses.RequestsMock]:
    """A fake GitLab: only registered routes answer, and every registered route must be called."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def ci_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str | None]], None]:
    """Start from no CI variables at all (the test may run inside a real CI job), then set the review
    job's; ``set_env({"CI_JOB_ID": None})`` removes one."""
    for name in list(os.environ):
        if name.startswith(("CI_", "GITLAB_", "SALTPIPE_")):
            monkeypatch.delenv(name)
    for name, value in CI_VARIABLES.items():
        monkeypatch.setenv(name, value)

    def set_env(changes: dict[str, str | None]) -> None:
        for name, value in changes.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return set_env


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """A pipeline.yaml with the given review settings."""

    def write(approvals_required: int = 1, security_group: str = "ops/salt-security") -> Path:
        path = tmp_path / "pipeline.yaml"
        path.write_text(
            CONFIG.format(approvals_required=approvals_required, security_group=security_group), encoding="utf-8"
        )
        return path

    return write


@pytest.fixture
def run_saltpipe(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """Run the real CLI entry point; return (exit code, stdout, stderr)."""
    from pipeline.cli import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        else:  # pragma: no cover - main always exits
            code = 0
        sys.stdout.flush()
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def review_case(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    write_config: Callable[..., Path],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> Callable[..., dict[str, Any] | None]:
    """Run one recorded case (``cases/**/*.json``: env, config, routes, expect) through ``saltpipe review``
    with ``extra_args`` and check what every case expects: the exit code; for exit 2 nothing on stdout and the
    expected stderr; else the verdict, the named checks and the reasons. Returns the JSON result (``None`` for
    exit 2) for the caller's own assertions."""

    def run(case: dict[str, Any], extra_args: list[str], base_env: dict[str, str | None] | None = None):
        ci_env({**(base_env or {}), **case.get("env", {})})
        config = write_config(**case.get("config", {}))
        for key, spec in case["routes"].items():
            serve(gitlab_api, key, spec)
        code, out, err = run_saltpipe(["--config", str(config), "review", *extra_args, "--format", "json"])
        expect = case["expect"]
        assert code == expect["exit"], f"{case['about']}\nstdout:\n{out}\nstderr:\n{err}"
        if expect["exit"] == 2:
            assert out == ""
            for text in expect["stderr"]:
                assert text in err, err
            return None
        result = json.loads(out)
        assert result["approved"] is (expect["exit"] == 0)
        outcomes = {c["id"]: c["ok"] for c in result["checks"]}
        for check, ok in expect.get("checks", {}).items():
            assert outcomes[check] is ok, f"check {check}: {result['checks']}"
        if expect["exit"] == 1:
            assert result["reasons"], "a refused gate must say why"
        for text in expect.get("reasons", []):
            assert any(text in reason for reason in result["reasons"]), f"{text!r} not in {result['reasons']}"
        return result

    return run
