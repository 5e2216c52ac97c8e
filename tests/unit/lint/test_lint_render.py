"""Rendering with Salt's own pipeline, in process: errors with lines, per-minion data, the guarded ``salt``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.lint.fixtures import MinionFixture
from pipeline.lint.render import SaltRenderer
from lint_helpers import write_tree


@pytest.fixture()
def states(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "states",
        {
            "web/init.sls": """
                {%- from 'web/map.jinja' import web with context %}
                include:
                  - .tls
                nginx:
                  pkg.installed:
                    - name: {{ web.package }}
                  file.managed:
                    - name: /etc/nginx/port
                    - contents: "{{ salt['pillar.get']('nginx:port', 80) }}"
            """,
            "web/map.jinja": "{%- set web = {'package': 'nginx-' ~ grains['os_family']|lower} %}\n",
            "web/tls.sls": "tls:\n  test.nop: []\n",
            "jinja_error.sls": "a:\n  test.nop:\n\n    - name: {{ pillar['missing']['key'] }}\n",
            "yaml_error.sls": "a:\n  test.nop:\n    - name: x\n   bad: [\n",
            "touch.sls": "{%- do salt['file.touch'](grains['marker']) %}\nx:\n  test.nop: []\n",
        },
    )


def renderer(states: Path, functions: tuple[str, ...] = ("pillar.get", "grains.get")) -> SaltRenderer:
    return SaltRenderer(states, ("jinja", "yaml"), functions, lambda p: p.relative_to(states).as_posix())


def test_renders_with_each_minions_grains_and_pillar(states: Path) -> None:
    with renderer(states) as r:
        r.use(MinionFixture("test", "web-1", {"id": "web-1", "os_family": "Debian"}, {"nginx": {"port": 8080}}))
        first = r.render(states / "web/init.sls", "web")
        r.use(MinionFixture("test", "web-2", {"id": "web-2", "os_family": "RedHat"}, {}))
        second = r.render(states / "web/init.sls", "web")
    assert first.ok and second.ok
    assert first.data["include"] == [".tls"]
    assert first.data["nginx"]["pkg.installed"] == [{"name": "nginx-debian"}]
    assert first.data["nginx"]["file.managed"][1] == {"contents": "8080"}
    assert second.data["nginx"]["pkg.installed"] == [{"name": "nginx-redhat"}]
    assert second.data["nginx"]["file.managed"][1] == {"contents": "80"}
    assert [(c.function, c.line, c.executed) for c in first.calls] == [("pillar.get", 9, True)]


def test_jinja_and_yaml_errors_carry_their_line(states: Path) -> None:
    with renderer(states) as r:
        r.use(MinionFixture("test", "m", {"id": "m"}, {}))
        jinja = r.render(states / "jinja_error.sls", "jinja_error")
        yaml = r.render(states / "yaml_error.sls", "yaml_error")
    assert not jinja.ok and jinja.error_line == 4 and "missing" in (jinja.error or "")
    assert not yaml.ok and yaml.error_line == 4 and "did not find expected key" in (yaml.error or "")


def test_functions_outside_render_functions_never_run(states: Path, tmp_path: Path) -> None:
    marker = tmp_path / "touched"
    minion = MinionFixture("test", "m", {"id": "m", "marker": str(marker)}, {})
    with renderer(states) as r:
        r.use(minion)
        outcome = r.render(states / "touch.sls", "touch")
    assert outcome.ok and not marker.exists()
    assert [(c.function, c.executed) for c in outcome.calls] == [("file.touch", False)]
    # The same render with file.touch allowed really runs Salt's file module: the guard is the only thing
    # that kept it from running above.
    with renderer(states, ("file.touch",)) as r:
        r.use(minion)
        assert r.render(states / "touch.sls", "touch").ok
    assert marker.exists()


def test_top_targets_match_with_salts_matchers(states: Path) -> None:
    with renderer(states) as r:
        r.use(MinionFixture("test", "web-1", {"id": "web-1", "roles": ["web"], "saltpipe_env": "test"}, {"tier": "edge"}))
        assert r.top_matches("G@saltpipe_env:test and G@roles:web", [{"match": "compound"}, "web"])
        assert not r.top_matches("G@roles:app", ["app"])
        assert r.top_matches("web-*", ["web"])
        assert r.top_matches("tier:edge", [{"match": "pillar"}, "web"])
        assert not r.top_matches("[bad", [{"match": "nosuchmatcher"}])
