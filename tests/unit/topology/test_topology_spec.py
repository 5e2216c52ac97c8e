"""The local topology's shape (salt/daemons/local-topology.yaml) against salt/pipeline.yaml: the bundled pair fits,
and each misfit gets an error naming file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.topology.spec import load_spec

REPO = Path(__file__).resolve().parents[3]
CONFIG = load_config(REPO / "salt" / "pipeline.yaml")

GOOD = """\
version: 1
mom: mom
syndics:
  syndic-test:
    datacenter: dc-test
    minions:
      test-web-1: {roles: [web]}
      test-app-1: {roles: [app]}
  syndic-prod-a:
    datacenter: sha1
    minions:
      prod-web-1: {roles: [web]}
  syndic-prod-b:
    datacenter: pek2
    minions:
      prod-app-1: {roles: [app]}
"""


def _spec(tmp_path: Path, text: str):
    path = tmp_path / "local-topology.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_spec(path, CONFIG)


def test_bundled_spec_maps_every_environment() -> None:
    spec = load_spec(REPO / "salt" / "daemons" / "local-topology.yaml", CONFIG)
    assert [s.id for s in spec.syndics] == ["syndic-test", "syndic-prod-a", "syndic-prod-b"]
    assert spec.env_minions("test") == ("test-web-1", "test-app-1")
    assert len(spec.env_minions("production")) == 6
    for env in CONFIG.environments.values():
        assert set(env.canary.ids) <= set(spec.env_minions(env.name))
    web1 = next(m for m in spec.minions if m.id == "prod-web-1")
    assert web1.grains == {"saltpipe_env": "production", "roles": ["web"], "datacenter": "sha1"}


def test_order_follows_pipeline_yaml(tmp_path: Path) -> None:
    reordered = GOOD.replace("  syndic-test:", "  syndic-zz:", 1)
    with pytest.raises(ConfigError):
        _spec(tmp_path, reordered)
    spec = _spec(tmp_path, GOOD)
    assert [m.env for m in spec.minions] == ["test", "test", "production", "production"]


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (GOOD.replace("syndic-prod-b:", "syndic-prod-c:"), 13, "'syndic-prod-c' is not a syndic of any environment"),
        (GOOD.replace("prod-app-1: {roles: [app]}", "prod-web-1: {roles: [app]}"), 16, "used twice"),
        (GOOD.replace("test-web-1: {roles: [web]}", "test-web-9: {roles: [web]}"), 3, "canary 'test-web-1'"),
        (GOOD.replace("      prod-web-1: {roles: [web]}", "      Prod_Web: {roles: [web]}"), 12, "not a valid id"),
        (GOOD.replace("{roles: [app]}", "{roles: []}", 1), 8, "roles"),
        (GOOD.replace("    datacenter: sha1\n", ""), 9, "datacenter: required key is missing"),
        (GOOD + "extra: 1\n", 17, "extra"),
    ],
)
def test_misfits_name_file_line_and_key(tmp_path: Path, text: str, line: int, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        _spec(tmp_path, text)
    assert err.value.path == tmp_path / "local-topology.yaml"
    assert err.value.line == line, str(err.value)
    assert needle in str(err.value)


def test_missing_syndic_is_named(tmp_path: Path) -> None:
    text = GOOD[: GOOD.index("  syndic-prod-b:")]
    with pytest.raises(ConfigError, match="missing here: syndic-prod-b"):
        _spec(tmp_path, text)
