"""The Salt client interface: the allow list, list targeting, event parsing (LocalClient) and salt-api's HTTP shape.

salt-api is played by ``responses`` with the payloads rest_cherrypy returns; the LocalClient's event routing is fed
events as ``SaltEvent.get_event(full=True)`` yields them. Both clients run against real daemons in the integration
tests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from pipeline.errors import SaltError
from pipeline.salt_client import FunctionNotAllowed, LookupUnavailable, check_extra_functions
from pipeline.salt_client.api import SaltApiClient
from pipeline.salt_client.base import MinionReturn
from pipeline.salt_client.base import SaltClient as SaltClientBase
from pipeline.salt_client.base import returns_from_list_job, running_from_find_job
from pipeline.salt_client.local import EventRouter
from scripted_client import ScriptedSaltClient

URL = "https://mom.example.net:8000"
JID = "20250101120000123456"


# -- allow list ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fun", ["cmd.run", "cmd.script", "state.single", "saltutil.cmd", "file.remove", "test.arg"])
def test_functions_outside_the_allow_list_are_never_published(fun: str) -> None:
    client = ScriptedSaltClient({"m1": None})
    with pytest.raises(FunctionNotAllowed):
        client.publish(["m1"], fun)
    assert client.published == []


@pytest.mark.parametrize("fun", ["cmd.run", "saltutil.runner", "saltutil.cmd", "state.high", "event.fire_master",
                                 "ops_app.health; rm", "OPS.health", "health"])
def test_extra_functions_cannot_widen_the_allow_list_to_commands(fun: str) -> None:
    with pytest.raises(FunctionNotAllowed):
        check_extra_functions([fun])


def test_extra_function_is_allowed_for_that_client_only() -> None:
    client = ScriptedSaltClient({"m1": None}, extra=("ops_app.health",))
    assert client.publish(["m1"], "ops_app.health").jid
    with pytest.raises(FunctionNotAllowed):
        ScriptedSaltClient({"m1": None}).publish(["m1"], "ops_app.health")


@pytest.mark.parametrize("targets", [[], ["m1,m2"], ["*"], ["G@role:web"], [""], ["m1 m2"]])
def test_list_targets_are_plain_minion_ids(targets: list[str]) -> None:
    client = ScriptedSaltClient({"m1": None})
    with pytest.raises(Exception, match="minion|empty"):
        client.publish(targets, "test.ping")


def test_runner_allow_list() -> None:
    client = ScriptedSaltClient({"m1": None})
    with pytest.raises(FunctionNotAllowed):
        client._check_runner("manage.down")  # pylint: disable=protected-access


# -- parsing helpers -------------------------------------------------------------------------------------------------


def test_list_job_parsing_keeps_retcodes_and_accepts_old_caches() -> None:
    data = {
        "Minions": ["a", "b", "c"],
        "Result": {
            "a": {"return": {"s": {"result": True}}, "retcode": 0, "success": True},
            "b": {"return": ["render error"], "retcode": 1, "success": False},
            "c": True,  # an old job cache stores the bare return
        },
    }
    got = returns_from_list_job(JID, data, "master_cache")
    assert got["a"].retcode == 0 and got["a"].success is True and got["a"].source == "master_cache"
    assert got["b"].ret == ["render error"] and got["b"].retcode == 1
    assert got["c"].ret is True and got["c"].retcode is None
    assert returns_from_list_job(JID, "Requested returner could not be loaded", "x") == {}


def test_find_job_parsing_only_counts_the_asked_job() -> None:
    running = running_from_find_job(JID, {"a": {"jid": JID, "pid": 12}, "b": {}, "c": {"jid": "1", "pid": 3}})
    assert set(running) == {"a"} and running["a"].pid == 12


def test_event_router_sorts_returns_and_syndic_minion_lists() -> None:
    router = EventRouter()
    router.register(JID, ["direct-1"])
    events: list[dict[str, Any]] = [
        {"tag": f"syndic/syndic-prod-a/{JID}", "data": {"minions": ["prod-a-1", "prod-a-2"]}},
        {"tag": f"syndic/syndic-prod-b/{JID}", "data": {"minions": ["prod-b-1"]}},
        {"tag": f"salt/job/{JID}/ret/prod-a-1", "data": {"id": "prod-a-1", "return": True, "retcode": 0, "success": True}},
        {"tag": f"salt/job/{JID}/ret/prod-b-1", "data": {"id": "prod-b-1", "return": {"x": 1}, "retcode": 2}},
        {"tag": f"salt/job/{JID}/new", "data": {"minions": ["ignored"]}},
        {"tag": "salt/job/99999999999999999999/ret/other", "data": {"id": "other", "return": True}},  # not ours
        {"tag": f"salt/job/{JID}/ret/bad", "data": "not a mapping"},
    ]
    for event in events:
        router.feed(event)
    job = router.jobs[JID]
    assert job.syndic_of == {"prod-a-1": "syndic-prod-a", "prod-a-2": "syndic-prod-a", "prod-b-1": "syndic-prod-b"}
    assert job.expected == {"direct-1", "prod-a-1", "prod-a-2", "prod-b-1"}
    assert set(job.returns) == {"prod-a-1", "prod-b-1"}
    assert job.returns["prod-b-1"].retcode == 2 and job.returns["prod-a-1"].success is True
    assert "99999999999999999999" not in router.jobs
    assert job.announced == {"syndic-prod-a", "syndic-prod-b"}


class _FakeBus:
    """SaltEvent.get_event as the LocalClient sees it: queued events, then nothing."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = list(events)

    def get_event(self, wait: float = 5, tag: str = "", full: bool = False, no_block: bool = False) -> Any:
        return self.events.pop(0) if self.events else None


