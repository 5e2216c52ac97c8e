"""
Unit tests of ``_modules/ops_lb.py``.

The happy paths run on Salt's real ``file`` execution functions against a
temporary drain directory, so "the flag exists" means a file exists; the
failure paths replace single ``file.*`` functions with mocks that raise.
"""

from unittest.mock import MagicMock, patch

import pytest
import salt.modules.file as salt_file
from salt.exceptions import CommandExecutionError


@pytest.fixture
def drain_dir(tmp_path):
    # Not created: pull_out must create it (file.mkdir).
    return tmp_path / "lb-drain"


@pytest.fixture
def configure_loader_modules(ops_lb, drain_dir, make_config_get, ops_utils):
    return {
        ops_lb: {
            "__salt__": {
                "config.get": make_config_get({"ops": {"lb": {"drain_dir": str(drain_dir)}}}),
                "file.file_exists": salt_file.file_exists,
                "file.read": salt_file.read,
                "file.write": salt_file.write,
                "file.mkdir": salt_file.mkdir,
                "file.remove": salt_file.remove,
            },
            "__opts__": {"test": False},
            "__utils__": ops_utils,
        },
        # Salt's file module reads its own dunders when mkdir creates directories.
        salt_file: {"__opts__": {"test": False}, "__salt__": {}, "__grains__": {"kernel": "Linux"}},
    }


def test_virtual(ops_lb):
    assert ops_lb.__virtual__() == "ops_lb"


# ---------------------------------------------------------------- status


def test_status_in_pool_when_no_flag(ops_lb, drain_dir):
    assert ops_lb.status("web") == {
        "pool": "web",
        "in_pool": True,
        "flag": str(drain_dir / "web.drain"),
        "reason": None,
    }


def test_status_out_of_pool_reports_reason(ops_lb, drain_dir):
    drain_dir.mkdir()
    (drain_dir / "web.drain").write_text("patch 2024-06\nsecond line ignored\n")
    assert ops_lb.status("web") == {
        "pool": "web",
        "in_pool": False,
        "flag": str(drain_dir / "web.drain"),
        "reason": "patch 2024-06",
    }


def test_status_pools_are_independent(ops_lb, drain_dir):
    drain_dir.mkdir()
    (drain_dir / "web.drain").write_text("x\n")
    assert ops_lb.status("web")["in_pool"] is False
    assert ops_lb.status("api")["in_pool"] is True


def test_status_empty_flag_has_no_reason(ops_lb, drain_dir):
    drain_dir.mkdir()
    (drain_dir / "web.drain").write_text("")
    assert ops_lb.status("web")["reason"] is None
    assert ops_lb.status("web")["in_pool"] is False


def test_status_unreadable_flag_still_reports_out(ops_lb):
    with patch.dict(
        ops_lb.__salt__,
        {
            "file.file_exists": MagicMock(return_value=True),
            "file.read": MagicMock(side_effect=OSError(13, "Permission denied")),
        },
    ):
        ret = ops_lb.status("web")
    assert ret["in_pool"] is False
    assert ret["reason"] is None


def test_status_default_drain_dir(ops_lb, make_config_get):
    exists = MagicMock(return_value=False)
    with patch.dict(
        ops_lb.__salt__, {"config.get": make_config_get({}), "file.file_exists": exists}
    ):
        ret = ops_lb.status("web")
    assert ret["flag"] == "/etc/ops/lb-drain/web.drain"
    exists.assert_called_once_with("/etc/ops/lb-drain/web.drain")


@pytest.mark.parametrize(
    "pool",
    ["", "../etc", "a/b", "/abs", ".hidden", "-dash", "with space", "x" * 129, None, 5, ["web"]],
)
def test_invalid_pool_names_raise(ops_lb, pool):
    for func in (ops_lb.status, ops_lb.pull_out, ops_lb.pull_in):
        with pytest.raises(CommandExecutionError, match="Invalid pool name"):
            func(pool)


@pytest.mark.parametrize("pool", ["web", "web-01", "api_v2", "pool.eu", "A9", "x" * 128])
def test_valid_pool_names(ops_lb, pool, drain_dir):
    assert ops_lb.status(pool)["flag"] == str(drain_dir / f"{pool}.drain")


@pytest.mark.parametrize(
    ("drain_dir_value", "message"),
    [
        ("relative/dir", "must be an absolute path"),
        ("", "must be a non-empty path"),
        (5, "must be a non-empty path"),
        (["/etc/x"], "must be a non-empty path"),
    ],
)
def test_invalid_drain_dir_config_raises(ops_lb, make_config_get, drain_dir_value, message):
    config = make_config_get({"ops": {"lb": {"drain_dir": drain_dir_value}}})
    with patch.dict(ops_lb.__salt__, {"config.get": config}):
        with pytest.raises(CommandExecutionError, match=f"ops:lb:drain_dir {message}"):
            ops_lb.status("web")


# ---------------------------------------------------------------- pull_out


def test_pull_out_writes_flag_with_reason(ops_lb, drain_dir):
    flag = str(drain_dir / "web.drain")
    ret = ops_lb.pull_out("web", reason="patch 2024-06")
    assert ret == {
        "result": True,
        "changes": {"pool": {"old": "in", "new": "out"}, "flag": flag, "reason": "patch 2024-06"},
        "comment": f"Node pulled out of pool web (flag {flag})",
    }
    assert (drain_dir / "web.drain").read_text() == "patch 2024-06\n"
    assert ops_lb.status("web")["in_pool"] is False


def test_pull_out_default_reason(ops_lb, drain_dir):
    ops_lb.pull_out("web")
    assert ops_lb.status("web")["reason"] == "saltpipe"


