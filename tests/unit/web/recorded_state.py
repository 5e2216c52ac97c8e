"""Recording a real rollout's state directory for the status page's tests, and loading it back.

:func:`record` (called by tests/integration/test_status_page.py when ``SALTPIPE_RECORD_STATUS_STATE`` names a
directory) keeps what the status page reads: plans, journals, reports and history of every rollout, the release
store's manifest.json + release.json (not the trees: :func:`load` makes empty ones), approvals, freeze overrides, and each syndic's
saltpipe-state.json with its ``current`` / ``envs/*`` links. :func:`load` writes a pipeline.yaml whose syndics'
file_roots point at the recorded syndic directories, so the page serves the recording exactly as it served the
live run - without a daemon.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
RECORDED = HERE / "recorded"


def record(state_dir: Path, syndic_roots: dict[str, Path], config: dict[str, Any], dest: Path) -> None:
    """Copy the page's inputs from a live run into ``dest`` (replacing what was there)."""
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "state").mkdir(parents=True)
    shutil.copytree(state_dir / "rollouts", dest / "state" / "rollouts",
                    ignore=shutil.ignore_patterns("current", ".*"))
    for extra in ("approvals", "freeze-overrides.jsonl"):
        src = state_dir / extra
        if src.is_dir():
            shutil.copytree(src, dest / "state" / extra)
        elif src.is_file():
            shutil.copy2(src, dest / "state" / extra)
    for rel in sorted((state_dir / "releases").iterdir()):
        if rel.name.startswith(".") or not (rel / "manifest.json").is_file():
            continue
        out = dest / "state" / "releases" / rel.name
        out.mkdir(parents=True)
        for name in ("manifest.json", "release.json"):
            shutil.copy2(rel / name, out / name)
    for name, root in syndic_roots.items():
        out = dest / "syndics" / name
        (out / "releases").mkdir(parents=True)
        if (root / "saltpipe-state.json").is_file():
            shutil.copy2(root / "saltpipe-state.json", out / "saltpipe-state.json")
        for link in [root / "current", *sorted((root / "envs").glob("*"))]:
            if link.is_symlink():
                target = os.readlink(link)
                (out / link.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, out / link.relative_to(root))
                (out / "releases" / Path(target).name).mkdir(exist_ok=True)
    (dest / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")


def load(tmp: Path, source: Path = RECORDED) -> Path:
    """A copy of the recording under ``tmp`` and its pipeline.yaml (returned)."""
    root = tmp / "recorded"
    shutil.copytree(source, root, symlinks=True)
    config = json.loads((root / "config.json").read_text())
    config["state_dir"] = str(root / "state")
    config.pop("salt", None)  # no MoM here: the page has no job cache
    for release in (root / "state" / "releases").iterdir():
        (release / "tree").mkdir(exist_ok=True)  # not recorded (the page reads manifests); the store wants one
    for env in config["environments"].values():
        for syndic in env["syndics"]:
            directory = root / "syndics" / syndic["name"]
            # Git keeps no empty directory: the release directories the links name are made here.
            (directory / "releases").mkdir(parents=True, exist_ok=True)
            for link in [directory / "current", *(directory / "envs").glob("*")]:
                if link.is_symlink():
                    (directory / "releases" / Path(os.readlink(link)).name).mkdir(exist_ok=True)
            syndic["file_roots"] = {"type": "local", "path": str(directory)}
            syndic.pop("master_config", None)
    path = root / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
