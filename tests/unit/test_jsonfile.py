"""pipeline.jsonfile.field_json: a record's JSON is its fields, in order, with the named changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.jsonfile import field_json


@dataclass(frozen=True)
class _Record:
    name: str
    where: Path
    note: str | None = None
    parts: tuple[str, ...] = ()


def test_fields_in_declaration_order_values_as_they_are() -> None:
    parts = ("a", "b")
    data = field_json(_Record("x", Path("/p"), parts=parts))
    assert list(data) == ["name", "where", "note", "parts"]
    assert data["where"] == Path("/p") and data["note"] is None
    assert data["parts"] is parts  # shallow: not copied or converted as dataclasses.asdict would


def test_replace_keeps_the_field_in_its_place_and_leave_out_drops_it() -> None:
    data = field_json(_Record("x", Path("/p"), note="n"), leave_out={"parts"}, where="/p")
    assert data == {"name": "x", "where": "/p", "note": "n"}
    assert list(data) == ["name", "where", "note"]


@pytest.mark.parametrize("kwargs", [{"leave_out": {"nope"}}, {"nope": 1}])
def test_a_name_that_is_no_field_is_an_error(kwargs: dict) -> None:
    with pytest.raises(TypeError, match="nope"):
        field_json(_Record("x", Path("/p")), **kwargs)
