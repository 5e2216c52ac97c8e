"""pylint with saltpylint over Salt extension modules and saltpipe's own code, as findings.

pylint runs in a subprocess (its plugins and astroid caches stay out of saltpipe's process) that starts before
SLS rendering and is collected after it, so on two cores the two overlap. Messages become findings with rule
``pylint-<symbol>``: ``fatal``/``error`` are errors, ``warning`` warnings, the rest info.

Fail closed: pylint that cannot run (not installed, a plugin such as saltpylint that does not load, a crash
without a report, a timeout) raises :class:`~pipeline.errors.CheckToolError` (exit 2 with what to install),
never an empty report that would pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import CheckToolError, ConfigError
from pipeline.findings import Finding, Severity

#: Used when the checked repository has no .pylintrc of its own (mirrors the project's .pylintrc).
FALLBACK_ARGS = (
    "--load-plugins=saltpylint.fileperms,saltpylint.smartup,saltpylint.blacklist,saltpylint.dunder_del",
    "--additional-builtins=__opts__,__utils__,__salt__,__pillar__,__grains__,__context__,__runner__,__ret__,"
    "__env__,__low__,__states__,__lowstate__,__running__,__master_opts__,__jid_event__,__instance_id__,"
    "__salt_system_encoding__,__proxy__,__serializers__,__reg__,__executors__,__events__,__file_client__",
    "--disable=R,C,fixme,import-error,no-member",
)
_SEVERITY = {"fatal": Severity.ERROR, "error": Severity.ERROR, "warning": Severity.WARNING}
#: pylint messages that mean the check itself is incomplete (a plugin, e.g. saltpylint, did not load).
_TOOL_BROKEN = frozenset({"bad-plugin-value"})
INSTALL_HINT = (
    "install pylint and saltpylint into the interpreter saltpipe runs with (pip install -e . installs the "
    "pinned versions of pyproject.toml), or pass --no-pylint to skip pylint on purpose"
)


@dataclass
class PylintRun:
    """A pylint subprocess over ``files`` (absolute paths inside ``repo``), with ``extra_args`` after the rcfile.
    ``python`` is the interpreter command (default: saltpipe's own). :meth:`collect` waits for it."""

    repo: Path
    files: Sequence[Path]
    extra_args: Sequence[str] = ()
    timeout: float = 600.0
    python: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        if not self.files:
            return
        rcfile = self.repo / ".pylintrc"
        args = [f"--rcfile={rcfile}"] if rcfile.is_file() else list(FALLBACK_ARGS)
        cmd = [*(self.python or (sys.executable,)), "-m", "pylint", *args, *self.extra_args, "--output-format=json", "--score=n", "--persistent=n"]
        cmd += [str(p.relative_to(self.repo)) if p.is_relative_to(self.repo) else str(p) for p in self.files]
        self._proc = subprocess.Popen(  # pylint: disable=consider-using-with  # collected in collect()
            cmd, cwd=self.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def collect(self) -> list[Finding]:
        """Wait for pylint and return its messages as findings; :class:`CheckToolError` when pylint did not run."""
        if self._proc is None:
            return []
        try:
            out, err = self._proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise CheckToolError(f"pylint gave no result after {self.timeout:.0f}s: the Python files were not checked",
                                 hint="run pylint on the files by hand to see where it hangs")
        if self._proc.returncode & 32:
            raise ConfigError(f"pylint refused its options: {err.strip()[-500:]}", path=self.repo / ".pylintrc",
                              hint="fix .pylintrc (pylint --rcfile=.pylintrc --help-msg shows valid options)")
        messages = _messages(out, err, self._proc.returncode)
        broken = [m for m in messages if m.get("symbol") in _TOOL_BROKEN]
        if broken:
            raise CheckToolError(f"pylint ran without a plugin it needs: {broken[0].get('message', '').strip()}", hint=INSTALL_HINT)
        findings = []
        for msg in messages:
            path = Path(msg.get("path") or msg.get("module", "?"))
            rel = path.as_posix() if not path.is_absolute() else self._rel(path)
            findings.append(
                Finding(
                    rule=f"pylint-{msg.get('symbol') or msg.get('message-id', 'message').lower()}",
                    severity=_SEVERITY.get(msg.get("type", ""), Severity.INFO),
                    path=rel,
                    line=max(1, int(msg.get("line") or 1)),
                    message=f"{msg.get('message', '').strip()} ({msg.get('message-id', '')})",
                    key=f"{msg.get('obj', '')}|{msg.get('message', '')}",
                )
            )
        return findings

    def _rel(self, path: Path) -> str:  # pragma: no cover - pylint reports paths relative to cwd
        try:
            return path.relative_to(self.repo).as_posix()
        except ValueError:
            return path.as_posix()


def _messages(out: str, err: str, returncode: int) -> list[dict]:
    """pylint's JSON report; :class:`CheckToolError` when there is none (pylint not installed - "No module
    named pylint", exit 1, no output - or crashed before reporting)."""
    parsed: object = None
    try:
        parsed = json.loads(out)
    except json.JSONDecodeError:
        pass
    if isinstance(parsed, list):
        return parsed
    detail = (err or out).strip()[-500:] or f"exit code {returncode}, no output"
    raise CheckToolError(f"pylint did not run, the Python files were not checked: {detail}", hint=INSTALL_HINT)


#: saltpipe's own code is not loaded by Salt: salt.utils.files.fopen is not its rule.
PROJECT_EXTRA_ARGS = ("--disable=resource-leakage",)


def start_pylint(repo: Path, extension: Sequence[Path], project: Sequence[Path], python: Sequence[str] = ()) -> list[PylintRun]:
    """Start pylint on Salt extension modules and on saltpipe's own code (two processes, one rcfile)."""
    return [PylintRun(repo, extension, python=python), PylintRun(repo, project, PROJECT_EXTRA_ARGS, python=python)]
