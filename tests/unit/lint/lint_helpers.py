"""Helpers for the lint tests: small repositories on disk, optionally under Git."""

from __future__ import annotations

import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

PIPELINE_YAML = """\
version: 1
environments:
  test:
    syndics:
      - name: syndic-test
        file_roots: {type: local, path: /srv/saltpipe/syndic-test}
    target: "G@saltpipe_env:test"
    canary: 1
    batches: ["100%"]
"""

GRAINS_YAML = """\
minions:
  web-1: {saltpipe_env: test, roles: [web], os_family: Debian}
  app-1: {saltpipe_env: test, roles: [app], os_family: Debian}
"""


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text, dedented) under ``root``; returns ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def with_config(files: dict[str, str], pillar: str = "app: {port: 8080}\n") -> dict[str, str]:
    """``files`` plus a one-environment salt/pipeline.yaml and its fixtures (two minions)."""
    return {
        "salt/pipeline.yaml": PIPELINE_YAML,
        "salt/fixtures/test/grains.yaml": GRAINS_YAML,
        "salt/fixtures/test/pillar.yaml": pillar,
        **files,
    }
