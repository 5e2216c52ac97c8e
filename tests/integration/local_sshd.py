"""A throwaway OpenSSH server on 127.0.0.1 for testing the SSH file_roots target (and for bench/sync.py).

It runs the Debian ``openssh-server`` binary with its own host key, its own authorized key and its own client
config, on a free loopback port; it logs in as the current user. Nothing outside the work directory is touched
except ``/run/sshd`` (the privilege separation directory sshd insists on when started as root).
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"

#: Each program this needs -> the Debian package that has it (.ci/run installs them when run as root).
PACKAGES = {"sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client", "rsync": "rsync"}


def missing_tools(sshd: str = SSHD, which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The programs this needs that are not installed, each with its Debian package (empty when it can run)."""
    out = []
    if not os.access(sshd, os.X_OK):
        out.append(f"{sshd} (Debian: {PACKAGES['sshd']})")
    for tool in ("ssh", "ssh-keygen", "rsync"):
        if which(tool) is None:
            out.append(f"{tool} (Debian: {PACKAGES[tool]})")
    return out


def install_hint(missing: list[str]) -> str:
    """What to run for ``missing`` (as :func:`missing_tools` names them)."""
    packages = sorted({pkg for pkg in PACKAGES.values() if any(f"(Debian: {pkg})" in m for m in missing)})
    return f"apt-get install {' '.join(packages)} (as root; .ci/run installs them when missing)"


def require_tools(missing: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> None:
    """Let the calling test run only when sshd, ssh, ssh-keygen and rsync are installed.

    A missing one fails the test under ``CI=true`` (the SSH target is the path production uses: CI never passes
    without it) and skips it elsewhere, with a reason that names the Debian packages to install (``-ra``, on in
    pyproject.toml, prints it in pytest's summary)."""
    import pytest  # pylint: disable=import-outside-toplevel - bench/sync.py imports this module without pytest

    missing = missing_tools() if missing is None else missing
    if not missing:
        return
    message = f"the SSH sync tests need {', '.join(missing)}: {install_hint(missing)}"
    if environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing tool fails, never skips)", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalSshd:
    """A running sshd; ``ssh_options`` make an ``ssh`` client use it without touching ``~/.ssh``."""

    workdir: Path
    port: int
    user: str
    process: subprocess.Popen[bytes]

    @property
    def ssh_options(self) -> tuple[str, ...]:
        return ("-F", str(self.workdir / "ssh_config"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sshd(workdir: Path, timeout: float = 20.0) -> LocalSshd:
    """Start sshd in ``workdir`` and return once it accepts a real login (``ssh ... true`` succeeds)."""
    workdir.mkdir(parents=True, exist_ok=True)
    user = getpass.getuser()
    for key in ("host_key", "client_key"):
        if not (workdir / key).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / key)], check=True)
    shutil.copyfile(workdir / "client_key.pub", workdir / "authorized_keys")
    os.chmod(workdir / "authorized_keys", 0o600)
    port = _free_port()
    (workdir / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {workdir / 'host_key'}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "MaxSessions 100",
                "MaxStartups 100:30:200",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    host_pub = (workdir / "host_key.pub").read_text().split()
    (workdir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (workdir / "ssh_config").write_text(
        "\n".join(
            [
                "Host *",
                f"  User {user}",
                f"  IdentityFile {workdir / 'client_key'}",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {workdir / 'known_hosts'}",
                "  StrictHostKeyChecking yes",
                "  LogLevel ERROR",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(workdir / "sshd_config")], stderr=subprocess.PIPE)
    sshd = LocalSshd(workdir, port, user, proc)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"sshd exited with {proc.returncode}: {err}")
        check = subprocess.run(
            ["ssh", *sshd.ssh_options, "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
             "127.0.0.1", "true"],
            capture_output=True, text=True, check=False,
        )
        if check.returncode == 0:
            return sshd
        last = check.stderr.strip()
        time.sleep(0.1)  # polling for readiness, not asserting anything
    sshd.stop()
    raise RuntimeError(f"sshd on 127.0.0.1:{port} did not accept a login within {timeout}s: {last}")
