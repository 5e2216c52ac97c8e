"""Reading the small JSON files saltpipe keeps beside its data (a release's meta.json, a syndic's
saltpipe-state.json)."""

from __future__ import annotations

import json
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
