""".gitlab-ci.yml run as written by gitlab-ci-local on a local clone of this repository (docs/gitlab-ci.md).

* merge request pipeline on good content: lint, policy, unit, integration, impact and the MR note pass;
* merge request pipeline with a ``cmd.run`` state added: the lint and policy jobs fail on it;
* default-branch pipeline against a local topology: a commit no merge request brought to main is refused by
  the ``release`` job's gate (``saltpipe review --merged``) before anything is built; once merged (approved,
  pipeline passed), release -> sync:test -> rollout:test pass, production is untouched, and gitlab-ci-local
  refuses to run the production jobs until the manual gate is played; played, sync:production and
  rollout:production put the release in production; the approval is who GitLab says played the gate, the
  release names its merge request, and every rollout is a deployment record in the fake GitLab.

Jobs run with ``--force-shell-executor`` (no containers here) in a virtualenv with saltpipe's dependencies
(``SALTPIPE_CI_VENV``, this interpreter's), the clone's own code first on ``PYTHONPATH``. Variables narrow the
check jobs to one quick test file each, so the suite never runs itself. The MR pipeline's review gate job
judges the jobs of a real GitLab pipeline and is covered by tests/unit/gitlab; the ``release`` job's gate reads
a fake GitLab on loopback (``fake_gitlab``, the recorded payloads of tests/unit/gitlab).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from pipeline.topology import Topology

REPO = Path(__file__).resolve().parents[2]
#: The unit job runs one quick test file; the integration job one test on the fixture's topology.
UNIT_SUBSET = "tests/unit/impact/test_impact_analysis.py"
INTEGRATION_SUBSET = "tests/integration/test_impact.py"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.org", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout


def _clone(tmp_path: Path, branch: str) -> Path:
    """A clone of this checkout's HEAD on ``branch``, with a GitLab-like origin (gitlab-ci-local reads it)."""
    dest = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)], check=True)
    _git(dest, "remote", "set-url", "origin", "git@gitlab.example.com:ops/saltpipe.git")
    _git(dest, "checkout", "--quiet", "-B", branch)
    return dest


def _run(gcl: Path, repo: Path, *args: str, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [str(gcl), *args, "--force-shell-executor", "--no-color", "--home", str(repo.parent / "gcl-home"),
            "--variable", f"SALTPIPE_CI_VENV={sys.prefix}", "--variable", "CI_DEFAULT_BRANCH=main"]
    for name, value in variables.items():
        argv += ["--variable", f"{name}={value}"]
    return subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=600, check=False)


def _verdicts(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Job -> PASS / FAIL / WARN from gitlab-ci-local's summary lines (`` PASS  lint``)."""
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("PASS", "FAIL", "WARN"):
            out[parts[1]] = parts[0]
    return out


def _mr_variables(topology: Topology, config: Path) -> dict[str, str]:
    return {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "7",
        "UNIT_TESTS": UNIT_SUBSET,
        "INTEGRATION_TESTS": INTEGRATION_SUBSET,
        "SALTPIPE_IT_WORKDIR": str(topology.pipeline_config.parent),
        "LINT_ARGS": "--no-pylint --env test",
        "MR_NOTE_ARGS": "--dry-run",
        "SALTPIPE_PIPELINE_CONFIG": str(config),
        "DEPLOY_TIMEOUT": "120",
    }


def _ci_config(topology: Topology, dest: Path) -> Path:
    """The topology's derived pipeline config, minus production's HTTP health check: no application answers
    on the local minions (everything else - requires: [test], one approval - stays as configured)."""
    data = yaml.safe_load(topology.pipeline_config.read_text())
    data["environments"]["production"]["gates"].pop("health_check", None)
    # `topology up` writes the salt: section; a topology started by an older saltpipe (SALTPIPE_IT_WORKDIR) lacks it.
    data.setdefault("salt", {"master_config": str(topology.mom.config_file)})
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


MR_JOBS = ("lint", "policy", "unit", "integration", "impact", "mr-note")


def test_merge_request_jobs_pass_on_good_content(gitlab_ci_local: Path, topology: Topology, tmp_path: Path) -> None:
    repo = _clone(tmp_path, "feature")
    proc = _run(gitlab_ci_local, repo, *MR_JOBS, "--unset-variable", "CI_COMMIT_BRANCH",
                variables=_mr_variables(topology, _ci_config(topology, tmp_path / "ci.yaml")))
    verdicts = _verdicts(proc)
    assert proc.returncode == 0 and all(verdicts.get(j) in ("PASS", "WARN") for j in MR_JOBS), proc.stdout[-6000:]
    # The artifacts GitLab would show: Code Quality, JUnit, the impact JSON; and the note rendered from them.
    reports = repo / "reports"
    assert isinstance(json.loads((reports / "gl-code-quality.json").read_text()), list)
    for junit in ("junit-unit.xml", "junit-policy.xml", "junit-integration.xml"):
        assert "<testcase" in (reports / junit).read_text(), junit
    impact = json.loads((reports / "impact.json").read_text())
    assert impact["environment"] == "test" and set(impact["sampled"]) == {"app", "web"}
    # The job exposed the MR's release on test's syndic for the dry run and removed it again.
    assert not (topology.syndic("syndic-test").file_roots / "envs" / impact["release"]).exists()
    assert "<!-- saltpipe:mr-note -->" in proc.stdout and "Impact" in proc.stdout


def test_merge_request_lint_and_policy_fail_on_a_cmd_run_state(gitlab_ci_local: Path, tmp_path: Path) -> None:
    repo = _clone(tmp_path, "feature")
    sls = repo / "states" / "base" / "ci_shell.sls"
    sls.write_text("ci_shell:\n  cmd.run:\n    - name: touch /tmp/saltpipe-ci-shell\n")
    _git(repo, "add", str(sls))
    _git(repo, "commit", "--quiet", "-m", "a cmd.run state")
    proc = _run(gitlab_ci_local, repo, "lint", "policy", "--unset-variable", "CI_COMMIT_BRANCH",
                variables={"CI_PIPELINE_SOURCE": "merge_request_event", "LINT_ARGS": "--no-pylint --env test"})
    assert proc.returncode != 0
    assert _verdicts(proc) == {"lint": "FAIL", "policy": "FAIL"}, proc.stdout[-6000:]
    assert "no-cmd-module" in proc.stdout and "ci_shell.sls" in proc.stdout
    findings = json.loads((repo / "reports" / "policy.json").read_text())["findings"]
    assert any(f["rule"] == "no-cmd-module" and f["path"].endswith("ci_shell.sls") for f in findings)


def _served(config: Path, env: str) -> set[str | None]:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--repo", str(REPO), "--config", str(config),
                           "status", env, "--format", "json"], capture_output=True, text=True, check=True)
    return {s["served"] for s in json.loads(proc.stdout)["syndics"]}


