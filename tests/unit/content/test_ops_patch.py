"""
Unit tests of ``_modules/ops_patch.py``.

The ``pkg.*`` functions are a small package database (``FakePackages`` in the
conftest) with the return shapes of Salt's providers and Salt's generic version
comparison, so a test states "installed X, set requires Y" and checks what
``check`` and ``install`` conclude and which ``pkg.install`` call they make.
"""

from unittest.mock import MagicMock, patch

import pytest
from salt.exceptions import CommandExecutionError

SETS = {
    "openssl": {"openssl": "3.0.13-1", "libssl3": "3.0.13-1"},
    "tools": {"curl": "latest"},
}


@pytest.fixture
def packages(fake_packages):
    return fake_packages(installed={"openssl": "3.0.11-1", "libssl3": "3.0.13-1"})


@pytest.fixture
def config(make_config_get):
    return make_config_get({"ops": {"patch": {"sets": SETS}}})


@pytest.fixture
def configure_loader_modules(ops_patch, packages, config, ops_utils):
    return {
        ops_patch: {
            "__salt__": {"config.get": config, **packages.salt_functions()},
            "__opts__": {"test": False},
            "__utils__": ops_utils,
        }
    }


def _use_sets(ops_patch, make_config_get, sets, **patch_config):
    """Replace the configured patch sets (and other ops:patch keys) for one test."""
    config = make_config_get({"ops": {"patch": {"sets": sets, **patch_config}}})
    return patch.dict(ops_patch.__salt__, {"config.get": config})


def test_virtual(ops_patch):
    assert ops_patch.__virtual__() == "ops_patch"


# ---------------------------------------------------------------- check


def _missing(installed, required):
    return {"pkg": {"installed": installed, "required": required}}


@pytest.mark.parametrize(
    ("installed", "available", "required", "missing"),
    [
        ("1.2", "", "1.2", {}),  # exactly the required version
        ("1.3", "", "1.2", {}),  # newer than required: a patch is a floor
        ("1.1", "", "1.2", _missing("1.1", "1.2")),  # older
        ("1.10", "", "1.9", {}),  # numeric, not lexical, comparison
        ("", "", "1.2", _missing(None, "1.2")),  # not installed
        ("1.0,1.3", "", "1.2", {}),  # several installed: the highest counts
        ("1.3,1.0", "", "1.2", {}),
        ("1.0,1.1", "", "1.2", _missing("1.1", "1.2")),  # ... and is the one reported
        ("1.0", "", "latest", {}),  # nothing newer available
        ("1.0", "1.0", "latest", {}),
        ("1.0", "1.1", "latest", _missing("1.0", "latest")),  # upgrade pending
        ("", "1.1", "latest", _missing(None, "latest")),  # not installed at all
    ],
)
def test_check_table(ops_patch, packages, make_config_get, installed, available, required, missing):
    packages.installed = {"pkg": installed} if installed else {}
    packages.available = {"pkg": available} if available else {}
    with _use_sets(ops_patch, make_config_get, {"s": {"pkg": required}}):
        ret = ops_patch.check("s")
    assert ret == {"patchset": "s", "compliant": not missing, "missing": missing}


def test_check_reports_only_missing_packages(ops_patch):
    assert ops_patch.check("openssl") == {
        "patchset": "openssl",
        "compliant": False,
        "missing": {"openssl": {"installed": "3.0.11-1", "required": "3.0.13-1"}},
    }


def test_check_latest_does_not_refresh(ops_patch, packages):
    packages.installed["curl"] = "8.0"
    ops_patch.check("tools")
    packages.latest_version.assert_called_once_with("curl", refresh=False)
    packages.refresh_db.assert_not_called()


@pytest.mark.parametrize(
    ("installed", "compliant"), [("1.2-custom", True), ("1.1-custom", False)]
)
def test_check_falls_back_to_equality_when_versions_do_not_compare(
    ops_patch, packages, make_config_get, installed, compliant
):
    packages.installed = {"pkg": installed}
    with _use_sets(ops_patch, make_config_get, {"s": {"pkg": "1.2-custom"}}), patch.dict(
        ops_patch.__salt__, {"pkg.version_cmp": MagicMock(return_value=None)}
    ):
        assert ops_patch.check("s")["compliant"] is compliant