def _local_client_on(events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, syndic_wait: float) -> Any:
    """A LocalSaltClient whose master is a queue of events (no Salt daemon), on a clock that only moves when
    asked for, so that the test counts seconds of syndic_wait without spending them."""
    from types import SimpleNamespace

    import pipeline.salt_client.local as local_mod

    now = [0.0]

    def monotonic() -> float:
        now[0] += 0.05
        return now[0]

    monkeypatch.setattr(local_mod.time, "monotonic", monotonic)
    client = object.__new__(local_mod.LocalSaltClient)
    SaltClientBase.__init__(client)
    client._opts = {"order_masters": True, "syndic_wait": syndic_wait}
    client._router = EventRouter()
    client._poll_wait = 0.2
    client._local = SimpleNamespace(event=_FakeBus(events))

    def pub(tgt: Any, tgt_type: str, fun: str, arg: Any, kwarg: Any) -> dict[str, Any]:
        client._router.register(JID, [])
        return {"jid": JID, "minions": []}

    client._pub = pub
    client.now = now
    return client


def _resolve_events() -> list[dict[str, Any]]:
    return [
        {"tag": f"syndic/syndic-prod-a/{JID}", "data": {"minions": ["prod-a-1"]}},
        {"tag": f"syndic/syndic-prod-b/{JID}", "data": {"minions": ["prod-b-1"]}},
        {"tag": f"salt/job/{JID}/ret/prod-a-1", "data": {"id": "prod-a-1", "return": True}},
        {"tag": f"salt/job/{JID}/ret/prod-b-1", "data": {"id": "prod-b-1", "return": True}},
    ]


def test_local_resolve_stops_once_every_named_syndic_announced_and_answered(monkeypatch) -> None:
    client = _local_client_on(_resolve_events(), monkeypatch, syndic_wait=30.0)
    res = client.resolve("G@env:prod", timeout=60, syndics=["syndic-prod-a", "syndic-prod-b"])
    assert res.minions == {"prod-a-1": "syndic-prod-a", "prod-b-1": "syndic-prod-b"} and not res.silent
    assert client.now[0] < 30.0  # did not wait out syndic_wait


def test_local_resolve_waits_out_syndic_wait_while_a_named_syndic_is_silent(monkeypatch) -> None:
    events = [e for e in _resolve_events() if "prod-b" not in e["tag"]]
    client = _local_client_on(events, monkeypatch, syndic_wait=30.0)
    res = client.resolve("G@env:prod", timeout=60, syndics=["syndic-prod-a", "syndic-prod-b"])
    assert res.minions == {"prod-a-1": "syndic-prod-a"}
    assert client.now[0] >= 30.0  # syndic-prod-b might still announce minions: waited for it


# -- salt-api --------------------------------------------------------------------------------------------------------


def _login(rsps: responses.RequestsMock, token: str = "tok-1", url: str = URL) -> None:
    rsps.post(f"{url}/login", json={"return": [{"token": token, "expire": 1e12, "perms": [".*"]}]})


def _body(call: Any) -> Any:
    return json.loads(call.request.body)


def _api(**kw: Any) -> SaltApiClient:
    return SaltApiClient(URL, username="saltpipe", password="secret", eauth="pam", poll_interval=0, syndic_wait=0, **kw)


def test_salt_api_logs_in_once_and_publishes_list_targets() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        _login(rsps)
        rsps.post(f"{URL}/", json={"return": [{"jid": JID, "minions": ["m1", "m2"]}]})
        rsps.post(f"{URL}/", json={"return": [{"jid": "20250101120000999999", "minions": ["m1", "m2"]}]})
        client = _api()
        pub = client.publish(["m1", "m2"], "state.apply", kwarg={"saltenv": "rel-0123456789ab"})
        client.publish(["m1", "m2"], "saltutil.sync_all", kwarg={"saltenv": "rel-0123456789ab"})
        assert pub.jid == JID and pub.expected == ("m1", "m2")
        login, first, second = rsps.calls
        assert _body(login) == {"username": "saltpipe", "password": "secret", "eauth": "pam"}
        assert _body(first) == [{"client": "local_async", "tgt": "m1,m2", "tgt_type": "list", "fun": "state.apply",
                                 "kwarg": {"saltenv": "rel-0123456789ab"}}]
        assert first.request.headers["X-Auth-Token"] == "tok-1" == second.request.headers["X-Auth-Token"]
        assert client.session.logins == 1


