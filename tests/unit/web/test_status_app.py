"""The status page's HTTP contract over a recorded real rollout: pages and their data, read-only, the token, the
bind rule, no secrets."""

from __future__ import annotations

import pytest
import requests

from pipeline.cli import main
from pipeline.errors import UsageError
from pipeline.web.app import create_app
from pipeline.web.data import StatusData, redact
from pipeline.web.server import ServerThread, check_bind, is_loopback, parse_bind


def rollouts(server: ServerThread) -> list[dict]:
    return requests.get(f"{server.url}/rollouts?format=json", timeout=30).json()["rollouts"]


def halted(server: ServerThread) -> dict:
    return next(r for r in rollouts(server) if r["outcome"] == "rolled_back")


def test_overview_shows_what_each_syndic_serves(server: ServerThread) -> None:
    data = requests.get(f"{server.url}/?format=json", timeout=30).json()
    prod = next(e for e in data["environments"] if e["name"] == "production")
    assert [s["name"] for s in prod["syndics"]] == ["syndic-prod-a", "syndic-prod-b"]
    served = {s["release"] for s in prod["syndics"]}
    assert len(served) == 1 and None not in served and prod["consistent"]
    assert all(s["synced_at"] and not s["error"] for s in prod["syndics"])
    html = requests.get(server.url + "/", timeout=30).text
    assert 'data-syndic="syndic-prod-a"' in html and served.pop() in html


def test_rollout_page_has_the_grid_and_the_halt_reason(server: ServerThread) -> None:
    r = halted(server)
    page = requests.get(f"{server.url}/rollouts/production/{r['rollout_id']}", timeout=30)
    assert page.status_code == 200
    data = requests.get(f"{server.url}/rollouts/production/{r['rollout_id']}?format=json", timeout=30).json()["r"]
    cells = {m["id"]: m["result"] for b in data["batches"] for m in b["minions"]}
    for minion, result in cells.items():
        assert f'data-minion="{minion}" data-result="{result}"' in page.text
    assert sorted(set(cells.values())) == ["rolled_back", "untouched"]
    assert data["halted"]["batch"] == 1 and data["halted"]["reason"] in page.text
    assert [g["passed"] for g in data["gates_decided"]] == [True, False]
    grid = requests.get(f"{server.url}/rollouts/production/{r['rollout_id']}/grid", timeout=30)
    assert grid.status_code == 200 and 'data-finished="yes"' in grid.text and "<html" not in grid.text


def test_cell_page_shows_the_failed_step(server: ServerThread) -> None:
    r = halted(server)
    data = requests.get(f"{server.url}/rollouts/production/{r['rollout_id']}?format=json", timeout=30).json()["r"]
    minion = data["batches"][1]["minions"][0]["id"]
    cell = requests.get(f"{server.url}/rollouts/production/{r['rollout_id']}/cells/1/{minion}?format=json",
                        timeout=30).json()
    assert cell["minion"]["steps"]["apply"]["status"] == "failed"
    assert any("does-not-exist.conf" in reason for reason in cell["minion"]["steps"]["apply"]["reasons"])
    assert cell["job_cache"] is False
    missing = requests.get(f"{server.url}/rollouts/production/{r['rollout_id']}/cells/1/nobody", timeout=30)
    assert missing.status_code == 404


def test_releases_audit_and_unknowns(server: ServerThread) -> None:
    releases = requests.get(f"{server.url}/releases?format=json", timeout=30).json()["releases"]
    assert len(releases) == 2 and any(r["running"] for r in releases)
    one = requests.get(f"{server.url}/releases/{releases[0]['id']}?format=json", timeout=30).json()["release"]
    assert one["files"] and all(len(f["sha256"]) == 64 for f in one["files"])
    chain = requests.get(f"{server.url}/audit?format=json", timeout=30).json()["chain"]
    assert [h["outcome"] for h in chain] == ["rolled_back"]
    assert requests.get(f"{server.url}/rollouts/production/nope", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/releases/rel-000000000000", timeout=30).status_code == 404
    assert requests.get(f"{server.url}/releases/..%2F..%2Fetc", timeout=30).status_code == 404


def test_read_only(server: ServerThread) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert requests.request(method, f"{server.url}/rollouts", timeout=30).status_code == 405


def test_token_gate(recorded: StatusData) -> None:
    with ServerThread(create_app(recorded, token="s3cret-token")) as server:
        assert requests.get(f"{server.url}/", timeout=30).status_code == 401
        assert requests.get(f"{server.url}/", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        ok = requests.get(f"{server.url}/rollouts", headers={"Authorization": "Bearer s3cret-token"}, timeout=30)
        assert ok.status_code == 200
        assert requests.get(f"{server.url}/healthz", timeout=30).text == "ok"
        browser = requests.Session()
        first = browser.get(f"{server.url}/rollouts?token=s3cret-token&format=json", timeout=30, allow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/rollouts?format=json"
        assert "HttpOnly" in first.headers["set-cookie"]
        assert browser.get(f"{server.url}/rollouts?format=json", timeout=30).status_code == 200


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                                 ("0.0.0.0", False), ("10.1.2.3", False), ("status.example", False)])
def test_bind_rule(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    check_bind(host, "token")
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(UsageError, match="without a token"):
            check_bind(host, None)


def test_serve_refuses_an_open_bind_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALTPIPE_SERVE_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--bind", "0.0.0.0:0"])
    assert exc.value.code == 2
    assert parse_bind("[::1]:8080") == ("::1", 8080)
    with pytest.raises(UsageError):
        parse_bind("8080")


def test_redact() -> None:
    ret = {"file_|-db_|-/etc/db.conf_|-managed": {"changes": {"password": "hunter2", "diff": "x"},
                                                  "comment": "ok", "api_key": "k", "nested": [{"token": "t"}]}}
    clean = redact(ret)
    state = clean["file_|-db_|-/etc/db.conf_|-managed"]
    assert state["changes"] == {"password": "<redacted>", "diff": "x"}
    assert state["api_key"] == "<redacted>" and state["nested"] == [{"token": "<redacted>"}]
