"""
What every atomic operation module (``_modules/ops_*.py``) shares, as a Salt utils module.

Salt ships ``_utils/`` to the minions with the other custom modules (``saltutil.sync_all``, and every
``state.apply`` syncs them first), and hands its functions to execution modules as ``__utils__["ops_common.*"]``.
Each ops module's ``__virtual__`` refuses to load without it (the loader's reason says to run
``saltutil.sync_all``), instead of failing at its first call.

Nothing here reads Salt's dunders itself: the caller passes its own ``__opts__`` / ``__context__``, because a utils
module's loader context is not the execution module's (a ``state.apply test=True`` changes the state run's
``__opts__``, not the utils loader's).

What each ops module still holds itself, because it cannot live here: the one-line ``__virtual__`` check that this
module is synced (it runs before ``__utils__`` is known to have it) and the ``_answer_is_the_return`` decorator
(applied when the module is imported, before the loader injects ``__utils__``; it reads the module's own
``__context__`` at call time).
"""

from typing import Any

__virtualname__ = "ops_common"

def __virtual__() -> str:
    """Always loadable: plain Python, no Salt module needed."""
    return __virtualname__


def test_mode(test: Any, opts: Any) -> bool:
    """A dry run was asked for explicitly (``test=True``), or the minion runs with ``test: True``."""
    return bool(test) or bool(opts.get("test", False))


def outcome(result: bool | None, changes: dict[str, Any], comment: str) -> dict[str, Any]:
    """
    The state-like return of an ops action (``pull_out``, ``restart``, ``install`` ...): ``{"result", "changes",
    "comment"}``. ``result`` is True (done, or nothing to do), None (a dry run: ``changes`` is what would change)
    or False (failed: ``comment`` says why); Salt exits 1 for a falsy ``result``.
    """
    if not any(result is allowed for allowed in (True, False, None)):  # `is`: 0 == False, 1 == True
        raise TypeError(f"result must be True, False or None, got {result!r}")
    return {"result": result, "changes": dict(changes), "comment": str(comment)}


def answered(context: Any, ret: Any) -> Any:
    """
    Clear the job's retcode, then give back ``ret``: an ops function's outcome is its return value.

    Salt's shell-backed functions (the ``service`` and ``pkg`` providers' probes) record their exit code in
    ``__context__["retcode"]``, and that value leaks: ``salt-call`` exits with it even when the answer is fine,
    and a state's ``unless``/``onlyif`` ``fun:`` check reads it instead of the function's return, even when an
    earlier state of the run left it. A falsy ``result`` still makes Salt exit 1 (Salt's rule for dict returns);
    an exception still fails the call, because it never reaches here.
    """
    context["retcode"] = 0
    return ret
