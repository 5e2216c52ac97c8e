"""
Patch sets: check whether a named set of package versions is installed, and install what is missing.

A *patch set* is a named mapping ``package -> version`` read with
``config.get`` (so it normally comes from pillar). A version is the minimum
acceptable version (a newer installed version is compliant, as a patch is a
floor, not a pin), or ``latest`` for "no upgrade may be pending".

:configuration:

    .. code-block:: yaml

        ops:
          patch:
            refresh: false        # refresh the package database before install (default false)
            sets:
              2024-06-openssl:
                openssl: "3.0.13-1~deb12u1"   # quote versions: YAML would turn 1.10 into 1.1
                libssl3: "3.0.13-1~deb12u1"
              tools-latest:
                curl: latest

Only Salt's ``pkg`` module is used (``pkg.version``, ``pkg.version_cmp``,
``pkg.latest_version``, ``pkg.install``, ``pkg.refresh_db``), so this works
with whichever package provider the minion has. Invalid arguments or
configuration raise ``CommandExecutionError`` naming the config key; a failed
installation gives ``result: False`` naming what is still missing (Salt then
exits with retcode 1).
"""

import functools
import logging
import re
from collections.abc import Callable
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "ops_patch"

# The loader's reason when the shared utils module has not been synced to this minion.
_NEEDS_UTILS = "needs _utils/ops_common.py on the minion: run saltutil.sync_all (it syncs utils with the modules)"

LATEST = "latest"

# A patch set name is also a config key component: no ':' (config.get's delimiter).
_SET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# Package names and versions of deb/rpm/apk/pacman; no leading comparison
# operator or '=': a set states a version, the comparison is ours.
_PKG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+:~-]*$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+:~-]*$")


def __virtual__() -> str | tuple[bool, str]:
    """
    Always loadable; the functions need a ``pkg`` provider, which Salt
    resolves per OS when they are called.
    Needs ``_utils/ops_common.py`` (synced with the modules).
    """
    return __virtualname__ if "ops_common.answered" in __utils__ else (False, f"{__virtualname__}: {_NEEDS_UTILS}")


def _answer_is_the_return(func: Callable[..., Any]) -> Callable[..., Any]:
    """Clear the job's retcode once ``func`` has returned (why: ``ops_common.answered``)."""
    return functools.wraps(func)(lambda *a, **kw: __utils__["ops_common.answered"](__context__, func(*a, **kw)))


def _patchset(name: Any) -> dict[str, str]:
    """The validated patch set ``ops:patch:sets:<name>`` (package -> version or ``latest``)."""
    if not isinstance(name, str) or not _SET_RE.match(name):
        raise CommandExecutionError(
            f"Invalid patch set name {name!r}: use letters, digits, '.', '_' and '-'"
        )
    sets = __salt__["config.get"]("ops:patch:sets", {})
    if not isinstance(sets, dict):
        raise CommandExecutionError(
            "ops:patch:sets must be a mapping of patch set name to "
            f"{{package: version}}, got {type(sets).__name__}"
        )
    if name not in sets:
        known = ", ".join(sorted(str(key) for key in sets)) or "none"
        raise CommandExecutionError(
            f"Unknown patch set {name!r}: define ops:patch:sets:{name} in pillar "
            f"(defined sets: {known})"
        )
    spec = sets[name]
    key = f"ops:patch:sets:{name}"
    if not isinstance(spec, dict) or not spec:
        raise CommandExecutionError(
            f"{key} must be a non-empty mapping of package name to version or '{LATEST}'"
        )
    for pkg, version in spec.items():
        if not isinstance(pkg, str) or not _PKG_RE.match(pkg):
            raise CommandExecutionError(f"{key}: invalid package name {pkg!r}")
        if not isinstance(version, str):
            # YAML reads 1.10 as the float 1.1: refuse instead of guessing.
            raise CommandExecutionError(
                f"{key}:{pkg}: the version must be a quoted string or '{LATEST}', "
                f"got {type(version).__name__} {version!r} (write it as \"{version}\")"
            )
        if not _VERSION_RE.match(version):
            raise CommandExecutionError(
                f"{key}:{pkg}: invalid version {version!r}; give a version such as "
                f"'1.2.3-1' (the minimum to have installed) or '{LATEST}'"
            )
    return dict(spec)


def _cmp(ver1: str, ver2: str) -> int | None:
    """``pkg.version_cmp`` (-1, 0, 1), or None when the provider cannot compare them."""
    return __salt__["pkg.version_cmp"](ver1, ver2)


def _installed(pkg: str) -> str | None:
    """Installed version of ``pkg`` (the highest one if several are installed), or None."""
    raw = __salt__["pkg.version"](pkg)
    versions = [ver.strip() for ver in str(raw or "").split(",") if ver.strip()]
    if not versions:
        return None
    highest = versions[0]
    for ver in versions[1:]:
        if (_cmp(ver, highest) or 0) > 0:
            highest = ver
    return highest


