"""
Application service operations: status, restart, warm-up ("ignite") and health.

Built only on Salt's own ``service`` and ``http`` execution modules, so it
works with the minion's service manager (systemd, sysvinit, ...) and needs no
shell.

:configuration: Read with ``config.get`` (pillar, grains or minion options):

    .. code-block:: yaml

        ops:
          app:
            health_url: http://127.0.0.1:8080/health   # default URL of health()
            health_timeout: 5                          # seconds, default 5

Invalid arguments or configuration raise ``CommandExecutionError``. A failed
restart or warm-up returns ``result: False`` with a comment saying why (Salt
then exits with retcode 1); :py:func:`health` never raises for an unreachable
application, it returns False.
"""

import functools
import logging
import math
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "ops_app"

# The loader's reason when the shared utils module has not been synced to this minion.
_NEEDS_UTILS = "needs _utils/ops_common.py on the minion: run saltutil.sync_all (it syncs utils with the modules)"

DEFAULT_HEALTH_TIMEOUT = 5


def __virtual__() -> str | tuple[bool, str]:
    """
    Always loadable: ``service`` and ``http`` are resolved when a function is
    called, and fail there with Salt's own error if the minion lacks them.
    Needs ``_utils/ops_common.py`` (synced with the modules).
    """
    return __virtualname__ if "ops_common.answered" in __utils__ else (False, f"{__virtualname__}: {_NEEDS_UTILS}")


def _answer_is_the_return(func: Callable[..., Any]) -> Callable[..., Any]:
    """Clear the job's retcode once ``func`` has returned (why: ``ops_common.answered``)."""
    return functools.wraps(func)(lambda *a, **kw: __utils__["ops_common.answered"](__context__, func(*a, **kw)))


def _sleep(seconds: float) -> None:
    """Wait between probes. A seam of its own so unit tests never really sleep."""
    time.sleep(seconds)


def _service_name(name: Any) -> str:
    """Validate a service name (a non-empty string without whitespace or '/')."""
    if not isinstance(name, str) or not name.strip():
        raise CommandExecutionError(f"Invalid service name {name!r}: give the service's name")
    if any(char.isspace() for char in name) or "/" in name:
        raise CommandExecutionError(
            f"Invalid service name {name!r}: no whitespace or '/' allowed"
        )
    return name


