"""The end of ``saltpipe demo``: the URL of its run's page, and with --serve the page itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests
from recorded_state import load

from pipeline.commands.serve import demo_page

REPO = Path(__file__).resolve().parents[3]


def demo_workdir(tmp_path: Path) -> Path:
    config = load(tmp_path)
    topo = tmp_path / "demo" / "topo"
    topo.mkdir(parents=True)
    shutil.copy(config, topo / "pipeline.yaml")
    return tmp_path / "demo"


def test_without_serve_it_prints_the_url_and_how_to_serve_it(tmp_path: Path) -> None:
    workdir = demo_workdir(tmp_path)
    lines: list[str] = []
    demo_page(REPO, workdir, False, echo=lines.append)
    rollout_id = next((tmp_path / "recorded" / "state" / "rollouts" / "production").glob("*/plan.json")).parent.name
    assert lines[0] == f"status page of this run: http://127.0.0.1:8080/rollouts/production/{rollout_id}"
    assert lines[1] == f"  (serve it: saltpipe --config {workdir / 'topo' / 'pipeline.yaml'} serve)"


def test_with_serve_the_page_is_up_until_stopped(tmp_path: Path) -> None:
    workdir = demo_workdir(tmp_path)
    lines: list[str] = []
    fetched: list[int] = []

    def visit(url: str) -> None:  # stands in for the operator looking at the page, then pressing Ctrl-C
        fetched.append(requests.get(url, timeout=30).status_code)

    demo_page(REPO, workdir, True, echo=lines.append, wait=visit)
    assert lines[0].startswith("status page of this run: http://127.0.0.1:") and "/rollouts/production/" in lines[0]
    assert fetched == [200]
    assert "Ctrl-C stops it" in lines[1]


def test_no_topology_no_page(tmp_path: Path) -> None:
    lines: list[str] = []
    demo_page(REPO, tmp_path, False, echo=lines.append)
    assert lines == []
