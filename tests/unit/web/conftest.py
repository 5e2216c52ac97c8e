"""Fixtures of the status page's tests: the recorded real rollout (recorded_state.py) served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from recorded_state import load

from pipeline.config import load_config
from pipeline.web.app import create_app
from pipeline.web.data import StatusData
from pipeline.web.server import ServerThread


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> StatusData:
    config_path = load(tmp_path_factory.mktemp("status"))
    cfg = load_config(config_path)
    return StatusData(cfg, Path(cfg.state_dir))


@pytest.fixture(scope="module")
def server(recorded: StatusData) -> Iterator[ServerThread]:
    with ServerThread(create_app(recorded)) as running:
        yield running