def test_pull_out_is_idempotent_and_keeps_first_reason(ops_lb, drain_dir):
    ops_lb.pull_out("web", reason="first")
    ret = ops_lb.pull_out("web", reason="second")
    assert ret == {
        "result": True,
        "changes": {},
        "comment": f"Node is already out of pool web (flag {drain_dir / 'web.drain'}, "
        "reason: first)",
    }
    assert ops_lb.status("web")["reason"] == "first"


def test_pull_out_test_mode_changes_nothing(ops_lb, drain_dir):
    flag = str(drain_dir / "web.drain")
    ret = ops_lb.pull_out("web", reason="r", test=True)
    assert ret == {
        "result": None,
        "changes": {"pool": {"old": "in", "new": "out"}, "flag": flag, "reason": "r"},
        "comment": f"Node would be pulled out of pool web (flag {flag})",
    }
    assert not drain_dir.exists()


def test_pull_out_honours_minion_test_opt(ops_lb, drain_dir):
    with patch.dict(ops_lb.__opts__, {"test": True}):
        ret = ops_lb.pull_out("web")
    assert ret["result"] is None
    assert not drain_dir.exists()


def test_pull_out_test_mode_when_already_out(ops_lb, drain_dir):
    ops_lb.pull_out("web")
    ret = ops_lb.pull_out("web", test=True)
    assert ret["result"] is True
    assert ret["changes"] == {}


@pytest.mark.parametrize(
    "error",
    [OSError(13, "Permission denied"), CommandExecutionError("disk full")],
    ids=["oserror", "command-execution-error"],
)
def test_pull_out_write_failure_returns_false(ops_lb, drain_dir, error):
    flag = str(drain_dir / "web.drain")
    with patch.dict(ops_lb.__salt__, {"file.write": MagicMock(side_effect=error)}):
        ret = ops_lb.pull_out("web")
    assert ret == {
        "result": False,
        "changes": {},
        "comment": f"Failed to pull node out of pool web: cannot write {flag}: {error}",
    }


def test_pull_out_mkdir_failure_returns_false(ops_lb):
    with patch.dict(
        ops_lb.__salt__, {"file.mkdir": MagicMock(side_effect=OSError(30, "Read-only file system"))}
    ):
        ret = ops_lb.pull_out("web")
    assert ret["result"] is False
    assert "Read-only file system" in ret["comment"]


@pytest.mark.parametrize(
    ("reason", "message"),
    [("two\nlines", "single line"), ("  ", "must not be empty"), ("a\rb", "single line")],
)
def test_pull_out_invalid_reason_raises(ops_lb, drain_dir, reason, message):
    with pytest.raises(CommandExecutionError, match=message):
        ops_lb.pull_out("web", reason=reason)
    assert not drain_dir.exists()


# ---------------------------------------------------------------- pull_in


def test_pull_in_removes_flag(ops_lb, drain_dir):
    ops_lb.pull_out("web")
    ret = ops_lb.pull_in("web")
    assert ret == {
        "result": True,
        "changes": {"pool": {"old": "out", "new": "in"}, "flag": str(drain_dir / "web.drain")},
        "comment": "Node pulled back into pool web",
    }
    assert not (drain_dir / "web.drain").exists()
    assert ops_lb.status("web")["in_pool"] is True


def test_pull_in_is_idempotent(ops_lb):
    assert ops_lb.pull_in("web") == {
        "result": True,
        "changes": {},
        "comment": "Node is already in pool web",
    }


def test_pull_in_test_mode_keeps_flag(ops_lb, drain_dir):
    ops_lb.pull_out("web")
    flag = str(drain_dir / "web.drain")
    ret = ops_lb.pull_in("web", test=True)
    assert ret == {
        "result": None,
        "changes": {"pool": {"old": "out", "new": "in"}, "flag": flag},
        "comment": f"Node would be pulled back into pool web (removing {flag})",
    }
    assert (drain_dir / "web.drain").exists()


def test_pull_in_test_mode_when_already_in(ops_lb):
    ret = ops_lb.pull_in("web", test=True)
    assert ret["result"] is True
    assert ret["changes"] == {}


def test_pull_in_remove_failure_returns_false(ops_lb, drain_dir):
    ops_lb.pull_out("web")
    flag = str(drain_dir / "web.drain")
    error = CommandExecutionError(f"Could not remove '{flag}': busy")
    with patch.dict(ops_lb.__salt__, {"file.remove": MagicMock(side_effect=error)}):
        ret = ops_lb.pull_in("web")
    assert ret == {
        "result": False,
        "changes": {},
        "comment": f"Failed to pull node into pool web: cannot remove {flag}: {error}",
    }
    assert ops_lb.status("web")["in_pool"] is False


def test_out_and_in_round_trip_on_two_pools(ops_lb):
    ops_lb.pull_out("web")
    ops_lb.pull_out("api")
    ops_lb.pull_in("web")
    assert ops_lb.status("web")["in_pool"] is True
    assert ops_lb.status("api")["in_pool"] is False


# ---------------------------------------------------------------- retcode


@pytest.mark.parametrize(
    ("function", "kwargs"),
    [("status", {}), ("pull_out", {}), ("pull_out", {"test": True}), ("pull_in", {})],
)
def test_answer_clears_leaked_retcode(ops_lb, function, kwargs):
    # An earlier shell probe of the same job (or state run) left its exit code.
    ops_lb.__context__["retcode"] = 1
    getattr(ops_lb, function)("web", **kwargs)
    assert ops_lb.__context__["retcode"] == 0


def test_error_leaves_retcode_alone(ops_lb):
    ops_lb.__context__["retcode"] = 1
    with pytest.raises(CommandExecutionError):
        ops_lb.status("../etc")
    assert ops_lb.__context__["retcode"] == 1
