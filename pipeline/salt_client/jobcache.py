"""The external job cache: returns read from where the minions wrote them (Redis), before the MoM's.

Large shops on lossy multi-datacenter links stopped trusting the syndic hop for returns: a syndic paused, restarted
or cut off loses them silently, the MoM never learns, and ``find_job`` storms follow. They have every minion also
return to a job cache (Salt's own ``redis`` returner) and read results from there (docs/job-cache.md).

* :class:`RedisJobCache` reads what Salt 3006's ``salt/returners/redis_return.py`` writes: a hash ``ret:<jid>``
  with one field per minion id, its value the minion's whole return as JSON (``return``, ``retcode``,
  ``success``, ``fun``, ``id``, ``jid``). It never writes.
* :class:`JobCacheClient` wraps any :class:`~pipeline.salt_client.base.SaltClient`: every job it publishes is
  also returned to the cache (``ret: redis`` in the publish, so the minions' returner writes the cache directly,
  whatever happens between syndic and MoM), and :meth:`JobCacheClient.returns` / :meth:`JobCacheClient.lookup_job`
  read the cache first, then the wrapped client (the MoM's returns and job cache), so the rollout's collect step
  and impact's polling take a return present in Redis even when the syndic lost it. ``find_job`` and the
  syndic lookups stay the wrapped client's: they run only for minions the cache does not have.

A return found in the cache has ``source="job_cache:redis"`` (the report shows which returns the cache recovered).
An unreachable cache is an infrastructure error (:class:`JobCacheError`), never "no return": the rollout stops
resumable instead of counting minions missing because Redis is down.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from pipeline.config import JobCache
from pipeline.errors import SaltError
from pipeline.salt_client.base import Call, MinionReturn, Published, Resolution, RunningJob, SaltClient, return_of

#: ``MinionReturn.source`` of a return read from the Redis job cache.
SOURCE = "job_cache:redis"


class JobCacheError(SaltError):
    """The external job cache cannot be read (down, wrong address, wrong db)."""


class ReturnsCache(Protocol):
    """What :class:`JobCacheClient` needs of a job cache: the Salt returner that writes it, and its returns."""

    returner: str
    name: str

    def returns(self, jid: str) -> dict[str, MinionReturn]: ...

    def close(self) -> None: ...


def parse_returns(jid: str, fields: Mapping[Any, Any], source: str = SOURCE) -> dict[str, MinionReturn]:
    """The ``ret:<jid>`` hash (minion id -> JSON of the minion's return) as returns; a field that is not a
    return of ``jid`` (foreign JSON, another jid) is skipped, not trusted."""
    out: dict[str, MinionReturn] = {}
    for key, raw in fields.items():
        minion = key.decode() if isinstance(key, bytes) else str(key)
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if not isinstance(data, Mapping) or "return" not in data or str(data.get("jid", jid)) != jid:
            continue
        out[minion] = return_of(minion, jid, data["return"], data.get("retcode"), data.get("success"), source)
    return out


class RedisJobCache:
    """Read-only access to the Redis a ``redis`` returner writes (``config``: the environment's ``job_cache``).

    ``connect`` builds the client (``redis.Redis`` by default; unit tests pass a fake)."""

    returner = "redis"

    def __init__(self, config: JobCache, *, connect: Callable[..., Any] | None = None) -> None:
        if connect is None:
            import redis  # pylint: disable=import-outside-toplevel

            connect = redis.Redis
        self.config = config
        self.name = f"redis://{config.host}:{config.port}/{config.db}"
        self.reads = 0
        self._redis = connect(
            host=config.host, port=config.port, db=config.db,
            socket_timeout=config.timeout_seconds, socket_connect_timeout=config.timeout_seconds,
        )

    def returns(self, jid: str) -> dict[str, MinionReturn]:
        """Every return of ``jid`` in the cache, by minion (one ``HGETALL``)."""
        self.reads += 1
        try:
            fields = self._redis.hgetall(f"ret:{jid}")
        except Exception as exc:  # pylint: disable=broad-except  # redis raises its own ConnectionError/TimeoutError
            raise JobCacheError(
                f"the job cache {self.name} cannot be read: {exc}",
                hint="check that redis-server runs there (job_cache in salt/pipeline.yaml), or remove job_cache "
                     "from the environment to rely on the syndics' returns",
            ) from exc
        return parse_returns(jid, fields or {})

    def close(self) -> None:
        try:
            self._redis.close()
        except Exception:  # pylint: disable=broad-except  # closing a dead connection is not an error
            pass


class JobCacheClient(SaltClient):
    """``inner`` with its jobs also returned to ``cache``, and returns read from the cache first.

    Publishing, ``find_job``, ``resolve`` and the syndic lookups are ``inner``'s; the allow list is ``inner``'s.
    """

    def __init__(self, inner: SaltClient, cache: ReturnsCache) -> None:
        super().__init__()
        self.inner = inner
        self.cache = cache
        self.allowed_functions = inner.allowed_functions
        inner.return_also_to(cache.returner)
        self.returner = cache.returner
        self.name = f"{inner.name} + job cache {cache.name}"

    def resolve(self, expression: str, *, timeout: float, syndics: Collection[str] = ()) -> Resolution:
        return self.inner.resolve(expression, timeout=timeout, syndics=syndics)

    def wait(self, seconds: float, sleep: Callable[[float], None]) -> None:
        self.inner.wait(seconds, sleep)

    def publish(
        self, targets: Sequence[str], fun: str, arg: Sequence[Any] = (), kwarg: Mapping[str, Any] | None = None
    ) -> Published:
        return self.inner.publish(targets, fun, arg, kwarg)

    def publish_chain(self, targets: Sequence[str], calls: Sequence[Call]) -> Published:
        return self.inner.publish_chain(targets, calls)

    def _merged(self, jid: str, then: Callable[[], Mapping[str, MinionReturn]]) -> dict[str, MinionReturn]:
        found = self.cache.returns(jid)
        for minion, ret in then().items():
            found.setdefault(minion, ret)
        return found

    def returns(self, jid: str) -> dict[str, MinionReturn]:
        """The cache's returns of ``jid``, then the MoM's for minions the cache does not have."""
        return self._merged(jid, lambda: self.inner.returns(jid))

    def lookup_job(self, jid: str, *, syndic: str | None = None) -> dict[str, MinionReturn]:
        if syndic is not None:
            return self.inner.lookup_job(jid, syndic=syndic)
        return self._merged(jid, lambda: self.inner.lookup_job(jid))

    def find_job(self, minions: Sequence[str], jid: str, *, timeout: float) -> dict[str, RunningJob]:
        return self.inner.find_job(minions, jid, timeout=timeout)

    def close(self) -> None:
        self.cache.close()
        self.inner.close()


def with_job_cache(client: SaltClient, config: JobCache | None) -> SaltClient:
    """``client`` reading through the environment's job cache when it has one (``job_cache`` in
    salt/pipeline.yaml), else ``client`` itself."""
    if config is None:
        return client
    return JobCacheClient(client, RedisJobCache(config))
