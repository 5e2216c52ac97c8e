"""The small JSON saltpipe reads and writes: the files it keeps beside its data (a release's meta.json, a
syndic's saltpipe-state.json), and the JSON objects of its plain result records."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import fields
from pathlib import Path
from typing import Any


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when the file is missing, unreadable, not JSON or not an object.

    For files that only add to what is known otherwise (the links, the manifest): a damaged one must not stop
    the reader, which then works from the facts it has."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def field_json(record: Any, *, leave_out: Collection[str] = (), **replace: Any) -> dict[str, Any]:
    """The fields of the dataclass instance ``record`` as a JSON object, in declaration order, without the
    fields named in ``leave_out``; a field named in ``replace`` takes that value instead (at its own place).

    For records whose JSON is their fields: one place says so, and a field added later shows up in it. Values
    are taken as they are (shallow, unlike :func:`dataclasses.asdict`): convert what JSON cannot hold through
    ``replace``."""
    unknown = (set(leave_out) | set(replace)) - {f.name for f in fields(record)}
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {', '.join(sorted(unknown))}")
    return {
        f.name: replace[f.name] if f.name in replace else getattr(record, f.name)
        for f in fields(record)
        if f.name not in leave_out
    }
