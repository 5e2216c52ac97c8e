"""Issue 16: the SSH sync suite (tests/integration/test_sync_ssh.py) never skips silently.

``local_sshd.require_tools`` decides: nothing missing -> the tests run; a program missing -> fail under ``CI=true``,
skip elsewhere, either way with the Debian packages to install. The suite itself is run in a subprocess with no
program on its PATH to prove it is wired to that decision (no daemon starts: the check comes first).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from local_sshd import PACKAGES, install_hint, missing_tools, require_tools  # noqa: E402


def test_missing_programs_are_named_with_their_debian_package(tmp_path: Path) -> None:
    assert missing_tools(sshd=str(tmp_path / "sshd"), which=lambda tool: None) == [
        f"{tmp_path / 'sshd'} (Debian: openssh-server)",
        "ssh (Debian: openssh-client)",
        "ssh-keygen (Debian: openssh-client)",
        "rsync (Debian: rsync)",
    ]
    only_rsync = missing_tools(sshd=sys.executable, which=lambda tool: None if tool == "rsync" else "/usr/bin/x")
    assert only_rsync == ["rsync (Debian: rsync)"]
    assert install_hint(only_rsync).startswith("apt-get install rsync ")


def test_nothing_missing_runs_under_ci_and_outside() -> None:
    require_tools([], environ={"CI": "true"})
    require_tools([], environ={})


@pytest.mark.parametrize("missing", [["/usr/sbin/sshd (Debian: openssh-server)"], ["rsync (Debian: rsync)"]])
def test_a_missing_program_fails_under_ci(missing: list[str]) -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        require_tools(missing, environ={"CI": "true"})
    assert install_hint(missing) in str(failed.value) and "never skips" in str(failed.value)


@pytest.mark.parametrize("environ", [{}, {"CI": "false"}])
def test_a_missing_program_skips_outside_ci_naming_the_package(environ: dict[str, str]) -> None:
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_tools(["/usr/sbin/sshd (Debian: openssh-server)", "rsync (Debian: rsync)"], environ=environ)
    assert "apt-get install openssh-server rsync" in str(skipped.value)


def _run_suite_without_programs(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """The suite with only git on the PATH (GitPython needs it at import): no ssh, ssh-keygen, rsync."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(bin_dir)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/integration/test_sync_ssh.py", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=120,
    )


def test_the_suite_fails_under_ci_without_its_programs(tmp_path: Path) -> None:
    proc = _run_suite_without_programs(tmp_path, "true")
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert " passed" not in proc.stdout and " skipped" not in proc.stdout
    assert "apt-get install openssh-client rsync" in proc.stdout


def test_the_suite_skips_loudly_outside_ci_without_its_programs(tmp_path: Path) -> None:
    proc = _run_suite_without_programs(tmp_path, None)
    assert proc.returncode == 0, proc.stdout[-2000:]
    summary = proc.stdout[proc.stdout.index("short test summary info"):]
    assert "SKIPPED" in summary and "apt-get install openssh-client rsync" in summary


def _ci_packages():
    spec = importlib.util.spec_from_file_location("ci_packages", REPO / ".ci" / "packages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tox_names_the_missing_debian_packages_and_ci_run_installs_the_same_list() -> None:
    ci = _ci_packages()
    assert set(PACKAGES.values()) <= set(ci.PACKAGES), "every package the SSH suite names is one .ci/run installs"
    lacking = ci.missing(which=lambda program: None if program in ("rsync", "ssh-keygen") else "/usr/bin/x")
    assert "rsync" in lacking and "openssh-client" in lacking and "npm" not in lacking
    text = ci.notice(["rsync", "openssh-client"])
    assert "rsync" in text and "test_sync_ssh.py" in text and "apt-get install rsync openssh-client" in text
    assert "fail under CI=true" in text
    assert ci.notice([]) == ""
    assert "python3 .ci/packages.py" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
