"""The JSON Schema of ``salt/pipeline.yaml``, generated from the config model (:class:`PipelineConfig`).

The model is the one source of truth; ``salt/pipeline.schema.json`` is its generated copy for editors
(``# yaml-language-server: $schema=pipeline.schema.json``) and for reviewers who want the whole shape at once.
``saltpipe config schema --write`` regenerates it, and tests/unit/config/test_schema.py fails when the committed
copy is stale. The loader never reads the schema: it validates with the model itself, which also checks what
a schema cannot say (cross-environment references, cycles, file:line errors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig

#: Where the generated schema lives, relative to the repository root.
SCHEMA_PATH = Path("salt") / "pipeline.schema.json"


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the pipeline config, as the model validates input."""
    schema = PipelineConfig.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "saltpipe:pipeline.yaml", **schema}


def schema_text() -> str:
    """:func:`config_schema` as the committed file holds it (stable key order, trailing newline)."""
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"
