"""
Unit tests of ``_modules/ops_app.py``.

``service.*`` and ``http.query`` are MagicMocks with the return shapes of
Salt's modules (``http.query(..., status=True)`` gives ``{"status": int}``
plus ``"error"`` on failure, status 0 when nothing answered). ``ignite``'s
wait goes through the module's ``_sleep`` seam, which every test replaces, so
no test ever sleeps; ``no_real_sleep`` also fails loudly if ``time.sleep`` is
reached.
"""

from unittest.mock import MagicMock, call, patch

import pytest
from salt.exceptions import CommandExecutionError

URL = "http://127.0.0.1:8080/health"


def _answer(status, error=None):
    """An ``http.query(url, status=True)`` reply."""
    reply = {"status": status}
    if error:
        reply["error"] = error
    return reply


REFUSED = _answer(0, "[Errno 111] Connection refused")


@pytest.fixture
def http_query():
    return MagicMock(return_value=_answer(200))


@pytest.fixture
def configure_loader_modules(ops_app, service, http_query, make_config_get, ops_utils):
    config = make_config_get({"ops": {"app": {"health_url": URL, "health_timeout": 3}}})
    return {
        ops_app: {
            "__salt__": {"config.get": config, "http.query": http_query, **service},
            "__opts__": {"test": False},
            "__utils__": ops_utils,
            "__context__": {},
        }
    }


@pytest.fixture
def sleep(ops_app):
    with patch.object(ops_app, "_sleep") as mocked:
        yield mocked


@pytest.fixture(autouse=True)
def no_real_sleep(ops_app):
    real_sleep = AssertionError("real sleep in a unit test")
    with patch.object(ops_app.time, "sleep", side_effect=real_sleep):
        yield


def test_virtual(ops_app):
    assert ops_app.__virtual__() == "ops_app"


def test_sleep_seam_uses_time_sleep(ops_app):
    with patch.object(ops_app.time, "sleep") as time_sleep:
        ops_app._sleep(2.5)  # pylint: disable=protected-access
    time_sleep.assert_called_once_with(2.5)


# ---------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("running", "enabled"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_status(ops_app, service, running, enabled):
    service["service.status"].return_value = running
    service["service.enabled"].return_value = enabled
    assert ops_app.status("nginx") == {"name": "nginx", "running": running, "enabled": enabled}
    service["service.status"].assert_called_once_with("nginx")
    service["service.enabled"].assert_called_once_with("nginx")


def test_status_clears_retcode_left_by_service_probes(ops_app, service):
    # The service providers run their probes through cmd.*, which records the
    # probe's exit code as the job's retcode; "stopped" must not fail the job.
    def _probe(name):
        ops_app.__context__["retcode"] = 3
        return False

    service["service.status"].side_effect = _probe
    assert ops_app.status("nginx")["running"] is False
    assert ops_app.__context__["retcode"] == 0


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("status", ("nginx",)),
        ("restart", ("nginx",)),
        ("ignite", (URL,)),
        ("health", ()),
    ],
)
def test_answers_clear_leaked_retcode(ops_app, sleep, function, args):
    # Also what an earlier state of the run left: a later unless/onlyif
    # `fun: ops_app.health` must be decided by its return value.
    ops_app.__context__["retcode"] = 1
    getattr(ops_app, function)(*args)
    assert ops_app.__context__["retcode"] == 0


@pytest.mark.parametrize("name", ["", "  ", "two words", "a/b", None, 5])
def test_invalid_service_names_raise(ops_app, service, name):
    for func in (ops_app.status, ops_app.restart):
        with pytest.raises(CommandExecutionError, match="Invalid service name"):
            func(name)
    service["service.restart"].assert_not_called()


# ---------------------------------------------------------------- restart


def test_restart(ops_app, service):
    assert ops_app.restart("nginx") == {
        "result": True,
        "changes": {"restarted": "nginx"},
        "comment": "Service nginx restarted",
    }
    service["service.available"].assert_called_once_with("nginx")
    service["service.restart"].assert_called_once_with("nginx")


def test_restart_test_mode(ops_app, service):
    assert ops_app.restart("nginx", test=True) == {
        "result": None,
        "changes": {"restarted": "nginx"},
        "comment": "Service nginx would be restarted",
    }
    service["service.restart"].assert_not_called()


def test_restart_honours_minion_test_opt(ops_app, service):
    with patch.dict(ops_app.__opts__, {"test": True}):
        assert ops_app.restart("nginx")["result"] is None
    service["service.restart"].assert_not_called()


