"""pipeline.yamlmodel: the one formatter of validation errors (salt/pipeline.yaml, the topology spec, the
runtime policy) - ``file:line: key.path: message``, listed by line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from pipeline.errors import ConfigError
from pipeline.yamlmodel import validate_sourced
from pipeline.yamlsrc import load_yaml_text


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    ports: tuple[int, int]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodes: list[_Node]
    owner: str


def test_one_problem_names_its_line_and_key() -> None:
    src = load_yaml_text("owner: ops\nnodes:\n  - name: a\n    ports: [1, 2]\n    colour: red\n", Path("x.yaml"))
    with pytest.raises(ConfigError) as err:
        validate_sourced(_File, src, hint="see the docs")
    assert (err.value.line, err.value.key, err.value.hint) == (5, "nodes[0].colour", "see the docs")


def test_several_problems_listed_by_line() -> None:
    """By line in the file, not by the model's field order (``owner`` is the model's last field, the file's first)."""
    text = "owner: [not, a, string]\nnodes:\n  - name: a\n    ports: [1, x]\n  - ports: [1, 2]\n"
    src = load_yaml_text(text, Path("x.yaml"))
    with pytest.raises(ConfigError) as err:
        validate_sourced(_File, src, hint="see the docs")
    lines = str(err.value).splitlines()
    assert lines[0].endswith("3 problems:")
    assert lines[1].strip().startswith("x.yaml:1: owner: ")
    assert lines[2].strip().startswith("x.yaml:4: nodes[0].ports[1]: ")
    assert lines[3].strip() == "x.yaml:5: nodes[1].name: required key is missing"
    assert err.value.line == 1
