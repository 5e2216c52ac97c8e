"""One ssh connection per syndic carrying every step of a sync: a remote ``sh`` that runs framed scripts.

A step costs a round trip, not an ssh handshake and a process start on both ends (see :class:`Session`).
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import shlex
import subprocess
import time
from dataclasses import dataclass

#: ssh exits 255 when it could not connect or authenticate (the remote command's own codes are lower).
SSH_FAILED = 255


@dataclass(frozen=True)
class Done:
    """One step's exit code, stdout and stderr."""

    returncode: int
    stdout: bytes
    stderr: bytes


class Session:
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

    def run(self, script: str, args: tuple[str, ...], stdin: bytes, timeout: float) -> Done:
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
                    return Done(int(match.group(1)), out, err)
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

    def _dead(self) -> Done:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read() if self.proc.stderr else b""
        code = self.proc.returncode if self.proc.returncode not in (0, None) else SSH_FAILED
        return Done(code if code > 0 else SSH_FAILED, b"", err)

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