def test_salt_api_publishes_a_multi_function_job_with_kwargs_inside_each_argument_list() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        _login(rsps)
        rsps.post(f"{URL}/", json={"return": [{"jid": JID, "minions": ["m1"]}]})
        client = _api()
        env = {"saltenv": "rel-0123456789ab"}
        pub = client.publish_chain(["m1"], [("saltutil.sync_all", (), env), ("state.apply", (), env)])
        assert pub.jid == JID and pub.fun == "saltutil.sync_all,state.apply"
        _, call = rsps.calls
        kw = {"__kwarg__": True, "saltenv": "rel-0123456789ab"}
        assert _body(call) == [{"client": "local_async", "tgt": "m1", "tgt_type": "list",
                                "fun": ["saltutil.sync_all", "state.apply"], "arg": [[kw], [kw]]}]
        with pytest.raises(FunctionNotAllowed):
            client.publish_chain(["m1"], [("saltutil.sync_all", (), {}), ("cmd.run", ("id",), {})])


def test_a_multi_function_return_is_judged_per_function() -> None:
    """What a minion returns for `saltutil.sync_all,state.apply` (Salt 3006 _thread_multi_return), as the MoM's
    event bus and job cache carry it."""
    states = {"file_|-x_|-/x_|-managed": {"result": False, "comment": "boom"}}
    data = {"Result": {"m1": {"return": {"saltutil.sync_all": {"modules": []}, "state.apply": states},
                              "retcode": {"saltutil.sync_all": 0, "state.apply": 2},
                              "success": {"saltutil.sync_all": True, "state.apply": False}}}}
    (ret,) = returns_from_list_job(JID, data, "master_cache").values()
    assert ret.retcode == 2 and ret.success is False
    sync, apply = ret.part("saltutil.sync_all", 0), ret.part("state.apply", 1)
    assert (sync.ret, sync.retcode, sync.success) == ({"modules": []}, 0, True)
    assert (apply.ret, apply.retcode, apply.success, apply.source) == (states, 2, False, "master_cache")
    # multifunc_ordered: True sends lists in call order.
    ordered = returns_from_list_job(JID, {"Result": {"m1": {"return": [{"modules": []}, states],
                                                           "retcode": [0, 2], "success": [True, False]}}}, "x")["m1"]
    assert ordered.part("state.apply", 1).ret == states and ordered.part("saltutil.sync_all", 0).retcode == 0
    # A function that raised has no retcode and success False; a whole-job error string is every part's return.
    raised = returns_from_list_job(JID, {"Result": {"m1": {"return": {"saltutil.sync_all": "Traceback ..."},
                                                          "retcode": {}, "success": {"saltutil.sync_all": False}}}},
                                   "x")["m1"]
    assert raised.part("state.apply", 1).ret is None and raised.part("saltutil.sync_all", 0).success is False
    whole = MinionReturn("m1", JID, "'state.apply' is not available.", retcode=1)
    assert whole.part("state.apply", 1).ret == "'state.apply' is not available."
    # Through the MoM's event bus the same way.
    router = EventRouter()
    router.register(JID)
    router.feed({"tag": f"salt/job/{JID}/ret/m1", "data": {"id": "m1", **data["Result"]["m1"]}})
    assert router.jobs[JID].returns["m1"].part("state.apply", 1).retcode == 2


def test_salt_api_logs_in_again_once_when_the_token_expired() -> None:
    with responses.RequestsMock() as rsps:
        _login(rsps, "tok-1")
        rsps.get(f"{URL}/jobs/{JID}", status=401)
        _login(rsps, "tok-2")
        rsps.get(f"{URL}/jobs/{JID}", json={"info": [{"Minions": ["m1"], "Result": {"m1": {"return": True, "retcode": 0}}}],
                                            "return": [{"m1": True}]})
        client = _api()
        got = client.returns(JID)
        assert got["m1"].ret is True and got["m1"].retcode == 0
        assert client.session.logins == 2 and rsps.calls[-1].request.headers["X-Auth-Token"] == "tok-2"


