"""The salt-api transport (pipeline/salt_client/api.py) against a real ``salt-api`` (rest_cherrypy, CherryPy) in
front of the session's MoM, called as the seeds call it: one eauth login whose token is reused, ``local_async``
with a list target, returns polled with a retry count and an interval.

The MoM's config (salt/daemons/mom.conf.j2, local values) lets the local user log in with Salt's ``auto`` eauth;
salt-api runs with the MoM's own config plus ``rest_cherrypy`` on a loopback port, its pid and log files apart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
import yaml

from pipeline.errors import SaltError
from pipeline.salt_client.api import SaltApiClient
from pipeline.topology import Topology
from pipeline.topology.render import LOCAL_API_USER

#: The seeds' polling: retry N times, interval seconds apart (scaled down for loopback).
RETRIES, INTERVAL = 20, 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def salt_api(topology: Topology) -> Iterator[str]:
    """A salt-api (rest_cherrypy, no TLS, loopback) on the MoM; its URL. Stopped at the end of the module."""
    pytest.importorskip("cherrypy", reason="pip install CherryPy (the test extras)")
    root = topology.workdir / "salt-api"
    conf_dir = root / "conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    opts = yaml.safe_load(topology.mom.config_file.read_text())
    port = _free_port()
    opts.update({
        "rest_cherrypy": {"host": "127.0.0.1", "port": port, "disable_ssl": True},
        # Salt 3006 disables every netapi client by default; saltpipe needs these three (docs/rollout.md).
        "netapi_enable_clients": ["local", "local_async", "runner"],
        "api_pidfile": str(root / "salt-api.pid"),
        "api_logfile": str(root / "salt-api.log"),
    })
    opts.pop("include", None)
    (conf_dir / "master").write_text(yaml.safe_dump(opts))
    script = topology.bindir / "salt-api"
    assert script.exists() or shutil.which("salt-api"), "salt-api is not installed with Salt"
    log = (root / "console.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        [str(script), "-c", str(conf_dir), "--log-level=warning"], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"salt-api exited: {(root / 'console.log').read_text()[-2000:]}"
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "salt-api did not answer within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _poll(client: SaltApiClient, jid: str, wanted: set[str]) -> dict:
    """The seeds' loop: look the job up, RETRIES times, INTERVAL apart, until every wanted minion returned."""
    got: dict = {}
    for _ in range(RETRIES):
        got = client.returns(jid)
        if wanted <= set(got):
            break
        time.sleep(INTERVAL)
    return got


def test_salt_api_login_reused_local_async_list_target_and_polled_returns(topology, salt_api) -> None:
    minions = sorted(topology.env_minions("test"))
    client = SaltApiClient(salt_api, username=LOCAL_API_USER, password="any", eauth="auto", poll_interval=0.5,
                           syndic_wait=1.0)
    try:
        res = client.resolve("G@saltpipe_env:test", timeout=15)
        assert sorted(res.minions) == minions and not res.silent
        pub = client.publish(minions, "test.ping")
        assert pub.targets == tuple(minions)
        got = _poll(client, pub.jid, set(minions))
        assert {m: r.ret for m, r in got.items()} == dict.fromkeys(minions, True)
        # A list target reaches exactly its minions, not the rest of the fleet.
        one = client.publish(minions[:1], "grains.item", ["saltpipe_env"])
        got = _poll(client, one.jid, set(minions[:1]))
        assert set(got) == set(minions[:1]) and got[minions[0]].ret == {"saltpipe_env": "test"}
        assert client.lookup_job(one.jid)[minions[0]].source == "master_cache"
        assert client.find_job(minions, one.jid, timeout=5) == {}, "the job finished: nobody still runs it"
        # One login for all of it: the token was reused.
        assert client.session.logins == 1
        # cmd.* never leaves the process, and the MoM refuses what saltpipe does not allow-list anyway.
        with pytest.raises(SaltError):
            client._local_async(client.session, minions[0], "list", "cmd.run", ["id"], None)  # noqa: SLF001
    finally:
        client.close()


def test_salt_api_refuses_a_user_outside_external_auth(topology, salt_api) -> None:
    client = SaltApiClient(salt_api, username="intruder", password="x", eauth="auto")
    try:
        with pytest.raises(SaltError) as err:
            client.publish([topology.env_minions("test")[0]], "test.ping")
        # Salt's `auto` eauth hands out a token to anyone; the call itself is refused, even with a fresh token.
        assert "refused" in str(err.value) and "external_auth" in str(err.value.hint)
    finally:
        client.close()

