"""salt/pipeline.schema.json is the config model's schema, regenerated, never hand-edited."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.schema import SCHEMA_PATH, config_schema, schema_text

REPO = Path(__file__).resolve().parents[3]


def test_committed_schema_is_the_models() -> None:
    committed = (REPO / SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == schema_text(), (
        f"{SCHEMA_PATH} is stale: the config model changed. Run `saltpipe config schema --write` and commit it."
    )


def test_schema_describes_the_shipped_config() -> None:
    schema = config_schema()
    shipped = yaml.safe_load((REPO / "salt" / "pipeline.yaml").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False, "unknown top-level keys are refused, as the model does"
    assert set(shipped) <= set(schema["properties"]), "every key of the shipped config is in the schema"


def test_cli_prints_and_writes_the_schema(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(cli, ["--repo", str(REPO), "config", "schema"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output) == config_schema()
    (tmp_path / "salt").mkdir()
    written = runner.invoke(cli, ["--repo", str(tmp_path), "config", "schema", "--write"])
    assert written.exit_code == 0, written.output
    assert (tmp_path / SCHEMA_PATH).read_text(encoding="utf-8") == schema_text()
