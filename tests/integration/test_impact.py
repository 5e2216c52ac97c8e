"""`saltpipe impact` on the real topology: a release exposed as a canary saltenv, dry-run on one minion per role.

The content is a throw-away Git repository: a top file keyed ``{{ saltenv }}:`` applying ``impact`` to every
minion; ``impact`` manages a file that does not exist (would change everywhere) and, on app minions only, a
file whose source is missing (would fail there), and a custom module ``_modules/impact_probe.py``.
``test=True`` writes no state's file; but Salt's highstate syncs the saltenv's custom modules even in test mode,
which the test shows first with a raw dry run - and then that ``saltpipe impact`` puts base's modules back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest

from pipeline.topology import Topology

TOP = "{{ saltenv }}:\n  '*':\n    - impact\n"
SLS = """\
impact_marker:
  file.managed:
    - name: /tmp/saltpipe-{{ grains['id'] }}-never-written-by-a-dry-run
    - contents: impact analysis
{% if 'app' in grains.get('roles', []) %}
impact_missing_source:
  file.managed:
    - name: /tmp/saltpipe-impact-never-written
    - source: salt://does/not/exist.conf
{% endif %}
"""


PROBE = "def ping():\n    return 'impact probe'\n"


def _extmods(topology: Topology, minion: str) -> Path:
    return topology.minion(minion).root_dir / "var" / "cache" / "salt" / "minion" / "extmods" / "modules"


def _cli(repo: Path, config: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(repo), "--config", str(config), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_impact_dry_runs_the_canary_saltenv_on_one_minion_per_role(topology: Topology, tmp_path: Path) -> None:
    repo = tmp_path / "content"
    (repo / "states").mkdir(parents=True)
    # A release id of its own (ids are content hashes), so the "not exposed yet" step holds on a reused topology.
    (repo / "states" / "top.sls").write_text(TOP + f"{{# {tmp_path.name} {time.time_ns()} #}}\n")
    (repo / "states" / "impact.sls").write_text(SLS)
    (repo / "_modules").mkdir()
    (repo / "_modules" / "impact_probe.py").write_text(PROBE)
    r = git.Repo.init(repo)
    r.index.add(["states/top.sls", "states/impact.sls", "_modules/impact_probe.py"])
    r.index.commit("impact content", author=git.Actor("t", "t@example.org"), committer=git.Actor("t", "t@example.org"))
    config = topology.pipeline_config

    built = _cli(repo, config, "release", "build", "--format", "json")
    assert built.returncode == 0, built.stderr
    release = json.loads(built.stdout)["release"]
    syndics = ["syndic-prod-a", "syndic-prod-b"]
    masters = [f"{s}={topology.syndic(s).master.config_file}" for s in syndics]

    not_exposed = _cli(repo, config, "impact", "production", "--release", release,
                       "--master-config", str(topology.mom.config_file), "--format", "json")
    assert not_exposed.returncode == 2 and "--canary" in not_exposed.stderr, not_exposed.stderr

    synced = _cli(repo, config, "sync", "production", "--release", release, "--canary",
                  *[a for m in masters for a in ("--syndic-config", m)])
    assert synced.returncode == 0, synced.stderr + synced.stdout

    # What Salt itself does: a raw dry run of the canary saltenv syncs its custom modules onto the minion.
    raw = topology.mom.salt(["prod-web-1"], "state.apply", test=True, saltenv=release, timeout=120)
    assert set(raw.returns) == {"prod-web-1"}, raw
    assert (_extmods(topology, "prod-web-1") / "impact_probe.py").exists(), "Salt's test-mode highstate synced it"

    out = tmp_path / "impact.json"
    proc = _cli(repo, config, "impact", "production", "--release", release, "--sample-per-role", "1",
                "--master-config", str(topology.mom.config_file), "--job-timeout", "90",
                *[a for m in masters for a in ("--syndic-config", m)], "--output", str(out))
    # A state would fail on the app minion: exit 1, and the report says where.
    assert proc.returncode == 1, proc.stderr + proc.stdout
    data = json.loads(out.read_text())
    assert data["saltenv"] == release and data["missing"] == []
    assert data["sampled"] == {"app": ["prod-app-1"], "web": ["prod-web-1"]}
    states = {s["id"]: s for s in data["states"]}
    assert set(states) == {"impact_marker", "impact_missing_source"}, data["states"]
    assert states["impact_marker"]["changed"] == ["prod-app-1", "prod-web-1"]
    assert states["impact_missing_source"]["failed"] == ["prod-app-1"]
    # Nothing was applied: the dry run wrote no file on the minions.
    assert not Path("/tmp/saltpipe-prod-web-1-never-written-by-a-dry-run").exists()
    # ... and the custom modules the dry run synced were replaced by base's again on both sampled minions.
    assert data["not_restored"] == [] and data["restore_jid"]
    for minion in ("prod-app-1", "prod-web-1"):
        assert not (_extmods(topology, minion) / "impact_probe.py").exists(), minion

    note = _cli(repo, config, "report", "mr-note", "--impact-json", str(out), "--dry-run")
    assert note.returncode == 0, note.stderr
    assert "impact_missing_source" in note.stdout


pytestmark = pytest.mark.integration