def _url(url: Any, what: str = "url") -> str:
    """Validate an absolute http(s) URL."""
    if not isinstance(url, str) or not url:
        raise CommandExecutionError(f"{what} must be an http:// or https:// URL, got {url!r}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandExecutionError(f"{what} must be an http:// or https:// URL, got {url!r}")
    return url


def _number(value: Any, what: str, minimum: float, integer: bool = True) -> Any:
    """``value`` as an int (or float) of at least ``minimum``; CLI values may be strings."""
    if isinstance(value, bool):
        raise CommandExecutionError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CommandExecutionError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise CommandExecutionError(f"{what} must be a finite number, got {value!r}")
    if integer:
        if not number.is_integer():
            raise CommandExecutionError(f"{what} must be a whole number, got {value!r}")
        number = int(number)
    if number < minimum:
        raise CommandExecutionError(f"{what} must be at least {minimum}, got {value!r}")
    return number


def _probe(url: str, timeout: float) -> tuple[int | None, str | None]:
    """
    One GET of ``url``: ``(status, error)``.

    ``status`` is None (with the reason in ``error``) when no HTTP answer came
    back. Salt's ``http.query`` reports connection errors as status 0 and
    wraps its own exceptions in ``CommandExecutionError``.
    """
    try:
        reply = __salt__["http.query"](
            url,
            status=True,
            # http.query merges "opts" into the minion opts it passes on; these
            # two are the tornado backend's timeouts.
            opts={"http_connect_timeout": timeout, "http_request_timeout": timeout},
        )
    except CommandExecutionError as exc:
        return None, str(exc)
    if not isinstance(reply, dict):
        return None, f"unexpected http.query reply {reply!r}"
    code = reply.get("status")
    if not code:
        return None, str(reply.get("error") or "no answer")
    return int(code), reply.get("error")


@_answer_is_the_return
def status(name: str) -> dict[str, Any]:
    """
    Report whether the application service ``name`` is running and enabled.

    name
        The service's name, as the minion's service manager knows it.

    Returns ``{"name": str, "running": bool, "enabled": bool}``.

    CLI Example:

    .. code-block:: bash

        salt '*' ops_app.status nginx
    """
    name = _service_name(name)
    return {
        "name": name,
        "running": bool(__salt__["service.status"](name)),
        "enabled": bool(__salt__["service.enabled"](name)),
    }


@_answer_is_the_return
def restart(name: str, test: bool = False) -> dict[str, Any]:
    """
    Restart the application service ``name`` and check that it runs afterwards.

    Fails (result False) when the service does not exist on the minion
    (``service.available``), when the restart fails, or when the service is not
    running after it.

    name
        The service's name.

    test : False
        Only report that the service would be restarted. The minion's
        ``test: True`` also makes this a dry run.

    Returns ``{"result": bool|None, "changes": {"restarted": name} or {},
    "comment": str}``.

    CLI Example:

    .. code-block:: bash

        salt '*' ops_app.restart nginx
        salt '*' ops_app.restart nginx test=True
    """
    name = _service_name(name)
    if not __salt__["service.available"](name):
        return __utils__["ops_common.outcome"](
            False, {}, f"Service {name} is not available on this minion; "
            "check the service name (ops:app:service in pillar)",
        )
    if __utils__["ops_common.test_mode"](test, __opts__):
        return __utils__["ops_common.outcome"](None, {"restarted": name}, f"Service {name} would be restarted")
    try:
        restarted = __salt__["service.restart"](name)
    except CommandExecutionError as exc:
        return __utils__["ops_common.outcome"](False, {}, f"Failed to restart service {name}: {exc}")
    if not restarted:
        return __utils__["ops_common.outcome"](
            False, {}, f"Failed to restart service {name}: the service manager reported failure"
        )
    if not __salt__["service.status"](name):
        return __utils__["ops_common.outcome"](
            False, {"restarted": name}, f"Service {name} was restarted but is not running"
        )
    log.info("Restarted service %s", name)
    return __utils__["ops_common.outcome"](True, {"restarted": name}, f"Service {name} restarted")


@_answer_is_the_return
def ignite(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    url: str,
    expect_status: int = 200,
    retries: int = 30,
    interval: float = 2,
    timeout: float = 5,
    test: bool = False,
) -> dict[str, Any]:
    """
    Warm the application up: request ``url`` until it answers ``expect_status``.

    Up to ``retries`` GET requests (``http.query``), ``interval`` seconds apart,
    each with a ``timeout`` in seconds. The first requests after a restart are
    the slow ones (caches, JIT, connection pools); this also proves the
    application answers before the node goes back into its pool.

    url
        http:// or https:// URL to request.

    expect_status : 200
        The HTTP status that means "warm".

    retries : 30
        How many requests at most (at least 1).

    interval : 2
        Seconds between requests.

    timeout : 5
        Seconds each request may take.

    test : False
        Only report what would be done (no request is made). The minion's
        ``test: True`` also makes this a dry run.

    Returns ``{"result": bool|None, "attempts": int, "status": int|None,
    "comment": str}``: ``status`` is the last HTTP status seen (None when no
    answer came); ``result`` is False after ``retries`` attempts without
    ``expect_status``.

    CLI Example:

    .. code-block:: bash

        salt '*' ops_app.ignite http://127.0.0.1:8080/health
        salt '*' ops_app.ignite http://127.0.0.1:8080/ expect_status=204 retries=10 interval=1
    """
    url = _url(url)
    expect_status = _number(expect_status, "expect_status", 100)
    if expect_status > 599:
        raise CommandExecutionError(
            f"expect_status must be an HTTP status (100-599), got {expect_status}"
        )
    retries = _number(retries, "retries", 1)
    interval = _number(interval, "interval", 0, integer=False)
    timeout = _number(timeout, "timeout", 0.001, integer=False)
    if __utils__["ops_common.test_mode"](test, __opts__):
        return {
            "result": None,
            "attempts": 0,
            "status": None,
            "comment": f"Would request {url} up to {retries} times, {interval:g}s apart, "
            f"until it answers {expect_status}",
        }
    last_status, last_error = None, None
    for attempt in range(1, retries + 1):
        last_status, last_error = _probe(url, timeout)
        if last_status == expect_status:
            log.info("%s answered %s after %d attempt(s)", url, last_status, attempt)
            return {
                "result": True,
                "attempts": attempt,
                "status": last_status,
                "comment": f"{url} answered {last_status} after {attempt} attempt(s)",
            }
        log.debug(
            "Ignite attempt %d/%d of %s: status %s (%s)",
            attempt,
            retries,
            url,
            last_status,
            last_error,
        )
        if attempt < retries:
            _sleep(interval)
    seen = f"last status {last_status}" if last_status is not None else f"no answer ({last_error})"
    return {
        "result": False,
        "attempts": retries,
        "status": last_status,
        "comment": f"{url} did not answer {expect_status} after {retries} attempt(s): {seen}",
    }


@_answer_is_the_return
def health(url: str | None = None) -> bool:
    """
    One health probe: True when ``url`` answers with a 2xx status, else False.

    Meant as the rollout's health check, so an unreachable or failing
    application gives False, never an exception. Only a missing or malformed
    URL (a configuration error) raises.

    url
        URL to probe; defaults to ``ops:app:health_url`` from config. The
        timeout is ``ops:app:health_timeout`` (seconds, default 5).

    CLI Example:

    .. code-block:: bash

        salt '*' ops_app.health
        salt '*' ops_app.health http://127.0.0.1:8080/health
    """
    if url is None:
        url = __salt__["config.get"]("ops:app:health_url", None)
        if not url:
            raise CommandExecutionError(
                "No URL given and ops:app:health_url is not set; set it in pillar "
                "or pass url=http://..."
            )
        url = _url(url, "ops:app:health_url")
    else:
        url = _url(url)
    timeout = _number(
        __salt__["config.get"]("ops:app:health_timeout", DEFAULT_HEALTH_TIMEOUT),
        "ops:app:health_timeout",
        0.001,
        integer=False,
    )
    status_code, error = _probe(url, timeout)
    healthy = status_code is not None and 200 <= status_code < 300
    if not healthy:
        log.info("Health probe of %s failed: status %s (%s)", url, status_code, error)
    return healthy
