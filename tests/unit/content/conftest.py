"""
Fixtures for the unit tests of the example Salt content (``_modules/``, ``_states/``).

How the content is imported: ``_modules/`` and ``_states/`` are not Python
packages, they are directories Salt's loader reads file by file. The tests load
each file the same way, by path, with importlib, under a private dotted name
(``saltpipe_content._modules.ops_lb``), and hand the module objects to the
tests as fixtures. We do not put those directories on ``sys.path``: that would
leak four top-level names (``ops_lb`` ...) into every other test of the
session, and a file ``_modules/foo.py`` could shadow a real package ``foo``.

The modules' Salt dunders (``__salt__``, ``__opts__``, ``__context__``) are
filled per test by pytest-salt-factories' loader plugin from the
``configure_loader_modules`` fixture that each test module defines (the plugin
only looks for it in the test module itself, not in a conftest).
"""

import importlib.util
import pathlib
import sys
import types
from collections.abc import Callable
from typing import Any
from unittest.mock import MagicMock

import pytest
import salt._logging
import salt.utils.data
import salt.utils.versions

# Importing salt installs a "deferred" stderr handler that queues every log
# record until a Salt daemon configures logging, and flushes the queue at
# interpreter exit - by then into pytest's closed capture stream ("Logging
# error ... I/O operation on closed file"). Hand the queued records to the
# root handlers now, so pytest's log capture shows them with the test instead.
salt._logging.shutdown_temp_handler()  # pylint: disable=protected-access

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def _load(kind: str, name: str) -> types.ModuleType:
    """Import ``<repo>/<kind>/<name>.py`` as ``saltpipe_content.<kind>.<name>``."""
    path = REPO_ROOT / kind / f"{name}.py"
    qualified = f"saltpipe_content.{kind}.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only if the file is missing
        raise pytest.UsageError(f"Cannot import {path}: is the example content checked out?")
    module = importlib.util.module_from_spec(spec)
    # Registered so that tracebacks, pickling and mock.patch("...") can find it.
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ops_lb() -> types.ModuleType:
    """The ``_modules/ops_lb.py`` execution module."""
    return _load("_modules", "ops_lb")


@pytest.fixture(scope="session")
def ops_patch() -> types.ModuleType:
    """The ``_modules/ops_patch.py`` execution module."""
    return _load("_modules", "ops_patch")


@pytest.fixture(scope="session")
def ops_app() -> types.ModuleType:
    """The ``_modules/ops_app.py`` execution module."""
    return _load("_modules", "ops_app")


@pytest.fixture(scope="session")
def ops_common() -> types.ModuleType:
    """The ``_utils/ops_common.py`` utils module every ops module calls through ``__utils__``."""
    return _load("_utils", "ops_common")


@pytest.fixture
def ops_utils(ops_common: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """The ``__utils__`` an ops module sees on a synced minion: the real ``ops_common`` functions."""
    return {f"ops_common.{name}": getattr(ops_common, name) for name in ("test_mode", "outcome", "answered")}


@pytest.fixture(scope="session")
def ops_node() -> types.ModuleType:
    """The ``_states/ops_node.py`` state module."""
    return _load("_states", "ops_node")


def config_get_mock(config: dict[str, Any]) -> MagicMock:
    """
    A ``config.get`` over ``config`` with Salt's own ``a:b:c`` traversal, so a
    test states its configuration as the nested mapping an operator writes in
    pillar, and ``config.get("ops:lb:drain_dir", default)`` resolves like Salt does.
    """

    def _get(key: str, default: Any = "", **_kwargs: Any) -> Any:
        return salt.utils.data.traverse_dict_and_list(config, key, default, delimiter=":")

    return MagicMock(side_effect=_get)


@pytest.fixture
def make_config_get() -> Callable[[dict[str, Any]], MagicMock]:
    """Factory fixture: ``make_config_get({"ops": {...}})`` gives a ``config.get`` mock."""
    return config_get_mock


@pytest.fixture
def service() -> dict[str, MagicMock]:
    """The ``__salt__`` entries ``service.available``, ``.status``, ``.enabled`` and ``.restart``: MagicMocks that
    return True (a service that exists, runs, is enabled and restarts); a test sets other answers on them."""
    return {
        "service.available": MagicMock(return_value=True),
        "service.status": MagicMock(return_value=True),
        "service.enabled": MagicMock(return_value=True),
        "service.restart": MagicMock(return_value=True),
    }


class FakePackages:  # pylint: disable=too-few-public-methods
    """
    A package database behind ``pkg.version``, ``pkg.latest_version``,
    ``pkg.version_cmp`` and ``pkg.install``, with the return shapes of Salt's
    pkg providers: ``version`` gives ``""`` when not installed and
    ``"v1,v2"`` when several are; ``latest_version`` gives ``""`` when nothing
    newer is available; ``install`` returns ``{name: {"old", "new"}}``.
    Versions compare with Salt's generic ``salt.utils.versions.version_cmp``
    (what providers without a native comparator use).
    """

    def __init__(self, installed: dict[str, str], available: dict[str, str] | None = None):
        self.installed = dict(installed)
        # What the repositories offer; install() of a bare name installs this.
        self.available = dict(available or {})
        self.version = MagicMock(side_effect=self._version)
        self.latest_version = MagicMock(side_effect=self._latest_version)
        self.version_cmp = MagicMock(side_effect=salt.utils.versions.version_cmp)
        self.install = MagicMock(side_effect=self._install)
        self.refresh_db = MagicMock(return_value=True)

    def _version(self, name: str) -> str:
        return self.installed.get(name, "")

    def _latest_version(self, name: str, refresh: bool = True) -> str:
        candidate = self.available.get(name, "")
        current = self.installed.get(name, "")
        if candidate and current and salt.utils.versions.version_cmp(candidate, current) <= 0:
            return ""
        return candidate

    def _install(self, pkgs: list[Any], refresh: bool = False) -> dict[str, dict[str, str]]:
        changes = {}
        for target in pkgs:
            if isinstance(target, dict):
                ((name, version),) = target.items()
            else:
                name, version = target, self.available.get(target, "")
            if not version:
                continue
            old = self.installed.get(name, "")
            if old != version:
                self.installed[name] = version
                changes[name] = {"old": old, "new": version}
        return changes

    def salt_functions(self) -> dict[str, MagicMock]:
        """The ``__salt__`` entries this fake provides."""
        return {
            "pkg.version": self.version,
            "pkg.latest_version": self.latest_version,
            "pkg.version_cmp": self.version_cmp,
            "pkg.install": self.install,
            "pkg.refresh_db": self.refresh_db,
        }


@pytest.fixture
def fake_packages() -> type[FakePackages]:
    """The :class:`FakePackages` class, for tests to build a package database."""
    return FakePackages
