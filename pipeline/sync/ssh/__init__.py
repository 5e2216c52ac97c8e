"""The SSH file_roots target: the syndic's directory is on another host, reached with ssh and rsync.

Every primitive is one short POSIX ``sh`` script run over ssh (:mod:`pipeline.sync.ssh.scripts`); changed files travel with ``rsync
--files-from``. What the remote host needs: sshd, rsync, and GNU coreutils/findutils (``cp -al``, ``mv -T``,
``find -printf``, ``sha256sum``, ``stat -f``) - the defaults on Debian, Ubuntu and RHEL syndic masters; ``openssl``
hashes instead of sha256sum when it is there. No Python or saltpipe is installed there.

One ssh connection per syndic carries every step of a sync: a remote ``sh`` reads the steps' scripts from its
stdin and frames each one's output with a random marker (:class:`~pipeline.sync.ssh.session.Session`), so a
step costs a round trip, not an ssh handshake and a process start on both ends. rsync reuses the same connection
(``ControlMaster``). Host keys and other client settings come from the user's ssh configuration
(``~/.ssh/config``, ``known_hosts``); ``BatchMode`` makes a missing key or unknown host fail instead of prompting.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from pipeline.release.manifest import MARKER_NAME, RELEASE_ID_RE
from pipeline.release.tree import TreeScan
from pipeline.sync.layout import STAGING_PREFIX, link_target, release_of_target, staging_name
from pipeline.sync.ssh.scripts import (
    CLEAR_LIST_CACHE,
    COMMIT,
    DISCARD,
    PREPARE,
    READ_MARKER,
    REMOVE_LINK,
    SCAN,
    SET_LINK,
    SNAPSHOT,
    WRITE_STATE,
    parse_scan,
)
from pipeline.sync.ssh.session import SSH_FAILED, Done, Session
from pipeline.sync.target import CopyStats, FileRootsTarget, TargetError, TargetSnapshot



class SshTarget(FileRootsTarget):
    """A syndic whose directory is ``root`` on ``host``.

    ``ssh_options`` are extra ``ssh`` arguments (``["-F", "ssh_config"]`` in tests); ``connect_timeout`` bounds
    how long an unreachable host may take to be declared unreachable; ``rsync_path`` and ``rsync_options``
    are passed to rsync (``--rsync-path``, e.g. ``--bwlimit=...``).
    """

    def __init__(
        self,
        name: str,
        host: str,
        root: Path,
        *,
        user: str | None = None,
        port: int = 22,
        identity_file: Path | None = None,
        ssh_options: tuple[str, ...] = (),
        connect_timeout: int = 10,
        command_timeout: float = 600,
        rsync_path: str | None = None,
        rsync_options: tuple[str, ...] = (),
        salt_cachedir: Path | None = None,
        salt_master_config: Path = Path("/etc/salt/master"),
        salt_python: str | None = None,
    ) -> None:
        self.name = name
        #: The syndic master's config on that host and (optionally) the interpreter its Salt runs with: what
        #: read_through_salt asks (default: salt-run's interpreter).
        self.salt_master_config = Path(salt_master_config)
        self.salt_python = salt_python
        self.salt_cachedir = Path(salt_cachedir) if salt_cachedir else None
        self.host = host
        self.root = Path(root)
        self.user = user
        self.port = port
        self.identity_file = identity_file
        self.ssh_options = tuple(ssh_options)
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.rsync_path = rsync_path
        self.rsync_options = tuple(rsync_options)
        self._control_dir: str | None = None
        self._session: Session | None = None
        self._lock = threading.Lock()
        self._traffic = {"control_sent": 0, "control_received": 0, "rsync_sent": 0}
        #: Releases whose staging dir was just prepared and has had no copy yet (see copy_files).
        self._fresh: dict[str, bool] = {}

    def describe(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"ssh://{user}{self.host}:{self.port}{self.root}"

    # -- ssh plumbing ---------------------------------------------------------------------------------------------

    def _ssh_argv(self) -> list[str]:
        if self._control_dir is None:
            self._control_dir = tempfile.mkdtemp(prefix="saltpipe-ssh-")
        argv = [
            "ssh",
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={self.connect_timeout}",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={self._control_dir}/%C",
            "-o", "ControlPersist=120",
            "-p", str(self.port),
        ]  # fmt: skip
        if self.identity_file:
            argv += ["-i", str(self.identity_file), "-o", "IdentitiesOnly=yes"]
        if self.user:
            argv += ["-l", self.user]
        return argv + list(self.ssh_options)

    def _run(self, step: str, script: str, *args: str, stdin: bytes = b"", ok_codes: tuple[int, ...] = (0,)) -> Done:
        with self._lock:
            if self._session is None or not self._session.alive():
                self._retire_session()
                self._session = Session(self._ssh_argv() + [self.host, "sh"])
            try:
                done = self._session.run(script, args, stdin, self.command_timeout)
            except subprocess.TimeoutExpired:
                self._session.kill()
                self._retire_session()
                raise TargetError(self.name, step, f"no answer from {self.host} within {self.command_timeout:.0f}s",
                                  hint="check the host and the network, then re-run") from None
            except FileNotFoundError:
                raise TargetError(self.name, step, "the ssh client is not installed here",
                                  hint="install openssh-client") from None
            if done.returncode == SSH_FAILED:
                self._retire_session()
        if done.returncode in ok_codes:
            return done
        raise self._error(step, done.returncode, done.stderr)

    def _error(self, step: str, code: int, stderr: bytes) -> TargetError:
        text = stderr.decode("utf-8", "replace").strip()
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("Warning: Permanently")]
        last = _cause(lines) or f"exit code {code}"
        if code == SSH_FAILED:
            return TargetError(
                self.name, step, f"cannot reach {self.describe()}: {last}",
                hint=f"check that `ssh -p {self.port} {self.user + '@' if self.user else ''}{self.host} true` works "
                "without a password prompt, then re-run",
            )
        hint = None
        if "No space left" in text or "Disk quota" in text or "File too large" in text:
            hint = "free space on the syndic's file system, then re-run"
        elif "Permission denied" in text or "Read-only file system" in text:
            hint = "saltpipe's ssh user needs write access to the syndic's file_roots directory"
        return TargetError(self.name, step, last, hint=hint)

    def traffic(self) -> dict[str, int]:
        """Bytes this target moved so far: to and from the remote shell, and rsync's "Total bytes sent"."""
        live = self._session
        out = dict(self._traffic)
        if live is not None:
            out["control_sent"] += live.sent
            out["control_received"] += live.received
        return out

    def _retire_session(self) -> None:
        if self._session is not None:
            self._traffic["control_sent"] += self._session.sent
            self._traffic["control_received"] += self._session.received
            self._session.close()
            self._session = None

    def close(self) -> None:
        with self._lock:
            self._retire_session()
        if self._control_dir is None:
            return
        subprocess.run(self._ssh_argv() + ["-O", "exit", self.host], capture_output=True, check=False, timeout=30)
        shutil.rmtree(self._control_dir, ignore_errors=True)
        self._control_dir = None

    # -- the interface ----------------------------------------------------------------------------------------------

    def snapshot(self) -> TargetSnapshot:
        proc = self._run("read file_roots directory", SNAPSHOT, str(self.root))
        releases: list[str] = []
        staging: list[str] = []
        links: dict[str, str | None] = {}
        state: dict[str, Any] = {}
        free: int | None = None
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            kind, _, rest = line.partition("\t")
            if kind == "D":
                if rest.startswith(STAGING_PREFIX):
                    staging.append(rest)
                elif RELEASE_ID_RE.match(rest):
                    releases.append(rest)
            elif kind == "L":
                link, _, target = rest.partition("\t")
                links[link] = release_of_target(target)
            elif kind == "F" and rest.replace(" ", "").isdigit() and rest.count(" ") == 1:
                blocks, size = rest.split(" ")
                free = int(blocks) * int(size)
            elif kind == "S":
                try:
                    parsed = json.loads(rest)
                    state = parsed if isinstance(parsed, dict) else {}
                except ValueError:
                    state = {}
        return TargetSnapshot(tuple(sorted(releases)), tuple(sorted(staging)), links, state, free)

    def prepare_staging(self, release_id: str, donor: str | None, keep: list[str], drop: list[str]) -> None:
        data = "".join(p + "\n" for p in drop).encode("utf-8")
        self._fresh.pop(release_id, None)
        self._run("prepare staging", PREPARE, str(self.root), release_id, donor or "", stdin=data)
        self._fresh[release_id] = True

    def copy_files(self, release_id: str, source_tree: Path, paths: list[str]) -> CopyStats:
        if not paths:
            return CopyStats(0, 0, 0)
        self._ssh_argv()  # make sure the control dir exists for -e
        dest = f"{self.host}:{self.root}/releases/{staging_name(release_id)}/"
        argv = [
            "rsync",
            "-rp",  # no -t: a copied file gets a new mtime, which Salt's mtime-keyed hash cache needs
            "--whole-file",  # nothing to delta against: the paths are new in the staging dir (or replaced whole)
            "--files-from=-", "--from0", "--stats",
            "-e", shlex.join(self._ssh_argv()),
        ]  # fmt: skip
        if self._fresh.pop(release_id, False):
            # Right after prepare_staging none of these paths exists in the staging dir, so rsync may write each
            # new file where it ends up instead of into a temp file renamed over it (about a quarter less CPU on
            # the syndic). --ignore-existing makes that safe whatever the directory holds: rsync never opens an
            # existing file, so it can never write through a hard link into another release. A file it skipped
            # fails the verification that follows and is then copied again the normal way (temp file + rename).
            argv += ["--inplace", "--ignore-existing"]
        if self.rsync_path:
            argv.append(f"--rsync-path={self.rsync_path}")
        argv += self.rsync_options
        argv += [f"{source_tree}/", dest]
        data = b"".join(p.encode("utf-8") + b"\0" for p in paths)
        try:
            proc = subprocess.run(argv, input=data, capture_output=True, timeout=self.command_timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TargetError(self.name, "copy changed files", f"rsync did not finish within {self.command_timeout:.0f}s",
                              hint="re-run; staging starts afresh") from None
        except FileNotFoundError:
            raise TargetError(self.name, "copy changed files", "rsync is not installed here",
                              hint="install rsync on this host and on the syndic") from None
        if proc.returncode != 0:
            # rsync reports ssh failures as code 255 or 12 with ssh's message on stderr.
            code = SSH_FAILED if proc.returncode == 255 else proc.returncode
            raise self._error("copy changed files", code, proc.stderr)
        out = proc.stdout.decode("utf-8", "replace")
        sent = _stat(out, "Total bytes sent")
        size = _stat(out, "Total transferred file size")
        self._traffic["rsync_sent"] += sent or 0
        return CopyStats(files=len(paths), bytes=size if size is not None else 0, wire_bytes=sent)

    def scan(self, name: str) -> TreeScan:
        return parse_scan(self._run(f"verify {name}", SCAN, str(self.root), name).stdout)

    def commit_staging(self, release_id: str) -> None:
        self._run("publish staged release", COMMIT, str(self.root), release_id)

    def discard(self, name: str) -> None:
        self._run(f"remove {name}", DISCARD, str(self.root), name)

    def set_link(self, link: str, release_id: str) -> None:
        self._run(f"switch {link}", SET_LINK, str(self.root), link, link_target(link, release_id), release_id)

    def remove_link(self, link: str) -> None:
        self._run(f"remove {link}", REMOVE_LINK, str(self.root), link)

    def read_served_marker(self, link: str) -> bytes | None:
        proc = self._run(f"read {link}/{MARKER_NAME}", READ_MARKER, str(self.root), link, ok_codes=(0, 1))
        return proc.stdout if proc.returncode == 0 else None

    def read_through_salt(self, saltenv: str) -> dict[str, Any]:
        """Ask the syndic master's own Salt fileserver on that host (pipeline/sync/salt_remote.py): its file list
        for ``saltenv`` and the marker as it serves it. :class:`SaltUnavailable` when Salt cannot run there."""
        from pipeline.sync.salt_remote import SALT_PROGRAM, SALT_READ, SALT_UNAVAILABLE, SaltUnavailable, parse_answer

        step = f"ask the Salt fileserver of {self.salt_master_config} for {saltenv}"
        done = self._run(step, SALT_READ, self.salt_python or "", str(self.salt_master_config), saltenv,
                         stdin=SALT_PROGRAM.encode(), ok_codes=(0, SALT_UNAVAILABLE))
        text = done.stderr.decode("utf-8", "replace").strip().splitlines()
        if done.returncode == SALT_UNAVAILABLE:
            raise SaltUnavailable(self.name, step, text[-1] if text else "Salt cannot be run on this host",
                                  hint="install the syndic master's Salt there, or set file_roots.salt_python")
        try:
            return parse_answer(done.stdout)
        except ValueError as exc:
            raise TargetError(self.name, step, f"unreadable answer from Salt ({exc}): {' '.join(text[-2:])}") from None

    def clear_file_list_cache(self, saltenv: str) -> bool:
        if self.salt_cachedir is None:
            return False
        self._run(f"clear the file list cache of {saltenv} in {self.salt_cachedir}/file_lists", CLEAR_LIST_CACHE,
                  str(self.salt_cachedir), saltenv)
        return True

    def write_state(self, state: dict[str, Any]) -> None:
        data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode("utf-8")
        self._run("write state", WRITE_STATE, str(self.root), stdin=data)


_TELLING = ("No space left", "Disk quota", "File too large", "Permission denied", "Read-only file system",
            "Connection refused", "No route to host", "timed out", "No such file", "not staged", "exists already", "not a saltpipe link")


def _cause(lines: list[str]) -> str | None:
    """The stderr line that says what went wrong: a telling one, else the first that is not rsync's summary."""
    for line in lines:
        if any(word in line for word in _TELLING):
            return line.strip()
    specific = [line for line in lines if not line.startswith("rsync error:")]
    return (specific[-1] if specific else lines[-1]).strip() if lines else None


def _stat(output: str, label: str) -> int | None:
    match = re.search(rf"^{re.escape(label)}: ([\d,.]+)", output, re.MULTILINE)
    if not match:
        return None
    return int(re.sub(r"[,.]", "", match.group(1)))
