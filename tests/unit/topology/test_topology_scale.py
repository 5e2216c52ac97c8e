"""The larger local fleet (``topology up --minions N --syndics S``): the scaled config and spec load and check like
``salt/``'s, the minions are spread over the last environment's syndics, the other environments keep theirs, and
the light minion config is what Salt reads; the default topology is unchanged."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import load_config
from pipeline.config.runtime_policy import load_runtime_policy
from pipeline.errors import UsageError
from pipeline.saltlib import import_salt
from pipeline.topology.handles import MasterHandle, MinionHandle
from pipeline.topology.render import DaemonTemplates, local_minion_values
from pipeline.topology.scale import scaled_files, shares
from pipeline.topology.spec import SyndicSpec, load_spec

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "salt" / "pipeline.yaml"
SPEC = REPO / "salt" / "daemons" / "local-topology.yaml"


def _ids(syndic: SyndicSpec) -> tuple[str, ...]:
    return tuple(m.id for m in syndic.minions)


def test_forty_minions_over_four_syndics_load_as_a_checked_spec(tmp_path: Path) -> None:
    config_file, spec_file = scaled_files(tmp_path, CONFIG, SPEC, minions=40, syndics=4)
    config = load_config(config_file)
    spec = load_spec(spec_file, config)

    assert len(spec.minions) == 40 and len(spec.syndics) == 4
    assert [s.name for s in config.environment("production").syndics] == [
        "syndic-prod-a", "syndic-prod-b", "syndic-prod-c"
    ]
    assert Counter(m.syndic for m in spec.minions) == dict.fromkeys(
        ["syndic-test", "syndic-prod-a", "syndic-prod-b", "syndic-prod-c"], 10
    ), "spread evenly over every syndic"
    default = load_spec(SPEC, load_config(CONFIG))
    for syndic in default.syndics:
        assert set(_ids(syndic)) <= set(_ids(spec.syndic(syndic.id))), f"{syndic.id} keeps its minions"
    assert "test-web-1" in _ids(spec.syndic("syndic-test")), "test's canary"
    assert Counter(r for m in spec.minions if m.env == "production" for r in m.roles) == {"web": 15, "app": 15}
    assert spec.syndic("syndic-prod-c").datacenter == "dc-c"
    assert spec.syndic("syndic-prod-a").datacenter == default.syndic("syndic-prod-a").datacenter


@pytest.mark.parametrize(("minions", "syndics", "expected"), [
    (40, 4, [10, 10, 10, 10]), (42, 4, [11, 11, 10, 10]), (7, 7, [1] * 7), (1, 1, [1]), (80, 6, [14, 14] + [13] * 4),
])
def test_minions_are_shared_evenly_first_syndics_taking_the_remainder(
    minions: int, syndics: int, expected: list[int]
) -> None:
    assert shares(minions, syndics) == expected
    assert sum(expected) == minions


@pytest.mark.parametrize(("minions", "syndics", "message"), [
    (0, 4, "at least 1"), (40, 0, "at least 1"), (-3, 4, "at least 1"), (3, 4, "fewer than --syndics 4"),
])
def test_sizes_below_one_or_fewer_minions_than_syndics_are_usage_errors(
    minions: int, syndics: int, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as err:
        shares(minions, syndics)
    assert err.value.exit_code == 2


def test_fewer_syndics_than_the_config_has_or_too_few_minions_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="already has 3 syndics"):
        scaled_files(tmp_path, CONFIG, SPEC, minions=40, syndics=2)
    with pytest.raises(UsageError, match="fewer than --syndics"):
        scaled_files(tmp_path, CONFIG, SPEC, minions=3, syndics=4)
    assert not (tmp_path / "scaled").exists(), "nothing written for a refused size"


def test_a_small_share_keeps_the_first_default_minions_and_ids_stay_unique(tmp_path: Path) -> None:
    config_file, spec_file = scaled_files(tmp_path, CONFIG, SPEC, minions=5, syndics=5)
    spec = load_spec(spec_file, load_config(config_file))
    assert [_ids(s) for s in spec.syndics] == [
        ("test-web-1",), ("prod-web-1",), ("prod-app-1",), ("prod-web-07",), ("prod-app-08",)
    ]


@pytest.mark.parametrize("argv", [
    ["--minions", "0"], ["--minions", "40", "--syndics", "0"], ["--minions", "3", "--syndics", "4"],
    ["--syndics", "6"],  # without --minions the default topology's shape is fixed: refused, not ignored
])
def test_the_cli_refuses_bad_sizes_with_exit_2_before_starting_anything(tmp_path: Path, argv: list[str]) -> None:
    workdir = tmp_path / "t"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--repo", str(REPO), "topology", "up", "--workdir", str(workdir), *argv],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc
    assert "--minions" in proc.stderr or "--syndics" in proc.stderr, proc.stderr
    assert not (workdir / "topology.json").exists()


def test_help_names_the_sizes_and_the_default_topology_is_unchanged() -> None:
    result = CliRunner().invoke(cli, ["topology", "up", "--help"])
    assert result.exit_code == 0
    assert "--minions" in result.output and "--syndics" in result.output and "default: 4" in result.output


def _minion_opts(tmp_path: Path, *, light: bool) -> dict:
    daemons = REPO / "salt" / "daemons"
    templates = DaemonTemplates(daemons, load_runtime_policy(daemons / "runtime-policy.yaml"))
    syn = MasterHandle("syn-a", tmp_path / "syn-a", tmp_path / "syn-a" / "conf", tmp_path, interface="127.0.0.1",
                       publish_port=42000, ret_port=42001)
    minion = MinionHandle("web-1", tmp_path / "m", tmp_path / "m" / "conf", tmp_path, syndic="syn-a", env="production",
                          roles=("web",), datacenter="dc1")
    path = tmp_path / f"minion-{light}"
    path.write_text(templates.render("minion", **local_minion_values(minion, syn, user="ops", light=light)))
    return import_salt("salt.config").minion_config(str(path))


def test_light_minions_run_jobs_in_threads_without_gpu_grains_or_mine(tmp_path: Path) -> None:
    light = _minion_opts(tmp_path, light=True)
    assert (light["multiprocessing"], light["enable_gpu_grains"], light["mine_enabled"]) == (False, False, False)
    default = _minion_opts(tmp_path, light=False)
    assert (default["multiprocessing"], default["enable_gpu_grains"], default["mine_enabled"]) == (True, True, True)
