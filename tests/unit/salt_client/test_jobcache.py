"""The external job cache (pipeline.salt_client.jobcache): what Salt's ``redis`` returner writes, read back; the
client that asks for it on every publish and reads it before the MoM. Redis is played by a dict with the
returner's key layout; the integration tests (test_lossy_links.py) run a real redis-server and real minions."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from pipeline.config import JobCache, PipelineConfig
from pipeline.salt_client.api import SaltApiClient
from pipeline.salt_client.base import MinionReturn
from pipeline.salt_client.jobcache import SOURCE, JobCacheClient, JobCacheError, RedisJobCache, parse_returns
from scripted_client import Behavior, ScriptedSaltClient

JID = "20250101120000123456"
CONFIG = JobCache(type="redis", host="redis.example.net", port=6380, db=2)


def salt_return(minion: str, jid: str, ret: Any, retcode: Any = 0, success: Any = True, fun: Any = "state.apply") -> str:
    """A field of ``ret:<jid>`` as Salt 3006's redis returner writes it: the minion's whole return as JSON."""
    return json.dumps({"id": minion, "jid": jid, "fun": fun, "fun_args": [], "return": ret, "retcode": retcode,
                       "success": success})


class FakeRedis:
    """``hgetall`` over a dict of hashes, as ``redis.Redis(decode_responses=False)`` answers (bytes)."""

    def __init__(self, hashes: dict[str, dict[str, str]] | None = None, *, down: bool = False, **conn: Any) -> None:
        self.hashes = hashes if hashes is not None else {}
        self.down = down
        self.conn = conn
        self.closed = False

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        if self.down:
            raise ConnectionError("Error 111 connecting to redis.example.net:6380. Connection refused.")
        return {k.encode(): v.encode() for k, v in self.hashes.get(key, {}).items()}

    def close(self) -> None:
        self.closed = True


def cache_of(hashes: dict[str, dict[str, str]], **kw: Any) -> tuple[RedisJobCache, FakeRedis]:
    made: list[FakeRedis] = []

    def connect(**conn: Any) -> FakeRedis:
        made.append(FakeRedis(hashes, **kw, **conn))
        return made[0]

    return RedisJobCache(CONFIG, connect=connect), made[0] if made else None  # type: ignore[return-value]


def test_reads_the_hash_the_redis_returner_writes_with_the_configured_address() -> None:
    states = {"file_|-x_|-/x_|-managed": {"result": True, "changes": {}}}
    cache, fake = cache_of({f"ret:{JID}": {"m1": salt_return("m1", JID, states),
                                          "m2": salt_return("m2", JID, "boom", retcode=1, success=False)}})
    assert fake.conn["host"] == "redis.example.net" and fake.conn["port"] == 6380 and fake.conn["db"] == 2
    found = cache.returns(JID)
    assert found["m1"] == MinionReturn("m1", JID, states, retcode=0, success=True, source=SOURCE)
    assert found["m2"].retcode == 1 and found["m2"].success is False and found["m2"].ret == "boom"
    assert cache.returns("20250101120000000000") == {}


def test_a_multi_function_return_keeps_each_functions_share() -> None:
    raw = salt_return("m1", JID, {"saltutil.sync_all": {"modules": []}, "state.apply": {"s": {"result": False}}},
                      retcode={"saltutil.sync_all": 0, "state.apply": 2},
                      success={"saltutil.sync_all": True, "state.apply": False},
                      fun=["saltutil.sync_all", "state.apply"])
    (ret,) = parse_returns(JID, {b"m1": raw.encode()}).values()
    assert ret.success is False and ret.retcode == 2
    assert ret.part("saltutil.sync_all", 0).success is True and ret.part("state.apply", 1).retcode == 2


@pytest.mark.parametrize("raw", ["not json", json.dumps(["a list"]), json.dumps({"jid": JID}),
                                 salt_return("m1", "20250101120000000000", True)])
def test_a_field_that_is_not_a_return_of_the_jid_is_never_counted(raw: str) -> None:
    assert parse_returns(JID, {"m1": raw}) == {}


def test_an_unreachable_cache_is_an_infrastructure_error_not_a_missing_return() -> None:
    cache, _ = cache_of({}, down=True)
    with pytest.raises(JobCacheError) as err:
        cache.returns(JID)
    assert "redis://redis.example.net:6380/2" in str(err.value) and "redis-server" in str(err.value.hint)


def test_the_client_asks_for_the_returner_and_reads_the_cache_before_the_mom() -> None:
    def script(minion: str, fun: str, arg: Any, kwarg: dict[str, Any]) -> Behavior | None:
        return Behavior(delivery="never") if minion == "m2" else None  # the syndic lost m2's return

    inner = ScriptedSaltClient({"m1": "s1", "m2": "s1", "m3": "s1"}, script=script)
    hashes: dict[str, dict[str, str]] = {}
    cache, _ = cache_of(hashes)
    client = JobCacheClient(inner, cache)
    assert inner.returner == "redis" and client.allowed_functions == inner.allowed_functions
    pub = client.publish(["m1", "m2", "m3"], "state.apply", kwarg={"saltenv": "rel"})
    hashes[f"ret:{pub.jid}"] = {"m2": salt_return("m2", pub.jid, {"s": {"result": True}}),
                                "m1": salt_return("m1", pub.jid, {"s": {"result": True}})}
    got = client.returns(pub.jid)
    assert {m: r.source for m, r in got.items()} == {"m1": SOURCE, "m2": SOURCE, "m3": "event"}
    looked = client.lookup_job(pub.jid)
    assert looked["m2"].source == SOURCE and looked["m3"].source == "master_cache"
    client.close()


def test_the_salt_api_client_publishes_with_the_returner() -> None:
    url = "https://mom.example.net:8000"
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(f"{url}/login", json={"return": [{"token": "tok", "expire": 1e12, "perms": [".*"]}]})
        rsps.post(f"{url}/", json={"return": [{"jid": JID, "minions": ["m1"]}]})
        api = SaltApiClient(url, username="u", password="p", poll_interval=0, syndic_wait=0)
        cache, _ = cache_of({})
        JobCacheClient(api, cache).publish(["m1"], "state.apply")
        assert json.loads(rsps.calls[1].request.body)[0]["ret"] == "redis"


def test_the_local_client_publishes_with_the_returner(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.salt_client.local as local_mod
    from pipeline.salt_client.base import SaltClient as Base

    client = object.__new__(local_mod.LocalSaltClient)
    Base.__init__(client)
    seen: list[dict[str, Any]] = []

    def conditioned(tgt: Any, tgt_type: str, fun: Any, args: Any, ret: str = "") -> dict[str, Any]:
        seen.append({"fun": fun, "ret": ret})
        return {"jid": JID, "minions": ["m1"]}

    monkeypatch.setattr(client, "_pub_conditioned", conditioned, raising=False)
    client.publish(["m1"], "state.apply")
    client.return_also_to("redis")
    client.publish(["m1"], "state.apply")
    client.publish_chain(["m1"], [("saltutil.sync_all", (), {}), ("state.apply", (), {})])
    assert [s["ret"] for s in seen] == ["", "redis", "redis"]


def test_job_cache_is_off_by_default_and_typed() -> None:
    env = {"syndics": [{"name": "s", "file_roots": {"type": "local", "path": "/srv/s"}}], "target": "*",
           "canary": 1, "batches": ["100%"]}
    cfg = PipelineConfig.model_validate({"environments": {"e": env}})
    assert cfg.environments["e"].job_cache is None
    cfg = PipelineConfig.model_validate(
        {"environments": {"e": {**env, "job_cache": {"type": "redis", "host": "r", "port": 6380}}}})
    assert cfg.environments["e"].job_cache == JobCache(type="redis", host="r", port=6380, db=0)
