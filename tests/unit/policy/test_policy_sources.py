"""Where findings point: state ID lines found in template source, and states read from unrenderable text."""

from __future__ import annotations

from pipeline.policy.model import SourceText
from pipeline.policy.states import blank_jinja, states_from_text

TEMPLATE = """\
{%- from "app/map.jinja" import app with context %}
include:
  - base

{%- for user in ['alice', 'bob'] %}
app-user-{{ user }}-key:
  file.managed:
    - name: /home/{{ user }}/.ssh/authorized_keys
{%- endfor %}

"app service":
  service.running:
    - name: app
    - onlyif: test -f /etc/app

extend:
  base-motd:
    file:
      - contents: hi
"""


def test_locate_key_exact_quoted_and_jinja_patterns() -> None:
    src = SourceText("states/app/init.sls", TEMPLATE)
    assert src.locate_key("app service") == 11
    assert src.locate_key("app-user-alice-key") == 6
    assert src.locate_key("include") == 2
    assert src.locate_key("base-motd", after=src.locate_key("extend") or 0) == 17
    assert src.locate_key("nowhere") is None


def test_child_key_line_under_its_state() -> None:
    src = SourceText("x.sls", TEMPLATE)
    assert src.locate_child_key("onlyif", 11) == 14
    assert src.locate_child_key("onlyif", 6) is None  # not under that ID


def test_blank_jinja_keeps_line_numbers() -> None:
    blanked = blank_jinja(TEMPLATE)
    assert blanked.count("\n") == TEMPLATE.count("\n")
    assert "{{" not in blanked and "{%" not in blanked


def test_states_from_text_reads_yaml_with_jinja_blanked() -> None:
    states = states_from_text(SourceText("x.sls", TEMPLATE), "app")
    by_fun = {(d.state_id, d.fun): d for d in states}
    assert ("app service", "service.running") in by_fun
    svc = by_fun[("app service", "service.running")]
    assert svc.origin == "text" and svc.line == 11 and svc.args["onlyif"] == "test -f /etc/app"
    assert any(d.in_extend and d.state_id == "base-motd" for d in states)


def test_states_from_text_line_scanner_when_yaml_fails() -> None:
    text = "restart:\n  cmd.run:\n    - name: x\n  bad: [\nother:\n  cmd:\n    - shell\n"
    states = states_from_text(SourceText("x.sls", text), "x")
    assert [(d.state_id, d.fun, d.line) for d in states] == [("restart", "cmd.run", 1), ("other", "cmd.shell", 5)]
