"""target_for: each syndic of pipeline.yaml gets the transport its file_roots names, with every setting of it."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Syndic
from pipeline.sync import LocalTarget, SshTarget, target_for


def test_an_ssh_syndic_gets_an_ssh_target_with_every_setting_of_its_file_roots() -> None:
    syndic = Syndic.model_validate({
        "name": "syndic-prod-a",
        "file_roots": {
            "type": "ssh", "host": "syndic-prod-a.example.net", "path": "/srv/saltpipe/a", "user": "deploy",
            "port": 2222, "identity_file": "/etc/saltpipe/id_ed25519", "salt_cachedir": "/var/cache/salt/master",
            "salt_master_config": "/etc/salt/master.d/../master", "salt_python": "/opt/saltstack/salt/bin/python3",
        },
    })
    target = target_for(syndic)
    assert isinstance(target, SshTarget)
    assert (target.name, target.host, target.root, target.user, target.port) == (
        "syndic-prod-a", "syndic-prod-a.example.net", Path("/srv/saltpipe/a"), "deploy", 2222)
    assert target.identity_file == Path("/etc/saltpipe/id_ed25519")
    assert target.salt_cachedir == Path("/var/cache/salt/master")
    assert target.salt_master_config == Path("/etc/salt/master.d/../master")
    assert target.salt_python == "/opt/saltstack/salt/bin/python3"
    assert target.describe() == syndic.file_roots.describe()


def test_an_ssh_syndic_left_at_the_defaults_gets_the_targets_defaults() -> None:
    syndic = Syndic.model_validate({
        "name": "syndic-prod-b", "file_roots": {"type": "ssh", "host": "b.example.net", "path": "/srv/saltpipe/b"},
    })
    target = target_for(syndic)
    assert isinstance(target, SshTarget)
    assert (target.user, target.port, target.identity_file, target.salt_cachedir, target.salt_python) == (
        None, 22, None, None, None)
    assert target.salt_master_config == Path("/etc/salt/master")


def test_a_local_syndic_gets_a_local_target(tmp_path: Path) -> None:
    syndic = Syndic.model_validate({"name": "syndic-test", "file_roots": {"type": "local", "path": str(tmp_path)}})
    target = target_for(syndic)
    assert isinstance(target, LocalTarget)
    assert target.name == "syndic-test"