def test_deploy_jobs_and_the_manual_production_gate(
    gitlab_ci_local: Path, topology: Topology, tmp_path: Path, fake_gitlab: Any
) -> None:
    repo = _clone(tmp_path, "main")
    # Content of its own (release ids are content hashes), so a reused topology still gets a new release.
    top = repo / "states" / "top.sls"
    top.write_text(top.read_text() + f"{{# ci run {tmp_path.name} {time.time_ns()} #}}\n")
    _git(repo, "commit", "--quiet", "-am", "content change")
    sha = _git(repo, "rev-parse", "HEAD").strip()
    config = _ci_config(topology, tmp_path / "ci.yaml")
    gitlab = fake_gitlab  # conftest.FakeGitLab
    variables = {"SALTPIPE_PIPELINE_CONFIG": str(config), "DEPLOY_TIMEOUT": "120", "GITLAB_USER_LOGIN": "alice",
                 "CI_SERVER_URL": gitlab.url, "SALTPIPE_GITLAB_TOKEN": gitlab.token}

    # Pushed straight to main: the release job's gate finds no merge request for the commit and stops the job
    # before its build line runs.
    direct = _run(gitlab_ci_local, repo, "release", variables=variables)
    assert _verdicts(direct) == {"release": "FAIL"}, direct.stdout[-6000:]
    assert f"commit {sha[:12]} reached main without a merge request" in direct.stdout
    assert "release build" not in direct.stdout  # gitlab-ci-local echoes each script line it starts
    assert any(p.endswith(f"/repository/commits/{sha}/merge_requests") for p in gitlab.paths)

    # Merged through merge request !42 (approved after its last push, its pipeline passed): the rest runs.
    gitlab.merge(sha)

    # The whole default-branch pipeline without the gate played: gitlab-ci-local refuses to start it.
    refused = _run(gitlab_ci_local, repo, variables=variables)
    assert refused.returncode != 0 and "approve:production" in refused.stdout + refused.stderr

    test_half = _run(gitlab_ci_local, repo, "release", "sync:test", "rollout:test", variables=variables)
    assert _verdicts(test_half) == {"release": "PASS", "sync:test": "PASS", "rollout:test": "PASS"}, \
        test_half.stdout[-6000:]
    assert f"review gate for {sha[:12]} on main (merged by !42" in test_half.stdout
    release = json.loads((repo / "reports" / "release.json").read_text())["release"]
    assert _served(config, "test") == {release}
    assert release not in _served(config, "production")  # held back by the gate

    played = _run(gitlab_ci_local, repo, "--manual", "approve:production", "approve:production",
                  "sync:production", "rollout:production", variables=variables)
    assert _verdicts(played) == {"approve:production": "PASS", "sync:production": "PASS",
                                 "rollout:production": "PASS"}, played.stdout[-6000:]
    assert _served(config, "production") == {release}
    state_dir = Path(yaml.safe_load(config.read_text())["state_dir"])
    approvals = [json.loads(line) for line in
                 (state_dir / "approvals" / "production" / f"{release}.jsonl").read_text().splitlines()]
    # Who played the gate, as GitLab's jobs API says; carol started the pipeline, so alice may approve.
    assert [a["name"] for a in approvals] == ["alice"] and "played approve:production" in approvals[0]["proof"]
    report = json.loads((repo / "reports" / "rollout-production.json").read_text())
    assert report.get("promoted"), report
    assert report["promotion"]["started_by"] == "carol"
    # The audit chain: the release job recorded !42 for the commit; each rollout recorded one deployment of the
    # commit in GitLab, running first, then success (POST then PUT, as the fake GitLab received them).
    assert json.loads((repo / "reports" / "release.json").read_text())["merge_request"]["iid"] == 42
    assert [(d["environment"]["name"], d["sha"], d["ref"], d["status"]) for d in gitlab.deployments] == [
        ("test", sha, "main", "success"), ("production", sha, "main", "success")]
    writes = [(method, body.get("status")) for method, path, body in gitlab.requests if path.endswith("/deployments")
              or "/deployments/" in path]
    assert writes == [("POST", "running"), ("PUT", "success")] * 2
    chain = report["chain"]
    assert chain["merge_request"]["iid"] == 42 and chain["commit"] == sha and chain["release"] == release
    assert chain["jobs"] and chain["deployment"]["status"] == "success" and chain["results"]