def test_salt_api_call_refused_with_a_fresh_token_names_external_auth() -> None:
    """What a real salt-api with eauth `auto` does for a user outside external_auth (test_salt_api.py): the
    login succeeds, the call is 401, again with a fresh token."""
    with responses.RequestsMock() as rsps:
        _login(rsps, "tok-1")
        rsps.post(f"{URL}/", status=401, body="<html>401 Unauthorized</html>")
        _login(rsps, "tok-2")
        rsps.post(f"{URL}/", status=401, body="<html>401 Unauthorized</html>")
        client = _api()
        with pytest.raises(SaltError, match="refused the call of 'saltpipe' even with a fresh token") as excinfo:
            client.publish(["m1"], "test.ping")
        assert "external_auth" in str(excinfo.value.hint) and client.session.logins == 2


def test_salt_api_disabled_netapi_client_says_what_to_enable() -> None:
    with responses.RequestsMock() as rsps:
        _login(rsps)
        rsps.post(f"{URL}/", status=400, body="Client disabled: 'local_async'. Add to 'netapi_enable_clients' "
                                             "master config option to enable.")
        with pytest.raises(SaltError) as excinfo:
            _api().publish(["m1"], "test.ping")
        assert "netapi_enable_clients: [local, local_async, runner]" in str(excinfo.value.hint)


def test_salt_api_refused_login_is_a_clear_error() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{URL}/login", status=401)
        with pytest.raises(SaltError, match="refused the login of 'saltpipe'") as excinfo:
            _api().publish(["m1"], "test.ping")
        assert "SALTPIPE_SALT_API_PASSWORD" in str(excinfo.value.hint)


def test_salt_api_acl_refusal_is_not_mistaken_for_an_empty_job() -> None:
    # salt-api answers {"return": [{}]} when the eauth ACL refuses the function.
    with responses.RequestsMock() as rsps:
        _login(rsps)
        rsps.post(f"{URL}/", json={"return": [{}]})
        with pytest.raises(SaltError, match="did not publish state.apply"):
            _api().publish(["m1"], "state.apply")


def test_salt_api_find_job_and_lookup() -> None:
    with responses.RequestsMock() as rsps:
        _login(rsps)
        rsps.post(f"{URL}/", json={"return": [{"m1": {"jid": JID, "pid": 7, "fun": "state.apply"}, "m2": {}}]})
        rsps.get(f"{URL}/jobs/{JID}", json={"info": [{"Minions": ["m1", "m2"], "Result": {"m2": {"return": {}, "retcode": 0}}}]})
        client = _api()
        running = client.find_job(["m1", "m2"], JID, timeout=5)
        assert set(running) == {"m1"}
        assert _body(rsps.calls[1]) == [{"client": "local", "tgt": "m1,m2", "tgt_type": "list",
                                         "fun": "saltutil.find_job", "arg": [JID], "timeout": 5}]
        found = client.lookup_job(JID)
        assert set(found) == {"m2"} and found["m2"].source == "master_cache"
        with pytest.raises(LookupUnavailable, match="syndic-prod-a"):
            client.lookup_job(JID, syndic="syndic-prod-a")


def test_salt_api_syndic_lookup_uses_that_syndics_api() -> None:
    syndic_url = "https://syndic-a.example.net:8000"
    with responses.RequestsMock() as rsps:
        _login(rsps, "syn-tok", url=syndic_url)
        rsps.get(f"{syndic_url}/jobs/{JID}", json={"info": [{"Result": {"m1": {"return": {"s": {"result": True}}, "retcode": 0}}}]})
        client = _api(syndic_urls={"syndic-prod-a": syndic_url})
        found = client.lookup_job(JID, syndic="syndic-prod-a")
        assert found["m1"].source == "syndic_cache:syndic-prod-a"


def test_salt_api_resolve_reports_silent_minions_and_syndics() -> None:
    syndic_url = "https://syndic-a.example.net:8000"
    with responses.RequestsMock() as rsps:
        _login(rsps)
        rsps.post(f"{URL}/", json={"return": [{"jid": JID, "minions": []}]})
        rsps.get(f"{URL}/jobs/{JID}", json={"info": [{"Minions": ["a1", "a2", "b1"],
                                                      "Result": {"a1": {"return": True}, "b1": {"return": True}}}]})
        _login(rsps, "syn", url=syndic_url)
        rsps.post(f"{syndic_url}/", json={"return": [{"jid": "1", "minions": ["a1", "a2"]}]})
        client = _api(syndic_urls={"syndic-prod-a": syndic_url})
        res = client.resolve("G@saltpipe_env:production", timeout=0)
        assert res.minions == {"a1": "syndic-prod-a", "b1": None}
        assert res.silent == {"a2": "syndic-prod-a"}
        publish = _body(rsps.calls[1])[0]
        assert publish["tgt_type"] == "compound" and publish["fun"] == "test.ping"


def test_salt_api_url_must_be_http() -> None:
    with pytest.raises(SaltError, match="http"):
        SaltApiClient("mom:8000", username="u", password="p")
