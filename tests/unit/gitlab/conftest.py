"""Fixtures for the GitLab tests: recorded API payloads served by ``responses``, a clean CI environment, the CLI.

Payloads in ``payloads/`` are GitLab v4 answers as GitLab returns them (one merge request, !42 of project
1234 ``ops/salt-states``, whose head 3f2c0d9e was pushed at 2025-03-04T09:12:41Z and approved by bob at
10:05; ``commit_merge_requests.json`` lists it as merged into main with merge commit 7d4e2a91). A case changes them with a JSON merge patch (RFC 7386: objects merge, ``null`` deletes a key) extended
for lists: ``{"0": {...}}`` patches item 0 of a list.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

HERE = Path(__file__).parent
PAYLOADS = HERE / "payloads"
SERVER = "https://gitlab.example.net"
API = f"{SERVER}/api/v4"
PROJECT = "/projects/1234"
MR = f"{PROJECT}/merge_requests/42"
HEAD = "3f2c0d9e7a41b6c58e2d9f0a1b3c4d5e6f708192"
#: The merge commit !42 wrote on main (``saltpipe review --merged``).
MERGE_SHA = "7d4e2a91c3b5f60817e9d2c4a6b8f0e1d3c5a7b9"
TOKEN = "glpat-test-0000000000000000"

#: Every GitLab endpoint the tests serve: key -> (method, path, recorded payload).
ROUTES: dict[str, tuple[str, str, str | None]] = {
    "user": ("GET", "/user", "current_user.json"),
    "mr": ("GET", MR, "merge_request.json"),
    "approvals": ("GET", f"{MR}/approvals", "approvals.json"),
    "versions": ("GET", f"{MR}/versions", "versions.json"),
    "version": ("GET", f"{MR}/versions/301", "version_detail.json"),
    "pipelines": ("GET", f"{MR}/pipelines", "mr_pipelines.json"),
    "jobs": ("GET", f"{PROJECT}/pipelines/9001/jobs", "pipeline_jobs.json"),
    "notes": ("GET", f"{MR}/notes", "notes.json"),
    "members": ("GET", "/groups/ops%2Fsalt-security/members/all", "group_members.json"),
    "project": ("GET", PROJECT, "project.json"),
    "commit_mrs": ("GET", f"{PROJECT}/repository/commits/{MERGE_SHA}/merge_requests", "commit_merge_requests.json"),
    "commit_mrs_head": ("GET", f"{PROJECT}/repository/commits/{HEAD}/merge_requests", "commit_merge_requests.json"),
    # Approvals of a rollout (pipeline/rollout/approvals.py): deploy pipeline 9107 on main.
    "deploy_pipeline": ("GET", f"{PROJECT}/pipelines/9107", "pipeline.json"),
    "deploy_jobs": ("GET", f"{PROJECT}/pipelines/9107/jobs", "pipeline_jobs.json"),
    "user_bob": ("GET", "/users", "users.json"),
    "member_bob": ("GET", f"{PROJECT}/members/all/12", "project_member.json"),
    "protected_production": ("GET", f"{PROJECT}/protected_environments/production", "protected_environment.json"),
    "security_group_77": ("GET", "/groups/77/members/all", "group_members.json"),
    "deployment_create": ("POST", f"{PROJECT}/deployments", "deployment.json"),
    "deployment_update": ("PUT", f"{PROJECT}/deployments/5120", "deployment.json"),
}

#: The CI variables of the review job in merge request pipeline 9001.
CI_VARIABLES = {
    "CI_SERVER_URL": SERVER,
    "CI_PROJECT_ID": "1234",
    "CI_MERGE_REQUEST_IID": "42",
    "CI_COMMIT_SHA": HEAD,
    "CI_COMMIT_REF_NAME": "web-worker-connections",
    "CI_PIPELINE_ID": "9001",
    "CI_PIPELINE_URL": f"{SERVER}/ops/salt-states/-/pipelines/9001",
    "CI_JOB_ID": "55123",
    "SALTPIPE_GITLAB_TOKEN": TOKEN,
}

CONFIG = """\
version: 1
review:
  approvals_required: {approvals_required}
  security_group: {security_group}
  security_paths: [salt/policy.yaml, _modules/, _states/]
environments:
  test:
    tier: testing
    syndics:
      - name: syndic-test
        file_roots: {{type: local, path: /srv/saltpipe/syndic-test}}
    target: "G@saltpipe_env:test"
    canary: [test-web-1]
    batches: ["100%"]
"""


def payload(name: str) -> Any:
    """A recorded payload, fresh each time (tests may change it)."""
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch, plus ``{"<index>": patch}`` for list items."""
    if isinstance(patch, dict) and isinstance(target, list):
        out = copy.deepcopy(target)
        for index, item in patch.items():
            out[int(index)] = merge_patch(out[int(index)], item)
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def serve(rsps: responses.RequestsMock, key: str, spec: dict[str, Any] | None = None) -> None:
    """Register route ``key`` as the case ``spec`` says.

    ``spec`` keys: ``patch`` (merge patch on the recorded payload), ``json`` (replace it), ``status``,
    ``body`` + ``content_type`` (a non-JSON answer), ``error`` (``connection`` or ``timeout``), ``headers``.
    """
    spec = spec or {}
    method, path, name = ROUTES[key]
    url = API + path
    if "error" in spec:
        exc = {"connection": requests.ConnectionError, "timeout": requests.Timeout}[spec["error"]]
        rsps.add(method, url, body=exc(f"simulated {spec['error']} error"))
        return
    if "body" in spec:
        rsps.add(
            method, url, body=spec["body"], status=spec.get("status", 200), content_type=spec.get("content_type", "text/html")
        )
        return
    data = spec["json"] if "json" in spec else (payload(name) if name else None)
    if "patch" in spec:
        data = merge_patch(data, spec["patch"])
    rsps.add(method, url, json=data, status=spec.get("status", 200), headers=spec.get("headers"))


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
