"""What the GitLab tests share: the recorded API payloads and how a case serves them with ``responses``.

Payloads in ``payloads/`` are GitLab v4 answers as GitLab returns them (one merge request, !42 of project
1234 ``ops/salt-states``, whose head 3f2c0d9e was pushed at 2025-03-04T09:12:41Z and approved by bob at
10:05; ``commit_merge_requests.json`` lists it as merged into main with merge commit 7d4e2a91). A case changes them
with a JSON merge patch (RFC 7386: objects merge, ``null`` deletes a key) extended for lists: ``{"0": {...}}``
patches item 0 of a list.

A module of its own, not ``conftest``: test modules import it by name, and every test directory has a
``conftest`` of its own, so ``from conftest import`` picks whichever was imported first.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

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
