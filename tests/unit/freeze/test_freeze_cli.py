"""``saltpipe sync`` inside a freeze window: refused with exit 1 naming the window; --canary is not frozen;
--override-freeze goes on and is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main

CONFIG = """\
version: 1
state_dir: {state}
environments:
  production:
    syndics:
      - name: syndic-prod-a
        file_roots: {{type: local, path: {roots}}}
    target: "G@saltpipe_env:production"
    canary: 1
    batches: ["100%"]
    freeze:
      - {{name: change-freeze, start: 2000-01-01T00:00, end: 2100-01-01T00:00, timezone: Europe/Berlin}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "roots").mkdir()
    path = tmp_path / "pipeline.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state", roots=tmp_path / "roots"))
    return path


def run(config: Path, *words: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(["--repo", str(config.parent), "--config", str(config), *words])
    return int(exc.value.code or 0)


def test_sync_is_refused_inside_a_window(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "sync", "production", "--release", "rel-0123456789ab") == 1
    err = capsys.readouterr().err
    assert "production is frozen: freeze window 'change-freeze'" in err and "--override-freeze" in err


def test_canary_sync_is_not_frozen_and_an_override_is_recorded(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Past the freeze check both stop at the missing release (exit 2): the freeze did not refuse them.
    assert run(config, "sync", "production", "--release", "rel-0123456789ab", "--canary") == 2
    assert "not in the release store" in capsys.readouterr().err
    assert run(config, "sync", "production", "--release", "rel-0123456789ab", "--override-freeze", "INC-1") == 2
    assert not (config.parent / "state" / "freeze-overrides.jsonl").exists()  # recorded only once a sync runs