def _satisfied(pkg: str, installed: str | None, required: str) -> bool:
    """Whether ``installed`` meets ``required`` (a minimum version, or ``latest``)."""
    if installed is None:
        return False
    if required == LATEST:
        # latest_version is "" when nothing newer is available. Do not refresh
        # here: check must stay read-only; install refreshes when configured.
        available = __salt__["pkg.latest_version"](pkg, refresh=False)
        if not available:
            return True
        result = _cmp(available, installed)
        return result is not None and result <= 0
    result = _cmp(installed, required)
    if result is None:
        log.warning(
            "Cannot compare versions %s and %s of %s; requiring an exact match",
            installed,
            required,
            pkg,
        )
        return installed == required
    return result >= 0


def _missing(spec: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """The packages of ``spec`` that are not satisfied, with installed and required versions."""
    missing = {}
    for pkg, required in sorted(spec.items()):
        installed = _installed(pkg)
        if not _satisfied(pkg, installed, required):
            missing[pkg] = {"installed": installed, "required": required}
    return missing


def _describe(missing: dict[str, dict[str, str | None]]) -> str:
    """Human-readable list of missing packages for comments."""
    return ", ".join(
        f"{pkg} (installed {info['installed'] or 'none'}, required {info['required']})"
        for pkg, info in missing.items()
    )


@_answer_is_the_return
def check(patchset: str) -> dict[str, Any]:
    """
    Check whether the patch set ``patchset`` is installed.

    patchset
        Name of a set defined in ``ops:patch:sets``.

    Returns ``{"patchset": str, "compliant": bool, "missing": {pkg:
    {"installed": str|None, "required": str}}}``. A package is compliant when
    its installed version is at least the required one (``pkg.version_cmp``),
    or, for ``latest``, when no newer version is available
    (``pkg.latest_version`` without refreshing the package database).

    CLI Example:

    .. code-block:: bash

        salt '*' ops_patch.check 2024-06-openssl
    """
    missing = _missing(_patchset(patchset))
    return {"patchset": patchset, "compliant": not missing, "missing": missing}


@_answer_is_the_return
def install(patchset: str, test: bool = False) -> dict[str, Any]:
    """
    Install the packages of the patch set ``patchset`` that are missing, then check again.

    Only missing packages are installed, in one ``pkg.install(pkgs=[...])``
    call: ``{name: version}`` for a version, the bare name for ``latest``.
    When ``ops:patch:refresh`` is true the package database is refreshed first.

    patchset
        Name of a set defined in ``ops:patch:sets``.

    test : False
        Only report what would be installed. The minion's ``test: True`` also
        makes this a dry run.

    Returns ``{"result": bool|None, "changes": {pkg: {"old": str, "new":
    str}}, "comment": str}``. ``result`` is False, and the comment names each
    package still missing, when the set is not compliant after installing.

    CLI Example:

    .. code-block:: bash

        salt '*' ops_patch.install 2024-06-openssl
        salt '*' ops_patch.install 2024-06-openssl test=True
    """
    spec = _patchset(patchset)
    dry_run = __utils__["ops_common.test_mode"](test, __opts__)
    if not dry_run and __salt__["config.get"]("ops:patch:refresh", False):
        __salt__["pkg.refresh_db"]()
    missing = _missing(spec)
    if not missing:
        return __utils__["ops_common.outcome"](True, {}, f"Patch set {patchset} is already installed")
    if dry_run:
        changes = {pkg: {"old": info["installed"] or "", "new": info["required"]} for pkg, info in missing.items()}
        return __utils__["ops_common.outcome"](
            None, changes, f"Patch set {patchset} would install: {_describe(missing)}"
        )

    targets = [pkg if spec[pkg] == LATEST else {pkg: spec[pkg]} for pkg in missing]
    install_error = None
    try:
        changes = __salt__["pkg.install"](pkgs=targets, refresh=False) or {}
    except CommandExecutionError as exc:
        # pkg providers attach what they did change and the package manager's
        # errors to exc.info; str(exc) would be a multi-line YAML dump of it.
        info = exc.info if isinstance(exc.info, dict) else {}
        changes = info.get("changes") or {}
        install_error = "; ".join(
            [str(exc.error)] + [str(error) for error in info.get("errors") or []]
        )
        log.error("pkg.install failed for patch set %s: %s", patchset, install_error)

    still_missing = _missing(spec)
    if still_missing:
        comment = f"Patch set {patchset} is still missing: {_describe(still_missing)}"
        if install_error:
            comment += f"; pkg.install failed: {install_error}"
        return __utils__["ops_common.outcome"](False, changes, comment)
    comment = f"Patch set {patchset} installed: {', '.join(missing)}"
    if install_error:
        comment += f" (pkg.install reported: {install_error})"
    log.info("Installed patch set %s: %s", patchset, ", ".join(missing))
    return __utils__["ops_common.outcome"](True, changes, comment)
