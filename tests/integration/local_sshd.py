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
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def missing_tools() -> list[str]:
    """Names of the programs this needs that are not installed (empty when it can run)."""
    out = []
    if not os.access(SSHD, os.X_OK):
        out.append("sshd (Debian: openssh-server)")
    for tool in ("ssh", "ssh-keygen", "rsync"):
        if shutil.which(tool) is None:
            out.append(tool)
    return out


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