@pytest.mark.parametrize(
    ("sets", "patchset", "message"),
    [
        (SETS, "nope", r"Unknown patch set 'nope': define ops:patch:sets:nope in pillar "
         r"\(defined sets: openssl, tools\)"),
        ({}, "nope", r"\(defined sets: none\)"),
        (["openssl"], "openssl", "ops:patch:sets must be a mapping"),
        ({"s": {}}, "s", "ops:patch:sets:s must be a non-empty mapping"),
        ({"s": ["openssl"]}, "s", "ops:patch:sets:s must be a non-empty mapping"),
        ({"s": {"pkg": 1.1}}, "s", r'ops:patch:sets:s:pkg: the version must be a quoted string .* '
         r'got float 1.1 \(write it as "1.1"\)'),
        ({"s": {"pkg": 2}}, "s", "got int 2"),
        ({"s": {"pkg": None}}, "s", "got NoneType"),
        ({"s": {"pkg": "=1.2"}}, "s", "invalid version '=1.2'"),
        ({"s": {"pkg": ">=1.2"}}, "s", "invalid version '>=1.2'"),
        ({"s": {"pkg": "1.2 1.3"}}, "s", "invalid version"),
        ({"s": {"bad pkg": "1.0"}}, "s", "ops:patch:sets:s: invalid package name 'bad pkg'"),
        ({"s": {"-x": "1.0"}}, "s", "invalid package name"),
        (SETS, "a:b", "Invalid patch set name 'a:b'"),
        (SETS, "", "Invalid patch set name"),
        (SETS, None, "Invalid patch set name"),
    ],
)
def test_invalid_patch_sets_raise(ops_patch, make_config_get, packages, sets, patchset, message):
    config = make_config_get({"ops": {"patch": {"sets": sets}}})
    with patch.dict(ops_patch.__salt__, {"config.get": config}):
        for func in (ops_patch.check, ops_patch.install):
            with pytest.raises(CommandExecutionError, match=message):
                func(patchset)
    packages.install.assert_not_called()


def test_check_without_sets_configured(ops_patch, make_config_get):
    with patch.dict(ops_patch.__salt__, {"config.get": make_config_get({})}):
        with pytest.raises(CommandExecutionError, match=r"defined sets: none"):
            ops_patch.check("openssl")


# ---------------------------------------------------------------- install


def test_install_installs_only_missing(ops_patch, packages):
    ret = ops_patch.install("openssl")
    assert ret == {
        "result": True,
        "changes": {"openssl": {"old": "3.0.11-1", "new": "3.0.13-1"}},
        "comment": "Patch set openssl installed: openssl",
    }
    packages.install.assert_called_once_with(pkgs=[{"openssl": "3.0.13-1"}], refresh=False)
    assert ops_patch.check("openssl")["compliant"] is True


def test_install_latest_passes_bare_name(ops_patch, packages):
    packages.installed["curl"] = "8.0"
    packages.available["curl"] = "8.5"
    ret = ops_patch.install("tools")
    packages.install.assert_called_once_with(pkgs=["curl"], refresh=False)
    assert ret == {
        "result": True,
        "changes": {"curl": {"old": "8.0", "new": "8.5"}},
        "comment": "Patch set tools installed: curl",
    }


def test_install_already_compliant_changes_nothing(ops_patch, packages):
    packages.installed["openssl"] = "3.0.13-1"
    assert ops_patch.install("openssl") == {
        "result": True,
        "changes": {},
        "comment": "Patch set openssl is already installed",
    }
    packages.install.assert_not_called()


def test_install_test_mode_reports_without_installing(ops_patch, packages, make_config_get):
    packages.installed.pop("libssl3")
    with _use_sets(ops_patch, make_config_get, SETS, refresh=True):
        ret = ops_patch.install("openssl", test=True)
    assert ret == {
        "result": None,
        "changes": {
            "libssl3": {"old": "", "new": "3.0.13-1"},
            "openssl": {"old": "3.0.11-1", "new": "3.0.13-1"},
        },
        "comment": "Patch set openssl would install: "
        "libssl3 (installed none, required 3.0.13-1), "
        "openssl (installed 3.0.11-1, required 3.0.13-1)",
    }
    packages.install.assert_not_called()
    # A dry run does not refresh the package database either.
    packages.refresh_db.assert_not_called()


