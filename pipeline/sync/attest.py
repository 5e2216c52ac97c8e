"""Attestation: after a switch, ask each syndic what it actually serves, and agree or fail.

Every release tree carries ``saltpipe-release.json`` (:data:`pipeline.release.MARKER_NAME`) at its root. An
:class:`Attestor` reads it for a saltenv on every syndic of an environment and returns a :class:`ServedRelease`
per syndic; :class:`Attestation` says whether they all serve the expected release.

Implementations, from weakest to strongest evidence:

* :class:`FileRootsAttestor` reads the marker through the file_roots target (the symlink as the file system
  resolves it). No Salt involved: it proves the switch, not what Salt hands out.
* :class:`SaltMasterAttestor` loads a syndic master's own config on this host and reads the marker through
  Salt's fileserver code (``salt.fileserver.Fileserver``: ``find_file`` + ``serve_file``, i.e. what a minion's
  ``cp.get_file`` receives) after refreshing the fileserver caches explicitly. For the local topology.
* :class:`SaltCallAttestor` asks a minion behind each syndic, through whatever Salt client the caller has
  (LocalClient on the MoM, salt-api), to ``cp.get_file_str salt://saltpipe-release.json saltenv=...``: the
  minion gets the file from its own syndic master, so this is what minions will really run. Refreshing the
  syndic master's caches goes through ``saltutil.runner fileserver.*`` on a minion running on the syndic host.

Salt caches that matter after a symlink switch (measured, see docs/sync.md): the file *content* of a changed
path is served at once (the roots backend stats the file and keys its hash cache by mtime); a *new* path is
missing from ``file_list`` (``cp.list_master``, ``saltutil.sync_*``) until the master's file list cache
expires (``fileserver_list_cache_time``, 20 s) unless ``fileserver.clear_file_list_cache`` or
``fileserver.update`` runs on that master. Attestors therefore refresh before they read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.release.manifest import MARKER_NAME, parse_marker
from pipeline.sync.layout import env_link
from pipeline.sync.target import FileRootsTarget, TargetError


@dataclass(frozen=True)
class ServedRelease:
    """What one syndic serves for a saltenv: the release id and manifest digest from its marker, or an error."""

    syndic: str
    release: str | None
    digest: str | None = None
    error: str | None = None
    method: str = ""


@dataclass(frozen=True)
class Attestation:
    """Every syndic's answer for ``saltenv``; ``ok`` when all serve ``expected`` (or all agree, if None)."""

    saltenv: str
    expected: str | None
    served: tuple[ServedRelease, ...]
    method: str

    @property
    def weaker(self) -> list[str]:
        """One line per syndic attested by its marker file only where Salt could not be asked (see
        :func:`pipeline.sync.attest_select.choose_attestor`): that proves the files, not what its Salt fileserver serves."""
        return [f"syndic {s.syndic}: attested by its marker file only ({s.method[len('file_roots (weaker: '):-1]}); "
                "that proves the files, not what its Salt fileserver serves"
                for s in self.served if s.method.startswith("file_roots (weaker:")]

    @property
    def ok(self) -> bool:
        if not self.served or any(s.error or not s.release for s in self.served):
            return False
        ids = {s.release for s in self.served}
        return len(ids) == 1 and (self.expected is None or ids == {self.expected})

    def problems(self) -> list[str]:
        """One line per syndic that does not serve the expected release (or that could not be asked)."""
        out = []
        want = self.expected or _majority(self.served)
        for s in self.served:
            if s.error:
                out.append(f"syndic {s.syndic}: could not attest ({s.error})")
            elif s.release != want:
                out.append(f"syndic {s.syndic}: serves {s.release or 'nothing'} for {self.saltenv}, expected {want}")
        return out


