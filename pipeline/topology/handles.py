"""Handles on a running topology: where each daemon's files are, and Salt's own CLIs bound to each node.

Later stages (sync, rollout, the demo, the integration tests) take these instead of guessing paths:

* :class:`SaltNode` - what a master and a minion share: id, root and config dirs, Salt's CLIs on that config.
* :class:`MasterHandle` - the MoM or a syndic's master: config dir, ports, ``salt``/``salt-run``/``salt-key``.
* :class:`SyndicHandle` - a syndic node: its master, its ``file_roots`` directory (the sync target, what
  ``pipeline.yaml`` names), its pillar directory and its minions.
* :class:`MinionHandle` - a minion: root dir, config dir, grains, ``salt-call``.

Results of the CLIs are :class:`SaltResult`: judge them by ``data`` (the returns) against the minions you
expected, never by the exit code - ``salt`` exits 0 when the master refuses a call.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

#: What a master prints when its publisher ACL refuses a call.
REFUSED_MESSAGE = "Authorization error occurred"


@dataclass(frozen=True)
class SaltResult:
    """One run of a Salt CLI: what ran, its exit code and output, and the parsed JSON (``None`` when the
    output is not JSON, e.g. a refusal or "No minions matched")."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    data: Any
    seconds: float

    @property
    def returns(self) -> dict[str, Any]:
        """Per-minion returns of a ``salt`` call (empty when there were none)."""
        return self.data if isinstance(self.data, dict) else {}

    @property
    def refused(self) -> bool:
        """Whether the master refused to publish the call (publisher ACL)."""
        return REFUSED_MESSAGE in self.stdout or REFUSED_MESSAGE in self.stderr

    def __str__(self) -> str:
        out = self.stdout.strip() or self.stderr.strip()
        return f"{' '.join(self.argv[1:])} -> rc {self.returncode}: {out[:2000]}"


def _parse_json(text: str) -> Any:
    """The JSON in ``text``: one document, or the merge of a stream of objects (``salt --out=json`` prints one
    object per minion as it returns). Lines that are not JSON (warnings, a refusal) are skipped; ``None``
    when nothing parses."""
    try:
        return json.loads(text)  # one document, scalars (salt-run's `true`) included
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in "{[":
            try:
                doc, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                nl = text.find("\n", i)
                i = n if nl == -1 else nl + 1
                continue
            docs.append(doc)
            i = end
        else:
            nl = text.find("\n", i)
            i = n if nl == -1 else nl + 1
    if not docs:
        return None
    if len(docs) > 1 and all(isinstance(d, dict) for d in docs):
        merged: dict[str, Any] = {}
        for doc in docs:
            merged.update(doc)
        return merged
    return docs[-1]


def run_cli(argv: list[str], *, timeout: float) -> SaltResult:
    """Run a Salt CLI; raises only on a hang past ``timeout`` (as :class:`subprocess.TimeoutExpired`)."""
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    return SaltResult(
        argv=tuple(argv),
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        data=_parse_json(proc.stdout),
        seconds=time.monotonic() - started,
    )


def _args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str]:
    out = [a if isinstance(a, str) else json.dumps(a) for a in args]
    for key, value in kwargs.items():
        out.append(f"{key}={value if isinstance(value, str) else json.dumps(value)}")
    return out


_TARGET_FLAGS = {
    "glob": (),
    "list": ("-L",),
    "compound": ("-C",),
    "grain": ("-G",),
    "pcre": ("-E",),
    "nodegroup": ("-N",),
    "pillar": ("-I",),
    "ipcidr": ("-S",),
}


def _target_flag(tgt_type: str) -> tuple[str, ...]:
    try:
        return _TARGET_FLAGS[tgt_type]
    except KeyError:
        raise ValueError(f"unknown tgt_type {tgt_type!r}; use one of {', '.join(_TARGET_FLAGS)}") from None


