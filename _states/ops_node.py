"""
States for the steps of a patch run on one node: pull out of the load balancer,
install a patch set, restart the application, warm it up, pull back in.

Each state calls the matching execution module (``ops_lb``, ``ops_patch``,
``ops_app``), which does the work idempotently and honours test mode; the
state turns its answer into a state return. Errors of configuration or
arguments (``CommandExecutionError``) become ``result: False`` with the error
as the comment, so one bad node does not abort the whole highstate.

The patch workflow, in order with requisites:

.. code-block:: yaml

    pull_out:
      ops_node.pulled_out:
        - pool: web
    patch:
      ops_node.patched:
        - name: monthly patch
        - patchset: 2024-06-openssl
        - require:
          - ops_node: pull_out
    restart:
      ops_node.service_restarted:
        - name: nginx
        - onchanges:
          - ops_node: patch
    ignite:
      ops_node.ignited:
        - url: http://127.0.0.1/health
        - require:
          - ops_node: restart
    pull_in:
      ops_node.pulled_in:
        - pool: web
        - require:
          - ops_node: ignite
"""

import logging
from collections.abc import Callable
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "ops_node"


def __virtual__() -> str | tuple[bool, str]:
    """Available when the three execution modules it wraps are synced to the minion."""
    if (
        "ops_lb.pull_out" in __salt__
        and "ops_patch.install" in __salt__
        and "ops_app.ignite" in __salt__
    ):
        return __virtualname__
    return (
        False,
        "ops_node needs the ops_lb, ops_patch and ops_app execution modules; "
        "sync them with saltutil.sync_modules (or sync_all)",
    )


def _run(
    name: str, operation: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """
    Call an execution-module operation with the run's test flag and map its
    ``{"result", "changes", "comment"}`` onto a state return for ``name``.
    """
    ret: dict[str, Any] = {"name": name, "result": False, "changes": {}, "comment": ""}
    try:
        out = operation(*args, test=bool(__opts__.get("test", False)), **kwargs)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["result"] = out["result"]
    ret["changes"] = out.get("changes") or {}
    ret["comment"] = out["comment"]
    return ret


def pulled_out(name: str, pool: str, reason: str = "saltpipe") -> dict[str, Any]:
    """
    Ensure this node is out of the load-balancer pool ``pool`` (its drain flag exists).

    name
        The state's label.

    pool
        Name of the pool (``ops:lb:pool`` in the shipped formulas).

    reason : saltpipe
        Stored in the drain flag; kept if the node is already out.

    .. code-block:: yaml

        pull_out:
          ops_node.pulled_out:
            - pool: web
            - reason: monthly patch
    """
    return _run(name, __salt__["ops_lb.pull_out"], pool, reason=reason)


def pulled_in(name: str, pool: str) -> dict[str, Any]:
    """
    Ensure this node is in the load-balancer pool ``pool`` (no drain flag).

    name
        The state's label.

    pool
        Name of the pool.

    .. code-block:: yaml

        pull_in:
          ops_node.pulled_in:
            - pool: web
            - require:
              - ops_node: ignite
    """
    return _run(name, __salt__["ops_lb.pull_in"], pool)


def patched(name: str, patchset: str) -> dict[str, Any]:
    """
    Ensure the patch set ``patchset`` (``ops:patch:sets:<patchset>``) is installed.

    Installs only the packages that are missing; changes list them with their
    old and new versions, so a restart can follow with ``onchanges``.

    name
        The state's label.

    patchset
        Name of the patch set.

    .. code-block:: yaml

        patch:
          ops_node.patched:
            - name: monthly patch
            - patchset: 2024-06-openssl
    """
    return _run(name, __salt__["ops_patch.install"], patchset)


def service_restarted(name: str) -> dict[str, Any]:
    """
    Restart the service ``name`` and check that it runs afterwards.

    It restarts every time it runs, so use it with ``onchanges`` (run only
    when a required state changed something). Under ``watch`` it behaves as
    a plain ``require`` (there is no ``mod_watch``), i.e. it always restarts.

    name
        The service's name.

    .. code-block:: yaml

        restart:
          ops_node.service_restarted:
            - name: nginx
            - onchanges:
              - ops_node: patch
    """
    return _run(name, __salt__["ops_app.restart"], name)


def ignited(
    name: str, url: str, expect_status: int = 200, retries: int = 30, interval: float = 2
) -> dict[str, Any]:
    """
    Warm the application up: request ``url`` until it answers ``expect_status``.

    A warm-up changes nothing on the node, so ``changes`` stays empty; the
    comment tells how many attempts it took. In test mode no request is made
    and the result is None.

    name
        The state's label.

    url
        http:// or https:// URL to request.

    expect_status : 200
        The HTTP status that means "warm".

    retries : 30
        How many requests at most.

    interval : 2
        Seconds between requests.

    .. code-block:: yaml

        ignite:
          ops_node.ignited:
            - url: http://127.0.0.1:8080/health
            - retries: 10
            - require:
              - ops_node: restart
    """
    return _run(
        name,
        __salt__["ops_app.ignite"],
        url,
        expect_status=expect_status,
        retries=retries,
        interval=interval,
    )
