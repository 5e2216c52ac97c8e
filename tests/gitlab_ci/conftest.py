"""Fixtures of the .gitlab-ci.yml test: gitlab-ci-local (installed into a cache once), a local topology.

* ``GITLAB_CI_LOCAL=<path>`` uses that gitlab-ci-local binary instead of installing one.
* ``SALTPIPE_CACHE_DIR`` (default ``~/.cache/saltpipe``) is where gitlab-ci-local is installed with
  ``npm install --prefix`` when absent. It needs Node >= 18 (``node`` and ``npm`` on PATH) and rsync.
* ``SALTPIPE_IT_WORKDIR=<dir>`` runs the deploy jobs against an already running topology (as in
  tests/integration) instead of starting one.
* ``fake_gitlab`` serves on loopback the GitLab API reads of ``saltpipe review --merged`` (the ``release``
  job's gate) from the recorded payloads of tests/unit/gitlab - a commit is merged (approved, pipeline passed)
  only once the test says so - and what the rollouts ask and write: who started the pipeline, who played
  its gate, who may deploy, the deployment records.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.gitlab.loopback import LoopbackGitLab
from pipeline.topology import Topology
from pipeline.topology import load as load_topology

REPO = Path(__file__).resolve().parents[2]
#: 4.60.0 is the newest release that runs on Node 20 (later ones need Node 22).
GCL_VERSION = "4.60.0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """These tests run real jobs, real Salt daemons and need Node: mark them ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    """The gitlab-ci-local executable, installed into the cache directory if it is not there yet."""
    given = os.environ.get("GITLAB_CI_LOCAL")
    if given:
        return Path(given)
    cache = Path(os.environ.get("SALTPIPE_CACHE_DIR", Path.home() / ".cache" / "saltpipe")) / f"gitlab-ci-local-{GCL_VERSION}"
    exe = cache / "node_modules" / ".bin" / "gitlab-ci-local"
    if exe.exists():
        return exe
    missing = [tool for tool in ("node", "npm", "rsync") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"gitlab-ci-local needs {', '.join(missing)} on PATH (Node >= 18, Debian's rsync); "
                    "install them (.ci/run does on CI)")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            ["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--loglevel=error",
             f"gitlab-ci-local@{GCL_VERSION}"],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except subprocess.TimeoutExpired:
        # npm retries network and TLS errors silently; a CA it does not trust looks exactly like this.
        pytest.fail(f"npm install gitlab-ci-local@{GCL_VERSION} did not finish in 300 s: check that the npm registry "
                    "is reachable and that NODE_EXTRA_CA_CERTS reaches npm (tox.ini passes it)")
    if proc.returncode != 0 or not exe.exists():
        pytest.fail(f"npm install gitlab-ci-local@{GCL_VERSION} failed (rc {proc.returncode}):\n{proc.stderr}")
    return exe


