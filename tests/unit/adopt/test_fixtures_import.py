"""``saltpipe fixtures import --from FILE``: real grains and pillar become fixtures, secrets redacted (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from doubles import FakeClock

from pipeline.adopt.importer import REDACTED, parse_salt_json, redact
from pipeline.cli import main

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
PILLAR = {
    "postgres": {"users": {"app": {"password": "hunter2", "createdb": True}}, "port": 5432},
    "nginx": {"tls": {"cert": f"intro\n{PEM}\n", "private_key": {"path": "/etc/ssl/k.pem", "data": "x"}}},
    "api_token": "abc123",
    "users": {"alice": {"ssh_auth": ["ssh-ed25519 AAAA alice"], "sudouser": True}},
}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    out, err = capsys.readouterr()
    return int(excinfo.value.code or 0), out, err


def test_redact_keeps_structure_and_drops_secrets() -> None:
    clean, count = redact(PILLAR)
    assert clean["postgres"]["users"]["app"] == {"password": REDACTED, "createdb": True}
    assert clean["postgres"]["port"] == 5432 and clean["api_token"] == REDACTED
    assert clean["nginx"]["tls"]["private_key"] == {"path": REDACTED, "data": REDACTED}
    assert "MIIEpAIBAAKCAQEA" not in clean["nginx"]["tls"]["cert"] and "-----BEGIN RSA PRIVATE KEY-----" in clean["nginx"]["tls"]["cert"]
    assert clean["users"] == PILLAR["users"] and count == 5
    assert "hunter2" not in json.dumps(clean) and "abc123" not in json.dumps(clean)


def test_parse_salt_call_and_salt_outputs() -> None:
    assert parse_salt_json('{"local": {"id": "web-1", "os": "Debian"}}', "f") == {"web-1": {"id": "web-1", "os": "Debian"}}
    two = '{"web-1": {"os": "Debian"}}\n{"db-1": {"os": "Rocky"}}\n'
    assert set(parse_salt_json(two, "f")) == {"web-1", "db-1"}
    with pytest.raises(Exception, match="not the JSON output"):
        parse_salt_json("local:\n  os: Debian\n", "f")
    with pytest.raises(Exception, match="not a mapping"):
        parse_salt_json('{"web-1": "Minion did not return"}', "f")


def test_import_from_files_writes_fixtures_lint_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path
    (repo / "states").mkdir()
    (repo / "states/db.sls").write_text("pg:\n  pkg.installed:\n    - name: postgresql-{{ grains['osmajorrelease'] }}\n")
    (repo / "salt").mkdir()
    (repo / "salt/pipeline.yaml").write_text("version: 1\n")
    (repo / "salt/fixtures/lint").mkdir(parents=True)
    (repo / "salt/fixtures/lint/grains.yaml").write_text("minions:\n  debian-12: {os_family: Debian, osmajorrelease: 12}\n")
    grains = tmp_path / "db-1.grains.json"
    grains.write_text(json.dumps({"local": {"id": "db-1", "os_family": "RedHat", "osmajorrelease": 9, "roles": ["db"]}}))
    pillar = tmp_path / "db-1.pillar.json"
    pillar.write_text(json.dumps({"local": PILLAR}))
    code, out, err = run(["--repo", str(repo), "fixtures", "import", "--from", str(grains), "--pillar-from", str(pillar)], capsys)
    assert code == 0, err
    assert "imported 1 minion(s): db-1" in out and "pillar values redacted: 5" in out
    written = yaml.safe_load((repo / "salt/fixtures/lint/grains.yaml").read_text())["minions"]
    assert set(written) == {"debian-12", "db-1"} and written["db-1"]["roles"] == ["db"]
    text = (repo / "salt/fixtures/lint/pillar.yaml").read_text()
    assert "hunter2" not in text and "MIIEpAIBAAKCAQEA" not in text and REDACTED in text
    code, out, _ = run(["--repo", str(repo), "fixtures", "import", "--replace", "--from", str(grains)], capsys)
    assert code == 0 and "dropped: debian-12" in out
    code, out, _ = run(["--repo", str(repo), "lint", "--no-pylint"], capsys)
    assert code == 0, out


def test_import_needs_minions_or_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "salt").mkdir()
    (tmp_path / "salt/pipeline.yaml").write_text("version: 1\n")
    code, _, err = run(["--repo", str(tmp_path), "fixtures", "import"], capsys)
    assert code == 2 and "give one of: MINION ids" in err


FLEET = {"web-1": "syndic-a", "web-2": "syndic-a", "db-1": "syndic-b", "db-2": "syndic-b"}
ROLES = {"web-1": ["web"], "web-2": ["web"], "db-1": ["db"], "db-2": ["db"]}


def _script(silent: frozenset[str] = frozenset()):
    from scripted_client import Behavior

    def script(minion: str, fun: str, arg, kwarg) -> Behavior | None:
        if minion in silent and fun != "grains.item":
            return Behavior(delivery="never")
        if fun == "grains.item":
            return Behavior(ret={"roles": ROLES[minion]})
        if fun == "grains.items":
            return Behavior(ret={"id": minion, "os_family": "Debian", "roles": ROLES[minion]})
        if fun == "pillar.items":
            return Behavior(ret={"app": {"db_password": "s3cret", "port": 5432}})
        return None

    return script


def test_fetch_through_the_mom_publishes_to_exactly_the_named_minions() -> None:
    from pipeline.adopt.importer import IMPORT_FUNCTIONS, fetch_from_salt
    from scripted_client import ScriptedSaltClient

    client = ScriptedSaltClient(FLEET, _script(), extra=IMPORT_FUNCTIONS)
    fetched = fetch_from_salt(client, FakeClock(), minions=["web-1", "db-1"])
    assert set(fetched.grains) == {"web-1", "db-1"} and fetched.pillars["db-1"]["app"]["port"] == 5432
    assert client.touched() == {"web-1", "db-1"} and {r.fun for r in client.published} == set(IMPORT_FUNCTIONS)


def test_fetch_samples_per_role_of_a_target() -> None:
    from pipeline.adopt.importer import IMPORT_FUNCTIONS, fetch_from_salt
    from scripted_client import ScriptedSaltClient

    client = ScriptedSaltClient(FLEET, _script(), extra=IMPORT_FUNCTIONS)
    fetched = fetch_from_salt(client, FakeClock(), target="G@env:test", per_role=1)
    assert fetched.sampled == {"db": ("db-1",), "web": ("web-1",)} and set(fetched.grains) == {"db-1", "web-1"}
    assert client.touched("grains.items") == {"db-1", "web-1"}


def test_fetch_fails_closed_when_a_minion_does_not_answer() -> None:
    from pipeline.adopt.importer import IMPORT_FUNCTIONS, fetch_from_salt
    from pipeline.errors import SaltError
    from scripted_client import ScriptedSaltClient

    client = ScriptedSaltClient(FLEET, _script(frozenset({"db-1"})), extra=IMPORT_FUNCTIONS)
    with pytest.raises(SaltError, match="no return from db-1"):
        fetch_from_salt(client, FakeClock(), minions=["web-1", "db-1"], timeout=5, poll_interval=1)
