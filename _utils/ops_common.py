"""
What every atomic operation module (``_modules/ops_*.py``) shares, as a Salt utils module.

Salt ships ``_utils/`` to the minions with the other custom modules (``saltutil.sync_all``, and every
``state.apply`` syncs them first), and hands its functions to execution modules as ``__utils__["ops_common.*"]``.
Each ops module's ``__virtual__`` refuses to load without it (the loader's reason says to run
``saltutil.sync_all``), instead of failing at its first call.

Nothing here reads Salt's dunders itself: the caller passes its own ``__opts__`` / ``__context__``, because a utils
module's loader context is not the execution module's (a ``state.apply test=True`` changes the state run's
``__opts__``, not the utils loader's).
"""

from typing import Any

__virtualname__ = "ops_common"

def __virtual__() -> str:
    """Always loadable: plain Python, no Salt module needed."""
    return __virtualname__


def test_mode(test: Any, opts: Any) -> bool:
    """A dry run was asked for explicitly (``test=True``), or the minion runs with ``test: True``."""
    return bool(test) or bool(opts.get("test", False))


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