@pytest.mark.parametrize("test", [False, True])
def test_restart_unavailable_service_fails_even_in_test_mode(ops_app, service, test):
    service["service.available"].return_value = False
    assert ops_app.restart("nginx", test=test) == {
        "result": False,
        "changes": {},
        "comment": "Service nginx is not available on this minion; "
        "check the service name (ops:app:service in pillar)",
    }
    service["service.restart"].assert_not_called()


def test_restart_reported_failure(ops_app, service):
    service["service.restart"].return_value = False
    assert ops_app.restart("nginx") == {
        "result": False,
        "changes": {},
        "comment": "Failed to restart service nginx: the service manager reported failure",
    }


def test_restart_raising(ops_app, service):
    service["service.restart"].side_effect = CommandExecutionError("Job for nginx.service failed")
    assert ops_app.restart("nginx") == {
        "result": False,
        "changes": {},
        "comment": "Failed to restart service nginx: Job for nginx.service failed",
    }


def test_restart_not_running_afterwards(ops_app, service):
    service["service.status"].return_value = False
    assert ops_app.restart("nginx") == {
        "result": False,
        "changes": {"restarted": "nginx"},
        "comment": "Service nginx was restarted but is not running",
    }


# ---------------------------------------------------------------- ignite


def test_ignite_first_attempt(ops_app, http_query, sleep):
    assert ops_app.ignite(URL) == {
        "result": True,
        "attempts": 1,
        "status": 200,
        "comment": f"{URL} answered 200 after 1 attempt(s)",
    }
    http_query.assert_called_once_with(
        URL, status=True, opts={"http_connect_timeout": 5.0, "http_request_timeout": 5.0}
    )
    sleep.assert_not_called()


def test_ignite_retries_until_expected_status(ops_app, http_query, sleep):
    http_query.side_effect = [
        REFUSED,
        CommandExecutionError("HTTP 599: Timeout"),
        _answer(503, "HTTP 503: Service Unavailable"),
        _answer(200),
    ]
    ret = ops_app.ignite(URL, retries=5, interval=0.5, timeout=2)
    assert ret == {
        "result": True,
        "attempts": 4,
        "status": 200,
        "comment": f"{URL} answered 200 after 4 attempt(s)",
    }
    assert sleep.call_args_list == [call(0.5)] * 3
    assert http_query.call_args == call(
        URL, status=True, opts={"http_connect_timeout": 2.0, "http_request_timeout": 2.0}
    )


@pytest.mark.parametrize(
    ("replies", "status", "seen"),
    [
        ([_answer(503, "HTTP 503")] * 3, 503, "last status 503"),
        ([REFUSED] * 3, None, "no answer ([Errno 111] Connection refused)"),
        ([_answer(503), _answer(500), REFUSED], None, "no answer ([Errno 111] Connection refused)"),
        ([REFUSED, REFUSED, _answer(404)], 404, "last status 404"),
        ([CommandExecutionError("boom")] * 3, None, "no answer (boom)"),
        (["not a dict"] * 3, None, "no answer (unexpected http.query reply 'not a dict')"),
        ([{}] * 3, None, "no answer (no answer)"),
    ],
    ids=["503", "refused", "refused-last", "404-last", "raising", "garbage", "empty"],
)
def test_ignite_gives_up_after_retries(ops_app, http_query, sleep, replies, status, seen):
    http_query.side_effect = replies
    ret = ops_app.ignite(URL, retries=3, interval=2)
    assert ret == {
        "result": False,
        "attempts": 3,
        "status": status,
        "comment": f"{URL} did not answer 200 after 3 attempt(s): {seen}",
    }
    assert http_query.call_count == 3
    # No pointless wait after the last attempt.
    assert sleep.call_args_list == [call(2.0)] * 2


def test_ignite_other_expected_status(ops_app, http_query, sleep):
    http_query.side_effect = [_answer(200), _answer(204)]
    ret = ops_app.ignite(URL, expect_status=204, retries=2)
    assert ret["result"] is True
    assert ret["attempts"] == 2
    assert ret["status"] == 204


def test_ignite_accepts_cli_strings(ops_app, http_query, sleep):
    http_query.return_value = _answer(204)
    ret = ops_app.ignite(URL, expect_status="204", retries="1", interval="0", timeout="1.5")
    assert ret["result"] is True
    http_query.assert_called_once_with(
        URL, status=True, opts={"http_connect_timeout": 1.5, "http_request_timeout": 1.5}
    )


