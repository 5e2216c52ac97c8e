"""`saltpipe impact`: each syndic master's config comes from the pipeline config (``master_config`` of each
syndic, as for sync and rollout), ``--syndic-config SYNDIC=PATH`` overriding it; the sync stage's serving is built
with that map, so attestation asks each syndic master's fileserver. The Salt client, the analysis and the release
store are test doubles; config loading and option parsing are the real thing."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipeline.cli import main

CONFIG = """\
version: 1
state_dir: {state}
environments:
  production:
    syndics:
      - {{name: syndic-prod-a, file_roots: {{type: local, path: /srv/a}}, master_config: /etc/salt/prod-a/master}}
      - {{name: syndic-prod-b, file_roots: {{type: local, path: /srv/b}}}}
    target: "G@saltpipe_env:production"
    canary: 1
    batches: [1, "100%"]
"""


class World:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.config = tmp / "pipeline.yaml"
        self.config.write_text(CONFIG.format(state=tmp / "state"), encoding="utf-8")
        self.serving_args: list[tuple[Any, ...]] = []
        import pipeline.commands.impact as cmd
        import pipeline.release as release
        import pipeline.rollout as rollout

        def serving(*args: Any) -> object:
            self.serving_args.append(args)
            return object()

        result = SimpleNamespace(ok=True, to_json=lambda: {"ok": True})
        monkeypatch.setattr(rollout, "SyncServing", serving)
        monkeypatch.setattr(cmd, "make_client", lambda cfg, flags, **kw: contextlib.nullcontext(object()))
        monkeypatch.setattr(cmd, "analyse_impact", lambda ctx: result)
        monkeypatch.setattr(
            release.ReleaseStore, "get", lambda store, rid: SimpleNamespace(id=rid, commit="c0ffee")
        )

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as excinfo:
            main(["--repo", str(self.tmp), "--config", str(self.config), "impact", "production",
                  "--release", "rel-0123456789ab", "--format", "json", *argv])
        out, err = capsys.readouterr()
        return int(excinfo.value.code or 0), out, err

    @property
    def syndic_configs(self) -> dict[str, Path]:
        assert len(self.serving_args) == 1
        return self.serving_args[0][2]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    return World(tmp_path, monkeypatch)


def test_syndic_configs_come_from_the_config(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = world.run(capsys)
    assert code == 0, err
    assert world.syndic_configs == {"syndic-prod-a": Path("/etc/salt/prod-a/master")}


def test_syndic_config_flags_override_and_add(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = world.run(
        capsys, "--syndic-config", "syndic-prod-a=/tmp/a/master", "--syndic-config", "syndic-prod-b=/tmp/b/master"
    )
    assert code == 0, err
    assert world.syndic_configs == {
        "syndic-prod-a": Path("/tmp/a/master"),
        "syndic-prod-b": Path("/tmp/b/master"),
    }


def test_syndic_config_naming_no_syndic_of_the_environment_is_a_usage_error(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = world.run(capsys, "--syndic-config", "syndic-test=/tmp/t/master")
    assert code == 2
    assert "'syndic-test' is not a syndic of production" in err
    assert world.serving_args == []