def _majority(served: Sequence[ServedRelease]) -> str | None:
    counts: dict[str, int] = {}
    for s in served:
        if s.release:
            counts[s.release] = counts.get(s.release, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


class Attestor(Protocol):
    """Asks each named syndic what it serves for ``saltenv``. Never raises for one syndic's failure."""

    method: str

    def attest(self, syndics: Sequence[str], saltenv: str = "base") -> tuple[ServedRelease, ...]: ...


def attest(attestor: Attestor, syndics: Sequence[str], expected: str | None, saltenv: str = "base") -> Attestation:
    """Run ``attestor`` and judge the answers against ``expected``."""
    return Attestation(saltenv, expected, tuple(attestor.attest(syndics, saltenv)), attestor.method)


def served_from_marker(syndic: str, data: bytes | str | None, method: str) -> ServedRelease:
    """What a syndic serves, judged from the marker bytes it handed out (``None`` or empty: not served)."""
    if data is None or data == "":
        return ServedRelease(syndic, None, error=f"salt://{MARKER_NAME} is not served", method=method)
    marker = parse_marker(data)
    if marker is None:
        return ServedRelease(syndic, None, error=f"{MARKER_NAME} is not a saltpipe marker", method=method)
    digest = marker.get("manifest_sha256")
    return ServedRelease(syndic, marker["release"], digest if isinstance(digest, str) else None, method=method)


def ask_each(syndics: Sequence[str], one: Callable[[str], ServedRelease]) -> tuple[ServedRelease, ...]:
    """``one`` for every syndic, in threads (each answer is I/O bound), answers in ``syndics`` order."""
    with ThreadPoolExecutor(max_workers=max(1, len(syndics))) as pool:
        return tuple(pool.map(one, syndics))


class FileRootsAttestor:
    """Reads the marker through each syndic's file_roots target (file system evidence, not Salt's)."""

    method = "file_roots"

    def __init__(self, targets: Sequence[FileRootsTarget]) -> None:
        self.targets = {t.name: t for t in targets}

    def attest(self, syndics: Sequence[str], saltenv: str = "base") -> tuple[ServedRelease, ...]:
        def one(name: str) -> ServedRelease:
            try:
                return served_from_marker(name, self.targets[name].read_served_marker(env_link(saltenv)), self.method)
            except TargetError as exc:
                return ServedRelease(name, None, error=exc.cause, method=self.method)

        return ask_each(syndics, one)


class SaltMasterAttestor:
    """Reads the marker through a syndic master's Salt fileserver, from the master's config file on this host.

    ``master_configs`` maps syndic name -> path of its ``master`` config file. Before reading it refreshes the
    master's fileserver caches (``fileserver.update`` and ``clear_file_list_cache`` for the saltenv), and it
    checks the marker is in the master's ``file_list`` for the saltenv, so a stale list cache is caught too.
    """

    method = "salt-master"

    def __init__(self, master_configs: dict[str, Path]) -> None:
        self.master_configs = {k: Path(v) for k, v in master_configs.items()}

    def attest(self, syndics: Sequence[str], saltenv: str = "base") -> tuple[ServedRelease, ...]:
        # Salt's loader is not thread-safe across different opts; ask the masters one after another.
        return tuple(self._one(name, saltenv) for name in syndics)

    def _one(self, name: str, saltenv: str) -> ServedRelease:
        path = self.master_configs.get(name)
        if path is None:
            return ServedRelease(name, None, error="no master config known for this syndic", method=self.method)
        if not path.is_file():
            # Salt would read no file and use its defaults: "not served" would hide the missing config.
            return ServedRelease(
                name, None, method=self.method,
                error=f"master config {path} does not exist on this host: fix master_config of syndic {name} in "
                f"the pipeline config, or pass --syndic-config {name}=PATH",
            )
        try:
            return served_from_marker(name, read_through_fileserver(path, saltenv), self.method)
        except Exception as exc:  # pylint: disable=broad-except
            # Salt raises many types here (SaltClientError, OSError, KeyError from bad opts); one syndic's
            # failure is data for the attestation, not a crash of the whole command.
            return ServedRelease(name, None, error=f"{type(exc).__name__}: {exc}", method=self.method)


def read_through_fileserver(master_config: Path, saltenv: str) -> bytes | None:
    """The bytes a minion of this master would get for ``salt://saltpipe-release.json`` in ``saltenv``.

    Refreshes the master's fileserver state first: what the runners ``fileserver.update`` and
    ``fileserver.clear_file_list_cache`` do (each is one call on ``salt.fileserver.Fileserver``), called on the
    Fileserver directly - a RunnerClient would load every runner module for it, which cost 0.15-0.3 s per
    syndic per attestation. ``None`` when the file is not served or is missing from the master's file list.
    """
    import salt.config  # imported late: Salt is heavy and only this attestor needs it in-process
    import salt.fileserver

    opts = salt.config.master_config(str(master_config))
    fs = salt.fileserver.Fileserver(opts)
    fs.update()
    fs.clear_file_list_cache({"saltenv": saltenv})
    if MARKER_NAME not in fs.file_list({"saltenv": saltenv}):
        return None
    # Fileserver.serve_file is what the master's request server calls for a minion's cp.get_file.
    data = b""
    while True:
        chunk = fs.serve_file({"path": MARKER_NAME, "saltenv": saltenv, "loc": len(data)})["data"]
        if not chunk:
            break
        data += chunk if isinstance(chunk, bytes) else chunk.encode()
    return data or None


class SaltCaller(Protocol):
    """Runs one Salt execution function on one minion and returns its return value.

    Raises :class:`pipeline.errors.SaltError` when the minion does not answer. Implemented by whatever Salt
    client the caller holds (LocalClient on the MoM, salt-api, pytest-salt-factories' CLI in tests).
    """

    def __call__(self, minion: str, fun: str, *args: Any, **kwargs: Any) -> Any: ...


class SaltCallAttestor:
    """Asks a minion behind each syndic what its master serves (``cp.get_file_str``): what minions will run.

    ``probe_minions`` maps syndic name -> a minion id whose master is that syndic master. ``refresh_minions``
    optionally maps syndic name -> a minion on the syndic host, used to run ``saltutil.runner
    fileserver.clear_file_list_cache`` on that master before reading (needed before ``saltutil.sync_*`` sees new
    files; the marker itself exists in every release, so reading it needs no refresh).
    """

    method = "salt-minion"

    def __init__(self, call: SaltCaller, probe_minions: dict[str, str], refresh_minions: dict[str, str] | None = None):
        self.call = call
        self.probe_minions = dict(probe_minions)
        self.refresh_minions = dict(refresh_minions or {})

    def attest(self, syndics: Sequence[str], saltenv: str = "base") -> tuple[ServedRelease, ...]:
        def one(name: str) -> ServedRelease:
            minion = self.probe_minions.get(name)
            if minion is None:
                return ServedRelease(name, None, error="no minion known behind this syndic", method=self.method)
            try:
                if name in self.refresh_minions:
                    self.call(self.refresh_minions[name], "saltutil.runner", "fileserver.clear_file_list_cache",
                              saltenv=saltenv)
                data = self.call(minion, "cp.get_file_str", f"salt://{MARKER_NAME}", saltenv=saltenv)
            except Exception as exc:  # pylint: disable=broad-except
                return ServedRelease(name, None, error=f"{type(exc).__name__}: {exc}", method=self.method)
            if data is False or data is None:
                data = None
            return served_from_marker(name, data, self.method)

        return ask_each(syndics, one)


class WeakerMarkerAttestor(FileRootsAttestor):
    """The marker read through the file_roots target where nothing stronger can be asked, saying why
    (``method`` ``file_roots (weaker: <why>)``, which :attr:`Attestation.weaker` reports)."""

    def __init__(self, targets: Sequence[FileRootsTarget], why: str) -> None:
        super().__init__(targets)
        self.method = f"file_roots (weaker: {why})"


class RoutedAttestor:
    """Each syndic asked by the attestor chosen for it (``routes``: syndic -> attestor), answers in order."""

    def __init__(self, routes: dict[str, Attestor]) -> None:
        self.routes = dict(routes)
        self.method = ", ".join(sorted({a.method for a in self.routes.values()}))

    def attest(self, syndics: Sequence[str], saltenv: str = "base") -> tuple[ServedRelease, ...]:
        groups: dict[int, tuple[Attestor, list[str]]] = {}
        for name in syndics:
            attestor = self.routes[name]
            groups.setdefault(id(attestor), (attestor, []))[1].append(name)
        answers: dict[str, ServedRelease] = {}
        for attestor, names in groups.values():
            answers.update((s.syndic, s) for s in attestor.attest(names, saltenv))
        return tuple(answers[name] for name in syndics)