def test_ignite_test_mode_makes_no_request(ops_app, http_query, sleep):
    assert ops_app.ignite(URL, retries=10, interval=1, test=True) == {
        "result": None,
        "attempts": 0,
        "status": None,
        "comment": f"Would request {URL} up to 10 times, 1s apart, until it answers 200",
    }
    http_query.assert_not_called()
    sleep.assert_not_called()


def test_ignite_honours_minion_test_opt(ops_app, http_query):
    with patch.dict(ops_app.__opts__, {"test": True}):
        assert ops_app.ignite(URL)["result"] is None
    http_query.assert_not_called()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "ftp://host/x"}, "url must be an http:// or https:// URL"),
        ({"url": "127.0.0.1:8080/health"}, "url must be an http:// or https:// URL"),
        ({"url": "http://"}, "url must be an http:// or https:// URL"),
        ({"url": ""}, "url must be an http:// or https:// URL"),
        ({"url": None}, "url must be an http:// or https:// URL"),
        ({"expect_status": 99}, "expect_status must be at least 100"),
        ({"expect_status": 600}, r"expect_status must be an HTTP status \(100-599\)"),
        ({"expect_status": "ok"}, "expect_status must be a number"),
        ({"expect_status": 200.5}, "expect_status must be a whole number"),
        ({"expect_status": True}, "expect_status must be a number"),
        ({"retries": 0}, "retries must be at least 1"),
        ({"retries": 1.5}, "retries must be a whole number"),
        ({"retries": None}, "retries must be a number"),
        ({"interval": -1}, "interval must be at least 0"),
        ({"interval": float("nan")}, "interval must be a finite number"),
        ({"timeout": 0}, "timeout must be at least 0.001"),
        ({"timeout": "inf"}, "timeout must be a finite number"),
    ],
)
def test_ignite_invalid_arguments_raise(ops_app, http_query, kwargs, message):
    args = {"url": URL, **kwargs}
    with pytest.raises(CommandExecutionError, match=message):
        ops_app.ignite(**args)
    http_query.assert_not_called()


# ---------------------------------------------------------------- health


@pytest.mark.parametrize(
    ("reply", "healthy"),
    [
        (_answer(200), True),
        (_answer(204), True),
        (_answer(299), True),
        (_answer(301), False),
        (_answer(404, "HTTP 404: Not Found"), False),
        (_answer(503, "HTTP 503: Service Unavailable"), False),
        (_answer(599, "HTTP 599: Timeout"), False),
        (REFUSED, False),
        ({"error": "no status key"}, False),
        (CommandExecutionError("Name or service not known"), False),
    ],
)
def test_health_table(ops_app, http_query, reply, healthy):
    if isinstance(reply, Exception):
        http_query.side_effect = reply
    else:
        http_query.return_value = reply
    assert ops_app.health("http://app.example:8080/ready") is healthy
    http_query.assert_called_once_with(
        "http://app.example:8080/ready",
        status=True,
        opts={"http_connect_timeout": 3.0, "http_request_timeout": 3.0},
    )


def test_health_default_url_and_timeout_from_config(ops_app, http_query, make_config_get):
    assert ops_app.health() is True
    http_query.assert_called_once_with(
        URL, status=True, opts={"http_connect_timeout": 3.0, "http_request_timeout": 3.0}
    )


def test_health_default_timeout(ops_app, http_query, make_config_get):
    with patch.dict(ops_app.__salt__, {"config.get": make_config_get({})}):
        assert ops_app.health(URL) is True
    http_query.assert_called_once_with(
        URL, status=True, opts={"http_connect_timeout": 5.0, "http_request_timeout": 5.0}
    )


@pytest.mark.parametrize(
    ("app_config", "url", "message"),
    [
        ({}, None, "No URL given and ops:app:health_url is not set"),
        ({"health_url": ""}, None, "No URL given and ops:app:health_url is not set"),
        ({"health_url": "localhost/health"}, None, "ops:app:health_url must be an http"),
        ({}, "gopher://x", "url must be an http"),
        ({"health_timeout": "soon"}, URL, "ops:app:health_timeout must be a number"),
        ({"health_timeout": 0}, URL, "ops:app:health_timeout must be at least"),
    ],
)
def test_health_configuration_errors_raise(
    ops_app, http_query, make_config_get, app_config, url, message
):
    config = make_config_get({"ops": {"app": app_config}})
    with patch.dict(ops_app.__salt__, {"config.get": config}):
        with pytest.raises(CommandExecutionError, match=message):
            ops_app.health(url)
    http_query.assert_not_called()
