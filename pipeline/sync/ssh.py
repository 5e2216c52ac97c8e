"""The SSH file_roots target: the syndic's directory is on another host, reached with ssh and rsync.

Every primitive is one short POSIX ``sh`` script run over ssh; changed files travel with ``rsync
--files-from``. What the remote host needs: sshd, rsync, and GNU coreutils/findutils (``cp -al``, ``mv -T``,
``find -printf``, ``sha256sum``, ``stat -f``) - the defaults on Debian, Ubuntu and RHEL syndic masters; ``openssl``
hashes instead of sha256sum when it is there. No Python or saltpipe is installed there.

One ssh connection per syndic carries every step of a sync: a remote ``sh`` reads the steps' scripts from its
stdin and frames each one's output with a random marker (:class:`_Session`), so a step costs a round trip,
not an ssh handshake and a process start on both ends. rsync reuses the same connection (``ControlMaster``). Host keys and other client settings come from the user's ssh configuration
(``~/.ssh/config``, ``known_hosts``); ``BatchMode`` makes a missing key or unknown host fail instead of prompting.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import selectors
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.release.manifest import MARKER_NAME, RELEASE_ID_RE
from pipeline.release.tree import FileFact, TreeScan
from pipeline.sync.layout import STAGING_PREFIX, link_target, release_of_target, staging_name
from pipeline.sync.target import CopyStats, FileRootsTarget, TargetError, TargetSnapshot

#: ssh exits 255 when it could not connect or authenticate (the remote command's own codes are lower).
SSH_FAILED = 255

_SNAPSHOT = r"""
root=$1
[ -d "$root" ] || { echo "no such directory: $root" >&2; exit 3; }
cd "$root" || exit 3
{ [ -d releases ] && [ -d envs ]; } || mkdir -p releases envs || exit 4
for d in releases/* releases/.staging-*; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then printf 'D\t%s\n' "${d#releases/}"; fi
done
if [ -L current ]; then printf 'L\tcurrent\t%s\n' "$(readlink current)"; fi
for l in envs/*; do
  if [ -L "$l" ]; then printf 'L\t%s\t%s\n' "$l" "$(readlink "$l")"; fi
done
printf 'F\t%s\n' "$(stat -f -c '%a %S' .)"
if [ -f saltpipe-state.json ]; then printf 'S\t'; tr -d '\n' < saltpipe-state.json; printf '\n'; fi
"""

_PREPARE = r"""
cd "$1/releases" || exit 3
st=".staging-$2"
rm -rf -- "$st" || exit 4
if [ -z "$3" ]; then mkdir -- "$st" || exit 4; exit 0; fi
cp -al -- "$3" "$st" || exit 5
cd "$st" || exit 5
tr '\n' '\0' | xargs -0 -r rm -f -- || exit 6
find . -mindepth 1 -depth -type d -empty -delete || exit 6
"""

# The hashes come from OpenSSL's sha256 when the host has a working `openssl` (it uses the CPU's SHA
# instructions: about 2.5x less CPU than coreutils' sha256sum here), else from sha256sum; both print
# "<hex> [ *]./path" lines. A name with a newline could make a line-based listing lie about another path, so
# such an entry is reported on its own ("X", by inode) and fails the verification.
_SCAN = r"""
cd "$1/releases/$2" || exit 3
nl=$(printf '\nx'); nl=${nl%x}
find . -mindepth 1 \( -name "*$nl*" -printf 'X\t%i\n' \) , \( ! -type d ! -type f -printf 'O\t%y\t%P\n' \) , \
  \( -type f -printf 'F\t%s\t%m\t%P\n' \)
if [ "$(openssl dgst -sha256 -r /dev/null 2>/dev/null)" = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 */dev/null" ]; then
  find . -type f -print0 | xargs -0 -r openssl dgst -sha256 -r
else
  find . -type f -print0 | xargs -0 -r sha256sum --
