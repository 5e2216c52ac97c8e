"""`saltpipe fixtures import` through the real MoM: one job of grains.items + pillar.items to a sample per role."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.topology import Topology


def test_import_samples_real_minions_per_role_through_the_mom(topology: Topology, tmp_path: Path) -> None:
    repo = tmp_path / "adopted"
    repo.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(repo), "--config", str(topology.pipeline_config),
         "fixtures", "import", "--target", "G@saltpipe_env:production", "--per-role", "1", "--env", "production",
         "--master-config", str(topology.mom.config_file), "--job-timeout", "90"],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "  web: prod-web-1" in proc.stdout and "  app: prod-app-1" in proc.stdout
    grains = yaml.safe_load((repo / "salt/fixtures/production/grains.yaml").read_text())["minions"]
    assert set(grains) == {"prod-app-1", "prod-web-1"}
    # Real grains of those minions, as Salt reported them (not the generated per-OS-family ones).
    for minion, data in grains.items():
        assert data["id"] == minion and data["saltversion"].startswith("3006.") and "os_family" in data
        assert data["saltpipe_env"] == "production"
    pillar = yaml.safe_load((repo / "salt/fixtures/production/pillar.yaml").read_text())
    assert isinstance(pillar, dict) and pillar, "the minions' pillar was imported"


pytestmark = pytest.mark.integration
