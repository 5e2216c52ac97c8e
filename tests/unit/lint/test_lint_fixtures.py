"""Fixture grains: a plain mapping (one minion) or ``minions: {id: grains}`` (one render per minion)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.lint.fixtures import load_minions


def test_minions_shape(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text("minions:\n  web-1: {roles: [web]}\n  app-1: {roles: [app], id: app-1}\n")
    (tmp_path / "p.yaml").write_text("app: {port: 1}\n")
    minions = load_minions("test", tmp_path / "g.yaml", tmp_path / "p.yaml")
    assert [(m.minion_id, m.grains["id"], m.grains["roles"]) for m in minions] == [("web-1", "web-1", ["web"]), ("app-1", "app-1", ["app"])]
    assert all(m.pillar == {"app": {"port": 1}} and m.label.startswith("test/") for m in minions)


def test_plain_mapping_is_one_minion(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text("os_family: Debian\n")
    (tmp_path / "p.yaml").write_text("")
    [minion] = load_minions("prod", tmp_path / "g.yaml", tmp_path / "p.yaml")
    assert minion.minion_id == "prod-fixture" and minion.grains == {"id": "prod-fixture", "os_family": "Debian"} and minion.pillar == {}


def test_missing_or_bad_fixture_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("{}\n")
    with pytest.raises(ConfigError, match="g.yaml: fixture file not found") as excinfo:
        load_minions("test", tmp_path / "g.yaml", tmp_path / "p.yaml")
    # The hint names the config key that points at the file, not --config (issue 12).
    assert "environments.test.fixtures.grains" in str(excinfo.value) and "--config" not in str(excinfo.value)
    (tmp_path / "g.yaml").write_text("minions:\n  web-1: [not, a, mapping]\n")
    with pytest.raises(ConfigError, match="minions.web-1"):
        load_minions("test", tmp_path / "g.yaml", tmp_path / "p.yaml")