def _saltpipe(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", "--repo", str(REPO), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def topology() -> Iterator[Topology]:
    """A local topology started with ``saltpipe topology up`` and stopped with ``down`` (or a running one)."""
    reuse = os.environ.get("SALTPIPE_IT_WORKDIR")
    if reuse:
        yield load_topology(Path(reuse))
        return
    # Salt's unix socket paths stop at 107 bytes: a short directory, not pytest's tmp_path.
    workdir = Path(tempfile.mkdtemp(prefix="sp-gcl-", dir="/tmp"))
    proc = _saltpipe("topology", "up", "--workdir", str(workdir), "--format", "json", "--timeout", "120")
    if proc.returncode != 0:
        _saltpipe("topology", "down", "--workdir", str(workdir))
        pytest.fail(f"saltpipe topology up failed (rc {proc.returncode}):\n{proc.stderr}\n{proc.stdout}")
    assert json.loads(proc.stdout)["state"] == "running"
    yield load_topology(workdir)
    down = _saltpipe("topology", "down", "--workdir", str(workdir), "--format", "json")
    assert down.returncode == 0, down.stderr
    shutil.rmtree(workdir, ignore_errors=True)


PAYLOADS = REPO / "tests" / "unit" / "gitlab" / "payloads"
FAKE_TOKEN = "glpat-gitlab-ci-local-0000"


class FakeGitLab(LoopbackGitLab):
    """GitLab's API as the deploy jobs read and write it, for one project (any id) whose default branch is
    ``main``: the reads of ``saltpipe review --merged`` from the recorded payloads, and (pipeline/gitlab/loopback.py)
    users, roles, the protected ``production`` environment, the pipeline and its jobs, deployments.

    :meth:`merge` records that merge request !42 (head ``head``, approved by bob after its push, its pipeline
    passed) was merged into main as ``sha``; until then every commit has no merge request. Every pipeline (any
    id, as gitlab-ci-local numbers its own) was started by ``carol`` (the merge) and its ``approve:production``
    played by ``alice``, both Maintainers. ``requests`` lists (method, path, body) asked, in order; ``url`` and
    ``token`` are what the jobs need (``CI_SERVER_URL``, ``SALTPIPE_GITLAB_TOKEN``)."""

    token = FAKE_TOKEN

    def __init__(self) -> None:
        super().__init__(project_id=None)
        self.merged: dict[str, dict[str, Any]] = {}
        self.add_user("saltpipe-bot", access_level=40)
        self.tokens = {FAKE_TOKEN: "saltpipe-bot"}
        self.add_user("carol", access_level=40)
        self.add_user("alice", access_level=40)
        self.protect("production")

    @property
    def paths(self) -> list[str]:
        return [path[len("/api/v4"):] for _, path, _ in self.requests]

    def merge(self, sha: str, head: str = "3f2c0d9e7a41b6c58e2d9f0a1b3c4d5e6f708192") -> None:
        mr = json.loads((PAYLOADS / "commit_merge_requests.json").read_text())[0]
        mr.update({"sha": head, "merge_commit_sha": sha, "state": "merged", "target_branch": "main"})
        self.merged[sha] = mr

    def answer(self, method: str, path: str, query: dict[str, str], body: Any, user: str) -> tuple[int, Any]:
        pipeline = re.fullmatch(r"/projects/[^/]+/pipelines/(\d+)(/jobs)?", path)
        if pipeline is not None and int(pipeline.group(1)) not in self.pipelines:
            self.add_pipeline(int(pipeline.group(1)), "carol", {"approve:production": "alice"})
        if method == "GET":
            found = self._review(path)
            if found is not None:
                return found
        return super().answer(method, path, query, body, user)

    def _review(self, path: str) -> tuple[int, Any] | None:
        """(status, JSON) for what ``review --merged`` reads, None for anything else."""
        project = re.fullmatch(r"/projects/[^/]+(/.*)?", path)
        if project is None:
            return None
        rest = project.group(1) or ""
        if rest == "":
            return 200, {**json.loads((PAYLOADS / "project.json").read_text()), "default_branch": "main"}
        commit = re.fullmatch(r"/repository/commits/([0-9a-f]{40})/merge_requests", rest)
        if commit is not None:
            mr = self.merged.get(commit.group(1))
            return 200, [mr] if mr else []
        if not rest.startswith("/merge_requests/"):
            return None
        mr = next(iter(self.merged.values()), None)
        if mr is None or not rest.startswith(f"/merge_requests/{mr['iid']}"):
            return 404, {"message": "404 Not found"}
        head = mr["sha"]
        sub = rest[len(f"/merge_requests/{mr['iid']}"):]
        if sub == "":
            full = json.loads((PAYLOADS / "merge_request.json").read_text())
            full.update({k: mr[k] for k in ("sha", "merge_commit_sha", "state", "target_branch")})
            return 200, full
        if sub == "/approvals":
            return 200, json.loads((PAYLOADS / "approvals.json").read_text())
        if sub == "/versions":
            versions = json.loads((PAYLOADS / "versions.json").read_text())
            versions[0]["head_commit_sha"] = head
            return 200, versions
        if sub == "/versions/301":
            return 200, {**json.loads((PAYLOADS / "version_detail.json").read_text()), "head_commit_sha": head}
        if sub == "/pipelines":
            pipelines = json.loads((PAYLOADS / "mr_pipelines.json").read_text())
            pipelines[0].update({"sha": head, "status": "success"})
            return 200, pipelines
        return 404, {"message": "404 Not found"}


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    """A :class:`FakeGitLab` listening on loopback."""
    fake = FakeGitLab().start()
    try:
        yield fake
    finally:
        fake.stop()
