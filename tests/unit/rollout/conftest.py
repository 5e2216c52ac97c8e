"""Fixtures for the rollout engine's unit tests (helpers in rollout_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rollout_helpers import FakeClock, FakeServing, Harness, make_config


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(make_config(), tmp_path / "state", FakeClock(), FakeServing(), [])
