"""
``_utils/ops_common.py``, the helper every ``_modules/ops_*.py`` calls through ``__utils__``, and the ops modules'
refusal to load on a minion that has not been synced with it.
"""

import pytest

OPS_MODULES = ("ops_app", "ops_lb", "ops_patch")


@pytest.fixture
def configure_loader_modules(ops_app, ops_lb, ops_patch):
    # A minion that got _modules/ but not _utils/ (e.g. only saltutil.sync_modules ran): __utils__ lacks ops_common.
    return {module: {"__utils__": {}, "__opts__": {"test": False}} for module in (ops_app, ops_lb, ops_patch)}


@pytest.mark.parametrize(
    ("test", "opts", "expected"),
    [
        (False, {}, False),
        (None, {"test": False}, False),
        (True, {}, True),
        (False, {"test": True}, True),
        (None, {"test": True}, True),
    ],
)
def test_test_mode(ops_common, test, opts, expected):
    assert ops_common.test_mode(test, opts) is expected


def test_answered_clears_a_leaked_retcode_and_returns_the_answer(ops_common):
    context = {"retcode": 3, "other": "kept"}
    answer = {"result": True, "comment": "in pool"}
    assert ops_common.answered(context, answer) is answer
    assert context == {"retcode": 0, "other": "kept"}


@pytest.mark.parametrize("result", [True, None, False])
def test_outcome_is_the_state_like_return_of_an_action(ops_common, result):
    changes = {"pool": {"old": "in", "new": "out"}}
    ret = ops_common.outcome(result, changes, "Node pulled out of pool web")
    assert ret == {"result": result, "changes": changes, "comment": "Node pulled out of pool web"}
    # A copy: a caller that goes on filling its dict does not change the answer already given.
    changes["flag"] = "/etc/ops/lb-drain/web.drain"
    assert "flag" not in ret["changes"]


@pytest.mark.parametrize("result", ["False", 0, 1, "yes"])
def test_outcome_refuses_a_result_that_is_not_true_false_or_none(ops_common, result):
    # Salt reads a falsy result as failure: a string "False" would pass as success.
    with pytest.raises(TypeError, match="result must be True, False or None"):
        ops_common.outcome(result, {}, "comment")


def test_ops_common_is_always_loadable(ops_common):
    assert ops_common.__virtual__() == "ops_common"


@pytest.mark.parametrize("name", OPS_MODULES)
def test_ops_module_refuses_to_load_without_ops_common(request, name):
    module = request.getfixturevalue(name)
    loaded, reason = module.__virtual__()
    assert loaded is False
    assert reason.startswith(f"{name}: needs _utils/ops_common.py")
    assert "saltutil.sync_all" in reason