fi
"""

_COMMIT = r"""
cd "$1/releases" || exit 3
if [ -e "$2" ]; then echo "releases/$2 exists already" >&2; exit 7; fi
mv -T -- ".staging-$2" "$2"
"""

_DISCARD = r"""
cd "$1/releases" || exit 3
rm -rf -- "$2"
"""

_SET_LINK = r"""
cd "$1" || exit 3
[ -d "releases/$4" ] || { echo "release $4 is not staged here" >&2; exit 8; }
if [ -d "$2" ] && [ ! -L "$2" ]; then
  rmdir -- "$2" 2>/dev/null || { echo "$1/$2 is a directory with files in it, not a saltpipe link" >&2; exit 10; }
fi
tmp="$(dirname -- "$2")/.saltpipe-tmp-$$"
ln -s -- "$3" "$tmp" || exit 9
mv -Tf -- "$tmp" "$2" || { rm -f -- "$tmp"; exit 9; }
"""

_REMOVE_LINK = r"""
cd "$1" || exit 3
if [ -L "$2" ]; then rm -f -- "$2"; fi
"""

_CLEAR_LIST_CACHE = r"""
d="$1/file_lists"
[ -d "$d" ] || exit 0
for b in "$d"/*/; do
  [ -d "$b" ] || continue
  rm -f -- "$b$2.p" || exit 1
done
"""

_READ_MARKER = r"""
f="$1/$2/saltpipe-release.json"
if [ -f "$f" ]; then cat -- "$f"; else exit 1; fi
"""

_WRITE_STATE = r"""
cd "$1" || exit 3
tmp=".saltpipe-tmp-state-$$"
cat > "$tmp" && mv -f -- "$tmp" saltpipe-state.json
"""


@dataclass(frozen=True)
class _Done:
    """One step's exit code, stdout and stderr."""

    returncode: int
    stdout: bytes
    stderr: bytes


class _Session:
    """A remote ``sh`` over one ssh connection, running one framed script at a time.

    Each script runs in a subshell (so ``cd`` and ``exit`` stay inside it) with its positional arguments set and
    its stdin from a quoted here-document; its stderr goes to a remote temp file. After it the remote shell
    prints ``<marker-out>``, the stderr, and ``<marker-end> <exit code>``; the markers carry a random nonce, so
    no file name or content can fake them. EOF before the end marker means the connection is gone: the
    result then carries ssh's own exit code (255 when it could not connect) and stderr.
    """

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        nonce = secrets.token_hex(12)
        self.out_marker = f"__saltpipe_out_{nonce}"
        self.end_marker = f"__saltpipe_end_{nonce}"
        self.data_marker = f"__saltpipe_data_{nonce}"
        self._buf = b""
        #: Bytes written to / read from the remote shell (scripts, file lists, state; not rsync's).
        self.sent = 0
        self.received = 0
        self._send(b'SP_ERR=$(mktemp) || exit 97\ntrap \'rm -f "$SP_ERR"\' EXIT\n')

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _send(self, data: bytes) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        self.sent += len(data)
        return True

    def run(self, script: str, args: tuple[str, ...], stdin: bytes, timeout: float) -> _Done:
        if stdin and not stdin.endswith(b"\n"):
            stdin += b"\n"
        quoted = " ".join(shlex.quote(a) for a in args)
        command = (
            f"(\nset -- {quoted}\n{script}\n) 2>\"$SP_ERR\" <<'{self.data_marker}'\n".encode()
            + stdin
            + (
                f"{self.data_marker}\n"
                "sp_rc=$?\n"
                f"printf '\\n%s\\n' '{self.out_marker}'\n"
                '[ -s "$SP_ERR" ] && cat "$SP_ERR"\n'
                f"printf '\\n%s %s\\n' '{self.end_marker}' \"$sp_rc\"\n"
            ).encode()
        )
        if not self._send(command):
            return self._dead()
        end = re.compile(rb"\n" + re.escape(self.end_marker.encode()) + rb" (\d+)\n")
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                match = end.search(self._buf)
                if match:
                    body, self._buf = self._buf[: match.start()], self._buf[match.end() :]
                    out, _, err = body.partition(b"\n" + self.out_marker.encode() + b"\n")
                    return _Done(int(match.group(1)), out, err)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired("ssh", timeout)
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return self._dead()
                self.received += len(chunk)
                self._buf += chunk

    def _dead(self) -> _Done:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read() if self.proc.stderr else b""
        code = self.proc.returncode if self.proc.returncode not in (0, None) else SSH_FAILED
        return _Done(code if code > 0 else SSH_FAILED, b"", err)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.alive():
            self._send(b"exit 0\n")
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


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
        self._session: _Session | None = None
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

    def _run(self, step: str, script: str, *args: str, stdin: bytes = b"", ok_codes: tuple[int, ...] = (0,)) -> _Done:
        with self._lock:
            if self._session is None or not self._session.alive():
                self._retire_session()
                self._session = _Session(self._ssh_argv() + [self.host, "sh"])
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
        proc = self._run("read file_roots directory", _SNAPSHOT, str(self.root))
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
        self._run("prepare staging", _PREPARE, str(self.root), release_id, donor or "", stdin=data)
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
        return _parse_scan(self._run(f"verify {name}", _SCAN, str(self.root), name).stdout)

    def commit_staging(self, release_id: str) -> None:
        self._run("publish staged release", _COMMIT, str(self.root), release_id)

    def discard(self, name: str) -> None:
        self._run(f"remove {name}", _DISCARD, str(self.root), name)

    def set_link(self, link: str, release_id: str) -> None:
        self._run(f"switch {link}", _SET_LINK, str(self.root), link, link_target(link, release_id), release_id)

    def remove_link(self, link: str) -> None:
        self._run(f"remove {link}", _REMOVE_LINK, str(self.root), link)

    def read_served_marker(self, link: str) -> bytes | None:
        proc = self._run(f"read {link}/{MARKER_NAME}", _READ_MARKER, str(self.root), link, ok_codes=(0, 1))
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
        self._run(f"clear the file list cache of {saltenv} in {self.salt_cachedir}/file_lists", _CLEAR_LIST_CACHE,
                  str(self.salt_cachedir), saltenv)
        return True

    def write_state(self, state: dict[str, Any]) -> None:
        data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode("utf-8")
        self._run("write state", _WRITE_STATE, str(self.root), stdin=data)


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


def _parse_scan(stdout: bytes) -> TreeScan:
    """The output of :data:`_SCAN` as a :class:`TreeScan`."""
    sizes: dict[str, tuple[int, int]] = {}
    hashes: dict[str, str] = {}
    others: dict[str, str] = {}
    kinds = {"l": "symlink", "p": "fifo", "s": "socket", "c": "device", "b": "device"}
    for line in stdout.decode("utf-8", "surrogateescape").split("\n"):
        if line.startswith("O\t") and line.count("\t") >= 2:
            _, kind, path = line.split("\t", 2)
            others[path] = kinds.get(kind, "special file")
        elif line.startswith("X\t"):
            others[f"(inode {line[2:]}: a name with a newline)"] = "name with a newline"
        elif line.startswith("F\t"):
            try:
                _, size, mode, path = line.split("\t", 3)
                sizes[path] = (int(size), int(mode, 8))
            except ValueError:  # only a name with a newline breaks a line; it is reported as "X" too
                others[line] = "unreadable listing line"
        elif line:
            digest, path = _parse_sha256sum(line)
            hashes[path] = digest
    files = {p: FileFact(size, mode, hashes.get(p, "")) for p, (size, mode) in sizes.items()}
    return TreeScan(files, others)


def _parse_sha256sum(line: str) -> tuple[str, str]:
    """``<hex>  ./path`` (sha256sum) or ``<hex> *./path`` (``openssl dgst -r``) -> (hex, path).

    Both escape a name with a newline (and sha256sum one with a backslash) and flag the line with a backslash.
    """
    escaped = line.startswith("\\")
    if escaped:
        line = line[1:]
    digest, _, path = line.partition(" ")
    path = path[1:] if path[:1] in (" ", "*") else path
    if escaped:
        path = path.replace("\\\\", "\0").replace("\\n", "\n").replace("\0", "\\")
    if path.startswith("./"):
        path = path[2:]
    return digest, path
