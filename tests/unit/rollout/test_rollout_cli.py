"""The CLI contract of `saltpipe rollout` / `rollout status` / `rollout resume` / `rollback`: output and exit codes.

The Salt client and the sync stage are swapped for the scripted test double and the in-memory fake; everything
else (config loading, the state directory, the lock, the reports) is the real thing.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rollout_helpers import PREVIOUS, PROD_FLEET, RELEASE, TEST_FLEET, FakeServing, StaticApprovals

from pipeline.cli import main
from pipeline.lock import EnvironmentLock
from scripted_client import Behavior, ScriptedSaltClient, failed_state_return

CONFIG = """\
version: 1
state_dir: {state}
environments:
  test:
    syndics: [{{name: syndic-test, file_roots: {{type: local, path: /srv/t}}}}]
    target: "G@saltpipe_env:test"
    canary: [test-web-1]
    batches: ["50%", "100%"]
  production:
    syndics:
      - {{name: syndic-prod-a, file_roots: {{type: local, path: /srv/a}}}}
      - {{name: syndic-prod-b, file_roots: {{type: local, path: /srv/b}}}}
    target: "G@saltpipe_env:production"
    canary: 1
    batches: [1, "5%", "25%", "100%"]
    approvals_required: 1
    requires: [test]
"""


class World:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.config = tmp / "pipeline.yaml"
        self.config.write_text(CONFIG.format(state=self.state))
        self.serving = FakeServing()
        self.script: Any = None
        self.clients: list[ScriptedSaltClient] = []
        import pipeline.commands.rollout as cmd
        import pipeline.release as release

        def client(app: Any, env: str, opts: dict[str, Any], gates: Any = None) -> ScriptedSaltClient:
            if not opts["master_config"] and not opts["salt_api"]:
                return cmd.__dict__["_real_client"](app, env, opts, gates)
            fleet = TEST_FLEET if env == "test" else PROD_FLEET
            c = ScriptedSaltClient(fleet, script=self.script)
            self.clients.append(c)
            return c

        monkeypatch.setitem(cmd.__dict__, "_real_client", cmd._client)  # pylint: disable=protected-access
        monkeypatch.setattr(cmd, "_client", client)
        monkeypatch.setattr(cmd, "SyncServing", lambda *a, **k: self.serving)
        monkeypatch.setattr(cmd, "_authority", StaticApprovals)
        monkeypatch.setattr(release.ReleaseStore, "get", lambda store, rid: SimpleNamespace(commit="c0ffee", origin=lambda: ("c0ffee", None)))
        monkeypatch.setenv("SALTPIPE_MASTER_CONFIG", str(tmp / "master"))

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as excinfo:
            main(["--repo", str(self.tmp), "--config", str(self.config), *argv])
        out, err = capsys.readouterr()
        return int(excinfo.value.code or 0), out, err


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, monkeypatch)


def test_rollout_prints_the_plan_runs_and_writes_reports(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rj, rh = world.tmp / "r.json", world.tmp / "r.html"
    code, out, _ = world.run(capsys, "rollout", "test", "--release", RELEASE, "--report-json", str(rj),
                             "--report-html", str(rh), "--job-timeout", "1", "--poll-interval", "0")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("rollout ") and "previous release (rollback target): " + PREVIOUS in out
    assert any(line.strip().startswith("canary") and "test-web-1" in line for line in lines)
    assert "SUCCEEDED" in out and f"base now serves {RELEASE}" in out
    assert json.loads(rj.read_text())["outcome"] == "succeeded"
    assert "<table>" in rh.read_text()
    code, out, _ = world.run(capsys, "rollout", "status", "test")
    assert code == 0 and "succeeded" in out and "lock: free" in out
    code, out, _ = world.run(capsys, "rollout", "status", "test", "--format", "json")
    data = json.loads(out)
    assert data["outcome"] == "succeeded" and data["lock"] is None


def test_failed_canary_exits_1_with_a_summary(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        if fun == "state.apply" and minion == "test-web-1" and kwarg["saltenv"] == RELEASE:
            return Behavior(ret=failed_state_return(), retcode=2)
        return None

    world.script = script
    code, out, _ = world.run(capsys, "rollout", "test", "--release", RELEASE, "--job-timeout", "1",
                             "--poll-interval", "0")
    assert code == 1
    assert "ROLLED_BACK" in out and "halted at canary" in out and "test-web-1: service.running" in out
    assert world.clients[-1].touched() == {"test-web-1"}
    code, out, _ = world.run(capsys, "rollout", "status", "test")
    assert "rolled_back" in out


def test_promotion_refused_exits_1(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = world.run(capsys, "rollout", "production", "--release", RELEASE)
    assert code == 1 and "refused" in err and "no successful rollout" in err and "needs 1 approval" in err


def test_production_after_test_with_approval_then_rollback(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.run(capsys, "rollout", "test", "--release", RELEASE, "--job-timeout", "1")[0] == 0
    world.serving.base = PREVIOUS
    code, out, _ = world.run(capsys, "rollout", "production", "--release", RELEASE, "--approve", "alice",
                             "--job-timeout", "1")
    assert code == 0, out
    code, out, _ = world.run(capsys, "rollback", "production", "--job-timeout", "1")
    assert code == 0, out
    assert "rollback run" in out and world.serving.base == PREVIOUS


def test_no_client_is_a_usage_error(world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALTPIPE_MASTER_CONFIG")
    monkeypatch.delenv("SALTPIPE_SALT_API_URL", raising=False)
    code, _, err = world.run(capsys, "rollout", "test", "--release", RELEASE)
    assert code == 2 and "exactly one way to reach the master-of-masters" in err and "--master-config" in err


def test_locked_environment_exits_2_naming_the_holder(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with EnvironmentLock(world.state, "test", "sync"):
        code, _, err = world.run(capsys, "rollout", "test", "--release", RELEASE)
    assert code == 2 and "locked: sync by" in err


def test_status_and_resume_without_rollouts(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = world.run(capsys, "rollout", "status", "test")
    assert code == 2 and "no rollout yet" in err
    code, _, err = world.run(capsys, "rollout", "resume", "test")
    assert code == 2 and "no unfinished rollout" in err
    code, _, err = world.run(capsys, "rollout", "nosuchenv", "--release", RELEASE)
    assert code == 2 and "unknown environment" in err


# -- `rollout resume`: what it says first (click's runner, the real CLI group and state directory) ----------------


def _invoke(tmp_path: Path, *argv: str) -> Any:
    from click.testing import CliRunner

    from pipeline.cli import cli

    config = tmp_path / "pipeline.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state"))
    return CliRunner().invoke(cli, ["--repo", str(tmp_path), "--config", str(config), *argv])


def test_resume_with_nothing_to_resume_asks_for_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.rollout import RolloutStateError

    monkeypatch.delenv("SALTPIPE_MASTER_CONFIG", raising=False)
    monkeypatch.delenv("SALTPIPE_SALT_API_PASSWORD", raising=False)
    monkeypatch.setenv("SALTPIPE_SALT_API_URL", "https://mom.example.net:8000")
    monkeypatch.setenv("SALTPIPE_SALT_API_USER", "saltpipe")
    result = _invoke(tmp_path, "rollout", "resume", "test")
    # Before: salt-api's missing password was the error, although there was nothing to resume.
    assert isinstance(result.exception, RolloutStateError), result.exception
    assert "no unfinished rollout to resume" in str(result.exception)
    assert "resuming" not in result.output


def test_resume_refused_by_the_lock_never_says_resuming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.errors import LockError
    from pipeline.rollout import RolloutStore

    monkeypatch.setenv("SALTPIPE_MASTER_CONFIG", str(tmp_path / "master"))
    import pipeline.commands.rollout as cmd

    monkeypatch.setattr(cmd, "_client", lambda app, env, opts, gates=None: ScriptedSaltClient(TEST_FLEET))
    RolloutStore(tmp_path / "state").set_current("test", "20261202T000000Z-rel-0123456789ab-0000")
    with EnvironmentLock(tmp_path / "state", "test", "rollout"):
        result = _invoke(tmp_path, "rollout", "resume", "test")
    assert isinstance(result.exception, LockError), result.exception
    assert "resuming" not in result.output  # before: "resuming <id>" was printed, then the lock refused
