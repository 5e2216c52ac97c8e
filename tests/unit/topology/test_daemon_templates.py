"""The daemon config templates (salt/daemons/): production defaults render to configs Salt itself parses into
the intended topology, the runtime policy lands in every master, and a missing value fails loudly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.config.runtime_policy import load_runtime_policy
from pipeline.errors import ConfigError
from pipeline.saltlib import import_salt
from pipeline.topology.handles import MasterHandle, MinionHandle
from pipeline.topology.render import (
    LOCAL_TUNING,
    DaemonTemplates,
    local_minion_values,
    local_mom_values,
    local_syndic_master_values,
    local_syndic_minion_values,
)

REPO = Path(__file__).resolve().parents[3]
DAEMONS = REPO / "salt" / "daemons"
POLICY = load_runtime_policy(DAEMONS / "runtime-policy.yaml")
salt_config = import_salt("salt.config")


@pytest.fixture(scope="module")
def templates() -> DaemonTemplates:
    return DaemonTemplates(DAEMONS, POLICY)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _master(tmp_path: Path, text: str) -> dict[str, Any]:
    return salt_config.master_config(str(_write(tmp_path, "master", text)))


def test_mom_production_defaults(templates: DaemonTemplates, tmp_path: Path) -> None:
    opts = _master(tmp_path, templates.render("mom", id="mofm1"))
    assert opts["id"] == "mofm1"
    assert opts["order_masters"] is True
    assert (opts["publish_port"], opts["ret_port"], opts["syndic_wait"]) == (4505, 4506, 5)
    assert opts["auto_accept"] is False and opts["open_mode"] is False
    assert opts["publisher_acl_blacklist"] == POLICY.publisher_acl_blacklist()
    for key, value in POLICY.settings.items():
        assert opts[key] == value


def test_syndic_master_serves_current_and_saltenv_links(templates: DaemonTemplates, tmp_path: Path) -> None:
    text = templates.render("syndic-master", id="syndic-a", syndic_master="mofm1.example.net")
    opts = _master(tmp_path, text)
    assert opts["file_roots"] == {
        "base": ["/srv/saltpipe/syndic-a/current"],
        "__env__": ["/srv/saltpipe/syndic-a/envs/__env__"],
    }
    assert opts["syndic_master"] == "mofm1.example.net"
    assert opts["order_masters"] is False
    assert opts["publisher_acl_blacklist"] == POLICY.publisher_acl_blacklist()


def test_syndic_subscribes_to_the_moms_publisher(templates: DaemonTemplates, tmp_path: Path) -> None:
    """salt-syndic merges its node's master config and its minion config; the MoM's publish port must win
    over the node's own master's, or the syndic never sees a MoM job."""
    master = _write(
        tmp_path,
        "master",
        templates.render(
            "syndic-master", id="s1", syndic_master="127.0.0.1", syndic_master_port=41001, publish_port=42000
        ),
    )
    minion = _write(tmp_path, "minion", templates.render("syndic-minion", id="s1", syndic_master_publish_port=41000))
    opts = salt_config.syndic_config(str(master), str(minion))
    assert (opts["master"], opts["master_port"], opts["publish_port"]) == ("127.0.0.1", 41001, 41000)
    assert opts["id"] == "s1"


def test_minion_grains_and_master(templates: DaemonTemplates, tmp_path: Path) -> None:
    text = templates.render(
        "minion", id="prod-web-1", master="syndic-a", saltpipe_env="production", roles=["web"], datacenter="sha1"
    )
    opts = salt_config.minion_config(str(_write(tmp_path, "minion", text)))
    assert opts["master"] == "syndic-a" and opts["master_port"] == 4506
    assert opts["grains"] == {"saltpipe_env": "production", "roles": ["web"], "datacenter": "sha1"}
    assert opts["enable_fqdns_grains"] is True


def test_local_tuning_only_touches_template_variables(templates: DaemonTemplates, tmp_path: Path) -> None:
    """Every local value is a variable the template declares (else it would silently not apply)."""
    for role, values in LOCAL_TUNING.items():
        source = (DAEMONS / f"{role}.conf.j2").read_text(encoding="utf-8")
        for key in values:
            assert "{{ " + key + " " in source, f"{role}: {key} is not a variable of its template"


def test_local_values_wire_mom_syndic_and_minion_on_loopback(templates: DaemonTemplates, tmp_path: Path) -> None:
    """The values both local launchers render with: each daemon on its handle's ports, the syndic node pointed
    at the MoM, the minion at its syndic's master with the spec's grains, LOCAL_TUNING applied."""
    bindir = tmp_path / "bin"
    mom = MasterHandle("mom", tmp_path / "mom", tmp_path / "mom" / "conf", bindir, interface="127.0.0.1",
                       publish_port=41000, ret_port=41001)
    syn = MasterHandle("syn-a", tmp_path / "syn-a", tmp_path / "syn-a" / "conf", bindir, interface="127.0.0.1",
                       publish_port=42000, ret_port=42001)
    minion = MinionHandle(
        "web-1", tmp_path / "web-1", tmp_path / "web-1" / "conf", bindir, syndic="syn-a", env="test",
        roles=("web", "lb"), datacenter="dc1",
    )

    mom_opts = _master(tmp_path, templates.render("mom", **local_mom_values(mom, user="ops", file_roots=tmp_path)))
    assert (mom_opts["interface"], mom_opts["publish_port"], mom_opts["ret_port"]) == ("127.0.0.1", 41000, 41001)
    assert mom_opts["syndic_wait"] == LOCAL_TUNING["mom"]["syndic_wait"]
    assert mom_opts["root_dir"] == str(tmp_path / "mom") and mom_opts["user"] == "ops"

    values = local_syndic_master_values(
        syn, mom, user="ops", file_roots=tmp_path / "syn-a" / "file_roots", pillar_dir=tmp_path / "syn-a" / "pillar"
    )
    master = _write(tmp_path, "syndic-master", templates.render("syndic-master", **values))
    side_text = templates.render("syndic-minion", **local_syndic_minion_values(syn, mom, user="ops"))
    syndic_opts = salt_config.syndic_config(str(master), str(_write(tmp_path, "syndic-minion", side_text)))
    assert (syndic_opts["master"], syndic_opts["master_port"]) == ("127.0.0.1", 41001)
    assert syndic_opts["publish_port"] == 41000
    master_opts = salt_config.master_config(str(master))
    assert (master_opts["publish_port"], master_opts["ret_port"]) == (42000, 42001)
    assert master_opts["file_roots"]["base"] == [str(tmp_path / "syn-a" / "file_roots" / "current")]
    assert master_opts["pillar_roots"]["base"] == [str(tmp_path / "syn-a" / "pillar")]

    text = templates.render("minion", **local_minion_values(minion, syn, user="ops"))
    minion_opts = salt_config.minion_config(str(_write(tmp_path, "minion", text)))
    assert (minion_opts["master"], minion_opts["master_port"]) == ("127.0.0.1", 42001)
    assert minion_opts["grains"] == {"saltpipe_env": "test", "roles": ["web", "lb"], "datacenter": "dc1"}
    assert minion_opts["enable_fqdns_grains"] is False and minion_opts["root_dir"] == str(tmp_path / "web-1")


def test_missing_value_fails_naming_the_template(templates: DaemonTemplates) -> None:
    with pytest.raises(ConfigError) as err:
        templates.render("syndic-master", id="syndic-a")  # no syndic_master
    assert err.value.path == DAEMONS / "syndic-master.conf.j2"
    assert "syndic_master" in str(err.value)
