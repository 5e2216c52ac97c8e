"""Pieces of the topology that need no daemons: Salt CLI output parsing, the derived pipeline.yaml, pid files."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config import load_config, validate_config
from pipeline.topology.daemons import Daemon, inspect
from pipeline.topology.handles import SaltResult, _parse_json
from pipeline.topology.build import derive_pipeline_config
from pipeline.topology.spec import load_spec
from pipeline.yamlsrc import load_yaml_text

REPO = Path(__file__).resolve().parents[3]


def test_salt_json_stream_is_merged() -> None:
    # `salt --out=json` prints one object per minion as it returns, pretty-printed.
    text = '{\n    "a": true\n}\n{\n    "b": {"x": "}"}\n}\n'
    assert _parse_json(text) == {"a": True, "b": {"x": "}"}}


def test_salt_run_scalar_and_noise() -> None:
    assert _parse_json("true\n") is True
    assert _parse_json("Authorization error occurred.\n") is None
    assert _parse_json("[WARNING ] something\n{\"a\": 1}\n") == {"a": 1}


def test_refusal_is_recognised_whatever_the_exit_code() -> None:
    out = SaltResult(("salt",), 0, "Authorization error occurred.\n", "", None, 0.1)
    err = SaltResult(("salt",), 1, "", "AuthorizationError: Authorization error occurred.", None, 0.1)
    ok = SaltResult(("salt",), 0, '{"m": true}', "", {"m": True}, 0.1)
    assert out.refused and err.refused and not ok.refused
    assert out.returns == {} and ok.returns == {"m": True}


def test_derived_pipeline_yaml_keeps_everything_but_file_roots(tmp_path: Path) -> None:
    source = REPO / "salt" / "pipeline.yaml"
    config = load_config(source)
    spec = load_spec(REPO / "salt" / "daemons" / "local-topology.yaml", config)
    derived = validate_config(load_yaml_text(derive_pipeline_config(source, tmp_path, spec), tmp_path / "p.yaml"))
    assert derived.state_dir == tmp_path / "state"
    for name, env in derived.environments.items():
        original = config.environments[name]
        assert (env.target, env.canary, env.batches, env.gates, env.requires) == (
            original.target, original.canary, original.batches, original.gates, original.requires
        )
        for syndic in env.syndics:
            assert syndic.file_roots.type == "local" and syndic.file_roots.path == tmp_path / syndic.name / "file_roots"
            # Salt is reached through the local masters, so sync and rollout need no flags.
            assert syndic.master_config == tmp_path / syndic.name / "conf" / "master"
    assert derived.salt is not None and derived.salt.api is None
    assert derived.salt.master_config == tmp_path / spec.mom / "conf" / "master"


def test_daemon_states_from_pid_files(tmp_path: Path) -> None:
    daemon = Daemon("m1", "minion", tmp_path, tmp_path / "conf")
    assert inspect(daemon).state == "stopped"
    daemon.pidfile.parent.mkdir(parents=True)
    # A pid file naming a live process that is not this daemon (pids get reused): stale, not running.
    daemon.pidfile.write_text(str(os.getpid()), encoding="ascii")
    status = inspect(daemon)
    assert (status.state, status.pid) == ("stale", os.getpid())