@dataclass(frozen=True)
class SaltNode:
    """What every daemon node of the topology has: its id, its root and config directories and the directory
    of Salt's scripts. Salt's CLIs run against ``config_dir`` (``-c``), so they see exactly this node's
    config."""

    #: The config file in ``config_dir`` that Salt reads for this kind of node ("master", "minion").
    CONFIG_NAME: ClassVar[str]

    id: str
    root_dir: Path
    config_dir: Path
    bindir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / self.CONFIG_NAME

    def _cli(self, script: str, *args: str, timeout: float) -> SaltResult:
        """``<bindir>/<script> -c <config_dir> --out=json ARGS``: one of Salt's CLIs on this node's config."""
        argv = [str(self.bindir / script), "-c", str(self.config_dir), "--out=json", *args]
        return run_cli(argv, timeout=timeout)


@dataclass(frozen=True, kw_only=True)
class MasterHandle(SaltNode):
    """A salt-master of the topology: the MoM or a syndic's master."""

    CONFIG_NAME = "master"

    interface: str
    publish_port: int
    ret_port: int

    def salt(
        self,
        tgt: str | list[str],
        fun: str,
        *args: Any,
        tgt_type: str = "glob",
        timeout: int = 30,
        cli_args: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> SaltResult:
        """Publish ``fun`` from this master (``salt -c <config_dir>``), returns as JSON.

        ``tgt`` as a list means list targeting. ``kwargs`` become ``key=value`` arguments (JSON for non-strings).
        """
        if isinstance(tgt, list):
            tgt, tgt_type = ",".join(tgt), "list"
        return self._cli(
            "salt",
            # Only real returns in the output: who is missing is the caller's judgement (expected - returned).
            "--hide-timeout",
            f"--timeout={timeout}",
            *_target_flag(tgt_type),
            *cli_args,
            tgt,
            fun,
            *_args(args, kwargs),
            timeout=timeout + 60,
        )

    def salt_run(self, fun: str, *args: Any, timeout: int = 60, **kwargs: Any) -> SaltResult:
        """Run a runner on this master (``salt-run -c <config_dir>``)."""
        return self._cli("salt-run", fun, *_args(args, kwargs), timeout=timeout)

    def salt_key(self, *args: str, timeout: int = 30) -> SaltResult:
        """``salt-key -c <config_dir> --out=json ...`` (e.g. ``"-L"``)."""
        return self._cli("salt-key", *args, timeout=timeout)


@dataclass(frozen=True, kw_only=True)
class MinionHandle(SaltNode):
    """A minion of the topology."""

    CONFIG_NAME = "minion"

    syndic: str
    env: str
    roles: tuple[str, ...]
    datacenter: str

    @property
    def sandbox(self) -> Path:
        """Where the local topology's pillar points formulas' ``root``: nothing is written outside it."""
        return self.root_dir / "sandbox"

    def salt_call(self, fun: str, *args: Any, timeout: int = 120, local: bool = False, **kwargs: Any) -> SaltResult:
        """``salt-call`` on this minion's config (its master serves files and pillar unless ``local``)."""
        flags = ["--retcode-passthrough", *(["--local"] if local else [])]
        return self._cli("salt-call", *flags, fun, *_args(args, kwargs), timeout=timeout)


@dataclass(frozen=True)
class SyndicHandle:
    """A syndic node: a salt-master for its minions plus a salt-syndic towards the MoM."""

    id: str
    #: The environment of ``salt/pipeline.yaml`` that lists this syndic.
    env: str
    datacenter: str
    #: The node's salt-master (its minions' master); the salt-syndic shares its config directory.
    master: MasterHandle
    #: The sync target: what ``pipeline.yaml`` names as this syndic's ``file_roots`` (local path).
    file_roots: Path
    #: The local pillar (generated sandbox pillar plus per-minion overrides, :meth:`Topology.set_pillar`).
    pillar_dir: Path
    minions: tuple[MinionHandle, ...]

    @property
    def served_base(self) -> Path:
        """What this master serves as ``base``: ``<file_roots>/current`` (a symlink the sync switches)."""
        return self.file_roots / "current"

    def saltenv_dir(self, saltenv: str) -> Path:
        """What this master serves as saltenv ``saltenv`` (``__env__`` in its file_roots)."""
        return self.file_roots / "envs" / saltenv

    @property
    def minion_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.minions)
