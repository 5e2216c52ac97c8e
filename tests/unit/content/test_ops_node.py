"""
Unit tests of ``_states/ops_node.py``.

Every state is a thin mapping onto one execution-module operation, so the
tests are a table: for each state, the operation it must call (with the run's
test flag), and the full state return it must make of the operation's answer
(success, no change, test mode, failure, and an error raised).
"""

from unittest.mock import MagicMock, call, patch

import pytest
from salt.exceptions import CommandExecutionError

URL = "http://127.0.0.1:8080/health"

OPERATIONS = (
    "ops_lb.pull_out",
    "ops_lb.pull_in",
    "ops_patch.install",
    "ops_app.restart",
    "ops_app.ignite",
)

# (state function, its kwargs, the operation it calls, the call it makes but for test=)
CASES = [
    pytest.param(
        "pulled_out",
        {"name": "drain web", "pool": "web"},
        "ops_lb.pull_out",
        (("web",), {"reason": "saltpipe"}),
        id="pulled_out",
    ),
    pytest.param(
        "pulled_out",
        {"name": "drain web", "pool": "web", "reason": "monthly patch"},
        "ops_lb.pull_out",
        (("web",), {"reason": "monthly patch"}),
        id="pulled_out-reason",
    ),
    pytest.param(
        "pulled_in",
        {"name": "undrain web", "pool": "web"},
        "ops_lb.pull_in",
        (("web",), {}),
        id="pulled_in",
    ),
    pytest.param(
        "patched",
        {"name": "monthly patch", "patchset": "2024-06-openssl"},
        "ops_patch.install",
        (("2024-06-openssl",), {}),
        id="patched",
    ),
    pytest.param(
        "service_restarted",
        {"name": "nginx"},
        "ops_app.restart",
        (("nginx",), {}),
        id="service_restarted",
    ),
    pytest.param(
        "ignited",
        {"name": "warm up", "url": URL},
        "ops_app.ignite",
        ((URL,), {"expect_status": 200, "retries": 30, "interval": 2}),
        id="ignited",
    ),
    pytest.param(
        "ignited",
        {"name": "warm up", "url": URL, "expect_status": 204, "retries": 3, "interval": 0.5},
        "ops_app.ignite",
        ((URL,), {"expect_status": 204, "retries": 3, "interval": 0.5}),
        id="ignited-options",
    ),
]


@pytest.fixture
def operations():
    return {key: MagicMock(name=key) for key in OPERATIONS}


@pytest.fixture
def configure_loader_modules(ops_node, operations):
    return {ops_node: {"__salt__": dict(operations), "__opts__": {"test": False}}}


def _run_state(ops_node, function, kwargs):
    return getattr(ops_node, function)(**kwargs)


def _expected_call(expected, test):
    args, kwargs = expected
    return call(*args, test=test, **kwargs)


# ---------------------------------------------------------------- __virtual__


def test_virtual_with_operations_synced(ops_node):
    assert ops_node.__virtual__() == "ops_node"


@pytest.mark.parametrize("absent", ["ops_lb.pull_out", "ops_patch.install", "ops_app.ignite"])
def test_virtual_without_an_execution_module(ops_node, absent):
    del ops_node.__salt__[absent]
    assert ops_node.__virtual__() == (
        False,
        "ops_node needs the ops_lb, ops_patch and ops_app execution modules; "
        "sync them with saltutil.sync_modules (or sync_all)",
    )


# ---------------------------------------------------------------- the table


@pytest.mark.parametrize(("function", "kwargs", "operation", "expected"), CASES)
def test_success(ops_node, operations, function, kwargs, operation, expected):
    operations[operation].return_value = {
        "result": True,
        "changes": {"what": {"old": "a", "new": "b"}},
        "comment": "done",
    }
    assert _run_state(ops_node, function, kwargs) == {
        "name": kwargs["name"],
        "result": True,
        "changes": {"what": {"old": "a", "new": "b"}},
        "comment": "done",
    }
    assert operations[operation].call_args_list == [_expected_call(expected, test=False)]
    # Exactly one operation per state.
    assert sum(mock.call_count for mock in operations.values()) == 1


@pytest.mark.parametrize(("function", "kwargs", "operation", "expected"), CASES)
def test_already_in_state(ops_node, operations, function, kwargs, operation, expected):
    operations[operation].return_value = {"result": True, "changes": {}, "comment": "nothing to do"}
    assert _run_state(ops_node, function, kwargs) == {
        "name": kwargs["name"],
        "result": True,
        "changes": {},
        "comment": "nothing to do",
    }


@pytest.mark.parametrize(("function", "kwargs", "operation", "expected"), CASES)
def test_test_mode_passes_test_flag(ops_node, operations, function, kwargs, operation, expected):
    operations[operation].return_value = {
        "result": None,
        "changes": {"what": {"old": "a", "new": "b"}},
        "comment": "would do",
    }
    with patch.dict(ops_node.__opts__, {"test": True}):
        ret = _run_state(ops_node, function, kwargs)
    assert ret == {
        "name": kwargs["name"],
        "result": None,
        "changes": {"what": {"old": "a", "new": "b"}},
        "comment": "would do",
    }
    assert operations[operation].call_args_list == [_expected_call(expected, test=True)]


@pytest.mark.parametrize(("function", "kwargs", "operation", "expected"), CASES)
def test_failure(ops_node, operations, function, kwargs, operation, expected):
    operations[operation].return_value = {"result": False, "changes": {}, "comment": "it broke"}
    assert _run_state(ops_node, function, kwargs) == {
        "name": kwargs["name"],
        "result": False,
        "changes": {},
        "comment": "it broke",
    }


@pytest.mark.parametrize(("function", "kwargs", "operation", "expected"), CASES)
def test_error_becomes_failed_state(ops_node, operations, function, kwargs, operation, expected):
    operations[operation].side_effect = CommandExecutionError("Invalid pool name '../x'")
    assert _run_state(ops_node, function, kwargs) == {
        "name": kwargs["name"],
        "result": False,
        "changes": {},
        "comment": "Invalid pool name '../x'",
    }


@pytest.mark.parametrize(("function", "kwargs", "operation", "expected"), CASES)
def test_other_exceptions_propagate(ops_node, operations, function, kwargs, operation, expected):
    # Only the operations' declared error is turned into a result; a bug must
    # surface as one (Salt shows it with its traceback) instead of being hidden.
    operations[operation].side_effect = KeyError("bug")
    with pytest.raises(KeyError):
        _run_state(ops_node, function, kwargs)


def test_ignited_has_no_changes(ops_node, operations):
    # ignite answers {"result", "attempts", "status", "comment"}: no changes key.
    operations["ops_app.ignite"].return_value = {
        "result": True,
        "attempts": 3,
        "status": 200,
        "comment": f"{URL} answered 200 after 3 attempt(s)",
    }
    assert ops_node.ignited("warm up", URL) == {
        "name": "warm up",
        "result": True,
        "changes": {},
        "comment": f"{URL} answered 200 after 3 attempt(s)",
    }


def test_ignited_failure(ops_node, operations):
    operations["ops_app.ignite"].return_value = {
        "result": False,
        "attempts": 30,
        "status": 503,
        "comment": f"{URL} did not answer 200 after 30 attempt(s): last status 503",
    }
    assert ops_node.ignited("warm up", URL) == {
        "name": "warm up",
        "result": False,
        "changes": {},
        "comment": f"{URL} did not answer 200 after 30 attempt(s): last status 503",
    }