def test_install_honours_minion_test_opt(ops_patch, packages):
    with patch.dict(ops_patch.__opts__, {"test": True}):
        assert ops_patch.install("openssl")["result"] is None
    packages.install.assert_not_called()


def test_install_test_mode_when_compliant(ops_patch, packages):
    packages.installed["openssl"] = "3.0.13-1"
    ret = ops_patch.install("openssl", test=True)
    assert ret["result"] is True
    assert ret["changes"] == {}


def test_install_refreshes_first_when_configured(ops_patch, packages, make_config_get):
    packages.installed["curl"] = "8.0"
    calls = []
    packages.refresh_db.side_effect = lambda: calls.append("refresh_db")
    # The refresh is what makes the newer curl visible.
    packages.latest_version.side_effect = lambda name, refresh: "8.5" if calls else ""
    packages.available["curl"] = "8.5"
    with _use_sets(ops_patch, make_config_get, SETS, refresh=True):
        ret = ops_patch.install("tools")
    assert calls == ["refresh_db"]
    packages.install.assert_called_once_with(pkgs=["curl"], refresh=False)
    assert ret["result"] is True


def test_install_does_not_refresh_by_default(ops_patch, packages):
    ops_patch.install("openssl")
    packages.refresh_db.assert_not_called()


def test_install_still_missing_after_install_fails(ops_patch, packages):
    # The provider "succeeds" but the repositories lack the version.
    packages.install.side_effect = None
    packages.install.return_value = {}
    ret = ops_patch.install("openssl")
    assert ret == {
        "result": False,
        "changes": {},
        "comment": "Patch set openssl is still missing: "
        "openssl (installed 3.0.11-1, required 3.0.13-1)",
    }


def test_install_error_is_reported_with_partial_changes(ops_patch, packages):
    packages.installed.pop("libssl3")
    partial = {"libssl3": {"old": "", "new": "3.0.13-1"}}

    def _fail_half(pkgs, refresh):
        packages.installed["libssl3"] = "3.0.13-1"
        raise CommandExecutionError(
            "Problem encountered installing package(s)",
            info={"changes": partial, "errors": ["E: openssl 3.0.13-1 not found"]},
        )

    packages.install.side_effect = _fail_half
    ret = ops_patch.install("openssl")
    assert ret == {
        "result": False,
        "changes": partial,
        "comment": "Patch set openssl is still missing: "
        "openssl (installed 3.0.11-1, required 3.0.13-1); "
        "pkg.install failed: Problem encountered installing package(s); "
        "E: openssl 3.0.13-1 not found",
    }


def test_install_error_but_compliant_afterwards_succeeds(ops_patch, packages):
    def _install_then_complain(pkgs, refresh):
        packages.installed["openssl"] = "3.0.13-1"
        raise CommandExecutionError("post-install trigger warning")

    packages.install.side_effect = _install_then_complain
    ret = ops_patch.install("openssl")
    assert ret == {
        "result": True,
        "changes": {},
        "comment": "Patch set openssl installed: openssl "
        "(pkg.install reported: post-install trigger warning)",
    }


# ---------------------------------------------------------------- retcode


@pytest.mark.parametrize(
    ("function", "kwargs"), [("check", {}), ("install", {}), ("install", {"test": True})]
)
def test_answer_clears_retcode_left_by_pkg_probes(ops_patch, packages, function, kwargs):
    # The pkg providers run dpkg-query/rpm through cmd.*, which records the
    # exit code (1 for "not installed") as the job's retcode.
    def _probe(name):
        ops_patch.__context__["retcode"] = 1
        return packages.installed.get(name, "")

    packages.version.side_effect = _probe
    getattr(ops_patch, function)("openssl", **kwargs)
    assert ops_patch.__context__["retcode"] == 0
