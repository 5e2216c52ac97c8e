"""Attestation through the Salt fileserver of a syndic master on another host, over the SSH target's session.

:class:`SshSaltAttestor` runs, on the syndic host, the same Salt calls :class:`~pipeline.sync.attest.SaltMasterAttestor`
makes in-process for a local master: load that master's own config (``salt_master_config``, default
``/etc/salt/master``), ``Fileserver.update()`` and ``clear_file_list_cache`` for the saltenv (what the runners
``fileserver.update`` / ``fileserver.clear_file_list_cache`` do), ``file_list`` for the saltenv, and
``serve_file`` of ``salt://saltpipe-release.json`` - the bytes a minion's ``cp.get_file`` receives. It is one
Python process of the master's own interpreter (the one ``salt-run`` runs with, unless ``salt_python`` names
one), not four ``salt-run`` processes (about 8 s each on a loaded 2-core host, measured). Besides the marker,
Salt's file list for the saltenv must be exactly the release's manifest: a master whose ``file_roots`` points
elsewhere, or adds a second root, is caught even if the marker agrees.

When Salt cannot be run on that host at all (no ``salt-run``, no interpreter with Salt: exit 127) the
attestation falls back - only under ``--attest auto`` - to the marker read through the file system, and says
so: that proves the files, not what the syndic's Salt fileserver serves (reported as weaker evidence).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.release.manifest import MARKER_NAME
from pipeline.sync.attest import ServedRelease, WeakerMarkerAttestor, ask_each, served_from_marker
from pipeline.sync.target import TargetError

#: Exit code of the remote step when Salt cannot be run on the host (command not found, by shell convention).
SALT_UNAVAILABLE = 127

#: The remote step: find the master's interpreter ($1, or salt-run's ``#!`` line) and run the program on stdin.
SALT_READ = r"""
py=$1; shift
if [ -z "$py" ]; then
  run=$(command -v salt-run 2>/dev/null) || { echo "no salt-run on this host" >&2; exit 127; }
  py=$(sed -n '1s/^#![[:space:]]*//p' "$run")
  [ -n "$py" ] || { echo "$run has no interpreter line" >&2; exit 127; }
fi
exec $py - "$@"
"""

#: Runs with the syndic master's interpreter: argv = master config, saltenv. Prints one JSON object.
SALT_PROGRAM = r"""
import json, sys
try:
    import salt.config, salt.fileserver, salt.version
except ImportError as exc:
    sys.stderr.write("no Salt for %s: %s\n" % (sys.executable, exc))
    sys.exit(127)
conf, saltenv, marker = sys.argv[1], sys.argv[2], "saltpipe-release.json"
opts = salt.config.master_config(conf)
fs = salt.fileserver.Fileserver(opts)
fs.update()
fs.clear_file_list_cache({"saltenv": saltenv})
files = sorted(fs.file_list({"saltenv": saltenv}))
data = b""
if marker in files:
    while True:
        chunk = fs.serve_file({"path": marker, "saltenv": saltenv, "loc": len(data)})["data"]
        if not chunk:
            break
        data += chunk if isinstance(chunk, bytes) else chunk.encode()
roots = opts.get("file_roots") or {}
print(json.dumps({"files": files, "marker": data.decode("utf-8", "replace"), "salt": salt.version.__version__,
                  "file_roots": roots.get(saltenv, roots.get("__env__"))}))
"""

#: The release's file list as the manifest says (``None``: the release is not in the local store).
ExpectedFiles = Callable[[str], "set[str] | None"]


class SaltUnavailable(TargetError):
    """Salt cannot be run on the syndic host (so its fileserver cannot be asked there)."""


class SshSaltAttestor:
    """Asks each SSH syndic's Salt fileserver (on its own host) what it serves; see the module docstring.

    ``targets``: syndic name -> :class:`~pipeline.sync.ssh.SshTarget`; ``expected_files`` gives a release's
    manifest paths; ``fallback`` (``--attest auto``) reads the marker through the target when Salt cannot be
    run there, reported as ``file_roots (weaker: ...)``.
    """

    method = "salt-master (ssh)"

    def __init__(self, targets: dict[str, Any], expected_files: ExpectedFiles, *, fallback: bool) -> None:
        self.targets = dict(targets)
        self.expected_files = expected_files
        self.fallback = fallback

    def attest(self, syndics: Sequence[str], saltenv: str = "base") -> tuple[ServedRelease, ...]:
        return ask_each(syndics, lambda name: self._one(name, saltenv))

    def _one(self, name: str, saltenv: str) -> ServedRelease:
        target = self.targets[name]
        try:
            answer = target.read_through_salt(saltenv)
        except SaltUnavailable as exc:
            if not self.fallback:
                return ServedRelease(name, None, error=f"cannot ask its Salt fileserver: {exc.cause}", method=self.method)
            return WeakerMarkerAttestor([target], exc.cause).attest([name], saltenv)[0]
        except TargetError as exc:
            return ServedRelease(name, None, error=exc.cause, method=self.method)
        served = served_from_marker(name, answer.get("marker") or None, self.method)
        if served.error or not served.release:
            return served
        expected = self.expected_files(served.release)
        files = set(answer.get("files") or ())
        if expected is not None and files != expected:
            extra, lost = sorted(files - expected), sorted(expected - files)
            return ServedRelease(
                name, served.release, served.digest, method=self.method,
                error=f"its Salt fileserver lists other files for {saltenv} than release {served.release} holds "
                      f"(not in the release: {', '.join(extra[:3]) or 'none'}; missing: {', '.join(lost[:3]) or 'none'}; "
                      f"file_roots {answer.get('file_roots')})",
            )
        return served


def parse_answer(stdout: bytes) -> dict[str, Any]:
    """The JSON line :data:`SALT_PROGRAM` prints (the last line: Salt may log before it)."""
    lines = [line for line in stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        raise ValueError("no answer")
    data = json.loads(lines[-1])
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


__all__ = ["MARKER_NAME", "SALT_PROGRAM", "SALT_READ", "SaltUnavailable", "SshSaltAttestor", "parse_answer"]
