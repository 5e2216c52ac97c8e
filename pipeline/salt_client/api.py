"""salt-api (rest_cherrypy) in front of the master-of-masters, called as the large shops call it.

* ``POST /login`` once with the eauth credentials; the token is reused for every request until salt-api answers
  401 (expired or revoked), then fetched again once.
* ``POST /`` with ``client: local_async``, ``tgt_type: list`` and the explicit minion list; the answer holds the jid.
* ``GET /jobs/<jid>`` to poll for returns (salt-api runs ``jobs.list_job`` on the master: the MoM's job cache,
  with each minion's ``retcode`` and ``success`` when Salt stored them).
* ``saltutil.find_job`` through ``client: local`` (synchronous, bounded by its ``timeout``).

salt-api must enable the netapi clients ``local``, ``local_async`` and ``runner`` (``netapi_enable_clients``;
Salt 3006 enables none), and the user needs ``@jobs`` / ``@runner`` besides its functions in ``external_auth``.

Per-syndic lookups need a salt-api in front of that syndic master (``syndic_urls``): its ``/jobs/<jid>`` reads the
syndic's own job cache, where a return the syndic received but failed to forward is still found.

The minion-to-syndic mapping cannot be read through the MoM's salt-api (its job cache merges the syndics' minion
lists), so :meth:`resolve` asks each syndic's salt-api when one is configured and leaves the syndic ``None``
otherwise; the engine then looks returns up on every syndic it can reach.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import requests

from pipeline.errors import SaltError
from pipeline.salt_client.base import Call, LookupUnavailable, MinionReturn, Published, Resolution, RunningJob
from pipeline.salt_client.base import SaltClient, returns_from_list_job, running_from_find_job

log = logging.getLogger(__name__)


class _Session:
    """One salt-api endpoint and its eauth token (fetched once, refreshed only on 401)."""

    def __init__(
        self, url: str, username: str, password: str, eauth: str, *, verify: bool | str, timeout: float
    ) -> None:
        self.url = url.rstrip("/")
        self._credentials = {"username": username, "password": password, "eauth": eauth}
        self._http = requests.Session()
        self._http.headers.update({"Accept": "application/json"})
        self._verify = verify
        self._timeout = timeout
        self.token: str | None = None
        self.logins = 0

    def login(self) -> str:
        try:
            resp = self._http.post(
                f"{self.url}/login", json=self._credentials, verify=self._verify, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise SaltError(f"salt-api {self.url} cannot be reached: {exc}", hint="check the URL and that salt-api runs") from exc
        if resp.status_code in (401, 403):
            raise SaltError(
                f"salt-api {self.url} refused the login of {self._credentials['username']!r} "
                f"(eauth {self._credentials['eauth']}): HTTP {resp.status_code}",
                hint="check SALTPIPE_SALT_API_USER / SALTPIPE_SALT_API_PASSWORD and external_auth on the master",
            )
        data = self._json(resp, "/login")
        try:
            token = str(data["return"][0]["token"])
        except (KeyError, IndexError, TypeError) as exc:
            raise SaltError(f"salt-api {self.url}/login answered without a token: {data!r}") from exc
        self.token = token
        self.logins += 1
        return token

    def _json(self, resp: requests.Response, what: str) -> Any:
        if resp.status_code >= 400:
            if "netapi_enable_clients" in resp.text:
                raise SaltError(
                    f"salt-api {self.url}{what}: a netapi client saltpipe needs is disabled (HTTP {resp.status_code})",
                    hint="add netapi_enable_clients: [local, local_async, runner] to the salt-api master's config "
                         "(Salt 3006 enables none by default)",
                )
            raise SaltError(
                f"salt-api {self.url}{what}: HTTP {resp.status_code}: {resp.text[:300]}",
                hint="see the salt-api and master logs",
            )
        try:
            return resp.json()
        except ValueError as exc:
            raise SaltError(f"salt-api {self.url}{what}: not JSON: {resp.text[:300]!r}") from exc

    def request(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """Call salt-api with the token; on 401 log in again once and retry."""
        if self.token is None:
            self.login()
        for attempt in (1, 2):
            try:
                resp = self._http.request(
                    method,
                    f"{self.url}{path}",
                    data=json.dumps(body) if body is not None else None,
                    headers={"X-Auth-Token": self.token or "", "Content-Type": "application/json"},
                    verify=self._verify,
                    timeout=timeout or self._timeout,
                )
            except requests.RequestException as exc:
                raise SaltError(f"salt-api {self.url}{path} failed: {exc}", hint="check that salt-api runs") from exc
            if resp.status_code == 401 and attempt == 1:
                self.login()
                continue
            if resp.status_code == 401:
                # A fresh token and still 401: the login is accepted (eauth `auto` or pam say yes) but this user
                # may not make this call.
                raise SaltError(
                    f"salt-api {self.url}{path} refused the call of {self._credentials['username']!r} even with a "
                    f"fresh token (HTTP 401)",
                    hint="check external_auth on the master: the user needs the functions saltpipe publishes, "
                         "@jobs and @runner",
                )
            return self._json(resp, path)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()


class SaltApiClient(SaltClient):
    """Talk to salt-api (rest_cherrypy) on the MoM.

    ``syndic_urls`` optionally maps syndic ids to a salt-api in front of that syndic master (same credentials).
    ``verify`` is passed to requests (``False`` only for a self-signed test certificate, or a CA bundle path).
    ``syndic_wait`` should match the MoM's ``syndic_wait``.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str,
        password: str,
        eauth: str = "pam",
        syndic_urls: Mapping[str, str] | None = None,
        extra_functions: Sequence[str] = (),
        verify: bool | str = True,
        timeout: float = 30.0,
        poll_interval: float = 1.0,
        syndic_wait: float = 5.0,
    ) -> None:
        super().__init__(extra_functions)
        if not url.startswith(("http://", "https://")):
            raise SaltError(f"salt-api URL {url!r} must start with http:// or https://")
        self.name = f"salt-api({url})"
        self._poll_interval = poll_interval
        # As the MoM's own syndic_wait: syndics announce their minion lists within it, so resolve() does not
        # stop at the first syndic whose minions have all answered.
        self._syndic_wait = syndic_wait
        self._mom = _Session(url, username, password, eauth, verify=verify, timeout=timeout)
        self._syndics = {
            name: _Session(u, username, password, eauth, verify=verify, timeout=timeout)
            for name, u in (syndic_urls or {}).items()
        }

    @property
    def session(self) -> _Session:
        """The MoM's session (tests read its login count)."""
        return self._mom

    def _local_async(
        self, session: _Session, tgt: str, tgt_type: str, fun: str | list[str], arg: Sequence[Any],
        kwarg: Mapping[str, Any] | None, ret: str | None = None,
    ) -> dict[str, Any]:
        low: dict[str, Any] = {"client": "local_async", "tgt": tgt, "tgt_type": tgt_type, "fun": fun}
        if ret:
            low["ret"] = ret
        if arg:
            low["arg"] = list(arg)
        if kwarg:
            low["kwarg"] = dict(kwarg)
        data = session.request("POST", "/", [low])
        try:
            pub = data["return"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise SaltError(f"salt-api {session.url}: unexpected answer to local_async {fun}: {data!r}") from exc
        if not isinstance(pub, Mapping) or not pub.get("jid"):
            # salt-api answers {} when the ACL refuses the call or nothing matched.
            raise SaltError(
                f"salt-api {session.url} did not publish {fun} to {tgt!r} (answer: {pub!r})",
                hint="check the eauth ACL of this user on the master for this function, and the target",
            )
        return {"jid": str(pub["jid"]), "minions": [str(m) for m in pub.get("minions") or ()]}

    def publish(
        self, targets: Sequence[str], fun: str, arg: Sequence[Any] = (), kwarg: Mapping[str, Any] | None = None
    ) -> Published:
        self._check_function(fun)
        tgt = self._check_targets(targets)
        pub = self._local_async(self._mom, ",".join(tgt), "list", fun, arg, kwarg, self.returner)
        return Published(jid=pub["jid"], fun=fun, targets=tgt, expected=tuple(pub["minions"]))

    def publish_chain(self, targets: Sequence[str], calls: Sequence[Call]) -> Published:
        for fun, _, _ in calls:
            self._check_function(fun)
        tgt = self._check_targets(targets)
        funs = [fun for fun, _, _ in calls]
        # A multi-function job takes one argument list per function; keyword arguments go inside each list as
        # Salt's own ``__kwarg__`` dict (a top-level "kwarg" would be appended to the outer list).
        args = [[*arg, {"__kwarg__": True, **kwarg}] if kwarg else list(arg) for _, arg, kwarg in calls]
        pub = self._local_async(self._mom, ",".join(tgt), "list", funs, args, None, self.returner)
        return Published(jid=pub["jid"], fun=",".join(funs), targets=tgt, expected=tuple(pub["minions"]))

    def _job(self, session: _Session, jid: str, source: str) -> dict[str, MinionReturn]:
        data = session.request("GET", f"/jobs/{jid}")
        info = (data.get("info") or [{}])[0] if isinstance(data, Mapping) else {}
        found = returns_from_list_job(jid, info, source)
        if not found and isinstance(data, Mapping):
            # Older salt-api versions only fill "return": [{minion: ret}] (no retcodes).
            ret = (data.get("return") or [{}])[0]
            if isinstance(ret, Mapping):
                found = {str(m): MinionReturn(minion=str(m), jid=jid, ret=r, source=source) for m, r in ret.items()}
        return found

    def returns(self, jid: str) -> dict[str, MinionReturn]:
        return self._job(self._mom, jid, "event")

    def lookup_job(self, jid: str, *, syndic: str | None = None) -> dict[str, MinionReturn]:
        self._check_runner("jobs.list_job")
        if syndic is None:
            return self._job(self._mom, jid, "master_cache")
        session = self._syndics.get(syndic)
        if session is None:
            raise LookupUnavailable(
                f"no salt-api configured for syndic {syndic}",
                hint=f"give --syndic-api {syndic}=URL to look returns up in that syndic master's job cache",
            )
        return self._job(session, jid, f"syndic_cache:{syndic}")

    def find_job(self, minions: Sequence[str], jid: str, *, timeout: float) -> dict[str, RunningJob]:
        self._check_function("saltutil.find_job")
        tgt = self._check_targets(minions)
        low = {
            "client": "local",
            "tgt": ",".join(tgt),
            "tgt_type": "list",
            "fun": "saltutil.find_job",
            "arg": [jid],
            "timeout": max(1, int(timeout)),
        }
        data = self._mom.request("POST", "/", [low], timeout=timeout + 30)
        ret = (data.get("return") or [{}])[0] if isinstance(data, Mapping) else {}
        return running_from_find_job(jid, ret if isinstance(ret, Mapping) else {})

    def resolve(self, expression: str, *, timeout: float, syndics: Collection[str] = ()) -> Resolution:
        # ``syndics`` is not used: /jobs/<jid> merges the syndics' minion lists without saying which syndic
        # sent one, so this client cannot tell when all of them did; it waits out syndic_wait.
        self._check_function("test.ping")
        pub = self._local_async(self._mom, expression, "compound", "test.ping", (), None)
        jid = pub["jid"]
        # /jobs/<jid> lists the minions every master expected ("Minions", the syndics' lists merged in) beside
        # the returns; poll until all expected answered or the timeout.
        started = time.monotonic()
        deadline = started + timeout + self._syndic_wait
        expected: set[str] = set(pub["minions"])
        got: dict[str, MinionReturn] = {}
        while True:
            data = self._mom.request("GET", f"/jobs/{jid}")
            info = (data.get("info") or [{}])[0] if isinstance(data, Mapping) else {}
            if isinstance(info, Mapping):
                expected |= {str(m) for m in info.get("Minions") or ()}
            got = returns_from_list_job(jid, info, "event")
            settled = time.monotonic() - started >= self._syndic_wait
            if (settled and expected and expected <= set(got)) or time.monotonic() >= deadline:
                break
            time.sleep(self._poll_interval)
        answered = {m for m, r in got.items() if r.ret is True}
        syndic_of: dict[str, str] = {}
        for name, session in self._syndics.items():
            # Each syndic's salt-api resolves the same expression among its own minions only.
            spub = self._local_async(session, expression, "compound", "test.ping", (), None)
            for minion in spub["minions"]:
                syndic_of[minion] = name
        return Resolution(
            minions={m: syndic_of.get(m) for m in sorted(answered)},
            silent={m: syndic_of.get(m) for m in sorted(expected - answered)},
            jid=jid,
        )

    def close(self) -> None:
        self._mom.close()
        for session in self._syndics.values():
            session.close()
