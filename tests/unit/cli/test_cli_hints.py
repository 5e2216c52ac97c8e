"""Hints point the right way (issue 16): each error says what is missing and which option or key fixes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import saltpipe
from small_checkout import local_syndics_config, small_checkout

from pipeline.sync.attest import SaltMasterAttestor


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, str]:
    """A small checkout whose test syndic directory exists and whose production ones do not; its release id."""
    repo_dir = tmp_path / "repo"
    (tmp_path / "syndics" / "syndic-test").mkdir(parents=True)
    small_checkout(repo_dir, local_syndics_config(tmp_path / "state", tmp_path / "syndics"))
    built = saltpipe("--repo", str(repo_dir), "release", "build", "--format", "json")
    assert built.code == 0, built.err
    return repo_dir, json.loads(built.out)["release"]


def test_lint_outside_a_checkout_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ran = saltpipe("lint")
    assert ran.code == 2
    assert "not a saltpipe checkout" in ran.err and "pass --repo" in ran.err
    assert "point --config" not in ran.err


def test_a_missing_config_given_with_config_names_that_file(tmp_path: Path) -> None:
    ran = saltpipe("--repo", str(tmp_path), "--config", str(tmp_path / "other.yaml"), "config", "check")
    assert ran.code == 2 and f"{tmp_path / 'other.yaml'}: file not found" in ran.err
    assert "not a saltpipe checkout" not in ran.err


def test_verify_runtime_asks_for_the_policy_with_policy(tmp_path: Path) -> None:
    masters = tmp_path / "etc-salt"
    masters.mkdir()
    ran = saltpipe("--repo", str(tmp_path), "policy", "verify-runtime", "--master-config", str(masters))
    assert ran.code == 2
    assert "runtime-policy.yaml: runtime policy not found" in ran.err and "--policy FILE" in ran.err
    assert "--config" not in ran.err


def test_sync_puts_each_syndics_error_and_hint_on_their_own_lines(checkout: tuple[Path, str]) -> None:
    repo_dir, release = checkout
    ran = saltpipe("--repo", str(repo_dir), "sync", "production", "--release", release)
    assert ran.code == 2
    lines = ran.err.splitlines()
    a = next(i for i, line in enumerate(lines) if line.strip().startswith("syndic syndic-prod-a:"))
    b = next(i for i, line in enumerate(lines) if line.strip().startswith("syndic syndic-prod-b:"))
    # prod-a's error, its own hint, then prod-b's error on a line of its own: never glued onto a hint line.
    assert b == a + 2 and lines[a + 1].strip().startswith("hint: create it (mkdir -p ")
    assert "syndic-prod-a" in lines[a + 1] and "syndic-prod-b" not in lines[a + 1]
    assert lines[b + 1].strip().startswith("hint: ") and "syndic-prod-b" in lines[b + 1]
    assert lines[-1].startswith("  hint: fix the cause and run `saltpipe sync production")


def test_a_missing_file_roots_directory_has_a_hint_in_the_table(checkout: tuple[Path, str]) -> None:
    repo_dir, release = checkout
    ran = saltpipe("--repo", str(repo_dir), "sync", "production", "--release", release)
    out = ran.out.splitlines()
    failed = next(i for i, line in enumerate(out) if "syndic-prod-a" in line and "does not exist" in line)
    assert out[failed + 1].strip().startswith("hint: create it (mkdir -p ")
    assert "file_roots.path of syndic syndic-prod-a" in out[failed + 1]


def test_a_syndic_master_config_that_does_not_exist_is_named(checkout: tuple[Path, str], tmp_path: Path) -> None:
    repo_dir, release = checkout
    missing = tmp_path / "no-such" / "master"
    ran = saltpipe("--repo", str(repo_dir), "sync", "test", "--release", release, "--canary", "--attest", "salt",
                   "--syndic-config", f"syndic-test={missing}")
    assert ran.code == 2
    assert f"master config {missing} does not exist on this host" in ran.err
    assert "--syndic-config syndic-test=PATH" in ran.err
    assert "is not served" not in ran.err


def test_salt_master_attestor_names_a_missing_master_config(tmp_path: Path) -> None:
    served = SaltMasterAttestor({"syndic-test": tmp_path / "master"}).attest(["syndic-test"])
    assert served[0].release is None
    assert served[0].error is not None and "does not exist on this host" in served[0].error


def test_impact_names_a_missing_master_config(checkout: tuple[Path, str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    repo_dir, release = checkout
    missing = tmp_path / "no-such" / "master"
    monkeypatch.delenv("SALTPIPE_MASTER_CONFIG", raising=False)
    ran = saltpipe("--repo", str(repo_dir), "impact", "test", "--release", release, "--master-config", str(missing))
    assert ran.code == 2
    assert f"{missing}: no such master config file" in ran.err
    assert "hint: point --master-config (or SALTPIPE_MASTER_CONFIG) at the master-of-masters' config" in ran.err


def test_impact_without_any_way_to_reach_salt_says_what_to_configure(checkout: tuple[Path, str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    repo_dir, release = checkout
    for var in ("SALTPIPE_MASTER_CONFIG", "SALTPIPE_SALT_API_URL"):
        monkeypatch.delenv(var, raising=False)
    ran = saltpipe("--repo", str(repo_dir), "impact", "test", "--release", release)
    assert ran.code == 2, ran.out + ran.err
    assert "give exactly one way to reach the master-of-masters" in ran.err
    assert f"add a `salt:` section to {repo_dir / 'salt' / 'pipeline.yaml'}" in ran.err
    assert "--master-config PATH" in ran.err and "--salt-api URL" in ran.err


def test_lint_names_the_fixtures_key_of_a_missing_fixture_file(checkout: tuple[Path, str]) -> None:
    repo_dir, _ = checkout
    ran = saltpipe("--repo", str(repo_dir), "lint")
    assert ran.code == 2, ran.out + ran.err
    grains = repo_dir / "salt" / "fixtures" / "test" / "grains.yaml"
    assert f"{grains}: fixture file not found" in ran.err
    # --config was right: the hint names the key of salt/pipeline.yaml that points at the file.
    assert "or set environments.test.fixtures.grains in the pipeline config" in ran.err
    assert "--config" not in ran.err
